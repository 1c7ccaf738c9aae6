"""The pandas data path the product had before DuckDB, kept as the tests' oracle.

The SQL path (:mod:`ltvcore.warehouse`) must give the same cohort arrays and cohort table as
these functions on the same data; tests compare the two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltvcore.data.cohorts import CohortData, pool
from ltvcore.errors import InputError


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

    at_risk, active, payers, revenue = pool(group_of_user[eligible], ages, ud_group, ud_day,
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




def read_frames(events, installs=None, *, as_of: str):
    """The input files as the pandas path read them, cut at ``as_of``."""
    from ltvcore.data.io import read_events, read_installs

    frame = read_events(events)
    frame = frame[frame["event_date"].to_numpy() <= np.datetime64(as_of, "D")].reset_index(drop=True)
    inst = None
    if installs is not None:
        inst = read_installs(installs)
        inst = inst[inst["install_date"].to_numpy() <= np.datetime64(as_of, "D")].reset_index(drop=True)
    return frame, inst
