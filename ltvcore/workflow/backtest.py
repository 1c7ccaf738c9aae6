"""Backtests: forecast as of past dates, compare with what was realised afterwards.

For each as-of date the data are cut there (nothing later reaches a forecast: the same
``run_forecast`` as production), every requested model forecasts, and each group whose users
have all reached a horizon by the end of the data is scored against its realised LTV at that
horizon. Early checkpoints (day 30 and 60) mature first, so a forecast can be judged long
before its year is up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.warehouse.model_data import realised_ltv
from ltvcore.workflow.forecast import Inputs, run_forecast

__all__ = ["CHECKPOINTS", "backtest", "realised_ltv", "schedule", "summarise", "write_chart"]

CHECKPOINTS = (30, 60)


def schedule(inputs: Inputs, *, every: int, first: str | None = None, last: str | None = None,
             min_horizon: int = 30) -> list[str]:
    """As-of dates every ``every`` days, ending where the shortest horizon can still mature."""
    end = np.datetime64(inputs.last_event, "D")
    start_default = np.datetime64(inputs.first_install()[0], "D") + np.timedelta64(6, "D")
    start = np.datetime64(first, "D") if first else start_default
    stop = np.datetime64(last, "D") if last else end - np.timedelta64(min_horizon, "D")
    if stop < start:
        raise InputError(f"the data end on {end} and no as-of date leaves {min_horizon} days to "
                         "check a forecast", column="as_of_dates")
    dates = np.arange(start, stop + np.timedelta64(1, "D"),
                      np.timedelta64(every, "D"))
    return [str(d) for d in dates]


def backtest(inputs: Inputs, request: ForecastRequest, *, as_of_dates: list[str],
             models: list[str]) -> pd.DataFrame:
    """One row per as-of × model × group × horizon (including the checkpoints)."""
    by = list(request.by)
    horizons = tuple(sorted(set(request.horizons) | set(CHECKPOINTS)))
    rows = []
    for as_of in as_of_dates:
        actual = realised_ltv(inputs, by, as_of, horizons)
        actual = actual[actual["matured"]].drop(columns="matured")
        if actual.empty:
            continue
        for model in models:
            req = request.replace(as_of=as_of, model=model, horizons=horizons)
            try:
                forecast = run_forecast(inputs, req).forecast
            except InputError as exc:
                raise InputError(f"as of {as_of}: {exc.reason}", file=exc.file,
                                 column=exc.column, row=exc.row) from None
            forecast = forecast.astype({c: str for c in by})
            merged = forecast[[*by, "horizon_days", "ltv", "ltv_lower", "ltv_upper"]].merge(
                actual, on=[*by, "horizon_days"], how="inner")
            merged.insert(0, "model", model)
            merged.insert(0, "as_of", as_of)
            rows.append(merged)
    if not rows:
        raise InputError("no group reached a horizon after any as-of date: the data must run "
                         "past as-of by at least the shortest checkpoint (30 days)",
                         column="as_of_dates")
    out = pd.concat(rows, ignore_index=True)
    out["error_pct"] = np.where(out["actual"] > 0, (out["ltv"] - out["actual"]) / out["actual"] * 100, np.nan)
    out["covered"] = (out["ltv_lower"] <= out["actual"]) & (out["actual"] <= out["ltv_upper"])
    return out


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model × horizon: forecasts scored, MAPE, bias, interval coverage and width."""
    scored = rows[rows["actual"] > 0].assign(
        ape=lambda r: r["error_pct"].abs(),
        width=lambda r: (r["ltv_upper"] - r["ltv_lower"]) / r["actual"] * 100)
    table = (scored.groupby(["model", "horizon_days"])
             .agg(forecasts=("ape", "size"), mape=("ape", "mean"), bias=("error_pct", "mean"),
                  coverage=("covered", "mean"), width=("width", "median"))
             .reset_index())
    table["coverage"] *= 100
    table["checkpoint"] = table["horizon_days"].isin(CHECKPOINTS)
    return table


def write_chart(summary: pd.DataFrame, path: Path) -> Path:
    """MAPE and coverage by horizon per model, as a self-contained offline HTML page."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("MAPE by horizon", "Interval coverage"))
    for model, part in summary.groupby("model"):
        fig.add_trace(go.Scatter(x=part["horizon_days"], y=part["mape"], mode="lines+markers",
                                 name=f"{model}", legendgroup=model), row=1, col=1)
        fig.add_trace(go.Scatter(x=part["horizon_days"], y=part["coverage"], mode="lines+markers",
                                 name=f"{model}", legendgroup=model, showlegend=False), row=1, col=2)
    fig.update_xaxes(title_text="horizon (days)")
    fig.update_yaxes(title_text="MAPE (%)", row=1, col=1)
    fig.update_yaxes(title_text="covered (%)", row=1, col=2)
    fig.update_layout(title="Backtest", template="plotly_white")
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path
