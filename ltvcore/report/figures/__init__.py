"""The report's plotly figures, as plain JSON-ready dicts drawn by the plotly.js in the page.

- :mod:`.ltv` -- LTV curves, observed days solid, projected days dashed over a shaded region
- :mod:`.roas` -- ROAS against spend on a log spend axis, with labels placed not to overlap
- :mod:`.retention` -- observed activity rate by day since install under the fitted law

The shared look and the escaping of names are :mod:`ltvcore.charts`.
"""

from __future__ import annotations

from ltvcore.charts import PALETTE, chart_text, group_label
from ltvcore.report.figures.ltv import MAX_CURVES, CurvesFigure, curves_figure, ranked_groups
from ltvcore.report.figures.retention import RetentionFigure, retention_figure
from ltvcore.report.figures.roas import MAX_POINT_LABELS, RoasFigure, roas_figure

__all__ = ["CurvesFigure", "RetentionFigure", "RoasFigure", "curves_figure", "retention_figure",
           "roas_figure", "ranked_groups", "group_label", "chart_text", "MAX_CURVES",
           "MAX_POINT_LABELS", "PALETTE"]
