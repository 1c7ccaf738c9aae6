"""Retention of the users who return: any survival law fitted from day 1 on, with its own level.

Activity is not survival. A player who is still playing logs in on only some days, so the
activity rate is ``a(t) = π̄ · S(t)`` for ``t ≥ 1``, where ``π̄`` is how often a living user
logs in and ``S`` the survival law. Fitted from day 0, where every user is active by
definition, the law must explain the whole day-0 → day-1 drop (``1 − π̄ S(1)``) as churn: it
then reads a few loyal survivors behind a steep first fall, which is a heavy tail, and
over-forecasts the long horizon (by 25–50% at 180 days on login data, in the benchmarks).

:class:`ReturningRetention` leaves that one transition out: the wrapped law (sBG, BdW) is fitted
to the day-to-day survival from day 1 on, where ``π̄`` cancels, and is scaled to the observed
day-1 rate, ``a(t) = a(1) · S(t) / S(1)``. With ``π̄ = 1`` this is the same law conditioned on
reaching day 1, so it nests the day-0 fit; what it gives up is the information the first
transition carries about heterogeneity, which matters where activity is rare (purchase data:
day-1 rates of a few percent). ``auto`` chooses between the two on the data's later days.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ltvcore.retention.activity import ActivityCurve

__all__ = ["ReturningRetention"]


class SurvivalFit(Protocol):
    cov_: np.ndarray

    def fit(self, curve: ActivityCurve) -> SurvivalFit: ...

    def predict(self, n_days: int) -> np.ndarray: ...

    def jacobian(self, n_days: int) -> np.ndarray: ...

    def params(self, g: int) -> dict: ...


class ReturningRetention:
    """``inner`` (an unfitted sBG or BdW fit) from day 1 on, scaled to the day-1 activity rate."""

    def __init__(self, inner: SurvivalFit) -> None:
        self.inner = inner

    def fit(self, curve: ActivityCurve) -> ReturningRetention:
        # The day-1 column weighs the day-0 → day-1 transition: no users there, no information.
        at_risk = curve.at_risk.copy()
        at_risk[:, 1:2] = 0.0
        self.inner.fit(ActivityCurve(rate=curve.rate, at_risk=at_risk, last_day=curve.last_day))
        self.cov_ = self.inner.cov_
        self.day0_ = curve.rate[:, 0].copy()
        self.day1_ = curve.rate[:, 1].copy() if curve.rate.shape[1] > 1 else np.zeros(len(self.day0_))
        return self

    def _scale(self, law: np.ndarray) -> np.ndarray:
        return np.divide(self.day1_, law[:, 1], out=np.zeros(law.shape[0]), where=law[:, 1] > 0)

    def predict(self, n_days: int) -> np.ndarray:
        """Activity rate: the observed day-0 rate, then ``a(1) · S(t) / S(1)``; ``(G, n_days)``."""
        law = self.inner.predict(max(n_days, 2))
        rate = law * self._scale(law)[:, None]
        rate[:, 0] = self.day0_
        return rate[:, :n_days]

    def jacobian(self, n_days: int) -> np.ndarray:
        """d predict / d (the inner law's parameters), with the level ``a(1)`` held as observed."""
        size = max(n_days, 2)
        law, grad = self.inner.predict(size), self.inner.jacobian(size)
        scale = self._scale(law)[:, None, None]
        ratio = np.divide(law, law[:, 1:2], out=np.zeros_like(law), where=law[:, 1:2] > 0)
        out = scale * (grad - ratio[..., None] * grad[:, 1:2, :])
        out[:, 0] = 0.0
        return out[:, :n_days]

    def params(self, g: int) -> dict:
        return {**self.inner.params(g), "from_day": 1, "day1_rate": float(self.day1_[g])}
