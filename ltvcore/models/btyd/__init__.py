"""``--model btyd``: a hierarchical buy-till-you-die model of every user, fitted in PyMC.

Each user installs on day 0 and then, on each day ``1 … n`` they have observed, is either dead
or alive; an alive user is active with probability ``p``. Death is permanent and strikes at the
start of each day with probability ``θ``. A paying day is an active day with revenue; revenue on
day 0 (starter packs) is taken as observed, never modelled.

* Activity and dropout: BG/BB (Fader, Hardie & Shang 2010, "Customer-Base Analysis in a
  Discrete-Time Noncontractual Setting", Marketing Science 29(6)), ``p ~ Beta(α_g, β_g)`` and
  ``θ ~ Beta(γ_g, δ_g)`` across the users of group ``g``.
* Paying: beta-binomial, ``π ~ Beta(a_gs, b_gs)`` per active day after day 0, ``s`` whether
  the user paid on day 0.
* Spend per paying day: lognormal–normal, ``ln(amount) ~ N(μ_u, σ²)``, ``μ_u ~ N(m_g, τ²)``.
* Partial pooling: six latents vary by group around a population, five are shared.

Users are independent given their group's parameters; activity, paying and spend are independent
given a user's own history; weekday and promotion effects are not modelled (see
:data:`ASSUMPTIONS`). The package has one concern per module, in dependency order:

:mod:`.stats`
    the data the model needs, collapsed to sufficient statistics (:func:`collapse`);
:mod:`.latents`
    the latent values, which are shared, their hyperpriors (:data:`PRIORS`) and the map to
    group parameters (:func:`group_params`);
:mod:`.likelihood`
    the likelihood kernels (:func:`bgbb_rows`, beta-binomial, lognormal), their gradients and
    the PyTensor Op (:class:`SamplingDensity`);
:mod:`.model`
    the PyMC model (:func:`build_pymc_model`), its empirical-Bayes mode and parameterisation;
:mod:`.inference`
    NUTS, MAP (+ Laplace) and ADVI by name (:func:`infer`), from :class:`InferenceSettings` to
    a :class:`Posterior`;
:mod:`.estimator`
    :class:`BTYDModel` (fit / predict / params / assumptions) and the forecast
    (:func:`_expected_curves`).
"""

from __future__ import annotations

from ltvcore.models.btyd.estimator import ASSUMPTIONS, EXTRAPOLATION_SD, BTYDModel, _expected_curves
from ltvcore.models.btyd.inference import FIT_METHODS, METHODS, InferenceSettings, Posterior, infer
from ltvcore.models.btyd.latents import _SHARE, _VARY, GROUP_PARAMS, LATENTS, PRIORS, SHARED, group_params
from ltvcore.models.btyd.likelihood import (
                                           Layout,
                                           SamplingDensity,
                                           bgbb_rows,
                                           data_loglik,
                                           latent_loglik,
                                           sampling_density,
                                           sampling_latent,
)
from ltvcore.models.btyd.model import Mode, build_pymc_model, find_mode, sampling_layout
from ltvcore.models.btyd.stats import SufficientStats, collapse

__all__ = ["ASSUMPTIONS", "BTYDModel", "EXTRAPOLATION_SD", "FIT_METHODS", "GROUP_PARAMS",
           "InferenceSettings", "LATENTS", "Layout", "METHODS", "Mode", "PRIORS", "Posterior",
           "SHARED", "SamplingDensity", "SufficientStats", "_SHARE", "_VARY", "_expected_curves",
           "bgbb_rows", "build_pymc_model", "collapse", "data_loglik", "find_mode",
           "group_params", "infer", "latent_loglik", "sampling_density", "sampling_latent",
           "sampling_layout"]
