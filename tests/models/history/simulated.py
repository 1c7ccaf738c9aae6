"""Groups whose later LTV is a known function of what their first days show.

Every user of group ``g`` lives by the power law ``S(t) = (1 + t)^-β_g`` (lifetimes at the
quantiles of that law, identical in every cohort, so the pooled curve *is* the law) and is
active on every day alive, spending ``price_g`` a day, times ``lift_g`` after day 30. ``β_g``
is visible from the first days (retention decays at that rate); ``price_g`` spans a 50x range
of price levels the forecast must ignore; ``lift_g`` (``exp(N(0, lift_sd))``) is the part no
early signal can foresee. So ``LTV_H / LTV_observed`` is known exactly for every group.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ltvcore.data.cohorts import CohortData, pool

LIFT_DAY = 30


def known_ratio_groups(n_groups: int, *, seed: int, oldest_age: int, cohorts: int = 7,
                       users_per_cohort: int = 60, lift_sd: float = 0.0,
                       prefix: str = "g") -> tuple[CohortData, np.ndarray]:
    """``n_groups`` groups observed until their oldest cohort is ``oldest_age`` days old.

    Returns the data and each group's expected cumulative LTV by day, ``(G, oldest_age + 1)``:
    revenue per user at risk, which the pooled data reproduce exactly.
    """
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.3, 0.9, n_groups)
    price = np.exp(rng.uniform(np.log(0.1), np.log(5.0), n_groups))
    lift = np.exp(rng.normal(0.0, lift_sd, n_groups))
    n_days = oldest_age + 1
    quantile = (np.arange(users_per_cohort) + 0.5) / users_per_cohort

    user_group, user_age, day_user, day_age, day_revenue = [], [], [], [], []
    expected = np.zeros((n_groups, n_days))
    t = np.arange(n_days)
    for g in range(n_groups):
        last_alive = np.floor(quantile ** (-1 / beta[g]) - 1).astype(np.int64)  # S(t) = (1+t)^-β
        daily = np.where(t > LIFT_DAY, price[g] * lift[g], price[g])
        alive = (last_alive[:, None] >= t[None, :]).mean(0)
        expected[g] = np.cumsum(alive * daily)
        for c in range(cohorts):
            age = oldest_age - c
            first = len(user_group)
            user_group += [g] * users_per_cohort
            user_age += [age] * users_per_cohort
            for u, life in enumerate(np.minimum(last_alive, age)):
                days = np.arange(life + 1)
                day_user.append(np.full(len(days), first + u))
                day_age.append(days)
                day_revenue.append(daily[days])
    user_group_arr = np.asarray(user_group)
    user_age_arr = np.asarray(user_age)
    user_index = np.concatenate(day_user)
    user_day = np.concatenate(day_age)
    user_revenue = np.concatenate(day_revenue)
    groups = pd.DataFrame({"campaign": [f"{prefix}{g:03d}" for g in range(n_groups)],
                           "users": np.bincount(user_group_arr, minlength=n_groups),
                           "fit_users": np.bincount(user_group_arr, minlength=n_groups)})
    at_risk, active, payers, revenue = pool(user_group_arr, user_age_arr, user_group_arr[user_index],
                                            user_day, user_revenue, n_groups, n_days)
    data = CohortData(by=["campaign"], groups=groups, at_risk=at_risk, active=active, payers=payers,
                      revenue=revenue, last_day=np.full(n_groups, oldest_age), user_group=user_group_arr,
                      user_age=user_age_arr, user_index=user_index, user_day=user_day,
                      user_revenue=user_revenue)
    return data, expected


def combine(*parts: CohortData) -> CohortData:
    """One data set of several (groups stacked; each part's users after the previous')."""
    n_days = max(p.at_risk.shape[1] for p in parts)

    def wide(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, n_days - a.shape[1])))

    group_offset = np.cumsum([0] + [p.n_groups for p in parts[:-1]])
    user_offset = np.cumsum([0] + [len(p.user_group) for p in parts[:-1]])
    return CohortData(
        by=parts[0].by, groups=pd.concat([p.groups for p in parts], ignore_index=True),
        at_risk=np.vstack([wide(p.at_risk) for p in parts]), active=np.vstack([wide(p.active) for p in parts]),
        payers=np.vstack([wide(p.payers) for p in parts]), revenue=np.vstack([wide(p.revenue) for p in parts]),
        last_day=np.concatenate([p.last_day for p in parts]),
        user_group=np.concatenate([p.user_group + o for p, o in zip(parts, group_offset)]),
        user_age=np.concatenate([p.user_age for p in parts]),
        user_index=np.concatenate([p.user_index + o for p, o in zip(parts, user_offset)]),
        user_day=np.concatenate([p.user_day for p in parts]),
        user_revenue=np.concatenate([p.user_revenue for p in parts]))


def with_user_revenue(data: CohortData, user_revenue: np.ndarray) -> CohortData:
    """The same users and days with other revenue (the pooled arrays recomputed to match)."""
    at_risk, active, payers, revenue = pool(data.user_group, np.minimum(data.user_age, data.at_risk.shape[1] - 1),
                                            data.user_group[data.user_index], data.user_day, user_revenue,
                                            data.n_groups, data.at_risk.shape[1])
    return replace(data, payers=payers, revenue=revenue, user_revenue=user_revenue)


def subset(data: CohortData, keep: np.ndarray) -> CohortData:
    """The groups ``keep`` of ``data`` (their users only)."""
    new_group = np.cumsum(keep) - 1
    user_keep = keep[data.user_group]
    new_user = np.cumsum(user_keep) - 1
    day_keep = user_keep[data.user_index]
    return replace(data, groups=data.groups[keep].reset_index(drop=True), at_risk=data.at_risk[keep],
                   active=data.active[keep], payers=data.payers[keep], revenue=data.revenue[keep],
                   last_day=data.last_day[keep], user_group=new_group[data.user_group[user_keep]],
                   user_age=data.user_age[user_keep], user_index=new_user[data.user_index[day_keep]],
                   user_day=data.user_day[day_keep], user_revenue=data.user_revenue[day_keep])
