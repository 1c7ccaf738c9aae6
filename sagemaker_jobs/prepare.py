"""Prepare step: validate and aggregate a dataset (per request) or every dataset (daily).

Per request, the input is a dataset's daily aggregates and ``--input-digest`` the digest the
run was named with: the data must still be those bytes (else the run's id would lie), then it
is cut at ``--as-of`` and one shard spec per forecast instance is written. Daily
(``--all-datasets``), each dataset folder of the raw warehouse is prepared on its own; a bad
dataset keeps its previous aggregates and is listed in ``_daily_report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from ltvcore.errors import InputError
from ltvcore.runs.naming import input_files_digest
from ltvcore.workflow import steps
from sagemaker_jobs import _entry, paths
from sagemaker_jobs.definition import LATEST


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=paths.local(paths.PREPARE_INPUT))
    parser.add_argument("--output", type=Path, default=paths.local(paths.PREPARE_OUTPUT))
    parser.add_argument("--shards-output", type=Path, default=paths.local(paths.SHARDS_OUTPUT))
    parser.add_argument("--shard-count", type=int, default=int(os.environ.get("LTV_SHARD_COUNT", "1")))
    parser.add_argument("--as-of", default=LATEST)
    parser.add_argument("--input-digest", default="")
    parser.add_argument("--all-datasets", action="store_true")
    args = parser.parse_args(argv)
    if args.all_datasets:
        return prepare_all(args.input, args.output)
    if args.input_digest:
        found = input_files_digest(steps.find_inputs(args.input))
        if found != args.input_digest:
            raise InputError("the dataset changed after the forecast was requested "
                             f"(digest {found[:12]}…, requested {args.input_digest[:12]}…): submit it again")
    summary = steps.prepare(args.input, args.output, as_of=None if args.as_of == LATEST else args.as_of)
    write_shard_specs(args.shards_output, args.shard_count)
    print(json.dumps(summary, default=str))
    return 0


def write_shard_specs(directory: Path, count: int) -> None:
    """One small file per forecast instance: ``ShardedByS3Key`` hands each instance one."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        spec = {"shard_index": index, "shard_count": count}
        (directory / f"shard-{index:04d}-of-{count:04d}.json").write_text(json.dumps(spec))


def prepare_all(raw_root: Path, out_root: Path) -> int:
    report: dict[str, dict] = {}
    folders = sorted(p for p in raw_root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    for folder in folders:
        staging = Path(tempfile.mkdtemp(prefix=f"prepare-{folder.name}-"))
        try:
            report[folder.name] = {"ok": True, **steps.prepare(folder, staging)}
            shutil.rmtree(out_root / folder.name, ignore_errors=True)
            shutil.copytree(staging, out_root / folder.name)
        except InputError as error:
            report[folder.name] = {"ok": False, "error": str(error)}
            print(f"dataset {folder.name}: {error}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "_daily_report.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({"datasets": len(report), "failed": [n for n, r in report.items() if not r["ok"]]}))
    return 0 if not folders or any(r["ok"] for r in report.values()) else 1


if __name__ == "__main__":
    _entry.run(main)
