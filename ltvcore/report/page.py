"""Assemble the report's HTML from a parsed run.

The markup lives in ``ltvcore/report/templates`` (``report.html`` and its ``macros.html``),
rendered by Jinja2 with autoescape: this module only decides *what* the page says (formatted
numbers, labels, which sections apply) and hands plain values to the template, which escapes
every one of them. The chart data travels as one inline JSON block written by ``|tojson``,
whose ``<``, ``>``, ``&`` and ``'`` are escaped so that no value can close the ``<script>``.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any, NamedTuple

import pandas as pd

from ltvcore import __version__, decision, wording
from ltvcore.report.assets import CSS, SCRIPT
from ltvcore.report.data import DOWNLOADS, RunView
from ltvcore.report.figures import MAX_CURVES, curves_figure, group_label, retention_figure, roas_figure
from ltvcore.templating import environment

__all__ = ["build_page", "decision_rule"]

_REQUEST_ORDER = ("dataset", "by", "as_of", "observe_days", "horizons", "confidence",
                  "target_roas", "model", "retention")
_PARAMS_RESERVED = {"groups", "warnings", "request", "as_of", "assumptions", "run_id",
                    "model_selection"}

_ENV = environment("ltvcore.report")
# Compact JSON (the payload is the page's biggest part after plotly.js). No key sorting (Jinja's
# default): figures.py already fixes the order, and the payload stays byte-for-byte what earlier
# reports held. NaN must never reach JSON.parse, which rejects it.
_ENV.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "ensure_ascii": False,
                                      "allow_nan": False}


@functools.lru_cache(maxsize=1)
def _plotly() -> tuple[str, str]:
    import plotly.offline

    return plotly.offline.get_plotlyjs(), plotly.offline.get_plotlyjs_version()


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
    given = run.request.get("confidence")
    try:
        level = float(given)  # type: ignore[arg-type]  # a bad value falls to the except
    except (TypeError, ValueError):
        return "forecast"
    if 0 < level < 1:
        return f"{level * 100:g}%"
    return "forecast"


def decision_rule(run: RunView) -> str:
    """The decision rule as shown on the page (plain text, :mod:`ltvcore.decision`'s words)."""
    return (decision.rule_text(run.thresholds, run.main_horizon, run.target_roas)
            + f" (from the {_confidence_text(run)} forecast's predictive distribution).")


# ---------------------------------------------------------------------------------------------
# what each section says; the template decides how it looks


class Card(NamedTuple):
    key: str
    value: str
    style: str = ""  # "good" colours the value, "mono" sets it in the code font
    note: str = ""


class Column(NamedTuple):
    name: str
    label: str
    kind: str  # "num" or "text": how the page's script sorts it


class Cell(NamedTuple):
    kind: str  # "num", "text", "wrap" (text that may break anywhere) or "label"
    text: str = ""
    sort: str = ""  # data-v: the exact number (repr) a numeric column sorts by


class Row(NamedTuple):
    horizon: int
    label: str  # the decision label on a main-horizon row, else ""
    cells: list[Cell]


class DecisionRow(NamedTuple):
    group: str
    label: str
    p_payback: str
    roas: str
    roas_interval: str
    days: str
    days_interval: str


def _header(run: RunView) -> dict[str, Any]:
    dataset = run.request.get("dataset")
    retention = run.request.get("retention")
    main = run.rows_at(run.main_horizon)
    users = main["users"].sum(min_count=1)
    weighted = (main["ltv"] * main["users"]).sum(min_count=1)
    mean_ltv = weighted / users if not _missing(users) and users > 0 else float("nan")
    cards = [
        Card("Run", run.run_id or "not assigned yet", "mono"),
        Card("Data as of", run.as_of or "—"),
        Card("Model", ", ".join(run.models) or "—", "",
             f"retention fit: {retention}" if retention and "curve" in run.models else ""),
        Card("Groups", f"{len(main):,}", "", " · ".join(run.by)),
        Card("Installed users", "—" if _missing(users) else f"{int(users):,}"),
        Card(f"Avg LTV at day {run.main_horizon}",
             "—" if _missing(mean_ltv) else _fmt_money(mean_ltv), "", "per installed user"),
    ]
    if run.decisions:
        n = decision.counts(run.decisions)
        cards.append(Card(f"To scale at day {run.main_horizon}",
                          f"{n[decision.SCALE]} of {len(run.decisions)}",
                          "good" if n[decision.SCALE] else "",
                          f"{n[decision.WATCH]} to watch, {n[decision.CUT]} to cut"))
    keys = [k for k in _REQUEST_ORDER if k in run.request]
    keys += sorted(k for k in run.request if k not in _REQUEST_ORDER)
    selection = run.params.get("model_selection") or {}
    # auto says which model it chose and on what evidence; calibrated, what it learned.
    choice = None
    if isinstance(selection, dict) and selection.get("why"):
        choice = {"why": wording.web_text(str(selection["why"])), "method": str(selection.get("method", ""))}
    return {
        "title": "LTV forecast" + (f" — {dataset}" if dataset else ""),
        "by": " · ".join(run.by) or "—",
        "horizons": ", ".join(f"{h}" for h in run.horizons),
        "cards": cards,
        "request": [(k, _fmt_request_value(run.request[k])) for k in keys],
        "model_choice": choice,
    }


def _curves(run: RunView, payload: dict[str, Any]) -> dict[str, Any] | None:
    fig = curves_figure(run)
    payload["curves"] = None if fig is None else fig.figure
    if fig is None:
        return None
    return {"shown": fig.shown, "total": fig.total, "max_curves": MAX_CURVES,
            "visible": fig.visible, "split": fig.split}


def _retention(run: RunView, payload: dict[str, Any]) -> dict[str, Any] | None:
    fig = retention_figure(run)
    payload["retention"] = None if fig is None else fig.figure
    if fig is None:
        return None
    return {"shown": fig.shown, "visible": fig.visible, "observed": fig.observed,
            "fitted": fig.fitted}


def _roas(run: RunView, payload: dict[str, Any]) -> dict[str, Any]:
    fig = roas_figure(run) if run.has_spend else None
    payload["roas"] = None if fig is None else fig.figure
    section: dict[str, Any] = {"noun": "campaign" if run.by == ["campaign"] else "group",
                               "has_spend": run.has_spend, "figure": None,
                               "missing": "" if run.has_spend
                               else wording.no_roas_text(run.by, run.warnings)}
    if fig is not None:
        section["figure"] = {"scale": fig.scale, "plotted": fig.plotted,
                             "skipped": fig.skipped, "target": f"{run.target_roas:g}",
                             "labelled": fig.labelled}
    return section


def _days(value: float | None, max_days: int) -> str:
    return decision.days_text(value, max_days)


def _decision(run: RunView) -> dict[str, Any]:
    """The decision view: every labelled campaign, ranked as :func:`ltvcore.decision.decide` does."""
    rows = []
    for d in run.decisions:
        interval = ("" if d.roas_lower is None or d.roas_upper is None
                    else f"{d.roas_lower:.2f}–{d.roas_upper:.2f}")
        # The band's optimistic end pays back first: upper bound → earliest day.
        days_interval = (f"{_days(d.days_lower, run.max_horizon)} … "
                         f"{_days(d.days_upper, run.max_horizon)}")
        rows.append(DecisionRow(group_label(d.group), d.label, f"{d.p_payback:.0%}",
                                "—" if d.roas is None else f"{d.roas:.2f}", interval,
                                _days(d.days, run.max_horizon), days_interval))
    return {"rows": rows, "rule": decision_rule(run) if rows else "",
            "no_spend": "" if rows else wording.no_decision_text(run.by, run.warnings),
            "counts": decision.counts_text(run.decisions),
            "noun": "campaigns" if run.by == ["campaign"] else "groups"}


def _forecast(run: RunView) -> dict[str, Any]:
    columns = [Column(c, c, "text") for c in run.by]
    labelled = bool(run.decisions)
    if labelled:  # next to the name, where it is seen first
        columns.append(Column("_label", "decision", "text"))
    columns += [Column("horizon_days", "horizon (days)", "num"), Column("users", "users", "num"),
                Column("ltv", "LTV", "num"), Column("ltv_lower", "LTV lower", "num"),
                Column("ltv_upper", "LTV upper", "num")]
    if run.has_spend:
        columns += [Column("spend", "spend", "num"), Column("roas", "ROAS", "num"),
                    Column("roas_lower", "ROAS lower", "num"),
                    Column("roas_upper", "ROAS upper", "num")]
    if labelled:
        columns.append(Column("p_payback", "p_payback", "num"))
    columns.append(Column("model", "model", "text"))

    formatters = {"horizon_days": lambda v: f"{int(v)}", "users": lambda v: f"{int(v):,}",
                  "spend": _fmt_spend, "roas": lambda v: f"{v:.2f}",
                  "roas_lower": lambda v: f"{v:.2f}", "roas_upper": lambda v: f"{v:.2f}",
                  "p_payback": lambda v: f"{v:.0%}"}
    rows = []
    for _, row in run.forecast.iterrows():
        label = run.label(row) or ""
        cells = []
        for column in columns:
            if column.name == "_label":
                cells.append(Cell("label", label))
                continue
            value = row[column.name]
            if column.kind == "text":
                # model names such as a registered NAME@VERSION are long: that cell wraps
                cells.append(Cell("wrap" if column.name == "model" else "text",
                                  "" if _missing(value) else str(value)))
            elif _missing(value):
                cells.append(Cell("num", "—"))
            else:
                value = float(value)
                cells.append(Cell("num", formatters.get(column.name, _fmt_money)(value),
                                  repr(value)))
        rows.append(Row(int(row["horizon_days"]), label, cells))
    return {"columns": columns, "rows": rows, "horizons": run.horizons,
            "plural": "campaigns" if run.by == ["campaign"] else "groups"}


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


def _details(run: RunView) -> dict[str, Any]:
    models, groups = _params_by_group(run)
    extra = {k: v for k, v in run.params.items() if k not in _PARAMS_RESERVED}
    return {
        "models": models,
        "rows": [(label, [cells.get(m, "—") for m in models]) for label, cells in groups],
        "settings": [(k, _fmt_request_value(v)) for k, v in sorted(extra.items())],
        "assumptions": wording.web_texts(run.assumptions),
    }


def build_page(run: RunView) -> str:
    """The complete, self-contained HTML document of one run."""
    payload: dict[str, Any] = {}
    context = {
        "title": "LTV forecast" + (f" {run.run_id}" if run.run_id else ""),
        "confidence": _confidence_text(run),
        "main_horizon": run.main_horizon,
        "max_horizon": run.max_horizon,
        "has_spend": run.has_spend,
        "header": _header(run),
        "warnings": wording.web_texts(run.warnings),  # read by marketers: no CLI flags
        "curves": _curves(run, payload),
        "roas": _roas(run, payload),
        "retention": _retention(run, payload),
        "downloads": DOWNLOADS,
        "decision": _decision(run),
        "forecast": _forecast(run),
        "details": _details(run),
    }
    plotly_js, plotly_version = _plotly()
    return _ENV.get_template("report.html").render(
        context, payload=payload, css=CSS, script=SCRIPT, plotly_js=plotly_js,
        plotly_version=plotly_version, version=__version__)
