"""Interval pieces shared by the models: realised-mean noise and the extrapolation allowance."""

import numpy as np
import pytest

from ltvcore.ltv import realised_variance, unobserved_share, widen, z_value


def test_widen_scales_only_the_projected_revenue_by_the_extrapolation_factor():
    ltv = np.array([[1.0, 2.0, 3.0, 5.0, 8.0]])
    last = np.array([1])                                   # days 0–1 observed: LTV 2 known
    z, sd = z_value(0.99), 0.4
    band = widen(ltv, np.zeros_like(ltv), np.zeros_like(ltv), last, z, sd)
    spread = sd * np.sqrt(np.maximum(np.log((np.arange(5) + 1.0) / 2.0), 0.0))
    projected = ltv - 2.0
    np.testing.assert_allclose(band.upper[0, 2:], (ltv + projected * np.expm1(z * spread))[0, 2:])
    np.testing.assert_allclose(band.lower[0, 2:],
                               (ltv - projected * (1 - np.exp(-z * spread)))[0, 2:])
    np.testing.assert_array_equal(band.lower[0, :2], ltv[0, :2])   # observed: no allowance
    np.testing.assert_array_equal(band.upper[0, :2], ltv[0, :2])


def test_widen_adds_half_widths_in_quadrature_and_keeps_bands_monotone():
    ltv = np.array([[1.0, 2.0, 3.0]])
    band = widen(ltv, np.array([[0.3, 0.4, 0.1]]), np.array([[0.3, 0.4, 0.1]]), np.array([2]),
                 2.0, 0.5)
    np.testing.assert_allclose(band.upper[0], [1.3, 2.4, 3.1])
    np.testing.assert_allclose(band.lower[0], [0.7, 1.6, 2.9])
    assert np.all(np.diff(band.lower) >= 0)


def test_realised_noise_is_per_user_spread_over_users_on_unobserved_user_days():
    ltv = np.array([[2.0, 4.0, 8.0]])
    var = realised_variance(ltv, np.array([1]), np.array([3.0]), np.array([100]))
    # Spread scaled by the LTV's growth past the observed span, never below the observed one.
    np.testing.assert_allclose(var[0], [9 / 100, 9 / 100, (3 * 2) ** 2 / 100])
    half_seen = realised_variance(ltv, np.array([1]), np.array([3.0]), np.array([100]),
                                  np.full((1, 3), 0.5))
    np.testing.assert_allclose(half_seen, var * 0.5)


def test_unobserved_share_counts_user_days_not_seen_and_users_not_fitted():
    at_risk = np.array([[10.0, 10.0, 5.0]])                  # half the users are 2 days old
    share = unobserved_share(at_risk, np.array([10]), np.array([10]), 4)
    np.testing.assert_allclose(share[0], [0.0, 0.0, 1 - 25 / 30, 1 - 25 / 40])
    # Users of cohorts too young to feed the fit stay unobserved.
    assert unobserved_share(at_risk, np.array([20]), np.array([10]), 4)[0, 0] == pytest.approx(0.5)
