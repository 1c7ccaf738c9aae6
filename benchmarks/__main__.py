"""``python -m benchmarks [accuracy|speed ...]``: run benchmarks and print their tables."""

from __future__ import annotations

import argparse

from benchmarks import accuracy, speed

SUITES = {"accuracy": accuracy.main, "speed": speed.main}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], default=list(SUITES))
    parser.add_argument("--quick", action="store_true", help="fewer seeds / smaller sizes")
    args = parser.parse_args()
    for name in args.suites or SUITES:
        SUITES[name](quick=args.quick)


if __name__ == "__main__":
    main()
