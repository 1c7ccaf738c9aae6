"""Drift alerts: a model version whose recent error passes a stated threshold is announced on
Slack, one message per version naming the checkpoints, the error and the runs."""

from __future__ import annotations

import pandas as pd

from ltvcore.monitor.alerts import MAX_RUNS_NAMED, drift_message
from ltvcore.monitor.scoring import drifts
from ltvcore.monitor.settings import Thresholds
from ltvcore.notify import render_text
from tests.monitor.conftest import ltv, monitor_args


def _rows(errors: list[float], version: str = "curve@3", horizon: int = 30) -> pd.DataFrame:
    """One forecast per as-of date (Jan 1, 8, 15, …) with the given percentage errors."""
    dates = pd.date_range("2026-01-01", periods=len(errors), freq="7D").strftime("%Y-%m-%d")
    return pd.DataFrame({
        "run_id": [f"run{i}" for i in range(len(errors))], "as_of": dates,
        "model_version": version, "horizon_days": horizon, "actual": 1.0,
        "forecast": [1 + e / 100 for e in errors], "lower": 0.5, "upper": 1.5,
        "error_pct": errors, "covered": [abs(e) < 50 for e in errors]})


def test_only_the_latest_runs_count_so_a_fresh_drift_is_not_averaged_away():
    limits = Thresholds(mape_alert=25, bias_alert=15, recent_runs=3)
    (drift,) = drifts(_rows([2, -3, 1, 2, 60, 70, 65]), limits)
    assert drift.runs == ("run4", "run5", "run6")
    assert (drift.first_as_of, drift.last_as_of) == ("2026-01-29", "2026-02-12")
    assert drift.mape == 65 and drift.forecasts == 3 and drift.horizon_days == 30
    assert drift.reasons == ("MAPE 65.0% above 25%", "bias +65.0% beyond ±15%")
    # The same errors in the other order: an old drift the model has since recovered from.
    assert drifts(_rows([60, 70, 65, 2, -3, 1, 2]), limits) == []


def test_a_steady_bias_alerts_even_when_the_mape_is_below_its_threshold():
    (drift,) = drifts(_rows([-20, -18, -16]), Thresholds(mape_alert=25, bias_alert=15))
    assert drift.reasons == ("bias -18.0% beyond ±15%",)


def test_groups_that_realised_nothing_do_not_count():
    rows = _rows([80, 90, 85]).assign(actual=0.0, error_pct=float("nan"))
    assert drifts(rows, Thresholds()) == []


def test_the_message_names_version_checkpoints_error_and_runs_within_slacks_limits():
    many = _rows([40] * 12)
    (drift,) = drifts(many, Thresholds(recent_runs=12))
    payload = drift_message("curve@3", [drift], store="s3://bucket/ltv", data_end="2026-06-18",
                            report="/srv/monitor/monitor.html", limits=Thresholds(recent_runs=12))
    text = render_text(payload)
    assert payload["blocks"][0]["text"]["text"] == "LTV model drift · curve@3"
    assert "day 30: MAPE 40.0%, bias +40.0%" in text and "MAPE above 25%" in text
    assert all(f"run{i}" in text for i in range(MAX_RUNS_NAMED))
    assert f"and {12 - MAX_RUNS_NAMED} more" in text
    assert "s3://bucket/ltv" in text and "2026-06-18" in text and "/srv/monitor/monitor.html" in text
    assert "curve@3" in payload["text"] and "day 30" in payload["text"]


def test_drift_reaches_slack_once_per_model_version(world, slack, tmp_path):
    ran = ltv(*monitor_args(world, tmp_path / "out"),
              env={"LTV_SLACK_WEBHOOK_URLS": f"team={slack.url('team')}",
                   "LTV_MONITOR_MAPE_ALERT": "1%"})
    assert ran.code == 0, ran.err
    assert sorted(path.rsplit("/", 1)[-1] for path, _ in slack.posts) == ["teamSeCrEt"] * 2
    texts = {body["blocks"][0]["text"]["text"]: render_text(body) for _, body in slack.posts}
    assert set(texts) == {"LTV model drift · curve", "LTV model drift · geometric"}
    curve, geometric = texts["LTV model drift · curve"], texts["LTV model drift · geometric"]
    for day in (30, 60, 90):
        assert f"day {day}: MAPE" in curve
    assert world.runs["early_curve"] in curve and world.runs["late_curve"] in curve
    assert world.runs["early_geometric"] in geometric and world.runs["early_curve"] not in geometric
    assert "MAPE above 1%" in curve and str(tmp_path / "out" / "monitor.html") in curve
    assert "alerted Slack (team) about curve" in ran.out
    page = (tmp_path / "out" / "monitor.html").read_text()
    assert page.count('class="alert"') == len([1 for line in ran.out.splitlines()
                                                if line.startswith("drift: ")])


def test_no_message_while_every_version_stays_within_the_thresholds(world, slack, tmp_path):
    ran = ltv(*monitor_args(world, tmp_path / "out"),
              env={"LTV_SLACK_WEBHOOK_URLS": f"team={slack.url('team')}",
                   "LTV_MONITOR_MAPE_ALERT": "1000", "LTV_MONITOR_BIAS_ALERT": "1000"})
    assert ran.code == 0, ran.err
    assert slack.posts == [] and "drift:" not in ran.out
    assert 'id="no-alerts"' in (tmp_path / "out" / "monitor.html").read_text()


def test_a_bias_threshold_alone_can_raise_the_alert(world, slack, tmp_path):
    ran = ltv(*monitor_args(world, tmp_path / "out"),
              env={"LTV_SLACK_WEBHOOK_URLS": f"team={slack.url('team')}",
                   "LTV_MONITOR_MAPE_ALERT": "1000", "LTV_MONITOR_BIAS_ALERT": "1"})
    assert ran.code == 0, ran.err
    assert slack.posts
    for _, body in slack.posts:
        text = render_text(body)
        assert "beyond ±1%" in text and "% above 1000%" not in text


def test_a_message_slack_refuses_is_a_warning_not_a_failure(world, slack, tmp_path):
    url = slack.url("team")
    slack.status[url.split(str(slack.server.server_address[1]), 1)[1]] = 404
    ran = ltv(*monitor_args(world, tmp_path / "out"),
              env={"LTV_SLACK_WEBHOOK_URLS": f"team={url}", "LTV_MONITOR_MAPE_ALERT": "1"})
    assert ran.code == 0
    assert "warning: the drift alert about curve did not reach team: HTTP 404" in ran.err
    assert "SeCrEt" not in ran.err + ran.out  # a webhook URL is a credential
    assert (tmp_path / "out" / "monitor.csv").exists()


def test_without_a_webhook_the_alert_is_printed(world, tmp_path):
    ran = ltv(*monitor_args(world, tmp_path / "out"), env={"LTV_MONITOR_MAPE_ALERT": "1"})
    assert ran.code == 0, ran.err
    assert "LTV model drift · curve" in ran.out and "LTV model drift · geometric" in ran.out
