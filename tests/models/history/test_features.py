"""--model history, signals: shapes and rates, so a model transfers across price levels."""

from dataclasses import replace

import numpy as np
import pytest

from ltvcore.models.curve import CurveModel
from ltvcore.models.history.features import GROUP_FEATURES, attribute_vocabulary, design, signals
from tests.models.history.simulated import with_user_revenue

pytest.importorskip("lightgbm")


def _signals(data, vocabulary=None):
    curve = CurveModel(extrapolation_sd=0.0).fit(data)
    return signals(data, curve.predict(365), curve.activity_.rate, vocabulary)


def test_a_price_change_moves_no_signal_and_no_forecast_ratio(generated, fitted):
    pricier = with_user_revenue(generated, generated.user_revenue * 7.0)
    before, after = _signals(generated), _signals(pricier)
    np.testing.assert_allclose(after.values, before.values, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(after.observed, before.observed * 7.0, rtol=1e-12)
    x_before, _, _ = design(before, fitted.trained_.grid)
    x_after, _, _ = design(after, fitted.trained_.grid)
    np.testing.assert_allclose(fitted.trained_.log_ratio(x_after), fitted.trained_.log_ratio(x_before),
                               rtol=1e-9)


def test_known_spend_enters_as_cost_per_install_against_revenue_so_far(generated):
    column = list(GROUP_FEATURES).index("cpi_vs_revenue")
    assert np.isnan(_signals(generated).values[:, column]).all()
    spend = generated.groups["users"].to_numpy() * 2.0  # 2.0 per install
    with_spend = replace(generated, groups=generated.groups.assign(spend=spend))
    sig = _signals(with_spend)
    np.testing.assert_allclose(sig.values[:, column], np.log(2.0 / sig.observed))


def test_only_attribute_values_several_training_groups_share_become_signals(generated):
    os_ = np.where(np.arange(generated.n_groups) % 2 == 0, "ios", "android")
    os_[0] = "web"  # one group alone: it could only memorise that group
    data = replace(generated, by=["campaign", "os"], groups=generated.groups.assign(os=os_))
    vocabulary = attribute_vocabulary(data, np.ones(data.n_groups, dtype=bool))
    assert vocabulary == {"os": ["android", "ios"]}  # and no campaign name
    values = _signals(data, vocabulary).values[:, len(GROUP_FEATURES):]
    np.testing.assert_array_equal(values, np.column_stack([os_ == "android", os_ == "ios"]).astype(float))
