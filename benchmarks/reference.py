"""The same method, one group at a time with stock scipy optimisers: the reference row.

It shares the data preparation with the product (the cohort arrays) and differs only in how the
fits are computed: ``scipy.optimize.minimize`` on the sBG likelihood and
``scipy.optimize.curve_fit`` for the rational curve, one call per group. It checks that the
vectorised fits land where stock optimisers do and measures what vectorising buys.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import curve_fit, minimize

from ltvcore.arpu import estimate_arpu
from ltvcore.data.cohorts import CohortData
from ltvcore.retention import activity_curve


def _sbg_nll(log_params, alive, lost, t):
    a, b = np.exp(log_params)
    return -(alive * np.log(b + t - 1) + lost * np.log(a) - (alive + lost) * np.log(a + b + t - 1)).sum()


def _rational(t, d, b, a):
    return d / (b * t**a + 1.0)


def forecast_ltv(data: CohortData, n_days: int, *, arpu_window: int) -> np.ndarray:
    """Cumulative LTV ``(G, n_days)`` from the ensemble of per-group scipy fits."""
    curve = activity_curve(data.active, data.at_risk)
    arpu = estimate_arpu(data, window=arpu_window)
    out = np.zeros((data.n_groups, n_days))
    days = np.arange(n_days, dtype=float)
    for g in range(data.n_groups):
        last = int(data.last_day[g])
        rate = curve.rate[g, : last + 1]
        risk = curve.at_risk[g, : last + 1]
        s = rate / rate[0] if rate[0] > 0 else np.zeros_like(rate)
        alive = risk[1:] * s[1:]
        lost = np.maximum(risk[1:] * (s[:-1] - s[1:]), 0)
        t = np.arange(1, last + 1, dtype=float)
        start = np.log([max(1 - s[1], 1e-3), max(s[1], 1e-3)])
        fit = minimize(_sbg_nll, start, args=(alive, lost, t), method="L-BFGS-B",
                       bounds=[(-9, 9), (-9, 9)])
        a, b = np.exp(fit.x)
        ratios = (b + days[1:] - 1) / (a + b + days[1:] - 1)
        sbg = rate[0] * np.r_[1.0, np.cumprod(ratios)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                params, _ = curve_fit(_rational, t, rate[1:], p0=[rate[1] * 2, 1.0, 0.5],
                                      sigma=1 / np.sqrt(np.maximum(risk[1:], 1)),
                                      bounds=([1e-9, 1e-9, 1e-3], [1e3, 1e4, 10.0]), maxfev=5000)
            except RuntimeError:
                params = np.array([rate[1] * 2, 1.0, 0.5])
        rational = np.r_[rate[0], _rational(days[1:], *params)]
        retention = (sbg + rational) / 2
        observed = np.zeros(n_days)
        span = min(last + 1, n_days)
        observed[:span] = data.revenue[g, :span] / np.maximum(data.at_risk[g, :span], 1)
        daily = np.where(days > last, arpu.arpu[g] * retention, observed)
        out[g] = np.cumsum(daily)
    return out
