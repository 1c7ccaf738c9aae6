"""A forecast from inputs to a published run, as every entry point runs it.

snapshot the inputs → derive the run id → reuse an existing run, or forecast → write the
outputs and the report → manifest → commit to the store (manifest last). The stages are
separate functions because the SageMaker pipeline runs them as separate jobs
(:mod:`ltvcore.workflow.steps`); :func:`forecast_inputs_to_store` chains them in one process.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ltvcore.lifecycle.forecasting import pin_request
from ltvcore.lifecycle.refs import is_ref, parse_ref
from ltvcore.models import pools_groups
from ltvcore.request import ForecastRequest
from ltvcore.runs import ids, manifest
from ltvcore.runs.naming import input_files_digest, planned_run_id
from ltvcore.runs.staging import staging
from ltvcore.runs.store import ArtifactStore, open_store
from ltvcore.warehouse.snapshot import snapshot_tables, write_snapshot, write_tables
from ltvcore.workflow.artifacts import RUN_INFO, read_output_csv, write_outputs
from ltvcore.workflow.forecast import Inputs, load_inputs, resolve_as_of, run_forecast

__all__ = ["Outcome", "Staged", "compute", "forecast_inputs_to_store", "forecast_to_store",
           "input_files_digest", "planned_run_id", "publish", "stage"]

Progress = Callable[[str], None]
"""Told the stage a local computation enters: ``reading``, ``aggregating``, ``fitting``,
``writing`` (the API shows it on the run page). It must not raise."""

STAGES = ("reading", "aggregating", "fitting", "writing")


def _tell(progress: Progress | None, stage_name: str) -> None:
    if progress is not None:
        progress(stage_name)


@dataclass
class Staged:
    """A run being assembled: its id, the resolved request and the as-of cut inputs."""

    run_id: str
    request: ForecastRequest
    inputs: Inputs
    input_digest: str
    directory: Path
    pending: _Writer | None = None
    store: Any = None  # where a registered model (NAME@VERSION) is loaded from

    def wait(self) -> None:
        """Block until the snapshot's files are written (re-raising a failure)."""
        if self.pending is not None:
            self.pending.wait()
            self.pending = None


@dataclass
class Outcome:
    run_id: str
    location: str
    reused: bool
    forecast: pd.DataFrame
    warnings: list[str]

    def table(self) -> str:
        frame = self.forecast.copy()
        for column in ("ltv", "ltv_lower", "ltv_upper", "spend"):
            if column in frame:
                frame[column] = frame[column].map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
        for column in ("roas", "roas_lower", "roas_upper"):
            if column in frame:
                frame[column] = frame[column].map(lambda v: "" if pd.isna(v) else f"{v:.2f}x")
        if "p_payback" in frame:
            frame["p_payback"] = frame["p_payback"].map(lambda v: "" if pd.isna(v) else f"{v:.0%}")
        return frame.to_string(index=False)


def _existing(target: ArtifactStore, run_id: str) -> Outcome | None:
    if not target.exists(run_id):
        return None
    forecast = read_output_csv(io.BytesIO(target.read_bytes(run_id, "forecast.csv")))
    return Outcome(run_id=run_id, location=target.location(run_id), reused=True,
                   forecast=forecast, warnings=[])


def stage(inputs: Inputs, request: ForecastRequest, directory: Path, *,
          snapshot: bool = True, input_digest: str | None = None, store=None) -> Staged:
    """Cut the inputs at as-of, write their snapshot and derive the run id.

    ``input_digest`` identifies the input data (:func:`input_files_digest`); without it the
    digest of the snapshot stands in. With it, the snapshot's files are written in a thread
    while the forecast computes (:func:`compute` waits for them before it returns). ``store``
    holds the registered models a request may name (default ``$LTV_STORE``).
    """
    if is_ref(request.model) and not parse_ref(request.model).pinned:
        # NAME@champion names the run by the version it means now (callers usually pin first)
        request = pin_request(request, store)
    as_of = resolve_as_of(inputs, request)
    original, request = request, request.replace(as_of=as_of)
    directory.mkdir(parents=True, exist_ok=True)
    pending = None
    if input_digest is None:
        paths = write_snapshot(inputs, as_of, directory)
        digest = ids.combine_digests({name: manifest.sha256_file(p) for name, p in paths.items()})
        if not snapshot:
            shutil.rmtree(directory / "inputs")
    else:
        digest = input_digest
        if snapshot:
            pending = _Writer(snapshot_tables(inputs, as_of), directory)
    # The id rests on the request as given (as-of unresolved when omitted): the data digest
    # already pins what "latest" means, and the API must name the run before reading data.
    run_id = planned_run_id(original, digest)
    return Staged(run_id=run_id, request=request, inputs=inputs, input_digest=digest,
                  directory=directory, pending=pending, store=store)


class _Writer(threading.Thread):
    """Writes snapshot tables (pyarrow releases the GIL while it encodes and compresses)."""

    def __init__(self, tables, directory: Path) -> None:
        super().__init__(name="ltv-snapshot", daemon=True)
        self.tables, self.directory = tables, directory
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            write_tables(self.tables, self.directory)
        except BaseException as error:  # noqa: BLE001 - re-raised by wait() in the caller
            self.error = error
        finally:
            self.tables = {}

    def wait(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def compute(staged: Staged, *, shard_index: int = 0, shard_count: int = 1,
            cache: bool = True, progress: Progress | None = None) -> dict:
    """Forecast (one shard of the groups) and write the outputs into the staging directory.

    Models that pool groups (:func:`ltvcore.models.pools_groups`) are not split: the first shard
    forecasts every group and the others write empty outputs, so a run's result never depends
    on the shard count. ``progress`` is told ``fitting`` before the forecast (which also
    builds the cohorts) and ``writing`` once it is written.
    """
    inputs = staged.inputs
    drew_none = False
    shard = None
    if shard_count > 1:
        # A registered model's family is known from its card only: never split it (one shard
        # computing every group costs time, never changes the result).
        pools = is_ref(staged.request.model) or pools_groups(staged.request.model)
        if pools or not inputs.has_installs:
            # Without installs every user is in the one group "all": the first shard has it.
            drew_none = shard_index > 0
        else:
            shard = (shard_index, shard_count)
            drew_none = not _shard_has_groups(inputs, staged.request, shard)
    info: dict[str, Any] = {"run_id": staged.run_id, "request": staged.request.normalised(),
            "as_of": staged.request.as_of, "input_digest": staged.input_digest,
            "inputs": dict(staged.inputs.names), "warnings": [], "timings": {}, "groups": 0}
    if drew_none:
        # A shard that drew no group: empty outputs, for the report step to merge.
        for name in ("forecast.csv", "curve.csv"):
            (staged.directory / name).write_bytes(b"")
        (staged.directory / "params.json").write_text(json.dumps({"groups": []}))
    else:
        _tell(progress, "fitting")
        result = run_forecast(inputs, staged.request, cache=cache, shard=shard, store=staged.store)
        _tell(progress, "writing")
        write_outputs(result, staged.directory)
        if result.observed is not None:
            from ltvcore.report.observed import OBSERVED_STASH, dump

            (staged.directory / OBSERVED_STASH).write_bytes(dump(result.observed))
        info.update(warnings=result.warnings, timings=result.timings,
                    groups=int(result.forecast.drop_duplicates(list(staged.request.by)).shape[0]))
        if result.params.get("model_version"):
            info["model_version"] = result.params["model_version"]
    staged.wait()
    (staged.directory / RUN_INFO).write_text(json.dumps(info, indent=2, default=str))
    return info


def _shard_has_groups(inputs: Inputs, request: ForecastRequest, shard: tuple[int, int]) -> bool:
    """Whether any group of the data falls in ``shard`` (groups by the stable hash of
    :func:`ltvcore.warehouse.model_data.shard_keys`)."""
    from ltvcore.warehouse.model_data import _groups, shard_keys

    groups = _groups(inputs, list(request.by), str(request.as_of))
    return bool(shard_keys(groups, list(request.by), *shard).any())


def publish(directory: Path, store=None, *, requested_by: str | None = None) -> tuple[str, str, bool]:
    """Report, manifest (last) and commit; returns (run id, location, reused)."""
    from ltvcore.report import write_report

    info = json.loads((directory / RUN_INFO).read_text())
    (directory / RUN_INFO).unlink()
    target = store if isinstance(store, ArtifactStore) else open_store(store)
    run_id = info["run_id"]
    from ltvcore.report.observed import OBSERVED_STASH, load

    stash = directory / OBSERVED_STASH
    observed = load(stash.read_bytes()) if stash.exists() else None
    stash.unlink(missing_ok=True)
    if target.exists(run_id):
        return run_id, target.location(run_id), True
    if not (directory / "report.html").exists():
        write_report(directory, run_id=run_id, observed=observed)
    content = manifest.build_manifest(
        directory, run_id=run_id, request=info["request"], as_of=info["as_of"],
        requested_by=requested_by, seed=info["request"].get("seed"), timings=info["timings"],
        extra={"input_digest": info["input_digest"], "warnings": info["warnings"],
               "inputs": info["inputs"],
               # the exact registered version a NAME@... request used (absent otherwise)
               **({"model_version": info["model_version"]} if info.get("model_version") else {})},
    )
    manifest.write_manifest(directory, content)
    return run_id, target.commit(run_id, directory), False


def forecast_to_store(request: ForecastRequest, *, events, installs=None, spend=None,
                      store=None, requested_by: str | None = None,
                      progress: Progress | None = None) -> Outcome:
    """Read the input files, then :func:`forecast_inputs_to_store`.

    ``progress`` is told each stage: ``reading``, ``aggregating``, ``fitting``, ``writing``.
    """
    digest = input_files_digest({"events": events, "installs": installs, "spend": spend})
    target = open_store(store)
    request = pin_request(request, target)  # NAME@champion → NAME@VERSION before the id
    reused = _existing(target, planned_run_id(request, digest))
    if reused is not None:
        return reused
    _tell(progress, "reading")
    inputs = load_inputs(events, installs, spend)
    return forecast_inputs_to_store(request, inputs, store=store, requested_by=requested_by,
                                    input_digest=digest, progress=progress)


def forecast_inputs_to_store(request: ForecastRequest, inputs: Inputs, *, store=None,
                             requested_by: str | None = None,
                             input_digest: str | None = None,
                             progress: Progress | None = None) -> Outcome:
    """Forecast unless the same request on the same data already has a run; publish it.

    ``progress`` is told ``aggregating`` (inputs cut at as-of and snapshotted), then
    :func:`compute`'s ``fitting`` and ``writing`` (outputs, report, manifest, commit).
    """
    started = time.perf_counter()
    target = open_store(store)
    request = pin_request(request, target, check=False)
    with staging(target) as directory:
        _tell(progress, "aggregating")
        staged = stage(inputs, request, directory, input_digest=input_digest, store=target)
        existing = _existing(target, staged.run_id)
        if existing is not None:
            staged.wait()  # before the staging folder goes
            return existing
        info = compute(staged, progress=progress)
        info["timings"]["total_s"] = time.perf_counter() - started
        (directory / RUN_INFO).write_text(json.dumps(info, indent=2, default=str))
        forecast = read_output_csv(directory / "forecast.csv")
        run_id, location, reused = publish(directory, target, requested_by=requested_by)
        return Outcome(run_id=run_id, location=location, reused=reused, forecast=forecast,
                       warnings=info["warnings"])
