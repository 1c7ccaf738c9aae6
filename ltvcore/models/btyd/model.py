"""The hierarchical model over all groups in PyMC (:func:`build_pymc_model`), its
empirical-Bayes mode (:func:`find_mode`) and the parameterisation NUTS and ADVI sample in
(:func:`sampling_layout`).

Model
-----
Partial pooling (Gelman & Hill 2007, "Data Analysis Using Regression and
Multilevel/Hierarchical Models", ch. 12) of the groups' BG/BB + beta-binomial + lognormal
parameters (:mod:`.likelihood`; Fader, Hardie & Shang 2010 for BG/BB). Each latent ``k`` of
:data:`~.latents.LATENTS` that varies by group has a population mean ``μ_k ~ Normal(mean, sd)``
and spread ``τ_k ~ HalfNormal(spread)``, and ``u_gk ~ Normal(μ_k, τ_k)``; each shared latent
(:data:`~.latents.SHARED`) is one value ``~ Normal(mean, sd)`` in all groups (hyperpriors:
:data:`~.latents.PRIORS`). A small campaign thus borrows the others' shape; how unequal churn
is (``θ``'s concentration), which sets the long tail a first week cannot show, is learned from
the campaigns observed longest. Groups are independent given the population.

Sampling parameterisation
-------------------------
The joint mode of a hierarchical model is degenerate, so the point everything starts from is an
empirical-Bayes mode: each group's mode under the hyperprior alone, a random-effects fit of the
population to the groups' Laplace approximations, then each group's mode given that population
(:func:`find_mode`). At that mode, latents the data pin down are centred and the others
non-centred, both whitened by their Laplace covariance, and population means whose groups are
mostly centred are tied to their spread (:func:`sampling_layout`): a linear change of variables
that leaves the posterior unchanged and gives NUTS a near-isotropic geometry without funnels.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ltvcore.models.btyd.latents import (
    _SHARE,
    _VARY,
    BOUNDS,
    LATENTS,
    PRIORS,
    Priors,
    prior_vectors,
)
from ltvcore.models.btyd.likelihood import Layout, SamplingDensity, latent_loglik
from ltvcore.models.btyd.stats import SufficientStats

__all__ = ["Mode", "build_pymc_model", "find_mode", "import_pymc", "laplace_covariance", "quiet",
           "sampling_layout"]


@dataclass(frozen=True, eq=False)
class Mode:
    """The empirical-Bayes mode (:func:`find_mode`).

    ``population_mean`` ``(K,)`` (shared latents: their value at the mode) and
    ``population_spread`` ``(K_vary,)``; ``latent`` ``(G, K)`` each group's mode given the
    population; ``hessian`` ``(G, K_vary, K_vary)`` the data's information about each group's
    varying latents there; ``shared_information`` ``(K,)`` the data's information about each
    latent summed over groups (used for the shared ones); ``converged`` whether every L-BFGS
    run converged.
    """

    population_mean: np.ndarray
    population_spread: np.ndarray
    latent: np.ndarray
    hessian: np.ndarray
    shared_information: np.ndarray
    converged: bool


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence PyTensor's BLAS notice (the model's graph has no matrix products)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*",
                                category=UserWarning)
        yield


def import_pymc() -> ModuleType:
    """Import PyMC without ArviZ's refactor banner; returns the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import pymc

    return pymc


def build_pymc_model(stats: SufficientStats, priors: Priors | None = None,
                     layout: Layout | None = None) -> Any:
    """The joint model over all groups, parameterised for sampling.

    Population: each varying latent ``k`` has mean ``μ_k ~ Normal(mean, sd)`` and spread
    ``τ_k ~ HalfNormal(spread)``; each shared latent ``~ Normal(mean, sd)``. Groups:
    ``u_gk ~ Normal(μ_k, τ_k)``. Data: :func:`~.likelihood.latent_loglik`, one weighted term per
    unique row. All but the hyperpriors is one Op (:class:`~.likelihood.SamplingDensity`).
    Returns the ``pymc.Model``.

    The parameterisation (``layout``, from :func:`sampling_layout` at the empirical-Bayes mode;
    computed when not given) changes the geometry, not the posterior: latents the data pin down are
    centred and whitened by their Laplace covariance (``u_g = mode_g + L_g w_g``), the others
    non-centred and whitened (``u_g = μ + τ·(z_g + L_g w_g)``), and ``μ_k = μ̂_k + τ_k/√G · η_k``
    where most groups are centred (else a fixed scale), so that few groups make no funnel
    between a spread and its mean. NUTS then meets a near-isotropic posterior.
    """
    pm = import_pymc()
    priors = PRIORS if priors is None else priors
    if layout is None:
        mode = find_mode(stats, priors, 5000)
        layout = sampling_layout(mode, mode.hessian)
    mean, sd, spread = prior_vectors(priors)
    n_groups = stats.n_groups
    coords = {"group": np.arange(n_groups), "varying": [LATENTS[i] for i in _VARY],
              "shared": [LATENTS[i] for i in _SHARE]}
    with pm.Model(coords=coords) as model:
        shared = pm.Normal("shared_value", mean[_SHARE], sd[_SHARE], dims="shared",
                           initval=layout.population_mean[_SHARE])
        tau = pm.HalfNormal("population_spread", spread, dims="varying",
                            initval=layout.population_spread)
        eta = pm.Flat("mean_offset", dims="varying")
        w = pm.Flat("group_w", dims=("group", "varying"))
        pm.Potential("log_density", SamplingDensity(stats, layout, priors)(shared, tau, eta, w))
    return model


def _group_mode(stats: SufficientStats, mu: np.ndarray, scale: np.ndarray, start: np.ndarray,
                maxiter: int) -> tuple[np.ndarray, bool]:
    """Mode of all latents given their priors ``N(mu, scale)`` (length K), by L-BFGS.

    Varying latents are one value per group, shared latents one value in all; ``start`` is
    ``(G, K)``. Returns the ``(G, K)`` latents at the mode and whether L-BFGS converged.
    """
    from scipy.optimize import minimize

    n_groups, n_vary = start.shape[0], _VARY.size

    def unpack(flat):
        u = np.empty(start.shape)
        u[:, _VARY] = flat[:n_groups * n_vary].reshape(n_groups, n_vary)
        u[:, _SHARE] = flat[n_groups * n_vary:]
        return u

    def objective(flat):
        u = unpack(flat)
        value, grad = latent_loglik(stats, u, grad=True)
        dev_vary = (u[:, _VARY] - mu[_VARY]) / scale[_VARY]
        dev_share = (u[0, _SHARE] - mu[_SHARE]) / scale[_SHARE]
        value -= 0.5 * float(np.sum(dev_vary**2) + np.sum(dev_share**2))
        if not np.isfinite(value):
            return np.inf, np.zeros_like(flat)
        grad_vary = grad[:, _VARY] - dev_vary / scale[_VARY]
        grad_share = grad[:, _SHARE].sum(axis=0) - dev_share / scale[_SHARE]
        return -value, -np.concatenate([grad_vary.ravel(), grad_share])

    bounds = [BOUNDS[k] for k in _VARY] * n_groups + [BOUNDS[k] for k in _SHARE]
    low = [-np.inf if b[0] is None else b[0] for b in bounds]
    high = [np.inf if b[1] is None else b[1] for b in bounds]
    x0 = np.clip(np.concatenate([start[:, _VARY].ravel(), start[0, _SHARE]]), low, high)
    with np.errstate(all="ignore"):
        result = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": maxiter, "gtol": 1e-6})
    return unpack(result.x), bool(result.success)


def _marginal_information(hessian: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """The data's precision about each latent alone, ``(G, K)``: ``1/Σ_kk − 1/spread_k²``.

    ``Σ = (H + diag(1/spread²))⁻¹`` is the group's Laplace covariance under the prior
    ``N(·, spread²)``; its diagonal accounts for what the group's other latents leave unknown
    (a group's typical spend is uncertain if its spread between payers is), which ``H_kk``
    alone would not.
    """
    precision = hessian + np.eye(hessian.shape[1]) / spread**2
    eig, vec = np.linalg.eigh(precision)
    eig = np.maximum(eig, 1e-10 * np.maximum(eig.max(axis=1, keepdims=True), 1.0))
    variance = np.einsum("gij,gj,gij->gi", vec, 1.0 / eig, vec)
    return np.maximum(1.0 / variance - 1.0 / spread**2, 0.0)


def _population(latent: np.ndarray, hessian: np.ndarray, prior_u: tuple[np.ndarray, np.ndarray],
                priors: Priors) -> tuple[np.ndarray, np.ndarray]:
    """Population mean and spread per latent: a random-effects fit of the groups' likelihoods.

    Each group's likelihood of latent ``k`` is approximated by a Gaussian (its Laplace
    approximation with the first-stage prior ``N(m0, s0²)`` divided out); groups where it is at
    least as informative as that prior enter ``ℓ_g ~ N(mean, spread² + 1/H_g)``, maximised with
    the hyperpriors (spread on the log scale, which keeps it off zero). A latent informed by
    fewer than two groups keeps the hyperprior's mean and spread.
    """
    from scipy.optimize import minimize

    m0, s0 = prior_u
    mean, sd, spread = prior_vectors(priors)
    mean, sd = mean[_VARY], sd[_VARY]
    mu, tau = mean.copy(), spread.copy()
    info = _marginal_information(hessian, s0)
    for k in range(latent.shape[1]):
        use = info[:, k] * s0[k] ** 2 >= 1.0
        if use.sum() < 2:
            continue
        h = info[use, k]
        ell = latent[use, k] + (latent[use, k] - m0[k]) / (s0[k] ** 2 * h)
        err = 1.0 / h

        def objective(theta, ell=ell, err=err, k=k):
            m, log_t = theta
            var = np.exp(2 * log_t) + err
            value = (-0.5 * np.sum(np.log(var) + (ell - m) ** 2 / var)
                     - 0.5 * ((m - mean[k]) / sd[k]) ** 2
                     - 0.5 * (np.exp(log_t) / spread[k]) ** 2 + log_t)
            return -value

        start = np.array([np.average(ell, weights=h), np.log(max(float(np.std(ell)), 1e-2))])
        result = minimize(objective, start, method="Nelder-Mead",
                          options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 2000})
        mu[k], tau[k] = result.x[0], np.exp(result.x[1])
    return mu, tau


def find_mode(stats: SufficientStats, priors: Priors, maxiter: int = 5000) -> Mode:
    """Empirical-Bayes mode: the population from the groups' likelihoods, then each group's mode.

    The joint mode of a hierarchical model is degenerate (the centred density grows without
    bound as a spread shrinks to zero; the non-centred one inflates spreads ~√G-fold), so the
    mode that MAP reports and that NUTS/ADVI start from is found in three steps: each group's
    mode under the hyperprior alone, a random-effects fit of the population
    (:func:`_population`), and each group's mode given that population. ``maxiter`` bounds each
    L-BFGS run.
    """
    mean, sd, spread = prior_vectors(priors)
    scale = sd.copy()
    scale[_VARY] = np.sqrt(sd[_VARY] ** 2 + spread**2)
    start = np.tile(mean, (stats.n_groups, 1))
    first, ok_first = _group_mode(stats, mean, scale, start, maxiter)
    block = np.ix_(np.arange(stats.n_groups), _VARY, _VARY)
    mu_vary, tau = _population(first[:, _VARY], _data_hessian(stats, first)[block],
                               (mean[_VARY], scale[_VARY]), priors)
    mu, scale = mean.copy(), sd.copy()
    mu[_VARY], scale[_VARY] = mu_vary, tau
    latent, ok = _group_mode(stats, mu, scale, first, maxiter)
    mu[_SHARE] = latent[0, _SHARE]
    hessian = _data_hessian(stats, latent)
    shared = np.diagonal(hessian, axis1=1, axis2=2).sum(axis=0)   # shared latents' information
    return Mode(population_mean=mu, population_spread=tau, latent=latent,
                hessian=hessian[block], shared_information=shared, converged=ok_first and ok)


def _data_hessian(stats: SufficientStats, latent: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """−∂² log-likelihood / ∂u_g² per group ``(G, K, K)`` by central differences.

    Groups share no data, so perturbing latent ``k`` of every group at once gives column ``k``
    of every group's block: 2·K gradient evaluations in all.
    """
    n_groups, k = latent.shape
    blocks = np.zeros((n_groups, k, k))
    with np.errstate(all="ignore"):
        for c in range(k):
            e = np.zeros_like(latent)
            e[:, c] = step
            up = latent_loglik(stats, latent + e, grad=True)[1]
            down = latent_loglik(stats, latent - e, grad=True)[1]
            blocks[:, :, c] = -(up - down) / (2 * step)
    blocks = 0.5 * (blocks + blocks.transpose(0, 2, 1))
    return np.where(np.isfinite(blocks), blocks, 0.0)


def laplace_covariance(mode: Mode, hessian: np.ndarray) -> tuple[np.ndarray, int]:
    """Covariance of each group's varying latents at the mode given the population,
    ``(G, K_vary, K_vary)``, and how many eigenvalues of the precision were clipped."""
    precision = hessian + np.eye(hessian.shape[1]) / mode.population_spread ** 2
    eig, vec = np.linalg.eigh(precision)
    floor = 1e-8 * np.maximum(eig.max(axis=1, keepdims=True), 1.0)
    clipped = int((eig < floor).sum())
    eig = np.maximum(eig, floor)
    return np.einsum("gij,gj,gkj->gik", vec, 1.0 / eig, vec), clipped


def sampling_layout(mode: Mode, hessian: np.ndarray) -> Layout:
    """How to parameterise each group's varying latents for sampling.

    A latent is centred where the data's precision about it exceeds the population's
    (``u = v``), else non-centred (``u = mean + spread · v``, ``v ~ N(0, 1)``); each group's
    centred and non-centred blocks are then whitened by their Laplace approximation at the
    mode, ``v = offset + L·w``, so that ``w`` is close to independent ``N(0, 1)`` and NUTS
    meets neither a funnel nor a ridge. The reparameterisation is linear with a constant
    Jacobian: the posterior is unchanged.
    """
    tau = mode.population_spread
    mu = mode.population_mean[_VARY]
    latent = mode.latent[:, _VARY]
    centred = _marginal_information(hessian, tau) * tau**2 > 1.0
    n_groups, k = centred.shape
    offset = np.where(centred, latent, (latent - mu) / tau)
    chol = np.zeros((n_groups, k, k))
    for g in range(n_groups):
        for block in (np.flatnonzero(centred[g]), np.flatnonzero(~centred[g])):
            if not block.size:
                continue
            h = hessian[g][np.ix_(block, block)]
            if centred[g, block[0]]:
                precision = h + np.diag(1.0 / tau[block] ** 2)
            else:   # in units of the spread: z = (u − mean) / spread
                precision = tau[block, None] * h * tau[None, block] + np.eye(block.size)
            eig, vec = np.linalg.eigh(0.5 * (precision + precision.T))
            eig = np.maximum(eig, 1e-8 * max(float(eig.max()), 1.0))
            cov = (vec / eig) @ vec.T
            chol[g][np.ix_(block, block)] = np.linalg.cholesky(0.5 * (cov + cov.T))
    return Layout(centred=centred, chol=chol, offset=offset,
                  tied_mean=centred.mean(axis=0) >= 0.5,
                  mean_scale=np.sqrt(tau**2 / n_groups + 1e-4),
                  population_mean=mode.population_mean,
                  population_spread=tau)
