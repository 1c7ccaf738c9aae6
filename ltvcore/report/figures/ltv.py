"""LTV curves with interval bands: observed days solid, projected days dashed.

Each group's curve turns dashed at its oldest cohort's age at as-of (the last day any of its
users was seen); the region from the earliest such day on is shaded and named "projected", so a
reader sees at a glance how much of a curve is data and how much is model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ltvcore.charts import (
    PALETTE,
    PROJECTED_FILL,
    VISIBLE_GROUPS,
    axis,
    base_layout,
    chart_text,
    group_label,
    money,
    num,
    rgba,
    visibility,
)
from ltvcore.report.data import RunView

__all__ = ["CurvesFigure", "MAX_CURVES", "curves_figure", "projected_region", "ranked_groups"]

#: The LTV chart offers at most this many groups (the highest LTV at the longest horizon).
MAX_CURVES = 10


@dataclass(frozen=True)
class CurvesFigure:
    figure: dict[str, Any]
    shown: int  # groups in the legend
    total: int
    visible: int  # groups drawn before the reader picks others in the legend
    split: bool  # observed and projected days are drawn apart


def ranked_groups(run: RunView) -> list[tuple[str, ...]]:
    """Group keys by LTV at the longest horizon, highest first: the order every chart shows."""
    last = run.rows_at(run.max_horizon).sort_values("ltv", ascending=False, na_position="last",
                                                    kind="stable")
    return list(dict.fromkeys(run.key(row) for _, row in last.iterrows()))


def projected_region(start: int, end: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The shaded "projected" band from day ``start`` to ``end`` and its caption."""
    shape = {"type": "rect", "xref": "x", "yref": "paper", "x0": start, "x1": end, "y0": 0,
             "y1": 1, "fillcolor": PROJECTED_FILL, "line": {"width": 0}, "layer": "below"}
    caption = {"xref": "x", "yref": "paper", "x": start, "y": 0.02, "xanchor": "left",
               "yanchor": "bottom", "text": f" projected after day {start} →", "showarrow": False,
               "font": {"size": 11, "color": "#52606d"}}
    return shape, caption


def _split(days: list[int], values: list[float | None], last: int | None
           ) -> tuple[tuple[list[int], list[float | None]], tuple[list[int], list[float | None]]]:
    """(observed, projected) parts of a curve; both hold day ``last`` so the line is unbroken."""
    if last is None:
        return (days, values), ([], [])
    cut = sum(1 for d in days if d <= last)
    return (days[:cut], values[:cut]), (days[max(cut - 1, 0):], values[max(cut - 1, 0):])


def curves_figure(run: RunView) -> CurvesFigure | None:
    """LTV curves with interval bands, for the top groups by LTV at the longest horizon."""
    keys = ranked_groups(run)
    total = len(keys)
    curve = run.curve
    by_key: dict[tuple[str, ...], Any] = {tuple(str(v) for v in (k if isinstance(k, tuple) else (k,))): part
              for k, part in curve.groupby(run.by, sort=False)} if run.by else {(): curve}
    traces: list[dict[str, Any]] = []
    shown = 0
    starts: list[int] = []
    last_day = 0
    for key in keys:
        if shown == MAX_CURVES:
            break
        part = by_key.get(key)
        if part is None or part.empty:
            continue
        part = part.sort_values("day")
        colour = PALETTE[shown % len(PALETTE)]
        name = chart_text(group_label(key)) or "all"
        days = [int(d) for d in part["day"]]
        last_day = max(last_day, days[-1])
        observed_until = run.last_observed_day(key)
        if observed_until is not None and observed_until < days[-1]:
            starts.append(observed_until)
        else:
            observed_until = None
        group = f"g{shown}"
        visible = visibility(shown)
        traces.append({"type": "scatter", "mode": "lines", "x": days,
                       "y": [num(v, 5) for v in part["ltv_upper"]], "line": {"width": 0},
                       "legendgroup": group, "showlegend": False, "hoverinfo": "skip",
                       "visible": visible})
        traces.append({"type": "scatter", "mode": "lines", "x": days,
                       "y": [num(v, 5) for v in part["ltv_lower"]], "line": {"width": 0},
                       "fill": "tonexty", "fillcolor": rgba(colour, 0.16),
                       "legendgroup": group, "showlegend": False, "hoverinfo": "skip",
                       "visible": visible})
        values = [num(v, 5) for v in part["ltv"]]
        bands = [[num(lo, 5), num(hi, 5)] for lo, hi in zip(part["ltv_lower"], part["ltv_upper"],
                                                            strict=True)]
        (seen_x, seen_y), (ahead_x, ahead_y) = _split(days, values, observed_until)
        hover = "%{y:,.3f} (%{customdata[0]:,.3f} – %{customdata[1]:,.3f})"
        traces.append({
            "type": "scatter", "mode": "lines", "name": name, "x": seen_x, "y": seen_y,
            "line": {"width": 2.4, "color": colour}, "legendgroup": group, "visible": visible,
            "customdata": bands[:len(seen_x)],
            "hovertemplate": hover + ("<extra>observed</extra>" if ahead_x else ""),
        })
        if ahead_x:
            traces.append({
                "type": "scatter", "mode": "lines", "name": name, "x": ahead_x, "y": ahead_y,
                "line": {"width": 2.2, "color": colour, "dash": "dash"}, "legendgroup": group,
                "showlegend": False, "visible": visible,
                "customdata": bands[len(seen_x) - 1:],
                "hovertemplate": hover + "<extra>projected</extra>",
            })
        shown += 1
    if not traces:
        return None
    shapes: list[dict[str, Any]] = [
        {"type": "line", "xref": "x", "yref": "paper", "x0": h, "x1": h, "y0": 0, "y1": 1,
         "line": {"color": "#9aa5b1", "width": 1, "dash": "dot"}} for h in run.horizons]
    annotations = [{"xref": "x", "yref": "paper", "x": h, "y": 1, "yanchor": "bottom",
                    "text": f"{h}d", "showarrow": False, "font": {"size": 11, "color": "#52606d"}}
                   for h in run.horizons]
    if starts:
        shape, caption = projected_region(min(starts), last_day)
        shapes.insert(0, shape)
        annotations.append(caption)
    layout = base_layout(
        height=480,
        hovermode="x unified",
        xaxis=axis("Days since install", rangemode="tozero"),
        yaxis=axis(money("Cumulative LTV per installed user"), rangemode="tozero",
                   tickformat=",.2f"),
        legend={"title": {"text": chart_text(" · ".join(run.by))}, "orientation": "v",
                "itemclick": "toggle", "itemdoubleclick": "toggleothers"},
        shapes=shapes,
        annotations=annotations,
    )
    return CurvesFigure({"data": traces, "layout": layout}, shown, total,
                        min(shown, VISIBLE_GROUPS), bool(starts))
