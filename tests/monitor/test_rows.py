"""monitor.csv: one row per past run × group × checkpoint reached; forecasts as published,
actuals as realised, scored as the backtest scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcore.monitor.scoring import CHECKPOINTS, FIXED_COLUMNS, group_columns, summary
from ltvcore.workflow.artifacts import read_output_csv
from ltvcore.workflow.backtest import summarise

CONTRACT = ["run_id", "as_of", "model", "campaign", "horizon_days", "users", "forecast", "lower",
            "upper", "actual", "error_pct", "covered"]


def test_has_the_contract_columns_in_order(rows):
    assert set(CONTRACT) <= set(rows.columns)
    assert list(rows.columns) == ["run_id", "as_of", "model", "model_version", "by", "campaign",
                                  "os", "horizon_days", "requested", "users", "forecast", "lower",
                                  "upper", "actual", "error_pct", "covered"]


def test_group_columns_of_every_run_are_kept_blank_where_a_run_did_not_group_by_them(world, rows):
    by_os = rows[rows["run_id"] == world.runs["early_by_os"]]
    assert (by_os["by"] == "campaign,os").all() and (by_os["os"] != "").all()
    pairs = world.installs()[["campaign", "os"]].drop_duplicates()
    assert len(by_os.drop_duplicates(["campaign", "os"])) == len(pairs)
    others = rows[rows["run_id"] != world.runs["early_by_os"]]
    assert (others["by"] == "campaign").all() and (others["os"] == "").all()


def test_one_row_per_run_group_and_checkpoint_reached(world, rows):
    assert not rows.duplicated(["run_id", "campaign", "os", "horizon_days"]).any()
    campaigns = sorted(world.installs()["campaign"].unique())
    end = pd.Timestamp(world.data_end)
    for name in ("early_curve", "early_geometric", "late_curve"):
        mine = rows[rows["run_id"] == world.runs[name]]
        as_of = pd.Timestamp(mine["as_of"].iat[0])
        horizons = (30, 90, 180) if name == "late_curve" else (30, 90)
        published = sorted(h for h in set(CHECKPOINTS) | set(horizons) if h <= max(horizons))
        # Reached: the group's youngest users (installed on as-of) observed H days by the end.
        reached = [h for h in published if as_of + pd.Timedelta(days=h - 1) <= end]
        assert sorted(mine["horizon_days"].unique()) == reached
        assert sorted(mine["campaign"].unique()) == campaigns
    late = rows[rows["run_id"] == world.runs["late_curve"]]
    assert 180 not in set(late["horizon_days"])  # requested, but not reached by the data's end
    assert {60} <= set(late["horizon_days"])      # a checkpoint read from the daily curve


def test_runs_too_recent_or_never_succeeded_contribute_no_rows(world, rows, monitored):
    assert world.runs["recent"] not in set(rows["run_id"])
    assert world.failed not in set(rows["run_id"])
    page = (monitored[0] / "monitor.html").read_text()
    assert world.failed in page and "status failed" in page
    assert "1 run(s) too recent" in page


def test_forecast_is_the_value_as_published(world, rows):
    for name in ("early_curve", "early_geometric", "early_by_os", "late_curve"):
        folder = world.run_dir(name)
        forecast = read_output_csv(folder / "forecast.csv")
        curve = read_output_csv(folder / "curve.csv")
        mine = rows[rows["run_id"] == world.runs[name]]
        by = mine["by"].iat[0].split(",")
        for _, row in mine.iterrows():
            group = (forecast[by] == row[by]).all(axis=1)
            if row["requested"]:
                (source,) = forecast[group & (forecast["horizon_days"] == row["horizon_days"])] \
                    .itertuples()
            else:  # a checkpoint H between the horizons: the cumulative curve on day H − 1
                on_curve = (curve[by] == row[by]).all(axis=1)
                (source,) = curve[on_curve & (curve["day"] == row["horizon_days"] - 1)].itertuples()
            assert (row["forecast"], row["lower"], row["upper"]) == \
                (source.ltv, source.ltv_lower, source.ltv_upper)
            assert row["model"] == forecast["model"].iat[0]


def test_actual_is_the_realised_mean_of_the_groups_users_over_days_0_to_h_minus_1(world, rows):
    events, installs = world.events(), world.installs()
    for (as_of, by_text), run_rows in rows.groupby(["as_of", "by"]):
        by = by_text.split(",")
        users = installs[installs["install_date"] <= as_of]
        days = events.merge(users, on="user_id")
        days["age"] = (pd.to_datetime(days["event_date"]) - pd.to_datetime(days["install_date"])).dt.days
        for _, row in run_rows.iterrows():
            mine = (users[by] == row[by]).all(axis=1)
            theirs = (days[by] == row[by]).all(axis=1) & (days["age"] < row["horizon_days"])
            assert row["actual"] == pytest.approx(days.loc[theirs, "revenue"].sum() / mine.sum(),
                                                  abs=1e-6)
            assert row["users"] == mine.sum()


def test_error_and_coverage_are_scored_as_the_backtest_scores(rows):
    scored = rows[rows["actual"] > 0]
    expected = (scored["forecast"] - scored["actual"]) / scored["actual"] * 100
    # The file rounds money to 1e-6 (as a run's files do): recomputing from rounded values
    # differs in the fourth decimal of a percentage.
    assert scored["error_pct"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-4, abs=1e-3)
    inside = (rows["lower"] <= rows["actual"]) & (rows["actual"] <= rows["upper"])
    assert (rows["covered"] == inside).all()


def test_summary_is_the_backtest_summary_per_model_version(rows):
    table = summary(rows)
    shaped = rows.rename(columns={"forecast": "ltv", "lower": "ltv_lower", "upper": "ltv_upper"})
    reference = summarise(shaped.assign(model=shaped["model_version"]))
    assert table["mape"].to_numpy() == pytest.approx(reference["mape"].to_numpy())
    for (version, horizon), part in rows.groupby(["model_version", "horizon_days"]):
        (line,) = table[(table["model_version"] == version) & (table["horizon_days"] == horizon)] \
            .itertuples()
        assert line.forecasts == len(part)
        assert line.bias == pytest.approx(part["error_pct"].mean())
        assert line.mape == pytest.approx(part["error_pct"].abs().mean())
        assert line.coverage == pytest.approx(100 * part["covered"].mean())
        assert line.runs == part["run_id"].nunique()


def test_the_page_shows_scores_by_model_version_and_as_of(monitored, rows):
    page = (monitored[0] / "monitor.html").read_text()
    for version in rows["model_version"].unique():
        assert f"<td>{version}</td>" in page
    for as_of in rows["as_of"].unique():
        assert as_of in page
    assert 'id="mape-chart"' in page and 'id="coverage-chart"' in page
    assert 'id="scatter-chart"' in page


def test_a_group_column_named_like_a_monitor_column_keeps_its_values_apart():
    assert group_columns(["campaign", "as_of"]) == {"campaign": "campaign", "as_of": "group_as_of"}
    assert not set(group_columns(list(FIXED_COLUMNS)).values()) & set(FIXED_COLUMNS)


def test_runs_are_in_as_of_order(rows):
    assert list(rows["as_of"]) == sorted(rows["as_of"])
    assert np.isfinite(rows["forecast"]).all() and np.isfinite(rows["actual"]).all()


def test_a_run_pinning_a_registered_model_version_is_scored_as_that_version(world, tmp_path):
    import json
    import shutil

    from tests.monitor.conftest import ltv, monitor_args

    store = tmp_path / "store"
    shutil.copytree(world.store, store)
    path = store / "runs" / world.runs["early_curve"] / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(manifest | {"model_version": "curve@7"}))
    args = monitor_args(world, tmp_path / "out")
    args[args.index("--store") + 1] = str(store)
    assert ltv(*args).code == 0
    pinned = pd.read_csv(tmp_path / "out" / "monitor.csv", dtype=str, keep_default_na=False)
    mine = pinned[pinned["run_id"] == world.runs["early_curve"]]
    assert set(mine["model_version"]) == {"curve@7"} and set(mine["model"]) == {"curve"}
    others = pinned[pinned["run_id"] == world.runs["late_curve"]]
    assert set(others["model_version"]) == {"curve"}
    page = (tmp_path / "out" / "monitor.html").read_text()
    assert "<td>curve@7</td>" in page
