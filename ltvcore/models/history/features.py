"""Early signals of a group, as the history model sees them: shapes and ratios, never currency.

A feature that is a price (ARPU in dollars, revenue per user) would tie a model trained on one
game, or one year's prices, to that price level. Every signal here is a share, a rate or a log
ratio of two quantities in the same unit, so a model learned on last year's campaigns transfers
to this year's at another price level, and the target (the revenue still to come over the
revenue after the install day so far, see :mod:`.training`) is unit-free too. All signals are
computed from one :class:`~ltvcore.data.cohorts.CohortData` alone: for a training example that
is the group cut back in calendar time, so nothing after the cut can enter
(``tests/models/history`` proves it).

Two signals depend on the horizon ``H``, and both rise with it: the reach ``ln(H / observed
days)`` and the retention curve's own extrapolation (its revenue still to come, on the same
scale as the target). The booster is monotone-constrained in both (:data:`MONOTONE`), so for
one group the revenue still to come can only grow with the horizon: the curve is
non-decreasing by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltvcore.data.cohorts import CohortData
from ltvcore.ltv import CurveLTV, observed_ltv

__all__ = ["FEATURES", "GROUP_FEATURES", "HORIZON_FEATURES", "LABELS", "MONOTONE", "Signals",
           "attribute_names", "attribute_vocabulary", "design", "signals"]

#: Signals of the group itself, one value per group (name → plain words for the report).
GROUP_FEATURES: dict[str, str] = {
    "days_observed": "days observed",
    "cohort_mix": "share of the observed days the cohorts have lived (cohort mix)",
    "day0_share": "install-day share of revenue so far",
    "recent_revenue_share": "revenue share of the latest half of the observed days",
    "retention_d1": "day-1 retention",
    "retention_last": "retention on the last observed day",
    "retention_decay": "retention decay (log-log slope)",
    "payer_share": "payer share",
    "repeat_payers": "repeat payers among payers",
    "early_payer_retention": "early payers' retention vs everyone's",
    "top_user_share": "revenue share of the top 1% of users",
    "cpi_vs_revenue": "cost per install vs revenue so far",
}
#: Signals that grow with the horizon: the booster is constrained to increase in both.
HORIZON_FEATURES: dict[str, str] = {
    "curve_extrapolation": "retention-curve extrapolation",
    "reach": "forecast horizon vs days observed",
}
FEATURES: tuple[str, ...] = (*GROUP_FEATURES, *HORIZON_FEATURES)
LABELS: dict[str, str] = {**GROUP_FEATURES, **HORIZON_FEATURES}
MONOTONE: dict[str, int] = {"curve_extrapolation": 1, "reach": 1}

# Attribute values (os=ios, channel=paid, ...) become 0/1 signals only if they recur among the
# training groups: a value seen once (a campaign's own name) can only memorise that group.
MIN_ATTRIBUTE_GROUPS = 3
MAX_ATTRIBUTE_VALUES = 8


@dataclass(frozen=True)
class Signals:
    """What the model needs of ``G`` groups at their last observed day.

    Attributes
    ----------
    values
        ``(G, len(GROUP_FEATURES) + attributes)`` group signals (NaN where undefined).
    curve
        The retention × ARPU forecast of the same data (its point feeds ``curve_extrapolation``;
        its interval is kept for the observed days and for groups the history cannot forecast).
    observed
        ``(G,)`` cumulative LTV on the last observed day.
    after_day0
        ``(G,)`` the part of it earned after the install day: the scale of the revenue still to
        come (install-day purchases, starter packs, are one-offs that would inflate it).
    last_day
        ``(G,)`` last observed day.
    """

    values: np.ndarray
    curve: CurveLTV
    observed: np.ndarray
    after_day0: np.ndarray
    last_day: np.ndarray


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def signals(data: CohortData, curve: CurveLTV, rate: np.ndarray,
            attributes: dict[str, list[str]] | None = None) -> Signals:
    """The group signals of ``data``, given its curve forecast and activity ``rate`` ``(G, D)``."""
    n_groups = data.n_groups
    g = np.arange(n_groups)
    width = data.revenue.shape[1]
    last = np.clip(data.last_day, 0, width - 1)
    ltv = observed_ltv(data)
    observed = ltv[g, last]
    out: dict[str, np.ndarray] = {}
    out["days_observed"] = np.log1p(last.astype(float))
    counts = np.bincount(data.user_group, minlength=n_groups).astype(float)
    lived = np.bincount(data.user_group, weights=np.minimum(data.user_age, last[data.user_group]) + 1.0,
                        minlength=n_groups)
    out["cohort_mix"] = _ratio(lived, counts * (last + 1))
    out["day0_share"] = _ratio(ltv[:, 0], observed)
    out["recent_revenue_share"] = _ratio(observed - ltv[g, last // 2], observed)

    d1 = rate[:, min(1, width - 1)]
    r_last = rate[g, last]
    out["retention_d1"] = d1
    out["retention_last"] = r_last
    floor = 1e-4  # a rate of 0 (nobody back) would make the slope infinite
    out["retention_decay"] = np.where(
        last >= 2, np.log(np.maximum(r_last, floor) / np.maximum(d1, floor)) / np.log(np.maximum(last, 2)),
        np.nan)

    # Per user: revenue and paying days so far (user-days are one row per active day).
    n_users = len(data.user_group)
    paid = data.user_revenue > 0
    total = np.bincount(data.user_index, weights=data.user_revenue, minlength=n_users)
    pay_days = np.bincount(data.user_index[paid], minlength=n_users)
    payer = pay_days > 0
    n_payers = np.bincount(data.user_group[payer], minlength=n_groups).astype(float)
    out["payer_share"] = _ratio(n_payers, counts)
    out["repeat_payers"] = _ratio(np.bincount(data.user_group[pay_days >= 2], minlength=n_groups)
                                  .astype(float), n_payers)
    out["early_payer_retention"] = _early_payer_retention(data, last, paid, n_users)
    out["top_user_share"] = _top_share(data.user_group, total, n_groups, share=0.01)

    if "spend" in data.groups.columns:
        cpi = _ratio(data.groups["spend"].to_numpy(dtype=float), data.groups["users"].to_numpy(dtype=float))
        with np.errstate(divide="ignore", invalid="ignore"):  # no revenue yet: -inf → NaN below
            out["cpi_vs_revenue"] = np.log(_ratio(cpi, observed))
        out["cpi_vs_revenue"][~np.isfinite(out["cpi_vs_revenue"])] = np.nan
    else:
        out["cpi_vs_revenue"] = np.full(n_groups, np.nan)

    columns = [out[name] for name in GROUP_FEATURES]
    for column, values in (attributes or {}).items():
        keys = data.groups[column].astype(str).to_numpy() if column in data.groups else None
        for value in values:
            columns.append(np.full(n_groups, np.nan) if keys is None else (keys == value).astype(float))
    return Signals(values=np.column_stack(columns).astype(float), curve=curve, observed=observed,
                   after_day0=observed - ltv[:, 0], last_day=data.last_day.copy())


def _early_payer_retention(data: CohortData, last: np.ndarray, paid: np.ndarray,
                           n_users: int) -> np.ndarray:
    """Activity of users who paid by day 1, relative to everyone's, over the latest half.

    Payers identified *by day 1* and activity counted from day ``last/2`` on, so being active
    in the window is not what made them payers (a day-15 purchase implies a day-15 login).
    """
    group_of_day = data.user_group[data.user_index]
    start = np.maximum(last // 2, 2)
    early_payer = np.zeros(n_users, dtype=bool)
    early_payer[data.user_index[paid & (data.user_day <= 1)]] = True
    in_window = data.user_day >= start[group_of_day]
    active = np.bincount(data.user_index[in_window], minlength=n_users).astype(float)
    exposure = np.maximum(np.minimum(data.user_age, last[data.user_group]) - start[data.user_group] + 1, 0)
    n_groups = data.n_groups

    def rate(members: np.ndarray) -> np.ndarray:
        num = np.bincount(data.user_group[members], weights=active[members], minlength=n_groups)
        den = np.bincount(data.user_group[members], weights=exposure[members], minlength=n_groups)
        return _ratio(num, den)

    everyone = rate(np.ones(n_users, dtype=bool))
    return np.where(last >= 4, _ratio(rate(early_payer), everyone), np.nan)


def _top_share(group: np.ndarray, total: np.ndarray, n_groups: int, share: float) -> np.ndarray:
    """Per group, the revenue share of its top ``share`` of users (at least one user)."""
    order = np.lexsort((-total, group))
    sorted_group, sorted_total = group[order], total[order]
    counts = np.bincount(group, minlength=n_groups)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank = np.arange(len(group)) - starts[sorted_group]
    top = rank < np.maximum(np.ceil(counts * share), 1)[sorted_group]
    return _ratio(np.bincount(sorted_group[top], weights=sorted_total[top], minlength=n_groups),
                  np.bincount(group, weights=total, minlength=n_groups))


def attribute_vocabulary(data: CohortData, training: np.ndarray) -> dict[str, list[str]]:
    """The ``by`` values that recur among the ``training`` groups (each becomes a 0/1 signal)."""
    vocabulary = {}
    for column in data.by:
        counts = data.groups.loc[training, column].astype(str).value_counts()
        values = sorted(v for v, n in counts.items() if n >= MIN_ATTRIBUTE_GROUPS)[:MAX_ATTRIBUTE_VALUES]
        # A value every training group shares tells the model nothing.
        if values and not (len(values) == 1 and counts[values[0]] == training.sum()):
            vocabulary[column] = values
    return vocabulary


def attribute_names(vocabulary: dict[str, list[str]]) -> list[str]:
    return [f"{column}={value}" for column, values in vocabulary.items() for value in values]


def design(sig: Signals, horizons: np.ndarray, rows: np.ndarray | None = None):
    """One row per (group, horizon beyond its last observed day): ``(X, group, horizon index)``.

    ``rows`` restricts to some groups. The horizon-dependent columns come last, in
    :data:`HORIZON_FEATURES` order.
    """
    groups = np.arange(len(sig.observed)) if rows is None else np.flatnonzero(rows)
    g = np.repeat(groups, len(horizons))
    k = np.tile(np.arange(len(horizons)), len(groups))
    h = horizons[k]
    keep = h > sig.last_day[g] + 1
    g, k, h = g[keep], k[keep], h[keep]
    width = sig.curve.ltv.shape[1]
    to_come = sig.curve.ltv[g, np.minimum(h, width) - 1] - sig.observed[g]
    with np.errstate(divide="ignore", invalid="ignore"):
        extrapolation = np.log(np.maximum(to_come, 1e-12) / sig.after_day0[g])
    reach = np.log(h / (sig.last_day[g] + 1.0))
    x = np.column_stack([sig.values[g], extrapolation, reach])
    return x, g, k
