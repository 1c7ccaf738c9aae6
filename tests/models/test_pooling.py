"""Partial pooling: each group borrows from the others as much as the groups agree.

Checked on normal means, where the empirical-Bayes answer has a closed form, then on BG/NBD
buyers: a week-old cohort of the same population as older ones takes its death rate from them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

from benchmarks import processes
from benchmarks.scenarios import cohorts
from ltvcore.models.bgnbd import BGNBDModel
from ltvcore.models.pooling import MIN_GROUPS, fit_pooled
from ltvcore.request import ForecastRequest
from ltvcore.workflow.forecast import from_frames


def normal_means(y: list[np.ndarray]):
    """Per-group log-likelihood of a mean θ_g with unit-variance observations ``y[g]``."""
    n = np.array([len(v) for v in y], float)
    total = np.array([v.sum() for v in y])
    sq = np.array([(v**2).sum() for v in y])

    def loglik(theta):
        t = theta[:, 0]
        return -0.5 * (sq - 2 * t * total + n * t**2), (total - n * t)[:, None]

    return loglik, n, total / n


def test_the_modes_are_the_closed_form_empirical_bayes_shrinkage():
    rng = np.random.default_rng(4)
    sizes = [3, 5, 8, 20, 50, 4, 10]
    y = [rng.normal(m, 1.0, k) for m, k in zip(rng.normal(1.0, 0.5, len(sizes)), sizes)]
    loglik, n, means = normal_means(y)
    fit = fit_pooled(loglik, np.zeros((len(y), 1)), bound=50.0)
    assert fit.mle[:, 0] == pytest.approx(means, abs=1e-5)

    def marginal(log_tau):
        var = np.exp(2 * log_tau) + 1 / n
        mu = np.sum(means / var) / np.sum(1 / var)
        return 0.5 * (np.sum(np.log(var) + (means - mu) ** 2 / var) + np.log(np.sum(1 / var)))  # REML

    tau = np.exp(minimize_scalar(marginal, bounds=(-4, 3), method="bounded").x)
    assert fit.spread[0] == pytest.approx(tau, rel=0.02)
    mu = fit.mean[0]
    expected = (n * means + mu / fit.spread[0] ** 2) / (n + 1 / fit.spread[0] ** 2)
    assert fit.params[:, 0] == pytest.approx(expected, abs=1e-4)


def test_groups_that_agree_are_pooled_and_groups_that_differ_keep_their_own_estimates():
    rng = np.random.default_rng(5)
    same = [rng.normal(2.0, 1.0, 30) for _ in range(8)]
    loglik, _, means = normal_means(same)
    pooled = fit_pooled(loglik, np.zeros((8, 1)), bound=50.0)
    assert np.ptp(pooled.params) < 0.2 * np.ptp(means)
    apart = [rng.normal(m, 1.0, 400) for m in (-6, -2, 0, 3, 7, 11, 15, 20)]
    loglik, _, means = normal_means(apart)
    kept = fit_pooled(loglik, np.zeros((8, 1)), bound=50.0)
    assert kept.params[:, 0] == pytest.approx(means, abs=0.01)


def test_fewer_groups_than_a_spread_needs_are_fitted_alone():
    rng = np.random.default_rng(6)
    loglik, _, means = normal_means([rng.normal(0, 1, 10) for _ in range(MIN_GROUPS - 1)])
    fit = fit_pooled(loglik, np.zeros((MIN_GROUPS - 1, 1)), bound=50.0)
    assert fit.params[:, 0] == pytest.approx(means, abs=1e-5)
    assert np.isinf(fit.spread).all()


@pytest.fixture(scope="module")
def cohorts_3_weeks_apart():
    """Six cohorts of one BG/NBD population, three weeks apart; the youngest seen for a week."""
    rng = np.random.default_rng(11)
    par = {"r": 0.6, "alpha": 15.0, "a": 0.8, "b": 4.0, "gg_p": 4.0, "gg_q": 4.0, "gg_gamma": 30.0}
    as_of = processes.START + np.timedelta64(5 * 21 + 6, "D")
    events, installs = zip(*(processes._campaign("bg_nbd", par, rng, f"w{w}",
                                                 processes.START + np.timedelta64(21 * w, "D"), 7,
                                                 3000, as_of) for w in range(6)))
    inputs = from_frames(pd.concat(events, ignore_index=True), pd.concat(installs, ignore_index=True),
                         None, names={"events": "events", "installs": "installs"})
    return cohorts(inputs, ForecastRequest(as_of=str(as_of))), processes.expected_ltv("bg_nbd", par, [365])[0]


def test_a_young_cohort_takes_the_death_rate_of_older_cohorts_of_its_population(cohorts_3_weeks_apart,
                                                                                 monkeypatch):
    data, truth = cohorts_3_weeks_apart
    youngest = int(np.argmin(data.last_day))
    pooled = BGNBDModel().fit(data)
    error = abs(pooled.predict(365).ltv[youngest, 364] / truth - 1)
    assert pooled.purchase_fit_.spread[2:].max() < 0.5  # a and b: the cohorts agree
    import ltvcore.models.bgnbd as bgnbd

    alone = bgnbd.fit_bgnbd
    monkeypatch.setattr(bgnbd, "fit_bgnbd", lambda *a: alone(*a, pool=False))
    unpooled = BGNBDModel().fit(data)
    error_alone = abs(unpooled.predict(365).ltv[youngest, 364] / truth - 1)
    assert error < 0.1
    assert error < error_alone
