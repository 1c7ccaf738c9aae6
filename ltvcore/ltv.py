"""Horizon LTV: cumulative revenue per installed user, with honest intervals.

``LTV_H`` is the revenue per installed user over days ``0 … H-1``. Days a group has already
observed use the pooled observed revenue per user at risk; later days are projected as
``ARPU × R(t)``. The interval of one retention fit combines, by the delta method,

* the fit's parameter uncertainty (dispersion-scaled covariance),
* the ARPU standard error (retention and ARPU independent, as in the method), and
* the spread of a group's *realised* mean around its expectation (few users, heavy-tailed
  spending: a small campaign's realised LTV is noisy even if the model were exact), and
* extrapolation error: the projected part ``F`` (revenue after the last observed day) is
  uncertain by a factor ``exp(±z·s)`` with ``s = extrapolation_sd · √ln((d+1)/(last+1))``,
  growing with how far the horizon lies beyond the data. Parameter uncertainty alone ignores
  that the retention law itself may be wrong past the observed days (a wear-out churn looks
  like any other in week one); ``extrapolation_sd`` is calibrated on backtests (see
  ``benchmarks/``) and recorded with every run.

With two retention fits the interval is the union of both fits' intervals, so it always
contains the disagreement between them: the ensemble is never more certain than either fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

__all__ = ["CurveLTV", "fit_interval", "z_value"]


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
                 extrapolation_sd: float = 0.0, unobserved: np.ndarray | None = None) -> CurveLTV:
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
    unobserved
        ``(G, D)`` share of the group's user-days ``0 … d`` not yet observed: only those can
        still move the realised mean (default: all of them).
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

    # Realised-mean noise: per-user spread scaled from the observed span to each horizon.
    observed_ltv = np.take_along_axis(ltv, np.clip(last_day, 0, n_days - 1)[:, None], axis=1)
    scale = np.divide(ltv, observed_ltv, out=np.ones_like(ltv), where=observed_ltv > 0)
    var_realised = (user_sd[:, None] * np.maximum(scale, 1.0)) ** 2 / np.maximum(users, 1)[:, None]
    if unobserved is not None:
        var_realised = var_realised * unobserved

    half = z * np.sqrt(var_projection + var_realised)
    projected = np.maximum(ltv - observed_ltv, 0.0)
    reach = np.log((day + 1.0) / (np.maximum(last_day, 0)[:, None] + 1.0))
    spread = np.where(future, extrapolation_sd * np.sqrt(np.maximum(reach, 0.0)), 0.0)
    below = projected * (1.0 - np.exp(-z * spread))
    above = projected * np.expm1(z * spread)
    lower = np.maximum(ltv - np.hypot(half, below), 0.0)
    upper = ltv + np.hypot(half, above)
    # The true cumulative curve is non-decreasing, so a bound at day d also bounds later days
    # from below: running maxima keep both bands monotone without narrowing the upper one.
    return CurveLTV(ltv=ltv, lower=np.maximum.accumulate(lower, axis=1),
                    upper=np.maximum.accumulate(upper, axis=1))
