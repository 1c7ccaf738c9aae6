"""The challenger rule: when a new version is set ``challenger`` without a person deciding.

A new (``dev``) version becomes ``challenger`` when

- its out-of-fold MAPE at 180 days (or at its longest backtested horizon when it has no 180) is
  lower than the current champion's at that horizon by at least :data:`MAPE_MARGIN` percentage
  points, **and** its interval coverage there is within :data:`COVERAGE_TOLERANCE` points of the
  nominal level (99 % intervals should hold 94–100 % of the actuals);
- **or** when the name has no champion yet (there is nothing to beat, and a person still decides
  who becomes champion).

Why these numbers: a point of MAPE is about the spread between seeds of one backtest (smaller
gains are noise, and a challenger nobody can tell apart from the champion only costs a
reviewer's time); intervals off by more than five points mislead a decision more than a point of
accuracy helps it. Pure Python: the numbers come from the versions' cards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["COVERAGE_TOLERANCE", "MAPE_MARGIN", "RULE_HORIZON", "RULE_TEXT", "Verdict",
           "challenger_verdict"]

RULE_HORIZON = 180
MAPE_MARGIN = 1.0  # percentage points
COVERAGE_TOLERANCE = 5.0  # points around nominal
RULE_TEXT = (f"challenger when out-of-fold MAPE at {RULE_HORIZON} days (or the longest horizon "
             f"backtested) beats the champion's by at least {MAPE_MARGIN:g} point and interval "
             f"coverage is within {COVERAGE_TOLERANCE:g} points of nominal, or when there is no "
             "champion yet")


@dataclass(frozen=True)
class Verdict:
    challenger: bool
    reason: str


def _horizons(backtest: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    found = backtest.get("horizons") if isinstance(backtest, Mapping) else None
    if not isinstance(found, Mapping):
        return {}
    return {int(h): row for h, row in found.items()
            if isinstance(row, Mapping) and isinstance(row.get("mape"), (int, float))}


def _rule_horizon(horizons: Mapping[int, Any]) -> int | None:
    if RULE_HORIZON in horizons:
        return RULE_HORIZON
    return max(horizons) if horizons else None


def challenger_verdict(candidate: Mapping[str, Any], champion: Mapping[str, Any] | None, *,
                       champion_version: str | None = None) -> Verdict:
    """Whether a version with backtest summary ``candidate`` becomes challenger against the
    champion's summary (None: no champion), and the reason with the numbers.

    A summary is ``{"nominal": 99.0, "horizons": {"180": {"mape": 12.1, "coverage": 97.0}}}``
    (percent; written by :mod:`ltvcore.lifecycle.training` into each version's card).
    """
    mine = _horizons(candidate)
    horizon = _rule_horizon(mine)
    if champion is None:
        shown = "" if horizon is None else f"; MAPE at {horizon} d {float(mine[horizon]['mape']):.1f}%"
        coverage = None if horizon is None else mine[horizon].get("coverage")
        nominal = candidate.get("nominal")
        if isinstance(coverage, (int, float)) and isinstance(nominal, (int, float)):
            shown += f", coverage {float(coverage):.1f}% (nominal {float(nominal):g}%)"
        return Verdict(True, f"no champion yet{shown}")
    if horizon is None:
        return Verdict(False, "no out-of-fold MAPE recorded: the rule cannot compare")
    theirs = _horizons(champion)
    if horizon not in theirs:
        common = sorted(set(mine) & set(theirs))
        if not common:
            return Verdict(False, f"the champion has no backtest at {horizon} days or any "
                                  "horizon in common: the rule cannot compare")
        horizon = common[-1]
    mape, rival = float(mine[horizon]["mape"]), float(theirs[horizon]["mape"])
    who = f"champion {champion_version}" if champion_version else "the champion"
    gain = rival - mape
    parts = [f"MAPE at {horizon} d {mape:.1f}% vs {who} {rival:.1f}% "
             f"({gain:+.1f} points; needs +{MAPE_MARGIN:g})"]
    coverage = mine[horizon].get("coverage")
    nominal = candidate.get("nominal")
    covered = isinstance(coverage, (int, float)) and isinstance(nominal, (int, float)) \
        and abs(float(coverage) - float(nominal)) <= COVERAGE_TOLERANCE
    if isinstance(coverage, (int, float)) and isinstance(nominal, (int, float)):
        parts.append(f"coverage {float(coverage):.1f}% vs nominal {float(nominal):g}% "
                     f"(within {COVERAGE_TOLERANCE:g} needed)")
    else:
        parts.append("no interval coverage recorded")
    passes = gain >= MAPE_MARGIN - 1e-9 and covered
    return Verdict(passes, "; ".join(parts))
