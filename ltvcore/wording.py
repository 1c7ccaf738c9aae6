"""Words for people reading the web pages and the report rather than the command line.

Warnings and errors are written once, where they arise, and name the CLI's options
(``--observe-days``); the run page and the report show them to marketers who use the form, so
they are rephrased here for both audiences ("the observed-days setting"). Pure Python: the API
Lambda imports it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["FIELD_LABELS", "SPLIT_WARNING", "field_message", "no_decision_text", "no_roas_text",
           "spend_was_split", "web_text", "web_texts"]

SPLIT_WARNING = "spend is per campaign, so ROAS is given only"
"""How the forecast's warning starts when spend was given but the run is not by campaign."""

# Whole phrases first (they read better than a word-for-word swap), then each option.
_PHRASES = (
    ("so ROAS is given only with --by campaign",
     "so ROAS is given only when the forecast is grouped by campaign alone"),
    ("lower --observe-days or move --as-of",
     "lower the observed-days setting or move the as-of date"),
    ("fix the date, or pass --as-of", "fix the date, or set the as-of date"),
)
_OPTIONS = {
    "--observe-days": "the observed-days setting",
    "--window-days": "the install-window setting",
    "--as-of": "the as-of date",
    "--by": "the group-by setting",
    "--spend": "a spend file",
    "--installs": "an installs file",
    "--events": "the events file",
    "--horizons": "the horizons setting",
    "--confidence": "the interval-confidence setting",
    "--target-roas": "the target-ROAS setting",
    "--model": "the model setting",
    "--retention": "the retention-fit setting",
}
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
# "--by column 'os'": the column is the subject, not the option
_BY_COLUMN = re.compile(r"(?<![\w-])--by column")


def web_text(text: str) -> str:
    """``text`` without command-line options, for the run page and the report."""
    for cli, plain in _PHRASES:
        text = text.replace(cli, plain)
    text = _BY_COLUMN.sub("group-by column", text)
    return _OPTION.sub(lambda m: _OPTIONS.get(m.group(0), "the " + m.group(0)[2:] + " setting"),
                       text)


def web_texts(texts: Iterable[str]) -> list[str]:
    return [web_text(str(t)) for t in texts]


def spend_was_split(warnings: Iterable[str]) -> bool:
    """Whether the run had spend that a segment split kept from becoming ROAS."""
    return any(str(w).startswith(SPLIT_WARNING) for w in warnings)


def _groups(by: Sequence[str]) -> str:
    return ", ".join(by) or "campaign"


def no_decision_text(by: Sequence[str], warnings: Iterable[str]) -> str:
    """Why a run has no decision (replaces :func:`ltvcore.decision.no_spend_text` on the web).

    Spend is per campaign, so ROAS, payback and the decision exist only for a run grouped by
    campaign alone: a run split by segments says so rather than asking for spend.
    """
    tail = "so no group has a payback probability and none is labelled scale, watch or cut."
    if list(by) != ["campaign"]:
        if spend_was_split(warnings):
            return (f"A decision needs ROAS, and spend is per campaign: this run is grouped by "
                    f"{_groups(by)}, {tail} Forecast by campaign alone to get one.")
        return (f"A decision needs spend and a forecast grouped by campaign alone: this run has "
                f"no spend and is grouped by {_groups(by)}, {tail}")
    return ("A decision needs spend: this run has no spend data, so no campaign has a payback "
            "probability and none is labelled scale, watch or cut. Add spend per campaign to "
            "the data to get one.")


def no_roas_text(by: Sequence[str], warnings: Iterable[str]) -> str:
    """Why a run has no ROAS (the report's ROAS section)."""
    if list(by) != ["campaign"] and spend_was_split(warnings):
        return (f"No ROAS in this run: spend is per campaign, and this run is grouped by "
                f"{_groups(by)}. Forecast by campaign alone to compare campaigns against their "
                "cost.")
    if list(by) != ["campaign"]:
        return (f"No spend data in this run, so ROAS cannot be computed (and it would need a "
                f"forecast grouped by campaign alone; this one is grouped by {_groups(by)}).")
    return ("No spend data in this run, so ROAS cannot be computed. Add spend per campaign to "
            "the data to compare campaigns against their cost.")


# --------------------------------------------------------------------------- form errors

#: The form's label of each request field (``ltvcore/api/templates/form.html``).
FIELD_LABELS = {
    "dataset": "Dataset", "by": "Group by", "as_of": "As of", "observe_days": "Observed days",
    "window_days": "Install window", "horizons": "Horizons", "confidence": "Interval confidence",
    "target_roas": "Target ROAS", "model": "Model", "retention": "Retention fit",
    "notify": "Slack channels", "seed": "Seed", "body": "Request",
}
_DAY_FIELDS = frozenset({"observe_days", "window_days", "horizons"})
_NOT_WHOLE = re.compile(r"(?s)(.+) is not a whole number")
_RANGE = re.compile(r"(-?[0-9]+) is out of range \[([0-9]+), ([0-9]+)\]")
_CONFIDENCE = re.compile(r"(?s)(.+) must be a number in \[0\.5, 1\), e\.g\. 0\.99")
_TARGET = re.compile(r"(?s)(.+) must be a number in \(0, ([0-9.]+)\], e\.g\. 1\.0 for break-even")
_CHOICE = re.compile(r"(?s)(.+) is not a (model|retention fit) \(choose from (.+)\)")
_DATE = re.compile(r"(?s)(.+) is not a date YYYY-MM-DD")
_PLAIN = {
    "must be a list": "give a comma-separated list",
    "must list at least one horizon": "give at least one horizon, e.g. 30,90,180,365",
    "must name at least one column, e.g. campaign": "pick at least one column, e.g. campaign",
    "names a column twice": "the same column is picked twice",
    "must be at least observe_days": "must be at least the observed days",
    "is required": "this is required",
    "must be text, the name of a dataset folder": "pick one of the datasets",
}


def _reason(field: str, reason: str) -> str:
    days = field in _DAY_FIELDS
    if reason in _PLAIN:
        return _PLAIN[reason]
    if reason.startswith("is not a request field"):
        return f"'{field}' is not something the form can set"
    if reason.startswith("unknown field"):
        return f"'{field}' is not something the form can set"
    if m := _NOT_WHOLE.fullmatch(reason):
        return f"{m[1]} is not a number of days" if days else f"{m[1]} is not a whole number"
    if m := _RANGE.fullmatch(reason):
        low = int(m[1]) < int(m[2])
        size = ("few" if low else "many") if days else ("low" if low else "high")
        return f"{m[1]} is too {size}{' days' if days else ''}; use {m[2]} to {m[3]}"
    if m := _CONFIDENCE.fullmatch(reason):
        return (f"{m[1]} is not a confidence between 0.5 and 1; "
                "use e.g. 0.99 for 99% intervals")
    if m := _TARGET.fullmatch(reason):
        return (f"{m[1]} is not a ROAS between 0 and {m[2]}; use e.g. 1.0 for break-even "
                "(revenue equal to spend)")
    if m := _CHOICE.fullmatch(reason):
        return f"{m[1]} is not a {m[2]} we offer; choose one of {m[3]}"
    if m := _DATE.fullmatch(reason):
        return f"{m[1]} is not a date (write it as YYYY-MM-DD, e.g. 2026-03-31)"
    return web_text(reason)


def field_message(field: str, reason: str) -> str:
    """What the form shows next to ``field``: its label and the reason in plain words.

    ``reason`` is the validator's (:mod:`ltvcore.request`, :mod:`ltvcore.api.models`), which
    the CLI prints as written; e.g. ``horizons`` / ``'x' is not a whole number`` →
    ``Horizons: 'x' is not a number of days``.
    """
    label = FIELD_LABELS.get(field, field.replace("_", " ").capitalize())
    return f"{label}: {_reason(field, reason)}"
