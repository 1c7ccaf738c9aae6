"""--model bgnbd: BG/NBD + Gamma-Gamma, checked against the published CDNOW estimates, then
against simulated buyers with known parameters."""

import numpy as np
import pandas as pd
import pytest

from benchmarks import processes
from benchmarks.scenarios import cohorts
from ltvcore.models.bgnbd import (
    BGNBDModel,
    bgnbd_loglik,
    conditional_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_loglik,
)
from ltvcore.request import ForecastRequest
from ltvcore.workflow.forecast import run_forecast
from tests.models.support import DATA


@pytest.fixture(scope="module")
def cdnow():
    return pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")


def test_reproduces_the_published_bgnbd_estimates_on_cdnow(cdnow):
    rows = cdnow.groupby(["x", "t_x", "T"]).size().reset_index(name="n")
    x, tx, age = (rows[c].to_numpy(float) for c in ("x", "t_x", "T"))
    fit = fit_bgnbd(np.zeros(len(rows), int), x, tx, age, rows["n"].to_numpy(float), 1)
    theta, converged = fit.params, fit.converged
    assert converged
    # Fader, Hardie & Lee 2005, Table 1: r = 0.243, α = 4.414, a = 0.793, b = 2.426, LL = −9582.4.
    assert np.exp(theta[0]) == pytest.approx([0.243, 4.414, 0.793, 2.426], abs=6e-4)
    loglik = bgnbd_loglik(np.repeat(theta, len(rows), axis=0), x, tx, age)
    assert float(loglik @ rows["n"]) == pytest.approx(-9582.4, abs=0.05)
    # Their worked example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks.
    assert conditional_purchases(theta, [2], [30.43], [38.86], [[39.0]])[0, 0] == pytest.approx(1.226, abs=6e-4)


def test_reproduces_the_published_gamma_gamma_estimates_on_cdnow(cdnow):
    buyers = cdnow[cdnow["x"] > 0]
    fit = fit_gamma_gamma(np.zeros(len(buyers), int), buyers["x"].to_numpy(float),
                          buyers["zbar"].to_numpy(float), 1)
    theta, converged = fit.params, fit.converged
    assert converged
    p, q, gamma = np.exp(theta[0, 0]), 1 + np.exp(theta[0, 1]), np.exp(theta[0, 2])
    # Fader, Hardie & Lee 2005 ("RFM and CLV"): p = 6.25, q = 3.74, γ = 15.44.
    assert (p, q, gamma) == pytest.approx((6.25, 3.74, 15.44), abs=0.01)


@pytest.mark.parametrize("loglik, width", [(bgnbd_loglik, 4), (gamma_gamma_loglik, 3)])
def test_gradients_are_the_derivatives_of_the_likelihoods(loglik, width):
    rng = np.random.default_rng(0)
    theta = rng.normal(0, 0.5, (5, width))
    x = np.array([0.0, 1, 2, 5, 9])
    second = np.array([0.0, 3, 10, 20, 40]) if width == 4 else np.array([1.0, 4, 20, 7, 3])
    args = (x, second, np.full(5, 50.0)) if width == 4 else (np.maximum(x, 1), second)
    _, grad = loglik(theta, *args, grad=True)
    for k in range(width):
        step = np.zeros(width)
        step[k] = 1e-6
        numeric = (loglik(theta + step, *args) - loglik(theta - step, *args)) / 2e-6
        assert grad[:, k] == pytest.approx(numeric, rel=1e-5, abs=1e-7)


@pytest.fixture(scope="module")
def simulated():
    return processes.simulate("bg_nbd", seed=3, n_campaigns=3, users=6000, observed=84)


def test_forecasts_simulated_bgnbd_buyers_within_a_few_percent_of_their_expected_ltv(simulated):
    data = cohorts(simulated.inputs, ForecastRequest(as_of=simulated.as_of))
    ltv = BGNBDModel().fit(data).predict(365)
    expected = (simulated.expected.pivot(index="campaign", columns="horizon_days", values="ltv")
                .reindex(data.groups["campaign"]))
    ratio = ltv.ltv[:, [179, 364]] / expected[[180, 365]].to_numpy()
    # 6,000 buyers a campaign, 84 days seen, 365 forecast: the death process is the least
    # identified part, and it sets the tail.
    assert np.abs(ratio - 1).mean() < 0.06
    assert np.abs(ratio - 1).max() < 0.12
    assert (ltv.lower[:, 364] < expected[365].to_numpy()).all()
    assert (expected[365].to_numpy() < ltv.upper[:, 364]).all()


def test_runs_as_a_model_and_records_its_parameters(simulated):
    result = run_forecast(simulated.inputs, ForecastRequest(as_of=simulated.as_of, model="bgnbd"))
    assert set(result.forecast["model"]) == {"bgnbd"}
    recorded = result.params["groups"][0]["models"]
    assert set(recorded["bgnbd"]) >= {"r", "alpha", "a", "b"}
    assert recorded["gamma_gamma"]["q"] > 1
    assert (result.forecast["ltv_lower"] <= result.forecast["ltv"]).all()
