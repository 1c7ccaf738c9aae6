"""From the warehouse tables to what the models see: :class:`~ltvcore.data.cohorts.CohortData`.

DuckDB finds the groups (a handful of rows) and each user's group; the user-days come as the
integer and float arrays of :meth:`Inputs.arrays` (never a user id), stored in (user, date)
order, so every sum over them is the same on every run. Cutting at as-of, choosing the users
old enough to feed the fit and pooling by age are then a few vectorised passes.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pyarrow as pa

from ltvcore.data.cohorts import CohortData, pool
from ltvcore.errors import InputError
from ltvcore.warehouse.inputs import Inputs
from ltvcore.warehouse.queries import query

__all__ = ["cohort_data", "cohort_table", "realised_ltv", "shard_keys"]


def _day(date: str) -> int:
    return int(np.datetime64(date, "D").astype(np.int64))


def _groups(inputs: Inputs, by: list[str], as_of: str) -> pd.DataFrame:
    """The groups present among users installed by as-of, sorted, with their installs."""
    cols = ", ".join(f"CAST({inputs.column(c)} AS VARCHAR) AS k{i}" for i, c in enumerate(by))
    keys = ", ".join(f"k{i}" for i in range(len(by)))
    frame = inputs.con.execute(
        f"SELECT {keys}, COUNT(*) AS users FROM (SELECT {cols} FROM installs "
        f"WHERE install_date <= DATE '{as_of}') GROUP BY {keys} ORDER BY {keys}").fetchdf()
    frame.columns = [*by, "users"]
    return frame


def _user_groups(inputs: Inputs, groups: pd.DataFrame, by: list[str], as_of: str) -> np.ndarray:
    """Each user's group index (``-1``: installed after as-of, or not among ``groups``)."""
    table = pa.table({**{f"k{i}": pa.array(groups[c].astype(str).to_numpy(), type=pa.string())
                         for i, c in enumerate(by)},
                      "gid": pa.array(np.arange(len(groups)), type=pa.int64())})
    inputs.con.register("model_groups", table)
    join = " AND ".join(f"CAST(i.{inputs.column(c)} AS VARCHAR) = g.k{i}" for i, c in enumerate(by))
    found = inputs.con.sql(
        f"SELECT i.iu, g.gid FROM installs AS i JOIN model_groups AS g ON {join} "
        f"WHERE i.install_date <= DATE '{as_of}'").to_arrow_table()
    inputs.con.unregister("model_groups")
    gid = np.full(len(inputs.arrays().install), -1, dtype=np.int64)
    gid[found.column("iu").to_numpy()] = found.column("gid").to_numpy()
    return gid


def shard_keys(groups: pd.DataFrame, by: list[str], index: int, count: int) -> np.ndarray:
    """Which groups fall in shard ``index`` of ``count`` (a stable hash of the group's key)."""
    keys = groups[by].astype(str).agg("\x1f".join, axis=1)
    return np.array([zlib.crc32(k.encode()) % count == index for k in keys], dtype=bool)


def cohort_data(inputs: Inputs, *, by: list[str], as_of: str, observe_days: int,
                window_days: int | None, shard: tuple[int, int] | None = None) -> CohortData:
    """Pool cohorts into per-group daily arrays (see :class:`CohortData`).

    Only cohorts with at least ``observe_days`` observed days and, with ``window_days``,
    installed within that many days before as-of feed the arrays; ``shard`` keeps the groups
    of one shard (:func:`shard_keys`).
    """
    groups = _groups(inputs, by, as_of)
    if groups.empty:
        raise InputError(f"no installs on or before as-of {as_of}")
    if shard is not None:
        groups = groups[shard_keys(groups, by, *shard)].reset_index(drop=True)
        if groups.empty:
            raise InputError("this shard has no group")
    days = inputs.arrays()
    gid = _user_groups(inputs, groups, by, as_of)
    age = _day(as_of) - days.install.astype(np.int64)
    old_enough = (age >= 0) & (age + 1 >= observe_days)
    if window_days is not None:
        old_enough &= age < window_days
    # A shard's arrays hold only its groups' users: the population spread is taken over every
    # group's first, so that all shards borrow the same one (without shards it comes from the
    # arrays themselves, with no second pass over the user-days).
    population_sd = _user_revenue_sd(days, old_enough, _day(as_of)) if shard is not None else None
    eligible = (gid >= 0) & old_enough
    kept = eligible[days.user]
    kept &= days.date <= _day(as_of)
    # 32-bit indices: at hundreds of millions of user-days every copy counts.
    number = (np.cumsum(eligible) - 1).astype(np.int32)  # users numbered in iu order
    user = days.user[kept]
    user_index = number[user]
    user_day = days.date[kept] - days.install[user]
    user_revenue = days.revenue[kept]
    del user, kept
    user_group = gid[eligible]
    user_age = age[eligible]

    n_groups = len(groups)
    last_day = np.full(n_groups, -1)
    if user_group.size:
        np.maximum.at(last_day, user_group, user_age)
    n_days = int(last_day.max()) + 1 if user_group.size else 1
    at_risk, active, payers, revenue = pool(user_group, user_age, user_group[user_index],
                                            user_day, user_revenue, n_groups, n_days)
    frame = groups[by].copy()
    frame["users"] = groups["users"].to_numpy(dtype=np.int64)
    frame["fit_users"] = np.bincount(user_group, minlength=n_groups)
    if population_sd is None:
        population_sd = _sd(np.bincount(user_index, weights=user_revenue,
                                        minlength=user_group.size))
    return CohortData(by=list(by), groups=frame, at_risk=at_risk, active=active, payers=payers,
                      revenue=revenue, last_day=last_day, user_group=user_group,
                      user_age=user_age, user_index=user_index, user_day=user_day,
                      user_revenue=user_revenue, population_user_sd=population_sd)


def _user_revenue_sd(days, users: np.ndarray, as_of: int) -> float:
    """Standard deviation of revenue per user up to ``as_of`` over the users marked ``users``,
    summed in the order the arrays' own users are (the same bits as without shards)."""
    kept = users[days.user] & (days.date <= as_of)
    return _sd(np.bincount(days.user[kept], weights=days.revenue[kept],
                           minlength=users.size)[users])


def _sd(total: np.ndarray) -> float:
    """Sample standard deviation of revenue per user (NaN below two users)."""
    return float(np.std(total, ddof=1)) if total.size >= 2 else float("nan")


def realised_ltv(inputs: Inputs, by: list[str], as_of: str, horizons) -> pd.DataFrame:
    """Realised LTV per group of the users installed by ``as_of``, with whether each horizon
    has matured (every user of the group observed that many days by the end of the data)."""
    groups = _groups(inputs, by, as_of)
    days = inputs.arrays()
    gid = _user_groups(inputs, groups, by, as_of)
    members = gid >= 0
    n_groups = len(groups)
    latest = np.full(n_groups, np.iinfo(np.int64).min)
    np.maximum.at(latest, gid[members], days.install[members].astype(np.int64))
    age = days.date.astype(np.int64) - days.install[days.user]
    count = np.bincount(gid[members], minlength=n_groups)
    frames = []
    for h in horizons:
        keep = members[days.user] & (age < h)
        revenue = np.bincount(gid[days.user[keep]], weights=days.revenue[keep], minlength=n_groups)
        table = groups[by].copy()
        table["horizon_days"] = h
        table["users"] = count
        table["actual"] = revenue / np.maximum(count, 1)
        table["matured"] = latest + h - 1 <= _day(inputs.last_event)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def cohort_table(inputs: Inputs, as_of: str) -> pd.DataFrame:
    """The cohort table by campaign (``sql/cohort_day.sql``) with each cohort's size."""
    installs = f"(SELECT * FROM installs WHERE install_date <= DATE '{as_of}')"
    cohorts = query("cohort_day", user_day=inputs.user_days(), installs=installs, as_of=as_of)
    return inputs.con.execute(
        f"SELECT c.*, s.cohort_users FROM ({cohorts}) AS c "
        f"JOIN (SELECT campaign, install_date, COUNT(*) AS cohort_users FROM {installs} "
        "GROUP BY campaign, install_date) AS s USING (campaign, install_date) "
        "ORDER BY campaign, install_date, day").fetchdf()
