"""The one decision rule: which campaigns to scale, watch or cut, shared by every view.

The report, the run page (via the API's ``decision`` list) and the Slack message all label and
rank through :func:`decide`, so the three can never disagree on the same ``forecast.csv``.

A group's label comes from ``p_payback`` at the main horizon (365 days when forecast, else the
longest): the probability that its ROAS reaches the run's target ROAS there. ``scale`` when
``p_payback ≥ scale``, ``cut`` when ``p_payback ≤ cut``, ``watch`` between. The thresholds are
the team's (``LTV_DECISION_SCALE``, ``LTV_DECISION_CUT``; read only by :func:`thresholds`).
Without spend there is no ``p_payback`` and so no label: an LTV alone says nothing about
paying back.

Pure Python (no pandas): rows are the dicts ``csv.DictReader`` yields for ``forecast.csv``, or
records of a frame; every value may be a string, a float or NaN.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CUT", "DEFAULT_THRESHOLDS", "Decision", "LABELS", "MAIN_HORIZON", "SCALE", "WATCH",
           "Thresholds", "counts", "counts_text", "days_text", "decide", "has_payback",
           "main_horizon", "no_spend_text", "recorded", "rule_text", "thresholds"]

SCALE, WATCH, CUT = "scale", "watch", "cut"
LABELS = (SCALE, WATCH, CUT)
#: The horizon decisions are made on, when the run has it; otherwise the longest one.
MAIN_HORIZON = 365
SCALE_VARIABLE = "LTV_DECISION_SCALE"
CUT_VARIABLE = "LTV_DECISION_CUT"


@dataclass(frozen=True)
class Thresholds:
    """``scale``: the least ``p_payback`` to scale; ``cut``: the most to cut (``cut < scale``)."""

    scale: float = 0.8
    cut: float = 0.2

    def __post_init__(self) -> None:
        for name, value in (("scale", self.scale), ("cut", self.cut)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"decision threshold {name}={value!r} must be a probability "
                                 "in [0, 1]")
        if not self.cut < self.scale:
            # equal thresholds would leave no "watch" and make a group both scale and cut
            raise ValueError(f"decision thresholds need cut < scale (got cut={self.cut:g}, "
                             f"scale={self.scale:g})")

    def label(self, p_payback: float | None) -> str | None:
        """The label of one probability; None without one (no spend)."""
        if p_payback is None or math.isnan(p_payback):
            return None
        if p_payback >= self.scale:
            return SCALE
        if p_payback <= self.cut:
            return CUT
        return WATCH


DEFAULT_THRESHOLDS = Thresholds()


#: Where a run's ``params.json`` keeps the thresholds in force when it was forecast.
RECORD_KEY = "decision_thresholds"


def recorded(params: Mapping[str, Any] | None) -> Thresholds:
    """The thresholds a run was forecast under (its ``params.json``), so that its report, page
    and message label it the same whenever they are made; the team's current ones for a run
    that recorded none (forecast before they were recorded)."""
    value = (params or {}).get(RECORD_KEY)
    if isinstance(value, Mapping):
        try:
            return Thresholds(scale=value["scale"], cut=value["cut"])
        except (KeyError, ValueError):
            pass
    return thresholds()


def thresholds(environ: Mapping[str, str] | None = None) -> Thresholds:
    """The team's thresholds from ``LTV_DECISION_SCALE`` / ``LTV_DECISION_CUT`` (defaults 0.8 /
    0.2); ``ValueError`` naming the variable when one is not a probability or ``cut ≥ scale``."""
    env = os.environ if environ is None else environ
    values: dict[str, float] = {}
    for field, variable, default in (("scale", SCALE_VARIABLE, DEFAULT_THRESHOLDS.scale),
                                     ("cut", CUT_VARIABLE, DEFAULT_THRESHOLDS.cut)):
        text = (env.get(variable) or "").strip()
        if not text:
            values[field] = default
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0.0 <= value <= 1.0:  # also refuses nan
            raise ValueError(f"{variable}={text[:40]!r} must be a probability in [0, 1], "
                             f"e.g. {default}")
        values[field] = value
    try:
        return Thresholds(**values)
    except ValueError as error:
        raise ValueError(f"{SCALE_VARIABLE} / {CUT_VARIABLE}: {error}") from None


@dataclass(frozen=True)
class Decision:
    """One ranked group at the main horizon."""

    group: tuple[str, ...]  # the by columns' values, in by order
    label: str
    p_payback: float
    roas: float | None
    roas_lower: float | None
    roas_upper: float | None
    days: float | None  # days to payback; None: not within the curve's days
    days_lower: float | None
    days_upper: float | None
    spend: float | None
    users: float | None

    def as_dict(self, by: Sequence[str]) -> dict[str, Any]:
        """JSON-ready (the API's ``decision`` list)."""
        return {"group": dict(zip(by, self.group)), "label": self.label,
                "p_payback": self.p_payback, "roas": self.roas, "roas_lower": self.roas_lower,
                "roas_upper": self.roas_upper, "days_to_payback": self.days,
                "days_to_payback_lower": self.days_lower,
                "days_to_payback_upper": self.days_upper, "spend": self.spend,
                "users": self.users}


def number(value: Any) -> float | None:
    """A finite number from a CSV cell or JSON value, else None (empty, text, NaN, bool)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def main_horizon(horizons: Sequence[int]) -> int:
    """365 days when forecast, else the longest horizon."""
    present = sorted({int(h) for h in horizons})
    if not present:
        raise ValueError("no horizons")
    return MAIN_HORIZON if MAIN_HORIZON in present else present[-1]


def _horizons(rows: Sequence[Mapping[str, Any]]) -> list[int]:
    return sorted({int(h) for h in (number(r.get("horizon_days")) for r in rows) if h is not None})


def has_payback(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any group has a ``p_payback`` (the run had spend, by campaign)."""
    return any(number(row.get("p_payback")) is not None for row in rows)


def payback_days(params: Mapping[str, Any], by: Sequence[str]) -> dict[tuple[str, ...], dict]:
    """Each group's days to payback from ``params.json`` (its ``"payback"`` entries)."""
    found = {}
    for entry in params.get("groups") or ():
        key, payback = entry.get("key") or {}, entry.get("payback")
        if isinstance(payback, Mapping):
            found[tuple("" if key.get(c) is None else str(key.get(c)) for c in by)] = dict(payback)
    return found


def decide(rows: Sequence[Mapping[str, Any]], by: Sequence[str], *, horizon: int | None = None,
           limits: Thresholds | None = None,
           payback: Mapping[tuple[str, ...], Mapping[str, Any]] | None = None) -> list[Decision]:
    """Labelled groups, best first: by ``p_payback`` at ``horizon`` (default the main one),
    then by expected ROAS, then by name. Groups without ``p_payback`` (no spend) are left out.
    ``payback`` (:func:`payback_days`) gives their days to payback.
    """
    limits = limits or thresholds()
    present = _horizons(rows)
    if not present:
        return []
    h = main_horizon(present) if horizon is None else int(horizon)
    seen: dict[tuple[str, ...], Decision] = {}
    for row in rows:
        rh = number(row.get("horizon_days"))
        p = number(row.get("p_payback"))
        if rh is None or int(rh) != h or p is None:
            continue
        group = tuple("" if row.get(c) is None else str(row.get(c)) for c in by)
        label = limits.label(p)
        if group in seen or label is None:
            continue
        days = (payback or {}).get(group, {})
        seen[group] = Decision(
            group=group, label=label, p_payback=p, roas=number(row.get("roas")),
            roas_lower=number(row.get("roas_lower")), roas_upper=number(row.get("roas_upper")),
            days=number(days.get("days")), days_lower=number(days.get("days_lower")),
            days_upper=number(days.get("days_upper")), spend=number(row.get("spend")),
            users=number(row.get("users")))
    return sorted(seen.values(), key=lambda d: (-d.p_payback, -(d.roas if d.roas is not None
                                                               else -math.inf), d.group))


def counts(decisions: Sequence[Decision]) -> dict[str, int]:
    """``{label: how many}`` for every label (zeros included)."""
    return {label: sum(d.label == label for d in decisions) for label in LABELS}


def counts_text(decisions: Sequence[Decision]) -> str:
    """``"N to scale, M to watch, K to cut"``."""
    n = counts(decisions)
    return f"{n[SCALE]} to scale, {n[WATCH]} to watch, {n[CUT]} to cut"


def days_text(days: float | None, max_days: int) -> str:
    """Days to payback in words: ``"45"``, or ``"not within 365 days"``."""
    return f"not within {max_days} days" if days is None else f"{int(days)}"


def rule_text(limits: Thresholds, horizon: int, target_roas: float | None) -> str:
    """The rule in words, as every view states it."""
    target = "the target ROAS" if target_roas is None else f"{float(target_roas):.2f}x"
    return (f"p_payback = probability that ROAS at {horizon} days reaches {target}; "
            f"scale when ≥ {limits.scale:g}, cut when ≤ {limits.cut:g}, watch between")


def no_spend_text() -> str:
    """What every view says instead of labels when the run had no spend."""
    return ("A decision needs spend: no spend was given (or the run is not by campaign), so no "
            "campaign has a payback probability and none is labelled scale, watch or cut.")
