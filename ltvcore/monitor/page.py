"""monitor.html: error and coverage by model version over time, forecasts against actuals, the
assumption checks and the drift alerts, in one self-contained page.

Built like a run's report (:mod:`ltvcore.report.page`): the markup is a Jinja2 template
(``templates/monitor.html``, autoescaped, through :func:`ltvcore.templating.environment`), the
charts are plain plotly.js figure dicts in one inline JSON block, drawn by the plotly.js bundle
of the installed plotly, inlined, so the page works offline. The report's stylesheet and table
sorter are reused so both pages look and behave alike.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import pandas as pd

from ltvcore import __version__
from ltvcore.charts import PALETTE, axis, base_layout, chart_text, money, num
from ltvcore.report.assets import CSS, SCRIPT
from ltvcore.templating import environment

if TYPE_CHECKING:
    from ltvcore.monitor.core import MonitorResult

__all__ = ["MAX_POINTS", "build_page"]

#: The forecast-vs-actual chart draws at most this many points (the latest as-of dates first):
#: a browser slows down beyond a few thousand markers; monitor.csv holds every row.
MAX_POINTS = 4000
_DASHES = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")
_STATUS_ORDER = {"broken": 0, "unclear": 1, "held": 2, "too little data": 3, "not checkable": 4}

_ENV = environment("ltvcore.monitor")
_ENV.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "ensure_ascii": False,
                                      "allow_nan": False}

_EXTRA_CSS = """
.status { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
          color: #fff; font-weight: 600; background: #7f8c9b; white-space: nowrap; }
.status.broken { background: #c0392b; } .status.unclear { background: #b07d00; }
.status.held { background: #1a9850; }
.alert { background: #fdecea; border-left: 4px solid #c0392b; padding: 8px 12px;
         margin: 8px 0; border-radius: 4px; }
td.wrap { white-space: normal; min-width: 280px; }
"""

# Draws the figures of the JSON block; the report's script (reused) makes tables sortable.
_CHARTS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var config = { displaylogo: false, responsive: true, showLink: false,
                 toImageButtonOptions: { filename: "ltv-monitor" } };
  var jobs = [];
  try {
    Object.keys(data.charts || {}).forEach(function (id) {
      jobs.push(Plotly.newPlot(id, data.charts[id].data, data.charts[id].layout, config));
    });
  } catch (err) { jobs.push(Promise.reject(err)); }
  Promise.all(jobs).then(function () {
    document.body.setAttribute("data-charts", "rendered");
  }, function (err) {
    document.body.setAttribute("data-charts", "failed");
    var msg = document.querySelectorAll(".chart-error");
    for (var i = 0; i < msg.length; i++) {
      msg[i].textContent = "The chart could not be drawn: " + (err && err.message ? err.message : err);
    }
  });
})();
"""


@functools.lru_cache(maxsize=1)
def _plotly() -> tuple[str, str]:
    import plotly.offline

    return plotly.offline.get_plotlyjs(), plotly.offline.get_plotlyjs_version()


def _pct(value: Any, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def _colours(versions: list[str]) -> dict[str, str]:
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(versions)}


def _over_time_figure(table: pd.DataFrame, column: str, title: str, colours: dict[str, str],
                      nominal: float | None = None) -> dict[str, Any] | None:
    """One line per model version × checkpoint of ``column`` against as-of."""
    if table.empty or table[column].isna().all():
        return None
    horizons = sorted(table["horizon_days"].unique())
    traces: list[dict[str, Any]] = []
    for (version, horizon), part in table.groupby(["model_version", "horizon_days"], sort=True):
        part = part.sort_values("as_of")
        name = chart_text(f"{version} · day {horizon}")
        traces.append({"type": "scatter", "mode": "lines+markers", "name": name,
                       "x": list(part["as_of"]), "y": [num(v, 5) for v in part[column]],
                       "line": {"color": colours[version],
                                "dash": _DASHES[horizons.index(horizon) % len(_DASHES)]},
                       "customdata": [int(n) for n in part["forecasts"]],
                       "hovertemplate": f"{name}<br>as of %{{x}}<br>{column} %{{y:.1f}}%"
                                        "<br>%{customdata} forecast(s)<extra></extra>"})
    shapes = []
    if nominal is not None:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": nominal,
                       "y1": nominal, "line": {"color": "#7f8c9b", "dash": "dot", "width": 1}})
    if column == "bias":
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0,
                       "line": {"color": "#7f8c9b", "width": 1}})
    layout = base_layout(title={"text": title}, shapes=shapes,
                          xaxis=axis("as of", type="category"), yaxis=axis(f"{column} (%)"),
                          height=340, legend={"orientation": "v", "x": 1.02, "y": 1})
    return {"data": traces, "layout": layout}


def _scatter_figure(rows: pd.DataFrame, by_columns: list[str],
                    colours: dict[str, str]) -> dict[str, Any] | None:
    if rows.empty:
        return None
    shown = rows.sort_values(["as_of", "run_id"], ascending=False, kind="stable").head(MAX_POINTS)
    traces: list[dict[str, Any]] = []
    for version, part in shown.groupby("model_version", sort=True):
        labels = part[by_columns].astype(str).agg(" · ".join, axis=1) if by_columns else \
            pd.Series("all", index=part.index)
        text = [chart_text(f"{g}<br>run {r}, as of {a}, day {h}") for g, r, a, h in
                zip(labels, part["run_id"], part["as_of"], part["horizon_days"])]
        traces.append({
            "type": "scatter", "mode": "markers", "name": chart_text(str(version)),
            "x": [num(v, 5) for v in part["actual"]], "y": [num(v, 5) for v in part["forecast"]],
            "error_y": {"type": "data", "symmetric": False,
                        "array": [num(u - f, 5) for u, f in zip(part["upper"], part["forecast"])],
                        "arrayminus": [num(f - lo, 5) for f, lo in zip(part["forecast"], part["lower"])],
                        "thickness": 1, "width": 0, "color": colours[version]},
            "marker": {"color": colours[version], "size": 7, "opacity": 0.8}, "text": text,
            "hovertemplate": "%{text}<br>actual %{x:.3f}<br>forecast %{y:.3f}<extra></extra>"})
    top = float(max(rows["actual"].max(), rows["forecast"].max(), 0.0)) * 1.05 or 1.0
    traces.append({"type": "scatter", "mode": "lines", "name": "forecast = actual",
                   "x": [0, num(top)], "y": [0, num(top)], "hoverinfo": "skip",
                   "line": {"color": "#7f8c9b", "dash": "dot", "width": 1}})
    layout = base_layout(title={"text": "Published forecast against realised LTV"},
                          xaxis=axis(money("realised LTV per user")),
                          yaxis=axis(money("forecast LTV per user")), height=520,
                          legend={"orientation": "v", "x": 1.02, "y": 1})
    return {"data": traces, "layout": layout}


def _summary_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{"version": r.model_version, "horizon": int(r.horizon_days), "forecasts": int(r.forecasts),
             "runs": int(r.runs) if "runs" in table and pd.notna(r.runs) else "",
             "span": f"{r.first_as_of} … {r.last_as_of}" if "first_as_of" in table else r.as_of,
             "mape": _pct(r.mape), "bias": _pct(r.bias, signed=True), "coverage": _pct(r.coverage),
             "width": _pct(r.width), "mape_v": num(r.mape), "bias_v": num(r.bias),
             "coverage_v": num(r.coverage), "width_v": num(r.width)}
            for r in table.itertuples(index=False)]


def _by_columns(rows: pd.DataFrame) -> list[str]:
    from ltvcore.monitor.scoring import FIXED_COLUMNS

    return [c for c in rows.columns if c not in FIXED_COLUMNS]


def build_page(result: MonitorResult) -> str:
    """The complete, self-contained HTML document of one monitor."""
    rows, limits = result.rows, result.limits
    scored = rows[rows["actual"] > 0] if not rows.empty else rows
    versions = sorted(set(rows["model_version"])) if not rows.empty else []
    colours = _colours(versions)
    nominal = None
    if result.confidences:
        nominal = 100 * max(set(result.confidences), key=result.confidences.count)
    charts = {}
    for key, column, title, line in (("mape-chart", "mape", "MAPE by as-of date", None),
                                     ("bias-chart", "bias", "Bias (mean signed error) by as-of date", None),
                                     ("coverage-chart", "coverage", "Interval coverage by as-of date",
                                      nominal)):
        figure = _over_time_figure(result.over_time, column, title, colours, line)
        if figure is not None:
            charts[key] = figure
    scatter = _scatter_figure(rows, _by_columns(rows), colours)
    if scatter is not None:
        charts["scatter-chart"] = scatter
    verdicts = sorted(result.verdicts, key=lambda v: (_STATUS_ORDER.get(v.status, 9), v.as_of,
                                                      v.run_id))
    findings = sorted(result.findings, key=lambda f: (_STATUS_ORDER.get(f.status, 9), f.as_of,
                                                      f.run_id, f.group, f.check))
    cards = [
        {"key": "runs compared", "value": f"{result.compared:,}",
         "note": f"of {result.listed:,} in the store"},
        {"key": "forecasts scored", "value": f"{len(scored):,}",
         "note": f"{len(rows):,} rows in monitor.csv"},
        {"key": "MAPE", "value": _pct(scored["error_pct"].abs().mean()) if len(scored) else "–",
         "note": "all checkpoints"},
        {"key": "coverage", "value": _pct(100 * scored["covered"].mean()) if len(scored) else "–",
         "note": f"nominal {nominal:.0f}%" if nominal is not None else ""},
        {"key": "drift alerts", "value": str(len(result.drifts)), "note": "version × checkpoint"},
        {"key": "broken assumptions", "value": str(sum(v.status == "broken" for v in verdicts)),
         "note": "run × assumption"},
    ]
    context = {
        "title": "LTV monitor", "store": result.store, "data_end": result.data_end,
        "cards": cards, "limits": limits, "checkpoints": ", ".join(map(str, result.checkpoints)),
        "drifts": [{"version": d.model_version, "horizon": d.horizon_days, "mape": _pct(d.mape),
                    "bias": _pct(d.bias, signed=True), "forecasts": d.forecasts,
                    "span": f"{d.first_as_of} … {d.last_as_of}", "reasons": "; ".join(d.reasons),
                    "runs": ", ".join(d.runs)} for d in result.drifts],
        "summary": _summary_rows(result.summary), "over_time": _summary_rows(result.over_time),
        "broken": [f for f in findings if f.status == "broken"],
        "verdicts": verdicts, "findings": findings, "charts": set(charts),
        "pending": result.pending, "skipped": result.skipped, "notes": result.notes,
    }
    plotly_js, plotly_version = _plotly()
    return _ENV.get_template("monitor.html").render(
        context, payload={"charts": charts}, css=CSS + _EXTRA_CSS, script=SCRIPT + _CHARTS,
        plotly_js=plotly_js, plotly_version=plotly_version, version=__version__)
