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
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtri

if TYPE_CHECKING:
    from ltvcore.data.cohorts import CohortData

__all__ = ["CurveLTV", "fit_interval", "observed_ltv", "realised_variance", "unobserved_share", "widen",
           "z_value"]


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

    half = z * np.sqrt(var_projection + realised_variance(ltv, last_day, user_sd, users,
                                                          unobserved))
    return widen(ltv, half, half, last_day, z, extrapolation_sd)


def unobserved_share(at_risk: np.ndarray, users: np.ndarray, fit_users: np.ndarray,
                     n_days: int) -> np.ndarray:
    """``(G, n_days)`` share of each group's user-days ``0 … d`` that no fit has seen yet.

    ``at_risk`` is users observed at each age ``(G, D)``; users of cohorts too young to feed the
    fit (``users − fit_users``) count as unobserved throughout.
    """
    n_groups, width = at_risk.shape
    span = min(width, n_days)
    seen = np.zeros((n_groups, n_days))
    seen[:, :span] = at_risk[:, :span]
    days = np.arange(1, n_days + 1)[None, :]
    unobserved = 1.0 - np.divide(np.cumsum(seen, axis=1), at_risk[:, :1] * days,
                                 out=np.zeros_like(seen), where=at_risk[:, :1] > 0)
    fitted_share = np.divide(fit_users, np.maximum(users, 1))
    return np.clip(1.0 - (1.0 - unobserved) * fitted_share[:, None], 0.0, 1.0)


def realised_variance(ltv: np.ndarray, last_day: np.ndarray, user_sd: np.ndarray,
                      users: np.ndarray, unobserved: np.ndarray | None = None) -> np.ndarray:
    """``(G, D)`` variance of a group's realised mean LTV around its expectation.

    The per-user spread of observed revenue is scaled from the observed span to each day by the
    LTV's growth, divided by the group's users, and counted only on the share of user-days not
    yet observed (``unobserved``, default all).
    """
    n_days = ltv.shape[1]
    observed_ltv = np.take_along_axis(ltv, np.clip(last_day, 0, n_days - 1)[:, None], axis=1)
    scale = np.divide(ltv, observed_ltv, out=np.ones_like(ltv), where=observed_ltv > 0)
    var = (user_sd[:, None] * np.maximum(scale, 1.0)) ** 2 / np.maximum(users, 1)[:, None]
    return var if unobserved is None else var * unobserved


def widen(ltv: np.ndarray, below: np.ndarray, above: np.ndarray, last_day: np.ndarray,
          z: float, extrapolation_sd: float) -> CurveLTV:
    """Band ``ltv − below … ltv + above`` widened by the extrapolation error, kept monotone.

    The projected part of the LTV (revenue after each group's last observed day) is uncertain by
    a factor ``exp(±z·s)``, ``s = extrapolation_sd · √ln((d+1)/(last+1))``, combined with the
    given half-widths in quadrature.
    """
    n_days = ltv.shape[1]
    day = np.arange(n_days)[None, :]
    future = day > last_day[:, None]
    observed_ltv = np.take_along_axis(ltv, np.clip(last_day, 0, n_days - 1)[:, None], axis=1)
    projected = np.maximum(ltv - observed_ltv, 0.0)
    reach = np.log((day + 1.0) / (np.maximum(last_day, 0)[:, None] + 1.0))
    spread = np.where(future, extrapolation_sd * np.sqrt(np.maximum(reach, 0.0)), 0.0)
    lower = np.maximum(ltv - np.hypot(below, projected * (1.0 - np.exp(-z * spread))), 0.0)
    upper = ltv + np.hypot(above, projected * np.expm1(z * spread))
    return CurveLTV(ltv=ltv, lower=np.maximum.accumulate(lower, axis=1),
                    upper=np.maximum.accumulate(upper, axis=1))


def observed_ltv(data: CohortData) -> np.ndarray:
    """Cumulative observed revenue per user at risk, by day: ``(G, D)``."""
    daily = np.divide(data.revenue, data.at_risk, out=np.zeros_like(data.revenue),
                      where=data.at_risk > 0)
    return np.cumsum(daily, axis=1)
