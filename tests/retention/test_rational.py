"""Rational retention d / (b·t^a + c): recovers its parameters on noiseless data."""

import numpy as np
import pytest

from ltvcore.retention import RationalRetention, activity_curve


def _curve(d, b, a, days):
    t = np.arange(days, dtype=float)
    rate = np.r_[1.0, d / (b * t[1:] ** a + 1.0)]
    return rate


@pytest.mark.parametrize("d,b,a", [(0.5, 0.8, 0.7), (0.9, 2.0, 0.4), (0.3, 0.2, 1.3)])
def test_recovers_parameters_on_noiseless_data(d, b, a):
    rate = _curve(d, b, a, 30)
    fit = RationalRetention().fit(activity_curve(rate[None, :] * 1000, np.full((1, 30), 1000.0)))
    assert fit.converged_.all()
    assert fit.d_[0] == pytest.approx(d, rel=1e-4)
    assert fit.b_[0] == pytest.approx(b, rel=1e-4)
    assert fit.a_[0] == pytest.approx(a, rel=1e-4)


def test_scale_invariance_is_resolved_by_fixing_c_at_one():
    # d/(b t^a + c) with (d, b, c) = (1.0, 1.6, 2.0) is the same curve as (0.5, 0.8, 1.0).
    t = np.arange(1, 20, dtype=float)
    rate = np.r_[1.0, 1.0 / (1.6 * t**0.7 + 2.0)]
    fit = RationalRetention().fit(activity_curve(rate[None, :], np.ones((1, 20))))
    assert fit.params(0)["c"] == 1.0
    assert fit.d_[0] == pytest.approx(0.5, rel=1e-4)
    assert fit.b_[0] == pytest.approx(0.8, rel=1e-4)


def test_many_groups_at_once_and_predictions_non_increasing():
    truths = [(0.5, 0.8, 0.7), (0.9, 2.0, 0.4), (0.3, 0.2, 1.3)]
    rates = np.stack([_curve(*p, 25) for p in truths])
    fit = RationalRetention().fit(activity_curve(rates * 1000, np.full_like(rates, 1000.0)))
    assert np.allclose(fit.d_, [p[0] for p in truths], rtol=1e-4)
    predicted = fit.predict(365)
    assert np.all(np.diff(predicted[:, 1:], axis=1) <= 1e-15)


def test_jacobian_matches_finite_differences():
    rate = _curve(0.5, 0.8, 0.7, 20) + np.r_[0, 0.01 * np.sin(np.arange(1, 20))]
    fit = RationalRetention().fit(activity_curve(rate[None, :] * 1000, np.full((1, 20), 1000.0)))
    jac = fit.jacobian(40)[0]
    base = fit.theta_.copy()
    for p in range(3):
        eps = np.zeros_like(base)
        eps[:, p] = 1e-6
        fit.theta_ = base + eps
        up = fit.predict(40)[0]
        fit.theta_ = base - eps
        down = fit.predict(40)[0]
        assert np.allclose(jac[:, p], (up - down) / 2e-6, atol=1e-6)
    fit.theta_ = base


def test_noisy_data_gives_positive_finite_uncertainty():
    rng = np.random.default_rng(0)
    rate = _curve(0.5, 0.8, 0.7, 20)
    noisy = np.clip(rate + rng.normal(0, 0.01, 20), 0, 1)
    noisy[0] = 1.0
    fit = RationalRetention().fit(activity_curve(noisy[None, :] * 1000, np.full((1, 20), 1000.0)))
    se = np.sqrt(np.diagonal(fit.cov_[0]))
    assert np.isfinite(se).all() and (se > 0).all()
