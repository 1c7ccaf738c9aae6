"""The one rule that calls a group promising, shared by the report and the Slack message.

A group is promising when the lower bound of its ROAS interval at the main horizon reaches
:data:`PROMISING_ROAS`: its spend is paid back even at the pessimistic end of the interval.
Without spend there is no ROAS, so no group is called promising (an LTV compared with other
groups' says nothing about paying back).
"""

from __future__ import annotations

import math

__all__ = ["PROMISING_ROAS", "is_promising", "promising_rule"]

PROMISING_ROAS = 1.0


def is_promising(roas_lower: float | None) -> bool:
    """Whether a group with this ROAS lower bound (None: no spend) is promising."""
    return roas_lower is not None and not math.isnan(roas_lower) and roas_lower >= PROMISING_ROAS


def promising_rule(horizon: int, *, has_spend: bool) -> str:
    """The rule in words, as both the report and the message state it."""
    if not has_spend:
        return ("no spend was given, so no ROAS: a group is promising only when its ROAS lower "
                "bound can be compared with 1.00x")
    return (f"promising = ROAS lower bound ≥ {PROMISING_ROAS:.2f}x at {horizon} days "
            "(spend paid back even at the pessimistic end of the interval)")
