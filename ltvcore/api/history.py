"""The run page's view across runs: convergence over earlier runs, and forecast against actual.

Both read beyond the run itself, the store's other runs and the monitor's results, which change
after the run is published. They are therefore drawn on the run page, never in ``report.html``:
``ltv reproduce`` compares that file byte for byte, so it may hold only what the run recorded.

- **Convergence**: the same groups' forecast at the run's main horizon in every succeeded run of
  the same dataset, grouping and model with an as-of up to this run's, one point per as-of (the
  newest run of a date): how the forecast moved as days of data accumulated.
- **Forecast against actual**: the rows of ``monitor.csv`` (:mod:`ltvcore.monitor`) for those
  runs, read from the store's ``monitor/`` folder (``ltv monitor --out STORE/monitor``; on S3 the
  same key under the store's prefix).

Pure Python over the store (no pandas): the API Lambda serves this page too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from ltvcore import decision
from ltvcore.charts import PALETTE, axis, base_layout, chart_text, group_label, money, num, visibility
from ltvcore.runs.store import ArtifactStore, StoreError

__all__ = ["MONITOR_KEY", "run_history"]

MONITOR_KEY = "monitor/monitor.csv"
#: Runs listed to find the dataset's others: the newest, as the runs list shows them.
LISTED = 500
#: As-of dates drawn at most (the latest), and groups offered in a chart's legend.
MAX_RUNS = 24
MAX_GROUPS = 10
_READ_ERRORS = (OSError, StoreError, UnicodeDecodeError, ValueError, csv.Error)


def _rows(raw: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


def _same_series(entry: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    found = entry.get("request")
    other: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return (entry.get("status") == "succeeded" and bool(entry.get("as_of"))
            and all(other.get(k) == request.get(k) for k in ("dataset", "by", "model")))


def _series(store: ArtifactStore, run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """This run and the earlier runs of its series, oldest as-of first, one per as-of."""
    request = run["request"]
    newest: dict[str, Mapping[str, Any]] = {}
    for entry in store.list_runs(limit=LISTED):  # newest first: the first of a date wins
        if _same_series(entry, request) and str(entry["as_of"]) <= str(run["as_of"]):
            newest.setdefault(str(entry["as_of"]), entry)
    newest[str(run["as_of"])] = run
    return [newest[d] for d in sorted(newest)][-MAX_RUNS:]


def _key(row: Mapping[str, str], by: list[str]) -> tuple[str, ...]:
    return tuple(row.get(c, "") for c in by)


def _convergence(store: ArtifactStore, series: list[Mapping[str, Any]], by: list[str],
                 horizon: int) -> dict[str, Any] | None:
    points: dict[tuple[str, ...], list[tuple[str, float | None, float | None, float | None]]] = {}
    latest: dict[tuple[str, ...], float] = {}
    for entry in series:
        try:
            rows = _rows(store.read_bytes(entry["run_id"], "forecast.csv"))
        except _READ_ERRORS:
            continue  # a damaged run draws no point; the others still do
        for row in rows:
            if decision.number(row.get("horizon_days")) != horizon:
                continue
            key = _key(row, by)
            ltv = decision.number(row.get("ltv"))
            points.setdefault(key, []).append((str(entry["as_of"]), ltv,
                                               decision.number(row.get("ltv_lower")),
                                               decision.number(row.get("ltv_upper"))))
            if entry is series[-1] and ltv is not None:
                latest[key] = ltv
    ranked = sorted((k for k in points if k in latest), key=lambda k: -latest[k])[:MAX_GROUPS]
    traces = []
    for rank, key in enumerate(ranked):
        found = points[key]
        colour = PALETTE[rank % len(PALETTE)]
        name = chart_text(group_label(key)) or "all"
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": name, "visible": visibility(rank),
            "x": [p[0] for p in found], "y": [num(p[1], 5) for p in found],
            "line": {"color": colour, "width": 2}, "marker": {"color": colour, "size": 7},
            "error_y": {"type": "data", "symmetric": False, "color": colour, "thickness": 1,
                        "width": 3,
                        "array": [None if p[1] is None or p[3] is None else num(p[3] - p[1], 5)
                                  for p in found],
                        "arrayminus": [None if p[1] is None or p[2] is None
                                       else num(p[1] - p[2], 5) for p in found]},
            "hovertemplate": "as of %{x}: %{y:,.3f}<extra>" + name + "</extra>",
        })
    if not traces:
        return None
    layout = base_layout(
        height=420, hovermode="closest",
        xaxis=axis("Data as of (one point per run)", type="date"),
        yaxis=axis(money(f"Forecast LTV at day {horizon} per installed user"),
                   rangemode="tozero", tickformat=",.2f"),
        legend={"orientation": "v", "itemclick": "toggle", "itemdoubleclick": "toggleothers"})
    return {"data": traces, "layout": layout}


def _actuals(store: ArtifactStore, run_ids: set[str], by: list[str]
             ) -> tuple[dict[str, Any] | None, str]:
    from ltvcore.lifecycle.objects import objects_for

    try:
        raw = objects_for(store).read(MONITOR_KEY)
    except (FileNotFoundError, TypeError):
        return None, ("The store holds no monitor results (monitor/monitor.csv), so forecasts "
                      "cannot be set against what users went on to spend yet.")
    try:
        rows = [r for r in _rows(raw) if r.get("run_id") in run_ids]
    except _READ_ERRORS as error:
        return None, f"The monitor results could not be read: {error}."
    by_checkpoint: dict[int, list[dict[str, str]]] = {}
    for row in rows:
        day = decision.number(row.get("horizon_days"))
        if day is not None and decision.number(row.get("actual")) is not None:
            by_checkpoint.setdefault(int(day), []).append(row)
    if not by_checkpoint:
        return None, ("The monitor results hold no checkpoint that this dataset's runs have "
                      "reached yet.")
    traces, top = [], 0.0
    for rank, day in enumerate(sorted(by_checkpoint)):
        found = by_checkpoint[day]
        actual = [decision.number(r["actual"]) or 0.0 for r in found]
        forecast = [decision.number(r.get("forecast")) for r in found]
        lower = [decision.number(r.get("lower")) for r in found]
        upper = [decision.number(r.get("upper")) for r in found]
        top = max([top, *actual, *(f for f in forecast if f is not None)])
        colour = PALETTE[rank % len(PALETTE)]
        traces.append({
            "type": "scatter", "mode": "markers", "name": f"day {day}",
            "x": [num(a, 5) for a in actual], "y": [num(f, 5) for f in forecast],
            "text": [chart_text(f"{group_label(tuple(r.get(c, '') for c in by))}, run "
                                f"{r.get('run_id')} as of {r.get('as_of')}") for r in found],
            "marker": {"color": colour, "size": 8, "opacity": 0.85},
            "error_y": {"type": "data", "symmetric": False, "color": colour, "thickness": 1,
                        "width": 0,
                        "array": [None if f is None or u is None else num(u - f, 5)
                                  for f, u in zip(forecast, upper, strict=True)],
                        "arrayminus": [None if f is None or lo is None else num(f - lo, 5)
                                       for f, lo in zip(forecast, lower, strict=True)]},
            "hovertemplate": ("%{text}<br>actual %{x:,.3f}<br>forecast %{y:,.3f}"
                              "<extra>day " + str(day) + "</extra>"),
        })
    edge = num(top * 1.05) or 1.0
    traces.append({"type": "scatter", "mode": "lines", "name": "forecast = actual",
                   "x": [0, edge], "y": [0, edge], "hoverinfo": "skip",
                   "line": {"color": "#7f8c9b", "dash": "dot", "width": 1}})
    covered = sum(1 for r in rows if r.get("covered", "").lower() == "true")
    layout = base_layout(
        height=420, hovermode="closest",
        xaxis=axis(money("Actual LTV per user"), rangemode="tozero", tickformat=",.2f"),
        yaxis=axis(money("Forecast LTV per user"), rangemode="tozero", tickformat=",.2f"),
        legend={"orientation": "v"})
    return ({"data": traces, "layout": layout},
            f"{len(rows)} forecasts of this dataset's runs have reached a checkpoint; "
            f"{covered} of them held the actual value within their interval.")


def run_history(store: ArtifactStore, run: Mapping[str, Any]) -> dict[str, Any]:
    """``{"convergence", "convergence_note", "actual", "actual_note"}`` for a succeeded run
    (figures are plotly dicts or None; the notes say in words what is, or is not, drawn)."""
    request = run.get("request") if isinstance(run.get("request"), Mapping) else None
    if not request or not request.get("dataset") or not run.get("as_of"):
        note = ("This run names no dataset (it was written by the command line), so no earlier "
                "runs of the same data can be found.")
        return {"convergence": None, "convergence_note": note, "actual": None,
                "actual_note": note}
    by = [str(c) for c in request.get("by") or ["campaign"]]
    horizons = [int(h) for h in request.get("horizons") or [] if isinstance(h, int)]
    horizon = decision.main_horizon(horizons) if horizons else decision.MAIN_HORIZON
    try:
        series = _series(store, run)
    except _READ_ERRORS as error:
        note = f"The store's runs could not be listed: {error}."
        return {"convergence": None, "convergence_note": note, "actual": None, "actual_note": note}
    dataset = request["dataset"]
    if len(series) < 2:
        convergence = None
        convergence_note = (f"This is the only run of dataset {dataset} (grouped by "
                            f"{', '.join(by)}, model {request.get('model')}) up to its as-of "
                            "date in the store, so there is no earlier forecast to compare with.")
    else:
        convergence = _convergence(store, series, by, horizon)
        convergence_note = (f"The forecast LTV at day {horizon} in {len(series)} runs of dataset "
                            f"{dataset} (same grouping and model), by the date their data end."
                            if convergence else "The earlier runs' forecasts could not be read.")
    actual, actual_note = _actuals(store, {str(e["run_id"]) for e in series}, by)
    return {"convergence": convergence, "convergence_note": convergence_note,
            "actual": actual, "actual_note": actual_note}
