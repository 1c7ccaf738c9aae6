"""The observed activity-rate curve, preprocessed as the method prescribes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LOGIN_DAY1_RATE", "ActivityCurve", "activity_curve"]

#: Median day-1 activity rate from which the data read as logins rather than purchases. Games
#: keep 20–50% of players on day 1; shoppers buy again the next day at a few percent.
LOGIN_DAY1_RATE = 0.1


@dataclass(frozen=True)
class ActivityCurve:
    """Activity rate by day since install, pooled over a group's cohorts.

    Attributes
    ----------
    rate
        ``(G, D)`` running-minimum activity rate (non-increasing in ``t``); ``0`` where unobserved.
    at_risk
        ``(G, D)`` users whose cohort observed day ``t`` (the weight of each point).
    last_day
        ``(G,)`` last observed day per group.
    """

    rate: np.ndarray
    at_risk: np.ndarray
    last_day: np.ndarray

    @property
    def observed(self) -> np.ndarray:
        return self.at_risk > 0

    @property
    def day1_rates(self) -> np.ndarray:
        """``(G,)`` day-1 activity rate of each group (0 before anyone reached day 1)."""
        return self.rate[:, 1] if self.rate.shape[1] > 1 else np.zeros(self.rate.shape[0])

    @property
    def day1_rate(self) -> float:
        """Median over groups of the day-1 activity rate."""
        return float(np.median(self.day1_rates))

    @property
    def reads_as_logins(self) -> bool:
        """Whether "active" means a login (a living user skips days) rather than a purchase."""
        return self.day1_rate >= LOGIN_DAY1_RATE


def activity_curve(active: np.ndarray, at_risk: np.ndarray) -> ActivityCurve:
    """Activity rate ``active / at_risk`` made non-increasing by its running minimum.

    Activity is not survival (a living user skips days; weekends lift logins), so wherever the
    rate rises above the minimum of earlier days it is replaced by that minimum.
    """
    observed = at_risk > 0
    raw = np.divide(active, at_risk, out=np.zeros_like(active, dtype=float), where=observed)
    raw = np.clip(raw, 0.0, 1.0)
    # Unobserved days must not lower the running minimum: give them +inf, then zero them.
    rate = np.minimum.accumulate(np.where(observed, raw, np.inf), axis=1)
    rate = np.where(observed, rate, 0.0)
    last_day = np.where(observed.any(axis=1), observed.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1), -1)
    return ActivityCurve(rate=rate, at_risk=at_risk.astype(float), last_day=last_day)
