"""Users collapsed to the sufficient statistics of the BTYD model (:func:`collapse`).

Data it needs
-------------
Per user, from :class:`~ltvcore.data.cohorts.CohortData` (users with an observed install day):
``x`` the active days after day 0, ``t_x`` the last active day (0 if none), ``n`` the observed
age, whether day 0 paid, ``y`` the paying days after day 0, and the mean and within-user sum of
squares of the log amounts of those paying days. Day 0 is an install day: its revenue (starter
packs) is observed, never modelled, and enters only as the day-0 paying status.

Why these statistics suffice
----------------------------
* BG/BB (Fader, Hardie & Shang 2010, "Customer-Base Analysis in a Discrete-Time
  Noncontractual Setting", Marketing Science 29(6)): a user's likelihood depends on their
  history only through recency and frequency ``(x, t_x, n)``.
* Beta-binomial paying: through ``(day-0 status, x, y)`` (paying days among active days).
* Lognormal–normal spend: conjugate, so through ``y``, the mean log amount and the within-user
  sum of squares.

Users with the same statistics are one row with a count, so the likelihood costs
``O(unique rows + groups × age²)``, not ``O(users)``. ``fit_days`` right-censors long histories
in the likelihood's rows to bound that cost; the forecast rows (``pred_*``) always carry the
whole history.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ltvcore.data.cohorts import CohortData

__all__ = ["SufficientStats", "collapse"]


@dataclass(frozen=True)
class SufficientStats:
    """Users collapsed to what the likelihood and the forecast need (all numpy arrays).

    ``act_*``: unique (group, x, t_x, n) with counts. ``pay_*``: unique (group, day-0 status,
    trials x, paying days y). ``spend_*``: per (group, y ≥ 1) the count, sum and sum of squares
    of users' mean log amounts; ``spend_dof``/``spend_within`` per group Σ(y − 1) and the
    within-user sum of squares. ``pred_*``: unique users for the forecast (payers keep their own
    mean log amount). ``users``: eligible users per group.
    """

    n_groups: int
    max_age: int
    users: np.ndarray
    act_group: np.ndarray
    act_x: np.ndarray
    act_tx: np.ndarray
    act_n: np.ndarray
    act_count: np.ndarray
    pay_group: np.ndarray
    pay_status: np.ndarray
    pay_x: np.ndarray
    pay_y: np.ndarray
    pay_count: np.ndarray
    spend_group: np.ndarray
    spend_y: np.ndarray
    spend_count: np.ndarray
    spend_sum: np.ndarray
    spend_sumsq: np.ndarray
    spend_dof: np.ndarray
    spend_within: np.ndarray
    spend_center: float
    pred_group: np.ndarray
    pred_x: np.ndarray
    pred_tx: np.ndarray
    pred_n: np.ndarray
    pred_status: np.ndarray
    pred_y: np.ndarray
    pred_lbar: np.ndarray
    pred_count: np.ndarray

    def likelihood_arrays(self) -> dict[str, np.ndarray]:
        """Everything the posterior depends on (the cache key's data part)."""
        out = {"n_groups": np.array(self.n_groups), "max_age": np.array(self.max_age),
               "spend_center": np.array(self.spend_center)}
        for f in fields(self):
            if f.name.startswith(("act_", "pay_", "spend_")) and f.name != "spend_center":
                out[f.name] = np.asarray(getattr(self, f.name))
        return out


def _unique_rows(columns: list[np.ndarray], weights: np.ndarray | None = None):
    """Unique rows of integer/float columns (lexicographic order) and their summed weights."""
    table = np.column_stack(columns)
    uniq, inverse = np.unique(table, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    w = np.ones(len(table)) if weights is None else weights
    return uniq, np.bincount(inverse, weights=w, minlength=len(uniq))


def _per_user(data: CohortData, last_day: int | None) -> dict[str, np.ndarray]:
    """Each user's statistics over their days ``0 … min(age, last_day)``."""
    n_users = len(data.user_group)
    age = data.user_age.astype(np.int64)
    u_idx = data.user_index.astype(np.int64)
    u_day = data.user_day.astype(np.int64)
    u_rev = np.asarray(data.user_revenue, dtype=float)
    if last_day is not None:
        age = np.minimum(age, last_day)
        seen = u_day <= last_day
        u_idx, u_day, u_rev = u_idx[seen], u_day[seen], u_rev[seen]
    later = u_day >= 1
    x = np.bincount(u_idx[later], minlength=n_users)
    t_x = np.zeros(n_users, dtype=np.int64)
    np.maximum.at(t_x, u_idx[later], u_day[later])
    status = np.zeros(n_users, dtype=np.int64)
    status[u_idx[(u_day == 0) & (u_rev > 0)]] = 1
    paid = later & (u_rev > 0)
    y = np.bincount(u_idx[paid], minlength=n_users)
    log_amount = np.log(u_rev[paid])
    s1 = np.bincount(u_idx[paid], weights=log_amount, minlength=n_users)
    s2 = np.bincount(u_idx[paid], weights=log_amount**2, minlength=n_users)
    lbar = np.divide(s1, y, out=np.zeros(n_users), where=y > 0)
    return {"x": x, "t_x": t_x, "n": age, "status": status, "y": y, "lbar": lbar,
            "within": np.maximum(s2 - y * lbar**2, 0.0), "log_amount": log_amount}


def collapse(data: CohortData, fit_days: int | None = None) -> SufficientStats:
    """Per-user sufficient statistics, aggregated to unique rows with counts (vectorised).

    With ``fit_days``, the likelihood's statistics see each user's days ``0 … fit_days−1``
    only (a right-censoring of long histories that bounds the fit's cost); the forecast rows
    always carry the whole history.
    """
    n_groups = data.n_groups
    group = data.user_group.astype(np.int64)
    n_users = group.size
    full = _per_user(data, None)
    fit = full if fit_days is None else _per_user(data, int(fit_days) - 1)
    users = np.bincount(group, minlength=n_groups)
    x, t_x, status, y, lbar = fit["x"], fit["t_x"], fit["status"], fit["y"], fit["lbar"]
    max_age = int(fit["n"].max()) if n_users else 0

    act, act_count = _unique_rows([group, x, t_x, fit["n"]])
    pay, pay_count = _unique_rows([group, status, x, y])
    payer = y > 0
    spend, spend_count = _unique_rows([group[payer], y[payer]])
    _, spend_sum = _unique_rows([group[payer], y[payer]], lbar[payer])
    _, spend_sumsq = _unique_rows([group[payer], y[payer]], lbar[payer] ** 2)
    spend_dof = np.bincount(group[payer], weights=(y - 1)[payer], minlength=n_groups)
    spend_within = np.bincount(group[payer], weights=fit["within"][payer], minlength=n_groups)
    spend_center = float(fit["log_amount"].mean()) if fit["log_amount"].size else 0.0

    pred, pred_count = _unique_rows([group, full["x"], full["t_x"], full["n"], full["status"],
                                     full["y"], full["lbar"]])
    # A group without eligible users is forecast as one new user of its group (pooled day-0
    # paying share): it still gets its own posterior draws from the population.
    empty = np.flatnonzero(users == 0)
    if empty.size:
        share = float(full["status"].mean()) if n_users else 0.0
        extra = np.array([[g, 0, 0, 0, s, 0, 0.0] for g in empty for s in (0, 1)], dtype=float)
        extra_count = np.array([1.0 - share, share] * empty.size)
        pred = np.vstack([pred, extra])
        pred_count = np.concatenate([pred_count, extra_count])
        keep = pred_count > 0
        pred, pred_count = pred[keep], pred_count[keep]
        order = np.argsort(pred[:, 0], kind="stable")
        pred, pred_count = pred[order], pred_count[order]

    as_int = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    return SufficientStats(
        n_groups=n_groups, max_age=max_age, users=users,
        act_group=as_int(act[:, 0]), act_x=as_int(act[:, 1]), act_tx=as_int(act[:, 2]),
        act_n=as_int(act[:, 3]), act_count=act_count,
        pay_group=as_int(pay[:, 0]), pay_status=as_int(pay[:, 1]), pay_x=as_int(pay[:, 2]),
        pay_y=as_int(pay[:, 3]), pay_count=pay_count,
        spend_group=as_int(spend[:, 0]), spend_y=as_int(spend[:, 1]), spend_count=spend_count,
        spend_sum=spend_sum, spend_sumsq=spend_sumsq, spend_dof=spend_dof,
        spend_within=spend_within, spend_center=spend_center,
        pred_group=as_int(pred[:, 0]), pred_x=as_int(pred[:, 1]), pred_tx=as_int(pred[:, 2]),
        pred_n=as_int(pred[:, 3]), pred_status=as_int(pred[:, 4]), pred_y=as_int(pred[:, 5]),
        pred_lbar=np.ascontiguousarray(pred[:, 6]), pred_count=pred_count,
    )
