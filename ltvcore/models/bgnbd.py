"""``--model bgnbd``: BG/NBD purchases with Gamma-Gamma spend, partially pooled across groups.

The peers' classic (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", Marketing
Science 24(2); "RFM and CLV", JMR 42(4)). A user buys at rate ``λ ~ Gamma(r, α)`` while alive
and dies with probability ``q ~ Beta(a, b)`` right after each repeat purchase, so a user who
has gone quiet may still be alive: unlike BG/BB (``btyd``), where death is a daily hazard
whatever the user does. Which one holds is the data's to say: with months of purchase history
BG/BB reads long silences as death and under-forecasts the long horizon where buyers are
BG/NBD-like (-24% at 365 days on BG/NBD data with 84 days observed, against 2% for this model;
``benchmarks/processes.py``), and ``auto`` lets the holdout choose.

Transactions are paying days after the install day (day 0 is the first purchase, observed and
never modelled); recency and age are in days. Spend per repeat paying day is Gamma-Gamma on the
user's mean amount. The forecast is the conditional expectation per user (FHL 2005, eq. 10, on a
grid of future days, interpolated), times the user's expected amount, pooled per group; observed
days enter as observed, and the interval combines the sampling noise of the group's mean with
the extrapolation spread the curve model is calibrated with (:mod:`ltvcore.ltv`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from ltvcore.arpu import estimate_arpu
from ltvcore.data.cohorts import CohortData
from ltvcore.ltv import CurveLTV, sampling_variance, widen, z_value
from ltvcore.models.base import ModelDefaults
from ltvcore.models.curve import extrapolation_sd_for
from ltvcore.models.pooling import Pooled, fit_pooled
from ltvcore.retention import activity_curve

__all__ = ["BGNBDModel", "bgnbd_loglik", "conditional_purchases", "fit_bgnbd", "fit_gamma_gamma"]

_BOUND = 12.0  # log-parameter bounds: e^±12 covers rates from minutes to decades in days


def bgnbd_loglik(log_params: np.ndarray, x: np.ndarray, tx: np.ndarray, age: np.ndarray,
                 grad: bool = False):
    """Per-row BG/NBD log-likelihood (FHL 2005, eq. 6); ``log_params`` ``(R, 4)`` = ln (r, α, a, b).

    With ``grad``, also ``(R, 4)`` derivatives with respect to the log parameters.
    """
    r, alpha, a, b = np.exp(log_params).T
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    base = betaln(a, b)
    t1 = betaln(a, b + x) - base - (r + x) * np.log(alpha + age)
    repeat = x > 0
    t2 = np.where(repeat, betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - base
                  - (r + x) * np.log(alpha + tx), -np.inf)
    total = np.logaddexp(t1, t2)
    value = common + total
    if not grad:
        return value
    w1, w2 = np.exp(t1 - total), np.exp(t2 - total)
    d_ab = digamma(a + b)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w1 * np.log(alpha + age) \
        - w2 * np.log(alpha + tx)
    d_alpha = r / alpha - w1 * (r + x) / (alpha + age) - w2 * (r + x) / (alpha + tx)
    d_a = w1 * (d_ab - digamma(a + b + x)) \
        + w2 * (digamma(a + 1) - digamma(a + b + x) - digamma(a) + d_ab)
    d_b = w1 * (digamma(b + x) - digamma(a + b + x) - digamma(b) + d_ab) \
        + w2 * np.where(repeat, digamma(np.maximum(b + x - 1, 1e-12)) - digamma(a + b + x)
                        - digamma(b) + d_ab, 0.0)
    return value, np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b], axis=1)


def _group_loglik(rows_loglik, group: np.ndarray, weight: np.ndarray, n_groups: int):
    """Per-group sums of a per-row log-likelihood with gradient (rows weighted by ``weight``)."""

    def loglik(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, g = rows_loglik(theta[group])
        grad = np.stack([np.bincount(group, weight * g[:, k], n_groups)
                         for k in range(theta.shape[1])], axis=1)
        return np.bincount(group, weight * value, n_groups), grad

    return loglik


def fit_bgnbd(group: np.ndarray, x: np.ndarray, tx: np.ndarray, age: np.ndarray,
              count: np.ndarray, n_groups: int, pool: bool = True) -> Pooled:
    """``(G, 4)`` ln (r, α, a, b) per group from collapsed rows with counts, partially pooled
    across groups (:mod:`ltvcore.models.pooling`; ``pool=False``: maximum likelihood per group)."""
    mean_x = np.bincount(group, count * x, n_groups) / np.maximum(np.bincount(group, count, n_groups), 1)
    mean_age = np.bincount(group, count * age, n_groups) / np.maximum(np.bincount(group, count, n_groups), 1)
    start = np.stack([np.full(n_groups, np.log(0.5)),
                      np.log(0.5 * np.maximum(mean_age, 1.0) / np.maximum(mean_x, 0.05)),
                      np.zeros(n_groups), np.full(n_groups, np.log(3.0))], axis=1)
    loglik = _group_loglik(lambda theta: bgnbd_loglik(theta, x, tx, age, grad=True), group, count,
                           n_groups)
    return fit_pooled(loglik, start, bound=_BOUND, scale=max(float(count.sum()), 1.0), pool=pool)


def gamma_gamma_loglik(log_params: np.ndarray, x: np.ndarray, mean_amount: np.ndarray,
                       grad: bool = False):
    """Per-user Gamma-Gamma log-likelihood of the mean of ``x`` amounts; ``log_params`` ``(R, 3)``
    = (ln p, ln (q − 1), ln γ), so that the mean amount ``pγ/(q − 1)`` is finite."""
    p, q, gamma = np.exp(log_params[:, 0]), 1.0 + np.exp(log_params[:, 1]), np.exp(log_params[:, 2])
    px = p * x
    value = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
             + (px - 1) * np.log(mean_amount) + px * np.log(x) - (px + q) * np.log(gamma + mean_amount * x))
    if not grad:
        return value
    d_p = x * (digamma(px + q) - digamma(px) + np.log(mean_amount) + np.log(x)
               - np.log(gamma + mean_amount * x))
    d_q = digamma(px + q) - digamma(q) + np.log(gamma) - np.log(gamma + mean_amount * x)
    d_gamma = q / gamma - (px + q) / (gamma + mean_amount * x)
    return value, np.stack([d_p * p, d_q * (q - 1), d_gamma * gamma], axis=1)


def fit_gamma_gamma(group: np.ndarray, x: np.ndarray, mean_amount: np.ndarray,
                    n_groups: int, pool: bool = True) -> Pooled:
    """``(G, 3)`` Gamma-Gamma log parameters per group from its repeat buyers (``x ≥ 1``),
    partially pooled across groups like :func:`fit_bgnbd`."""
    level = np.bincount(group, mean_amount, n_groups) / np.maximum(np.bincount(group, minlength=n_groups), 1)
    level = np.where(level > 0, level, np.mean(mean_amount) if mean_amount.size else 1.0)
    start = np.stack([np.full(n_groups, np.log(2.0)), np.full(n_groups, np.log(2.0)),
                      np.log(level * 1.5)], axis=1)  # mean pγ/(q−1) = level
    loglik = _group_loglik(lambda theta: gamma_gamma_loglik(theta, x, mean_amount, grad=True),
                           group, np.ones(x.size), n_groups)
    return fit_pooled(loglik, start, bound=_BOUND, scale=max(float(x.size), 1.0), pool=pool)


def conditional_purchases(log_params: np.ndarray, x, tx, age, t) -> np.ndarray:
    """Expected purchases in the ``t`` days after age ``age`` given ``(x, tx)`` (FHL 2005, eq. 10).

    ``log_params`` ``(R, 4)`` per row; ``t`` ``(R, K)`` or broadcastable; returns ``(R, K)``.
    """
    r, alpha, a, b = (v[:, None] for v in np.exp(log_params).T)
    x, tx, age = (np.asarray(v, dtype=float)[:, None] for v in (x, tx, age))
    t = np.asarray(t, dtype=float)
    z = t / (alpha + age + t)
    hyper = hyp2f1(r + x, b + x, a + b + x - 1, z)
    growth = 1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyper
    alive_odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12)
                          * ((alpha + age) / (alpha + tx)) ** (r + x), 0.0)
    # (a + b + x − 1)/(a − 1) has a pole at a = 1 where growth has a zero: step off it.
    a_off = np.where(np.abs(a - 1) < 1e-6, 1 + 1e-6, a)
    return (a + b + x - 1) / (a_off - 1) * growth / (1 + alive_odds)


def _grid(span: int) -> np.ndarray:
    """Future days the expectation is evaluated at: every day for a month, then geometric."""
    if span <= 31:
        return np.arange(span + 1, dtype=float)
    tail = np.unique(np.round(np.geomspace(31, span, 40)))
    return np.concatenate([np.arange(31, dtype=float), tail])


class BGNBDModel(ModelDefaults):
    """BG/NBD + Gamma-Gamma per group, partially pooled maximum likelihood."""

    name = "bgnbd"
    names = ("r", "alpha", "a", "b")

    def __init__(self, confidence: float = 0.99, extrapolation_sd: float | None = None) -> None:
        self.confidence = confidence
        self.extrapolation_sd = extrapolation_sd

    def fit(self, data: CohortData) -> BGNBDModel:
        self.data_ = data
        self.extrapolation_sd_ = (extrapolation_sd_for(activity_curve(data.active, data.at_risk))
                                  if self.extrapolation_sd is None
                                  else np.full(data.n_groups, float(self.extrapolation_sd)))
        n_users, n_groups = len(data.user_group), data.n_groups
        paid = (data.user_day >= 1) & (data.user_revenue > 0)
        who, day, amount = data.user_index[paid], data.user_day[paid], data.user_revenue[paid]
        x = np.bincount(who, minlength=n_users).astype(float)
        tx = np.zeros(n_users)
        np.maximum.at(tx, who, day.astype(float))
        spent = np.bincount(who, amount, n_users)
        # Days are intervals: a user of age T has been watched for T + 1 days, and a purchase on
        # day k fell, on average, half-way through it.
        tx = np.where(x > 0, tx + 0.5, 0.0)
        age = data.user_age.astype(float) + 1.0
        keys, inverse, count = np.unique(np.stack([data.user_group, x, tx, age], axis=1), axis=0,
                                         return_inverse=True, return_counts=True)
        self.rows_ = keys
        self.row_of_user_ = inverse.ravel()
        g = keys[:, 0].astype(np.int64)
        self.purchase_fit_ = fit_bgnbd(g, keys[:, 1], keys[:, 2], keys[:, 3], count.astype(float),
                                       n_groups)
        self.purchase_ = self.purchase_fit_.params
        buyers = x > 0
        self.spend_fit_ = fit_gamma_gamma(data.user_group[buyers], x[buyers],
                                          spent[buyers] / x[buyers], n_groups)
        self.spend_ = self.spend_fit_.params
        p, q, gamma = (np.exp(self.spend_[:, 0]), 1 + np.exp(self.spend_[:, 1]),
                       np.exp(self.spend_[:, 2]))
        ug = data.user_group
        mean_amount = np.divide(spent, x, out=np.zeros(n_users), where=buyers)
        # Each user's expected amount: their own mean shrunk to the group's (Gamma-Gamma posterior).
        self.expected_amount_ = (gamma[ug] + mean_amount * x) * p[ug] / (p[ug] * x + q[ug] - 1)
        self.arpu_ = estimate_arpu(data)
        return self

    def predict(self, n_days: int) -> CurveLTV:
        data = self.data_
        n_groups, width = data.n_groups, data.revenue.shape[1]
        last = data.last_day
        observed = np.zeros((n_groups, n_days))
        span = min(width, n_days)
        observed[:, :span] = np.divide(data.revenue[:, :span], data.at_risk[:, :span],
                                       out=np.zeros((n_groups, span)), where=data.at_risk[:, :span] > 0)
        keys = self.rows_
        g = keys[:, 0].astype(np.int64)
        age = keys[:, 3]  # days watched: the future starts on day ``age`` (days since install)
        future = max(n_days - int(age.min()), 1)
        grid = _grid(future)
        expected = conditional_purchases(self.purchase_[g], keys[:, 1], keys[:, 2], age, grid[None, :])
        # Spend-weighted users per row, then per group: Σ E[amount] · E[purchases in (age, day]].
        value = np.bincount(self.row_of_user_, self.expected_amount_, len(keys))
        days = np.arange(n_days, dtype=float)[None, :]
        ahead = np.clip(days + 1 - age[:, None], 0, grid[-1])  # future days up to day d
        # Linear interpolation on the shared grid, all rows at once.
        right = np.clip(np.searchsorted(grid, ahead), 1, grid.size - 1)
        share = (ahead - grid[right - 1]) / (grid[right] - grid[right - 1])
        low = np.take_along_axis(expected, right - 1, axis=1)
        cumulative = low + share * (np.take_along_axis(expected, right, axis=1) - low)
        per_day = np.diff(cumulative, axis=1, prepend=0.0) * value[:, None]
        users = np.bincount(data.user_group, minlength=n_groups).astype(float)
        projected = np.zeros((n_groups, n_days))
        np.add.at(projected, g, per_day)
        projected /= np.maximum(users, 1)[:, None]
        day = np.arange(n_days)[None, :]
        daily = np.where(day > last[:, None], projected, observed)
        ltv = np.cumsum(daily, axis=1)
        z = z_value(self.confidence)
        half = z * np.sqrt(sampling_variance(ltv, last, self.arpu_.user_sd,
                                             data.groups["users"].to_numpy()))
        return widen(ltv, half, half, last, z, self.extrapolation_sd_)

    def params(self, g: int) -> dict:
        p, q_minus_1, gamma = np.exp(self.spend_[g])
        purchases = {k: float(v) for k, v in zip(self.names, np.exp(self.purchase_[g]))}
        return {"bgnbd": {**purchases, "converged": self.purchase_fit_.converged,
                               "population": self.purchase_fit_.population(self.names)},
                "gamma_gamma": {"p": float(p), "q": float(1 + q_minus_1), "gamma": float(gamma),
                                "mean_amount": float(p * gamma / q_minus_1),
                                "converged": self.spend_fit_.converged,
                                "population": self.spend_fit_.population(("p", "q_minus_1", "gamma"))},
                "curve": {"extrapolation_sd": float(self.extrapolation_sd_[g]),
                          "last_observed_day": int(self.data_.last_day[g])}}

    @property
    def assumptions(self) -> list[str]:
        return ["BG/NBD: while alive a user pays on days at a Gamma-distributed rate; after each "
                "repeat paying day they leave for good with a Beta-distributed probability.",
                "Day 0 (the install) is observed and never modelled; recency and age in days.",
                "Gamma-Gamma: amounts per paying day vary around a user's own mean, Gamma across "
                "users, independent of how often they pay.",
                "Extrapolation error grows with ln(horizon / observed days) at the curve "
                "model's calibrated rate (extrapolation_sd)."]
