"""Posterior inference for the BTYD model: NUTS, MAP (+ Laplace) or ADVI, chosen by name.

:func:`infer` dispatches :attr:`InferenceSettings.method` through one read-only table
(:data:`FIT_METHODS`), as pymc-marketing's ``CLVModel.fit(fit_method=...)`` does, and every
method returns the same typed result, a :class:`Posterior` of draws of every group's latents
(:data:`~.latents.LATENTS`) plus the method's diagnostics:

``nuts``
    PyMC's NUTS (Hoffman & Gelman 2014) on the joint posterior, in the parameterisation set at
    the empirical-Bayes mode (:func:`~.model.sampling_layout`), each chain started near the mode
    with its mass matrix set to the Laplace scales there.
``map``
    The empirical-Bayes mode (:func:`~.model.find_mode`: SciPy's L-BFGS on the same density; a
    joint hierarchical mode is degenerate) and draws of each group's Laplace approximation
    given the population. The population stays at its estimate: the draws carry the groups'
    uncertainty, not the population's (NUTS carries both).
``advi``
    PyMC's mean-field ADVI (Kucukelbir et al. 2017) in the NUTS parameterisation, started at
    the mode with the population's scales.

Every stochastic step is seeded by ``seed``: the same statistics and settings give identical
draws. What a posterior depends on besides the data is :meth:`InferenceSettings.record` and
:func:`versions`; the estimator caches posteriors under both (:mod:`..posterior_cache`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from ltvcore.models.btyd.latents import _SHARE, _VARY, LATENTS, Priors, plain_priors, prior_vectors
from ltvcore.models.btyd.likelihood import Layout, sampling_latent
from ltvcore.models.btyd.model import (
    Mode,
    build_pymc_model,
    find_mode,
    import_pymc,
    laplace_covariance,
    quiet,
    sampling_layout,
)
from ltvcore.models.btyd.stats import SufficientStats

__all__ = ["FIT_METHODS", "InferenceSettings", "METHODS", "Posterior", "fit_advi", "fit_map",
           "fit_nuts", "infer", "source_digest", "versions"]


@dataclass(frozen=True)
class InferenceSettings:
    """Everything a posterior depends on besides the data and the library versions.

    ``method`` one of :data:`METHODS`; ``draws`` NUTS draws per chain, or Laplace / ADVI draws;
    ``seed`` seeds every stochastic step; ``map_maxiter`` bounds each L-BFGS run of the mode;
    ``fit_days`` the age up to which histories enter the likelihood (``None``: all; applied
    by :func:`~.stats.collapse`, recorded here because the posterior depends on it);
    ``priors`` the hyperpriors (:data:`~.latents.PRIORS`); ``tune``, ``chains``,
    ``target_accept`` NUTS only; ``advi_steps`` ADVI only.
    """

    method: str = "nuts"
    draws: int = 500
    seed: int = 0
    map_maxiter: int = 5000
    fit_days: int | None = 120
    priors: Priors = field(default_factory=plain_priors)
    tune: int = 500
    chains: int = 2
    target_accept: float = 0.9
    advi_steps: int = 10000

    def record(self) -> dict[str, Any]:
        """The settings as recorded in the cache key and ``params.json``: the shared ones, then
        the method's own (NUTS: ``tune``, ``chains``, ``target_accept``; ADVI: ``advi_steps``)."""
        out: dict[str, Any] = {"method": self.method, "draws": self.draws, "seed": self.seed,
                               "map_maxiter": self.map_maxiter, "fit_days": self.fit_days,
                               "priors": plain_priors(self.priors)}
        if self.method == "nuts":
            out.update(tune=self.tune, chains=self.chains, target_accept=self.target_accept)
        elif self.method == "advi":
            out["advi_steps"] = self.advi_steps
        return out


@dataclass(frozen=True, eq=False)
class Posterior:
    """Draws of every group's latents and the population, with the method's diagnostics.

    ``latent`` ``(S, G, K)`` draws of the latents (:data:`~.latents.LATENTS`);
    ``population_mean`` ``(S, K)`` and ``population_spread`` ``(S, K_vary)`` (MAP: ``S = 1``,
    the estimate); ``mode_latent`` ``(1, G, K)`` the mode (MAP only: its point forecast).
    Diagnostics (``None`` where the method has none): ``diverging`` NUTS divergences,
    ``rhat_max`` the largest R-hat (NUTS with several chains), ``mean_tree_depth``,
    ``centred_share`` the share of centred latents (NUTS, ADVI), ``elbo_final`` ADVI's final
    ELBO, ``map_converged`` and ``laplace_clipped_eigenvalues`` (MAP).
    """

    latent: np.ndarray
    population_mean: np.ndarray
    population_spread: np.ndarray
    mode_latent: np.ndarray | None = None
    diverging: int | None = None
    rhat_max: float | None = None
    mean_tree_depth: float | None = None
    centred_share: float | None = None
    elbo_final: float | None = None
    map_converged: bool | None = None
    laplace_clipped_eigenvalues: int | None = None

    #: Diagnostics in the order ``params.json`` lists them.
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = (
        "diverging", "rhat_max", "mean_tree_depth", "centred_share", "elbo_final",
        "map_converged", "laplace_clipped_eigenvalues")
    _ARRAYS: ClassVar[tuple[str, ...]] = ("latent", "population_mean", "population_spread",
                                          "mode_latent")

    @property
    def n_draws(self) -> int:
        return int(self.latent.shape[0])

    def diagnostics(self) -> dict[str, Any]:
        """The method's diagnostics as plain Python values, in :attr:`DIAGNOSTICS` order."""
        return {name: getattr(self, name) for name in self.DIAGNOSTICS
                if getattr(self, name) is not None}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The posterior as named arrays (what the posterior cache stores)."""
        out = {name: np.asarray(getattr(self, name)) for name in self._ARRAYS
               if getattr(self, name) is not None}
        out.update({name: np.array(value) for name, value in self.diagnostics().items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Posterior:
        """The inverse of :meth:`to_arrays` (unknown names are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = set(arrays) - known
        if unknown:
            raise ValueError(f"not a posterior: unknown arrays {sorted(unknown)}")
        values: dict[str, Any] = {name: arrays[name] for name in cls._ARRAYS if name in arrays}
        values.update({name: arrays[name].item() for name in cls.DIAGNOSTICS if name in arrays})
        return cls(**values)


# ----------------------------------------------------------------------------- shared steps


def _stack(posterior, name: str) -> np.ndarray:
    """(chain, draw, …) → (chain·draw, …)."""
    values = posterior[name].values
    return values.reshape((-1,) + values.shape[2:]).astype(float)


def _summary(layout: Layout, shared: np.ndarray, tau: np.ndarray, eta: np.ndarray,
             w: np.ndarray) -> Posterior:
    """The stored posterior from draws of the sampling parameterisation (leading axis: draws)."""
    latent, parts = sampling_latent(layout, shared, tau, eta, w)
    mu = np.empty((tau.shape[0], len(LATENTS)))
    mu[:, _VARY], mu[:, _SHARE] = parts["mu"], shared
    return Posterior(latent=latent, population_mean=mu, population_spread=tau,
                     centred_share=float(layout.centred.mean()))


def _population_variances(mode: Mode, priors: Priors) -> dict[str, np.ndarray]:
    """Rough posterior variances of the population parameters (unconstrained) at the mode."""
    n_groups = mode.latent.shape[0]
    _, sd, _ = prior_vectors(priors)
    tau = mode.population_spread
    shared_var = 1.0 / (mode.shared_information + 1.0 / sd**2)
    return {"shared_value": shared_var[_SHARE], "mean_offset": np.ones(tau.size),
            "population_spread_log__": np.full(tau.size, max(0.5 / n_groups, 0.005))}


def _initial_potential(model, mode: Mode, priors: Priors):
    """A diagonal mass-matrix adaptation that starts from the Laplace scales at the mode."""
    from pymc.blocking import DictToArrayBijection
    from pymc.step_methods.hmc.quadpotential import QuadPotentialDiagAdapt

    scales = _population_variances(mode, priors)
    start = model.initial_point()
    point = {v.name: start[v.name] for v in model.value_vars}
    flat = DictToArrayBijection.map(point)
    var = np.concatenate([np.broadcast_to(scales.get(name, 1.0), shape).ravel()
                          for name, shape, *_ in flat.point_map_info])
    return QuadPotentialDiagAdapt(var.size, flat.data, var, 10)


# ----------------------------------------------------------------------------- the methods


def fit_nuts(stats: SufficientStats, settings: InferenceSettings) -> Posterior:
    """NUTS on the joint posterior, ``chains`` × ``draws`` draws after ``tune`` tuning steps."""
    pm = import_pymc()
    import arviz as az

    mode = find_mode(stats, settings.priors, settings.map_maxiter)
    layout = sampling_layout(mode, mode.hessian)
    model = build_pymc_model(stats, settings.priors, layout)
    chains = settings.chains
    # Start every chain near the mode (the offsets w ~ N(0, 1) jittered by a third) with the
    # mass matrix set to the Laplace scales, so warm-up need not discover scales of 0.01.
    rng = np.random.default_rng(settings.seed)
    n_groups, n_vary = layout.centred.shape
    initvals = [{"group_w": 0.3 * rng.standard_normal((n_groups, n_vary)),
                 "mean_offset": 0.3 * rng.standard_normal(n_vary)} for _ in range(chains)]
    with model, quiet(), np.errstate(all="ignore"):
        potential = _initial_potential(model, mode, settings.priors)
        step = pm.NUTS(potential=potential, target_accept=settings.target_accept)
        idata = pm.sample(draws=settings.draws, tune=settings.tune, chains=chains,
                          cores=min(chains, 2), random_seed=settings.seed, progressbar=False,
                          compute_convergence_checks=False, step=step, initvals=initvals)
    post = idata.posterior
    out = _summary(layout, *(_stack(post, name) for name in
                             ("shared_value", "population_spread", "mean_offset", "group_w")))
    stats_ = idata.sample_stats
    rhat_max = None
    if chains > 1:
        rhat = az.rhat(idata.posterior[["shared_value", "mean_offset", "population_spread",
                                        "group_w"]])
        rhat_max = float(max(float(rhat[v].max()) for v in rhat.data_vars))
    return replace(out, diverging=int(stats_["diverging"].values.sum()),
                   mean_tree_depth=float(stats_["tree_depth"].values.mean()), rhat_max=rhat_max)


def fit_advi(stats: SufficientStats, settings: InferenceSettings) -> Posterior:
    """Mean-field ADVI for ``advi_steps`` steps, then ``draws`` draws of the approximation."""
    pm = import_pymc()
    mode = find_mode(stats, settings.priors, settings.map_maxiter)
    layout = sampling_layout(mode, mode.hessian)
    model = build_pymc_model(stats, settings.priors, layout)
    # Start at the mode with the population's scales (a unit default would take tens of
    # thousands of steps to shrink).
    sigma = {k: np.sqrt(v) for k, v in _population_variances(mode, settings.priors).items()}
    sigma["group_w"] = np.full(layout.centred.size, 0.5)
    with model, quiet(), np.errstate(all="ignore"):
        approx = pm.fit(n=settings.advi_steps, method="advi", random_seed=settings.seed,
                        progressbar=False, start_sigma=sigma)
        mean, std = approx.mean.eval(), approx.std.eval()
    # Draws of the mean-field Gaussian, unravelled by the approximation's own ordering (NumPy:
    # PyMC's `approx.sample` would compile another graph for the same thing).
    rng = np.random.default_rng(settings.seed)
    flat = mean + std * rng.standard_normal((settings.draws, mean.size))
    values = {name: flat[:, cut].reshape((-1,) + tuple(shape))
              for name, cut, shape, _ in approx.groups[0].ordering.values()}
    out = _summary(layout, values["shared_value"], np.exp(values["population_spread_log__"]),
                   values["mean_offset"], values["group_w"])
    return replace(out, elbo_final=float(-np.mean(approx.hist[-100:])))


def fit_map(stats: SufficientStats, settings: InferenceSettings) -> Posterior:
    """The empirical-Bayes mode, then ``draws`` draws of each group's Laplace approximation
    given it.

    The population (and the shared latents) stay at their estimate: the draws carry the
    groups' uncertainty, not the population's (NUTS carries both).
    """
    mode = find_mode(stats, settings.priors, settings.map_maxiter)
    cov, clipped = laplace_covariance(mode, mode.hessian)
    rng = np.random.default_rng(settings.seed)
    noise = rng.standard_normal((settings.draws, stats.n_groups, _VARY.size))
    chol = np.linalg.cholesky(cov)
    latent = np.repeat(mode.latent[None], settings.draws, axis=0)
    latent[:, :, _VARY] += np.einsum("gkj,sgj->sgk", chol, noise)
    return Posterior(latent=latent, mode_latent=mode.latent[None],
                     population_mean=mode.population_mean[None],
                     population_spread=mode.population_spread[None],
                     map_converged=bool(mode.converged), laplace_clipped_eigenvalues=clipped)


#: Inference by method name (read-only); the order is that of :data:`METHODS`.
FIT_METHODS: Mapping[str, Callable[[SufficientStats, InferenceSettings], Posterior]] = (
    MappingProxyType({"nuts": fit_nuts, "map": fit_map, "advi": fit_advi}))

#: The inference methods, the default first.
METHODS: tuple[str, ...] = tuple(FIT_METHODS)


def infer(stats: SufficientStats, settings: InferenceSettings) -> Posterior:
    """The posterior by ``settings.method`` (see :data:`FIT_METHODS`)."""
    try:
        run = FIT_METHODS[settings.method]
    except KeyError:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, "
                         f"got {settings.method!r}") from None
    return run(stats, settings)


# ----------------------------------------------------------------------------- provenance


def source_digest() -> str:
    """sha256 of this package's source files (names and contents, in name order): changing
    any of them changes every cache key, by design."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        data = path.read_bytes()
        digest.update(f"{path.name}|{len(data)}|".encode())
        digest.update(data)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """The versions a posterior depends on: the sampling libraries' and the model's source."""
    import pytensor
    import scipy

    pm = import_pymc()
    return {"pymc": pm.__version__, "pytensor": pytensor.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "btyd_source": source_digest()}
