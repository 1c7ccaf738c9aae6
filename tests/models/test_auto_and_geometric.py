"""--model geometric (the old baseline) and --model auto (holdout choice among the retention fits, recorded)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ltvcore import sample
from ltvcore.data.cohorts import truncate
from ltvcore.models import AUTO_CANDIDATES, build_model
from ltvcore.models.auto import AutoModel
from ltvcore.request import ForecastRequest
from ltvcore.retention import activity_curve
from ltvcore.retention.geometric import GeometricRetention
from ltvcore.workflow.forecast import from_frames, run_forecast


@pytest.fixture(scope="module")
def inputs():
    sim = sample.simulate(seed=6, install_days=10, n_campaigns=4, users_per_day=80)
    as_of = sim.last_install + pd.Timedelta(days=13)
    events, installs = sample.cut(sim, as_of)
    return from_frames(events.assign(event_date=events["event_date"].to_numpy().astype("datetime64[D]")),
                  installs.assign(install_date=installs["install_date"].to_numpy().astype("datetime64[D]")),
                  None, names={"events": "events.csv", "installs": "installs.csv"})


def test_geometric_retention_recovers_a_constant_daily_ratio():
    t = np.arange(30)
    rate = np.r_[1.0, 0.4 * 0.93 ** t[:-1]]
    fit = GeometricRetention().fit(activity_curve(rate[None, :] * 1000, np.full((1, 30), 1000.0)))
    assert fit.ratio_[0] == pytest.approx(0.93, rel=1e-6)
    assert fit.level_[0] == pytest.approx(0.4, rel=1e-6)
    # The LTV sum is the truncated geometric series ARPU·R(1)·(1 − r^(H−1))/(1 − r).
    assert fit.predict(366)[0, 1:].sum() == pytest.approx(0.4 * (1 - 0.93**365) / (1 - 0.93), rel=1e-9)


def test_geometric_model_is_labelled_and_records_r(inputs):
    result = run_forecast(inputs, ForecastRequest(model="geometric"))
    assert set(result.forecast["model"]) == {"geometric"}
    assert "r" in result.params["groups"][0]["models"]["geometric"]


def test_auto_records_candidates_scores_weights_and_choice(inputs):
    result = run_forecast(inputs, ForecastRequest(model="auto"))
    selection = result.params["model_selection"]
    assert set(selection["scores"]) <= set(AUTO_CANDIDATES)
    weights = selection["weights"]
    assert sum(weights.values()) == pytest.approx(1.0)
    assert selection["choice"] == max(weights, key=weights.get)
    assert selection["choice"] in selection["why"]
    # Login data: the retention fits compete on the activity they project; the one with the
    # lowest score wins most often over resampled groups.
    retention = selection["retention_scores"]
    assert retention and set(weights) <= set(retention)
    assert weights[min(retention, key=retention.get)] > 0
    assert set(result.forecast["model"]) == {"curve"}
    models = result.params["groups"][0]["models"]
    assert models["curve"]["retention"] == (selection["choice"].partition(":")[2] or "ensemble")
    if len(weights) > 1:
        assert models["stack"] == {k: round(v, 4) for k, v in
                                   sorted(weights.items(), key=lambda kv: -kv[1])}
        assert "combines them" in selection["why"]


def _data(inputs):
    from ltvcore.warehouse.model_data import cohort_data

    return cohort_data(inputs, by=["campaign"], as_of=inputs.last_event, observe_days=7, window_days=None)


def test_auto_fits_retention_from_day_1_only_on_login_data(inputs):
    data = _data(inputs)
    login = AutoModel(candidates=("curve", "curve:sbg-d1")).fit(data)
    assert login.day1_rate_ >= 0.1
    assert set(login.retention_scores_) == {"curve", "curve:sbg-d1"}
    # Purchase data: a day-1 rate of a few percent. The same data with day-1 activity scarce.
    active = data.active.copy()
    active[:, 1] = np.round(0.03 * data.at_risk[:, 1])
    purchase = AutoModel(candidates=("curve", "curve:sbg-d1")).fit(replace(data, active=active))
    assert purchase.considered_ == ("curve",)
    assert purchase.retention_scores_ == {}
    assert purchase.choice_ == "curve"


def test_on_login_data_only_the_retention_fits_compete(inputs):
    # the LTV holdout of a few payers over a few days is too noisy to choose btyd by there
    model = AutoModel(candidates=("curve", "curve:sbg", "btyd:map")).fit(_data(inputs))
    assert model.login_data_
    assert model.considered_ == ("curve", "curve:sbg")
    assert set(model.weights_) <= {"curve", "curve:sbg"}


def test_auto_candidates_include_the_bayesian_model_by_its_map_fit_when_pymc_is_installed():
    pytest.importorskip("pymc")
    assert "btyd:map" in AUTO_CANDIDATES
    model = build_model("btyd:map")
    assert (model.name, model.method) == ("btyd", "map")


def test_auto_holdout_scores_the_days_after_the_split(inputs):
    data = _data(inputs)
    model = AutoModel().fit(data)
    assert model.split_day_ == int(np.median(data.last_day)) // 2
    early = truncate(data, model.split_day_)
    assert early.last_day.max() == model.split_day_
    assert (early.user_day <= model.split_day_).all()


def test_btyd_without_pymc_is_a_clear_error_naming_the_extra(monkeypatch):
    import importlib.util

    from ltvcore.errors import InputError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pymc" else real(name, *a))
    with pytest.raises(InputError, match=r"needs PyMC.*ltv-forecast\[bayes\]"):
        build_model("btyd")
