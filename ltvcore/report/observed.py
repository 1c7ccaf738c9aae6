"""What the run's users did before as-of, read back from the run's own input snapshot.

The report's retention chart shows the observed activity rate under the fitted law, and both
LTV and retention charts draw observed days apart from projected ones. ``curve.csv`` holds only
the forecast, so the observed side comes from ``inputs/`` (the exact data the forecast used, cut
at as-of) pooled by the forecast's own code (:func:`ltvcore.warehouse.model_data.cohort_data`).
The snapshot is part of the run, so the report stays a function of the run's files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltvcore.errors import InputError

__all__ = ["OBSERVED_STASH", "Observed", "dump", "load", "observed_of", "read_observed"]

INPUTS_DIR = "inputs"
#: Where a local run's forecast step leaves the observed activity it already pooled, for the
#: publish step's report (never an artifact: publish removes it before the manifest). Reading
#: it back from the snapshot costs a second aggregation of the whole input at scale.
OBSERVED_STASH = ".observed.json"


@dataclass(frozen=True)
class Observed:
    """Per group key: activity rate by day since install (active ÷ users observed that day),
    users observed each day, and the oldest cohort's age at as-of (its last observed day)."""

    rate: dict[tuple[str, ...], list[float]]
    at_risk: dict[tuple[str, ...], list[int]]
    last_day: dict[tuple[str, ...], int]


def read_observed(run_dir: Path, request: dict[str, Any], by: list[str]) -> Observed | None:
    """The observed activity of each group; None when the run holds no snapshot to read it from
    (a run written by hand, or a request too old to say how the cohorts were cut)."""
    from ltvcore.warehouse.model_data import cohort_data
    from ltvcore.workflow.forecast import load_inputs

    folder = Path(run_dir) / INPUTS_DIR
    events = folder / "events.parquet"
    as_of = request.get("as_of")
    if not events.is_file() or not isinstance(as_of, str):
        return None
    installs = folder / "installs.parquet"
    try:
        inputs = load_inputs(events, installs if installs.is_file() else None, None)
        data = cohort_data(inputs, by=by, as_of=as_of,
                           observe_days=int(request.get("observe_days") or 1),
                           window_days=request.get("window_days"))
    except (InputError, OSError, KeyError, ValueError):  # no chart rather than no report
        return None
    return observed_of(data, by)


def observed_of(data, by: list[str]) -> Observed:
    """The observed activity of each group of a :class:`~ltvcore.data.cohorts.CohortData`."""
    rate, at_risk, last_day = {}, {}, {}
    for g in range(data.n_groups):
        key = tuple(str(data.groups[c].iat[g]) for c in by)
        end = int(data.last_day[g]) + 1
        if end <= 0:
            continue
        seen = data.at_risk[g, :end]
        active = data.active[g, :end]
        rate[key] = [float(a / n) if n > 0 else float("nan")
                     for a, n in zip(active.tolist(), seen.tolist(), strict=True)]
        at_risk[key] = [int(n) for n in np.asarray(seen).tolist()]
        last_day[key] = end - 1
    return Observed(rate, at_risk, last_day)


def dump(observed: Observed) -> bytes:
    """JSON of ``observed`` whose :func:`load` gives it back exactly (floats by repr)."""
    rows = [{"key": list(key), "rate": observed.rate[key], "at_risk": observed.at_risk[key],
             "last_day": observed.last_day[key]} for key in observed.rate]
    return json.dumps(rows).encode("utf-8")


def load(content: bytes) -> Observed:
    rows = json.loads(content)
    keys = [tuple(row["key"]) for row in rows]
    return Observed({k: r["rate"] for k, r in zip(keys, rows)}, {k: r["at_risk"] for k, r in zip(keys, rows)},
                    {k: r["last_day"] for k, r in zip(keys, rows)})
