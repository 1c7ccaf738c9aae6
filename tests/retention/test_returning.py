"""Retention of the users who return: a survival law fitted from day 1 on, at the day-1 level.

Checked against curves with a known answer: login data (a living user is active on a share
``π̄`` of days) over sBG and over Weibull lifetimes, where the law fitted from day 0 must read
the day-1 drop as churn.
"""

import numpy as np
import pytest
from scipy.special import betaln

from ltvcore.retention import BdWRetention, SBGRetention, activity_curve
from ltvcore.retention.returning import ReturningRetention

DAYS = 21
USERS = 1e6


def _curve(rate):
    rate = np.atleast_2d(rate)
    return activity_curve(rate * USERS, np.full(rate.shape, USERS))


def _sbg(alpha, beta, days):
    t = np.arange(days)
    return np.exp(betaln(alpha, beta + t) - betaln(alpha, beta))


def _login(survival, share):
    """Activity of users active on day 0 and then on ``share`` of the days they are alive."""
    rate = share * survival
    rate[0] = 1.0
    return rate


def test_on_survival_data_it_recovers_the_law_it_wraps():
    fit = ReturningRetention(SBGRetention()).fit(_curve(_sbg(0.8, 2.5, DAYS)))
    assert fit.inner.alpha_[0] == pytest.approx(0.8, rel=1e-3)
    assert fit.inner.beta_[0] == pytest.approx(2.5, rel=1e-3)
    assert fit.predict(365)[0] == pytest.approx(_sbg(0.8, 2.5, 365), rel=1e-3)


def test_on_login_data_it_recovers_survival_and_the_login_share_where_a_day_0_fit_cannot():
    truth = _login(_sbg(0.6, 4.0, 365), share=0.45)
    observed = _curve(truth[:DAYS])
    returning = ReturningRetention(SBGRetention()).fit(observed)
    assert returning.inner.alpha_[0] == pytest.approx(0.6, rel=1e-3)
    assert returning.inner.beta_[0] == pytest.approx(4.0, rel=1e-3)
    assert returning.predict(365)[0, 1:].sum() == pytest.approx(truth[1:].sum(), rel=1e-3)
    # From day 0, the drop to 45% reads as churn of most users behind a few loyal ones: a far
    # heavier tail than the truth's.
    from_day_0 = SBGRetention().fit(observed).predict(365)[0, 1:].sum()
    assert from_day_0 > 1.3 * truth[1:].sum()


def test_bdw_from_day_1_follows_weibull_lifetimes_on_login_data():
    t = np.arange(365)
    truth = _login(np.exp(-((t / 12.0) ** 0.5)), share=0.4)
    fit = ReturningRetention(BdWRetention()).fit(_curve(truth[:DAYS]))
    assert fit.inner.c_[0] == pytest.approx(0.5, abs=0.05)
    assert fit.predict(181)[0, 1:].sum() == pytest.approx(truth[1:181].sum(), rel=0.05)


def test_the_jacobian_is_the_derivative_of_the_prediction_in_the_wrapped_laws_parameters():
    fit = ReturningRetention(SBGRetention()).fit(_curve(_login(_sbg(0.7, 3.0, DAYS), share=0.5)))
    analytic = fit.jacobian(60)
    for k, name in enumerate(("alpha_", "beta_")):
        value = getattr(fit.inner, name).copy()
        step = 1e-6
        setattr(fit.inner, name, value * np.exp(step))
        up = fit.predict(60)
        setattr(fit.inner, name, value * np.exp(-step))
        down = fit.predict(60)
        setattr(fit.inner, name, value)
        assert analytic[..., k] == pytest.approx((up - down) / (2 * step), rel=1e-5, abs=1e-10)


def test_day_1_is_observed_and_day_0_kept_as_observed():
    truth = _login(_sbg(0.6, 4.0, DAYS), share=0.45)
    fit = ReturningRetention(SBGRetention()).fit(_curve(truth))
    assert fit.predict(DAYS)[0, :2] == pytest.approx(truth[:2])
    assert fit.params(0)["from_day"] == 1
