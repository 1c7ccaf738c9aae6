"""``--model btyd``: the estimator (:class:`BTYDModel`) and its forecast (:func:`_expected_curves`).

Assumptions
-----------
See :data:`ASSUMPTIONS` (reported with every forecast). In short: BG/BB activity and dropout
(Fader, Hardie & Shang 2010), beta-binomial paying days by day-0 status, lognormal–normal
amounts, partial pooling across groups, day-0 revenue observed, no weekday or promotion effects.

Data it needs
-------------
A :class:`~ltvcore.data.cohorts.CohortData` with every user's daily events (day, revenue) and
observed age; users collapse to sufficient statistics (:func:`~.stats.collapse`).

Forecast
--------
LTV per installed user of a group by day ``d`` = mean over its users of (observed revenue up to
``min(d, n)``) + (expected revenue on days ``n+1 … d`` given the user's own history). A user's
expected revenue on a future day is ``P(active on d | history) × E[π | history] ×
E[amount | history]``, each in closed form (FHS 2010 for the first). The curve is computed for
every posterior draw; the point forecast is the mean over draws (MAP: the curve at the mode) and
the interval the ``confidence`` quantiles over draws (MAP: draws of a per-group Laplace
approximation). The posterior interval is the uncertainty of the *expected* LTV under the model;
the forecast's interval adds the sampling noise of the group's mean per user and an extrapolation
allowance for a wrong churn law (:data:`EXTRAPOLATION_SD`), as the curve model does
(:mod:`ltvcore.ltv`).

A posterior is cached by the content hash of the sufficient statistics, the settings and the
library versions with the package's source (:mod:`ltvcore.models.posterior_cache`): the same
request never samples twice.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
from scipy import sparse

from ltvcore.arpu import estimate_arpu
from ltvcore.data.cohorts import CohortData
from ltvcore.ltv import CurveLTV, sampling_variance, widen, z_value
from ltvcore.models.base import ModelDefaults
from ltvcore.models.btyd.inference import METHODS, InferenceSettings, Posterior, infer, versions
from ltvcore.models.btyd.latents import Priors, group_params, plain_priors
from ltvcore.models.btyd.likelihood import bgbb_rows
from ltvcore.models.btyd.stats import SufficientStats, collapse
from ltvcore.models.posterior_cache import PosteriorCache, cache_key

__all__ = ["ASSUMPTIONS", "BTYDModel", "EXTRAPOLATION_SD"]

#: Log-scale spread of the projected revenue per unit of √ln(horizon / observed span), as in
#: :data:`ltvcore.models.curve.EXTRAPOLATION_SD`. On 540 backtests per kind (seeds 1–5 × 12
#: campaigns × 3 scenarios × horizons 90/180/365; ``python -m benchmarks.btyd_speed calibrate``)
#: the posterior interval plus realised-mean noise covered 65% (game) and 71% (purchase) of
#: realised LTVs; the smallest spread reaching 99% was 0.33 for game data and 0.23 for purchase
#: data. The game value is used; coverage is scored on fresh seeds (11–13).
EXTRAPOLATION_SD = 0.33

#: What the model assumes, as reported with every forecast (:attr:`BTYDModel.assumptions`).
ASSUMPTIONS = (
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
    "Intervals combine the posterior credible interval of the expected LTV, the sampling noise "
    "of the group's mean revenue per user, and an extrapolation error of the "
    "projected revenue growing with ln(horizon / observed days) at the rate calibrated on "
    "backtests (extrapolation_sd).",
)


class BTYDModel(ModelDefaults):
    """Hierarchical BG/BB + beta-binomial + lognormal forecast for all groups at once.

    Scikit-learn style: ``__init__`` only stores the settings; :meth:`fit` validates them and
    sets the learned attributes, which end in ``_``: ``data_``, ``stats_``
    (:class:`~.stats.SufficientStats`), ``settings_`` (:class:`~.inference.InferenceSettings`),
    ``cache_key_``, ``from_cache_`` (whether the posterior cache answered, so no inference ran)
    and ``posterior_`` (:class:`~.inference.Posterior`).

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
        Further settings (plain config, recorded in :meth:`params` and in the cache key;
        ``priors`` defaults to :data:`~.latents.PRIORS`).
    """

    name = "btyd"

    def __init__(self, method: str = "nuts", draws: int = 500, tune: int = 500, chains: int = 2,
                 seed: int = 0, confidence: float = 0.99,
                 cache_dir: str | os.PathLike[str] | Literal[False] | None = None, *,
                 fit_days: int | None = 120, advi_steps: int = 10000, target_accept: float = 0.9,
                 map_maxiter: int = 5000, max_predictive_draws: int = 400,
                 priors: Priors | None = None,
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

    def _settings(self) -> InferenceSettings:
        """The inference settings of this configuration (numbers as ``int`` / ``float``)."""
        return InferenceSettings(
            method=self.method, draws=int(self.draws), seed=int(self.seed),
            map_maxiter=int(self.map_maxiter),
            fit_days=None if self.fit_days is None else int(self.fit_days),
            priors=plain_priors(self.priors), tune=int(self.tune), chains=int(self.chains),
            target_accept=float(self.target_accept), advi_steps=int(self.advi_steps))

    def fit(self, data: CohortData) -> BTYDModel:
        """Collapse users, then load the posterior from the cache or infer it and store it."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0.5 <= float(self.confidence) < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence!r}")
        if len(data.user_group) == 0:
            raise ValueError("btyd needs at least one user with an observed install day")
        settings = self._settings()
        stats = collapse(data, settings.fit_days)
        record, provenance = settings.record(), versions()
        key = cache_key(stats.likelihood_arrays(), record, provenance)
        cache_dir = self.cache_dir
        cache = None if cache_dir is False else PosteriorCache(cache_dir)
        hit = cache.load(key) if cache is not None else None
        if hit is not None:
            posterior = Posterior.from_arrays(hit[0])
        else:
            posterior = infer(stats, settings)
            if cache is not None:
                cache.store(key, posterior.to_arrays(),
                            {"settings": record, "versions": provenance})
        self.data_ = data
        self.stats_ = stats
        self.settings_ = settings
        self.cache_key_ = key
        self.from_cache_ = hit is not None
        self.posterior_ = posterior
        return self

    def _draws(self) -> dict[str, np.ndarray]:
        latent = self.posterior_.latent
        total = latent.shape[0]
        if total > self.max_predictive_draws:
            keep = np.linspace(0, total - 1, self.max_predictive_draws).round().astype(int)
            latent = latent[np.unique(keep)]
        return group_params(latent, self.stats_.spend_center)

    def predict(self, n_days: int) -> CurveLTV:
        """Cumulative LTV per user and its interval for days ``0 … n_days-1``.

        The interval starts from the posterior's (the uncertainty of the expected LTV) and adds,
        as the curve model does, the sampling noise of the group's mean per user (observed
        days included: the band is for the expected LTV) and the extrapolation error of the projected revenue
        (``extrapolation_sd``): a credible interval alone covered the realised LTV_180 of
        only 22–50% of game campaigns (``benchmarks/btyd_speed.py``).
        """
        data = self.data_
        curves = _expected_curves(self.stats_, data.revenue, self._draws(), n_days)
        if self.posterior_.mode_latent is not None:
            mode = group_params(self.posterior_.mode_latent, self.stats_.spend_center)
            point = _expected_curves(self.stats_, data.revenue, mode, n_days)[0]
        else:
            point = curves.mean(axis=0)
        tail = (1.0 - self.confidence) / 2.0
        lower, upper = np.quantile(curves, [tail, 1.0 - tail], axis=0)
        ltv = np.maximum.accumulate(point, axis=1)
        z = z_value(self.confidence)
        users = data.groups["users"].to_numpy()
        noise = z**2 * sampling_variance(ltv, data.last_day, estimate_arpu(data).user_sd, users)
        below = np.sqrt(np.maximum(ltv - lower, 0.0) ** 2 + noise)
        above = np.sqrt(np.maximum(upper - ltv, 0.0) ** 2 + noise)
        return widen(ltv, below, above, data.last_day, z, self.extrapolation_sd)

    def params(self, g: int) -> dict:
        """Group ``g``'s parameters (posterior means; MAP: the mode), method and settings."""
        post = self.posterior_
        latent = post.latent if post.mode_latent is None else post.mode_latent
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
            "posterior_draws": post.n_draws,
            "posterior_key": self.cache_key_,
        }
        out.update(post.diagnostics())
        settings = self.settings_.record()
        priors = settings.pop("priors")
        out.update(settings)
        out["max_predictive_draws"] = int(self.max_predictive_draws)
        out["extrapolation_sd"] = float(self.extrapolation_sd)
        out["priors"] = priors
        return {"btyd": out}

    @property
    def assumptions(self) -> list[str]:
        return list(ASSUMPTIONS)

    @property
    def warnings(self) -> list[str]:
        """Inference that did not finish as it should: the forecast stands, but a reader of the
        run must know it rests on an unconverged mode or a sampler that did not mix."""
        post, out = self.posterior_, []
        if post.map_converged is False:
            out.append("btyd: the search for the posterior mode stopped before converging "
                       f"(map_maxiter {self.map_maxiter}); the forecast may be off: compare "
                       "--model curve or btyd (NUTS)")
        if post.diverging:
            out.append(f"btyd: NUTS had {post.diverging} divergent transitions; the interval "
                       "may be too narrow")
        if post.rhat_max is not None and post.rhat_max > 1.05:
            out.append(f"btyd: the chains disagree (largest R-hat {post.rhat_max:.2f} > 1.05); "
                       "the forecast and its interval may mislead")
        return out


# ----------------------------------------------------------------------------- forecast math


def _expected_curves(stats: SufficientStats, revenue: np.ndarray, draws: dict[str, np.ndarray],
                     n_days: int, budget: int = 4_000_000) -> np.ndarray:
    """``(S, G, n_days)`` expected cumulative revenue per user for each draw.

    ``draws`` holds :data:`~.latents.GROUP_PARAMS` arrays with a leading draws axis
    (:func:`~.latents.group_params`). Future activity is BG/BB's conditional expectation
    (:func:`~.likelihood.bgbb_rows`' ``log_coef`` times the survival ``B(γ, δ+d)/B(γ, δ)``),
    paying the beta-binomial posterior mean ``(a + y)/(a + b + x)`` and the amount the
    lognormal's posterior predictive mean given the user's own mean log amount.
    """
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
