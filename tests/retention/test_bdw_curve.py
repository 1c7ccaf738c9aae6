"""``--retention bdw``: the curve model with BdW retention, end to end on the sample generator."""

import numpy as np
import pandas as pd
import pytest

from ltvcore import sample
from ltvcore.errors import InputError
from ltvcore.models.curve import CurveModel
from ltvcore.request import RETENTIONS, ForecastRequest
from ltvcore.workflow.forecast import from_frames, run_forecast


@pytest.fixture(scope="module")
def inputs():
    sim = sample.simulate(seed=4, install_days=14, n_campaigns=4, users_per_day=80)
    as_of = sim.last_install + pd.Timedelta(days=6)
    events, installs = sample.cut(sim, as_of)
    return from_frames(events.assign(event_date=events["event_date"].to_numpy().astype("datetime64[D]")),
                       installs.assign(install_date=installs["install_date"].to_numpy().astype("datetime64[D]")),
                       sim.spend, names={"events": "events.csv", "installs": "installs.csv"})


@pytest.fixture(scope="module")
def bdw_run(inputs):
    return run_forecast(inputs, ForecastRequest(retention="bdw"))


def test_bdw_is_a_retention_choice_of_the_request_and_the_curve_model():
    assert "bdw" in RETENTIONS
    assert ForecastRequest(retention="bdw").retention == "bdw"
    with pytest.raises(InputError, match="retention.*ensemble, sbg, rational, bdw"):
        ForecastRequest(retention="weibull")


def test_forecast_runs_end_to_end_with_finite_non_decreasing_curves(bdw_run):
    curve = bdw_run.curve
    assert np.isfinite(curve[["ltv", "ltv_lower", "ltv_upper"]].to_numpy()).all()
    for _, group in curve.groupby("campaign"):
        for column in ("ltv", "ltv_lower", "ltv_upper"):
            assert np.all(np.diff(group[column].to_numpy()) >= 0), column
    f = bdw_run.forecast
    assert (f["ltv_lower"] <= f["ltv"]).all() and (f["ltv"] <= f["ltv_upper"]).all()
    assert set(f["model"]) == {"curve"}


def test_params_record_the_bdw_fit_and_its_assumption(bdw_run):
    for group in bdw_run.params["groups"]:
        models = group["models"]
        assert {"alpha", "beta", "c"} <= set(models["bdw"])
        assert "sbg" not in models and "rational" not in models
        assert models["curve"]["retention"] == "bdw"
    assert any(line.startswith("BdW:") for line in bdw_run.params["assumptions"])
    assert not any(line.startswith(("sBG:", "Rational:")) for line in bdw_run.params["assumptions"])


def test_observed_days_enter_as_observed_whatever_the_retention_law(inputs, bdw_run):
    sbg = run_forecast(inputs, ForecastRequest(retention="sbg")).curve
    observed = bdw_run.curve["day"] <= 6  # every campaign has seen days 0 … 6 by as-of
    assert np.allclose(bdw_run.curve.loc[observed, "ltv"], sbg.loc[observed, "ltv"], rtol=1e-12)


def test_the_default_ensemble_stays_the_mean_of_sbg_and_rational(inputs):
    from ltvcore.warehouse.model_data import cohort_data

    data = cohort_data(inputs, by=["campaign"], as_of=inputs.last_event, observe_days=7, window_days=None)
    model = CurveModel().fit(data)
    assert model.retention == "ensemble" and set(model.fits_) == {"sbg", "rational"}


def test_trigamma_matches_scipy_over_the_range_the_fit_meets():
    from scipy.special import polygamma

    from ltvcore.retention.bdw import trigamma

    z = np.exp(np.linspace(-9, 12, 4001))
    np.testing.assert_allclose(trigamma(z), polygamma(1, z), rtol=1e-10)
