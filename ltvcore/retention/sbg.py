"""Shifted-beta-geometric (sBG) retention, fitted by maximum likelihood for all groups at once.

Model (Fader & Hardie, 2007, "How to project customer retention"): each user churns each day
with a constant probability θ, and θ ~ Beta(α, β) across users. Then

    S(t) = B(α, β + t) / B(α, β),   S(t) = S(t-1) · (β + t - 1) / (α + β + t - 1),   S(0) = 1.

Data are pooled cohorts observed for different lengths, so the likelihood is written as the
product of day-to-day conditionals: of the ``n_t`` users "alive" on day ``t-1`` among those
observed on day ``t``, ``k_t`` are alive on day ``t`` with probability
``p_t = (β + t - 1) / (α + β + t - 1)``. For a single cohort this is exactly Fader & Hardie's
censored likelihood. Alive counts come from the running-minimum activity rate relative to day 0.

Because activity is not survival, day-to-day counts are overdispersed relative to the binomial;
the Fisher covariance is scaled by the Pearson dispersion (quasi-likelihood) so that standard
errors reflect the data's real noise.
"""

from __future__ import annotations

import numpy as np

from ltvcore.retention.activity import ActivityCurve

__all__ = ["SBGRetention", "survival_counts"]

_LOG_BOUNDS = (-9.0, 9.0)


def survival_counts(curve: ActivityCurve) -> tuple[np.ndarray, np.ndarray]:
    """Day-to-day ``(alive, lost)`` counts, each ``(G, D-1)`` for days ``1 … D-1``.

    Of the users at risk on day ``t``, ``alive`` are still alive on ``t`` and ``lost`` died
    between ``t-1`` and ``t`` (survival is the activity rate relative to day 0). Every
    survival law fitted by maximum likelihood here (sBG, BdW) reads the same counts, so their
    likelihoods are comparable.
    """
    rate, at_risk = curve.rate, curve.at_risk
    base = rate[:, :1]
    s = np.divide(rate, base, out=np.zeros_like(rate), where=base > 0)
    alive = at_risk[:, 1:] * s[:, 1:]
    lost = at_risk[:, 1:] * (s[:, :-1] - s[:, 1:])
    return alive, np.maximum(lost, 0.0)


class SBGRetention:
    """sBG retention for ``G`` groups.

    Parameters
    ----------
    max_iter, tol
        Newton iterations and the gradient tolerance (in log-parameter space).

    Attributes (after :meth:`fit`)
    ------------------------------
    alpha_, beta_ : (G,) arrays
    cov_ : (G, 2, 2) covariance of (log α, log β), dispersion-scaled
    dispersion_ : (G,) Pearson dispersion (≥ 1)
    base_ : (G,) day-0 activity rate (the curve is ``base_ · S(t)``)
    converged_ : (G,) bool
    """

    n_params = 2

    def __init__(self, max_iter: int = 200, tol: float = 1e-7) -> None:
        self.max_iter = max_iter
        self.tol = tol

    @staticmethod
    def _counts(curve: ActivityCurve) -> tuple[np.ndarray, np.ndarray]:
        return survival_counts(curve)

    @staticmethod
    def _loglik(u, v, alive, lost, t):
        a, b = np.exp(u)[:, None], np.exp(v)[:, None]
        d = a + b + t - 1
        return (alive * np.log(b + t - 1) + lost * np.log(a) - (alive + lost) * np.log(d)).sum(1)

    @staticmethod
    def _derivatives(u, v, alive, lost, t):
        a, b = np.exp(u)[:, None], np.exp(v)[:, None]
        n = alive + lost
        d = a + b + t - 1
        bt = b + t - 1
        ga = (lost / a - n / d).sum(1)
        gb = (alive / bt - n / d).sum(1)
        haa = (-lost / a**2 + n / d**2).sum(1)
        hbb = (-alive / bt**2 + n / d**2).sum(1)
        hab = (n / d**2).sum(1)
        a, b = a[:, 0], b[:, 0]
        grad = np.stack([a * ga, b * gb], axis=1)
        hess = np.empty((len(a), 2, 2))
        hess[:, 0, 0] = a * a * haa + a * ga
        hess[:, 1, 1] = b * b * hbb + b * gb
        hess[:, 0, 1] = hess[:, 1, 0] = a * b * hab
        return grad, hess

    def fit(self, curve: ActivityCurve) -> SBGRetention:
        alive, lost = self._counts(curve)
        n_groups, n_days = alive.shape
        t = np.arange(1, n_days + 1, dtype=float)[None, :]
        n = alive + lost
        # Start where S(1) matches the observed day-1 survival with α + β = 1.
        s1 = np.divide(alive[:, 0], n[:, 0], out=np.full(n_groups, 0.5), where=n[:, 0] > 0)
        s1 = np.clip(s1, 1e-3, 1 - 1e-3)
        u, v = np.log(1 - s1), np.log(s1)
        damping = np.full(n_groups, 1e-3)
        ll = self._loglik(u, v, alive, lost, t)
        converged = np.zeros(n_groups, dtype=bool)
        scale = np.maximum(1.0, n.sum(1))
        for _ in range(self.max_iter):
            # Work only on the groups still moving: most converge in a few steps.
            act = np.flatnonzero(~converged)
            if act.size == 0:
                break
            ua, va, al, lo = u[act], v[act], alive[act], lost[act]
            grad, hess = self._derivatives(ua, va, al, lo, t)
            done = np.abs(grad).max(axis=1) < self.tol * scale[act]
            # Levenberg–Marquardt on the negative Hessian keeps each step an ascent direction.
            neg = -hess + damping[act, None, None] * np.eye(2)
            step = np.linalg.solve(neg, grad[..., None])[..., 0]
            u_new = np.clip(ua + step[:, 0], *_LOG_BOUNDS)
            v_new = np.clip(va + step[:, 1], *_LOG_BOUNDS)
            ll_new = self._loglik(u_new, v_new, al, lo, t)
            better = (ll_new >= ll[act]) & ~done
            u[act] = np.where(better, u_new, ua)
            v[act] = np.where(better, v_new, va)
            ll[act] = np.where(better, ll_new, ll[act])
            damping[act] = np.where(better, np.maximum(damping[act] / 3, 1e-9), damping[act] * 4)
            converged[act] = done | (~better & (damping[act] > 1e12))
        grad, hess = self._derivatives(u, v, alive, lost, t)
        info = -hess + 1e-9 * np.eye(2)
        cov = np.linalg.inv(info)

        a, b = np.exp(u)[:, None], np.exp(v)[:, None]
        p = (b + t - 1) / (a + b + t - 1)
        expected = n * p
        var = n * p * (1 - p)
        pearson = np.divide((alive - expected) ** 2, var, out=np.zeros_like(var), where=var > 1e-12)
        points = (n > 0).sum(1)
        dispersion = pearson.sum(1) / np.maximum(points - 2, 1)
        self.dispersion_ = np.maximum(dispersion, 1.0)
        self.cov_ = cov * self.dispersion_[:, None, None]
        self.alpha_, self.beta_ = np.exp(u), np.exp(v)
        self.base_ = curve.rate[:, 0].copy()
        self.converged_ = converged | (np.abs(grad).max(axis=1) < 1e-4 * np.maximum(1.0, n.sum(1)))
        return self

    def survival(self, n_days: int, alpha=None, beta=None) -> np.ndarray:
        """``S(t)`` for ``t = 0 … n_days-1``, shape ``(G, n_days)``."""
        a = (self.alpha_ if alpha is None else alpha)[:, None]
        b = (self.beta_ if beta is None else beta)[:, None]
        t = np.arange(1, n_days, dtype=float)[None, :]
        ratios = (b + t - 1) / (a + b + t - 1)
        return np.concatenate([np.ones((a.shape[0], 1)), np.cumprod(ratios, axis=1)], axis=1)

    def predict(self, n_days: int) -> np.ndarray:
        """Activity rate ``base · S(t)``, shape ``(G, n_days)``."""
        return self.base_[:, None] * self.survival(n_days)

    def jacobian(self, n_days: int) -> np.ndarray:
        """d predict / d (log α, log β), shape ``(G, n_days, 2)``."""
        a, b = self.alpha_[:, None], self.beta_[:, None]
        t = np.arange(1, n_days, dtype=float)[None, :]
        d = a + b + t - 1
        dlog_a = np.concatenate([np.zeros_like(a), np.cumsum(-1.0 / d, axis=1)], axis=1)
        dlog_b = np.concatenate([np.zeros_like(a), np.cumsum(1.0 / (b + t - 1) - 1.0 / d, axis=1)], axis=1)
        curve = self.predict(n_days)
        return np.stack([curve * dlog_a * a, curve * dlog_b * b], axis=2)

    def params(self, g: int) -> dict:
        return {"alpha": float(self.alpha_[g]), "beta": float(self.beta_[g]),
                "day0_rate": float(self.base_[g]), "dispersion": float(self.dispersion_[g]),
                "converged": bool(self.converged_[g])}
