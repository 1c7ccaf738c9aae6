"""Assemble the report's HTML from a parsed run.

Every value that comes from data (group names, request fields, warnings, parameters) passes
through :func:`html.escape`; the chart data travels as one inline JSON block whose ``<``, ``>``
and ``&`` are escaped so that no value can close the ``<script>`` element.
"""

from __future__ import annotations

import functools
import html
import json
import math
from typing import Any

import pandas as pd

from ltvcore import __version__
from ltvcore.report.assets import CSS, SCRIPT
from ltvcore.report.data import PROMISING_THRESHOLD, RunView
from ltvcore.report.figures import MAX_CURVES, curves_figure, group_label, roas_figure

__all__ = ["build_page", "promising_rule"]

# No network at all: the page must work offline, and the browser enforces it.
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:")
_REQUEST_ORDER = ("dataset", "by", "as_of", "observe_days", "horizons", "confidence", "model",
                  "retention")
_PARAMS_RESERVED = {"groups", "warnings", "request", "as_of", "assumptions", "run_id",
                    "model_selection"}


@functools.lru_cache(maxsize=1)
def _plotly() -> tuple[str, str]:
    import plotly.offline

    return plotly.offline.get_plotlyjs(), plotly.offline.get_plotlyjs_version()


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _fmt_money(value: float) -> str:
    if abs(value) >= 0.1 or value == 0:
        return f"{value:,.2f}"
    return f"{value:.2g}"


def _fmt_spend(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _fmt_param(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), sort_keys=True, default=str)


def _fmt_request_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return "—" if value is None or value == "" else str(value)


def _confidence_text(run: RunView) -> str:
    level = run.request.get("confidence")
    try:
        level = float(level)
    except (TypeError, ValueError):
        return "forecast"
    if 0 < level < 1:
        return f"{level * 100:g}%"
    return "forecast"


def promising_rule(run: RunView) -> str:
    """The rule as shown on the page (plain text)."""
    h = run.main_horizon
    return (f"Promising = ROAS lower bound ≥ {PROMISING_THRESHOLD:g} at day {h}: even the "
            f"pessimistic end of the {_confidence_text(run)} interval earns back the spend "
            f"within {h} days.")


def _json_for_script(payload: Any) -> str:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---------------------------------------------------------------------------------------------
# sections


def _header(run: RunView) -> str:
    dataset = run.request.get("dataset")
    title = "LTV forecast" + (f" — {dataset}" if dataset else "")
    models = ", ".join(run.models) or "—"
    retention = run.request.get("retention")
    model_note = f"retention fit: {retention}" if retention and "curve" in run.models else ""
    main = run.rows_at(run.main_horizon)
    users = main["users"].sum(min_count=1)
    weighted = (main["ltv"] * main["users"]).sum(min_count=1)
    mean_ltv = weighted / users if not _missing(users) and users > 0 else float("nan")
    cards = [
        ("Run", run.run_id or "not assigned yet", "mono", ""),
        ("Data as of", run.as_of or "—", "", ""),
        ("Model", models, "", model_note),
        ("Groups", f"{len(main):,}", "", " · ".join(run.by)),
        ("Installed users", "—" if _missing(users) else f"{int(users):,}", "", ""),
        (f"Avg LTV at day {run.main_horizon}", "—" if _missing(mean_ltv) else _fmt_money(mean_ltv),
         "", "per installed user"),
    ]
    if run.has_spend:
        with_spend = main[main["spend"].notna() & (main["spend"] > 0) & main["roas"].notna()]
        promising = sum(run.is_promising(row) for _, row in with_spend.iterrows())
        cards.append((f"Promising at day {run.main_horizon}",
                      f"{promising} of {len(with_spend)}", "good" if promising else "",
                      "with spend"))
    card_html = "".join(
        f'<div class="card {cls if cls == "good" else ""}"><div class="k">{_e(k)}</div>'
        f'<div class="v{" mono" if cls == "mono" else ""}">{_e(v)}</div>'
        + (f'<div class="s">{_e(note)}</div>' if note else "") + "</div>"
        for k, v, cls, note in cards)

    keys = [k for k in _REQUEST_ORDER if k in run.request]
    keys += sorted(k for k in run.request if k not in _REQUEST_ORDER)
    if keys:
        items = " · ".join(f'<span class="req"><span class="rk">{_e(k)}</span> '
                           f"{_e(_fmt_request_value(run.request[k]))}</span>" for k in keys)
        request_html = f'<p class="request-line" id="request"><strong>Request</strong> {items}</p>'
    else:
        request_html = '<p class="note">The request was not recorded with this run.</p>'
    selection = run.params.get("model_selection") or {}
    if isinstance(selection, dict) and selection.get("why"):
        # auto says which model it chose and on what evidence; calibrated, what it learned.
        request_html += (f'<p class="request-line" id="model-choice"><strong>Model choice</strong> '
                         f'{_e(selection["why"])} <span class="note">({_e(selection.get("method", ""))})'
                         "</span></p>")
    by = " · ".join(run.by) or "—"
    horizons = ", ".join(f"{h}" for h in run.horizons)
    return (
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="sub">Forecast of lifetime value per installed user by {_e(by)}, '
        f"for horizons of {_e(horizons)} days. Intervals are {_e(_confidence_text(run))} "
        f"intervals.</p>"
        f'<div class="cards">{card_html}</div>{request_html}</header>'
    )


def _warnings(run: RunView) -> str:
    if not run.warnings:
        return ('<section class="dq" id="warnings"><h2>Data quality</h2>'
                '<p class="ok">No data-quality warnings were raised for this run.</p></section>')
    items = "".join(f"<li>{_e(w)}</li>" for w in run.warnings)
    return (f'<section class="warnings dq" id="warnings"><h2>Data-quality warnings '
            f"({len(run.warnings)})</h2><p class=\"note\">Read these before acting on the "
            f"numbers below.</p><ul>{items}</ul></section>")


def _curves_section(run: RunView, payload: dict[str, Any]) -> str:
    fig = curves_figure(run)
    if fig is None:
        payload["curves"] = None
        return ('<section id="curves"><h2>LTV curves</h2><p class="note">curve.csv holds no '
                "curve for the forecast's groups.</p></section>")
    payload["curves"] = fig.figure
    if fig.total > fig.shown:
        scope = (f"Showing the {fig.shown} groups with the highest LTV at day {run.max_horizon} "
                 f"(of {fig.total}; at most {MAX_CURVES} are drawn). The table below lists all.")
    else:
        scope = f"All {fig.shown} groups."
    return (
        '<section id="curves"><h2>LTV curves</h2>'
        f'<p class="note">Cumulative revenue per installed user by day since install; the shaded '
        f"band is the {_e(_confidence_text(run))} interval. {_e(scope)} Click a name in the legend "
        "to hide or show it, double-click to show it alone.</p>"
        '<div id="ltv-chart" class="chart"></div><p class="chart-error"></p></section>'
    )


def _roas_section(run: RunView, payload: dict[str, Any]) -> str:
    noun = "campaign" if run.by == ["campaign"] else "group"
    head = f'<section id="roas"><h2>ROAS per {noun} against spend</h2>'
    if not run.has_spend:
        payload["roas"] = None
        return (head + '<p class="note" id="roas-missing">No spend data in this run, so ROAS '
                "cannot be computed and no campaign can be marked promising. Run the forecast "
                "with <code>--spend</code> to compare campaigns against their cost.</p></section>")
    fig = roas_figure(run)
    rule = (f'<p class="rule" id="promising-rule"><strong>Rule.</strong> '
            f"{_e(promising_rule(run))}</p>")
    if fig is None:
        payload["roas"] = None
        return (head + rule + f'<p class="note">No {noun} has both spend and a ROAS forecast at '
                f"day {run.main_horizon}.</p></section>")
    payload["roas"] = fig.figure
    skipped = (f" {fig.skipped} {noun}(s) without spend (e.g. organic) are not plotted."
               if fig.skipped else "")
    return (
        head + rule +
        f'<p class="note">Each point is a {noun}: x = spend, y = forecast ROAS at day '
        f"{run.main_horizon}; the bars show the {_e(_confidence_text(run))} interval, the dashed "
        f"line is break-even (ROAS = 1). {fig.promising} of {fig.plotted} plotted {noun}s "
        f"are promising.{_e(skipped)}</p>"
        '<div id="roas-chart" class="chart"></div><p class="chart-error"></p></section>'
    )


def _forecast_table(run: RunView) -> str:
    columns: list[tuple[str, str, str]] = [(c, c, "text") for c in run.by]
    if run.has_spend:  # next to the name, where it is seen first
        columns += [("_promising", "promising", "text")]
    columns += [("horizon_days", "horizon (days)", "num"), ("users", "users", "num"),
                ("ltv", "LTV", "num"), ("ltv_lower", "LTV lower", "num"),
                ("ltv_upper", "LTV upper", "num")]
    if run.has_spend:
        columns += [("spend", "spend", "num"), ("roas", "ROAS", "num"),
                    ("roas_lower", "ROAS lower", "num"), ("roas_upper", "ROAS upper", "num")]
    columns += [("model", "model", "text")]

    formatters = {"horizon_days": lambda v: f"{int(v)}", "users": lambda v: f"{int(v):,}",
                  "spend": _fmt_spend, "roas": lambda v: f"{v:.2f}",
                  "roas_lower": lambda v: f"{v:.2f}", "roas_upper": lambda v: f"{v:.2f}"}
    num_class = ' class="num"'
    head = "".join(
        f'<th scope="col" tabindex="0" aria-sort="none" data-type="{kind}"'
        f'{num_class if kind == "num" else ""}>{_e(label)}</th>'
        for _, label, kind in columns)
    body: list[str] = []
    for _, row in run.forecast.iterrows():
        promising = run.is_promising(row)
        cells = []
        for name, _, kind in columns:
            if name == "_promising":
                cells.append('<td data-v="1"><span class="badge">promising</span></td>'
                             if promising else '<td data-v=""></td>')
                continue
            value = row[name]
            if kind == "num":
                if _missing(value):
                    cells.append('<td class="num" data-v="">—</td>')
                else:
                    text = formatters.get(name, _fmt_money)(float(value))
                    cells.append(f'<td class="num" data-v="{float(value)!r}">{_e(text)}</td>')
            else:
                text = "" if _missing(value) else str(value)
                cells.append(f"<td>{_e(text)}</td>")
        attrs = f' data-horizon="{int(row["horizon_days"])}"'
        if promising:
            attrs += ' class="promising"'
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    options = '<option value="all">all horizons</option>' + "".join(
        f'<option value="{h}">day {h}</option>' for h in run.horizons)
    highlight = (f" Rows of promising {('campaigns' if run.by == ['campaign'] else 'groups')} "
                 f"at day {run.main_horizon} are highlighted." if run.has_spend else "")
    return (
        '<section id="forecast"><h2>Forecast table</h2>'
        f'<p class="note">One row per group and horizon. Click a column header to sort '
        f"(again to reverse).{_e(highlight)}</p>"
        '<div class="table-tools"><label>Show <select id="horizon-filter">'
        f"{options}</select></label></div>"
        '<div class="table-wrap"><table id="forecast-table" class="sortable">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _params_by_group(run: RunView) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    """(model names in first-seen order, [(group label, {model: "p = v · ..."})])."""
    models: dict[str, None] = {}
    rows: list[tuple[str, dict[str, str]]] = []
    for group in run.params.get("groups") or []:
        if not isinstance(group, dict) or not isinstance(group.get("models"), dict):
            continue
        key = group.get("key") or {}
        if isinstance(key, dict):
            ordered = [key[c] for c in run.by if c in key] + [
                v for c, v in key.items() if c not in run.by]
            label = group_label(tuple("" if v is None else str(v) for v in ordered))
        else:
            label = str(key)
        cells = {}
        for model, values in group["models"].items():
            models.setdefault(str(model))
            if isinstance(values, dict):
                cells[str(model)] = " · ".join(f"{k} = {_fmt_param(v)}" for k, v in values.items())
            else:
                cells[str(model)] = _fmt_param(values)
        rows.append((label, cells))
    return list(models), rows


def _details(run: RunView) -> str:
    models, rows = _params_by_group(run)
    if rows:
        th = '<th scope="col" tabindex="0" aria-sort="none" data-type="text">'
        head = th + "group</th>" + "".join(f"{th}{_e(m)}</th>" for m in models)
        body = "".join(
            f"<tr><td>{_e(label)}</td>"
            + "".join(f'<td class="p mono">{_e(cells.get(m, "—"))}</td>' for m in models)
            + "</tr>"
            for label, cells in rows)
        table = ('<div class="table-wrap"><table class="params sortable" id="params-table">'
                 f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
        if len(rows) > 20:
            table = (f"<details><summary>Show the fitted parameters of {len(rows)} groups"
                     f"</summary>{table}</details>")
        params_html = table
    else:
        params_html = '<p class="note">params.json records no fitted parameters.</p>'

    extra = {k: v for k, v in run.params.items() if k not in _PARAMS_RESERVED}
    if extra:
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_fmt_request_value(v))}</dd>"
                        for k, v in sorted(extra.items()))
        params_html += f'<h3>Run settings</h3><dl class="request">{items}</dl>'

    if run.assumptions:
        assumptions = "<ul>" + "".join(f"<li>{_e(a)}</li>" for a in run.assumptions) + "</ul>"
    else:
        assumptions = '<p class="note">No assumptions were recorded with this run.</p>'
    return (
        '<section id="parameters"><h2>Model parameters</h2>'
        '<p class="note">What each group\'s model fitted (for example the sBG retention fit '
        "<code>alpha</code>, <code>beta</code>).</p>"
        f"{params_html}</section>"
        f'<section class="assumptions" id="assumptions"><h2>Assumptions</h2>{assumptions}</section>'
    )


def build_page(run: RunView) -> str:
    """The complete, self-contained HTML document of one run."""
    payload: dict[str, Any] = {}
    sections = [
        _header(run),
        _warnings(run),
        _curves_section(run, payload),
        _roas_section(run, payload),
        _forecast_table(run),
        _details(run),
    ]
    plotly_js, plotly_version = _plotly()
    title = "LTV forecast" + (f" {run.run_id}" if run.run_id else "")
    footer = (f"<footer>Made by ltv-forecast {_e(__version__)}. This page is self-contained and "
              f"works offline: the charts are drawn by plotly.js {_e(plotly_version)}, embedded "
              "in the page.</footer>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main>{''.join(sections)}{footer}</main>\n"
        f'<script type="application/json" id="report-data">{_json_for_script(payload)}</script>\n'
        f"<script>{plotly_js}</script>\n"
        f"<script>{SCRIPT}</script>\n"
        "</body></html>\n"
    )
