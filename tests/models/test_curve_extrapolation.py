"""The extrapolation spread a curve forecast widens its projected revenue by, per group."""

import numpy as np

from ltvcore.ltv import widen, z_value
from ltvcore.models.curve import EXTRAPOLATION_SD, extrapolation_sd_for
from ltvcore.retention import activity_curve


def test_each_group_gets_the_spread_of_its_own_kind_of_data():
    at_risk = np.full((2, 5), 100.0)
    # A game keeps 40% of its players on day 1; shoppers buy again the next day at 3%.
    active = np.array([[100, 40, 30, 25, 20], [100, 3, 2, 2, 1]], dtype=float)
    sd = extrapolation_sd_for(activity_curve(active, at_risk))
    np.testing.assert_array_equal(sd, [EXTRAPOLATION_SD["logins"], EXTRAPOLATION_SD["purchases"]])
    # the same verdict for a group alone, so shards of groups give each the same band
    alone = extrapolation_sd_for(activity_curve(active[1:], at_risk[1:]))
    assert alone[0] == EXTRAPOLATION_SD["purchases"]
    assert EXTRAPOLATION_SD["logins"] > EXTRAPOLATION_SD["purchases"]


def test_widen_takes_one_spread_per_group():
    ltv = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    last = np.array([0, 0])
    zero = np.zeros_like(ltv)
    band = widen(ltv, zero, zero, last, z_value(0.99), np.array([0.4, 0.2]))
    one = widen(ltv[:1], zero[:1], zero[:1], last[:1], z_value(0.99), 0.2)
    np.testing.assert_allclose(band.upper[1], one.upper[0])
    assert np.all(band.upper[0, 1:] > band.upper[1, 1:])
