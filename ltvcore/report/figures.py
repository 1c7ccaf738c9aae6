"""Plotly figures of a run, as plain JSON-ready dicts, drawn by the plotly.js embedded in the page.

Text that reaches a chart (group names) is HTML-escaped by :func:`chart_text`: plotly interprets
a subset of HTML in labels (``<a href>``, ``<b>``, ...) and decodes ``&lt;``, ``&gt;``, ``&amp;``,
so escaped names display literally (quotes stay as they are: plotly would show ``&quot;`` raw, and
without ``<`` no tag can start).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ltvcore.report.data import RunView

__all__ = ["CurvesFigure", "RoasFigure", "curves_figure", "roas_figure", "group_label",
           "chart_text", "MAX_CURVES", "PALETTE"]

#: The LTV chart shows at most this many groups (the highest LTV at the longest horizon).
MAX_CURVES = 10
#: Above this many points the ROAS chart names only the promising ones (hover names all).
MAX_POINT_LABELS = 15
#: Tableau 10: distinguishable, and readable for most colour-vision deficiencies.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
PROMISING_COLOUR = "#1a9850"
OTHER_COLOUR = "#7f8c9b"
WATCH_COLOUR = "#b07d00"
CUT_COLOUR = "#c0392b"
BREAK_EVEN_COLOUR = "#d73027"
_FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif",
         "size": 13, "color": "#1f2933"}


def group_label(key: tuple[str, ...]) -> str:
    """A group's display name (unescaped): its ``--by`` values joined by a middle dot."""
    return " · ".join(v if v != "" else "(blank)" for v in key)


def chart_text(text: str) -> str:
    """Text for a plotly label: shown literally, never interpreted as markup."""
    return html.escape(text, quote=False)


def num(value: Any, digits: int = 6) -> float | None:
    """A JSON-safe number: NaN becomes null, floats keep ``digits`` significant digits."""
    if value is None or value is pd.NA:
        return None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return None
    return float(f"{value:.{digits}g}")


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _base_layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": _FONT,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 70, "r": 30, "t": 48, "b": 60},
        "hoverlabel": {"namelength": -1},
    }
    layout.update(extra)
    return layout


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    axis = {"title": {"text": title}, "gridcolor": "#e5e9f0", "zerolinecolor": "#c9d1dc",
            "linecolor": "#c9d1dc", "showline": True, "automargin": True}
    axis.update(extra)
    return axis


@dataclass(frozen=True)
class CurvesFigure:
    figure: dict[str, Any]
    shown: int
    total: int


def curves_figure(run: RunView) -> CurvesFigure | None:
    """LTV curves with interval bands, for the top groups by LTV at the longest horizon."""
    last = run.rows_at(run.max_horizon).sort_values("ltv", ascending=False, na_position="last",
                                                    kind="stable")
    keys = list(dict.fromkeys(run.key(row) for _, row in last.iterrows()))
    total = len(keys)
    curve = run.curve
    by_key: dict[tuple[str, ...], Any] = {tuple(str(v) for v in (k if isinstance(k, tuple) else (k,))): part
              for k, part in curve.groupby(run.by, sort=False)} if run.by else {(): curve}
    traces: list[dict[str, Any]] = []
    shown = 0
    # Many overlapping bands turn into mud: fainter bands when more curves are drawn.
    band_alpha = 0.16 if min(total, MAX_CURVES) <= 4 else 0.08
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
        group = f"g{shown}"
        traces.append({"type": "scatter", "mode": "lines", "x": days,
                       "y": [num(v, 5) for v in part["ltv_upper"]], "line": {"width": 0},
                       "legendgroup": group, "showlegend": False, "hoverinfo": "skip"})
        traces.append({"type": "scatter", "mode": "lines", "x": days,
                       "y": [num(v, 5) for v in part["ltv_lower"]], "line": {"width": 0},
                       "fill": "tonexty", "fillcolor": _rgba(colour, band_alpha),
                       "legendgroup": group, "showlegend": False, "hoverinfo": "skip"})
        traces.append({
            "type": "scatter", "mode": "lines", "name": name, "x": days,
            "y": [num(v, 5) for v in part["ltv"]], "line": {"width": 2.2, "color": colour},
            "legendgroup": group,
            "customdata": [[num(lo, 5), num(hi, 5)] for lo, hi in zip(
                part["ltv_lower"], part["ltv_upper"], strict=True)],
            "hovertemplate": "%{y:,.3f} (%{customdata[0]:,.3f} – %{customdata[1]:,.3f})",
        })
        shown += 1
    if not traces:
        return None
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": h, "x1": h, "y0": 0, "y1": 1,
               "line": {"color": "#9aa5b1", "width": 1, "dash": "dot"}} for h in run.horizons]
    annotations = [{"xref": "x", "yref": "paper", "x": h, "y": 1, "yanchor": "bottom",
                    "text": f"{h}d", "showarrow": False, "font": {"size": 11, "color": "#52606d"}}
                   for h in run.horizons]
    layout = _base_layout(
        height=480,
        hovermode="x unified",
        xaxis=_axis("Days since install", rangemode="tozero"),
        yaxis=_axis("Cumulative LTV per installed user", rangemode="tozero"),
        legend={"title": {"text": chart_text(" · ".join(run.by))}, "orientation": "v",
                "itemclick": "toggle", "itemdoubleclick": "toggleothers"},
        shapes=shapes,
        annotations=annotations,
    )
    return CurvesFigure({"data": traces, "layout": layout}, shown, total)


@dataclass(frozen=True)
class RoasFigure:
    figure: dict[str, Any]
    plotted: int
    scale: int
    skipped: int


def roas_figure(run: RunView) -> RoasFigure | None:
    """ROAS at the main horizon against spend, with interval error bars and a break-even line."""
    if not run.has_spend:
        return None
    rows = run.rows_at(run.main_horizon)
    usable = rows[rows["spend"].notna() & (rows["spend"] > 0) & rows["roas"].notna()]
    skipped = len(rows) - len(usable)
    if usable.empty:
        return None
    # Name every point when there are few; with many, name only those to scale.
    label_all = len(usable) <= MAX_POINT_LABELS
    traces = []
    scale_count = 0
    groups = (("Scale", PROMISING_COLOUR, "diamond", 13, "scale"),
              ("Watch", WATCH_COLOUR, "circle", 10, "watch"),
              ("Cut", CUT_COLOUR, "x", 10, "cut"))
    labels = [run.label(row) or "watch" for _, row in usable.iterrows()]
    for name, colour, symbol, size, label in groups:
        part = usable[[found == label for found in labels]]
        if part.empty:
            continue
        wanted = label == "scale"
        if wanted:
            scale_count = len(part)
        roas = [num(v) for v in part["roas"]]
        lower = [num(v) for v in part["roas_lower"]]
        upper = [num(v) for v in part["roas_upper"]]
        traces.append({
            "type": "scatter",
            "mode": "markers+text" if label_all or (wanted and len(part) <= MAX_POINT_LABELS)
                    else "markers",
            "name": name,
            "x": [num(v) for v in part["spend"]],
            "y": roas,
            "text": [chart_text(group_label(run.key(row))) for _, row in part.iterrows()],
            "textposition": "top center",
            "textfont": {"size": 11, "color": "#323f4b"},
            "cliponaxis": False,
            "marker": {"color": colour, "symbol": symbol, "size": size,
                       "line": {"color": "#ffffff", "width": 1}},
            "error_y": {
                "type": "data", "symmetric": False, "color": colour, "thickness": 1.5,
                "width": 4,
                "array": [None if r is None or u is None else num(u - r)
                          for r, u in zip(roas, upper, strict=True)],
                "arrayminus": [None if r is None or lo is None else num(r - lo)
                               for r, lo in zip(roas, lower, strict=True)],
            },
            "customdata": [[lo, hi, num(u)]
                           for lo, hi, u in zip(lower, upper, part["users"], strict=True)],
            "hovertemplate": ("<b>%{text}</b><br>spend %{x:,.0f}<br>ROAS %{y:.2f} "
                              "(%{customdata[0]:.2f} – %{customdata[1]:.2f})<br>"
                              "users %{customdata[2]:,}<extra>" + name + "</extra>"),
        })
    spend = usable["spend"]
    log_x = spend.min() > 0 and spend.max() / spend.min() > 50
    layout = _base_layout(
        height=460,
        hovermode="closest",
        xaxis=_axis("Spend", type="log" if log_x else "linear",
                    **({} if log_x else {"rangemode": "tozero"})),
        yaxis=_axis(f"ROAS at day {run.main_horizon} (revenue ÷ spend)", rangemode="tozero"),
        legend={"orientation": "h", "y": -0.18},
        shapes=[{"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1,
                 "y0": run.target_roas, "y1": run.target_roas,
                 "line": {"color": BREAK_EVEN_COLOUR, "width": 1.5, "dash": "dash"},
                 "showlegend": True, "name": f"ROAS = {run.target_roas:g} (target)"}],
    )
    return RoasFigure({"data": traces, "layout": layout}, len(usable), scale_count, skipped)
