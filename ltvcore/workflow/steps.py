"""The pipeline's steps on local directories: what a SageMaker processing job runs.

Each step reads one directory and writes another, so a job entry point only maps
``/opt/ml/processing/...`` to these arguments, and the local runner calls the same functions.

prepare → forecast (one or several shards) → report (merges shards) → publish (manifest last).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.runs.naming import input_files_digest
from ltvcore.warehouse.engine import one
from ltvcore.warehouse.model_data import cohort_table
from ltvcore.warehouse.snapshot import write_snapshot
from ltvcore.workflow.artifacts import RUN_INFO, write_csv
from ltvcore.workflow.forecast import Inputs, load_inputs
from ltvcore.workflow.run import compute, stage
from ltvcore.workflow.run import publish as publish_run

__all__ = ["find_inputs", "forecast", "prepare", "publish", "report"]


def find_inputs(directory: Path) -> dict[str, Path]:
    """``events.csv|parquet`` (required), ``installs.*`` and ``spend.*`` (optional) in a folder."""
    found = {}
    for name in ("events", "installs", "spend"):
        for suffix in (".parquet", ".csv"):
            path = Path(directory) / f"{name}{suffix}"
            if path.is_file():
                found[name] = path
                break
    if "events" not in found:
        raise InputError(f"no events.csv or events.parquet in {Path(directory).name or directory}")
    return found


def _load(directory: Path) -> Inputs:
    files = find_inputs(directory)
    return load_inputs(files["events"], files.get("installs"), files.get("spend"))


def prepare(raw_dir: Path, out_dir: Path, *, as_of: str | None = None) -> dict:
    """Validate raw inputs and write their aggregates: events summed per user-day (the models
    never need finer data), installs, spend, and the daily cohort table by campaign."""
    inputs = _load(Path(raw_dir))
    last = inputs.last_event if as_of is None else min(as_of, inputs.last_event)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_snapshot(inputs, last, out_dir)
    for path in written.values():
        shutil.move(str(path), out_dir / path.name)
    (out_dir / "inputs").rmdir()
    cohorts = cohort_table(inputs, last)
    cohorts.to_parquet(out_dir / "cohorts.parquet", index=False)
    users = one(inputs.con, f"SELECT COUNT(*) FROM installs WHERE install_date <= DATE '{last}'")[0]
    days = inputs.arrays()
    user_days = int((days.date <= int(np.datetime64(last, "D").astype(np.int64))).sum())
    return {"users": int(users), "user_days": int(user_days), "cohort_rows": int(len(cohorts)),
            "last_event_date": last}


def forecast(request: dict, input_dir: Path, out_dir: Path, *, shard_index: int = 0,
             shard_count: int = 1, input_digest: str | None = None) -> dict:
    """Forecast one shard of the groups into ``out_dir`` (outputs, snapshot, run info).

    ``input_digest`` is the digest the run id was named with when the request was accepted
    (e.g. by the API); by default it is that of the files in ``input_dir``.
    """
    if not 0 <= shard_index < shard_count:
        raise InputError(f"shard {shard_index} is not in 0..{shard_count - 1}", column="shard_index")
    parsed = ForecastRequest.from_dict(request)
    files = find_inputs(Path(input_dir))
    digest = input_digest or input_files_digest(dict(files))
    staged = stage(_load(Path(input_dir)), parsed, Path(out_dir), snapshot=shard_index == 0,
                   input_digest=digest)
    info = compute(staged, shard_index=shard_index, shard_count=shard_count)
    return {"run_id": info["run_id"], "groups": info["groups"]}


def _field_count(params: dict[str, Any]) -> int:
    return len(params)


def report(run_dirs: list[Path], out_dir: Path) -> dict:
    """Merge shard outputs into one run directory and write ``report.html``."""
    run_dirs = [Path(d) for d in run_dirs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    infos = [json.loads((d / RUN_INFO).read_text()) for d in run_dirs]
    if len({i["run_id"] for i in infos}) != 1:
        raise ValueError("shards belong to different runs")
    by = infos[0]["request"]["by"]
    for name, order in (("forecast.csv", by + ["horizon_days"]), ("curve.csv", by + ["day"])):
        frames = [pd.read_csv(d / name, keep_default_na=False, na_values=[""],
                              dtype={column: str for column in by})
                  for d in run_dirs if (d / name).stat().st_size]
        merged = pd.concat(frames, ignore_index=True).sort_values(order, kind="stable")
        write_csv(merged, out_dir / name)
    params: list[dict[str, Any]] = [json.loads((d / "params.json").read_text()) for d in run_dirs]
    richest: dict[str, Any] = max(params, key=_field_count)
    combined = dict(richest)
    combined["groups"] = sorted((g for p in params for g in p["groups"]),
                                key=lambda g: [str(g["key"][c]) for c in by])
    combined["warnings"] = [w for p in params for w in p.get("warnings", [])]
    (out_dir / "params.json").write_text(json.dumps(combined, indent=2) + "\n")
    source = next(d for d in run_dirs if (d / "inputs").is_dir())
    if source != out_dir:
        shutil.copytree(source / "inputs", out_dir / "inputs", dirs_exist_ok=True)
    info = dict(infos[0])
    info["warnings"] = combined["warnings"]
    info["groups"] = sum(i["groups"] for i in infos)
    (out_dir / RUN_INFO).write_text(json.dumps(info, indent=2))
    from ltvcore.report import write_report

    write_report(out_dir, run_id=info["run_id"])
    return {"run_id": info["run_id"], "groups": info["groups"]}


def publish(run_dir: Path, store_uri: str, *, requested_by: str | None = None) -> dict:
    """Manifest last, then commit the run to the store."""
    run_id, location, reused = publish_run(Path(run_dir), store_uri, requested_by=requested_by)
    return {"run_id": run_id, "location": location, "reused": reused}
