"""Per-group daily arrays, the only data the models see (built by :mod:`ltvcore.warehouse.model_data`).

A *cohort* is the users of one group who installed on one date. Cohorts of a group are pooled
by user age (day ``t`` since install): each cohort contributes the days it has observed up to
as-of, so a cohort of Jan 1 with 8 observed days and one of Jan 2 with 7 days pool into a
day-0..7 curve whose last point rests on the older cohort alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CohortData", "cut_back", "pool", "truncate"]


@dataclass(frozen=True)
class CohortData:
    """Pooled daily arrays for ``G`` groups over user ages ``0 … D-1``.

    Attributes
    ----------
    groups
        One row per group: the ``by`` columns, ``users`` (all installs up to as-of) and
        ``fit_users`` (users of cohorts old enough to feed the fit).
    at_risk, active, payers, revenue
        ``(G, D)`` arrays: users whose cohort observed day ``t``; of those, users active on day
        ``t``; users paying on day ``t``; revenue on day ``t``.
    last_day
        ``(G,)`` the oldest observed age per group (``-1`` when no cohort is eligible).
    user_group, user_age
        Per eligible user: group index and observed age (as-of minus install date).
    user_revenue, user_day, user_index
        Per active user-day of eligible users: revenue, age and user index into the above.
    population_user_sd
        Standard deviation of observed revenue per user over the eligible users of *every*
        group of the request, also when the arrays hold one shard of them (NaN: unknown), so
        that a group too small to measure its own spread borrows the same one in any shard.
    """

    by: list[str]
    groups: pd.DataFrame
    at_risk: np.ndarray
    active: np.ndarray
    payers: np.ndarray
    revenue: np.ndarray
    last_day: np.ndarray
    user_group: np.ndarray
    user_age: np.ndarray
    user_index: np.ndarray
    user_day: np.ndarray
    user_revenue: np.ndarray
    population_user_sd: float = float("nan")

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def group_keys(self) -> list[dict]:
        return self.groups[self.by].to_dict("records")


def pool(user_group: np.ndarray, user_age: np.ndarray, day_group: np.ndarray,
          day: np.ndarray, day_revenue: np.ndarray, n_groups: int, n_days: int):
    """``(at_risk, active, payers, revenue)``, each ``(G, n_days)``, from users and user-days.

    ``user_group``/``user_age``: per user (ages below ``n_days``); ``day_group``, ``day``,
    ``day_revenue``: per active user-day.
    """
    # at_risk[g, t] = users whose age >= t: a reverse cumulative sum.
    by_age = np.zeros((n_groups, n_days), dtype=np.int64)
    np.add.at(by_age, (user_group, user_age), 1)
    at_risk = np.cumsum(by_age[:, ::-1], axis=1)[:, ::-1].astype(float)
    flat = day_group * n_days + day
    size = n_groups * n_days
    active = np.bincount(flat, minlength=size).reshape(n_groups, n_days).astype(float)
    payers = np.bincount(flat, weights=day_revenue > 0, minlength=size).reshape(n_groups, n_days)
    revenue = np.bincount(flat, weights=day_revenue, minlength=size).reshape(n_groups, n_days)
    return at_risk, active, payers, revenue


def truncate(data: CohortData, last: int) -> CohortData:
    """The same cohorts as if observed only up to age ``last`` (for holdouts and calibration)."""
    from dataclasses import replace

    width = last + 1
    keep = data.user_day <= last
    return replace(
        data, at_risk=data.at_risk[:, :width], active=data.active[:, :width],
        payers=data.payers[:, :width], revenue=data.revenue[:, :width],
        last_day=np.minimum(data.last_day, last), user_age=np.minimum(data.user_age, last),
        user_index=data.user_index[keep], user_day=data.user_day[keep],
        user_revenue=data.user_revenue[keep],
    )


def cut_back(data: CohortData, last: int, youngest: int) -> CohortData:
    """Each group as it looked on the date its oldest cohort was ``last`` days old.

    Unlike :func:`truncate`, which gives every cohort ``last`` days, this moves a group's as-of
    back by ``last_day − last`` days: its later cohorts are younger still, and cohorts younger
    than ``youngest`` days (not yet eligible then) drop out. A campaign bought over two weeks
    thus looks, in a backtest, as today's young campaigns do: a mixture of cohort ages, whose
    curve's tail rests on the oldest cohorts alone. Groups no older than ``last`` are unchanged.
    """
    from dataclasses import replace

    shift = np.maximum(data.last_day - last, 0)
    age = data.user_age - shift[data.user_group]
    installed = np.bincount(data.user_group[age >= 0], minlength=data.n_groups)
    kept = age >= youngest
    remap = np.full(len(age), -1)
    remap[kept] = np.arange(int(kept.sum()))
    day_kept = kept[data.user_index] & (data.user_day <= age[data.user_index])

    group, age = data.user_group[kept], age[kept]
    n_groups = data.n_groups
    user_index = remap[data.user_index[day_kept]]
    user_day = data.user_day[day_kept]
    user_revenue = data.user_revenue[day_kept]
    at_risk, active, payers, revenue = pool(group, np.minimum(age, last), group[user_index],
                                             user_day, user_revenue, n_groups, last + 1)
    last_day = np.full(n_groups, -1)
    if kept.any():
        np.maximum.at(last_day, group, age)
    fit_users = np.bincount(group, minlength=n_groups)
    groups = data.groups.copy()
    # Installs after the earlier as-of did not exist yet.
    moved = shift > 0
    groups.loc[moved, "users"] = installed[moved]
    groups["fit_users"] = fit_users
    return replace(data, groups=groups, at_risk=at_risk, active=active, payers=payers,
                   revenue=revenue, last_day=last_day, user_group=group, user_age=age,
                   user_index=user_index, user_day=user_day, user_revenue=user_revenue)
