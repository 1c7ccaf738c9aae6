"""The observed activity-rate curve, preprocessed as the method prescribes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ActivityCurve", "activity_curve"]


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
