"""Horizon LTV: cumulative revenue per installed user, with honest intervals.

``LTV_H`` is the revenue per installed user over days ``0 … H-1``. Days a group has already
observed use the pooled observed revenue per user at risk; later days are projected as
``ARPU × R(t)``. The interval of one retention fit combines, by the delta method,

* the fit's parameter uncertainty (dispersion-scaled covariance),
* the ARPU standard error (retention and ARPU independent, as in the method), and
* the sampling noise of the group's mean (few users, heavy-tailed spending: a small
  campaign's revenue per user is a noisy estimate of what its users are worth, even where it is
  fully observed), and
* extrapolation error: the projected part ``F`` (revenue after the last observed day) is
  uncertain by a factor ``exp(±z·s)`` with ``s = extrapolation_sd · √ln((d+1)/(last+1))``,
  growing with how far the horizon lies beyond the data. Parameter uncertainty alone ignores
  that the retention law itself may be wrong past the observed days (a wear-out churn looks
  like any other in week one); ``extrapolation_sd`` is calibrated on backtests (see
  ``benchmarks/``) and recorded with every run.

With two retention fits the interval is the union of both fits' intervals, so it always
contains the disagreement between them: the ensemble is never more certain than either fit.

The band is for the *expected* LTV per user of the group (what one more user bought from the
campaign is worth, the quantity a budget decision is about), so the sampling noise of the days
already observed counts too, and a horizon the group has reached keeps a band. It covers the
users' own realised LTV as well: that differs from the observed mean only by the noise of the
user-days still to come, a part of the same variance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtri

if TYPE_CHECKING:
    from ltvcore.data.cohorts import CohortData

__all__ = ["CurveLTV", "fit_interval", "observed_ltv", "sampling_variance", "widen", "z_value"]


def z_value(confidence: float) -> float:
    """Two-sided normal quantile: 2.576 for 0.99."""
    return float(ndtri(0.5 + confidence / 2))


@dataclass(frozen=True)
class CurveLTV:
    """Cumulative LTV by day for ``G`` groups: ``ltv``, ``lower``, ``upper`` of shape ``(G, D)``."""

    ltv: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def at(self, horizons) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values at horizons ``H`` (LTV_H covers days ``0 … H-1``): each ``(G, len(horizons))``."""
        idx = np.asarray(horizons) - 1
        return self.ltv[:, idx], self.lower[:, idx], self.upper[:, idx]


def fit_interval(observed_daily: np.ndarray, last_day: np.ndarray, rate: np.ndarray,
                 jacobian: np.ndarray, cov: np.ndarray, arpu: np.ndarray, arpu_se: np.ndarray,
                 user_sd: np.ndarray, users: np.ndarray, z: float,
                 extrapolation_sd: float | np.ndarray = 0.0) -> CurveLTV:
    """Cumulative LTV curve and interval for one retention fit.

    Parameters
    ----------
    observed_daily
        ``(G, D)`` observed revenue per user at risk by day (used up to ``last_day``).
    rate, jacobian, cov
        The fit's activity rate ``(G, D)``, its Jacobian ``(G, D, P)`` and parameter covariance.
    arpu, arpu_se
        Revenue per active user-day and its standard error ``(G,)``.
    user_sd, users
        Per-user standard deviation of observed revenue and the group's installed users.
    """
    n_groups, n_days = rate.shape
    day = np.arange(n_days)[None, :]
    future = day > last_day[:, None]
    daily = np.where(future, arpu[:, None] * rate, observed_daily)
    ltv = np.cumsum(daily, axis=1)

    # Projected retention mass and its gradient, summed over future days only.
    mass = np.cumsum(np.where(future, rate, 0.0), axis=1)
    grad = np.cumsum(np.where(future[..., None], jacobian, 0.0), axis=1)
    var_mass = np.einsum("gdp,gpq,gdq->gd", grad, cov, grad)
    var_mass = np.maximum(var_mass, 0.0)
    var_arpu = (arpu_se**2)[:, None]
    var_projection = arpu[:, None] ** 2 * var_mass + mass**2 * var_arpu + var_arpu * var_mass

    half = z * np.sqrt(var_projection + sampling_variance(ltv, last_day, user_sd, users))
    return widen(ltv, half, half, last_day, z, extrapolation_sd)


def sampling_variance(ltv: np.ndarray, last_day: np.ndarray, user_sd: np.ndarray,
                      users: np.ndarray) -> np.ndarray:
    """``(G, D)`` variance of a group's mean LTV per user around its expectation.

    The per-user spread of observed revenue (``user_sd``, over the observed span) is carried to
    each day ``d`` by the LTV's growth: in proportion past the span (a user's revenue to come
    scales with what the forecast adds), by its square root before it (a shorter span holds
    fewer purchases, so a relatively larger spread, as for counts), then divided by the
    group's users.
    """
    n_days = ltv.shape[1]
    observed_ltv = np.take_along_axis(ltv, np.clip(last_day, 0, n_days - 1)[:, None], axis=1)
    scale = np.divide(ltv, observed_ltv, out=np.ones_like(ltv), where=observed_ltv > 0)
    scale = np.where(scale >= 1.0, scale, np.sqrt(np.maximum(scale, 0.0)))
    return (user_sd[:, None] * scale) ** 2 / np.maximum(users, 1)[:, None]


def widen(ltv: np.ndarray, below: np.ndarray, above: np.ndarray, last_day: np.ndarray,
          z: float, extrapolation_sd: float | np.ndarray) -> CurveLTV:
    """Band ``ltv − below … ltv + above`` widened by the extrapolation error, kept monotone.

    The projected part of the LTV (revenue after each group's last observed day) is uncertain by
    a factor ``exp(±z·s)``, ``s = extrapolation_sd · √ln((d+1)/(last+1))``, combined with the
    given half-widths in quadrature. ``extrapolation_sd`` is one value or one per group.
    """
    n_days = ltv.shape[1]
    day = np.arange(n_days)[None, :]
    future = day > last_day[:, None]
    observed_ltv = np.take_along_axis(ltv, np.clip(last_day, 0, n_days - 1)[:, None], axis=1)
    projected = np.maximum(ltv - observed_ltv, 0.0)
    reach = np.log((day + 1.0) / (np.maximum(last_day, 0)[:, None] + 1.0))
    per_group = np.broadcast_to(np.asarray(extrapolation_sd, dtype=float), (ltv.shape[0],))
    spread = np.where(future, per_group[:, None] * np.sqrt(np.maximum(reach, 0.0)), 0.0)
    lower = np.maximum(ltv - np.hypot(below, projected * (1.0 - np.exp(-z * spread))), 0.0)
    upper = ltv + np.hypot(above, projected * np.expm1(z * spread))
    return CurveLTV(ltv=ltv, lower=np.maximum.accumulate(lower, axis=1),
                    upper=np.maximum.accumulate(upper, axis=1))


def observed_ltv(data: CohortData) -> np.ndarray:
    """Cumulative observed revenue per user at risk, by day: ``(G, D)``."""
    daily = np.divide(data.revenue, data.at_risk, out=np.zeros_like(data.revenue),
                      where=data.at_risk > 0)
    return np.cumsum(daily, axis=1)
