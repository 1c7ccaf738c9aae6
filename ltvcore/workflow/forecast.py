"""The forecast step: inputs + request → forecast table, daily curve and parameters.

One function per stage so the local CLI, the HTTP worker and the SageMaker job call the same
code: :func:`load_inputs` reads and validates files, :func:`run_forecast` computes, and
:func:`~ltvcore.workflow.artifacts.write_outputs` writes the files (the manifest comes last, from the store).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltvcore import decision
from ltvcore.errors import InputError
from ltvcore.lifecycle.refs import is_ref
from ltvcore.models.registry import ModelOptions, build_model
from ltvcore.payback import payback_columns
from ltvcore.request import ForecastRequest, check_as_of
from ltvcore.warehouse.events import batches
from ltvcore.warehouse.inputs import Inputs, from_frames, load_inputs
from ltvcore.warehouse.model_data import cohort_data

__all__ = ["ForecastResult", "Inputs", "from_frames", "load_inputs", "resolve_as_of", "run_forecast"]

MIN_FIT_DAY = 2  # three observed days (0, 1, 2) at least: the rational fit has three parameters
MAX_HISTORY_DAYS = 7305  # 20 years


@dataclass
class ForecastResult:
    forecast: pd.DataFrame
    curve: pd.DataFrame
    params: dict
    warnings: list[str]
    as_of: str
    timings: dict[str, float]
    observed: Any = None  # the groups' observed activity (ltvcore.report.observed), for the report


def resolve_as_of(inputs: Inputs, request: ForecastRequest) -> str:
    """The request's as-of, or the data's last event date; checked against the data."""
    if request.as_of is None:
        as_of = inputs.last_event
    else:
        as_of = request.as_of
        check_as_of(request.as_of, inputs.last_event)
    if as_of < inputs.first_event:
        raise InputError(f"no events on or before as-of {as_of}", file=inputs.names["events"],
                         column="event_date")
    _check_span(inputs, as_of, blame_last=request.as_of is None)
    return as_of


def _check_span(inputs: Inputs, as_of: str, *, blame_last: bool) -> None:
    """At most :data:`MAX_HISTORY_DAYS` from the first install to as-of.

    Cohort tables grow with the days between them; one mistyped year (2096 for 2026) would
    otherwise cost minutes and read as decades of inactivity.
    """
    first, row = inputs.first_install()
    span = int((np.datetime64(as_of, "D") - np.datetime64(first, "D")) / np.timedelta64(1, "D"))
    if span <= MAX_HISTORY_DAYS:
        return
    limit = f"at most {MAX_HISTORY_DAYS:,} days (20 years) of history can be forecast"
    events_name = inputs.names["events"]
    if blame_last:
        raise InputError(f"{as_of} is {span:,} days after the first install {first}; {limit} "
                         "(fix the date, or pass --as-of)", file=events_name,
                         column="event_date", row=_first_row_on(inputs, as_of))
    if row is None:
        row = _first_row_on(inputs, first)
        start_file, start_column = events_name, "event_date"
    else:
        start_file, start_column = inputs.names.get("installs", "installs"), "install_date"
    raise InputError(f"{first} is {span:,} days before as-of {as_of}; {limit}",
                     file=start_file, column=start_column, row=row)


def _first_row_on(inputs: Inputs, date: str) -> int | None:
    """The first events-file row dated ``date`` (streamed; ``None`` for in-memory inputs)."""
    path = inputs.paths.get("events")
    if path is None:
        return None
    from ltvcore.data import io

    offset = 0
    for table in batches(path, ["event_date"]):
        days = io._dates(table, "event_date", inputs.names["events"])
        hit = np.flatnonzero(days == np.datetime64(date, "D"))
        if hit.size:
            return offset + int(hit[0]) + 1
        offset += table.num_rows
    return None


def _check_by(request: ForecastRequest, inputs: Inputs) -> None:
    available = inputs.installs_columns[2:] if inputs.installs_columns is not None else ["campaign"]
    for column in request.by:
        if column not in available:
            where = inputs.names.get("installs", "installs (none given)")
            raise InputError(f"--by column '{column}' is not an installs column "
                             f"(available: {', '.join(available)})", file=where, column=column)


def run_forecast(inputs: Inputs, request: ForecastRequest, model: str | None = None, *,
                 cache: bool = True, shard: tuple[int, int] | None = None,
                 store=None) -> ForecastResult:
    """Fit the requested model on data up to as-of and forecast every horizon.

    ``model`` overrides ``request.model`` with any name :func:`build_model` knows, such as
    auto's candidates (``"btyd:map"``); the benchmarks score those side by side. ``shard``
    ``(index, count)`` forecasts only that shard's groups. A registered model
    (``NAME@champion`` / ``NAME@VERSION``, :mod:`ltvcore.lifecycle`) is loaded, verified, from
    ``store`` (the run's store; default ``$LTV_STORE``), and ``params.json`` records the exact
    version as ``model_version``.
    """
    timings = {}
    start = time.perf_counter()
    try:  # recorded with the run, so that its labels never change with the team's settings
        decision_limits = decision.thresholds()
    except ValueError as error:
        raise InputError(str(error)) from None
    _check_by(request, inputs)
    as_of = resolve_as_of(inputs, request)
    by = list(request.by)
    data = cohort_data(inputs, by=by, as_of=as_of, observe_days=request.observe_days,
                       window_days=request.window_days, shard=shard)
    timings["cohorts_s"] = time.perf_counter() - start

    warnings: list[str] = []
    fit_ok = data.last_day >= MIN_FIT_DAY
    for young in np.flatnonzero(~fit_ok):
        label = _label(data.groups.iloc[young], by)
        warnings.append(f"{label}: no cohort with {max(request.observe_days, MIN_FIT_DAY + 1)} "
                        f"observed days by {as_of}; not forecast")
    if not fit_ok.any():
        raise InputError(f"no group has a cohort with at least {max(request.observe_days, MIN_FIT_DAY + 1)} "
                         f"observed days by as-of {as_of} (lower --observe-days or move --as-of)",
                         column="observe_days")
    data = _subset(data, fit_ok)

    start = time.perf_counter()
    options = ModelOptions(retention=request.retention, confidence=request.confidence,
                           seed=request.seed, horizons=request.horizons, cache=cache)
    name = model or request.model
    model_version = None
    if is_ref(name):
        from ltvcore.lifecycle.forecasting import registered_model

        estimator, model_version = registered_model(name, store, options)
    else:
        estimator = build_model(name, options)
    fitted = estimator.fit(data)
    warnings.extend(fitted.warnings)
    n_days = max(request.horizons)
    curve = fitted.predict(n_days)
    timings["fit_s"] = time.perf_counter() - start

    keys = data.groups[by].reset_index(drop=True)
    horizons = np.asarray(request.horizons)
    ltv, lower, upper = curve.at(horizons)
    n_groups = data.n_groups
    forecast = keys.loc[np.repeat(np.arange(n_groups), len(horizons))].reset_index(drop=True)
    forecast["horizon_days"] = np.tile(horizons, n_groups)
    forecast["users"] = np.repeat(data.groups["users"].to_numpy(), len(horizons))
    forecast["ltv"] = ltv.ravel()
    forecast["ltv_lower"] = lower.ravel()
    forecast["ltv_upper"] = upper.ravel()
    forecast["model"] = fitted.name
    days: dict[str, np.ndarray] = {}
    if inputs.spend is not None:
        forecast = _with_roas(forecast, inputs.spend, by, warnings)
        if "roas" in forecast.columns:
            forecast, days = _with_payback(forecast, curve, data.groups["users"].to_numpy(),
                                           request)

    daily = keys.loc[np.repeat(np.arange(n_groups), n_days)].reset_index(drop=True)
    daily["day"] = np.tile(np.arange(n_days), n_groups)
    daily["ltv"] = curve.ltv.ravel()
    daily["ltv_lower"] = curve.lower.ravel()
    daily["ltv_upper"] = curve.upper.ravel()

    for g in range(n_groups):
        label = _label(data.groups.iloc[g], by)
        if data.revenue[g].sum() == 0:
            warnings.append(f"{label}: no revenue observed; LTV is 0 until users pay")
        if data.active[g, 1:].sum() == 0:
            warnings.append(f"{label}: no activity after day 0; retention is 0")
        if data.groups["fit_users"].iat[g] < 100:
            warnings.append(f"{label}: only {data.groups['fit_users'].iat[g]} users feed the fit; "
                            "expect a wide interval")

    params = {
        "groups": [{"key": {c: keys[c].iat[g] for c in by}, "models": fitted.params(g),
                    **_payback_days(days, g, request.target_roas)}
                   for g in range(n_groups)],
        "as_of": as_of,
        "request": request.normalised(),
        "warnings": warnings,
        "assumptions": fitted.assumptions,
        decision.RECORD_KEY: asdict(decision_limits),
    }
    if fitted.selection is not None:
        params["model_selection"] = fitted.selection
    if model_version is not None:
        params["model_version"] = model_version
    from ltvcore.report.observed import observed_of

    return ForecastResult(forecast=forecast, curve=daily, params=params, warnings=warnings,
                          as_of=as_of, timings=timings,
                          observed=None if shard is not None else observed_of(data, by))


def _label(row: pd.Series, by: list[str]) -> str:
    return ", ".join(f"{c}={row[c]}" for c in by)


def _subset(data, keep: np.ndarray):
    """The cohort data restricted to groups ``keep`` (users of dropped groups removed)."""
    if keep.all():
        return data
    from dataclasses import replace

    new_index = np.cumsum(keep) - 1
    user_keep = keep[data.user_group]
    user_map = np.cumsum(user_keep) - 1
    day_keep = user_keep[data.user_index]
    return replace(
        data, groups=data.groups[keep].reset_index(drop=True), at_risk=data.at_risk[keep],
        active=data.active[keep], payers=data.payers[keep], revenue=data.revenue[keep],
        last_day=data.last_day[keep], user_group=new_index[data.user_group[user_keep]],
        user_age=data.user_age[user_keep], user_index=user_map[data.user_index[day_keep]],
        user_day=data.user_day[day_keep], user_revenue=data.user_revenue[day_keep],
    )


def _with_roas(forecast: pd.DataFrame, spend: pd.DataFrame, by: list[str],
               warnings: list[str]) -> pd.DataFrame:
    if by != ["campaign"]:
        warnings.append("spend is per campaign, so ROAS is given only with --by campaign")
        return forecast
    merged = forecast.merge(spend, on="campaign", how="left")
    cost = merged["spend"].to_numpy()
    value = merged["users"].to_numpy()
    has_cost = np.isfinite(cost) & (cost > 0)
    for column, source in (("roas", "ltv"), ("roas_lower", "ltv_lower"), ("roas_upper", "ltv_upper")):
        merged[column] = np.where(has_cost, merged[source].to_numpy() * value / np.where(has_cost, cost, 1.0), np.nan)
    unpaid = sorted(set(merged.loc[~has_cost, "campaign"]))
    if unpaid:
        warnings.append(f"no spend for {', '.join(unpaid)}: ROAS left empty")
    unknown = sorted(set(spend["campaign"]) - set(forecast["campaign"]))
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        warnings.append(f"spend for campaigns not forecast here ({shown}): ignored")
    return merged



def _with_payback(forecast: pd.DataFrame, curve, users: np.ndarray,
                  request: ForecastRequest) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """``p_payback`` (a forecast.csv column) and each group's days to payback (for params.json:
    forecast.csv's columns are the interface's), from the daily curve; ``forecast`` is
    group-major."""
    n_horizons = len(request.horizons)
    spend = forecast["spend"].to_numpy(dtype=float)[::n_horizons]
    columns = payback_columns(curve, users, spend, np.asarray(request.horizons),
                              request.target_roas, request.confidence)
    out = forecast.copy()
    out["p_payback"] = columns.pop("p_payback").ravel()
    return out, columns


def _payback_days(days: dict[str, np.ndarray], g: int, target_roas: float) -> dict:
    """Group ``g``'s ``"payback"`` entry of params.json (none without spend)."""
    if not days:
        return {}
    value = {name: (None if np.isnan(v[g]) else int(v[g])) for name, v in days.items()}
    return {"payback": {"target_roas": target_roas, **value}}
