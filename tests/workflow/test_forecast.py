"""The forecast step on synthetic data: shape of the outputs, no leakage past as-of, ROAS, segments."""

import numpy as np
import pandas as pd
import pytest

from ltvcore import sample
from ltvcore.request import ForecastRequest
from ltvcore.workflow.forecast import from_frames, run_forecast


@pytest.fixture(scope="module")
def sim():
    return sample.simulate(seed=4, install_days=14, n_campaigns=5, users_per_day=80)


def _inputs(sim, events=None):
    events = sim.events if events is None else events
    return from_frames(events.assign(event_date=events["event_date"].to_numpy().astype("datetime64[D]")),
                  installs=sim.installs.assign(
                      install_date=sim.installs["install_date"].to_numpy().astype("datetime64[D]")),
                  spend=sim.spend, names={"events": "events.csv", "installs": "installs.csv"})


def _as_of(sim, observed=7):
    return str((sim.last_install + pd.Timedelta(days=observed - 1)).date())


def test_forecast_has_one_row_per_group_and_horizon_with_contract_columns(sim):
    result = run_forecast(_inputs(sim), ForecastRequest(as_of=_as_of(sim)))
    f = result.forecast
    # exactly the interface's columns: anything else a run knows goes to params.json
    assert list(f.columns) == ["campaign", "horizon_days", "users", "ltv", "ltv_lower",
                               "ltv_upper", "model", "spend", "roas", "roas_lower", "roas_upper",
                               "p_payback"]
    assert len(f) == 5 * 4
    assert f.groupby("campaign")["horizon_days"].apply(list).map(lambda h: h == [30, 90, 180, 365]).all()
    numeric = f[["ltv", "ltv_lower", "ltv_upper"]].to_numpy()
    assert np.isfinite(numeric).all()
    assert (f["ltv_lower"] <= f["ltv"]).all() and (f["ltv"] <= f["ltv_upper"]).all()


def test_days_to_payback_are_in_params_and_match_the_daily_curve(sim):
    result = run_forecast(_inputs(sim), ForecastRequest(as_of=_as_of(sim)))
    users = result.forecast.drop_duplicates("campaign").set_index("campaign")
    for entry in result.params["groups"]:
        campaign = entry["key"]["campaign"]
        payback = entry["payback"]
        assert payback["target_roas"] == 1.0
        daily = result.curve[result.curve["campaign"] == campaign]["ltv"].to_numpy()
        roas = daily * users.loc[campaign, "users"] / users.loc[campaign, "spend"]
        reached = np.flatnonzero(roas >= 1.0)
        assert payback["days"] == (int(reached[0]) + 1 if reached.size else None)
        if payback["days"] is not None and payback["days_lower"] is not None:
            assert payback["days_lower"] <= payback["days"]


def test_curve_is_cumulative_and_non_decreasing_for_every_group(sim):
    result = run_forecast(_inputs(sim), ForecastRequest(as_of=_as_of(sim)))
    curve = result.curve
    assert list(curve.columns) == ["campaign", "day", "ltv", "ltv_lower", "ltv_upper"]
    for _, group in curve.groupby("campaign"):
        assert list(group["day"]) == list(range(365))
        for column in ("ltv", "ltv_lower", "ltv_upper"):
            assert (np.diff(group[column].to_numpy()) >= 0).all()
    # forecast.csv at horizon H equals curve.csv at day H-1
    merged = result.forecast.merge(curve.assign(horizon_days=curve["day"] + 1), on=["campaign", "horizon_days"])
    assert np.allclose(merged["ltv_x"], merged["ltv_y"])


def test_data_after_as_of_cannot_change_the_forecast(sim):
    as_of = _as_of(sim)
    baseline = run_forecast(_inputs(sim), ForecastRequest(as_of=as_of))
    later = sim.events["event_date"] > pd.Timestamp(as_of)
    assert later.any()
    perturbed = sim.events.copy()
    perturbed.loc[later, "revenue"] = perturbed.loc[later, "revenue"] * 50 + 3.0
    extra = perturbed[later].head(500).copy()
    perturbed = pd.concat([perturbed, extra], ignore_index=True)
    changed = run_forecast(_inputs(sim, perturbed), ForecastRequest(as_of=as_of))
    pd.testing.assert_frame_equal(baseline.forecast, changed.forecast)
    pd.testing.assert_frame_equal(baseline.curve, changed.curve)


def test_roas_is_ltv_times_users_over_spend(sim):
    f = run_forecast(_inputs(sim), ForecastRequest(as_of=_as_of(sim))).forecast
    paid = f[f["spend"] > 0]
    assert np.allclose(paid["roas"], paid["ltv"] * paid["users"] / paid["spend"])
    assert np.allclose(paid["roas_upper"], paid["ltv_upper"] * paid["users"] / paid["spend"])


def test_segments_through_by(sim):
    result = run_forecast(_inputs(sim), ForecastRequest(as_of=_as_of(sim), by=("campaign", "os")))
    f = result.forecast
    assert list(f.columns[:2]) == ["campaign", "os"]
    assert "roas" not in f.columns
    assert any("ROAS" in w for w in result.warnings)
    users = f[f["horizon_days"] == 30].groupby("campaign")["users"].sum()
    by_campaign = run_forecast(_inputs(sim), ForecastRequest(as_of=_as_of(sim))).forecast
    assert users.to_dict() == by_campaign[by_campaign["horizon_days"] == 30].set_index("campaign")["users"].to_dict()


def test_params_record_both_fits_and_arpu(sim):
    params = run_forecast(_inputs(sim), ForecastRequest(as_of=_as_of(sim))).params
    group = params["groups"][0]
    assert set(group["key"]) == {"campaign"}
    assert {"alpha", "beta"} <= set(group["models"]["sbg"])
    assert {"a", "b", "c", "d"} <= set(group["models"]["rational"])
    assert group["models"]["arpu"]["arpu"] >= 0


@pytest.mark.parametrize("retention", ["sbg", "rational"])
def test_single_fit_interval_is_inside_the_ensemble_union(sim, retention):
    as_of = _as_of(sim)
    one = run_forecast(_inputs(sim), ForecastRequest(as_of=as_of, retention=retention)).forecast
    both = run_forecast(_inputs(sim), ForecastRequest(as_of=as_of)).forecast
    assert (both["ltv_lower"] <= one["ltv_lower"] + 1e-12).all()
    assert (both["ltv_upper"] >= one["ltv_upper"] - 1e-12).all()
