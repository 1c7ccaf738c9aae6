"""From events and installs to per-group daily arrays: the only data the models see.

A *cohort* is the users of one group who installed on one date. Cohorts of a group are pooled
by user age (day ``t`` since install): each cohort contributes the days it has observed up to
as-of, so a cohort of Jan 1 with 8 observed days and one of Jan 2 with 7 days pool into a
day-0..7 curve whose last point rests on the older cohort alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcore.errors import InputError

__all__ = ["CohortData", "attach_installs", "build_cohorts", "cohort_table", "cut_back", "truncate"]


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

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def group_keys(self) -> list[dict]:
        return self.groups[self.by].to_dict("records")


def attach_installs(events: pd.DataFrame, installs: pd.DataFrame | None, *,
                    events_name: str = "events", installs_name: str = "installs"
                    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Return (installs, user index per event, age per event), enforcing the cross-file rules.

    Without installs, a user's install date is their first event and their campaign is ``all``.
    """
    if installs is None:
        first = events.groupby("user_id", sort=False)["event_date"].min()
        installs = pd.DataFrame({"user_id": first.index.to_numpy(dtype=object),
                                 "install_date": first.to_numpy(), "campaign": "all"})
    index = pd.Index(installs["user_id"])
    user = index.get_indexer(events["user_id"])
    orphan = user < 0
    if orphan.any():
        row = int(np.flatnonzero(orphan)[0]) + 1
        raise InputError(f"user '{events['user_id'].iat[row - 1]}' has events but no install row",
                         file=events_name, column="user_id", row=row)
    install_dates = installs["install_date"].to_numpy().astype("datetime64[D]")
    age = (events["event_date"].to_numpy().astype("datetime64[D]") - install_dates[user]).astype(int)
    early = age < 0
    if early.any():
        row = int(np.flatnonzero(early)[0]) + 1
        raise InputError(
            f"user '{events['user_id'].iat[row - 1]}' has an event before their install date "
            f"({install_dates[user[row - 1]]})", file=events_name, column="event_date", row=row)
    return installs, user, age


def build_cohorts(events: pd.DataFrame, installs: pd.DataFrame, user: np.ndarray,
                  age: np.ndarray, *, by: list[str], as_of: np.datetime64, observe_days: int,
                  window_days: int | None) -> CohortData:
    """Pool cohorts into per-group daily arrays.

    ``events`` must already be cut at ``as_of``; ``user``/``age`` come from :func:`attach_installs`.
    Only cohorts with at least ``observe_days`` observed days (ages ``0 … observe_days-1``) and,
    with ``window_days``, installed within that many days before as-of feed the arrays.
    """
    as_of = np.datetime64(as_of, "D")  # type: ignore[call-overload]  # str or datetime64
    install_dates = installs["install_date"].to_numpy().astype("datetime64[D]")
    installed = install_dates <= as_of
    user_age_all = (as_of - install_dates).astype(int)
    eligible = installed & (user_age_all + 1 >= observe_days)
    if window_days is not None:
        eligible &= user_age_all < window_days

    # Groups are the value combinations present among users installed by as-of, sorted for
    # stable output order.
    group_frame = installs.loc[installed, by].astype(str).drop_duplicates()
    group_frame = group_frame.sort_values(by).reset_index(drop=True)
    if group_frame.empty:
        raise InputError(f"no installs on or before as-of {as_of}")
    lookup = pd.MultiIndex.from_frame(group_frame) if len(by) > 1 else pd.Index(group_frame[by[0]])
    keys = pd.MultiIndex.from_frame(installs[by].astype(str)) if len(by) > 1 \
        else pd.Index(installs[by[0]].astype(str))
    group_of_user = np.asarray(lookup.get_indexer(keys))
    n_groups = len(group_frame)

    users = np.bincount(group_of_user[installed], minlength=n_groups)
    fit_users = np.bincount(group_of_user[eligible], minlength=n_groups)
    ages = user_age_all[eligible]
    last_day = np.full(n_groups, -1)
    if eligible.any():
        np.maximum.at(last_day, group_of_user[eligible], ages)
    n_days = int(last_day.max()) + 1 if eligible.any() else 1

    # One entry per active user-day (several events a day summed).
    keep = eligible[user]
    e_user = user[keep]
    e_age = age[keep]
    e_rev = events["revenue"].to_numpy()[keep]
    key = e_user.astype(np.int64) * n_days + e_age
    day_key, inverse = np.unique(key, return_inverse=True)
    day_revenue = np.bincount(inverse, weights=e_rev, minlength=len(day_key))
    ud_user = (day_key // n_days).astype(np.int64)
    ud_day = (day_key % n_days).astype(np.int64)
    ud_group = group_of_user[ud_user]

    at_risk, active, payers, revenue = _pool(group_of_user[eligible], ages, ud_group, ud_day,
                                             day_revenue, n_groups, n_days)

    # Compact user indices over eligible users.
    eligible_idx = np.flatnonzero(eligible)
    remap = np.full(len(installs), -1)
    remap[eligible_idx] = np.arange(len(eligible_idx))

    groups = group_frame.copy()
    groups["users"] = users
    groups["fit_users"] = fit_users
    return CohortData(
        by=list(by), groups=groups, at_risk=at_risk, active=active,
        payers=payers, revenue=revenue, last_day=last_day,
        user_group=group_of_user[eligible_idx], user_age=user_age_all[eligible_idx],
        user_index=remap[ud_user], user_day=ud_day, user_revenue=day_revenue,
    )


def cohort_table(events: pd.DataFrame, installs: pd.DataFrame, user: np.ndarray,
                 age: np.ndarray, *, by: list[str], as_of: np.datetime64) -> pd.DataFrame:
    """The cohort table: group × install date × day with users at risk, active, payers, revenue.

    This is the light daily aggregate a warehouse keeps; the forecast pools it by age.
    """
    as_of = np.datetime64(as_of, "D")  # type: ignore[call-overload]  # str or datetime64
    frame = pd.DataFrame({"user": user, "day": age, "revenue": events["revenue"].to_numpy()})
    per_day = frame.groupby(["user", "day"], sort=False)["revenue"].sum().reset_index()
    meta = installs.iloc[per_day["user"].to_numpy()]
    per_day["install_date"] = meta["install_date"].to_numpy()
    for col in by:
        per_day[col] = meta[col].astype(str).to_numpy()
    per_day["payer"] = per_day["revenue"] > 0
    table = (per_day.groupby(by + ["install_date", "day"], sort=True)
             .agg(active_users=("user", "size"), payers=("payer", "sum"),
                  revenue=("revenue", "sum"))
             .reset_index())
    sizes = installs.assign(**{c: installs[c].astype(str) for c in by}) \
        .groupby(by + ["install_date"]).size().rename("cohort_users").reset_index()
    table = table.merge(sizes, on=by + ["install_date"], how="left")
    observed = (as_of - table["install_date"].to_numpy().astype("datetime64[D]")).astype(int)
    return table[table["day"].to_numpy() <= observed].reset_index(drop=True)


def _pool(user_group: np.ndarray, user_age: np.ndarray, day_group: np.ndarray,
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
    at_risk, active, payers, revenue = _pool(group, np.minimum(age, last), group[user_index],
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
