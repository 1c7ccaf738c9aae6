"""Published forecasts against realised LTV, checkpoint by checkpoint, and the drift they show.

A run is scored at every checkpoint it published a value for (:data:`CHECKPOINTS` and its
requested horizons, up to its longest horizon: curve.csv ends there) and that the newer data
have *reached*: every user of the group installed by the run's as-of has been observed that many
days (``realised_ltv``'s ``matured``). The realised side is the backtest's
(:func:`ltvcore.warehouse.model_data.realised_ltv`: the same users, days ``0 … H−1``), and so
are the scores (``error_pct``, ``covered``) and their summary
(:func:`ltvcore.workflow.backtest.summarise`), so a monitor and a backtest of the same forecasts
read the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcore.monitor.runs import PastRun
from ltvcore.monitor.settings import Thresholds
from ltvcore.warehouse.inputs import Inputs
from ltvcore.warehouse.model_data import realised_ltv
from ltvcore.workflow.backtest import summarise

__all__ = ["CHECKPOINTS", "Drift", "FIXED_COLUMNS", "compare", "drifts", "frame", "group_columns",
           "over_time", "score", "summary"]

#: Checkpoints every run is scored at when it published them (besides its own horizons): the
#: early ones mature within weeks, so a model is judged long before its year is up.
CHECKPOINTS = (30, 60, 90, 180, 365)

#: monitor.csv's columns, the run's group columns going after ``by``.
FIXED_COLUMNS = ("run_id", "as_of", "model", "model_version", "by", "horizon_days", "requested",
                 "users", "forecast", "lower", "upper", "actual", "error_pct", "covered")
_HEAD = FIXED_COLUMNS[:5]
_TAIL = FIXED_COLUMNS[5:]


def group_columns(by: list[str]) -> dict[str, str]:
    """Each ``--by`` column's name in monitor.csv: its own, or ``group_<name>`` when it would
    overwrite one of monitor.csv's columns (``as_of`` is a legal installs column, say)."""
    return {c: f"group_{c}" if c in FIXED_COLUMNS else c for c in by}


def checkpoints(run: PastRun) -> list[int]:
    return sorted(h for h in set(CHECKPOINTS) | set(run.horizons) if h <= run.longest)


def _published(run: PastRun, horizons: list[int]) -> pd.DataFrame:
    """The value each group had at each checkpoint as published: forecast.csv at a requested
    horizon, else curve.csv on day ``H − 1`` (the curve is cumulative: day ``H − 1`` closes the
    first ``H`` days, exactly what forecast.csv's horizon ``H`` is)."""
    by = run.by
    columns = [*by, "horizon_days", "ltv", "ltv_lower", "ltv_upper", "users"]
    requested = run.forecast[run.forecast["horizon_days"].isin(horizons)][columns + ["model"]]
    requested = requested.assign(requested=True)
    extra = [h for h in horizons if h not in set(run.horizons)]
    frames = [requested]
    if extra:
        days = run.curve[run.curve["day"].isin([h - 1 for h in extra])]
        days = days.assign(horizon_days=days["day"] + 1).drop(columns="day")
        per_group = run.forecast.drop_duplicates(by)[[*by, "model", "users"]]
        frames.append(days.merge(per_group, on=by, how="inner").assign(requested=False))
    out = pd.concat(frames, ignore_index=True)
    out["horizon_days"] = out["horizon_days"].astype(int)
    return out.rename(columns={"ltv": "forecast", "ltv_lower": "lower", "ltv_upper": "upper",
                               "users": "published_users"})


def score(rows: pd.DataFrame) -> pd.DataFrame:
    """``error_pct`` and ``covered`` as the backtest defines them: the error in percent of the
    realised value (none when nothing was realised: a percentage of 0 is no number), and whether
    the published interval held the realised value."""
    out = rows.copy()
    actual = out["actual"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["error_pct"] = np.where(actual > 0, (out["forecast"] - actual) / actual * 100, np.nan)
    out["covered"] = (out["lower"] <= out["actual"]) & (out["actual"] <= out["upper"])
    return out


def compare(run: PastRun, inputs: Inputs) -> tuple[pd.DataFrame, list[str]]:
    """One row per group × checkpoint reached (monitor.csv's columns), and notes for people.

    A note names each group whose installs the newer data count differently from the run (a
    restated installs file): the realised LTV is over the users the newer data hold.
    """
    horizons = checkpoints(run)
    realised = realised_ltv(inputs, run.by, run.as_of, horizons)
    realised = realised[realised["matured"]].drop(columns="matured")
    if realised.empty:
        return pd.DataFrame(), []
    realised = realised.astype({c: str for c in run.by})
    merged = _published(run, horizons).merge(realised, on=[*run.by, "horizon_days"], how="inner")
    notes = []
    moved = merged.drop_duplicates(run.by)
    moved = moved[moved["published_users"] != moved["users"]]
    for _, row in moved.iterrows():
        label = ", ".join(f"{c}={row[c]}" for c in run.by)
        notes.append(f"run {run.run_id}, {label}: {int(row['published_users']):,} users in the "
                     f"run, {int(row['users']):,} in the newer data installed by {run.as_of}")
    merged = score(merged.drop(columns="published_users"))
    merged = merged.assign(run_id=run.run_id, as_of=run.as_of, model_version=run.model_version,
                           by=",".join(run.by))
    names = group_columns(run.by)
    merged = merged.rename(columns=names)
    ordered = [*_HEAD, *names.values(), *_TAIL]
    return merged[ordered].sort_values([*names.values(), "horizon_days"], kind="stable"), notes


def frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """monitor.csv: every run's rows, group columns of all runs between ``by`` and
    ``horizon_days`` (blank where a run did not group by one), runs in as-of order."""
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=list(FIXED_COLUMNS))
    groups: list[str] = []
    for part in parts:
        groups += [c for c in part.columns if c not in FIXED_COLUMNS and c not in groups]
    out = pd.concat(parts, ignore_index=True)
    for column in groups:
        out[column] = out[column].fillna("")
    return out[[*_HEAD, *groups, *_TAIL]].sort_values(["as_of", "run_id"], kind="stable") \
        .reset_index(drop=True)


def _summarised(rows: pd.DataFrame) -> pd.DataFrame:
    """The backtest's summary (per ``model`` × horizon) of monitor rows, per model version."""
    shaped = rows.rename(columns={"forecast": "ltv", "lower": "ltv_lower", "upper": "ltv_upper"})
    shaped = shaped.assign(model=shaped["model_version"])
    table = summarise(shaped)
    return table.drop(columns="checkpoint").rename(columns={"model": "model_version"})


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model version × checkpoint over all runs: forecasts scored, MAPE, bias, coverage and
    interval width (percent), the runs and as-of span behind them, and the nominal coverage."""
    if rows.empty:
        return pd.DataFrame(columns=["model_version", "horizon_days", "forecasts", "mape", "bias",
                                     "coverage", "width", "runs", "first_as_of", "last_as_of"])
    table = _summarised(rows)
    extra = (rows[rows["actual"] > 0].groupby(["model_version", "horizon_days"])
             .agg(runs=("run_id", "nunique"), first_as_of=("as_of", "min"),
                  last_as_of=("as_of", "max")).reset_index())
    return table.merge(extra, on=["model_version", "horizon_days"], how="left")


def over_time(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model version × as-of × checkpoint: the same scores, to see error move over time."""
    parts = []
    for as_of, part in rows.groupby("as_of", sort=True):
        table = _summarised(part)
        if not table.empty:
            parts.append(table.assign(as_of=as_of))
    if not parts:
        return pd.DataFrame(columns=["model_version", "as_of", "horizon_days", "forecasts",
                                     "mape", "bias", "coverage", "width"])
    out = pd.concat(parts, ignore_index=True)
    return out[["model_version", "as_of", "horizon_days", "forecasts", "mape", "bias",
                "coverage", "width"]].sort_values(["model_version", "horizon_days", "as_of"],
                                                  kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Drift:
    """A model version whose recent forecasts at one checkpoint erred past a threshold."""

    model_version: str
    horizon_days: int
    mape: float
    bias: float
    forecasts: int
    runs: tuple[str, ...]
    first_as_of: str
    last_as_of: str
    reasons: tuple[str, ...]


def drifts(rows: pd.DataFrame, limits: Thresholds) -> list[Drift]:
    """Each model version × checkpoint whose forecasts from its ``recent_runs`` latest as-of
    dates (those that reached the checkpoint) have a MAPE above ``mape_alert`` or a bias beyond
    ``±bias_alert``; "recent" so that a model that has drifted is flagged while its old, good
    forecasts would still average the drift away."""
    found = []
    scored = rows[rows["actual"] > 0]
    for (version, horizon), part in scored.groupby(["model_version", "horizon_days"], sort=True):
        dates = sorted(part["as_of"].unique())[-limits.recent_runs:]
        recent = part[part["as_of"].isin(dates)]
        (stats,) = _summarised(recent).itertuples(index=False)
        reasons = []
        if stats.mape > limits.mape_alert:
            reasons.append(f"MAPE {stats.mape:.1f}% above {limits.mape_alert:g}%")
        if abs(stats.bias) > limits.bias_alert:
            reasons.append(f"bias {stats.bias:+.1f}% beyond ±{limits.bias_alert:g}%")
        if reasons:
            runs = tuple(recent.sort_values(["as_of", "run_id"])["run_id"].drop_duplicates())
            found.append(Drift(model_version=str(version), horizon_days=int(horizon),
                               mape=float(stats.mape), bias=float(stats.bias),
                               forecasts=int(stats.forecasts), runs=runs, first_as_of=dates[0],
                               last_as_of=dates[-1], reasons=tuple(reasons)))
    return found
