"""Beta-discrete-Weibull (BdW) retention, fitted by maximum likelihood for all groups at once.

Model (Fader, Hardie, Liu, Davin & Steenburgh, 2018, "'How to project customer retention'
revisited: the role of duration dependence", Journal of Interactive Marketing 43): a user with
churn parameter θ survives past day ``t`` with probability ``(1 − θ)^(t^c)``, so their own
churn probability on day ``t`` is ``1 − (1 − θ)^(t^c − (t−1)^c)``: it rises with tenure for
``c > 1`` (wear-out), falls for ``c < 1`` and is constant for ``c = 1``. With θ ~ Beta(α, β)
across users,

    S(t) = B(α, β + t^c) / B(α, β),   S(0) = 1,

which is the sBG of :mod:`ltvcore.retention.sbg` when ``c = 1``. sBG can bend the cohort curve
only through heterogeneity, so on data whose users churn less the longer they stay (Weibull
shape < 1) it must invent a heavy tail of near-immortal users and extrapolates too high; the
extra shape ``c`` lets the fit separate the two.

The data and the likelihood are sBG's: the day-to-day ``(alive, lost)`` counts of
:func:`~ltvcore.retention.sbg.survival_counts`, each a binomial with ``p_t = S(t) / S(t−1)``.
At ``c = 1`` the likelihood is sBG's term for term, so a fit with ``c`` fixed at 1 returns
sBG's estimates. The optimiser mirrors sBG's too: Levenberg–Marquardt-damped Newton on
``(log α, log β, log c)`` with the exact Hessian (digamma / trigamma), vectorised over groups,
and the covariance from the observed information scaled by the Pearson dispersion.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import betaln, digamma

from ltvcore.retention.activity import ActivityCurve
from ltvcore.retention.sbg import SBGRetention, survival_counts

__all__ = ["BdWRetention", "bdw_log_survival"]

# log α and log β as sBG; c from strong decreasing to strong increasing churn with tenure
# (beyond those t^c either stalls or explodes within the first weeks of a daily curve).
_LOWER = np.array([-9.0, -9.0, math.log(0.1)])
_UPPER = np.array([9.0, 9.0, math.log(5.0)])
# Seeds of the first ascent: the likelihood is not concave in (log α, log β, log c) and
# Weibull-like data lie far from c = 1, so it starts from the best of a small grid; the second
# ascent starts at sBG's optimum (see ``fit``).
_C_GRID = (0.4, 0.7, 1.0, 1.5, 2.5)
_SCALE_GRID = (0.3, 1.0, 3.0)
_TINY = 1e-300


def bdw_log_survival(alpha, beta, c, t) -> np.ndarray:
    """``log S(t) = log B(α, β + t^c) − log B(α, β)``, broadcast over the arguments."""
    x = np.where(t > 0, np.power(np.where(t > 0, t, 1.0), c), 0.0)
    return betaln(alpha, beta + x) - betaln(alpha, beta)


def trigamma(z: np.ndarray) -> np.ndarray:
    """``ψ₁(z)`` for ``z > 0``: ``ψ₁(z) = ψ₁(z + 1) + 1/z²`` up to ``z ≥ 8``, then the asymptotic
    series ``1/z + 1/(2z²) + Σ B₂ₖ/z^(2k+1)`` to ``B₁₀`` (relative error below 1e-11).

    2.6 times faster than ``scipy.special.polygamma(1, ·)`` (which evaluates the Hurwitz zeta
    and a discarded digamma; 4.7 against 12.2 ms on 61,000 values): the Newton fit's Hessian
    takes it on every group × day at every step, and it was half of ``auto``'s 13.9 s on 1,000
    groups.
    """
    y = np.array(z, dtype=float)
    shift = np.zeros_like(y)
    for _ in range(8):
        low = y < 8.0
        shift += np.where(low, 1.0 / (y * y), 0.0)
        y = np.where(low, y + 1.0, y)
    inv = 1.0 / y
    inv2 = inv * inv
    tail = inv * inv2 * (1 / 6 - inv2 * (1 / 30 - inv2 * (1 / 42 - inv2 * (1 / 30 - inv2 * 5 / 66))))
    return shift + inv + 0.5 * inv2 + tail


def _log_survival_terms(phi: np.ndarray, t: np.ndarray, order: int):
    """``log S(t)`` on days ``t`` and its derivatives in ``φ = (log α, log β, log c)``.

    Returns ``ell`` ``(G, T)``, the gradient ``[∂ell/∂φ_i]`` and the Hessian as a dict
    ``{(i, j): ∂²ell/∂φ_i∂φ_j}`` (upper triangle), each ``(G, T)``; ``order`` 0, 1 or 2.
    Written through ``x = t^c``: ``ell`` depends on (α, β, x) through log-gamma functions only.
    """
    a, b, c = (np.exp(phi[:, i])[:, None] for i in range(3))
    log_t = np.log(np.where(t > 0, t, 1.0))  # 0 on days 0 and 1, where t^c does not move with c
    x = np.where(t > 0, np.exp(c * log_t), 0.0)
    ell = betaln(a, b + x) - betaln(a, b)
    if order == 0:
        return ell, None, None
    psi_ab, psi_b, psi_bx, psi_abx = (digamma(z) for z in (a + b, b, b + x, a + b + x))
    l_a = psi_ab - psi_abx
    l_x = psi_bx - psi_abx
    l_b = l_x + psi_ab - psi_b
    dx = x * c * log_t  # dx / dlog c
    grad = [a * l_a, b * l_b, dx * l_x]
    if order == 1:
        return ell, grad, None
    tri_ab, tri_b, tri_bx, tri_abx = (trigamma(z) for z in (a + b, b, b + x, a + b + x))
    l_aa = tri_ab - tri_abx
    l_bx = tri_bx - tri_abx
    l_bb = l_bx + tri_ab - tri_b
    d2x = dx * (c * log_t + 1.0)
    hess = {
        (0, 0): a * a * l_aa + grad[0],
        (0, 1): a * b * l_aa,
        (0, 2): -a * dx * tri_abx,
        (1, 1): b * b * l_bb + grad[1],
        (1, 2): b * dx * l_bx,
        (2, 2): dx * dx * l_bx + d2x * l_x,
    }
    return ell, grad, hess


def _binomial_terms(delta: np.ndarray):
    """``p = S(t)/S(t−1)`` and ``q = 1 − p`` from ``delta = log p`` (``expm1``: exact near p = 1)."""
    p = np.exp(delta)
    q = np.maximum(-np.expm1(delta), _TINY)
    return p, q


class BdWRetention:
    """BdW retention for ``G`` groups.

    Parameters
    ----------
    c
        ``None`` (default) fits the shape ``c``; a number fixes it (``1.0`` is sBG).
    max_iter, tol
        Newton iterations and the gradient tolerance (in log-parameter space, per user), as sBG.

    Attributes (after :meth:`fit`)
    ------------------------------
    alpha_, beta_, c_ : (G,) arrays
    cov_ : (G, 3, 3) covariance of (log α, log β, log c), dispersion-scaled (row and column of
        ``log c`` zero when ``c`` is fixed)
    loglik_ : (G,) maximised log-likelihood (comparable with sBG's: the same counts)
    dispersion_ : (G,) Pearson dispersion (≥ 1)
    base_ : (G,) day-0 activity rate (the curve is ``base_ · S(t)``)
    converged_ : (G,) bool
    """

    n_params = 3

    def __init__(self, c: float | None = None, max_iter: int = 200, tol: float = 1e-7) -> None:
        self.c = c
        self.max_iter = max_iter
        self.tol = tol

    @staticmethod
    def _loglik(phi, alive, lost, t):
        ell, _, _ = _log_survival_terms(phi, t, 0)
        delta = np.diff(ell, axis=1)
        _, q = _binomial_terms(delta)
        return (alive * delta + np.where(lost > 0, lost * np.log(q), 0.0)).sum(1)

    def _derivatives(self, phi, alive, lost, t):
        """Gradient ``(G, 3)`` and Hessian ``(G, 3, 3)`` of the log-likelihood in ``φ``."""
        ell, g, h = _log_survival_terms(phi, t, 2)
        p, q = _binomial_terms(np.diff(ell, axis=1))
        # Each day is a binomial in delta = log p: d/d delta and d²/d delta² of its log-likelihood.
        f1 = alive - lost * p / q
        f2 = -lost * p / q**2
        dg = [np.diff(gi, axis=1) for gi in g]
        grad = np.stack([(f1 * d).sum(1) for d in dg], axis=1)
        hess = np.empty((phi.shape[0], 3, 3))
        for (i, j), hij in h.items():
            hess[:, i, j] = hess[:, j, i] = (f2 * dg[i] * dg[j] + f1 * np.diff(hij, axis=1)).sum(1)
        if self.c is not None:
            # c fixed: no gradient along log c, and a unit curvature so the solve leaves it alone.
            grad[:, 2] = 0.0
            hess[:, 2, :] = hess[:, :, 2] = 0.0
            hess[:, 2, 2] = -1.0
        return grad, hess

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = _LOWER.copy(), _UPPER.copy()
        if self.c is not None:
            lower[2] = upper[2] = math.log(self.c)
        return lower, upper

    def _seed(self, alive, lost, t):
        """Best of a grid over (α + β, c), each with ``S(1) = β / (α + β)`` at the observed day 1
        (``1^c = 1``, so day 1 pins the mean churn whatever ``c``)."""
        n = alive + lost
        n_groups = alive.shape[0]
        s1 = np.divide(alive[:, 0], n[:, 0], out=np.full(n_groups, 0.5), where=n[:, 0] > 0)
        s1 = np.clip(s1, 1e-3, 1 - 1e-3)
        c_grid = (self.c,) if self.c is not None else _C_GRID
        best, best_ll = None, None
        for scale in _SCALE_GRID:
            for c in c_grid:
                phi = np.stack([np.log(scale * (1 - s1)), np.log(scale * s1),
                                np.full(n_groups, math.log(c))], axis=1)
                phi = np.clip(phi, *self._bounds())
                ll = self._loglik(phi, alive, lost, t)
                if best is None:
                    best, best_ll = phi, ll
                else:
                    pick = ll > best_ll
                    best = np.where(pick[:, None], phi, best)
                    best_ll = np.where(pick, ll, best_ll)
        return best

    def _optimise(self, phi, alive, lost, t):
        """Damped Newton ascent from ``phi`` for every group: ``(phi, loglik, converged)``."""
        lower, upper = self._bounds()
        phi = phi.copy()
        n_groups = phi.shape[0]
        damping = np.full(n_groups, 1e-3)
        ll = self._loglik(phi, alive, lost, t)
        converged = np.zeros(n_groups, dtype=bool)
        scale = np.maximum(1.0, (alive + lost).sum(1))
        for _ in range(self.max_iter):
            # Work only on the groups still moving: most converge in a few steps.
            act = np.flatnonzero(~converged)
            if act.size == 0:
                break
            pa, al, lo = phi[act], alive[act], lost[act]
            grad, hess = self._derivatives(pa, al, lo, t)
            done = np.abs(grad).max(axis=1) < self.tol * scale[act]
            # Levenberg–Marquardt on the negative Hessian keeps each step an ascent direction.
            neg = -hess + damping[act, None, None] * np.eye(3)
            step = np.linalg.solve(neg, grad[..., None])[..., 0]
            candidate = np.clip(pa + step, lower, upper)
            ll_new = self._loglik(candidate, al, lo, t)
            better = (ll_new >= ll[act]) & ~done
            phi[act] = np.where(better[:, None], candidate, pa)
            ll[act] = np.where(better, ll_new, ll[act])
            damping[act] = np.where(better, np.maximum(damping[act] / 3, 1e-9), damping[act] * 4)
            converged[act] = done | (~better & (damping[act] > 1e12))
        return phi, ll, converged

    def fit(self, curve: ActivityCurve) -> BdWRetention:
        alive, lost = survival_counts(curve)
        t = np.arange(0, alive.shape[1] + 1, dtype=float)[None, :]  # days 0 … D-1: ell on both ends
        n = alive + lost
        phi, ll, converged = self._optimise(self._seed(alive, lost, t), alive, lost, t)
        if self.c is None:
            # A second ascent from sBG's optimum (c = 1), keeping the better end per group: the
            # likelihood has ridges towards the bounds of c where one start can stall, and an
            # ascent never loses likelihood, so BdW then never fits worse than the sBG it nests.
            sbg = SBGRetention().fit(curve)
            start = np.stack([np.log(sbg.alpha_), np.log(sbg.beta_), np.zeros(len(ll))], axis=1)
            phi2, ll2, converged2 = self._optimise(start, alive, lost, t)
            pick = ll2 >= ll
            phi = np.where(pick[:, None], phi2, phi)
            ll = np.where(pick, ll2, ll)
            converged = np.where(pick, converged2, converged)
        scale = np.maximum(1.0, n.sum(1))

        grad, hess = self._derivatives(phi, alive, lost, t)
        cov = np.linalg.inv(-hess + 1e-9 * np.eye(3))
        if self.c is not None:
            cov[:, 2, :] = cov[:, :, 2] = 0.0
        ell, _, _ = _log_survival_terms(phi, t, 0)
        p, _ = _binomial_terms(np.diff(ell, axis=1))
        expected = n * p
        var = n * p * (1 - p)
        pearson = np.divide((alive - expected) ** 2, var, out=np.zeros_like(var), where=var > 1e-12)
        points = (n > 0).sum(1)
        free = 2 if self.c is not None else 3
        self.dispersion_ = np.maximum(pearson.sum(1) / np.maximum(points - free, 1), 1.0)
        self.cov_ = cov * self.dispersion_[:, None, None]
        self.phi_ = phi
        self.alpha_, self.beta_, self.c_ = (np.exp(phi[:, i]) for i in range(3))
        self.loglik_ = ll
        self.base_ = curve.rate[:, 0].copy()
        self.converged_ = converged | (np.abs(grad).max(axis=1) < 1e-4 * scale)
        return self

    def survival(self, n_days: int, alpha=None, beta=None, c=None) -> np.ndarray:
        """``S(t)`` for ``t = 0 … n_days-1``, shape ``(G, n_days)``."""
        a = (self.alpha_ if alpha is None else alpha)[:, None]
        b = (self.beta_ if beta is None else beta)[:, None]
        k = (self.c_ if c is None else c)[:, None]
        t = np.arange(n_days, dtype=float)[None, :]
        return np.exp(bdw_log_survival(a, b, k, t))

    def predict(self, n_days: int) -> np.ndarray:
        """Activity rate ``base · S(t)``, shape ``(G, n_days)``."""
        return self.base_[:, None] * self.survival(n_days)

    def jacobian(self, n_days: int) -> np.ndarray:
        """d predict / d (log α, log β, log c), shape ``(G, n_days, 3)``."""
        t = np.arange(n_days, dtype=float)[None, :]
        _, grad, _ = _log_survival_terms(self.phi_, t, 1)
        curve = self.predict(n_days)
        return np.stack([curve * g for g in grad], axis=2)

    def params(self, g: int) -> dict:
        return {"alpha": float(self.alpha_[g]), "beta": float(self.beta_[g]), "c": float(self.c_[g]),
                "day0_rate": float(self.base_[g]), "dispersion": float(self.dispersion_[g]),
                "converged": bool(self.converged_[g])}
