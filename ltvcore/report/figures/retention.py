"""Cohort retention: the observed activity rate by day since install, and the fitted law.

Dots are what the group's users did (active users ÷ users observed that day, pooled over its
cohorts); the line is the retention law the forecast extrapolates with, read back from
``params.json`` (:func:`ltvcore.fitted_laws.fitted_activity`). Where the dots end the line is
the model alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ltvcore.charts import PALETTE, VISIBLE_GROUPS, axis, base_layout, chart_text, group_label, num, visibility
from ltvcore.fitted_laws import fitted_activity
from ltvcore.report.data import RunView
from ltvcore.report.figures.ltv import MAX_CURVES, projected_region, ranked_groups

__all__ = ["RetentionFigure", "retention_figure"]


@dataclass(frozen=True)
class RetentionFigure:
    figure: dict[str, Any]
    shown: int
    visible: int
    observed: bool  # observed rates are drawn (the run holds its input snapshot)
    fitted: bool  # at least one group records a law to draw


def retention_figure(run: RunView) -> RetentionFigure | None:
    """Observed activity rates and fitted curves of the top groups (by LTV), or None when the
    run records neither."""
    observed = run.observed
    traces: list[dict[str, Any]] = []
    shown, starts, any_fit = 0, [], False
    for key in ranked_groups(run)[:MAX_CURVES]:
        rate = None if observed is None else observed.rate.get(key)
        law = fitted_activity(run.models_of(key), run.max_horizon)
        if rate is None and law is None:
            continue
        colour = PALETTE[shown % len(PALETTE)]
        name = chart_text(group_label(key)) or "all"
        group, visible = f"r{shown}", visibility(shown)
        if rate is not None and observed is not None:
            seen = observed.at_risk[key]
            traces.append({
                "type": "scatter", "mode": "markers", "name": name, "legendgroup": group,
                "visible": visible, "x": list(range(len(rate))), "y": [num(v, 4) for v in rate],
                "customdata": seen,
                "marker": {"color": colour, "size": 5, "opacity": 0.75},
                "hovertemplate": ("day %{x}: %{y:.1%} active of %{customdata:,} users observed"
                                  "<extra>" + name + " observed</extra>"),
            })
            starts.append(observed.last_day[key])
        if law is not None:
            any_fit = True
            traces.append({
                "type": "scatter", "mode": "lines", "name": name, "legendgroup": group,
                "visible": visible, "showlegend": rate is None,
                "x": list(range(len(law))), "y": [num(v, 4) for v in law.tolist()],
                "line": {"color": colour, "width": 2},
                "hovertemplate": "day %{x}: %{y:.1%}<extra>" + name + " fitted</extra>",
            })
        shown += 1
    if not traces:
        return None
    shapes, annotations = [], []
    if starts and min(starts) < run.max_horizon - 1:
        shape, caption = projected_region(min(starts), run.max_horizon - 1)
        shapes, annotations = [shape], [caption | {"y": 0.98, "yanchor": "top"}]
    layout = base_layout(
        height=420, hovermode="closest",
        xaxis=axis("Days since install", rangemode="tozero"),
        yaxis=axis("Activity rate (active users ÷ users observed)", tickformat=".0%",
                   rangemode="tozero"),
        legend={"orientation": "v", "itemclick": "toggle", "itemdoubleclick": "toggleothers"},
        shapes=shapes, annotations=annotations)
    return RetentionFigure({"data": traces, "layout": layout}, shown, min(shown, VISIBLE_GROUPS),
                           bool(starts), any_fit)
