"""``--model btyd``: a hierarchical buy-till-you-die model of every user, fitted in PyMC.

The model
---------
Each user installs on day 0 and then, on each day ``1 … n`` they have observed, is either dead
or alive; an alive user is active with probability ``p``. Death is permanent and strikes at the
start of each day with probability ``θ``. A paying day is an active day with revenue; revenue on
day 0 (starter packs) is taken as observed, never modelled.

* **Activity and dropout: BG/BB** (beta-geometric/beta-Bernoulli; Fader, Hardie & Shang 2010,
  "Customer-Base Analysis in a Discrete-Time Noncontractual Setting", Marketing Science 29(6)),
  ``p ~ Beta(α_g, β_g)`` and ``θ ~ Beta(γ_g, δ_g)`` across the users of group ``g``. It is the
  discrete-time member of the BG/NBD family, chosen over BG/NBD and Pareto/NBD because the data
  *are* discrete: an active day happens at most once a day (a Poisson count allows two a day and
  misfits daily-login users), and death is a daily hazard rather than a coin tossed after each
  transaction (BG/NBD), so a user who never returns after install can be dead (BG/NBD makes
  them immortal). ``θ``'s part is exactly the sBG of the curve model. Its likelihood and its
  conditional expectations are Beta functions only (Pareto/NBD needs the Gauss
  hypergeometric ``2F1``), so gradients are cheap and the per-day forecast is exact.
* **Paying: beta-binomial.** Among a user's active days after day 0, each pays with probability
  ``π ~ Beta(a_gs, b_gs)`` where ``s`` is whether the user paid on day 0: in game data most
  users never pay, the few payers pay again, and a day-0 purchase is the strongest early sign
  of a payer. In purchase data every active day pays and ``π`` goes to 1.
* **Spend per paying day: lognormal–normal.** ``ln(amount) ~ N(μ_u, σ²)`` with
  ``μ_u ~ N(m_g, τ²)`` (whales: users differ in their typical basket). Conjugate, so users
  collapse to (paying days, mean and spread of their log amounts). Chosen over Gamma-Gamma
  (Fader, Hardie & Lee 2005) because in-app spending is close to lognormal and the lognormal
  needs no ``q > 1`` constraint for a finite mean.
* **Partial pooling.** Six latent values vary by group (logit mean and log concentration of
  ``p``, logit mean of ``θ``, the logit means of the two ``π`` Betas, ``m_g``), each
  ``Normal(population mean, population spread)`` across groups, so a small campaign borrows
  the others' shape. Five are shared by all groups (see :data:`SHARED`): the concentration of
  ``θ`` (how unequal churn is, which sets the long tail a first week cannot show: matured
  campaigns in the data teach it to young ones), the two ``π`` concentrations and ``σ``,
  ``τ`` (a campaign's handful of payers cannot tell them from its own mean).

Users are independent given their group's parameters; activity, paying and spend are independent
given a user's own history. Weekday and promotion effects are not modelled.

Data it needs
-------------
Per user: ``x`` active days after day 0, ``t_x`` the last active day (0 if none), ``n`` the
observed age, whether day 0 paid, ``y`` paying days after day 0 and the mean and within-user sum
of squares of their log amounts. Users collapse to unique rows with counts (:func:`collapse`),
so the likelihood costs ``O(unique rows + groups × age²)``, not ``O(users)``; ``fit_days``
right-censors long histories in the likelihood to bound that. It is NumPy/Numba with an
analytic gradient, inside one PyTensor Op (:class:`SamplingDensity`) with the group-level
priors; PyMC samples ``6·G + 17`` values.

Inference
---------
``nuts`` (default): PyMC's NUTS on the joint posterior, in a parameterisation set from the
empirical-Bayes mode (:func:`build_pymc_model`); ``map``: that mode and draws of each group's
Laplace approximation given the population (SciPy's L-BFGS on the same density: a joint
hierarchical mode is degenerate, see :func:`_find_mode`); ``advi``: PyMC's mean-field ADVI in
the NUTS parameterisation, started at the mode.

Forecast
--------
LTV per installed user of a group by day ``d`` = mean over its users of (observed revenue up to
``min(d, n)``) + (expected revenue on days ``n+1 … d`` given the user's own history). A user's
expected revenue on a future day is ``P(active on d | history) × E[π | history] ×
E[amount | history]``, each in closed form. The curve is computed for every posterior draw; the
point forecast is the mean over draws (MAP: the curve at the mode) and the interval the
``confidence`` quantiles over draws (MAP: draws of a per-group Laplace approximation). The
posterior interval is the uncertainty of the *expected* LTV under the model; the forecast's
interval adds the noise of the group's realised mean and an extrapolation allowance for a wrong
churn law (:data:`EXTRAPOLATION_SD`), as the curve model does (:mod:`ltvcore.ltv`).

A posterior is cached by the content hash of the sufficient statistics, the settings and the
library versions (:mod:`ltvcore.models.posterior_cache`): the same request never samples twice.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from scipy import sparse
from scipy.special import betaln, digamma, expit, gammaln

from ltvcore.data.cohorts import CohortData
from ltvcore.arpu import estimate_arpu
from ltvcore.ltv import CurveLTV, realised_variance, unobserved_share, widen, z_value
from ltvcore.models.posterior_cache import PosteriorCache, cache_key

__all__ = ["ASSUMPTIONS", "BTYDModel", "LATENTS", "METHODS", "PRIORS", "SAMPLING_CALLS",
           "SufficientStats", "collapse"]

METHODS = ("nuts", "map", "advi")

#: Log-scale spread of the projected revenue per unit of √ln(horizon / observed span), as in
#: :data:`ltvcore.models.curve.EXTRAPOLATION_SD`. On 540 backtests per kind (seeds 1–5 × 12
#: campaigns × 3 scenarios × horizons 90/180/365; ``python -m benchmarks.btyd_speed calibrate``)
#: the posterior interval plus realised-mean noise covered 65% (game) and 71% (purchase) of
#: realised LTVs; the smallest spread reaching 99% was 0.33 for game data and 0.23 for purchase
#: data. The game value is used; coverage is scored on fresh seeds (11–13).
EXTRAPOLATION_SD = 0.33

#: Number of times posterior inference actually ran in this process (cache hits do not count).
SAMPLING_CALLS = 0

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
#: data (currency-free).
PRIORS: dict[str, dict[str, float]] = {
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
}

_VARY = np.array([i for i, k in enumerate(LATENTS) if k not in SHARED])
_SHARE = np.array([i for i, k in enumerate(LATENTS) if k in SHARED])

ASSUMPTIONS = [
    "BG/BB: while alive a user is active each day with a constant probability p; death is "
    "permanent and strikes each day with a constant probability θ; p ~ Beta and θ ~ Beta across "
    "a group's users, independent of each other.",
    "Groups differ in mean churn but share how unequal users' churn rates are (θ's Beta "
    "concentration): the long tail of young groups follows the groups observed longer.",
    "A paying day is an active day that pays with a user-constant probability π ~ Beta across "
    "users; the Beta differs by whether the user paid on day 0.",
    "Amounts of a user's paying days after day 0 are lognormal around the user's own mean log "
    "amount, which is Normal across the group's users; spend is independent of activity given "
    "the user's history.",
    "Day-0 revenue is taken as observed; groups' parameters are drawn from a common population "
    "(partial pooling); payers' heterogeneity and the spread of amounts are the same in every "
    "group.",
    "No weekday, promotion or seasonal effects; the laws seen in the observed days hold to the "
    "horizon.",
    "Intervals combine the posterior credible interval of the expected LTV, the noise of the "
    "group's realised mean on user-days not yet observed, and an extrapolation error of the "
    "projected revenue growing with ln(horizon / observed days) at the rate calibrated on "
    "backtests (extrapolation_sd).",
]

#: Group-level parameters derived from the latents: (draws, G), or (draws, G, 2) for pay
#: (index 0: no purchase on day 0, 1: a purchase on day 0).
GROUP_PARAMS = ("p_alpha", "p_beta", "theta_gamma", "theta_delta", "pay_a", "pay_b",
                "spend_m", "spend_sigma", "spend_tau")


# ----------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class SufficientStats:
    """Users collapsed to what the likelihood and the forecast need (all numpy arrays).

    ``act_*``: unique (group, x, t_x, n) with counts. ``pay_*``: unique (group, day-0 status,
    trials x, paying days y). ``spend_*``: per (group, y ≥ 1) the count, sum and sum of squares
    of users' mean log amounts; ``spend_dof``/``spend_within`` per group Σ(y − 1) and the
    within-user sum of squares. ``pred_*``: unique users for the forecast (payers keep their own
    mean log amount). ``users``: eligible users per group.
    """

    n_groups: int
    max_age: int
    users: np.ndarray
    act_group: np.ndarray
    act_x: np.ndarray
    act_tx: np.ndarray
    act_n: np.ndarray
    act_count: np.ndarray
    pay_group: np.ndarray
    pay_status: np.ndarray
    pay_x: np.ndarray
    pay_y: np.ndarray
    pay_count: np.ndarray
    spend_group: np.ndarray
    spend_y: np.ndarray
    spend_count: np.ndarray
    spend_sum: np.ndarray
    spend_sumsq: np.ndarray
    spend_dof: np.ndarray
    spend_within: np.ndarray
    spend_center: float
    pred_group: np.ndarray
    pred_x: np.ndarray
    pred_tx: np.ndarray
    pred_n: np.ndarray
    pred_status: np.ndarray
    pred_y: np.ndarray
    pred_lbar: np.ndarray
    pred_count: np.ndarray

    def likelihood_arrays(self) -> dict[str, np.ndarray]:
        """Everything the posterior depends on (the cache key's data part)."""
        out = {"n_groups": np.array(self.n_groups), "max_age": np.array(self.max_age),
               "spend_center": np.array(self.spend_center)}
        for f in fields(self):
            if f.name.startswith(("act_", "pay_", "spend_")) and f.name != "spend_center":
                out[f.name] = np.asarray(getattr(self, f.name))
        return out


def _unique_rows(columns: list[np.ndarray], weights: np.ndarray | None = None):
    """Unique rows of integer/float columns (lexicographic order) and their summed weights."""
    table = np.column_stack(columns)
    uniq, inverse = np.unique(table, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    w = np.ones(len(table)) if weights is None else weights
    return uniq, np.bincount(inverse, weights=w, minlength=len(uniq))


def _per_user(data: CohortData, last_day: int | None) -> dict[str, np.ndarray]:
    """Each user's statistics over their days ``0 … min(age, last_day)``."""
    n_users = len(data.user_group)
    age = data.user_age.astype(np.int64)
    u_idx = data.user_index.astype(np.int64)
    u_day = data.user_day.astype(np.int64)
    u_rev = np.asarray(data.user_revenue, dtype=float)
    if last_day is not None:
        age = np.minimum(age, last_day)
        seen = u_day <= last_day
        u_idx, u_day, u_rev = u_idx[seen], u_day[seen], u_rev[seen]
    later = u_day >= 1
    x = np.bincount(u_idx[later], minlength=n_users)
    t_x = np.zeros(n_users, dtype=np.int64)
    np.maximum.at(t_x, u_idx[later], u_day[later])
    status = np.zeros(n_users, dtype=np.int64)
    status[u_idx[(u_day == 0) & (u_rev > 0)]] = 1
    paid = later & (u_rev > 0)
    y = np.bincount(u_idx[paid], minlength=n_users)
    log_amount = np.log(u_rev[paid])
    s1 = np.bincount(u_idx[paid], weights=log_amount, minlength=n_users)
    s2 = np.bincount(u_idx[paid], weights=log_amount**2, minlength=n_users)
    lbar = np.divide(s1, y, out=np.zeros(n_users), where=y > 0)
    return {"x": x, "t_x": t_x, "n": age, "status": status, "y": y, "lbar": lbar,
            "within": np.maximum(s2 - y * lbar**2, 0.0), "log_amount": log_amount}


def collapse(data: CohortData, fit_days: int | None = None) -> SufficientStats:
    """Per-user sufficient statistics, aggregated to unique rows with counts (vectorised).

    With ``fit_days``, the likelihood's statistics see each user's days ``0 … fit_days−1``
    only (a right-censoring of long histories that bounds the fit's cost); the forecast rows
    always carry the whole history.
    """
    n_groups = data.n_groups
    group = data.user_group.astype(np.int64)
    n_users = group.size
    full = _per_user(data, None)
    fit = full if fit_days is None else _per_user(data, int(fit_days) - 1)
    users = np.bincount(group, minlength=n_groups)
    x, t_x, status, y, lbar = fit["x"], fit["t_x"], fit["status"], fit["y"], fit["lbar"]
    max_age = int(fit["n"].max()) if n_users else 0

    act, act_count = _unique_rows([group, x, t_x, fit["n"]])
    pay, pay_count = _unique_rows([group, status, x, y])
    payer = y > 0
    spend, spend_count = _unique_rows([group[payer], y[payer]])
    _, spend_sum = _unique_rows([group[payer], y[payer]], lbar[payer])
    _, spend_sumsq = _unique_rows([group[payer], y[payer]], lbar[payer] ** 2)
    spend_dof = np.bincount(group[payer], weights=(y - 1)[payer], minlength=n_groups)
    spend_within = np.bincount(group[payer], weights=fit["within"][payer], minlength=n_groups)
    spend_center = float(fit["log_amount"].mean()) if fit["log_amount"].size else 0.0

    pred, pred_count = _unique_rows([group, full["x"], full["t_x"], full["n"], full["status"],
                                     full["y"], full["lbar"]])
    # A group without eligible users is forecast as one new user of its group (pooled day-0
    # paying share): it still gets its own posterior draws from the population.
    empty = np.flatnonzero(users == 0)
    if empty.size:
        share = float(full["status"].mean()) if n_users else 0.0
        extra = np.array([[g, 0, 0, 0, s, 0, 0.0] for g in empty for s in (0, 1)], dtype=float)
        extra_count = np.array([1.0 - share, share] * empty.size)
        pred = np.vstack([pred, extra])
        pred_count = np.concatenate([pred_count, extra_count])
        keep = pred_count > 0
        pred, pred_count = pred[keep], pred_count[keep]
        order = np.argsort(pred[:, 0], kind="stable")
        pred, pred_count = pred[order], pred_count[order]

    as_int = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    return SufficientStats(
        n_groups=n_groups, max_age=max_age, users=users,
        act_group=as_int(act[:, 0]), act_x=as_int(act[:, 1]), act_tx=as_int(act[:, 2]),
        act_n=as_int(act[:, 3]), act_count=act_count,
        pay_group=as_int(pay[:, 0]), pay_status=as_int(pay[:, 1]), pay_x=as_int(pay[:, 2]),
        pay_y=as_int(pay[:, 3]), pay_count=pay_count,
        spend_group=as_int(spend[:, 0]), spend_y=as_int(spend[:, 1]), spend_count=spend_count,
        spend_sum=spend_sum, spend_sumsq=spend_sumsq, spend_dof=spend_dof,
        spend_within=spend_within, spend_center=spend_center,
        pred_group=as_int(pred[:, 0]), pred_x=as_int(pred[:, 1]), pred_tx=as_int(pred[:, 2]),
        pred_n=as_int(pred[:, 3]), pred_status=as_int(pred[:, 4]), pred_y=as_int(pred[:, 5]),
        pred_lbar=np.ascontiguousarray(pred[:, 6]), pred_count=pred_count,
    )


# ----------------------------------------------------------------------------- BG/BB likelihood


def bgbb_rows(alpha, beta, gamma, delta, row_g, row_x, row_tx, row_n, *, weight=None):
    """BG/BB log-likelihood and activity coefficient per user row (and weighted gradients).

    Group parameters have shape ``(S, G)`` (``S`` draws); rows must be sorted by (group, x),
    as :func:`collapse` sorts them. Returns a
    dict with ``log_lik`` and ``log_coef`` of shape ``(S, R)``, where ``P(active on a future day
    d | history) = exp(log_coef) · B(γ, δ+d)/B(γ, δ)`` (FHS 2010, eq. 5 and the conditional
    expectation). With ``weight`` (per row) it also returns ``grad``, ``(4, S, G)``: the
    gradient of ``Σ weight · log_lik`` with respect to (α, β, γ, δ).

    ``ln Γ`` and ``ψ`` come from SciPy once per group and draw, then by their recurrences
    (``ln Γ(z+1) = ln Γ(z) + ln z``, ``ψ(z+1) = ψ(z) + 1/z``). The sum over the possible death
    days ``j = t_x … n−1`` of ``term_j = B(α+x, β+j−x)/B(α,β) · B(γ+1, δ+j)/B(γ,δ)`` is a
    difference of suffix sums shared by all rows with the same (group, x): the terms by their
    ratio, rescaled against underflow; the terms decrease in ``j``, so the suffix beyond ``n``
    is at most ``age ×`` the difference and no precision is lost. Cost:
    ``O(S·Σ_(group, x) (max n − min t_x) + S·R)``, whatever the number of users.
    """
    alpha, beta, gamma, delta = (np.atleast_2d(np.asarray(v, dtype=float))
                                 for v in (alpha, beta, gamma, delta))
    row_g, row_x, row_tx, row_n = (np.ascontiguousarray(v, dtype=np.int64)
                                   for v in (row_g, row_x, row_tx, row_n))
    if row_g.size and np.any(np.diff(row_g * (int(row_x.max()) + 1) + row_x) < 0):
        raise ValueError("rows must be sorted by (group, x)")
    n_draws, n_groups = alpha.shape
    bounds = np.searchsorted(row_g, np.arange(n_groups + 1)).astype(np.int64)
    base = np.stack([alpha, beta, alpha + beta, delta, gamma + delta], axis=-1)  # (S, G, 5)
    n_rows = row_g.size
    log_lik = np.empty((n_draws, n_rows))
    log_coef = np.empty((n_draws, n_rows))
    want_grad = weight is not None
    weight = np.ascontiguousarray(weight if want_grad else np.zeros(0), dtype=float)
    grad = np.zeros((4, n_draws, n_groups) if want_grad else (4, 0, 0))
    n_size = int(max(row_n.max(initial=0), row_x.max(initial=0))) + 2
    with np.errstate(all="ignore"):
        _bgbb_kernel(base, gammaln(base), digamma(base), gamma, bounds, row_x, row_tx, row_n,
                     n_size, want_grad, weight, log_lik, log_coef, grad)
    out = {"log_lik": log_lik, "log_coef": log_coef}
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


def data_loglik(stats: SufficientStats, params: dict, *, grad: bool = False):
    """Total weighted log-likelihood of the data at one set of group parameters.

    ``params`` holds ``GROUP_PARAMS`` arrays of shape ``(G,)`` (``(G, 2)`` for pay). Returns
    the value, and with ``grad`` also a dict of gradients of the same shapes.
    """
    n_groups = stats.n_groups
    act = bgbb_rows(*(params[k][None] for k in ("p_alpha", "p_beta", "theta_gamma",
                                                "theta_delta")),
                    stats.act_group, stats.act_x, stats.act_tx, stats.act_n,
                    weight=stats.act_count if grad else None)
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


def group_params(latent: np.ndarray, spend_center: float = 0.0) -> dict[str, np.ndarray]:
    """Group parameters from latents ``(…, G, 11)`` (see :data:`LATENTS`)."""
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


def latent_loglik(stats: SufficientStats, latent: np.ndarray, *, grad: bool = False):
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


# ----------------------------------------------------------------------------- PyMC model


def _prior_vectors(priors: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hyperprior means and sds of all latents, and spreads of the varying ones."""
    mean = np.array([priors[k]["mean"] for k in LATENTS], dtype=float)
    sd = np.array([priors[k]["sd"] for k in LATENTS], dtype=float)
    spread = np.array([priors[LATENTS[i]]["spread"] for i in _VARY], dtype=float)
    return mean, sd, spread


def build_pymc_model(stats: SufficientStats, priors: dict | None = None, layout: dict | None = None):
    """The joint model over all groups, parameterised for sampling.

    Population: each varying latent ``k`` has mean ``μ_k ~ Normal(mean, sd)`` and spread
    ``τ_k ~ HalfNormal(spread)``; each shared latent ``~ Normal(mean, sd)``. Groups:
    ``u_gk ~ Normal(μ_k, τ_k)``. Data: :func:`latent_loglik`, one weighted term per unique row.
    All but the hyperpriors is one Op (:class:`SamplingDensity`).

    The parameterisation (``layout``, from :func:`_layout` at the empirical-Bayes mode; computed
    when not given) changes the geometry, not the posterior: latents the data pin down are
    centred and whitened by their Laplace covariance (``u_g = mode_g + L_g w_g``), the others
    non-centred and whitened (``u_g = μ + τ·(z_g + L_g w_g)``), and ``μ_k = μ̂_k + τ_k/√G · η_k``
    where most groups are centred (else a fixed scale), so that few groups make no funnel
    between a spread and its mean. NUTS then meets a near-isotropic posterior.
    """
    pm = _quiet_pymc()
    priors = PRIORS if priors is None else priors
    if layout is None:
        mode = _find_mode(stats, {"priors": priors, "map_maxiter": 5000})
        layout = _layout(mode, mode["hessian"])
    mean, sd, spread = _prior_vectors(priors)
    n_groups = stats.n_groups
    coords = {"group": np.arange(n_groups), "varying": [LATENTS[i] for i in _VARY],
              "shared": [LATENTS[i] for i in _SHARE]}
    with pm.Model(coords=coords) as model:
        shared = pm.Normal("shared_value", mean[_SHARE], sd[_SHARE], dims="shared",
                           initval=layout["population_mean"][_SHARE])
        tau = pm.HalfNormal("population_spread", spread, dims="varying",
                            initval=layout["population_spread"])
        eta = pm.Flat("mean_offset", dims="varying")
        w = pm.Flat("group_w", dims=("group", "varying"))
        pm.Potential("log_density", SamplingDensity(stats, layout, priors)(shared, tau, eta, w))
    return model


def sampling_latent(layout: dict, shared, tau, eta, w) -> tuple[np.ndarray, dict]:
    """Group latents ``(…, G, K)`` from the sampling parameterisation, and its pieces.

    Leading axes of ``shared`` ``(…, 5)``, ``tau`` and ``eta`` ``(…, 6)`` and ``w``
    ``(…, G, 6)`` are draws. See :func:`build_pymc_model` for the parameterisation.
    """
    shared, tau, eta, w = (np.asarray(a, dtype=float) for a in (shared, tau, eta, w))
    n_groups = w.shape[-2]
    scale = np.where(layout["tied_mean"], tau / np.sqrt(n_groups), layout["mean_scale"])
    mu = layout["population_mean"][_VARY] + scale * eta
    v = layout["offset"] + np.einsum("gkj,...gj->...gk", layout["chol"], w)
    varying = np.where(layout["centred"], v, mu[..., None, :] + tau[..., None, :] * v)
    latent = np.empty(w.shape[:-1] + (len(LATENTS),))
    latent[..., _VARY] = varying
    latent[..., _SHARE] = shared[..., None, :]
    return latent, {"mu": mu, "v": v}


def sampling_density(stats: SufficientStats, layout: dict, priors: dict, shared, tau, eta, w):
    """Log density (up to a constant) of the sampling parameterisation, and its gradient.

    Everything but the hyperpriors of ``shared`` and ``tau`` (PyMC's ``Normal`` and
    ``HalfNormal``): the data (:func:`latent_loglik`), the groups' ``Normal(μ, τ)`` in their
    centred or non-centred form, and ``μ ~ Normal(mean, sd)`` with its Jacobian. Returns
    ``(value, (d_shared, d_tau, d_eta, d_w))``.
    """
    mean, sd, _ = _prior_vectors(priors)
    mean, sd = mean[_VARY], sd[_VARY]
    latent, parts = sampling_latent(layout, shared, tau, eta, w)
    mu, v = parts["mu"], parts["v"]
    centred, tied = layout["centred"], layout["tied_mean"]
    n_groups = v.shape[0]
    value, g_latent = latent_loglik(stats, latent, grad=True)
    dev = (v - mu) / tau
    value += float(np.sum(np.where(centred, -np.log(tau) - 0.5 * dev**2, -0.5 * v**2)))
    value += float(np.sum(-0.5 * ((mu - mean) / sd) ** 2 + np.where(tied, np.log(tau), 0.0)))

    g_vary = g_latent[:, _VARY]
    d_v = np.where(centred, g_vary - dev / tau, g_vary * tau - v)
    d_w = np.einsum("gk,gkj->gj", d_v, layout["chol"])
    d_mu = (np.sum(np.where(centred, dev / tau, g_vary), axis=0) - (mu - mean) / sd**2)
    d_tau = (np.sum(np.where(centred, -1.0 / tau + dev**2 / tau, g_vary * v), axis=0)
             + np.where(tied, 1.0 / tau, 0.0)
             + d_mu * np.where(tied, eta / np.sqrt(n_groups), 0.0))
    d_eta = d_mu * np.where(tied, tau / np.sqrt(n_groups), layout["mean_scale"])
    d_shared = g_latent[:, _SHARE].sum(axis=0)
    return value, (d_shared, d_tau, d_eta, d_w)


class SamplingDensity(Op):
    """PyTensor Op: ``(shared, tau, eta, w)`` → :func:`sampling_density`.

    All but the hyperpriors is plain NumPy/Numba with an analytic gradient, so PyMC compiles
    a handful of small kernels (a PyTensor graph of the same density took over a minute to
    compile on a cold cache), and one pass gives value and gradient: the last point is
    memoised for :class:`SamplingDensityGrad`.
    """

    def __init__(self, stats: SufficientStats, layout: dict, priors: dict) -> None:
        self.stats = stats
        self.layout = layout
        self.priors = priors
        self.memo = None

    def evaluate(self, inputs):
        key = b"".join(np.ascontiguousarray(v).tobytes() for v in inputs)
        if self.memo is None or self.memo[0] != key:
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


# ----------------------------------------------------------------------------- inference


def _versions() -> dict:
    import pytensor
    import scipy

    pm = _quiet_pymc()
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return {"pymc": pm.__version__, "pytensor": pytensor.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "btyd_source": source}


@contextlib.contextmanager
def _quiet():
    """Silence PyTensor's BLAS notice (the model's graph has no matrix products)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*",
                                category=UserWarning)
        yield


def _quiet_pymc():
    """Import PyMC without ArviZ's refactor banner; returns the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import pymc

    return pymc


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

    x0 = np.concatenate([start[:, _VARY].ravel(), start[0, _SHARE]])
    with np.errstate(all="ignore"):
        result = minimize(objective, x0, jac=True, method="L-BFGS-B",
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


def _population(latent: np.ndarray, hessian: np.ndarray, prior_u: tuple, priors: dict
                ) -> tuple[np.ndarray, np.ndarray]:
    """Population mean and spread per latent: a random-effects fit of the groups' likelihoods.

    Each group's likelihood of latent ``k`` is approximated by a Gaussian (its Laplace
    approximation with the first-stage prior ``N(m0, s0²)`` divided out); groups where it is at
    least as informative as that prior enter ``ℓ_g ~ N(mean, spread² + 1/H_g)``, maximised with
    the hyperpriors (spread on the log scale, which keeps it off zero). A latent informed by
    fewer than two groups keeps the hyperprior's mean and spread.
    """
    from scipy.optimize import minimize

    m0, s0 = prior_u
    mean, sd, spread = _prior_vectors(priors)
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


def _find_mode(stats: SufficientStats, settings: dict) -> dict:
    """Empirical-Bayes mode: the population from the groups' likelihoods, then each group's mode.

    The joint mode of a hierarchical model is degenerate (the centred density grows without
    bound as a spread shrinks to zero; the non-centred one inflates spreads ~√G-fold), so the
    mode that MAP reports and that NUTS/ADVI start from is found in three steps: each group's
    mode under the hyperprior alone, a random-effects fit of the population
    (:func:`_population`), and each group's mode given that population.
    """
    mean, sd, spread = _prior_vectors(settings["priors"])
    scale = sd.copy()
    scale[_VARY] = np.sqrt(sd[_VARY] ** 2 + spread**2)
    start = np.tile(mean, (stats.n_groups, 1))
    maxiter = settings["map_maxiter"]
    first, ok_first = _group_mode(stats, mean, scale, start, maxiter)
    block = np.ix_(np.arange(stats.n_groups), _VARY, _VARY)
    mu_vary, tau = _population(first[:, _VARY], _data_hessian(stats, first)[block],
                               (mean[_VARY], scale[_VARY]), settings["priors"])
    mu, scale = mean.copy(), sd.copy()
    mu[_VARY], scale[_VARY] = mu_vary, tau
    latent, ok = _group_mode(stats, mu, scale, first, maxiter)
    mu[_SHARE] = latent[0, _SHARE]
    hessian = _data_hessian(stats, latent)
    shared = np.diagonal(hessian, axis1=1, axis2=2).sum(axis=0)   # shared latents' information
    return {"population_mean": mu, "population_spread": tau, "latent": latent,
            "hessian": hessian[block], "shared_information": shared,
            "converged": ok_first and ok}


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


def _laplace(mode: dict, hessian: np.ndarray) -> tuple[np.ndarray, int]:
    """Covariance of each group's latents at the mode given the population: ``(G, K, K)``."""
    precision = hessian + np.eye(hessian.shape[1]) / mode["population_spread"] ** 2
    eig, vec = np.linalg.eigh(precision)
    floor = 1e-8 * np.maximum(eig.max(axis=1, keepdims=True), 1.0)
    clipped = int((eig < floor).sum())
    eig = np.maximum(eig, floor)
    return np.einsum("gij,gj,gkj->gik", vec, 1.0 / eig, vec), clipped


def _layout(mode: dict, hessian: np.ndarray) -> dict:
    """How to parameterise each group's varying latents for sampling.

    A latent is centred where the data's precision about it exceeds the population's
    (``u = v``), else non-centred (``u = mean + spread · v``, ``v ~ N(0, 1)``); each group's
    centred and non-centred blocks are then whitened by their Laplace approximation at the
    mode, ``v = offset + L·w``, so that ``w`` is close to independent ``N(0, 1)`` and NUTS
    meets neither a funnel nor a ridge. The reparameterisation is linear with a constant
    Jacobian: the posterior is unchanged.
    """
    tau = mode["population_spread"]
    mu = mode["population_mean"][_VARY]
    latent = mode["latent"][:, _VARY]
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
    return {"centred": centred, "chol": chol, "offset": offset,
            "tied_mean": centred.mean(axis=0) >= 0.5,
            "mean_scale": np.sqrt(tau**2 / n_groups + 1e-4),
            "population_mean": mode["population_mean"],
            "population_spread": tau}


def _stack(posterior, name: str) -> np.ndarray:
    """(chain, draw, …) → (chain·draw, …)."""
    values = posterior[name].values
    return values.reshape((-1,) + values.shape[2:]).astype(float)


def _summary(layout: dict, shared, tau, eta, w) -> dict[str, np.ndarray]:
    """The stored posterior from draws of the sampling parameterisation (leading axis: draws)."""
    latent, parts = sampling_latent(layout, shared, tau, eta, w)
    mu = np.empty((tau.shape[0], len(LATENTS)))
    mu[:, _VARY], mu[:, _SHARE] = parts["mu"], shared
    return {"latent": latent, "population_mean": mu, "population_spread": tau,
            "centred_share": np.array(float(layout["centred"].mean()))}


def _population_variances(mode: dict, priors: dict) -> dict[str, np.ndarray]:
    """Rough posterior variances of the population parameters (unconstrained) at the mode."""
    n_groups = mode["latent"].shape[0]
    _, sd, _ = _prior_vectors(priors)
    tau = mode["population_spread"]
    shared_var = 1.0 / (mode["shared_information"] + 1.0 / sd**2)
    return {"shared_value": shared_var[_SHARE], "mean_offset": np.ones(tau.size),
            "population_spread_log__": np.full(tau.size, max(0.5 / n_groups, 0.005))}


def _initial_potential(model, mode: dict, priors: dict):
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


def _run_nuts(stats: SufficientStats, settings: dict) -> dict[str, np.ndarray]:
    pm = _quiet_pymc()
    import arviz as az

    mode = _find_mode(stats, settings)
    layout = _layout(mode, mode["hessian"])
    model = build_pymc_model(stats, settings["priors"], layout)
    chains = settings["chains"]
    # Start every chain near the mode (the offsets w ~ N(0, 1) jittered by a third) with the
    # mass matrix set to the Laplace scales, so warm-up need not discover scales of 0.01.
    rng = np.random.default_rng(settings["seed"])
    n_groups, n_vary = layout["centred"].shape
    initvals = [{"group_w": 0.3 * rng.standard_normal((n_groups, n_vary)),
                 "mean_offset": 0.3 * rng.standard_normal(n_vary)} for _ in range(chains)]
    with model, _quiet(), np.errstate(all="ignore"):
        potential = _initial_potential(model, mode, settings["priors"])
        step = pm.NUTS(potential=potential, target_accept=settings["target_accept"])
        idata = pm.sample(draws=settings["draws"], tune=settings["tune"], chains=chains,
                          cores=min(chains, 2), random_seed=settings["seed"], progressbar=False,
                          compute_convergence_checks=False, step=step, initvals=initvals)
    post = idata.posterior
    out = _summary(layout, *(_stack(post, name) for name in
                             ("shared_value", "population_spread", "mean_offset", "group_w")))
    stats_ = idata.sample_stats
    out["diverging"] = np.array(int(stats_["diverging"].values.sum()))
    out["mean_tree_depth"] = np.array(float(stats_["tree_depth"].values.mean()))
    if chains > 1:
        rhat = az.rhat(idata.posterior[["shared_value", "mean_offset", "population_spread",
                                        "group_w"]])
        out["rhat_max"] = np.array(float(max(float(rhat[v].max()) for v in rhat.data_vars)))
    return out


def _run_advi(stats: SufficientStats, settings: dict) -> dict[str, np.ndarray]:
    pm = _quiet_pymc()
    mode = _find_mode(stats, settings)
    layout = _layout(mode, mode["hessian"])
    model = build_pymc_model(stats, settings["priors"], layout)
    # Start at the mode with the population's scales (a unit default would take tens of
    # thousands of steps to shrink).
    sigma = {k: np.sqrt(v) for k, v in _population_variances(mode, settings["priors"]).items()}
    sigma["group_w"] = np.full(layout["centred"].size, 0.5)
    with model, _quiet(), np.errstate(all="ignore"):
        approx = pm.fit(n=settings["advi_steps"], method="advi", random_seed=settings["seed"],
                        progressbar=False, start_sigma=sigma)
        mean, std = approx.mean.eval(), approx.std.eval()
    # Draws of the mean-field Gaussian, unravelled by the approximation's own ordering (NumPy:
    # PyMC's `approx.sample` would compile another graph for the same thing).
    rng = np.random.default_rng(settings["seed"])
    flat = mean + std * rng.standard_normal((settings["draws"], mean.size))
    values = {name: flat[:, cut].reshape((-1,) + tuple(shape))
              for name, cut, shape, _ in approx.groups[0].ordering.values()}
    out = _summary(layout, values["shared_value"], np.exp(values["population_spread_log__"]),
                   values["mean_offset"], values["group_w"])
    out["elbo_final"] = np.array(float(-np.mean(approx.hist[-100:])))
    return out


def _run_map(stats: SufficientStats, settings: dict) -> dict[str, np.ndarray]:
    """The empirical-Bayes mode, then draws of each group's Laplace approximation given it.

    The population (and the shared latents) stay at their estimate: the draws carry the
    groups' uncertainty, not the population's (NUTS carries both).
    """
    mode = _find_mode(stats, settings)
    cov, clipped = _laplace(mode, mode["hessian"])
    rng = np.random.default_rng(settings["seed"])
    noise = rng.standard_normal((settings["draws"], stats.n_groups, _VARY.size))
    chol = np.linalg.cholesky(cov)
    latent = np.repeat(mode["latent"][None], settings["draws"], axis=0)
    latent[:, :, _VARY] += np.einsum("gkj,sgj->sgk", chol, noise)
    return {"latent": latent, "mode_latent": mode["latent"][None],
            "population_mean": mode["population_mean"][None],
            "population_spread": mode["population_spread"][None],
            "map_converged": np.array(mode["converged"]),
            "laplace_clipped_eigenvalues": np.array(clipped)}


# ----------------------------------------------------------------------------- estimator


class BTYDModel:
    """Hierarchical BG/BB + beta-binomial + lognormal forecast for all groups at once.

    Parameters
    ----------
    method
        ``"nuts"`` (default: PyMC's NUTS), ``"map"`` (mode + per-group Laplace draws, fastest)
        or ``"advi"`` (mean-field variational inference).
    draws, tune, chains
        NUTS draws and tuning steps per chain, and chains; ``draws`` is also the number of
        Laplace or ADVI draws.
    seed
        Seed of every stochastic step: the same data and settings give identical output.
    confidence
        Interval level, e.g. 0.99.
    cache_dir
        Posterior cache directory; ``None``: ``$LTV_CACHE_DIR`` or
        ``~/.cache/ltv-forecast/posteriors``; ``False``: no caching.
    fit_days
        Users' histories enter the likelihood up to this age (right-censored; ``None``: all).
        The fit's cost grows with its square; forecasts condition on whole histories.
    extrapolation_sd
        Log-scale extrapolation error of the projected revenue (see :data:`EXTRAPOLATION_SD`).
    advi_steps, target_accept, map_maxiter, max_predictive_draws, priors
        Further settings (plain config, recorded in :meth:`params` and in the cache key).
    """

    name = "btyd"

    def __init__(self, method: str = "nuts", draws: int = 500, tune: int = 500, chains: int = 2,
                 seed: int = 0, confidence: float = 0.99, cache_dir=None, *,
                 fit_days: int | None = 120, advi_steps: int = 10000, target_accept: float = 0.9,
                 map_maxiter: int = 5000, max_predictive_draws: int = 400,
                 priors: dict | None = None,
                 extrapolation_sd: float = EXTRAPOLATION_SD) -> None:
        self.method = method
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.seed = seed
        self.confidence = confidence
        self.cache_dir = cache_dir
        self.fit_days = fit_days
        self.advi_steps = advi_steps
        self.target_accept = target_accept
        self.map_maxiter = map_maxiter
        self.max_predictive_draws = max_predictive_draws
        self.priors = priors
        self.extrapolation_sd = extrapolation_sd

    def _settings(self) -> dict:
        settings = {"method": self.method, "draws": int(self.draws), "seed": int(self.seed),
                    "map_maxiter": int(self.map_maxiter),
                    "fit_days": None if self.fit_days is None else int(self.fit_days),
                    "priors": copy.deepcopy(self.priors or PRIORS)}
        if self.method == "nuts":
            settings.update(tune=int(self.tune), chains=int(self.chains),
                            target_accept=float(self.target_accept))
        elif self.method == "advi":
            settings["advi_steps"] = int(self.advi_steps)
        return settings

    def fit(self, data: CohortData) -> BTYDModel:
        """Collapse users, then load the posterior from the cache or infer it and store it."""
        global SAMPLING_CALLS
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0.5 <= float(self.confidence) < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence!r}")
        if len(data.user_group) == 0:
            raise ValueError("btyd needs at least one user with an observed install day")
        stats = collapse(data, self.fit_days)
        settings = self._settings()
        versions = _versions()
        key = cache_key(stats.likelihood_arrays(), settings, versions)
        cache = None if self.cache_dir is False else PosteriorCache(self.cache_dir)
        hit = cache.load(key) if cache is not None else None
        if hit is not None:
            posterior = hit[0]
        else:
            run = {"nuts": _run_nuts, "advi": _run_advi, "map": _run_map}[self.method]
            posterior = run(stats, settings)
            SAMPLING_CALLS += 1
            if cache is not None:
                cache.store(key, posterior, {"settings": settings, "versions": versions})
        self.data_ = data
        self.stats_ = stats
        self.settings_ = settings
        self.cache_key_ = key
        self.from_cache_ = hit is not None
        self.posterior_ = posterior
        return self

    def _draws(self) -> dict[str, np.ndarray]:
        latent = self.posterior_["latent"]
        total = latent.shape[0]
        if total > self.max_predictive_draws:
            keep = np.linspace(0, total - 1, self.max_predictive_draws).round().astype(int)
            latent = latent[np.unique(keep)]
        return group_params(latent, self.stats_.spend_center)

    def predict(self, n_days: int) -> CurveLTV:
        """Cumulative LTV per user and its interval for days ``0 … n_days-1``.

        The interval starts from the posterior's (the uncertainty of the expected LTV) and adds,
        as the curve model does, the noise of the group's realised mean on user-days not yet
        observed and the extrapolation error of the projected revenue
        (``extrapolation_sd``): a credible interval alone covered the realised LTV_180 of
        only 22–50% of game campaigns (``benchmarks/btyd_speed.py``).
        """
        data = self.data_
        curves = _expected_curves(self.stats_, data.revenue, self._draws(), n_days)
        if "mode_latent" in self.posterior_:
            mode = group_params(self.posterior_["mode_latent"], self.stats_.spend_center)
            point = _expected_curves(self.stats_, data.revenue, mode, n_days)[0]
        else:
            point = curves.mean(axis=0)
        tail = (1.0 - self.confidence) / 2.0
        lower, upper = np.quantile(curves, [tail, 1.0 - tail], axis=0)
        ltv = np.maximum.accumulate(point, axis=1)
        z = z_value(self.confidence)
        users = data.groups["users"].to_numpy()
        noise = z**2 * realised_variance(
            ltv, data.last_day, estimate_arpu(data).user_sd, users,
            unobserved_share(data.at_risk, users, data.groups["fit_users"].to_numpy(), n_days))
        below = np.sqrt(np.maximum(ltv - lower, 0.0) ** 2 + noise)
        above = np.sqrt(np.maximum(upper - ltv, 0.0) ** 2 + noise)
        return widen(ltv, below, above, data.last_day, z, self.extrapolation_sd)

    def params(self, g: int) -> dict:
        """Group ``g``'s parameters (posterior means; MAP: the mode), method and settings."""
        post = self.posterior_
        latent = post["mode_latent"] if "mode_latent" in post else post["latent"]
        values = group_params(latent[:, g], self.stats_.spend_center)
        mean = {k: v.mean(axis=0) for k, v in values.items()}
        p_mean = values["p_alpha"] / (values["p_alpha"] + values["p_beta"])
        theta_mean = values["theta_gamma"] / (values["theta_gamma"] + values["theta_delta"])
        out = {
            "p_alpha": float(mean["p_alpha"]), "p_beta": float(mean["p_beta"]),
            "theta_gamma": float(mean["theta_gamma"]), "theta_delta": float(mean["theta_delta"]),
            "p_mean": float(p_mean.mean()), "theta_mean": float(theta_mean.mean()),
            "pay_a": float(mean["pay_a"][0]), "pay_b": float(mean["pay_b"][0]),
            "pay_a_day0_payer": float(mean["pay_a"][1]),
            "pay_b_day0_payer": float(mean["pay_b"][1]),
            "spend_log_mean": float(mean["spend_m"]), "spend_log_sd": float(mean["spend_sigma"]),
            "spend_user_log_sd": float(mean["spend_tau"]),
            "users": int(self.stats_.users[g]),
            "posterior_draws": int(post["latent"].shape[0]),
            "posterior_key": self.cache_key_,
        }
        for diag in ("diverging", "rhat_max", "mean_tree_depth", "centred_share", "elbo_final",
                     "map_converged", "laplace_clipped_eigenvalues"):
            if diag in post:
                out[diag] = post[diag].item()
        out.update({k: v for k, v in self.settings_.items() if k != "priors"})
        out["max_predictive_draws"] = int(self.max_predictive_draws)
        out["extrapolation_sd"] = float(self.extrapolation_sd)
        out["priors"] = copy.deepcopy(self.settings_["priors"])
        return {"btyd": out}

    @property
    def assumptions(self) -> list[str]:
        return list(ASSUMPTIONS)


# ----------------------------------------------------------------------------- forecast math


def _expected_curves(stats: SufficientStats, revenue: np.ndarray, draws: dict, n_days: int,
                     budget: int = 4_000_000) -> np.ndarray:
    """``(S, G, n_days)`` expected cumulative revenue per user for each draw."""
    n_draws = draws["p_alpha"].shape[0]
    n_groups = stats.n_groups
    users = np.maximum(np.bincount(stats.pred_group, weights=stats.pred_count,
                                   minlength=n_groups), 1e-300)
    width = revenue.shape[1]
    observed = np.zeros((n_groups, n_days))
    span = min(width, n_days)
    observed[:, :span] = np.cumsum(revenue, axis=1)[:, :span]
    if n_days > width:
        observed[:, width:] = observed[:, width - 1:width]
    empty = stats.users == 0
    if empty.any():  # a new user of the population: pooled day-0 revenue per user
        observed[empty] = revenue[:, 0].sum() / max(int(stats.users.sum()), 1)

    n_size = int(stats.pred_n.max(initial=0)) + 1
    out = np.empty((n_draws, n_groups, n_days))
    bounds = np.searchsorted(stats.pred_group, np.arange(n_groups + 1))
    per_group = max(1, budget // (n_draws * (n_days + n_size)))
    for lo in range(0, n_groups, per_group):
        hi = min(n_groups, lo + per_group)
        rows = np.arange(bounds[lo], bounds[hi])
        rows = rows[stats.pred_n[rows] < n_days - 1]     # older users have no future to forecast
        g = stats.pred_group[rows] - lo
        x, tx, n = stats.pred_x[rows], stats.pred_tx[rows], stats.pred_n[rows]
        sub = {k: v[:, lo:hi] for k, v in draws.items()}
        future = np.zeros((n_draws, hi - lo, n_days))
        if g.size:
            log_coef = bgbb_rows(sub["p_alpha"], sub["p_beta"], sub["theta_gamma"],
                                 sub["theta_delta"], g, x, tx, n)["log_coef"]
            status, y, lbar = stats.pred_status[rows], stats.pred_y[rows], stats.pred_lbar[rows]
            a = sub["pay_a"][:, g, status]
            b = sub["pay_b"][:, g, status]
            pay = (a + y) / (a + b + x)
            var = sub["spend_sigma"][:, g] ** 2
            prior_var = sub["spend_tau"][:, g] ** 2
            post_var = 1.0 / (1.0 / prior_var + y / var)
            post_mean = post_var * (sub["spend_m"][:, g] / prior_var + y * lbar / var)
            amount = np.exp(post_mean + 0.5 * (post_var + var))
            weight = stats.pred_count[rows] * np.exp(log_coef) * pay * amount      # (S, R)
            onehot = sparse.csr_matrix((np.ones(g.size), (np.arange(g.size), g * n_size + n)),
                                       shape=(g.size, (hi - lo) * n_size))
            by_age = np.asarray(onehot.T.dot(weight.T).T).reshape(n_draws, hi - lo, n_size)
            # Users of age n earn from day n+1 on: Σ_{n < d} weight, flat beyond the oldest age.
            cum = np.cumsum(by_age, axis=2)
            earning = np.zeros((n_draws, hi - lo, n_days))
            earning[:, :, 1:] = cum[:, :, np.minimum(np.arange(n_days - 1), n_size - 1)]
            # S(d) = B(γ, δ+d)/B(γ, δ) by its recursion S(d) = S(d−1)(δ+d−1)/(γ+δ+d−1).
            gam = sub["theta_gamma"][..., None]
            dlt = sub["theta_delta"][..., None]
            steps = np.arange(n_days - 1)
            log_s = np.zeros((n_draws, hi - lo, n_days))
            log_s[..., 1:] = np.cumsum(np.log((dlt + steps) / (gam + dlt + steps)), axis=2)
            future = np.cumsum(earning * np.exp(log_s), axis=2)
        out[:, lo:hi] = (observed[lo:hi] + future) / users[lo:hi, None]
    return out


# Not in __all__: the closed-form BG/BB pieces the tests check against a brute-force sum.
def bgbb_loglik_reference(alpha, beta, gamma, delta, x, t_x, n) -> float:
    """FHS (2010) eq. 5 summed term by term (slow; for tests)."""
    first = (betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
             + betaln(gamma, delta + n) - betaln(gamma, delta))
    total = np.exp(first)
    for i in range(n - t_x):
        total += np.exp(betaln(alpha + x, beta + t_x - x + i) - betaln(alpha, beta)
                        + betaln(gamma + 1, delta + t_x + i) - betaln(gamma, delta))
    return float(np.log(total))
