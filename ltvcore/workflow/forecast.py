"""The forecast step: inputs + request → forecast table, daily curve and parameters.

One function per stage so the local CLI, the HTTP worker and the SageMaker job call the same
code: :func:`load_inputs` reads and validates files, :func:`run_forecast` computes, and
:func:`~ltvcore.workflow.artifacts.write_outputs` writes the files (the manifest comes last, from the store).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ltvcore.data.cohorts import attach_installs, build_cohorts
from ltvcore.data.io import read_events, read_installs, read_spend
from ltvcore.errors import InputError
from ltvcore.models.registry import ModelOptions, build_model
from ltvcore.payback import payback_columns
from ltvcore.request import ForecastRequest, check_as_of

__all__ = ["ForecastResult", "Inputs", "cut_inputs", "load_inputs", "run_forecast"]

MIN_FIT_DAY = 2  # three observed days (0, 1, 2) at least: the rational fit has three parameters
MAX_HISTORY_DAYS = 7305  # 20 years


@dataclass
class Inputs:
    """Validated input tables; ``events`` are all events (not yet cut at as-of)."""

    events: pd.DataFrame
    installs: pd.DataFrame | None
    spend: pd.DataFrame | None
    names: dict = field(default_factory=dict)


@dataclass
class ForecastResult:
    forecast: pd.DataFrame
    curve: pd.DataFrame
    params: dict
    warnings: list[str]
    as_of: str
    timings: dict[str, float]


def load_inputs(events: str | Path, installs: str | Path | None = None,
                spend: str | Path | None = None) -> Inputs:
    """Read and validate the input files (docs/interface.md, inputs)."""
    names = {"events": Path(events).name}
    frame = read_events(events)
    installs_frame = None
    if installs is not None:
        names["installs"] = Path(installs).name
        installs_frame = read_installs(installs)
    spend_frame = None
    if spend is not None:
        names["spend"] = Path(spend).name
        spend_frame = read_spend(spend)
    return Inputs(events=frame, installs=installs_frame, spend=spend_frame, names=names)


def cut_inputs(inputs: Inputs, request: ForecastRequest) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    events = inputs.events
    last = events["event_date"].max()
    if request.as_of is None:
        as_of = last
    else:
        as_of = np.datetime64(request.as_of, "D")
        check_as_of(request.as_of, np.datetime_as_string(np.datetime64(last, "D"), unit="D"))
    events = events[events["event_date"].to_numpy() <= as_of].reset_index(drop=True)
    if events.empty:
        raise InputError(f"no events on or before as-of {np.datetime_as_string(as_of, 'D')}",
                         file=inputs.names["events"], column="event_date")
    installs = inputs.installs
    if installs is not None:
        installs = installs[installs["install_date"].to_numpy() <= as_of].reset_index(drop=True)
    _check_span(inputs, np.datetime64(as_of, "D"), blame_last=request.as_of is None)
    return events, installs, np.datetime_as_string(np.datetime64(as_of, "D"), unit="D")


def _check_span(inputs: Inputs, as_of: np.datetime64, *, blame_last: bool) -> None:
    """At most :data:`MAX_HISTORY_DAYS` from the first install to as-of.

    Cohort tables grow with the days between them; one mistyped year (2096 for 2026) would
    otherwise cost minutes and read as decades of inactivity.
    """
    if inputs.installs is not None and len(inputs.installs):
        starts, start_file, start_column = (inputs.installs["install_date"].to_numpy(),
                                            inputs.names.get("installs", "installs"), "install_date")
    else:
        starts, start_file, start_column = (inputs.events["event_date"].to_numpy(),
                                            inputs.names["events"], "event_date")
    first = starts.min().astype("datetime64[D]")
    span = int((as_of - first) / np.timedelta64(1, "D"))
    if span <= MAX_HISTORY_DAYS:
        return
    limit = f"at most {MAX_HISTORY_DAYS:,} days (20 years) of history can be forecast"
    if blame_last:
        dates = inputs.events["event_date"].to_numpy()
        row = int(np.argmax(dates)) + 1
        raise InputError(f"{as_of} is {span:,} days after the first install {first}; {limit} "
                         "(fix the date, or pass --as-of)", file=inputs.names["events"],
                         column="event_date", row=row)
    row = int(np.argmin(starts)) + 1
    raise InputError(f"{first} is {span:,} days before as-of {as_of}; {limit}",
                     file=start_file, column=start_column, row=row)


def _check_by(request: ForecastRequest, inputs: Inputs) -> None:
    available = ["campaign"] if inputs.installs is None else list(inputs.installs.columns[2:])
    for column in request.by:
        if column not in available:
            where = inputs.names.get("installs", "installs (none given)")
            raise InputError(f"--by column '{column}' is not an installs column "
                             f"(available: {', '.join(available)})", file=where, column=column)


def run_forecast(inputs: Inputs, request: ForecastRequest, model: str | None = None, *,
                 cache: bool = True) -> ForecastResult:
    """Fit the requested model on data up to as-of and forecast every horizon.

    ``model`` overrides ``request.model`` with any name :func:`build_model` knows, such as
    auto's candidates (``"btyd:map"``); the benchmarks score those side by side.
    """
    timings = {}
    start = time.perf_counter()
    _check_by(request, inputs)
    events, installs, as_of = cut_inputs(inputs, request)
    installs, user, age = attach_installs(events, installs, events_name=inputs.names["events"],
                                          installs_name=inputs.names.get("installs", "installs"))
    by = list(request.by)
    data = build_cohorts(events, installs, user, age, by=by, as_of=np.datetime64(as_of),
                         observe_days=request.observe_days, window_days=request.window_days)
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
    fitted = build_model(model or request.model, options).fit(data)
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
    }
    if fitted.selection is not None:
        params["model_selection"] = fitted.selection
    return ForecastResult(forecast=forecast, curve=daily, params=params, warnings=warnings,
                          as_of=as_of, timings=timings)


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
