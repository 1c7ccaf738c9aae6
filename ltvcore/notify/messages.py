"""Slack Block Kit payloads for finished and failed forecast runs.

Pure: no I/O and no pandas. Forecast rows are the dicts ``csv.DictReader`` yields for a run's
``forecast.csv`` (docs/interface.md, a run's files), so every value may arrive as a string; numbers are parsed here.

The payload is ``{"text": fallback, "blocks": [...]}``. Slack's limits are respected: at most
50 blocks, section text at most 3000 characters (longer lists end in "… and N more"), header text
at most 150 characters, at most 10 section fields of at most 2000 characters each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ltvcore import decision

__all__ = [
    "MAX_BLOCKS",
    "MAX_SECTION_TEXT",
    "success_message",
    "failure_message",
    "main_horizon",
    "decision_rule",
    "workflow_error_text",
]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_FALLBACK_TEXT = 1000
PREFERRED_HORIZON = 365
LABEL_MARK = {decision.SCALE: "🟢 scale", decision.WATCH: "🟡 watch", decision.CUT: "🔴 cut"}


# --------------------------------------------------------------------------- formatting


def escape(text: object) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link_target(url: str) -> str:
    # Inside <url|label> the characters |, <, > and spaces would end or break the link.
    return (url.replace(" ", "%20").replace("|", "%7C").replace("<", "%3C")
            .replace(">", "%3E"))


def money(value: float | None) -> str:
    """2 decimals with thousands separators, e.g. ``1,234.50``; ``n/a`` when unknown."""
    if value is None:
        return "n/a"
    return f"{value:,.2f}"


def roas_text(value: float | None) -> str:
    """ROAS as a multiple, e.g. ``1.23x``."""
    if value is None:
        return "n/a"
    return f"{value:,.2f}x"


def _interval(lower: float | None, upper: float | None, fmt) -> str:
    if lower is None or upper is None:
        return ""
    return f" ({fmt(lower)}–{fmt(upper)})"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join_within(lines: Sequence[str], limit: int = MAX_SECTION_TEXT, *,
                 head: str = "", line_limit: int = 1000) -> str:
    """Join ``lines`` under ``head``; lines that do not fit become "… and N more"."""
    out = _truncate(head, limit // 2)
    for i, line in enumerate(lines):
        candidate = out + ("\n" if out else "") + _truncate(line, line_limit)
        rest = len(lines) - i - 1
        reserve = len(f"\n… and {rest} more") if rest else 0
        if len(candidate) + reserve <= limit:
            out = candidate
            continue
        # Room for this marker was reserved when the previous line was accepted.
        return out + ("\n" if out else "") + f"… and {len(lines) - i} more"
    return out


# --------------------------------------------------------------------------- blocks


def _header(text: str) -> dict:
    return {"type": "header",
            "text": {"type": "plain_text", "text": _truncate(text, MAX_HEADER_TEXT), "emoji": True}}


def _section(text: str) -> dict:
    return {"type": "section",
            "text": {"type": "mrkdwn", "text": _truncate(text, MAX_SECTION_TEXT)}}


def _fields(pairs: Iterable[tuple[str, str]]) -> dict:
    fields = [{"type": "mrkdwn", "text": _truncate(f"*{escape(k)}*\n{v}", MAX_FIELD_TEXT)}
              for k, v in pairs]
    return {"type": "section", "fields": fields[:MAX_FIELDS]}


def _context(text: str) -> dict:
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": _truncate(text, MAX_SECTION_TEXT)}]}


def _divider() -> dict:
    return {"type": "divider"}


def _fit_blocks(blocks: list[dict]) -> list[dict]:
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    kept = blocks[: MAX_BLOCKS - 1]
    return kept + [_context(f"… and {len(blocks) - len(kept)} more blocks omitted")]


def _payload(fallback: str, blocks: list[dict]) -> dict:
    return {"text": _truncate(fallback, MAX_FALLBACK_TEXT), "blocks": _fit_blocks(blocks)}


def _who(requested_by: str | None) -> str:
    return escape(requested_by) if requested_by else "_unknown_"


# --------------------------------------------------------------------------- forecast rows


@dataclass(frozen=True)
class _Group:
    label: str
    users: int | None
    ltv: float | None
    ltv_lower: float | None
    ltv_upper: float | None
    roas: float | None
    roas_lower: float | None
    roas_upper: float | None
    model: str


def _group_label(row: Mapping[str, Any], by: Sequence[str]) -> str:
    if not by:
        return "all"
    if len(by) == 1:
        return str(row.get(by[0], "")) or "(blank)"
    return ", ".join(f"{col}={row.get(col, '')}" for col in by)


def _horizons(rows: Sequence[Mapping[str, Any]]) -> list[int]:
    found = set()
    for row in rows:
        h = decision.number(row.get("horizon_days"))
        if h is not None:
            found.add(int(h))
    return sorted(found)


def main_horizon(forecast_rows: Sequence[Mapping[str, Any]], horizon: int | None = None) -> int:
    """The horizon the message ranks groups by.

    ``horizon`` when given (it must be present in the rows); otherwise 365 days when present,
    else the largest horizon in the rows.
    """
    present = _horizons(forecast_rows)
    if not present:
        raise ValueError("forecast rows carry no horizon_days")
    if horizon is not None:
        if int(horizon) not in present:
            raise ValueError(f"horizon {horizon} is not in the forecast (has {present})")
        return int(horizon)
    return PREFERRED_HORIZON if PREFERRED_HORIZON in present else present[-1]


def _groups_at(rows: Sequence[Mapping[str, Any]], by: Sequence[str], h: int) -> list[_Group]:
    seen: dict[str, _Group] = {}
    for row in rows:
        rh = decision.number(row.get("horizon_days"))
        if rh is None or int(rh) != h:
            continue
        label = _group_label(row, by)
        if label in seen:  # one row per group × horizon; keep the first if repeated
            continue
        users = decision.number(row.get("users"))
        seen[label] = _Group(
            label=label,
            users=int(users) if users is not None else None,
            ltv=decision.number(row.get("ltv")),
            ltv_lower=decision.number(row.get("ltv_lower")),
            ltv_upper=decision.number(row.get("ltv_upper")),
            roas=decision.number(row.get("roas")),
            roas_lower=decision.number(row.get("roas_lower")),
            roas_upper=decision.number(row.get("roas_upper")),
            model=str(row.get("model") or ""),
        )
    return list(seen.values())


def _has_spend(rows: Sequence[Mapping[str, Any]]) -> bool:
    # ROAS exists only when the run had spend (docs/interface.md, a run's files); a column with no value is no ROAS.
    return any(decision.number(row.get("roas")) is not None for row in rows)


def decision_rule(has_payback: bool, horizon: int, target_roas: float | None = None,
                  limits: decision.Thresholds | None = None) -> str:
    """The rule, in words, that the message states next to the labels (:mod:`ltvcore.decision`)."""
    if not has_payback:
        return decision.no_spend_text()
    return decision.rule_text(limits or decision.thresholds(), horizon, target_roas)


def _group_line(g: _Group, with_roas: bool, verdict: decision.Decision | None,
                max_days: int) -> str:
    mark = f"{LABEL_MARK[verdict.label]} · " if verdict is not None else ""
    parts = [f"{mark}*{escape(g.label)}*"]
    if verdict is not None:
        parts[0] += f" — p_payback {verdict.p_payback:.0%}"
        parts.append(f"payback {decision.days_text(verdict.days, max_days)}"
                     + ("" if verdict.days is None else " days"))
    if with_roas:
        parts.append(f"ROAS {roas_text(g.roas)}{_interval(g.roas_lower, g.roas_upper, roas_text)}")
    parts.append(f"LTV {money(g.ltv)}{_interval(g.ltv_lower, g.ltv_upper, money)}")
    if g.users is not None:
        parts.append(f"{g.users:,} users")
    return " · ".join(parts)


def _sort_key(g: _Group):
    return (g.ltv is None, -(g.ltv or 0.0), g.label)


def _report_block(report_url: str | None, link_lifetime: str | None) -> dict:
    if not report_url:
        return _section("*Report*: no link available for this run.")
    lifetime = f" (link valid for {escape(link_lifetime)})" if link_lifetime else ""
    link = f"<{_link_target(report_url)}|Open the report>"
    if len(link) + len(lifetime) + 20 > MAX_SECTION_TEXT:
        return _section("*Report*: the link is too long for Slack; open the run's page instead.")
    return _section(f"*Report*: {link}{lifetime}")


# --------------------------------------------------------------------------- messages


def success_message(*, run_id: str, requested_by: str | None, dataset: str, as_of: str,
                    forecast_rows: Sequence[Mapping[str, Any]], by: Sequence[str],
                    warnings: Sequence[str] = (), report_url: str | None = None,
                    link_lifetime: str | None = None, horizon: int | None = None,
                    top_n: int = 5, confidence: float | None = None,
                    target_roas: float | None = None,
                    payback: Mapping[tuple[str, ...], Mapping[str, Any]] | None = None,
                    limits: decision.Thresholds | None = None) -> dict:
    """Block Kit payload announcing a finished forecast run.

    Parameters
    ----------
    run_id, requested_by, dataset, as_of
        Shown in the header and the fields section.
    forecast_rows
        ``forecast.csv`` rows as dicts (strings are fine).
    payback
        Each group's days to payback (:func:`ltvcore.decision.payback_days` of params.json).
    by
        The run's ``--by`` columns; they name each group.
    warnings
        Listed under "Warnings" (truncated to Slack's limits).
    report_url, link_lifetime
        The report link and how long it stays valid, in words ("7 days").
    horizon
        The horizon to rank by; default 365 days when present, else the largest.
    top_n
        How many groups to list: with spend in :func:`ltvcore.decision.decide`'s order (the
        report's and run page's), labelled scale / watch / cut; without, best forecast LTV first.
    confidence
        The interval level (e.g. 0.99), stated when given.
    target_roas
        The run's target ROAS, stated in the rule when given.

    Returns
    -------
    dict
        ``{"text": fallback, "blocks": [...]}``, JSON-serialisable.
    """
    # No rows (e.g. forecast.csv unreadable): still announce the run, say so, never raise.
    h = main_horizon(forecast_rows, horizon) if forecast_rows else None
    groups = sorted(_groups_at(forecast_rows, by, h), key=_sort_key) if h is not None else []
    with_roas = _has_spend(forecast_rows)
    verdicts = (decision.decide(forecast_rows, by, horizon=h, payback=payback, limits=limits)
                if h is not None else [])
    verdict_of = {_group_label(dict(zip(by, v.group)), by): v for v in verdicts}
    if verdicts:  # labelled groups first, in the one decision order; then the rest by LTV
        rank = {label: i for i, label in enumerate(verdict_of)}
        groups.sort(key=lambda g: (rank.get(g.label, len(rank)), _sort_key(g)))
    max_days = max(_horizons(forecast_rows)) if forecast_rows else 0

    by_text = ", ".join(by) if by else "all users"
    level = f"{confidence:.0%} " if confidence is not None else ""
    blocks: list[dict] = [
        _header(f"LTV forecast ready · run {run_id}"),
        _fields([
            ("Requested by", _who(requested_by)),
            ("Dataset", escape(dataset)),
            ("As of", escape(as_of)),
            ("Groups", f"{len(groups):,} by {escape(by_text)}"),
        ]),
        _divider(),
    ]

    top = groups[: max(0, top_n)]
    if h is None:
        blocks.append(_section("*No forecast rows* were available to summarise; see the report."))
    else:
        ranked_by = "by payback probability" if verdicts else "by forecast LTV"
        head = (f"*Top {len(top)} of {len(groups)} groups {ranked_by} at {h} days* "
                f"({level}interval in brackets; LTV per installed user)")
        lines = [_group_line(g, with_roas, verdict_of.get(g.label), max_days) for g in top]
        blocks.append(_section(_join_within(lines, head=head)))

        rule = decision_rule(bool(verdicts), h, target_roas, limits)
        summary = f"{decision.counts_text(verdicts)}. {rule}." if verdicts else rule
        outside = [g.label for g in groups[len(top):]
                   if g.label in verdict_of and verdict_of[g.label].label == decision.SCALE]
        if outside:
            summary += " Also to scale: " + ", ".join(escape(x) for x in outside)
        blocks.append(_context(_truncate(summary, MAX_SECTION_TEXT)))

    if warnings:
        wlines = [f"• {escape(w)}" for w in warnings]
        blocks.append(_section(_join_within(wlines, head=f"*Warnings ({len(warnings)})*")))

    blocks.append(_report_block(report_url, link_lifetime))
    models = sorted({g.model for g in groups if g.model})
    ctx = f"run `{escape(run_id)}`"
    if models:
        ctx += " · model " + ", ".join(escape(m) for m in models)
    blocks.append(_context(ctx))

    best = top[0] if top else None
    fallback = f"LTV forecast {run_id} ready: {dataset} as of {as_of}"
    if best is not None:
        fallback += (f"; top {best.label} p_payback {verdict_of[best.label].p_payback:.0%}"
                     if best.label in verdict_of else
                     f"; best {best.label} LTV {money(best.ltv)} at {h} days")
    if verdicts:
        fallback += f"; {decision.counts_text(verdicts)}"
    if warnings:
        fallback += f"; {len(warnings)} warning(s)"
    return _payload(fallback, blocks)


def failure_message(*, run_id: str | None, requested_by: str | None, dataset: str | None,
                    error: str, where_to_look: str | None = None) -> dict:
    """Block Kit payload announcing a failed run, with the error in plain words.

    ``where_to_look`` is a URL (rendered as a link) or a sentence (e.g. a log group name).
    """
    run = run_id or "(no run id)"
    error_text = (error or "").strip() or "The run failed without an error message."
    blocks: list[dict] = [
        _header(f"LTV forecast failed · run {run}"),
        _fields([
            ("Requested by", _who(requested_by)),
            ("Dataset", escape(dataset) if dataset else "_unknown_"),
        ]),
        _section(_truncate(f"*What went wrong*\n{escape(error_text)}", MAX_SECTION_TEXT)),
    ]
    if where_to_look:
        target = where_to_look.strip()
        if target.startswith(("https://", "http://")):
            look = f"<{_link_target(target)}|Open the details>"
        else:
            look = escape(target)
        blocks.append(_section(_truncate(f"*Where to look*\n{look}", MAX_SECTION_TEXT)))
    blocks.append(_context(f"run `{escape(run)}` did not complete"))
    first_line = error_text.splitlines()[0]
    return _payload(f"LTV forecast {run} failed ({dataset or 'unknown dataset'}): {first_line}",
                    blocks)


def workflow_error_text(error: dict[str, Any]) -> str:
    """The workflow's caught error (``{"Error", "Cause"}``) as a sentence for people."""
    name, cause = str(error.get("Error") or ""), str(error.get("Cause") or "")
    try:  # a Lambda's error arrives as a JSON cause with its own type and message
        details = json.loads(cause)
        if isinstance(details, dict) and "errorMessage" in details:
            name, cause = str(details.get("errorType") or name), str(details["errorMessage"])
    except ValueError:
        pass
    if name == "InputError":
        return f"The request or its data was not usable: {cause}"
    if name in ("PipelineFailed", "PipelineStopped"):
        return f"The forecast pipeline did not finish. {cause}"
    if name == "States.Timeout":
        return "The forecast pipeline did not report back in time; the run was given up."
    return f"{name or 'Error'}: {cause[:1000]}" if cause else (name or "The run failed.")
