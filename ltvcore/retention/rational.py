"""Rational retention curve ``R(t) = d / (b·t^a + c)`` by weighted nonlinear least squares.

The four parameters are not identifiable together (scaling ``d``, ``b`` and ``c`` by one factor
leaves ``R`` unchanged), so ``c`` is fixed at 1 and ``(d, b, a)`` are fitted in log space, which
also keeps them positive: a positive exponent and scale make the curve decrease. Points are
weighted by the users at risk on each day. The fit runs for all groups at once: a grid of
exponents seeds a linear least-squares solve of ``1/R = 1/d + (b/d)·t^a``, then batched
Levenberg–Marquardt refines it.
"""

from __future__ import annotations

import numpy as np

from ltvcore.retention.activity import ActivityCurve

__all__ = ["RationalRetention"]

_EXPONENT_GRID = (0.2, 0.4, 0.7, 1.0, 1.5, 2.5)
# log d, log b, log a: wide enough for any retention curve, narrow enough that t**a stays finite.
_LOWER = np.array([-12.0, -12.0, -7.0])
_UPPER = np.array([5.0, 12.0, 3.0])


def _curve(theta: np.ndarray, t: np.ndarray) -> np.ndarray:
    d, b, a = (np.exp(theta[:, i])[:, None] for i in range(3))
    return d / (b * t**a + 1.0)


def _jacobian(theta: np.ndarray, t: np.ndarray) -> np.ndarray:
    d, b, a = (np.exp(theta[:, i])[:, None] for i in range(3))
    ta = t**a
    f = d / (b * ta + 1.0)
    share = b * ta / (b * ta + 1.0)
    log_t = np.log(np.maximum(t, 1e-300))
    return np.stack([f, -f * share, -f * share * a * log_t], axis=2)


class RationalRetention:
    """``R(t) = d / (b·t^a + 1)`` fitted to days ``1 … last`` of the activity curve.

    Attributes (after :meth:`fit`)
    ------------------------------
    d_, b_, a_ : (G,) arrays (``c`` is 1)
    cov_ : (G, 3, 3) covariance of (log d, log b, log a) from the weighted residual variance
    base_ : (G,) day-0 activity rate (``R(0)`` is the observed rate, not the fitted ``d``)
    converged_ : (G,) bool
    """

    n_params = 3

    def __init__(self, max_iter: int = 200, tol: float = 1e-10) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, curve: ActivityCurve) -> RationalRetention:
        y = curve.rate[:, 1:]
        w = curve.at_risk[:, 1:]
        n_groups, n_days = y.shape
        t = np.arange(1, n_days + 1, dtype=float)[None, :]
        w = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
        theta = self._seed(y, w, t)
        sse = self._sse(theta, y, w, t)
        damping = np.full(n_groups, 1e-3)
        converged = np.zeros(n_groups, dtype=bool)
        for _ in range(self.max_iter):
            act = np.flatnonzero(~converged)
            if act.size == 0:
                break
            th, ya, wa = theta[act], y[act], w[act]
            jac = _jacobian(th, t)
            resid = ya - _curve(th, t)
            jtw = jac.transpose(0, 2, 1) * wa[:, None, :]
            jtj = jtw @ jac
            grad = (jtw @ resid[..., None])[..., 0]
            diag = np.einsum("gii->gi", jtj)
            system = jtj + damping[act, None, None] * (np.eye(3) * (diag[:, None, :] + 1e-12))
            step = np.linalg.solve(system, grad[..., None])[..., 0]
            candidate = np.clip(th + step, _LOWER, _UPPER)
            sse_new = self._sse(candidate, ya, wa, t)
            better = sse_new <= sse[act]
            gain = np.where(better, sse[act] - sse_new, 0.0)
            theta[act] = np.where(better[:, None], candidate, th)
            sse[act] = np.where(better, sse_new, sse[act])
            damping[act] = np.where(better, np.maximum(damping[act] / 5, 1e-12), damping[act] * 5)
            converged[act] = (better & (gain <= self.tol * np.maximum(sse[act], 1e-12))) \
                | (damping[act] > 1e10)

        jac = _jacobian(theta, t)
        jtj = (jac.transpose(0, 2, 1) * w[:, None, :]) @ jac
        points = (w > 0).sum(1)
        # Weighted residual variance per unit weight; weights are normalised to sum 1, so scale
        # back by the number of points to get the usual s² (JᵀWJ)⁻¹.
        dof = np.maximum(points - 3, 1)
        sigma2 = sse * points / dof
        jtj_scaled = jtj * points[:, None, None]
        cov = np.linalg.pinv(jtj_scaled + 1e-12 * np.eye(3)) * sigma2[:, None, None]
        self.d_, self.b_, self.a_ = (np.exp(theta[:, i]) for i in range(3))
        self.theta_ = theta
        self.cov_ = cov
        self.base_ = curve.rate[:, 0].copy()
        self.converged_ = converged
        return self

    @staticmethod
    def _sse(theta, y, w, t):
        return (w * (y - _curve(theta, t)) ** 2).sum(1)

    @staticmethod
    def _seed(y, w, t):
        """Best of a grid of exponents, each with (d, b) from weighted LS on 1/R."""
        inv = 1.0 / np.clip(y, 1e-4, None)
        best = None
        best_sse = None
        for a in _EXPONENT_GRID:
            x = np.broadcast_to(t**a, y.shape)
            sw = w.sum(1)
            mx = (w * x).sum(1) / sw
            my = (w * inv).sum(1) / sw
            sxx = (w * (x - mx[:, None]) ** 2).sum(1)
            slope = (w * (x - mx[:, None]) * (inv - my[:, None])).sum(1) / np.maximum(sxx, 1e-12)
            intercept = my - slope * mx
            d = 1.0 / np.clip(intercept, 1e-6, None)
            b = np.clip(slope * d, 1e-6, None)
            theta = np.stack([np.log(d), np.log(b), np.full_like(d, np.log(a))], axis=1)
            theta = np.clip(theta, _LOWER, _UPPER)
            sse = RationalRetention._sse(theta, y, w, t)
            if best is None:
                best, best_sse = theta, sse
            else:
                pick = sse < best_sse
                best = np.where(pick[:, None], theta, best)
                best_sse = np.where(pick, sse, best_sse)
        return best

    def predict(self, n_days: int) -> np.ndarray:
        """Activity rate: observed day-0 rate at ``t = 0``, ``d / (b·t^a + 1)`` after."""
        t = np.arange(1, n_days, dtype=float)[None, :]
        return np.concatenate([self.base_[:, None], _curve(self.theta_, t)], axis=1)

    def jacobian(self, n_days: int) -> np.ndarray:
        """d predict / d (log d, log b, log a), shape ``(G, n_days, 3)``."""
        t = np.arange(1, n_days, dtype=float)[None, :]
        jac = _jacobian(self.theta_, t)
        return np.concatenate([np.zeros((jac.shape[0], 1, 3)), jac], axis=1)

    def params(self, g: int) -> dict:
        return {"a": float(self.a_[g]), "b": float(self.b_[g]), "c": 1.0, "d": float(self.d_[g]),
                "converged": bool(self.converged_[g])}
