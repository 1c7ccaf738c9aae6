"""The model's latent values: their order, which are shared by all groups, their hyperpriors, and
how they map to each group's parameters (:func:`group_params`).

Each group ``g`` has eleven latent values (:data:`LATENTS`), all unconstrained:

* BG/BB activity ``p ~ Beta(α_g, β_g)`` and dropout ``θ ~ Beta(γ_g, δ_g)`` (Fader, Hardie &
  Shang 2010), each as the logit of the Beta's mean and the log of its concentration
  ``α + β``;
* the two paying Betas ``π ~ Beta(a_gs, b_gs)`` (``s``: whether the user paid on day 0), in the
  same form;
* spend: the mean log amount ``m_g`` relative to the pooled mean log amount of the data
  (``spend_center``, which keeps the priors currency-free), and the logs of ``σ`` (within a
  user) and ``τ`` (between users).

Partial pooling: six latents vary by group around a population mean with a population spread;
five (:data:`SHARED`) take one value in all groups. This module is pure NumPy: the likelihood
(:mod:`.likelihood`), the PyMC model (:mod:`.model`) and the forecast (:mod:`.estimator`) all
read the latents through it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np
from scipy.special import expit

__all__ = ["BOUNDS", "GROUP_PARAMS", "LATENTS", "PRIORS", "Priors", "SHARED", "group_params", "plain_priors",
           "prior_vectors"]

#: Hyperpriors by latent name: ``{"mean": …, "sd": …}`` and, for a latent that varies by
#: group, ``"spread"``.
Priors = Mapping[str, Mapping[str, float]]

#: The model's latent values per group, in order (see :func:`group_params`).
LATENTS = ("p_logit_mean", "p_log_conc", "theta_logit_mean", "theta_log_conc",
           "pay_logit_mean", "pay_log_conc", "pay_day0_logit_mean", "pay_day0_log_conc",
           "spend_log_mean", "spend_log_sigma", "spend_log_tau")

#: Latents shared by all groups (no spread). ``theta_log_conc``: a campaign's first week pins
#: down how fast its users churn on average, not how unequal their churn rates are, which
#: decides the long tail; sharing it lets matured campaigns in the data set the tail for young
#: ones (MAPE at 180 days on "1 install day + 7 observed" fell from 49% to 28% for game data
#: and from 18% to 11% for purchase data; benchmarks/btyd_speed.py). The others: a campaign's
#: handful of payers cannot separate how heterogeneous its payers are, or how much amounts vary
#: within and between payers, from its own mean.
SHARED = ("theta_log_conc", "pay_log_conc", "pay_day0_log_conc", "spend_log_sigma",
          "spend_log_tau")

#: Hyperpriors: a latent that varies by group is ``mean_k + spread_k · z_g`` with population
#: mean ``~ Normal(mean, sd)`` and spread ``~ HalfNormal(spread)``; a shared latent is
#: ``~ Normal(mean, sd)``. ``spend_log_mean`` is relative to the pooled mean log amount of the
#: data (currency-free). Read-only: pass ``priors=`` to the estimator to change them.
PRIORS: Priors = MappingProxyType({name: MappingProxyType(values) for name, values in {
    "p_logit_mean": {"mean": 0.0, "sd": 1.5, "spread": 1.0},
    "p_log_conc": {"mean": 1.0, "sd": 1.5, "spread": 1.0},
    "theta_logit_mean": {"mean": -2.0, "sd": 1.5, "spread": 1.0},
    "theta_log_conc": {"mean": 0.0, "sd": 1.5},
    "pay_logit_mean": {"mean": -3.0, "sd": 2.0, "spread": 1.0},
    "pay_log_conc": {"mean": 0.0, "sd": 1.5},
    "pay_day0_logit_mean": {"mean": -2.0, "sd": 2.0, "spread": 1.0},
    "pay_day0_log_conc": {"mean": 0.0, "sd": 1.5},
    "spend_log_mean": {"mean": 0.0, "sd": 2.0, "spread": 0.5},
    "spend_log_sigma": {"mean": -0.5, "sd": 1.0},
    "spend_log_tau": {"mean": -0.5, "sd": 1.0},
}.items()})


def _index(names: Iterable[str]) -> np.ndarray:
    index = np.array([LATENTS.index(k) for k in names])
    index.flags.writeable = False
    return index


#: Positions in :data:`LATENTS` of the latents that vary by group and of the shared ones
#: (read-only).
_VARY = _index(k for k in LATENTS if k not in SHARED)
_SHARE = _index(k for k in LATENTS if k in SHARED)

#: Box that the mode search stays in, per latent ``(low, high)``. From a concentration of
#: about e^9 a Beta is a point mass to the data (the likelihood was flat from e^9 to e^20), and
#: by e^40 float64 has lost the log-Beta differences of the likelihood outright: on BG/NBD data
#: (84 days observed) L-BFGS followed that rounding noise to a concentration of e^56 and a
#: "likelihood" of +3e5, and the forecast missed by −45% with a 3%-wide interval. A logit past
#: ±25 is a probability within 1e-11 of 0 or 1. The bounds sit far outside every prior
#: (at least 10 sds), so they bind only where the numbers would otherwise break.
BOUNDS: tuple[tuple[float | None, float | None], ...] = tuple(
    (-12.0, 15.0) if name.endswith("_log_conc") else
    (-25.0, 25.0) if name.endswith("_logit_mean") else
    (None, None)  # spend: log amounts and log spreads, which no rounding cliff limits
    for name in LATENTS)

#: Group-level parameters derived from the latents: (draws, G), or (draws, G, 2) for pay
#: (index 0: no purchase on day 0, 1: a purchase on day 0).
GROUP_PARAMS = ("p_alpha", "p_beta", "theta_gamma", "theta_delta", "pay_a", "pay_b",
                "spend_m", "spend_sigma", "spend_tau")


def group_params(latent: np.ndarray, spend_center: float = 0.0) -> dict[str, np.ndarray]:
    """Group parameters from latents ``(…, G, 11)`` (see :data:`LATENTS`).

    A Beta's ``(logit mean η, log concentration λ)`` gives ``α = expit(η)·e^λ`` and
    ``β = (1 − expit(η))·e^λ``; spend gives ``m = spend_center + u₈``, ``σ = e^u₉``, ``τ = e^u₁₀``.
    Returns :data:`GROUP_PARAMS` arrays of shape ``(…, G)`` (``(…, G, 2)`` for ``pay_*``).
    """
    u = np.asarray(latent, dtype=float)

    def beta_pair(mean_logit, log_conc):
        mean, conc = expit(mean_logit), np.exp(log_conc)
        return mean * conc, (1.0 - mean) * conc

    p_a, p_b = beta_pair(u[..., 0], u[..., 1])
    t_g, t_d = beta_pair(u[..., 2], u[..., 3])
    pay_a, pay_b = beta_pair(u[..., [4, 6]], u[..., [5, 7]])
    return {"p_alpha": p_a, "p_beta": p_b, "theta_gamma": t_g, "theta_delta": t_d,
            "pay_a": pay_a, "pay_b": pay_b, "spend_m": spend_center + u[..., 8],
            "spend_sigma": np.exp(u[..., 9]), "spend_tau": np.exp(u[..., 10])}


def plain_priors(priors: Priors | None = None) -> dict[str, dict[str, float]]:
    """A fresh nested ``dict`` of ``priors`` (empty or ``None``: :data:`PRIORS`), to record."""
    source = priors if priors else PRIORS
    return {k: copy.deepcopy(dict(v)) for k, v in source.items()}


def prior_vectors(priors: Priors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hyperprior means and sds of all latents, and spreads of the varying ones."""
    mean = np.array([priors[k]["mean"] for k in LATENTS], dtype=float)
    sd = np.array([priors[k]["sd"] for k in LATENTS], dtype=float)
    spread = np.array([priors[LATENTS[i]]["spread"] for i in _VARY], dtype=float)
    return mean, sd, spread
