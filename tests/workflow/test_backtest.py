"""Backtests: forecasts as of past dates, scored against what was realised afterwards."""

import numpy as np
import pandas as pd
import pytest

from ltvcore import sample
from ltvcore.cli import main
from ltvcore.request import ForecastRequest
from ltvcore.workflow.backtest import backtest, realised_ltv, schedule, summarise
from ltvcore.workflow.forecast import from_frames


def _inputs(events, installs):
    return from_frames(events.assign(event_date=events["event_date"].to_numpy().astype("datetime64[D]")),
                  installs.assign(install_date=installs["install_date"].to_numpy().astype("datetime64[D]")),
                  None, names={"events": "events.csv", "installs": "installs.csv"})


@pytest.fixture(scope="module")
def sim():
    full = sample.simulate(seed=9, install_days=20, n_campaigns=3, users_per_day=60, horizon_days=120)
    events, installs = sample.cut(full, full.last_install + pd.Timedelta(days=100))
    return full, _inputs(events, installs), events, installs


def test_realised_ltv_counts_only_matured_groups_and_days_before_the_horizon():
    events = pd.DataFrame({"user_id": ["a", "a", "a", "b"],
                           "event_date": pd.to_datetime(["2026-01-01", "2026-01-05", "2026-01-20", "2026-01-02"]),
                           "revenue": [1.0, 2.0, 4.0, 3.0]})
    installs = pd.DataFrame({"user_id": ["a", "b"], "install_date": pd.to_datetime(["2026-01-01", "2026-01-02"]),
                             "campaign": ["x", "x"]})
    table = realised_ltv(_inputs(events, installs), ["campaign"], "2026-01-02", [10, 30])
    ten = table[table["horizon_days"] == 10].iloc[0]
    assert ten["matured"] and ten["users"] == 2 and ten["actual"] == pytest.approx((1 + 2 + 3) / 2)
    thirty = table[table["horizon_days"] == 30].iloc[0]
    assert not thirty["matured"]  # data end on Jan 20: day 29 of either user is not yet seen


def test_forecasts_in_a_backtest_never_see_data_after_their_as_of(sim):
    full, inputs, events, installs = sim
    as_of = str((full.last_install + pd.Timedelta(days=6)).date())
    request = ForecastRequest(horizons=(30, 60))
    before = backtest(inputs, request, as_of_dates=[as_of], models=["curve"])
    later = events["event_date"] > pd.Timestamp(as_of)
    changed = events.copy()
    changed.loc[later, "revenue"] *= 3
    after = backtest(_inputs(changed, installs), request,
                     as_of_dates=[as_of], models=["curve"])
    pd.testing.assert_series_equal(before["ltv"], after["ltv"])
    pd.testing.assert_series_equal(before["ltv_upper"], after["ltv_upper"])
    assert not np.allclose(before["actual"], after["actual"])  # the realised side did change


def test_scores_each_model_on_checkpoints_and_horizons(sim):
    full, inputs, _, _ = sim
    dates = schedule(inputs, every=7, last=str((full.last_install + pd.Timedelta(days=10)).date()))
    rows = backtest(inputs, ForecastRequest(horizons=(90,)), as_of_dates=dates, models=["curve", "geometric"])
    summary = summarise(rows)
    assert set(summary["model"]) == {"curve", "geometric"}
    assert {30, 60, 90} <= set(summary["horizon_days"])
    assert summary.loc[summary["horizon_days"] == 30, "checkpoint"].all()
    assert np.isfinite(summary["mape"]).all()
    assert ((summary["coverage"] >= 0) & (summary["coverage"] <= 100)).all()


def test_backtest_cli_writes_csv_and_chart(tmp_path, capsys):
    sample.write_sample(tmp_path / "data", install_days=10, observed_days=70, n_campaigns=2,
                        users_per_day=40, seed=2)
    code = main(["backtest", "--events", str(tmp_path / "data/events.csv"), "--installs",
                 str(tmp_path / "data/installs.csv"), "--every", "5", "--horizons", "30,60",
                 "--out", str(tmp_path / "bt")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "bt/backtest.csv").exists() and (tmp_path / "bt/backtest.html").stat().st_size > 10_000
    assert "mape" in out and "curve" in out and "geometric" in out


def test_backtest_without_enough_follow_up_is_a_clear_error(tmp_path, capsys):
    sample.write_sample(tmp_path / "data", install_days=5, observed_days=10, n_campaigns=2,
                        users_per_day=40, seed=2)
    code = main(["backtest", "--events", str(tmp_path / "data/events.csv"), "--installs",
                 str(tmp_path / "data/installs.csv"), "--out", str(tmp_path / "bt")])
    assert code == 2
    assert "as_of_dates" in capsys.readouterr().err
