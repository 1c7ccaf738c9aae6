"""``python -m benchmarks [accuracy|payback|speed|btyd ...]``: run benchmarks and print their tables."""

from __future__ import annotations

import argparse

from benchmarks import accuracy, btyd_speed, history, known_truth, payback, scale, speed

# scale: the data path on 10M-300M events against a bare DuckDB query; incremental refresh.
# known-truth: every model against the closed-form expected LTV of BG/NBD, Pareto/NBD, BG/BB and
# game processes (benchmarks/processes.py).
# btyd: NUTS/MAP/ADVI speed and memory over 200 groups, and btyd against the truth with its
# 99% intervals (needs the `bayes` extra, which `make` installs).
SUITES = {"accuracy": accuracy.main, "payback": payback.main, "speed": speed.main,
          "btyd": btyd_speed.main, "scale": scale.main, "history": history.main,
          "known-truth": known_truth.main}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], default=list(SUITES))
    parser.add_argument("--quick", action="store_true", help="fewer seeds / smaller sizes")
    args = parser.parse_args()
    for name in args.suites or SUITES:
        SUITES[name](quick=args.quick)


if __name__ == "__main__":
    main()
