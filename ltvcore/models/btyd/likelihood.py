"""The likelihood of the BTYD model, its analytic gradients, and the PyTensor Op PyMC samples.

Users are independent given their group's parameters; activity, paying and spend are independent
given a user's own history. Each part is a closed form over the collapsed rows of
:class:`~.stats.SufficientStats`:

* **Activity and dropout: BG/BB** (:func:`bgbb_rows`; Fader, Hardie & Shang 2010,
  "Customer-Base Analysis in a Discrete-Time Noncontractual Setting", Marketing Science 29(6),
  eq. 5). While alive a user is active each day with probability ``p ~ Beta(α, β)``; death is
  permanent and strikes at the start of each day with probability ``θ ~ Beta(γ, δ)``. It is
  the discrete-time member of the BG/NBD family, chosen over BG/NBD and Pareto/NBD because the
  data *are* discrete: an active day happens at most once a day (a Poisson count allows two a
  day and misfits daily-login users), and death is a daily hazard rather than a coin tossed
  after each transaction (BG/NBD), so a user who never returns after install can be dead
  (BG/NBD makes them immortal). ``θ``'s part is exactly the sBG of the curve model. Its
  likelihood and conditional expectations are Beta functions only (Pareto/NBD needs the Gauss
  hypergeometric ``2F1``), so gradients are cheap and the per-day forecast is exact.
* **Paying: beta-binomial** (:func:`_beta_binomial_kernel`). Among a user's active days after
  day 0, each pays with probability ``π ~ Beta(a_s, b_s)``, ``s`` whether the user paid on day
  0: in game data most users never pay, the few payers pay again, and a day-0 purchase is the
  strongest early sign of a payer. In purchase data every active day pays and ``π`` goes to 1.
* **Spend per paying day: lognormal–normal** (in :func:`data_loglik`). ``ln(amount) ~ N(μ_u,
  σ²)`` with ``μ_u ~ N(m, τ²)`` (whales: users differ in their typical basket); conjugate, so
  users collapse to (paying days, mean and spread of their log amounts). Chosen over
  Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV", Journal of Marketing Research 42(4))
  because in-app spending is close to lognormal and the lognormal needs no ``q > 1``
  constraint for a finite mean.

:func:`data_loglik` takes group parameters, :func:`latent_loglik` the latents of
:mod:`.latents` (with the chain rule), and :func:`sampling_density` the sampling
parameterisation of :mod:`.model` (:class:`Layout`) together with the groups' population
prior. :class:`SamplingDensity` wraps the last as one PyTensor Op with its gradient, so PyMC
compiles no graph of the likelihood. The kernels are NumPy/Numba.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, overload

import numba
import numpy as np
import pytensor.tensor as pt
from numpy.typing import ArrayLike
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from scipy.special import digamma, expit, gammaln

from ltvcore.models.btyd.latents import _SHARE, _VARY, LATENTS, Priors, group_params, prior_vectors
from ltvcore.models.btyd.stats import SufficientStats

__all__ = ["Layout", "SamplingDensity", "SamplingDensityGrad", "bgbb_rows", "data_loglik",
           "latent_loglik", "sampling_density", "sampling_latent"]


@dataclass(frozen=True, eq=False)
class Layout:
    """How each group's varying latents are parameterised for sampling (see
    :func:`ltvcore.models.btyd.model.sampling_layout`, which sets it at the empirical-Bayes mode).

    ``centred`` ``(G, K_vary)``: latent ``k`` of group ``g`` is centred (``u = v``) or not
    (``u = μ + τ·v``); ``chol`` ``(G, K_vary, K_vary)`` and ``offset`` ``(G, K_vary)``: the
    whitening ``v = offset + chol·w``; ``tied_mean`` ``(K_vary,)``: population means
    parameterised as ``μ̂ + τ/√G·η`` (else ``μ̂ + mean_scale·η``); ``population_mean`` ``(K,)``
    and ``population_spread`` ``(K_vary,)``: the mode's population.
    """

    centred: np.ndarray
    chol: np.ndarray
    offset: np.ndarray
    tied_mean: np.ndarray
    mean_scale: np.ndarray
    population_mean: np.ndarray
    population_spread: np.ndarray


def bgbb_rows(alpha: ArrayLike, beta: ArrayLike, gamma: ArrayLike, delta: ArrayLike,
              row_g: ArrayLike, row_x: ArrayLike, row_tx: ArrayLike, row_n: ArrayLike, *,
              weight: ArrayLike | None = None) -> dict[str, np.ndarray]:
    """BG/BB log-likelihood and activity coefficient per user row (and weighted gradients).

    Group parameters have shape ``(S, G)`` (``S`` draws); rows must be sorted by (group, x),
    as :func:`~.stats.collapse` sorts them. Returns a dict with ``log_lik`` and ``log_coef`` of
    shape ``(S, R)``, where ``P(active on a future day d | history) = exp(log_coef) ·
    B(γ, δ+d)/B(γ, δ)`` (FHS 2010, eq. 5 and the conditional expectation). With ``weight``
    (per row) it also returns ``grad``, ``(4, S, G)``: the gradient of ``Σ weight · log_lik``
    with respect to (α, β, γ, δ).

    ``ln Γ`` and ``ψ`` come from SciPy once per group and draw, then by their recurrences
    (``ln Γ(z+1) = ln Γ(z) + ln z``, ``ψ(z+1) = ψ(z) + 1/z``). The sum over the possible death
    days ``j = t_x … n−1`` of ``term_j = B(α+x, β+j−x)/B(α,β) · B(γ+1, δ+j)/B(γ,δ)`` is a
    difference of suffix sums shared by all rows with the same (group, x): the terms by their
    ratio, rescaled against underflow; the terms decrease in ``j``, so the suffix beyond ``n``
    is at most ``age ×`` the difference and no precision is lost. Cost:
    ``O(S·Σ_(group, x) (max n − min t_x) + S·R)``, whatever the number of users.
    """
    a, b, c, d = (np.atleast_2d(np.asarray(v, dtype=float)) for v in (alpha, beta, gamma, delta))
    g, x, tx, n = (np.ascontiguousarray(v, dtype=np.int64) for v in (row_g, row_x, row_tx, row_n))
    return _bgbb(a, b, c, d, g, x, tx, n, weight)


def _bgbb(alpha: np.ndarray, beta: np.ndarray, gamma: np.ndarray, delta: np.ndarray,
          row_g: np.ndarray, row_x: np.ndarray, row_tx: np.ndarray, row_n: np.ndarray,
          weight: ArrayLike | None) -> dict[str, np.ndarray]:
    """:func:`bgbb_rows` on arrays already of their dtype and shape."""
    if row_g.size and np.any(np.diff(row_g * (int(row_x.max()) + 1) + row_x) < 0):
        raise ValueError("rows must be sorted by (group, x)")
    n_draws, n_groups = alpha.shape
    bounds = np.searchsorted(row_g, np.arange(n_groups + 1)).astype(np.int64)
    base = np.stack([alpha, beta, alpha + beta, delta, gamma + delta], axis=-1)  # (S, G, 5)
    n_rows = row_g.size
    log_lik = np.empty((n_draws, n_rows))
    log_coef = np.empty((n_draws, n_rows))
    want_grad = weight is not None
    row_weight = np.ascontiguousarray(weight if want_grad else np.zeros(0), dtype=float)
    grad = np.zeros((4, n_draws, n_groups) if want_grad else (4, 0, 0))
    n_size = int(max(row_n.max(initial=0), row_x.max(initial=0))) + 2
    with np.errstate(all="ignore"):
        _bgbb_kernel(base, gammaln(base), digamma(base), gamma, bounds, row_x, row_tx, row_n,
                     n_size, want_grad, row_weight, log_lik, log_coef, grad)
    out: dict[str, np.ndarray] = {"log_lik": log_lik, "log_coef": log_coef}
    if want_grad:
        out["grad"] = grad
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bgbb_kernel(base, gl0, dg0, gamma, bounds, row_x, row_tx, row_n, n_size, want_grad,
                 weight, log_lik, log_coef, grad):  # pragma: no cover - compiled
    big = 1e150
    ln_big = np.log(big)
    gl = np.empty((5, n_size))
    dg = np.empty((5, n_size))
    step = np.empty(n_size)
    rel = np.empty(n_size)                      # term_j / term_{j_lo} · big**rel_k[j]
    rel_k = np.empty(n_size, dtype=np.int64)
    suf = np.empty(n_size)                      # Σ_{j' ≥ j} of rel, at scale big**suf_k[j]
    suf_k = np.empty(n_size, dtype=np.int64)
    wsum = np.empty((4, n_size))                # Σ_{j' ≥ j} rel · ∂ln term parts, same scale
    for s in range(base.shape[0]):
        for g in range(base.shape[1]):
            lo, hi = bounds[g], bounds[g + 1]
            if lo == hi:
                continue
            # ln Γ and ψ of (α, β, α+β, δ, γ+δ) + j by their recurrences.
            for k in range(5):
                z = base[s, g, k]
                gl[k, 0] = gl0[s, g, k]
                dg[k, 0] = dg0[s, g, k]
                for j in range(1, n_size):
                    gl[k, j] = gl[k, j - 1] + np.log(z + j - 1)
                    dg[k, j] = dg[k, j - 1] + 1.0 / (z + j - 1)
            a, b = base[s, g, 0], base[s, g, 1]
            c, d = gamma[s, g], base[s, g, 3]
            # term_{j+1} / term_j = (β+j−x) · step_j
            for j in range(n_size):
                step[j] = (d + j) / ((a + b + j) * (c + d + 1.0 + j))
            ln_b_ab = gl[0, 0] + gl[1, 0] - gl[2, 0]
            ln_b_cd0 = gl[4, 0] - gl[3, 0]          # ln Γ(γ+δ) − ln Γ(δ)
            ln_c = np.log(c)
            start = lo
            while start < hi:
                # Rows with the same x share the death-day sums over j ∈ [min t_x, max n):
                # terms by their ratio going forward, suffix sums going backward (accurate:
                # the terms decrease in j), both rescaled by powers of `big`.
                x = row_x[start]
                stop = start
                j_lo = row_tx[start]
                j_hi = row_n[start]
                while stop < hi and row_x[stop] == x:
                    j_lo = min(j_lo, row_tx[stop])
                    j_hi = max(j_hi, row_n[stop])
                    stop += 1
                if j_hi > j_lo:
                    value = 1.0
                    scale = 0
                    for j in range(j_lo, j_hi):
                        rel[j] = value
                        rel_k[j] = scale
                        value *= (b + j - x) * step[j]
                        if value < 1.0 / big:
                            value *= big
                            scale += 1
                    cur = rel_k[j_hi - 1]
                    total_run = 0.0
                    w0 = w1 = w2 = w3 = 0.0
                    suf[j_hi] = 0.0
                    suf_k[j_hi] = cur
                    for m in range(4):
                        wsum[m, j_hi] = 0.0
                    for j in range(j_hi - 1, j_lo - 1, -1):
                        if rel_k[j] < cur:
                            shrink = big ** (rel_k[j] - cur)
                            total_run *= shrink
                            w0 *= shrink
                            w1 *= shrink
                            w2 *= shrink
                            w3 *= shrink
                            cur = rel_k[j]
                        v = rel[j]
                        total_run += v
                        suf[j] = total_run
                        suf_k[j] = cur
                        if want_grad:
                            w0 += v * dg[1, j - x]
                            w1 += v * dg[2, j]
                            w2 += v * dg[3, j]
                            w3 += v * dg[4, j + 1]
                            wsum[0, j] = w0
                            wsum[1, j] = w1
                            wsum[2, j] = w2
                            wsum[3, j] = w3
                    # ln term_{j_lo} = ln P(x, j_lo) + ln Q(j_lo)
                    ln_first = (gl[0, x] + gl[1, j_lo - x] - gl[2, j_lo] - ln_b_ab + ln_c
                                + gl[3, j_lo] - gl[4, j_lo + 1] + ln_b_cd0)
                for r in range(start, stop):
                    tx, n = row_tx[r], row_n[r]
                    log_p_n = gl[0, x] + gl[1, n - x] - gl[2, n] - ln_b_ab
                    log_a = log_p_n + gl[3, n] - gl[4, n] + ln_b_cd0          # × S(n)
                    total = log_a
                    w_a = 1.0
                    w_t = 0.0
                    factor = 0.0
                    if tx < n:
                        # Σ_{j=t_x}^{n−1} term_j = suffix(t_x) − suffix(n)
                        factor = big ** (suf_k[tx] - suf_k[n])
                        ratio = suf[n] * factor / suf[tx]
                        log_tail = (np.log(suf[tx]) - suf_k[tx] * ln_big + ln_first
                                    + np.log1p(-ratio))
                        small = np.exp(-abs(log_a - log_tail))
                        total = max(log_a, log_tail) + np.log1p(small)
                        w_a = 1.0 / (1.0 + small) if log_a >= log_tail else small / (1.0 + small)
                        w_t = 1.0 - w_a
                    log_lik[s, r] = total
                    # ln((α+x)/(α+β+n)) from the ln Γ tables.
                    log_coef[s, r] = (log_p_n + gl[0, x + 1] - gl[0, x] - gl[2, n + 1]
                                      + gl[2, n] - total)
                    if want_grad:
                        wr = weight[r]
                        # ∂ ln L = w_A ∂ ln A + w_T · E[∂ ln term_j] over the death days
                        grad[0, s, g] += wr * w_a * (dg[0, x] - dg[0, 0] + dg[2, 0] - dg[2, n])
                        grad[1, s, g] += wr * w_a * (dg[1, n - x] - dg[1, 0] + dg[2, 0]
                                                     - dg[2, n])
                        grad[2, s, g] += wr * w_a * (dg[4, 0] - dg[4, n])
                        grad[3, s, g] += wr * w_a * (dg[3, n] - dg[4, n] - dg[3, 0] + dg[4, 0])
                        if w_t > 0.0:
                            gap = suf[tx] - factor * suf[n]
                            e1 = (wsum[0, tx] - factor * wsum[0, n]) / gap
                            e2 = (wsum[1, tx] - factor * wsum[1, n]) / gap
                            e3 = (wsum[2, tx] - factor * wsum[2, n]) / gap
                            e4 = (wsum[3, tx] - factor * wsum[3, n]) / gap
                            grad[0, s, g] += wr * w_t * (dg[0, x] - dg[0, 0] + dg[2, 0] - e2)
                            grad[1, s, g] += wr * w_t * (e1 - dg[1, 0] + dg[2, 0] - e2)
                            grad[2, s, g] += wr * w_t * (1.0 / c + dg[4, 0] - e4)
                            grad[3, s, g] += wr * w_t * (e3 - dg[3, 0] + dg[4, 0] - e4)
                start = stop


@overload
def data_loglik(stats: SufficientStats, params: Mapping[str, np.ndarray], *,
                grad: Literal[False] = False) -> float: ...
@overload
def data_loglik(stats: SufficientStats, params: Mapping[str, np.ndarray], *,
                grad: Literal[True]) -> tuple[float, dict[str, np.ndarray]]: ...
def data_loglik(stats: SufficientStats, params: Mapping[str, np.ndarray], *, grad: bool = False
                ) -> float | tuple[float, dict[str, np.ndarray]]:
    """Total weighted log-likelihood of the data at one set of group parameters.

    ``params`` holds ``GROUP_PARAMS`` arrays of shape ``(G,)`` (``(G, 2)`` for pay). Returns
    the value, and with ``grad`` also a dict of gradients of the same shapes.
    """
    n_groups = stats.n_groups
    act = bgbb_rows(params["p_alpha"][None], params["p_beta"][None], params["theta_gamma"][None],
                    params["theta_delta"][None], stats.act_group, stats.act_x, stats.act_tx,
                    stats.act_n, weight=stats.act_count if grad else None)
    value = float(np.dot(stats.act_count, act["log_lik"][0]))

    # Paying days among active days after day 0: beta-binomial (C(x, y) dropped).
    pay_grad = np.zeros((2, n_groups * 2))
    value += _beta_binomial_kernel(params["pay_a"].ravel(), params["pay_b"].ravel(),
                                   stats.pay_group * 2 + stats.pay_status, stats.pay_x,
                                   stats.pay_y, stats.pay_count, grad, pay_grad)

    # Log amounts: lognormal–normal marginal likelihood from per-(group, y) sums.
    m, sigma, tau = params["spend_m"], params["spend_sigma"], params["spend_tau"]
    var = sigma**2
    g = stats.spend_group
    v = tau[g] ** 2 + var[g] / stats.spend_y
    sq = stats.spend_sumsq - 2 * m[g] * stats.spend_sum + stats.spend_count * m[g] ** 2
    value += float(np.sum(-0.5 * stats.spend_count * np.log(v) - sq / (2 * v)))
    value += float(np.sum(-0.5 * stats.spend_dof * np.log(var) - stats.spend_within / (2 * var)))
    if not grad:
        return value

    def per_group(weights, index):
        return np.bincount(index, weights=weights, minlength=n_groups)

    grads = dict(zip(("p_alpha", "p_beta", "theta_gamma", "theta_delta"), act["grad"][:, 0]))
    grads["pay_a"] = pay_grad[0].reshape(n_groups, 2)
    grads["pay_b"] = pay_grad[1].reshape(n_groups, 2)
    d_v = -0.5 * stats.spend_count / v + sq / (2 * v**2)
    grads["spend_m"] = per_group((stats.spend_sum - stats.spend_count * m[g]) / v, g)
    grads["spend_tau"] = per_group(d_v * 2 * tau[g], g)
    grads["spend_sigma"] = (per_group(d_v * 2 * sigma[g] / stats.spend_y, g)
                            - stats.spend_dof / sigma + stats.spend_within / sigma**3)
    return value, grads


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _beta_binomial_kernel(a, b, cell, trials, hits, weight, grad,
                          out_grad):  # pragma: no cover - compiled
    """Σ weight · ln[B(a+y, b+x−y)/B(a, b)] over rows, by ``ln Γ(z+k) − ln Γ(z) = Σ ln(z+i)``."""
    size = 1
    for r in range(trials.size):
        size = max(size, trials[r] + 1)
    n_cells = a.size
    la = np.zeros((n_cells, size))
    lb = np.zeros((n_cells, size))
    lab = np.zeros((n_cells, size))
    da = np.zeros((n_cells, size))
    db = np.zeros((n_cells, size))
    dab = np.zeros((n_cells, size))
    for c in range(n_cells):
        for i in range(1, size):
            la[c, i] = la[c, i - 1] + np.log(a[c] + i - 1)
            lb[c, i] = lb[c, i - 1] + np.log(b[c] + i - 1)
            lab[c, i] = lab[c, i - 1] + np.log(a[c] + b[c] + i - 1)
            da[c, i] = da[c, i - 1] + 1.0 / (a[c] + i - 1)
            db[c, i] = db[c, i - 1] + 1.0 / (b[c] + i - 1)
            dab[c, i] = dab[c, i - 1] + 1.0 / (a[c] + b[c] + i - 1)
    total = 0.0
    for r in range(cell.size):
        c, x, y, w = cell[r], trials[r], hits[r], weight[r]
        total += w * (la[c, y] + lb[c, x - y] - lab[c, x])
        if grad:
            out_grad[0, c] += w * (da[c, y] - dab[c, x])
            out_grad[1, c] += w * (db[c, x - y] - dab[c, x])
    return total


@overload
def latent_loglik(stats: SufficientStats, latent: np.ndarray, *,
                  grad: Literal[False] = False) -> float: ...
@overload
def latent_loglik(stats: SufficientStats, latent: np.ndarray, *,
                  grad: Literal[True]) -> tuple[float, np.ndarray]: ...
def latent_loglik(stats: SufficientStats, latent: np.ndarray, *, grad: bool = False
                  ) -> float | tuple[float, np.ndarray]:
    """:func:`data_loglik` as a function of the latents ``(G, 11)``, with the chain rule."""
    params = group_params(latent, stats.spend_center)
    if not grad:
        return data_loglik(stats, params)
    value, g = data_loglik(stats, params, grad=True)
    u = np.asarray(latent, dtype=float)
    out = np.empty_like(u)

    def beta_pair(a, b, d_a, d_b, mean_logit):
        # α = sκ, β = (1−s)κ with s = expit(η), κ = e^λ: ∂/∂η = s(1−s)κ(∂α − ∂β), ∂/∂λ = α∂α + β∂β
        s = expit(mean_logit)
        return s * (1 - s) * (a + b) * (d_a - d_b), a * d_a + b * d_b

    out[:, 0], out[:, 1] = beta_pair(params["p_alpha"], params["p_beta"], g["p_alpha"],
                                     g["p_beta"], u[:, 0])
    out[:, 2], out[:, 3] = beta_pair(params["theta_gamma"], params["theta_delta"],
                                     g["theta_gamma"], g["theta_delta"], u[:, 2])
    d_mean, d_conc = beta_pair(params["pay_a"], params["pay_b"], g["pay_a"], g["pay_b"],
                               u[:, [4, 6]])
    out[:, [4, 6]], out[:, [5, 7]] = d_mean, d_conc
    out[:, 8] = g["spend_m"]
    out[:, 9] = g["spend_sigma"] * params["spend_sigma"]
    out[:, 10] = g["spend_tau"] * params["spend_tau"]
    return value, out


def sampling_latent(layout: Layout, shared: ArrayLike, tau: ArrayLike, eta: ArrayLike,
                    w: ArrayLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Group latents ``(…, G, K)`` from the sampling parameterisation, and its pieces.

    Leading axes of ``shared`` ``(…, 5)``, ``tau`` and ``eta`` ``(…, 6)`` and ``w``
    ``(…, G, 6)`` are draws. See :func:`~.model.build_pymc_model` for the parameterisation.
    Returns the latents and ``{"mu": population means (…, 6), "v": (…, G, 6)}``.
    """
    s, t, e, z = (np.asarray(a, dtype=float) for a in (shared, tau, eta, w))
    n_groups = z.shape[-2]
    scale = np.where(layout.tied_mean, t / np.sqrt(n_groups), layout.mean_scale)
    mu = layout.population_mean[_VARY] + scale * e
    v = layout.offset + np.einsum("gkj,...gj->...gk", layout.chol, z)
    varying = np.where(layout.centred, v, mu[..., None, :] + t[..., None, :] * v)
    latent = np.empty(z.shape[:-1] + (len(LATENTS),))
    latent[..., _VARY] = varying
    latent[..., _SHARE] = s[..., None, :]
    return latent, {"mu": mu, "v": v}


def sampling_density(stats: SufficientStats, layout: Layout, priors: Priors, shared: np.ndarray,
                     tau: np.ndarray, eta: np.ndarray, w: np.ndarray
                     ) -> tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Log density (up to a constant) of the sampling parameterisation, and its gradient.

    Everything but the hyperpriors of ``shared`` and ``tau`` (PyMC's ``Normal`` and
    ``HalfNormal``): the data (:func:`latent_loglik`), the groups' ``Normal(μ, τ)`` in their
    centred or non-centred form, and ``μ ~ Normal(mean, sd)`` with its Jacobian. Returns
    ``(value, (d_shared, d_tau, d_eta, d_w))``.
    """
    mean, sd, _ = prior_vectors(priors)
    mean, sd = mean[_VARY], sd[_VARY]
    latent, parts = sampling_latent(layout, shared, tau, eta, w)
    mu, v = parts["mu"], parts["v"]
    centred, tied = layout.centred, layout.tied_mean
    n_groups = v.shape[0]
    value, g_latent = latent_loglik(stats, latent, grad=True)
    dev = (v - mu) / tau
    value += float(np.sum(np.where(centred, -np.log(tau) - 0.5 * dev**2, -0.5 * v**2)))
    value += float(np.sum(-0.5 * ((mu - mean) / sd) ** 2 + np.where(tied, np.log(tau), 0.0)))

    g_vary = g_latent[:, _VARY]
    d_v = np.where(centred, g_vary - dev / tau, g_vary * tau - v)
    d_w = np.einsum("gk,gkj->gj", d_v, layout.chol)
    d_mu = (np.sum(np.where(centred, dev / tau, g_vary), axis=0) - (mu - mean) / sd**2)
    d_tau = (np.sum(np.where(centred, -1.0 / tau + dev**2 / tau, g_vary * v), axis=0)
             + np.where(tied, 1.0 / tau, 0.0)
             + d_mu * np.where(tied, eta / np.sqrt(n_groups), 0.0))
    d_eta = d_mu * np.where(tied, tau / np.sqrt(n_groups), layout.mean_scale)
    d_shared = g_latent[:, _SHARE].sum(axis=0)
    return value, (d_shared, d_tau, d_eta, d_w)


class SamplingDensity(Op):
    """PyTensor Op: ``(shared, tau, eta, w)`` → :func:`sampling_density`.

    All but the hyperpriors is plain NumPy/Numba with an analytic gradient, so PyMC compiles
    a handful of small kernels (a PyTensor graph of the same density took over a minute to
    compile on a cold cache), and one pass gives value and gradient: the last point is
    memoised for :class:`SamplingDensityGrad`.
    """

    def __init__(self, stats: SufficientStats, layout: Layout, priors: Priors) -> None:
        self.stats = stats
        self.layout = layout
        self.priors = priors
        self.memo: tuple[bytes, float, tuple[np.ndarray, ...]] | None = None

    def evaluate(self, inputs) -> tuple[float, tuple[np.ndarray, ...]]:
        key = b"".join(np.ascontiguousarray(v).tobytes() for v in inputs)
        if self.memo is None or self.memo[0] != key:
            grads: tuple[np.ndarray, ...]
            with np.errstate(all="ignore"):
                value, grads = sampling_density(self.stats, self.layout, self.priors, *inputs)
            if not np.isfinite(value) or not all(np.isfinite(g).all() for g in grads):
                value, grads = -np.inf, tuple(np.zeros_like(np.asarray(v)) for v in inputs)
            self.memo = (key, value, grads)
        return self.memo[1], self.memo[2]

    def make_node(self, *inputs):
        inputs = [pt.cast(pt.as_tensor_variable(v), "float64") for v in inputs]
        return Apply(self, inputs, [pt.dscalar()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.array(self.evaluate(inputs)[0], dtype=float)

    def grad(self, inputs, output_grads):
        return [output_grads[0] * g for g in SamplingDensityGrad(self)(*inputs)]


class SamplingDensityGrad(Op):
    """The gradient of :class:`SamplingDensity` (shares its memo)."""

    def __init__(self, parent: SamplingDensity) -> None:
        self.parent = parent

    def make_node(self, *inputs):
        inputs = [pt.cast(pt.as_tensor_variable(v), "float64") for v in inputs]
        return Apply(self, inputs, [v.type() for v in inputs])

    def perform(self, node, inputs, outputs):
        # Copies: PyTensor may update an output in place, which must not touch the memo.
        for slot, grad in zip(outputs, self.parent.evaluate(inputs)[1]):
            slot[0] = np.array(grad, dtype=float)
