"""Interval pieces shared by the models: the mean's sampling noise and the extrapolation allowance."""

import numpy as np

from ltvcore.ltv import sampling_variance, widen, z_value


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


def test_sampling_noise_is_per_user_spread_over_users_carried_by_the_ltvs_growth():
    ltv = np.array([[1.0, 4.0, 8.0]])
    var = sampling_variance(ltv, np.array([1]), np.array([3.0]), np.array([100]))
    # In proportion past the observed span (day 1), by the square root before it.
    np.testing.assert_allclose(var[0], [9 * 0.25 / 100, 9 / 100, (3 * 2) ** 2 / 100])


def test_sampling_noise_counts_observed_days_so_a_reached_horizon_keeps_a_band():
    ltv = np.array([[2.0, 4.0, 8.0]])
    last = np.array([2])                                       # every day observed
    var = sampling_variance(ltv, last, np.array([3.0]), np.array([100]))
    assert np.all(var > 0)
    # Twice the users, half the variance: it is the noise of a mean.
    np.testing.assert_allclose(sampling_variance(ltv, last, np.array([3.0]), np.array([200])),
                               var / 2)
