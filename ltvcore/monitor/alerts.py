"""Drift alerts: one Slack message per model version whose recent error passed a threshold.

One message per version rather than per checkpoint: a model that has drifted usually errs at
every checkpoint at once, and five messages about one problem bury it. Each message names the
version, every checkpoint that drifted with its MAPE and bias, the thresholds, and the runs
behind the numbers, so a reader can open them. Messages are built with the notify package's
Block Kit pieces (the same limits and escaping as a run's messages) and sent by its
:func:`~ltvcore.notify.delivery.dispatch`: the team channels of ``LTV_SLACK_WEBHOOK_URLS`` (or
the deployment's secret), printed when none is configured, never raising.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from ltvcore.monitor.scoring import Drift
from ltvcore.monitor.settings import ENV_BIAS_ALERT, ENV_MAPE_ALERT, Thresholds
from ltvcore.notify.delivery import DeliveryReport, dispatch
from ltvcore.notify.messages import (
    _context,
    _fields,
    _header,
    _join_within,
    _link_target,
    _payload,
    _section,
    escape,
)

__all__ = ["drift_message", "send_alerts"]

#: Runs named per checkpoint; the rest are counted (the report lists them all).
MAX_RUNS_NAMED = 6


def _runs_text(runs: tuple[str, ...]) -> str:
    named = ", ".join(f"`{escape(r)}`" for r in runs[:MAX_RUNS_NAMED])
    more = len(runs) - MAX_RUNS_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def drift_message(version: str, found: list[Drift], *, store: str, data_end: str,
                  report: str | None, limits: Thresholds) -> dict[str, Any]:
    """The Block Kit payload for one model version's drifts (``found``: its checkpoints)."""
    found = sorted(found, key=lambda d: d.horizon_days)
    head = (f"*{escape(version)}*: its forecasts from its latest {limits.recent_runs} as-of "
            f"date(s) erred past the thresholds (MAPE above {limits.mape_alert:g}%, bias beyond "
            f"±{limits.bias_alert:g}%) at {len(found)} checkpoint(s).")
    lines = [f"• *day {d.horizon_days}*: MAPE {d.mape:.1f}%, bias {d.bias:+.1f}% over "
             f"{d.forecasts} forecast(s) as of {escape(d.first_as_of)} … {escape(d.last_as_of)} "
             f"({escape('; '.join(d.reasons))}); runs {_runs_text(d.runs)}" for d in found]
    blocks = [
        _header(f"LTV model drift · {version}"),
        _section(_join_within(lines, head=head)),
        _fields([("Store", escape(store)), ("Data through", escape(data_end))]),
    ]
    if report:
        if report.startswith(("https://", "http://")):
            blocks.append(_section(f"*Report*: <{_link_target(report)}|Open monitor.html>"))
        else:
            blocks.append(_section(f"*Report*: `{escape(report)}`"))
    blocks.append(_context(f"ltv monitor · thresholds {ENV_MAPE_ALERT}={limits.mape_alert:g}%, "
                           f"{ENV_BIAS_ALERT}=±{limits.bias_alert:g}%"))
    worst = max(found, key=lambda d: d.mape)
    fallback = (f"LTV model drift: {version} at day "
                f"{', '.join(str(d.horizon_days) for d in found)}; worst day {worst.horizon_days}: "
                f"MAPE {worst.mape:.1f}%, bias {worst.bias:+.1f}%")
    return _payload(fallback, blocks)


def send_alerts(found: list[Drift], *, store: str, data_end: str, report: str | None,
                limits: Thresholds, stream: TextIO | None = None,
                log_sink: Callable[[dict[str, Any]], Any] | None = None,
                **deliver_options: Any) -> list[tuple[str, DeliveryReport]]:
    """Send one message per drifting model version; ``(version, report)`` per message sent.

    ``stream`` receives the messages when no webhook is configured (default stdout);
    ``deliver_options`` go to :func:`~ltvcore.notify.delivery.deliver` (retries, timeout).
    """
    versions: dict[str, list[Drift]] = {}
    for drift in found:
        versions.setdefault(drift.model_version, []).append(drift)
    sent = []
    for version in sorted(versions):
        payload = drift_message(version, versions[version], store=store, data_end=data_end,
                                report=report, limits=limits)
        sent.append((version, dispatch(payload, stream=stream, log_sink=log_sink,
                                       **deliver_options)))
    return sent
