"""Forecast step: one shard of the groups of one request (one instance per shard)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ltvcore.errors import InputError
from ltvcore.workflow import steps
from sagemaker_jobs import _entry, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=paths.local(paths.FORECAST_PREPARED))
    parser.add_argument("--request", type=Path, default=paths.local(paths.FORECAST_REQUEST))
    parser.add_argument("--shard", type=Path, default=paths.local(paths.FORECAST_SHARD))
    parser.add_argument("--output", type=Path, default=paths.local(paths.FORECAST_OUTPUT))
    parser.add_argument("--input-digest", default="")
    args = parser.parse_args(argv)
    request_file = args.request if args.request.is_file() else args.request / "request.json"
    request = json.loads(request_file.read_text(encoding="utf-8"))
    index, count = shard_of(args.shard)
    out_dir = args.output / f"shard-{index:04d}-of-{count:04d}"
    result = steps.forecast(request, args.prepared, out_dir, shard_index=index, shard_count=count,
                            input_digest=args.input_digest or None)
    print(json.dumps(result, default=str))
    return 0


def shard_of(directory: Path) -> tuple[int, int]:
    """This instance's (index, count) from the one shard spec it received; (0, 1) without."""
    specs = sorted(directory.glob("shard-*.json")) if directory.is_dir() else []
    if not specs:
        return 0, 1
    if len(specs) != 1:
        raise InputError(f"expected one shard spec per instance, got {len(specs)}: "
                         "the instance count must equal the shard count")
    spec = json.loads(specs[0].read_text(encoding="utf-8"))
    return int(spec["shard_index"]), int(spec["shard_count"])


if __name__ == "__main__":
    _entry.run(main)
