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

import pandas as pd

from ltvcore.data.cohorts import attach_installs, cohort_table
from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.runs.naming import input_files_digest
from ltvcore.workflow.artifacts import RUN_INFO, write_csv, write_snapshot
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
    """Validate raw inputs and write them normalised, plus the daily cohort aggregate.

    Events are summed per user-day (the models never need finer data), which is what makes
    the prepared set light enough for every forecast to read.
    """
    inputs = _load(Path(raw_dir))
    events = inputs.events
    if as_of is not None:
        events = events[events["event_date"].to_numpy() <= pd.Timestamp(as_of).to_datetime64()]
    installs, user, age = attach_installs(events, inputs.installs,
                                          events_name=inputs.names["events"],
                                          installs_name=inputs.names.get("installs", "installs"))
    daily = (events.groupby(["user_id", "event_date"], sort=True, as_index=False)["revenue"].sum())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {"events": daily, "installs": installs}
    if inputs.spend is not None:
        frames["spend"] = inputs.spend
    written = write_snapshot(frames, out_dir)
    for name, path in written.items():
        shutil.move(str(path), out_dir / path.name)
    (out_dir / "inputs").rmdir()
    last = events["event_date"].max()
    cohorts = cohort_table(events, installs, user, age, by=["campaign"], as_of=last)
    cohorts.to_parquet(out_dir / "cohorts.parquet", index=False)
    return {"users": int(len(installs)), "user_days": int(len(daily)),
            "cohort_rows": int(len(cohorts)), "last_event_date": str(pd.Timestamp(last).date())}


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
