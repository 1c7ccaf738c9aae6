"""The HTML pages: templates in ``ltvcore/api/templates`` filled with escaped values.

``{{name}}`` in a template is replaced by ``html.escape(value)``; the keys ``css``, ``rows``
(HTML built here from escaped parts) and ``data`` (JSON made safe inside ``<script>``) are
inserted as they are. Plain HTML, CSS and JavaScript: no CDN, no build step.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import re
from importlib import resources
from typing import Any

from ltvcore.request import ForecastRequest, MODELS, RETENTIONS

__all__ = ["form_page", "message_page", "run_page", "runs_page"]

_TOKEN = re.compile(r"\{\{(\w+)\}\}")
_TRUSTED = frozenset({"css", "rows", "data"})
DOWNLOADS = ("forecast.csv", "curve.csv", "manifest.json", "params.json", "report.html")
POLL_MS = 1000


@functools.cache
def _template(name: str) -> str:
    return resources.files("ltvcore.api").joinpath("templates", name).read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """JSON that cannot end a ``<script>`` element or open a comment in it."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(name: str, **values: Any) -> str:
    values.setdefault("css", _template("base.css"))

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        value = values[key]
        return str(value) if key in _TRUSTED else html.escape(str(value))

    return _TOKEN.sub(fill, _template(name))


def form_page(*, prefix: str, datasets: dict[str, dict[str, Any]]) -> str:
    defaults = ForecastRequest()
    data = {"prefix": prefix, "datasets": datasets, "models": list(MODELS),
            "retentions": list(RETENTIONS),
            "defaults": {"model": defaults.model, "retention": defaults.retention}}
    return render("form.html", prefix=prefix, data=script_json(data),
                  observe_days=defaults.observe_days,
                  horizons=",".join(str(h) for h in defaults.horizons),
                  confidence=defaults.confidence)


def run_page(*, prefix: str, run: dict[str, Any]) -> str:
    data = {"prefix": prefix, "run": run, "downloads": list(DOWNLOADS), "poll_ms": POLL_MS}
    return render("run.html", prefix=prefix, run_id=run["run_id"], status=run["status"],
                  data=script_json(data))


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


def runs_page(*, prefix: str, runs: list[dict[str, Any]]) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for run in runs:
        e = {k: html.escape(str(v if v is not None else "")) for k, v in run.items()}
        rows.append(
            f'<tr data-run="{e["run_id"]}">'
            f'<td><a href="{html.escape(prefix)}/forecasts/{e["run_id"]}"><code>{e["run_id"]}'
            f'</code></a></td>'
            f'<td><span class="badge {e["status"]}">{e["status"]}</span></td>'
            f'<td>{e["requested_by"]}</td><td>{e["dataset"]}</td>'
            f'<td class="age" title="{e["created"]}">'
            f'{html.escape(_age(run.get("created"), now))}</td>'
            f'<td class="summary">{e["summary"]}</td></tr>')
    if not rows:
        rows.append('<tr><td colspan="6">No runs yet: <a href="'
                    f'{html.escape(prefix)}/">start one</a>.</td></tr>')
    return render("runs.html", prefix=prefix, count=len(runs), rows="\n".join(rows))


def message_page(*, prefix: str, title: str, message: str) -> str:
    return render("message.html", prefix=prefix, title=title, message=message)
