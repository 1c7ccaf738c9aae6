"""The past runs of a store, as the monitor compares them: what each published, read back as is.

Only succeeded runs are read (a queued, running or failed run published nothing). A run whose
as-of is so recent that not even the shortest checkpoint can have been reached by the end of the
newer data is counted but not read: its files could not produce a row. A run whose files cannot
be read is skipped with the reason, so one damaged run never hides the others; storage failures
(the store itself unreachable) are not caught here and fail the command.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ltvcore.runs.manifest import ManifestError
from ltvcore.runs.store import ArtifactStore, StoreError
from ltvcore.workflow.artifacts import read_output_csv

__all__ = ["PastRun", "Skipped", "StoreRuns", "past_runs", "version_label"]


@dataclass(frozen=True)
class PastRun:
    """One succeeded run: its request as resolved, and its files as published."""

    run_id: str
    as_of: str
    by: list[str]
    horizons: tuple[int, ...]
    confidence: float
    model_version: str
    forecast: pd.DataFrame
    curve: pd.DataFrame
    params: dict[str, Any]

    @property
    def longest(self) -> int:
        """The last day + 1 that curve.csv covers: no checkpoint beyond it was published."""
        return max(self.horizons)


@dataclass(frozen=True)
class Skipped:
    run_id: str
    reason: str


@dataclass
class StoreRuns:
    """What the store held: runs to compare, runs too recent to score yet, runs left out."""

    runs: list[PastRun] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    listed: int = 0


def version_label(value: Any, model: str) -> str:
    """The model version a run records, as one label; the model's name when it records none.

    A run of a registered model (``--model NAME@VERSION``, :mod:`ltvcore.lifecycle`) records
    ``model_version`` in its manifest; every other run of a model is one version, named by the
    model (``forecast.csv``'s ``model`` column).
    """
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping):
        name, version = value.get("name") or model, value.get("version")
        if version not in (None, ""):
            return f"{name}@{version}"
    return model


# What a damaged run raises while it is read (missing file, malformed JSON or CSV, a field of
# the wrong type): the run is skipped. Anything else is a failure of the store or a bug.
_UNREADABLE = (FileNotFoundError, KeyError, TypeError, ValueError, ManifestError, StoreError)


def _read(store: ArtifactStore, run_id: str, manifest: dict[str, Any]) -> PastRun:
    request = manifest["request"]
    by = [str(c) for c in request["by"]]
    horizons = tuple(int(h) for h in request["horizons"])
    forecast = read_output_csv(io.BytesIO(store.read_bytes(run_id, "forecast.csv")))
    curve = read_output_csv(io.BytesIO(store.read_bytes(run_id, "curve.csv")))
    params = json.loads(store.read_bytes(run_id, "params.json"))
    missing = [c for c in [*by, "horizon_days", "ltv", "ltv_lower", "ltv_upper", "model"]
               if c not in forecast.columns]
    missing += [f"curve.csv {c}" for c in [*by, "day", "ltv", "ltv_lower", "ltv_upper"]
                if c not in curve.columns]
    if missing or forecast.empty:
        raise ValueError(f"forecast.csv / curve.csv lack {', '.join(missing) or 'rows'}")
    models = sorted(set(forecast["model"].astype(str)))
    return PastRun(run_id=run_id, as_of=str(manifest["as_of"]), by=by, horizons=horizons,
                   confidence=float(request.get("confidence") or np.nan),
                   # The manifest pins a registered model's NAME@VERSION; params.json does too.
                   model_version=version_label(manifest.get("model_version")
                                               or params.get("model_version"), "+".join(models)),
                   forecast=forecast, curve=curve, params=params)


def past_runs(store: ArtifactStore, rows: list[dict[str, Any]], *, last_event: str,
              first_checkpoint: int) -> StoreRuns:
    """The runs ``rows`` of ``store`` (its listing), sorted into compared, pending (too recent)
    and skipped.

    A run is pending when its as-of is later than ``last_event − (first_checkpoint − 1)``: its
    youngest users (installed on as-of) cannot have been observed ``first_checkpoint`` days.
    """
    found = StoreRuns(listed=len(rows))
    latest = np.datetime64(last_event, "D") - np.timedelta64(first_checkpoint - 1, "D")
    for row in sorted(rows, key=lambda r: (str(r.get("as_of") or ""), r["run_id"])):
        run_id = row["run_id"]
        if row.get("status") != "succeeded":
            found.skipped.append(Skipped(run_id, f"status {row.get('status')}: nothing published"))
            continue
        try:
            manifest = store.read_manifest(run_id)
            as_of = str(manifest["as_of"])
            if np.datetime64(as_of, "D") > latest:
                found.pending.append(run_id)
                continue
            found.runs.append(_read(store, run_id, manifest))
        except _UNREADABLE as error:
            found.skipped.append(Skipped(run_id, f"unreadable ({type(error).__name__}: "
                                                 f"{str(error)[:200]})"))
    return found
