"""Prepare step: the dataset's committed daily aggregates → the forecast's inputs, cut at as-of.

The input is what the warehouse refresh's manifest lists (:mod:`ltvcore.warehouse.athena`):
``state.json``, ``user_day/event_date=D/…``, ``installs/…``, ``spend/…``; never raw events.
``--input-digest`` is the digest the run was named with: ``state.json`` must carry it and every
aggregate object must have arrived, else the run's id would lie. The aggregates are read by
:func:`ltvcore.warehouse.store.open_warehouse`, cut at ``--as-of`` into a snapshot and prepared
by :func:`ltvcore.workflow.steps.prepare`; then one shard spec per forecast instance.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from ltvcore.warehouse import layout
from ltvcore.warehouse.athena import verify_download
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
    args = parser.parse_args(argv)
    as_of = None if args.as_of == LATEST else args.as_of
    state = verify_download(args.input, args.input_digest or None)
    one_file_per_date(args.input, state)
    with tempfile.TemporaryDirectory(prefix="ltv-prepare-") as scratch:
        summary = steps.prepare(snapshot(args.input, Path(scratch), as_of), args.output, as_of=as_of)
    write_shard_specs(args.shards_output, args.shard_count)
    print(json.dumps(summary, default=str))
    return 0


def one_file_per_date(root: Path, state: dict) -> None:
    """Athena's ``UNLOAD`` names its own objects (and may write several for a date); the
    layout has one ``data.parquet`` per date, so the downloaded ones are merged into it."""
    import duckdb

    con = duckdb.connect()
    for date, entry in state.get("dates", {}).items():
        folder = root / layout.partition(layout.USER_DAY, date)
        names = sorted(entry.get("objects", {}))
        if not names or names == [layout.AGGREGATE_FILE]:
            continue
        files = ", ".join("'" + str(folder / name).replace("'", "''") + "'" for name in names)
        target = str(folder / layout.AGGREGATE_FILE).replace("'", "''")
        con.execute(f"COPY (SELECT user_id, revenue, events FROM read_parquet([{files}]) ORDER BY user_id) "
                    f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        for name in names:
            (folder / name).unlink()


def snapshot(warehouse: Path, scratch: Path, as_of: str | None) -> Path:
    """The aggregates as input files (events summed per user and day, installs, spend)."""
    from ltvcore.warehouse.snapshot import write_snapshot
    from ltvcore.warehouse.store import open_warehouse  # the local reader of the layout

    inputs = open_warehouse(warehouse)
    write_snapshot(inputs, inputs.last_event if as_of is None else min(as_of, inputs.last_event), scratch)
    return scratch / "inputs"


def write_shard_specs(directory: Path, count: int) -> None:
    """One small file per forecast instance: ``ShardedByS3Key`` hands each instance one."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        spec = {"shard_index": index, "shard_count": count}
        (directory / f"shard-{index:04d}-of-{count:04d}.json").write_text(json.dumps(spec))


if __name__ == "__main__":
    _entry.run(main)
