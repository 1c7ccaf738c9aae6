"""Report step: merge every shard's part into one run directory with report.html."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ltvcore.errors import InputError
from ltvcore.workflow import steps
from sagemaker_jobs import _entry, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=Path, default=paths.local(paths.REPORT_INPUT))
    parser.add_argument("--output", type=Path, default=paths.local(paths.REPORT_OUTPUT))
    parser.add_argument("--shard-count", type=int, default=int(os.environ.get("LTV_SHARD_COUNT", "0")))
    args = parser.parse_args(argv)
    # only this configuration's parts: a change of shard count must not mix in stale ones
    pattern = f"shard-*-of-{args.shard_count:04d}" if args.shard_count else "shard-*"
    parts = sorted(p for p in args.parts.glob(pattern) if p.is_dir())
    if args.shard_count and len(parts) != args.shard_count:
        raise InputError(f"expected {args.shard_count} forecast parts, found {len(parts)}")
    if not parts:
        raise InputError(f"no forecast parts in {args.parts}")
    print(json.dumps(steps.report(parts, args.output), default=str))
    return 0


if __name__ == "__main__":
    _entry.run(main)
