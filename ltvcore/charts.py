"""The look and the safety rules every plotly chart of the product shares (report, run page,
monitor page), as plain JSON-ready dicts drawn by the plotly.js a page embeds.

Pure Python (no pandas, no plotly): the run page is also served by the API Lambda, which ships
neither.

Text that reaches a chart (group names) is HTML-escaped by :func:`chart_text`: plotly interprets
a subset of HTML in labels (``<a href>``, ``<b>``, ...) and decodes ``&lt;``, ``&gt;``, ``&amp;``,
so escaped names display literally (quotes stay as they are: plotly would show ``&quot;`` raw, and
without ``<`` no tag can start).
"""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["PALETTE", "FONT", "CURRENCY", "PROJECTED_FILL", "VISIBLE_GROUPS", "axis",
           "base_layout", "chart_text", "group_label", "money", "num", "rgba", "visibility"]

#: Tableau 10: distinguishable, and readable for most colour-vision deficiencies.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif",
        "size": 13, "color": "#1f2933"}
#: Revenue and spend carry no currency code in the inputs (docs/interface.md: spend is "in the
#: currency of revenue"), so a money axis names that convention rather than guessing a symbol.
CURRENCY = "revenue currency"
PROJECTED_FILL = "rgba(154,165,177,0.13)"
#: Charts with one band or line per group show this many at first; the legend shows the rest.
#: More than a few overlapping bands read as one grey smear.
VISIBLE_GROUPS = 3


def group_label(key: tuple[str, ...]) -> str:
    """A group's display name (unescaped): its ``--by`` values joined by a middle dot."""
    return " · ".join(v if v != "" else "(blank)" for v in key)


def chart_text(text: str) -> str:
    """Text for a plotly label: shown literally, never interpreted as markup."""
    return html.escape(text, quote=False)


def money(title: str) -> str:
    """An axis title for an amount of money, naming its currency."""
    return f"{title} ({CURRENCY})"


def num(value: Any, digits: int = 6) -> float | None:
    """A JSON-safe number: missing or not finite becomes null; ``digits`` significant digits."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):  # pandas' NA refuses float()
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return float(f"{value:.{digits}g}")


def rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def visibility(rank: int) -> bool | str:
    """plotly's ``visible`` for the ``rank``-th group (0 = the most important)."""
    return True if rank < VISIBLE_GROUPS else "legendonly"


def base_layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": FONT,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 70, "r": 30, "t": 48, "b": 60},
        "hoverlabel": {"namelength": -1},
    }
    layout.update(extra)
    return layout


def axis(title: str, **extra: Any) -> dict[str, Any]:
    found = {"title": {"text": title}, "gridcolor": "#e5e9f0", "zerolinecolor": "#c9d1dc",
             "linecolor": "#c9d1dc", "showline": True, "automargin": True}
    found.update(extra)
    return found
