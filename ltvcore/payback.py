"""Payback: the probability that a group's ROAS reaches a target, and when it gets there.

The probability comes from the same predictive distribution as the intervals. A model states,
per group and day, the median ``ltv`` and the band ``lower … upper`` at the run's confidence;
the two-piece log-normal through those three points (log-sd ``ln(ltv/lower)/z`` below the
median, ``ln(upper/ltv)/z`` above) reproduces that band exactly, so ``P(LTV_H ≥ c)`` is
``(1 − confidence)/2`` at the upper bound, ``0.5`` at the median and ``1 − (1 − confidence)/2``
at the lower bound, whatever the model.

Degenerate bands are decided explicitly rather than left to ``0/0``:

* zero width on one side: that half of the mass sits on the median (a fully observed LTV is
  known, so the probability is 0 or 1);
* ``lower = 0``: the lower tail is unbounded in log space, so below the median the
  probability stays 0.5 (the least the band guarantees);
* ``ltv = 0``: half the mass is at zero; the band says only that ``P(LTV ≥ upper)`` is the
  tail ``(1 − confidence)/2``, so a threshold at or below ``upper`` gets that tail and one above
  it gets 0.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from ltvcore.ltv import CurveLTV, z_value

__all__ = ["days_to_reach", "payback_columns", "payback_probability"]


def payback_probability(ltv: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                        threshold: np.ndarray, confidence: float) -> np.ndarray:
    """``P(LTV ≥ threshold)`` under the two-piece log-normal through ``lower, ltv, upper``.

    Arrays broadcast together; a non-finite threshold (no spend) gives NaN. The result is per
    point: take :func:`numpy.maximum.accumulate` along days for a curve (see
    :func:`payback_columns`).
    """
    ltv, lower, upper, c = np.broadcast_arrays(*(np.asarray(a, dtype=float)
                                                 for a in (ltv, lower, upper, threshold)))
    z = z_value(confidence)
    tail = (1.0 - confidence) / 2
    positive = ltv > 0
    safe_ltv = np.where(positive, ltv, 1.0)
    safe_c = np.where(c > 0, c, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_below = np.log(safe_ltv / np.maximum(lower, 0.0)) / z  # inf when lower = 0
        s_above = np.log(np.maximum(upper, safe_ltv) / safe_ltv) / z
        distance = np.log(safe_c / safe_ltv)
        below = np.where(s_below > 0, ndtr(-distance / s_below), 1.0)
        above = np.where(s_above > 0, ndtr(-distance / s_above), 0.0)
    p = np.where(c <= ltv, below, above)
    p = np.where(positive, p, np.where(c <= upper, tail, 0.0))
    p = np.where(c <= 0, 1.0, p)
    return np.where(np.isfinite(c), np.clip(p, 0.0, 1.0), np.nan)


def days_to_reach(curve: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """``(G,)`` shortest horizon ``H`` (days ``0 … H−1``) with ``curve[:, H−1] ≥ threshold``.

    NaN when the curve never reaches it (or the threshold is not finite). ``H`` rather than
    the day index keeps it in the unit of ``horizon_days``.
    """
    curve = np.asarray(curve, dtype=float)
    c = np.asarray(threshold, dtype=float)[:, None]
    reached = np.isfinite(c) & (curve >= c)
    first = np.argmax(reached, axis=1) + 1.0
    return np.where(reached.any(axis=1), first, np.nan)


def payback_columns(curve: CurveLTV, users: np.ndarray, spend: np.ndarray,
                    horizons: np.ndarray, target_roas: float,
                    confidence: float) -> dict[str, np.ndarray]:
    """Payback of ``G`` groups: ``p_payback`` for ``forecast.csv``, days for ``params.json``.

    ``spend`` is NaN (or ≤ 0) for a group without spend: its cells stay empty. Returns
    ``p_payback`` of shape ``(G, len(horizons))`` and ``days``, ``days_lower``, ``days_upper``
    of shape ``(G,)``: the expected curve's day, and the band's (upper bound first: it pays
    back soonest, so it is the interval's lower end).
    """
    spend = np.asarray(spend, dtype=float)
    users = np.asarray(users, dtype=float)
    has_cost = np.isfinite(spend) & (spend > 0) & (users > 0)
    # ROAS = LTV·users/spend, so ROAS ≥ target exactly when LTV ≥ target·spend/users.
    threshold = np.where(has_cost, target_roas * np.where(has_cost, spend, 0.0)
                         / np.where(users > 0, users, 1.0), np.nan)
    daily = payback_probability(curve.ltv, curve.lower, curve.upper, threshold[:, None],
                                confidence)
    # Cumulative revenue never falls, so neither can P(LTV_H ≥ c): a band that narrows
    # between days must not make payback look less likely later.
    daily = np.maximum.accumulate(daily, axis=1)
    idx = np.asarray(horizons) - 1
    return {
        "p_payback": daily[:, idx],
        "days": days_to_reach(curve.ltv, threshold),
        "days_lower": days_to_reach(curve.upper, threshold),
        "days_upper": days_to_reach(curve.lower, threshold),
    }
