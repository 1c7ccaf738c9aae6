"""BdW maximum likelihood: nests sBG, reproduces the published sBG estimates, recovers (α, β, c)."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import beta as beta_fn

from ltvcore.retention import BdWRetention, SBGRetention, activity_curve
from ltvcore.retention.sbg import survival_counts

# Fader & Hardie (2007), "How to project customer retention", Table 1: customers of a cohort of
# 1,000 still renewing after 0 … 7 years, and the paper's sBG estimates on those 8 points.
REGULAR = np.array([1000, 631, 468, 382, 326, 289, 262, 241], dtype=float)
HIGH_END = np.array([1000, 869, 743, 653, 593, 551, 517, 491], dtype=float)
PUBLISHED_SBG = {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}


def _published_curve():
    return activity_curve(np.stack([REGULAR, HIGH_END]), np.full((2, 8), 1000.0))


def _simulate(alpha, beta, c, users, days, rng):
    """Users alive on days ``0 … days-1`` under BdW: θ ~ Beta(α, β), P(alive on t | θ) = (1−θ)^(t^c)."""
    theta = rng.beta(alpha, beta, users)
    u = rng.uniform(size=users)
    with np.errstate(divide="ignore"):
        # alive on day t ≥ 1 iff (1−θ)^(t^c) > u iff t < (log u / log(1−θ))^(1/c)
        lifetime = np.sort((np.log(u) / np.log1p(-theta)) ** (1.0 / c))
    alive = users - np.searchsorted(lifetime, np.arange(days, dtype=float), side="right")
    alive[0] = users
    return alive.astype(float)


def _censored_reference_fit(survivors):
    """Independent reference: the textbook censored likelihood (P(T = t) for each year's
    churners, S(T) for the survivors) maximised by scipy's Nelder–Mead."""
    t = np.arange(len(survivors), dtype=float)
    lost = survivors[:-1] - survivors[1:]

    def negative_loglik(x):
        a, b, c = np.exp(x)
        s = beta_fn(a, b + t**c) / beta_fn(a, b)
        return -(lost * np.log(s[:-1] - s[1:])).sum() - survivors[-1] * np.log(s[-1])

    res = minimize(negative_loglik, np.zeros(3), method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 40_000})
    return np.exp(res.x), -res.fun


def test_likelihood_at_c_equal_1_is_the_sbg_likelihood_term_for_term():
    rng = np.random.default_rng(1)
    alive = np.stack([_simulate(a, b, 1.0, 5_000, 30, rng) for a, b in [(0.7, 1.2), (2.0, 0.5), (0.3, 4.0)]])
    counts = survival_counts(activity_curve(alive, np.full_like(alive, 5_000.0)))
    u, v = np.log(rng.uniform(0.2, 5.0, (2, 3)))
    sbg = SBGRetention._loglik(u, v, *counts, np.arange(1, 30, dtype=float)[None, :])
    phi = np.stack([u, v, np.zeros(3)], axis=1)
    bdw = BdWRetention._loglik(phi, *counts, np.arange(0, 30, dtype=float)[None, :])
    assert bdw == pytest.approx(sbg, rel=1e-11)


def test_with_c_fixed_at_1_the_fit_is_the_sbg_fit():
    rng = np.random.default_rng(2)
    truths = [(0.7, 1.2), (1.5, 3.0), (0.3, 0.8)]
    alive = np.stack([_simulate(a, b, 1.0, 20_000, 25, rng) for a, b in truths])
    curve = activity_curve(alive, np.full_like(alive, 20_000.0))
    # Both optimisers run to a tight gradient tolerance: they then reach the same optimum.
    sbg = SBGRetention(tol=1e-12).fit(curve)
    bdw = BdWRetention(c=1.0, tol=1e-12).fit(curve)
    assert bdw.converged_.all()
    assert bdw.c_ == pytest.approx(1.0, abs=1e-15)
    assert bdw.alpha_ == pytest.approx(sbg.alpha_, rel=1e-8)
    assert bdw.beta_ == pytest.approx(sbg.beta_, rel=1e-8)
    assert np.allclose(bdw.predict(365), sbg.predict(365), rtol=1e-8, atol=1e-14)
    assert np.allclose(bdw.cov_[:, :2, :2], sbg.cov_, rtol=1e-5)
    assert np.all(bdw.cov_[:, 2, :] == 0) and np.all(bdw.cov_[:, :, 2] == 0)
    assert np.allclose(bdw.jacobian(60)[..., :2], sbg.jacobian(60), rtol=1e-6, atol=1e-12)


def test_with_c_fixed_at_1_reproduces_the_published_sbg_estimates():
    fit = BdWRetention(c=1.0).fit(_published_curve())
    for g, segment in enumerate(("regular", "high_end")):
        alpha, beta = PUBLISHED_SBG[segment]
        assert fit.alpha_[g] == pytest.approx(alpha, abs=5e-4), segment
        assert fit.beta_[g] == pytest.approx(beta, abs=5e-4), segment
    # The maximised log-likelihoods of the paper's spreadsheet: −1680.27 and −1611.16.
    assert fit.loglik_ == pytest.approx([-1680.27, -1611.16], abs=0.01)


def test_free_fit_on_the_published_data_matches_an_independent_maximiser():
    # Documented values: c = 1.28 (regular; not significantly different from 1, likelihood
    # ratio 1.3 < 3.84) and c = 1.72 (high end; 11.7 > 3.84: individual churn rises with tenure).
    fit = BdWRetention().fit(_published_curve())
    assert fit.converged_.all()
    assert fit.c_ == pytest.approx([1.283, 1.724], abs=2e-3)
    for g, survivors in enumerate((REGULAR, HIGH_END)):
        (a, b, c), loglik = _censored_reference_fit(survivors)
        assert fit.alpha_[g] == pytest.approx(a, rel=2e-3)
        assert fit.beta_[g] == pytest.approx(b, rel=2e-3)
        assert fit.c_[g] == pytest.approx(c, rel=1e-3)
        assert fit.loglik_[g] == pytest.approx(loglik, abs=1e-6)
    sbg = BdWRetention(c=1.0).fit(_published_curve())
    ratio = 2 * (fit.loglik_ - sbg.loglik_)
    assert ratio[0] < 3.84 < ratio[1]


@pytest.mark.parametrize("alpha,beta,c", [
    (0.7, 1.2, 0.6),   # churn falls with tenure (the Weibull-like users sBG extrapolates too high)
    (3.0, 2.0, 0.5),
    (1.5, 3.0, 1.6),   # churn rises with tenure (wear-out)
    (2.0, 5.0, 1.3),
])
def test_recovers_alpha_beta_c_on_simulated_users(alpha, beta, c):
    rng = np.random.default_rng(7)
    users, days = 1_000_000, 60
    alive = _simulate(alpha, beta, c, users, days, rng)
    fit = BdWRetention().fit(activity_curve(alive[None, :], np.full((1, days), float(users))))
    assert fit.converged_.all()
    assert fit.alpha_[0] == pytest.approx(alpha, rel=0.05)
    assert fit.beta_[0] == pytest.approx(beta, rel=0.05)
    assert fit.c_[0] == pytest.approx(c, rel=0.03)
    # The standard errors are honest: the truth lies within 3.5 of them (log scale).
    se = np.sqrt(np.diagonal(fit.cov_[0]))
    assert abs(np.log(fit.alpha_[0] / alpha)) < 3.5 * se[0]
    assert abs(np.log(fit.c_[0] / c)) < 3.5 * se[2]


def test_fits_many_groups_at_once_like_one_at_a_time():
    rng = np.random.default_rng(5)
    truths = [(0.7, 1.2, 0.6), (1.5, 3.0, 1.6), (0.3, 0.8, 1.0), (2.0, 0.6, 0.8), (0.9, 4.0, 2.2)]
    sizes = [10_000, 3_000, 20_000, 800, 5_000]
    alive = np.stack([_simulate(a, b, c, n, 20, rng) / n for (a, b, c), n in zip(truths, sizes)])
    at_risk = np.repeat(np.array(sizes, dtype=float)[:, None], 20, axis=1)
    together = BdWRetention().fit(activity_curve(alive * at_risk, at_risk))
    for g in range(len(truths)):
        alone = BdWRetention().fit(activity_curve(alive[g:g + 1] * at_risk[g:g + 1], at_risk[g:g + 1]))
        for attr in ("alpha_", "beta_", "c_", "loglik_"):
            assert getattr(together, attr)[g] == pytest.approx(getattr(alone, attr)[0], rel=1e-6), attr


def test_never_fits_worse_than_the_sbg_it_nests():
    # Groups from several laws (BdW, sBG, no heterogeneity at all): the free fit's likelihood is
    # at least sBG's on every one, which a single start does not guarantee (ridges towards c's bounds).
    rng = np.random.default_rng(3)
    params = np.stack([rng.uniform(0.3, 3, 200), rng.uniform(0.5, 6, 200), rng.uniform(0.4, 2.0, 200)], 1)
    alive = np.stack([_simulate(*p, 5_000, 45, rng) for p in params])
    curve = activity_curve(alive, np.full_like(alive, 5_000.0))
    bdw = BdWRetention().fit(curve)
    sbg = BdWRetention(c=1.0).fit(curve)
    assert bdw.converged_.all()
    assert np.all(bdw.loglik_ >= sbg.loglik_ - 1e-6)


def test_survival_is_the_beta_function_ratio_and_non_increasing():
    fit = BdWRetention().fit(_published_curve())
    s = fit.survival(3650)
    t = np.arange(3650, dtype=float)
    for g in range(2):
        a, b, c = fit.alpha_[g], fit.beta_[g], fit.c_[g]
        assert s[g, :40] == pytest.approx(beta_fn(a, b + t[:40] ** c) / beta_fn(a, b), rel=1e-10)
    assert np.all(s[:, 0] == 1.0)
    assert np.all(np.diff(s, axis=1) <= 0)
    assert np.isfinite(s).all()


def test_individual_churn_rises_with_tenure_for_c_above_1_and_falls_below():
    # A user with churn θ: 1 − (1 − θ)^(t^c − (t−1)^c) on day t.
    t = np.arange(1, 30, dtype=float)
    churn = {c: 1 - (1 - 0.2) ** (t**c - (t - 1) ** c) for c in (0.6, 1.0, 1.6)}
    assert np.all(np.diff(churn[1.6]) > 0)
    assert np.allclose(churn[1.0], 0.2)
    assert np.all(np.diff(churn[0.6]) < 0)


def test_jacobian_matches_finite_differences():
    fit = BdWRetention().fit(_published_curve())
    jac = fit.jacobian(30)
    eps = 1e-6
    for p, name in enumerate(("alpha", "beta", "c")):
        base = {"alpha": fit.alpha_, "beta": fit.beta_, "c": fit.c_}
        up = fit.survival(30, **{**base, name: base[name] * np.exp(eps)})
        down = fit.survival(30, **{**base, name: base[name] * np.exp(-eps)})
        assert np.allclose(jac[..., p], fit.base_[:, None] * (up - down) / (2 * eps), atol=1e-7), name


def test_params_report_alpha_beta_c():
    params = BdWRetention().fit(_published_curve()).params(1)
    assert {"alpha", "beta", "c"} <= set(params)
    assert params["c"] == pytest.approx(1.724, abs=2e-3)


def test_no_retention_after_day_zero_gives_a_zero_curve_not_nan():
    alive = np.array([[500.0, 0, 0, 0, 0, 0, 0]])
    fit = BdWRetention().fit(activity_curve(alive, np.full((1, 7), 500.0)))
    curve = fit.predict(30)
    assert np.isfinite(curve).all() and np.isfinite(fit.jacobian(30)).all()
    assert curve[0, 1:].max() < 1e-3
