"""The HTML pages: Jinja2 templates in ``ltvcore/api/templates``, rendered with autoescape.

Every page extends ``layout.html`` (head, inlined stylesheet, navigation). Values reach the
templates only as context, so Jinja escapes each one where it lands; the data a page's script
needs travels as one ``<script type="application/json">`` block written by ``|tojson``, which
escapes ``<``, ``>``, ``&`` and ``'`` so that no value can end the element. Plain HTML, CSS and
JavaScript: no CDN, no build step.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ltvcore.request import MODELS, RETENTIONS, ForecastRequest
from ltvcore.templating import environment

__all__ = ["form_page", "message_page", "models_page", "run_page", "runs_page"]

DOWNLOADS = ("forecast.csv", "curve.csv", "manifest.json", "params.json", "report.html")
POLL_MS = 1000

_ENV = environment("ltvcore.api")
# Jinja sorts keys by default; the form offers datasets in the order given (and preselects the
# first), so order must survive. default=str: run descriptions may hold dates.
_ENV.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "default": str}


def render(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(**context)


#: One line per built-in model for the form's choice: what it does and when to pick it.
MODEL_HELP = {
    "curve": "curve: retention × ARPU fitted per campaign; fast, honest intervals (recommended default)",
    "geometric": "geometric: constant daily retention; a simple baseline to compare against",
    "calibrated": "calibrated: curve corrected by campaigns that already reached each horizon",
    "btyd": "btyd: Bayesian per-user model (buy till you die); the most careful, about a minute",
    "btyd:map": "btyd:map: the Bayesian model's fast fit, seconds",
    "btyd:advi": "btyd:advi: the Bayesian model by variational inference",
    "history": "history: learned from this data's matured campaigns (needs 8 or more)",
    "auto": "auto: tries the others on this data's own history and keeps the best",
}


def form_page(*, prefix: str, datasets: dict[str, dict[str, Any]],
              registered: list[dict[str, str]] | None = None) -> str:
    """The form; ``registered``: registered models to offer by alias (``{"value", "label"}``,
    e.g. ``history@champion``), after the built-in models."""
    defaults = ForecastRequest()
    registered = list(registered or [])
    data = {"prefix": prefix, "datasets": datasets,
            "models": list(MODELS) + [choice["value"] for choice in registered],
            "model_labels": {**{m: MODEL_HELP.get(m, m) for m in MODELS},
                             **{choice["value"]: choice["label"] for choice in registered}},
            "retentions": list(RETENTIONS),
            "defaults": {"model": defaults.model, "retention": defaults.retention}}
    return render("form.html", prefix=prefix, data=data,
                  observe_days=defaults.observe_days,
                  horizons=",".join(str(h) for h in defaults.horizons),
                  confidence=defaults.confidence, target_roas=defaults.target_roas)


def _plotly_js() -> str | None:
    """The installed plotly's plotly.js, inlined (the page may load nothing: CSP); None where
    plotly is not installed (the API Lambda ships without it)."""
    try:
        import plotly.offline
    except ImportError:
        return None
    return str(plotly.offline.get_plotlyjs())


def run_page(*, prefix: str, run: dict[str, Any], history: dict[str, Any] | None = None) -> str:
    """The run page; ``history`` (:func:`ltvcore.api.history.run_history`) for a succeeded run."""
    plotly_js = _plotly_js() if history and (history.get("convergence")
                                             or history.get("actual")) else None
    data = {"prefix": prefix, "run": run, "downloads": list(DOWNLOADS), "poll_ms": POLL_MS,
            "history": history, "charts": plotly_js is not None}
    return render("run.html", prefix=prefix, run_id=run["run_id"], status=run["status"],
                  data=data, plotly_js=plotly_js)


def _age(created: Any, now: dt.datetime) -> str:
    try:
        moment = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    seconds = max(0, int((now - moment).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _sortable(moment: Any) -> str:
    """A time as text that sorts as the time does (UTC ISO, to the millisecond); "" if none."""
    try:
        parsed = dt.datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def runs_page(*, prefix: str, runs: list[dict[str, Any]]) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for run in runs:
        # Submitted: the marker's time of the request (kept when the run completes); a run
        # without one (written by the CLI, or an older server) shows when it was written.
        submitted = run.get("submitted") or run.get("created")
        finished = run.get("finished")
        # A run not yet picked up has no requester or summary: an empty cell, not "None". Keys
        # absent from a run stay absent, so the template fails loudly on them.
        rows.append({k: "" if v is None else v for k, v in run.items()}
                    | {"submitted": submitted or "", "finished": finished or "",
                       "submitted_age": _age(submitted, now) if submitted else "",
                       "finished_age": _age(finished, now) if finished else "",
                       "submitted_sort": _sortable(submitted), "finished_sort": _sortable(finished),
                       "headline": run.get("headline") or ""})
    return render("runs.html", prefix=prefix, runs=rows)


def _metric(row: dict[str, Any]) -> tuple[str, str, str]:
    """(MAPE, coverage, horizon) of a version's rule horizon, as the table shows them."""
    from ltvcore.lifecycle.rule import RULE_HORIZON

    horizons = (row.get("backtest") or {}).get("horizons") or {}
    if not isinstance(horizons, dict) or not horizons:
        return "", "", ""
    key = str(RULE_HORIZON) if str(RULE_HORIZON) in horizons else max(horizons, key=int)
    found = horizons[key] if isinstance(horizons[key], dict) else {}
    mape, coverage = found.get("mape"), found.get("coverage")
    return ("" if not isinstance(mape, (int, float)) else f"{mape:.1f}%",
            "" if not isinstance(coverage, (int, float)) else f"{coverage:.1f}%", key)


def models_page(*, prefix: str, models: list[dict[str, Any]]) -> str:
    """Every registered version, with a promote control per row (who: the requester)."""
    from ltvcore.lifecycle.refs import SETTABLE_STAGES

    rows = []
    for model in models:
        mape, coverage, horizon = _metric(model)
        rows.append({k: "" if v is None else v for k, v in model.items()}
                    | {"mape": mape, "coverage": coverage, "horizon": horizon,
                       "trained": str(model.get("trained_at") or "")[:19].replace("T", " ")})
    return render("models.html", prefix=prefix, models=rows, stages=list(SETTABLE_STAGES),
                  data={"prefix": prefix})


def message_page(*, prefix: str, title: str, message: str) -> str:
    return render("message.html", prefix=prefix, title=title, message=message)
