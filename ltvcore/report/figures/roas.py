"""ROAS at the main horizon against spend: a log spend axis, and labels that do not overlap.

Spend spans orders of magnitude (a test campaign beside a flagship), so the axis is logarithmic
and both axis ranges are fixed here. That lets each name be placed, on a short leader line,
where it collides with no other name or marker on a plot of the width the report usually has
(:data:`PLOT_WIDTH_PX`); a name with no free place is left to the hover text. On a narrower screen the page script hides
whatever still overlaps (``assets.SCRIPT``), keeping the more important names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ltvcore.charts import axis, base_layout, chart_text, group_label, money, num
from ltvcore.report.data import RunView

__all__ = ["MAX_POINT_LABELS", "RoasFigure", "place_labels", "roas_figure"]

#: At most this many points are named on the chart (hover names all), the most important first.
MAX_POINT_LABELS = 15
PROMISING_COLOUR = "#1a9850"
WATCH_COLOUR = "#b07d00"
CUT_COLOUR = "#c0392b"
BREAK_EVEN_COLOUR = "#d73027"
HEIGHT = 460
#: The plot area the labels are placed for: the report's chart at its usual 1200-px page width.
PLOT_WIDTH_PX = 900.0
_PLOT_HEIGHT_PX = HEIGHT - 48 - 110  # less the top margin and the legend below the x axis
_CHAR_PX, _LINE_PX, _MARKER_PX = 6.6, 15.0, 14.0
#: Where a name may sit around its point, nearest first: (distance in px, angle in degrees).
#: A leader line joins a name to its point, so a name may stand clear of a crowded cluster.
_OFFSETS = tuple((distance, angle) for distance in (24, 42, 62, 84)
                 for angle in (90, 270, 0, 180, 45, 135, 315, 225))

Box = tuple[float, float, float, float]  # left, bottom, right, top in pixels


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(points: list[tuple[float, float, str]], width: float, height: float
                 ) -> list[tuple[float, float] | None]:
    """The offset ``(dx, dy)`` in px (y up) of each name from its point ``(x_px, y_px, text)``
    (most important first), or None where every place would overlap a placed name or any
    marker, or leave the plot."""
    half = _MARKER_PX / 2
    markers = [(x - half, y - half, x + half, y + half) for x, y, _ in points]
    placed: list[Box] = []
    found: list[tuple[float, float] | None] = []
    for x, y, text in points:
        choice = None
        w, h = len(text) * _CHAR_PX + 4, _LINE_PX
        for distance, angle in _OFFSETS:
            dx = distance * math.cos(math.radians(angle))
            dy = distance * math.sin(math.radians(angle))
            box = (x + dx - w / 2, y + dy - h / 2, x + dx + w / 2, y + dy + h / 2)
            if box[0] < 0 or box[2] > width or box[1] < 0 or box[3] > height:
                continue
            if any(_overlaps(box, other) for other in placed + markers):
                continue
            choice = (round(dx, 1), round(dy, 1))
            placed.append(box)
            break
        found.append(choice)
    return found


@dataclass(frozen=True)
class RoasFigure:
    figure: dict[str, Any]
    plotted: int
    scale: int
    skipped: int
    labelled: int


@dataclass(frozen=True)
class _Point:
    key: tuple[str, ...]
    label: str
    spend: float
    roas: float
    lower: float | None
    upper: float | None
    users: float | None


_GROUPS = (("Scale", PROMISING_COLOUR, "diamond", 13, "scale"),
           ("Watch", WATCH_COLOUR, "circle", 10, "watch"),
           ("Cut", CUT_COLOUR, "x", 10, "cut"))
_RANK = {label: i for i, (*_, label) in enumerate(_GROUPS)}


def _spend_ticks(log_range: list[float]) -> dict[str, Any]:
    """Ticks at 1, 2 and 5 times the powers of ten: plotly's own log ticks name every digit,
    and 6,000 7,000 8,000 run into each other."""
    values = [m * 10.0 ** k for k in range(math.floor(log_range[0]), math.ceil(log_range[1]) + 1)
              for m in (1, 2, 5) if log_range[0] <= math.log10(m * 10.0 ** k) <= log_range[1]]
    return {"tickvals": [num(v) for v in values],
            "ticktext": [f"{v:,.0f}" if v >= 1 else f"{v:g}" for v in values]}


def roas_figure(run: RunView) -> RoasFigure | None:
    """ROAS at the main horizon against spend, with interval error bars and the target line."""
    if not run.has_spend:
        return None
    rows = run.rows_at(run.main_horizon)
    usable = rows[rows["spend"].notna() & (rows["spend"] > 0) & rows["roas"].notna()]
    skipped = len(rows) - len(usable)
    if usable.empty:
        return None
    points = [_Point(run.key(row), run.label(row) or "watch", float(row["spend"]),
                     float(row["roas"]), num(row["roas_lower"]), num(row["roas_upper"]),
                     num(row["users"])) for _, row in usable.iterrows()]
    # Scale first, then by ROAS: the names a marketer looks for win the free places.
    points.sort(key=lambda p: (_RANK.get(p.label, 1), -p.roas))

    spends = [math.log10(p.spend) for p in points]
    pad = max(0.15, 0.06 * (max(spends) - min(spends)))
    x_range = [min(spends) - pad, max(spends) + pad]
    top = max([p.upper or p.roas for p in points] + [p.roas for p in points]
              + [run.target_roas])
    y_range = [0.0, top * 1.12]

    def pixels(p: _Point) -> tuple[float, float]:
        x = (math.log10(p.spend) - x_range[0]) / (x_range[1] - x_range[0]) * PLOT_WIDTH_PX
        return x, p.roas / y_range[1] * _PLOT_HEIGHT_PX

    names = [chart_text(group_label(p.key)) for p in points]
    wanted = [(*pixels(p), name) for p, name in zip(points[:MAX_POINT_LABELS], names, strict=False)]
    positions = place_labels(wanted, PLOT_WIDTH_PX, _PLOT_HEIGHT_PX)
    positions += [None] * (len(points) - len(positions))

    traces = []
    for name, colour, symbol, size, label in _GROUPS:
        chosen = [i for i, p in enumerate(points) if p.label == label]
        if not chosen:
            continue
        roas = [num(points[i].roas) for i in chosen]
        lower = [points[i].lower for i in chosen]
        upper = [points[i].upper for i in chosen]
        traces.append({
            "type": "scatter", "mode": "markers+text", "name": name,
            "x": [num(points[i].spend) for i in chosen], "y": roas,
            "hovertext": [names[i] for i in chosen],
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
            "customdata": [[lo, hi, points[i].users]
                           for lo, hi, i in zip(lower, upper, chosen, strict=True)],
            "hovertemplate": ("<b>%{hovertext}</b><br>spend %{x:,.0f}<br>ROAS %{y:.2f} "
                              "(%{customdata[0]:.2f} – %{customdata[1]:.2f})<br>"
                              "users %{customdata[2]:,}<extra>" + name + "</extra>"),
        })
    # Names as annotations, not trace text: only those can stand off their point on a leader.
    annotations = [{"x": num(math.log10(p.spend)), "y": num(p.roas), "xref": "x",
                    "yref": "y", "text": name, "showarrow": True, "ax": offset[0],
                    "ay": -offset[1], "arrowhead": 0, "arrowwidth": 1, "arrowcolor": "#9aa5b1",
                    "standoff": 6, "font": {"size": 11, "color": "#323f4b"},
                    "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 1}
                   for p, name, offset in zip(points, names, positions, strict=True) if offset]
    layout = base_layout(
        height=HEIGHT,
        annotations=annotations,
        hovermode="closest",
        xaxis=axis(money("Spend, log scale"), type="log", range=[num(v) for v in x_range],
                   **_spend_ticks(x_range)),
        yaxis=axis(f"ROAS at day {run.main_horizon} (revenue ÷ spend)",
                   range=[0, num(y_range[1])]),
        legend={"orientation": "h", "y": -0.18},
        shapes=[{"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1,
                 "y0": run.target_roas, "y1": run.target_roas,
                 "line": {"color": BREAK_EVEN_COLOUR, "width": 1.5, "dash": "dash"},
                 "showlegend": True, "name": f"ROAS = {run.target_roas:g} (target)"}],
    )
    scale_count = sum(1 for p in points if p.label == "scale")
    return RoasFigure({"data": traces, "layout": layout}, len(points), scale_count, skipped,
                      sum(1 for p in positions if p))
