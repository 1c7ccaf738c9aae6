"""--model calibrated: learns from matured groups; without enough of them it says so and falls back."""

import numpy as np
import pandas as pd

from ltvcore import sample
from ltvcore.models import AUTO_CANDIDATES
from ltvcore.models.registry import AUTO_LEARNERS
from ltvcore.request import ForecastRequest
from ltvcore.workflow.forecast import Inputs, from_frames, run_forecast


def _inputs(history_campaigns: int) -> Inputs:
    now = sample.simulate(seed=21, install_days=3, n_campaigns=4, users_per_day=300)
    as_of = now.last_install + pd.Timedelta(days=6)
    events, installs = sample.cut(now, as_of)
    if history_campaigns:
        past = sample.simulate(seed=22, start="2025-06-01", install_days=3,
                               n_campaigns=history_campaigns, users_per_day=300, horizon_days=200)
        old_events, old_installs = sample.cut(past, as_of)
        events = pd.concat([old_events.assign(user_id="h" + old_events["user_id"]), events])
        installs = pd.concat([old_installs.assign(user_id="h" + old_installs["user_id"],
                                                  campaign=old_installs["campaign"] + "_old"), installs])
    days = events["event_date"].to_numpy().astype("datetime64[D]")
    return from_frames(events.assign(event_date=days).reset_index(drop=True),
                  installs.assign(install_date=installs["install_date"].to_numpy().astype("datetime64[D]")).reset_index(drop=True),
                  None, names={"events": "events.csv", "installs": "installs.csv"})


def test_with_matured_history_it_calibrates_and_records_leave_one_out_errors():
    result = run_forecast(_inputs(12), ForecastRequest(model="calibrated", horizons=(30, 90, 180)))
    selection = result.params["model_selection"]
    assert set(selection["horizons"]) == {"30", "90", "180"}
    for h in ("90", "180"):
        info = selection["horizons"][h]
        assert info["groups"] >= 8
        assert info["loo_mape_calibrated"] >= 0 and info["loo_mape_base"] >= 0
    assert set(result.forecast["model"]) == {"calibrated"}
    f = result.forecast
    assert np.isfinite(f[["ltv", "ltv_lower", "ltv_upper"]].to_numpy()).all()
    assert (f["ltv_lower"] <= f["ltv"]).all() and (f["ltv"] <= f["ltv_upper"]).all()
    for _, group in result.curve.groupby("campaign"):
        assert (np.diff(group["ltv"].to_numpy()) >= 0).all()


def test_without_history_it_falls_back_to_curve_visibly():
    inputs = _inputs(0)
    calibrated = run_forecast(inputs, ForecastRequest(model="calibrated", horizons=(90, 180)))
    curve = run_forecast(inputs, ForecastRequest(model="curve", horizons=(90, 180)))
    assert set(calibrated.forecast["model"]) == {"curve"}
    assert any("calibrated: only 0 group(s) have reached day 90" in w for w in calibrated.warnings)
    assert calibrated.params["model_selection"]["horizons"] == {}
    np.testing.assert_allclose(calibrated.forecast["ltv"], curve.forecast["ltv"])


def test_auto_chooses_by_backtest_when_history_exists():
    result = run_forecast(_inputs(12), ForecastRequest(model="auto", horizons=(30, 90, 180)))
    selection = result.params["model_selection"]
    backtest = selection["backtest"]
    assert backtest["horizons"] == [30, 90, 180] and min(backtest["groups"].values()) >= 8
    assert set(backtest["mape"]) == {*AUTO_CANDIDATES, *AUTO_LEARNERS, "calibrated"}
    assert selection["choice"] == min(backtest["mape"], key=backtest["mape"].get)
    assert "backtest" in selection["method"]
    assert set(result.forecast["model"]) == {selection["choice"].split(":")[0]}
