"""``--model btyd``: a hierarchical buy-till-you-die model of every user, fitted in PyMC.

The model
---------
Each user installs on day 0 and then, on each day ``1 … n`` they have observed, is either dead
or alive; an alive user is active with probability ``p``. Death is permanent and strikes at the
start of each day with probability ``θ``. A paying day is an active day with revenue; revenue on
day 0 (starter packs) is observed as it is, never modelled.

* **Activity and dropout: BG/BB** (beta-geometric/beta-Bernoulli; Fader, Hardie & Shang 2010,
  "Customer-Base Analysis in a Discrete-Time Noncontractual Setting", Marketing Science 29(6)),
  ``p ~ Beta(α_g, β_g)`` and ``θ ~ Beta(γ_g, δ_g)`` across the users of group ``g``. It is the
  discrete-time member of the BG/NBD family, chosen over BG/NBD and Pareto/NBD because the data
  *are* discrete: an active day happens at most once a day (a Poisson count allows two a day and
  gets daily-login users wrong), and death is a daily hazard, not a coin tossed after each
  transaction (BG/NBD), so a user who never returns after install can be dead (BG/NBD makes
  them immortal). ``θ``'s part is exactly the sBG of the curve model. Its likelihood and its
  conditional expectations are Beta functions only (Pareto/NBD needs the Gauss
  hypergeometric ``2F1``), so NUTS gradients are cheap and the per-day forecast is exact.
* **Paying: beta-binomial.** Among a user's active days after day 0, each pays with probability
  ``π ~ Beta(a_gs, b_gs)`` where ``s`` is whether the user paid on day 0: in game data most
  users never pay, the few payers pay again, and a day-0 purchase is the strongest early sign
  of a payer. In purchase data every active day pays and ``π`` goes to 1.
* **Spend per paying day: lognormal–normal.** ``ln(amount) ~ N(μ_u, σ_g²)`` with
  ``μ_u ~ N(m_g, τ_g²)`` (whales: users differ in their typical basket). Conjugate, so users
  collapse to (paying days, mean and spread of their log amounts). Chosen over Gamma-Gamma
  (Fader, Hardie & Lee 2005) because heavy-tailed in-app spending is close to lognormal and the
  lognormal needs no ``q > 1`` constraint for a finite mean.
* **Partial pooling.** Every group parameter is drawn from a population: the logit of each Beta
  mean and the log of its concentration ``α+β`` are ``Normal(μ, σ)`` across groups (non-centred),
  and so are ``m_g``, ``ln σ_g`` and ``ln τ_g``. A small campaign borrows the others' shape.

Users are independent given their group's parameters; activity, paying and spend are independent
given a user's own history. Weekday and promotion effects are not modelled.

Data it needs
-------------
Per user: ``x`` active days after day 0, ``t_x`` the last active day (0 if none), ``n`` the
observed age, whether day 0 paid, ``y`` paying days after day 0 and the mean and within-user sum
of squares of their log amounts. Users collapse to unique rows with counts (:func:`collapse`),
so the likelihood costs ``O(unique rows + groups × age²)``, not ``O(users)``.

Forecast
--------
LTV per installed user of a group by day ``d`` = mean over its users of (observed revenue up to
``min(d, n)``) + (expected revenue on days ``n+1 … d`` given the user's own history). A user's
expected revenue on a future day is ``P(active on d | history) × E[π | history] ×
E[amount | history]``, each in closed form. The curve is computed for every posterior draw; the
point forecast is the mean over draws (MAP: the curve at the mode) and the interval the
``confidence`` quantiles over draws (MAP: over draws of a Laplace approximation). The interval is
the uncertainty of the *expected* LTV under the model; it adds no noise of the realised mean and
no allowance for the model being wrong (see ``benchmarks/btyd_speed.py`` for measured coverage).

A posterior is cached by the content hash of the sufficient statistics, the settings and the
library versions (:mod:`ltvcore.models.posterior_cache`): the same request never samples twice.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from scipy import sparse
from scipy.special import betaln, digamma, gammaln

from ltvcore.data.cohorts import CohortData
from ltvcore.ltv import CurveLTV
from ltvcore.models.posterior_cache import PosteriorCache, cache_key

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["ASSUMPTIONS", "BTYDModel", "METHODS", "PRIORS", "SAMPLING_CALLS", "SufficientStats",
           "collapse"]

METHODS = ("nuts", "map", "advi")

#: Number of times posterior inference actually ran in this process (cache hits do not count).
SAMPLING_CALLS = 0

#: Hyperpriors. Each Beta block: logit of the group mean ~ Normal(mean, sd) + spread·z_g and log
#: concentration ~ Normal(mean, sd) + spread·z_g, spreads HalfNormal(scale). Spend: the group's
#: mean log amount is centred on the pooled mean log amount of the data (currency-free).
PRIORS: dict[str, dict[str, float]] = {
    "activity": {"logit_mean": 0.0, "logit_sd": 1.5, "logit_spread": 1.0,
                 "log_conc_mean": 1.0, "log_conc_sd": 1.5, "log_conc_spread": 1.0},
    "dropout": {"logit_mean": -2.0, "logit_sd": 1.5, "logit_spread": 1.0,
                "log_conc_mean": 0.0, "log_conc_sd": 1.5, "log_conc_spread": 1.0},
    "pay": {"logit_mean": -3.0, "logit_sd": 2.0, "logit_spread": 1.0,
            "log_conc_mean": 0.0, "log_conc_sd": 1.5, "log_conc_spread": 1.0},
    "spend": {"mean_sd": 2.0, "mean_spread": 0.5, "log_sigma_mean": -0.5, "log_sigma_sd": 1.0,
              "log_sigma_spread": 0.5, "log_tau_mean": -0.5, "log_tau_sd": 1.0,
              "log_tau_spread": 0.5},
}

ASSUMPTIONS = [
    "BG/BB: while alive a user is active each day with a constant probability p; death is "
    "permanent and strikes each day with a constant probability θ; p ~ Beta and θ ~ Beta across "
    "a group's users, independent of each other.",
    "A paying day is an active day that pays with a user-constant probability π ~ Beta across "
    "users; the Beta differs by whether the user paid on day 0.",
    "Amounts of a user's paying days after day 0 are lognormal around the user's own mean log "
    "amount, which is Normal across the group's users; spend is independent of activity given "
    "the user's history.",
    "Day-0 revenue is taken as observed; groups' parameters are drawn from a common population "
    "(partial pooling).",
    "No weekday, promotion or seasonal effects; the laws seen in the observed days hold to the "
    "horizon.",
    "Intervals are posterior credible intervals of the expected LTV (no realised-mean noise, no "
    "allowance for a wrong churn law).",
]

#: Group-level parameters kept from the posterior, shape (draws, G) or (draws, G, 2) for pay.
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


def collapse(data: CohortData) -> SufficientStats:
    """Per-user sufficient statistics, aggregated to unique rows with counts (vectorised)."""
    n_groups = data.n_groups
    n_users = len(data.user_group)
    group = data.user_group.astype(np.int64)
    age = data.user_age.astype(np.int64)
    u_idx = data.user_index.astype(np.int64)
    u_day = data.user_day.astype(np.int64)
    u_rev = np.asarray(data.user_revenue, dtype=float)

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
    within = np.maximum(s2 - y * lbar**2, 0.0)
    users = np.bincount(group, minlength=n_groups)
    max_age = int(age.max()) if n_users else 0

    act, act_count = _unique_rows([group, x, t_x, age])
    pay, pay_count = _unique_rows([group, status, x, y])
    payer = y > 0
    spend, spend_count = _unique_rows([group[payer], y[payer]])
    _, spend_sum = _unique_rows([group[payer], y[payer]], lbar[payer])
    _, spend_sumsq = _unique_rows([group[payer], y[payer]], lbar[payer] ** 2)
    spend_dof = np.bincount(group[payer], weights=(y - 1)[payer], minlength=n_groups)
    spend_within = np.bincount(group[payer], weights=within[payer], minlength=n_groups)
    spend_center = float(log_amount.mean()) if log_amount.size else 0.0

    pred, pred_count = _unique_rows([group, x, t_x, age, status, y, lbar])
    # A group without eligible users is forecast as one new user of its group (pooled day-0
    # paying share): it still gets its own posterior draws from the population.
    empty = np.flatnonzero(users == 0)
    if empty.size:
        share = float(status.mean()) if n_users else 0.0
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


# ----------------------------------------------------------------------------- BG/BB terms


def bgbb_rows(alpha, beta, gamma, delta, row_g, row_x, row_tx, row_n, *, grad: bool = False):
    """BG/BB log-likelihood, activity coefficient and gradients per user row (NumPy).

    Group parameters have shape ``(S, G)`` (``S`` draws); rows index groups. Returns a dict with
    ``log_lik`` and ``log_coef`` of shape ``(S, R)``, where ``P(active on a future day d |
    history) = exp(log_coef) · B(γ, δ+d)/B(γ, δ)`` (FHS 2010, eq. 5 and the conditional
    expectation), and with ``grad`` also ``d_alpha`` … ``d_delta``: ∂ log_lik / ∂ parameter.

    The likelihood's sum over the death days ``j = t_x … n−1`` of ``B(α+x, β+j−x)/B(α,β) ·
    B(γ+1, δ+j)/B(γ,δ)`` is read from a (draw, group, x, j) table reverse-cumulated along ``j``
    and scaled by its per-(group, x) maximum, so nothing underflows; the cost is
    ``O(S·G·X·J + S·R)`` whatever the number of users.
    """
    x_size = int(row_x.max(initial=0)) + 1
    n_size = int(row_n.max(initial=0)) + 1
    xs = np.arange(x_size)
    js = np.arange(n_size)
    a, b, c, d = (np.asarray(v, dtype=float)[..., None] for v in (alpha, beta, gamma, delta))
    k_index = np.clip(js[None, :] - xs[:, None], 0, n_size - 1)          # (X, J): j − x
    valid = js[None, :] >= xs[:, None]
    lb_ab = betaln(a, b)[..., None]                                       # (S, G, 1, 1)
    lb_cd = betaln(c, d)                                                  # (S, G, 1)
    gl_bk = gammaln(b + js)                                               # (S, G, J)
    log_p = (gammaln(a + xs)[..., :, None] + gl_bk[..., k_index]
             - gammaln(a + b + js)[..., None, :] - lb_ab)                 # (S, G, X, J)
    gl_dj = gammaln(d + js)
    log_s = gammaln(c) + gl_dj - gammaln(c + d + js) - lb_cd              # (S, G, J)
    log_q = gammaln(c + 1) + gl_dj - gammaln(c + d + 1 + js) - lb_cd
    log_m = np.where(valid, log_p + log_q[..., None, :], -np.inf)
    shift = log_m.max(axis=-1)                                            # (S, G, X)
    terms = np.exp(log_m - shift[..., None])

    def tail_sum(table):
        """Σ_{j = t_x}^{n−1} of table[g, x, j] per row, from reverse cumulative sums."""
        rev = np.cumsum(table[..., ::-1], axis=-1)[..., ::-1]
        return rev[:, row_g, row_x, row_tx] - rev[:, row_g, row_x, row_n]

    has_gap = (row_tx < row_n)[None, :]
    first = log_p[:, row_g, row_x, row_n] + log_s[:, row_g, row_n]
    gap = np.maximum(tail_sum(terms), 1e-300)
    with np.errstate(divide="ignore"):
        second = np.where(has_gap, np.log(gap) + shift[:, row_g, row_x], -np.inf)
    log_lik = np.logaddexp(first, second)
    ag, bg = a[..., 0][:, row_g], b[..., 0][:, row_g]
    log_coef = (log_p[:, row_g, row_x, row_n] + np.log((ag + row_x) / (ag + bg + row_n))
                - log_lik)
    out = {"log_lik": log_lik, "log_coef": log_coef}
    if not grad:
        return out

    # ∂ log L = w_A ∂ log A + Σ_j exp(log M_j − log L) ∂ log M_j, by the same tail sums.
    w_first = np.exp(first - log_lik)
    w_tail = np.where(has_gap, np.exp(shift[:, row_g, row_x] - log_lik), 0.0)
    dg_ab = digamma(a + b)
    d_p_alpha = (digamma(a + xs)[..., :, None] - digamma(a + b + js)[..., None, :]
                 - (digamma(a) - dg_ab)[..., None])
    d_p_beta = (digamma(b + js)[..., k_index] - digamma(a + b + js)[..., None, :]
                - (digamma(b) - dg_ab)[..., None])
    dg_cd = digamma(c + d)
    dg_dj = digamma(d + js)
    d_s_gamma = -digamma(c + d + js) + dg_cd
    d_s_delta = dg_dj - digamma(c + d + js) - digamma(d) + dg_cd
    dg_cd1j = digamma(c + d + 1 + js)
    d_q_gamma = digamma(c + 1) - dg_cd1j - digamma(c) + dg_cd
    d_q_delta = dg_dj - dg_cd1j - digamma(d) + dg_cd
    pick_p = lambda t: t[:, row_g, row_x, row_n]  # noqa: E731
    pick_s = lambda t: t[:, row_g, row_n]  # noqa: E731
    out["d_alpha"] = w_first * pick_p(d_p_alpha) + w_tail * tail_sum(terms * d_p_alpha)
    out["d_beta"] = w_first * pick_p(d_p_beta) + w_tail * tail_sum(terms * d_p_beta)
    out["d_gamma"] = (w_first * pick_s(d_s_gamma)
                      + w_tail * tail_sum(terms * d_q_gamma[..., None, :]))
    out["d_delta"] = (w_first * pick_s(d_s_delta)
                      + w_tail * tail_sum(terms * d_q_delta[..., None, :]))
    return out


def data_loglik(stats: SufficientStats, params: dict, *, grad: bool = False):
    """Total weighted log-likelihood of the data at one set of group parameters.

    ``params`` holds ``GROUP_PARAMS`` arrays of shape ``(G,)`` (``(G, 2)`` for pay). Returns
    the value, and with ``grad`` also a dict of gradients of the same shapes.
    """
    n_groups = stats.n_groups
    act = bgbb_rows(*(params[k][None] for k in ("p_alpha", "p_beta", "theta_gamma",
                                                "theta_delta")),
                    stats.act_group, stats.act_x, stats.act_tx, stats.act_n, grad=grad)
    value = float(np.dot(stats.act_count, act["log_lik"][0]))

    # Paying days among active days after day 0: beta-binomial (C(x, y) dropped).
    a = params["pay_a"][stats.pay_group, stats.pay_status]
    b = params["pay_b"][stats.pay_group, stats.pay_status]
    y, n, w = stats.pay_y, stats.pay_x, stats.pay_count
    value += float(np.dot(w, gammaln(a + y) + gammaln(b + n - y) - gammaln(a + b + n)
                          - betaln(a, b)))

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

    def per_group(weights, index=stats.act_group):
        return np.bincount(index, weights=weights, minlength=n_groups)

    grads = {}
    for name, key in (("p_alpha", "d_alpha"), ("p_beta", "d_beta"), ("theta_gamma", "d_gamma"),
                      ("theta_delta", "d_delta")):
        grads[name] = per_group(stats.act_count * act[key][0])
    dg_ab = digamma(a + b + n)
    cell = stats.pay_group * 2 + stats.pay_status
    d_a = w * (digamma(a + y) - dg_ab - digamma(a) + digamma(a + b))
    d_b = w * (digamma(b + n - y) - dg_ab - digamma(b) + digamma(a + b))
    grads["pay_a"] = np.bincount(cell, weights=d_a, minlength=2 * n_groups).reshape(n_groups, 2)
    grads["pay_b"] = np.bincount(cell, weights=d_b, minlength=2 * n_groups).reshape(n_groups, 2)
    d_v = -0.5 * stats.spend_count / v + sq / (2 * v**2)
    grads["spend_m"] = per_group((stats.spend_sum - stats.spend_count * m[g]) / v, g)
    grads["spend_tau"] = per_group(d_v * 2 * tau[g], g)
    grads["spend_sigma"] = (per_group(d_v * 2 * sigma[g] / stats.spend_y, g)
                            - stats.spend_dof / sigma + stats.spend_within / sigma**3)
    return value, grads


class DataLogLik(Op):
    """PyTensor Op: group parameters (``GROUP_PARAMS`` order) → :func:`data_loglik`.

    The data part of the model is plain NumPy with an analytic gradient, so no C code is
    compiled for it (a cold compile of the equivalent PyTensor graph took over a minute) and
    one pass gives value and gradient: the last point is memoised for :class:`DataLogLikGrad`.
    """

    def __init__(self, stats: SufficientStats) -> None:
        self.stats = stats
        self.memo = None

    def evaluate(self, inputs):
        key = b"".join(np.ascontiguousarray(v).tobytes() for v in inputs)
        if self.memo is None or self.memo[0] != key:
            params = dict(zip(GROUP_PARAMS, inputs))
            self.memo = (key, *data_loglik(self.stats, params, grad=True))
        return self.memo[1], self.memo[2]

    def make_node(self, *params):
        params = [pt.as_tensor_variable(v) for v in params]
        return Apply(self, params, [pt.dscalar()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.asarray(self.evaluate(inputs)[0])

    def grad(self, inputs, output_grads):
        return [output_grads[0] * g for g in DataLogLikGrad(self)(*inputs)]


class DataLogLikGrad(Op):
    """The gradient of :class:`DataLogLik` (shares its memo)."""

    def __init__(self, parent: DataLogLik) -> None:
        self.parent = parent

    def make_node(self, *params):
        params = [pt.as_tensor_variable(v) for v in params]
        return Apply(self, params, [v.type() for v in params])

    def perform(self, node, inputs, outputs):
        grads = self.parent.evaluate(inputs)[1]
        for slot, name in zip(outputs, GROUP_PARAMS):
            slot[0] = np.asarray(grads[name], dtype=float)


# ----------------------------------------------------------------------------- PyMC model


def _beta_block(pm, name: str, prior: dict, shape: tuple[int, ...]):
    """Group Betas with partially pooled logit mean and log concentration (non-centred)."""
    mean_mu = pm.Normal(f"{name}_logit_mean", prior["logit_mean"], prior["logit_sd"],
                        shape=shape[1:])
    mean_sd = pm.HalfNormal(f"{name}_logit_spread", prior["logit_spread"], shape=shape[1:])
    conc_mu = pm.Normal(f"{name}_log_conc_mean", prior["log_conc_mean"], prior["log_conc_sd"],
                        shape=shape[1:])
    conc_sd = pm.HalfNormal(f"{name}_log_conc_spread", prior["log_conc_spread"], shape=shape[1:])
    z_mean = pm.Normal(f"{name}_mean_z", 0.0, 1.0, shape=shape)
    z_conc = pm.Normal(f"{name}_conc_z", 0.0, 1.0, shape=shape)
    mean = pm.math.sigmoid(mean_mu + mean_sd * z_mean)
    conc = pt.exp(conc_mu + conc_sd * z_conc)
    return mean * conc, (1.0 - mean) * conc


def build_pymc_model(stats: SufficientStats, priors: dict | None = None) -> pm.Model:
    """The joint model over all groups, with weighted (collapsed) likelihood terms."""
    pm = _quiet_pymc()
    priors = PRIORS if priors is None else priors
    n_groups = stats.n_groups
    with pm.Model() as model:
        alpha, beta = _beta_block(pm, "p", priors["activity"], (n_groups,))
        gamma, delta = _beta_block(pm, "theta", priors["dropout"], (n_groups,))
        pay_a, pay_b = _beta_block(pm, "pay", priors["pay"], (n_groups, 2))
        for name, value in (("p_alpha", alpha), ("p_beta", beta), ("theta_gamma", gamma),
                            ("theta_delta", delta), ("pay_a", pay_a), ("pay_b", pay_b)):
            pm.Deterministic(name, value)

        sp = priors["spend"]
        m0 = pm.Normal("spend_m_mean", stats.spend_center, sp["mean_sd"])
        m_sd = pm.HalfNormal("spend_m_spread", sp["mean_spread"])
        ls0 = pm.Normal("spend_log_sigma_mean", sp["log_sigma_mean"], sp["log_sigma_sd"])
        ls_sd = pm.HalfNormal("spend_log_sigma_spread", sp["log_sigma_spread"])
        lt0 = pm.Normal("spend_log_tau_mean", sp["log_tau_mean"], sp["log_tau_sd"])
        lt_sd = pm.HalfNormal("spend_log_tau_spread", sp["log_tau_spread"])
        z_m = pm.Normal("spend_m_z", 0.0, 1.0, shape=n_groups)
        z_s = pm.Normal("spend_sigma_z", 0.0, 1.0, shape=n_groups)
        z_t = pm.Normal("spend_tau_z", 0.0, 1.0, shape=n_groups)
        m = pm.Deterministic("spend_m", m0 + m_sd * z_m)
        sigma = pm.Deterministic("spend_sigma", pt.exp(ls0 + ls_sd * z_s))
        tau = pm.Deterministic("spend_tau", pt.exp(lt0 + lt_sd * z_t))

        # Activity/dropout (BG/BB), paying (beta-binomial) and amounts (lognormal–normal),
        # one weighted term per unique row of sufficient statistics.
        params = [alpha, beta, gamma, delta, pay_a, pay_b, m, sigma, tau]
        pm.Potential("loglik", DataLogLik(stats)(*params))
    return model


# ----------------------------------------------------------------------------- inference


def _versions() -> dict:
    import pymc
    import pytensor
    import scipy

    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return {"pymc": pymc.__version__, "pytensor": pytensor.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "btyd_source": source}


def _quiet_pymc():
    """Import PyMC without ArviZ's refactor banner; returns the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import pymc

    return pymc


def _group_draws(posterior, names=GROUP_PARAMS) -> dict[str, np.ndarray]:
    """Stack chains: (chain, draw, …) → (chain·draw, …)."""
    out = {}
    for name in names:
        values = posterior[name].values
        out[name] = values.reshape((-1,) + values.shape[2:]).astype(float)
    return out


def _run_nuts(model, settings: dict) -> dict[str, np.ndarray]:
    pm = _quiet_pymc()
    import arviz as az

    chains = settings["chains"]
    with model:
        idata = pm.sample(draws=settings["draws"], tune=settings["tune"], chains=chains,
                          cores=min(chains, 2), random_seed=settings["seed"], progressbar=False,
                          compute_convergence_checks=False, target_accept=settings["target_accept"])
    out = _group_draws(idata.posterior)
    out["diverging"] = np.array(int(idata.sample_stats["diverging"].values.sum()))
    if chains > 1:
        rhat = az.rhat(idata.posterior[list(GROUP_PARAMS)])
        out["rhat_max"] = np.array(float(max(rhat[v].max() for v in GROUP_PARAMS)))
    return out


def _run_advi(model, settings: dict) -> dict[str, np.ndarray]:
    pm = _quiet_pymc()
    with model:
        approx = pm.fit(n=settings["advi_steps"], method="advi", random_seed=settings["seed"],
                        progressbar=False)
        idata = approx.sample(settings["draws"], random_seed=settings["seed"])
    out = _group_draws(idata.posterior)
    out["elbo_final"] = np.array(float(-np.mean(approx.hist[-100:])))
    return out


def _run_map(model, settings: dict, n_groups: int) -> dict[str, np.ndarray]:
    """Mode in the unconstrained space, then draws of a Laplace approximation of each group.

    The population parameters stay at the mode (an empirical-Bayes step): a joint Gaussian over
    the non-centred offsets and the population spreads would ignore the funnel between them and
    send draws of small groups to absurd values.
    """
    pm = _quiet_pymc()
    from pymc.blocking import DictToArrayBijection, RaveledVars
    from scipy.optimize import minimize

    start = model.initial_point()
    value_names = [v.name for v in model.value_vars]
    x0 = DictToArrayBijection.map({k: start[k] for k in value_names})
    info = x0.point_map_info
    logp = DictToArrayBijection.mapf(model.compile_logp(jacobian=True), start)
    dlogp = DictToArrayBijection.mapf(model.compile_dlogp(jacobian=True), start)

    def neg(xv):
        return -float(logp(RaveledVars(xv, info)))

    def neg_grad(xv):
        return -np.asarray(dlogp(RaveledVars(xv, info)), dtype=float)

    result = minimize(neg, x0.data, jac=neg_grad, method="L-BFGS-B",
                      options={"maxiter": settings["map_maxiter"], "gtol": 1e-6})
    mode = result.x
    blocks, where = _group_hessians(neg_grad, mode, info, n_groups)
    eig, vec = np.linalg.eigh(blocks)                                 # (G, k), (G, k, k)
    floor = 1e-8 * np.maximum(eig.max(axis=1, keepdims=True), 1.0)
    clipped = int((eig < floor).sum())
    eig = np.maximum(eig, floor)
    rng = np.random.default_rng(settings["seed"])
    z = rng.standard_normal((settings["draws"], n_groups, eig.shape[1]))
    offsets = np.einsum("gij,sgj->sgi", vec, z / np.sqrt(eig))
    draws = np.repeat(mode[None], settings["draws"], axis=0)
    draws[:, where.ravel()] += offsets.reshape(settings["draws"], -1)

    outs = model.replace_rvs_by_values([model[name] for name in GROUP_PARAMS])
    fn = pm.pytensorf.compile(model.value_vars, outs, on_unused_input="ignore",
                              mode="FAST_COMPILE")

    def params_at(xv):
        point = DictToArrayBijection.rmap(RaveledVars(xv, info), start)
        return fn(*[point[name] for name in value_names])

    out: dict[str, np.ndarray] = {}
    at_mode = params_at(mode)
    per_draw = [params_at(xv) for xv in draws]
    for i, name in enumerate(GROUP_PARAMS):
        out[name] = np.stack([row[i] for row in per_draw]).astype(float)
        out[f"mode_{name}"] = np.asarray(at_mode[i], dtype=float)[None]
    out["map_converged"] = np.array(bool(result.success))
    out["laplace_clipped_eigenvalues"] = np.array(clipped)
    return out


def _group_hessians(neg_grad, mode: np.ndarray, info, n_groups: int, step: float = 1e-5):
    """Per-group Hessian blocks of −log p over the group offsets, by central differences.

    Groups interact only through the population parameters, so perturbing the same offset in
    every group at once yields that column of every group's block: 2·(offsets per group)
    gradient calls in all. Returns ``(blocks (G, k, k), positions (G, k))``.
    """
    owner, color, offset, slots = [], [], 0, 0
    for name, shape, *_ in info:
        count = int(np.prod(shape)) if shape else 1
        if name.endswith("_z") and shape and shape[0] == n_groups:
            per = count // n_groups
            local = np.arange(count)
            owner.append(np.stack([offset + local, local // per, slots + local % per], axis=1))
            slots += per
        offset += count
    table = np.concatenate(owner)                                    # rows: position, group, slot
    where = np.zeros((n_groups, slots), dtype=np.int64)
    where[table[:, 1], table[:, 2]] = table[:, 0]
    blocks = np.zeros((n_groups, slots, slots))
    for c in range(slots):
        e = np.zeros(mode.size)
        e[where[:, c]] = step
        response = (neg_grad(mode + e) - neg_grad(mode - e)) / (2 * step)
        blocks[:, :, c] = response[where]
    return 0.5 * (blocks + blocks.transpose(0, 2, 1)), where


# ----------------------------------------------------------------------------- estimator


class BTYDModel:
    """Hierarchical BG/BB + beta-binomial + lognormal forecast for all groups at once.

    Parameters
    ----------
    method
        ``"nuts"`` (default: PyMC's NUTS), ``"map"`` (mode + Laplace draws, fastest) or
        ``"advi"`` (mean-field variational).
    draws, tune, chains
        NUTS draws and tuning steps per chain and chains; ``draws`` is also the number of
        Laplace or ADVI draws.
    seed
        Random seed of every stochastic step; the same data and settings give identical output.
    confidence
        Interval level, e.g. 0.99.
    cache_dir
        Posterior cache directory; ``None``: ``$LTV_CACHE_DIR`` or
        ``~/.cache/ltv-forecast/posteriors``; ``False``: no caching.
    advi_steps, target_accept, map_maxiter, max_predictive_draws, priors
        Further inference settings (plain config, recorded in :meth:`params`).
    """

    name = "btyd"

    def __init__(self, method: str = "nuts", draws: int = 500, tune: int = 500, chains: int = 2,
                 seed: int = 0, confidence: float = 0.99, cache_dir=None, *,
                 advi_steps: int = 20000, target_accept: float = 0.8, map_maxiter: int = 5000,
                 max_predictive_draws: int = 400, priors: dict | None = None) -> None:
        self.method = method
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.seed = seed
        self.confidence = confidence
        self.cache_dir = cache_dir
        self.advi_steps = advi_steps
        self.target_accept = target_accept
        self.map_maxiter = map_maxiter
        self.max_predictive_draws = max_predictive_draws
        self.priors = priors

    # -- settings and inference

    def _settings(self) -> dict:
        settings = {"method": self.method, "draws": int(self.draws), "seed": int(self.seed),
                    "priors": copy.deepcopy(self.priors or PRIORS)}
        if self.method == "nuts":
            settings.update(tune=int(self.tune), chains=int(self.chains),
                            target_accept=float(self.target_accept))
        elif self.method == "advi":
            settings.update(advi_steps=int(self.advi_steps))
        else:
            settings.update(map_maxiter=int(self.map_maxiter))
        return settings

    def fit(self, data: CohortData) -> BTYDModel:
        """Collapse users, then load the posterior from the cache or infer and store it."""
        global SAMPLING_CALLS
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0.5 <= float(self.confidence) < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence!r}")
        stats = collapse(data)
        settings = self._settings()
        key = cache_key(stats.likelihood_arrays(), settings, _versions())
        cache = None if self.cache_dir is False else PosteriorCache(self.cache_dir)
        hit = cache.load(key) if cache is not None else None
        if hit is not None:
            posterior = hit[0]
            self.from_cache_ = True
        else:
            model = build_pymc_model(stats, settings["priors"])
            if self.method == "nuts":
                posterior = _run_nuts(model, settings)
            elif self.method == "advi":
                posterior = _run_advi(model, settings)
            else:
                posterior = _run_map(model, settings, stats.n_groups)
            SAMPLING_CALLS += 1
            self.from_cache_ = False
            if cache is not None:
                cache.store(key, posterior, {"settings": settings, "versions": _versions()})
        self.data_ = data
        self.stats_ = stats
        self.settings_ = settings
        self.cache_key_ = key
        self.posterior_ = posterior
        return self

    # -- forecast

    def _draw_index(self) -> np.ndarray:
        total = self.posterior_["p_alpha"].shape[0]
        if total <= self.max_predictive_draws:
            return np.arange(total)
        return np.unique(np.linspace(0, total - 1, self.max_predictive_draws).round().astype(int))

    def predict(self, n_days: int) -> CurveLTV:
        """Cumulative LTV per user and its credible interval for days ``0 … n_days-1``."""
        post = self.posterior_
        idx = self._draw_index()
        draws = {name: post[name][idx] for name in GROUP_PARAMS}
        curves = _expected_curves(self.stats_, self.data_.revenue, draws, n_days)
        if self.method == "map":
            point = _expected_curves(self.stats_, self.data_.revenue,
                                     {name: post[f"mode_{name}"] for name in GROUP_PARAMS},
                                     n_days)[0]
        else:
            point = curves.mean(axis=0)
        tail = (1.0 - self.confidence) / 2.0
        lower, upper = np.quantile(curves, [tail, 1.0 - tail], axis=0)
        ltv = np.maximum.accumulate(point, axis=1)
        lower = np.maximum.accumulate(np.minimum(lower, ltv), axis=1)
        upper = np.maximum.accumulate(np.maximum(upper, ltv), axis=1)
        return CurveLTV(ltv=ltv, lower=np.minimum(lower, ltv), upper=upper)

    # -- reporting

    def params(self, g: int) -> dict:
        """Posterior means of group ``g``'s parameters, the method and its settings."""
        post = self.posterior_
        mean = {name: post[name][:, g].mean(axis=0) for name in GROUP_PARAMS}
        p_a, p_b = mean["p_alpha"], mean["p_beta"]
        t_g, t_d = mean["theta_gamma"], mean["theta_delta"]
        out = {
            "p_alpha": float(p_a), "p_beta": float(p_b),
            "theta_gamma": float(t_g), "theta_delta": float(t_d),
            "p_mean": float(np.mean(post["p_alpha"][:, g] / (post["p_alpha"][:, g]
                                                             + post["p_beta"][:, g]))),
            "theta_mean": float(np.mean(post["theta_gamma"][:, g] / (post["theta_gamma"][:, g]
                                                                     + post["theta_delta"][:, g]))),
            "pay_a_no_day0_pay": float(mean["pay_a"][0]), "pay_b_no_day0_pay": float(mean["pay_b"][0]),
            "pay_a_day0_pay": float(mean["pay_a"][1]), "pay_b_day0_pay": float(mean["pay_b"][1]),
            "spend_log_mean": float(mean["spend_m"]), "spend_log_sd": float(mean["spend_sigma"]),
            "spend_user_log_sd": float(mean["spend_tau"]),
            "users": int(self.stats_.users[g]),
            "draws_total": int(post["p_alpha"].shape[0]),
            "predictive_draws": int(len(self._draw_index())),
            "from_cache": bool(self.from_cache_),
            "posterior_key": self.cache_key_,
        }
        for diag in ("diverging", "rhat_max", "elbo_final", "map_converged",
                     "laplace_clipped_eigenvalues"):
            if diag in post:
                out[diag] = post[diag].item()
        out.update({k: v for k, v in self.settings_.items() if k != "priors"})
        out["priors"] = self.settings_["priors"]
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

    x_size = int(stats.pred_x.max(initial=0)) + 1
    n_size = int(stats.pred_n.max(initial=0)) + 1
    out = np.empty((n_draws, n_groups, n_days))
    bounds = np.searchsorted(stats.pred_group, np.arange(n_groups + 1))
    per_group = max(1, budget // max(n_draws * max(n_days, x_size * n_size), 1))
    for lo in range(0, n_groups, per_group):
        hi = min(n_groups, lo + per_group)
        rows = slice(bounds[lo], bounds[hi])
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
