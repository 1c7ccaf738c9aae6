"""sBG maximum likelihood: recovers known parameters and reproduces the published estimate."""

import numpy as np
import pytest

from ltvcore.retention import SBGRetention, activity_curve


def _simulate(alpha, beta, users, days, rng):
    theta = rng.beta(alpha, beta, users)
    lifetime = rng.geometric(theta)  # a user is alive on days t < lifetime
    alive = np.array([(lifetime > t).sum() for t in range(days)], dtype=float)
    return alive


@pytest.mark.parametrize("alpha,beta", [(0.7, 1.2), (1.5, 3.0), (0.3, 0.8), (1.0, 2.5)])
def test_recovers_alpha_beta_within_5_percent_on_simulated_users(alpha, beta):
    rng = np.random.default_rng(11)
    alive = _simulate(alpha, beta, 40_000, 30, rng)
    curve = activity_curve(alive[None, :], np.full((1, 30), alive[0]))
    fit = SBGRetention().fit(curve)
    assert fit.converged_.all()
    assert fit.alpha_[0] == pytest.approx(alpha, rel=0.05)
    assert fit.beta_[0] == pytest.approx(beta, rel=0.05)


def test_fits_many_groups_at_once_like_one_at_a_time():
    rng = np.random.default_rng(5)
    truths = [(0.7, 1.2), (1.5, 3.0), (0.3, 0.8)]
    alive = np.stack([_simulate(a, b, 10_000, 15, rng) for a, b in truths])
    together = SBGRetention().fit(activity_curve(alive, np.full_like(alive, 10_000)))
    for g in range(len(truths)):
        alone = SBGRetention().fit(activity_curve(alive[g:g + 1], np.full((1, 15), 10_000.0)))
        assert together.alpha_[g] == pytest.approx(alone.alpha_[0], rel=1e-6)
        assert together.beta_[g] == pytest.approx(alone.beta_[0], rel=1e-6)


def test_reproduces_fader_hardie_regular_customers_estimate():
    # "How to project customer retention" (2007): regular segment, 7 periods → α=0.704, β=1.182.
    survivors = np.array([1000, 631, 468, 382, 326, 289, 262, 241], dtype=float)
    fit = SBGRetention().fit(activity_curve(survivors[None, :], np.full((1, 8), 1000.0)))
    assert fit.alpha_[0] == pytest.approx(0.704, abs=5e-4)
    assert fit.beta_[0] == pytest.approx(1.182, abs=5e-4)


def test_survival_follows_the_recursion_and_is_non_increasing():
    survivors = np.array([1000, 631, 468, 382, 326, 289, 262, 241], dtype=float)
    fit = SBGRetention().fit(activity_curve(survivors[None, :], np.full((1, 8), 1000.0)))
    s = fit.survival(50)[0]
    a, b = fit.alpha_[0], fit.beta_[0]
    assert s[0] == 1
    assert s[1] == pytest.approx(b / (a + b))
    assert s[5] == pytest.approx(s[4] * (b + 4) / (a + b + 4))
    assert np.all(np.diff(s) <= 0)


def test_jacobian_matches_finite_differences():
    survivors = np.array([1000, 631, 468, 382, 326, 289, 262, 241], dtype=float)
    fit = SBGRetention().fit(activity_curve(survivors[None, :], np.full((1, 8), 1000.0)))
    jac = fit.jacobian(20)[0]
    eps = 1e-6
    a, b = fit.alpha_.copy(), fit.beta_.copy()
    up = fit.survival(20, alpha=a * np.exp(eps))[0]
    down = fit.survival(20, alpha=a * np.exp(-eps))[0]
    assert np.allclose(jac[:, 0], (up - down) / (2 * eps), atol=1e-6)
    up = fit.survival(20, beta=b * np.exp(eps))[0]
    down = fit.survival(20, beta=b * np.exp(-eps))[0]
    assert np.allclose(jac[:, 1], (up - down) / (2 * eps), atol=1e-6)


def test_no_retention_after_day_zero_gives_a_zero_curve_not_nan():
    alive = np.array([[500.0, 0, 0, 0, 0, 0, 0]])
    fit = SBGRetention().fit(activity_curve(alive, np.full((1, 7), 500.0)))
    curve = fit.predict(30)
    assert np.isfinite(curve).all()
    assert curve[0, 1:].max() < 1e-3
