"""ARPU: revenue per active user-day, as a moving average over the observed days.

Daily ARPU swings with weekends and promotions; the method damps that with a moving average
over the observed days (day 0 excluded: install-day spending — starter packs — differs from
later days and is kept separately as ``day0``). By default the average spans every observed
day: the last few days of a pooled curve rest on the oldest cohorts alone, and with payers a
few percent of users, a one-week window there is mostly noise (measured in the benchmarks).

The standard error treats users,
not user-days, as independent: a whale's purchases on several days are one source of
variance, not several.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltvcore.data.cohorts import CohortData

__all__ = ["MIN_PAYERS", "ArpuEstimate", "estimate_arpu"]


@dataclass(frozen=True)
class ArpuEstimate:
    """Per-group ARPU over days ``first … last`` and day-0 revenue per user, with errors."""

    arpu: np.ndarray
    se: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    day0: np.ndarray
    user_sd: np.ndarray

    def params(self, g: int) -> dict:
        return {"arpu": float(self.arpu[g]), "arpu_se": float(self.se[g]),
                "window_first_day": int(self.first_day[g]), "window_last_day": int(self.last_day[g]),
                "day0_revenue_per_user": float(self.day0[g])}


#: Paying users below which a group's revenue spread is not its own to measure.
MIN_PAYERS = 10


def estimate_arpu(data: CohortData, window: int | None = None) -> ArpuEstimate:
    """Moving-average ARPU per group over its last ``window`` observed days (days ≥ 1; all by default)."""
    n_groups = data.n_groups
    last = data.last_day
    first = np.ones_like(last) if window is None else np.maximum(1, last - window + 1)

    day = np.arange(data.active.shape[1])[None, :]
    in_window = (day >= first[:, None]) & (day <= last[:, None])
    active = (data.active * in_window).sum(1)
    revenue = (data.revenue * in_window).sum(1)
    arpu = np.divide(revenue, active, out=np.zeros(n_groups), where=active > 0)

    # Clustered (by user) variance of the ratio estimator Σr/Σa:
    # Var ≈ Σ_i (r_i − ARPU·a_i)² / (Σa)².
    n_users = len(data.user_group)
    grp_of_day = data.user_group[data.user_index]
    hit = (data.user_day >= first[grp_of_day]) & (data.user_day <= last[grp_of_day])
    r_i = np.bincount(data.user_index[hit], weights=data.user_revenue[hit], minlength=n_users)
    a_i = np.bincount(data.user_index[hit], minlength=n_users).astype(float)
    resid = r_i - arpu[data.user_group] * a_i
    num = np.bincount(data.user_group, weights=resid**2, minlength=n_groups)
    se = np.sqrt(np.divide(num, active**2, out=np.zeros(n_groups), where=active > 0))

    at_risk0 = data.at_risk[:, 0] if data.at_risk.shape[1] else np.zeros(n_groups)
    day0 = np.divide(data.revenue[:, 0], at_risk0, out=np.zeros(n_groups), where=at_risk0 > 0)

    # Spread of revenue per user over everything observed: the sampling noise of a group's mean.
    total_i = np.bincount(data.user_index, weights=data.user_revenue, minlength=n_users)
    count = np.bincount(data.user_group, minlength=n_groups).astype(float)
    mean = np.divide(np.bincount(data.user_group, weights=total_i, minlength=n_groups), count,
                     out=np.zeros(n_groups), where=count > 0)
    sq = np.bincount(data.user_group, weights=(total_i - mean[data.user_group]) ** 2,
                     minlength=n_groups)
    user_sd = np.sqrt(np.divide(sq, np.maximum(count - 1, 1)))
    # A group with a handful of payers cannot measure its own spread (with none, it would claim
    # its revenue per user is exactly 0): below MIN_PAYERS it takes at least the spread of all
    # groups' users together (computed before sharding, so every shard borrows the same).
    if np.isfinite(data.population_user_sd):
        payers = np.bincount(data.user_group, weights=(total_i > 0).astype(float),
                             minlength=n_groups)
        user_sd = np.where(payers < MIN_PAYERS, np.maximum(user_sd, data.population_user_sd),
                           user_sd)
    return ArpuEstimate(arpu=arpu, se=se, first_day=first, last_day=last, day0=day0,
                        user_sd=user_sd)
