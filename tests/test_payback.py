"""p_payback against closed forms of the two-piece log-normal, degenerate bands, monotonicity."""

from __future__ import annotations

import numpy as np
import pytest

from ltvcore.ltv import CurveLTV
from ltvcore.payback import days_to_reach, payback_columns, payback_probability


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.99])
def test_the_band_is_reproduced_exactly(confidence):
    tail = (1 - confidence) / 2
    p = payback_probability(10.0, 4.0, 30.0, np.array([10.0, 30.0, 4.0]), confidence)
    assert p == pytest.approx([0.5, tail, 1 - tail], abs=1e-12)


def test_each_side_uses_its_own_spread():
    from scipy.stats import norm

    z = norm.ppf(0.995)
    s_above, s_below = np.log(3.0) / z, np.log(2.0) / z
    p = payback_probability(10.0, 5.0, 30.0, np.array([15.0, 7.0]), 0.99)
    assert p[0] == pytest.approx(norm.sf(np.log(1.5) / s_above))
    assert p[1] == pytest.approx(norm.cdf(np.log(10 / 7) / s_below))


def test_degenerate_bands():
    # zero width: the LTV is known
    assert payback_probability(10.0, 10.0, 10.0, np.array([9.9, 10.0, 10.1]), 0.99).tolist() \
        == [1.0, 1.0, 0.0]
    # no mass above the median: anything above it is out of reach
    assert payback_probability(10.0, 5.0, 10.0, 11.0, 0.99) == 0.0
    # lower bound 0: below the median only the 0.5 the band guarantees
    assert payback_probability(10.0, 0.0, 20.0, 3.0, 0.99) == pytest.approx(0.5)
    # ltv 0: the upper tail up to the upper bound, nothing above it
    assert payback_probability(0.0, 0.0, 3.0, np.array([2.0, 4.0]), 0.99) \
        == pytest.approx([0.005, 0.0])
    assert payback_probability(0.0, 0.0, 0.0, 1.0, 0.99) == 0.0
    # nothing to pay back; no spend
    assert payback_probability(1.0, 0.5, 2.0, 0.0, 0.99) == 1.0
    assert np.isnan(payback_probability(1.0, 0.5, 2.0, np.nan, 0.99))


def test_columns_are_non_decreasing_in_the_horizon_and_days_bracket_the_median():
    days = np.arange(1, 366)
    ltv = 2.0 * np.log1p(days / 30.0)[None, :]
    # a band that narrows late would lower P at a fixed threshold without the running maximum
    width = np.where(days < 200, 0.6, 0.1)[None, :] * ltv
    curve = CurveLTV(ltv, ltv - width, ltv + width)
    cols = payback_columns(curve, np.array([100.0]), np.array([300.0]), np.array([30, 90, 365]),
                           1.0, 0.99)
    p = cols["p_payback"][0]
    assert np.all(np.diff(p) >= 0) and 0 <= p[0] <= p[-1] <= 1
    threshold = 3.0  # 1.0 × 300 / 100
    first = int(np.argmax(ltv[0] >= threshold)) + 1
    assert cols["days"][0] == first
    assert cols["days_lower"][0] < first < cols["days_upper"][0]


def test_days_to_reach_is_empty_when_never_reached():
    curve = np.array([[0.1, 0.2, 0.3], [0.5, 1.0, 1.5]])
    out = days_to_reach(curve, np.array([1.0, 1.0]))
    assert np.isnan(out[0]) and out[1] == 2


def test_no_spend_leaves_the_cells_empty():
    curve = CurveLTV(np.ones((2, 3)), np.ones((2, 3)) * 0.5, np.ones((2, 3)) * 2)
    cols = payback_columns(curve, np.array([10.0, 10.0]), np.array([np.nan, 0.0]),
                           np.array([3]), 1.0, 0.9)
    assert all(np.isnan(v).all() for v in cols.values())
