"""A version's ``plots.html``: its out-of-fold forecasts against what happened, per horizon.

Self-contained (plotly.js inlined, as the backtest chart is): it opens from the store or the
models page with no network. Built from what the trained model itself records, the out-of-fold
residuals ``ln(actual / forecast)`` per (group, age, horizon) and the metrics, so the plot shows
exactly the numbers the challenger rule judged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["training_plots"]


def training_plots(trained: Any, *, title: str) -> bytes:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ltvcore.lifecycle.training import backtest_summary

    header = trained.header
    grid = [int(h) for h in header["grid"]]
    ages = [int(a) for a in header["ages"]]
    residuals = np.array(header["residuals"], dtype=float)  # (groups, ages, horizons)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=(
        "Out-of-fold forecast ÷ actual, per training group and age",
        "MAPE and interval coverage by horizon"))
    for i, age in enumerate(ages):
        x, y = [], []
        for k, horizon in enumerate(grid[: residuals.shape[2]]):
            found = residuals[:, i, k]
            found = found[np.isfinite(found)]
            x += [horizon] * len(found)
            y += np.exp(-found).tolist()  # residual = ln(actual) − ln(forecast)
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=f"{age} days observed",
                                 marker={"size": 6, "opacity": 0.6}), row=1, col=1)
    fig.add_hline(y=1.0, line_dash="dot", line_color="#52606d", row=1, col=1)
    summary = backtest_summary(trained.metrics)
    horizons = sorted(summary["horizons"], key=int)
    rows = [summary["horizons"][h] for h in horizons]
    days = [int(h) for h in horizons]
    fig.add_trace(go.Scatter(x=days, y=[r["mape"] for r in rows], mode="lines+markers",
                             name="MAPE, history (%)"), row=1, col=2)
    fig.add_trace(go.Scatter(x=days, y=[r["mape_curve"] for r in rows], mode="lines+markers",
                             name="MAPE, curve baseline (%)", line={"dash": "dash"}), row=1, col=2)
    fig.add_trace(go.Scatter(x=days, y=[r["coverage"] for r in rows], mode="lines+markers",
                             name="interval coverage (%)"), row=1, col=2)
    if summary["nominal"] is not None:
        fig.add_hline(y=summary["nominal"], line_dash="dot", line_color="#1a9850", row=1, col=2)
    fig.update_xaxes(title_text="horizon (days)", type="log")
    fig.update_yaxes(title_text="forecast ÷ actual (1 = exact)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="%", row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", height=560)
    return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
