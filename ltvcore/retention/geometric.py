"""Geometric retention ``R(t) = R(1)·r^(t-1)``: the old baseline's constant daily retention.

With it, ``Σ ARPU·R(t)`` is the truncated geometric series ``ARPU·(1 − r^H)/(1 − r)`` behind the
old ``LTV = ARPU / (1 − r)`` metric (see the README's method), kept for comparison. ``log R(t)`` is fitted
by weighted least squares on days ``1 … last``.
"""

from __future__ import annotations

import numpy as np

from ltvcore.retention.activity import ActivityCurve

__all__ = ["GeometricRetention"]

_FLOOR = 1e-6


class GeometricRetention:
    """Attributes (after :meth:`fit`): ``level_`` (R(1)), ``ratio_`` (r), ``cov_`` of (log R(1), log r)."""

    n_params = 2

    def fit(self, curve: ActivityCurve) -> GeometricRetention:
        y = np.log(np.maximum(curve.rate[:, 1:], _FLOOR))
        w = curve.at_risk[:, 1:] * (curve.rate[:, 1:] > 0)
        x = np.arange(curve.rate.shape[1] - 1, dtype=float)[None, :]
        sw = np.maximum(w.sum(1), 1e-12)
        mx = (w * x).sum(1) / sw
        my = (w * y).sum(1) / sw
        sxx = (w * (x - mx[:, None]) ** 2).sum(1)
        slope = np.where(sxx > 0, (w * (x - mx[:, None]) * (y - my[:, None])).sum(1) / np.maximum(sxx, 1e-12), 0.0)
        slope = np.minimum(slope, 0.0)  # retention never grows
        intercept = my - slope * mx
        resid = y - intercept[:, None] - slope[:, None] * x
        points = (w > 0).sum(1)
        sigma2 = (w * resid**2).sum(1) / sw * points / np.maximum(points - 2, 1)
        var_slope = sigma2 / np.maximum(sxx * points / sw, 1e-12)
        var_intercept = sigma2 / np.maximum(points, 1) + mx**2 * var_slope
        self.cov_ = np.zeros((len(slope), 2, 2))
        self.cov_[:, 0, 0] = var_intercept
        self.cov_[:, 1, 1] = var_slope
        self.cov_[:, 0, 1] = self.cov_[:, 1, 0] = -mx * var_slope
        self.level_ = np.exp(intercept)
        self.ratio_ = np.exp(slope)
        self.base_ = curve.rate[:, 0].copy()
        return self

    def predict(self, n_days: int) -> np.ndarray:
        t = np.arange(n_days - 1, dtype=float)[None, :]
        tail = self.level_[:, None] * self.ratio_[:, None] ** t
        return np.concatenate([self.base_[:, None], tail], axis=1)

    def jacobian(self, n_days: int) -> np.ndarray:
        """d predict / d (log R(1), log r)."""
        curve = self.predict(n_days)
        t = np.r_[0.0, np.arange(n_days - 1, dtype=float)][None, :]
        jac = np.stack([curve, curve * t], axis=2)
        jac[:, 0, :] = 0.0
        return jac

    def params(self, g: int) -> dict:
        return {"r": float(self.ratio_[g]), "day1_rate": float(self.level_[g])}
