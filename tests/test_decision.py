"""The decision rule: labels at the thresholds, ranking, threshold configuration."""

from __future__ import annotations

import math

import pytest

from ltvcore import decision
from ltvcore.decision import Thresholds, decide, thresholds


def test_labels_at_the_thresholds():
    t = Thresholds()
    assert [t.label(p) for p in (0.8, 0.79999, 0.5, 0.20001, 0.2, 0.0, 1.0)] == \
        ["scale", "watch", "watch", "watch", "cut", "cut", "scale"]
    assert t.label(None) is None and t.label(math.nan) is None


def test_thresholds_from_the_environment_are_validated():
    assert thresholds({}) == Thresholds(0.8, 0.2)
    assert thresholds({"LTV_DECISION_SCALE": "0.9", "LTV_DECISION_CUT": " 0.1 "}) \
        == Thresholds(0.9, 0.1)
    for env, named in (({"LTV_DECISION_SCALE": "high"}, "LTV_DECISION_SCALE"),
                       ({"LTV_DECISION_CUT": "1.5"}, "LTV_DECISION_CUT"),
                       ({"LTV_DECISION_CUT": "nan"}, "LTV_DECISION_CUT"),
                       ({"LTV_DECISION_SCALE": "0.3", "LTV_DECISION_CUT": "0.3"}, "cut < scale")):
        with pytest.raises(ValueError, match=named):
            thresholds(env)
    with pytest.raises(ValueError):
        Thresholds(scale=0.1, cut=0.5)


def _row(name, h, p, roas):
    return {"campaign": name, "horizon_days": str(h), "p_payback": "" if p is None else str(p),
            "roas": str(roas), "roas_lower": "0.5", "roas_upper": "3",
            "users": "100", "spend": "50"}


def test_ranking_by_p_payback_at_the_main_horizon_then_roas():
    rows = [_row(n, h, p * (h / 365), r) for n, p, r in
            (("a", 0.5, 1.0), ("b", 0.9, 1.1), ("c", 0.9, 1.3), ("d", 0.1, 2.0))
            for h in (30, 365)]
    rows.append(_row("organic", 365, None, 0))
    ranked = decide(rows, ["campaign"], limits=Thresholds())
    assert [d.group for d in ranked] == [("c",), ("b",), ("a",), ("d",)]
    assert [d.label for d in ranked] == ["scale", "scale", "watch", "cut"]
    assert ranked[0].days is None and ranked[0].roas == 1.3
    assert decision.counts_text(ranked) == "2 to scale, 1 to watch, 1 to cut"
    # another horizon: its own probabilities
    assert decide(rows, ["campaign"], horizon=30, limits=Thresholds())[0].label == "cut"


def test_main_horizon_and_no_spend():
    assert decision.main_horizon([30, 365, 730]) == 365
    assert decision.main_horizon([30, 90]) == 90
    rows = [_row("a", 365, None, 1.0)]
    assert decide(rows, ["campaign"]) == [] and not decision.has_payback(rows)


def test_report_run_page_and_slack_agree_on_the_same_forecast(tmp_path):
    """One forecast.csv: the report, the API's decision list and the Slack message label and
    rank the campaigns identically."""
    import csv
    import io
    import re

    from ltvcore.api.service import ForecastService
    from ltvcore.notify.messages import success_message
    from ltvcore.report import render_report
    from ltvcore.request import ForecastRequest
    from ltvcore.sample import write_sample
    from ltvcore.workflow.artifacts import write_outputs
    from ltvcore.workflow.forecast import load_inputs, run_forecast

    # Enough users that some campaign's payback is clear: with 90 users a campaign (3 payers)
    # every band is wide enough to leave all of them at "watch".
    write_sample(tmp_path, install_days=14, observed_days=14, n_campaigns=6, users_per_day=150,
                 seed=11)
    request = ForecastRequest(target_roas=0.8)
    result = run_forecast(load_inputs(tmp_path / "events.csv", tmp_path / "installs.csv",
                                      tmp_path / "spend.csv"), request)
    run = tmp_path / "run"
    write_outputs(result, run)
    text = (run / "forecast.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))

    page = render_report(run)
    body = re.search(r'<table id="decision-table">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    report = re.findall(r'data-label="(\w+)"><td class="num">\d+</td><td>([^<]*)</td>', body)

    class Store:
        def read_bytes(self, run_id, name):
            return text.encode()

    service = ForecastService.__new__(ForecastService)
    service.store = Store()  # type: ignore[assignment]
    api = service._decision("r", request.normalised())["decision"]

    message = success_message(run_id="r", requested_by=None, dataset="d", as_of="x",
                              forecast_rows=rows, by=["campaign"], top_n=50)
    top = next(b["text"]["text"] for b in message["blocks"]
               if b["type"] == "section" and "text" in b and b["text"]["text"].startswith("*Top"))
    slack = [(next((lab for lab in ("scale", "watch", "cut") if lab in line.split("*")[0]), None),
              line.split("*")[1]) for line in top.splitlines()[1:]]

    assert len(report) == 5  # organic has no spend
    assert report == [(d["label"], d["group"]["campaign"]) for d in api] == slack[:5]
    assert slack[5:] == [(None, "organic")]  # listed after the labelled ones, unlabelled
    assert len({label for label, _ in report}) >= 2  # more than one label is compared


def test_a_run_keeps_the_thresholds_it_was_forecast_under(tmp_path, monkeypatch):
    """Changing the team's thresholds later relabels no past run: its report, page and message
    read the ones recorded in its params.json."""
    from ltvcore.report.data import load_run
    from ltvcore.request import ForecastRequest
    from ltvcore.sample import write_sample
    from ltvcore.workflow.artifacts import write_outputs
    from ltvcore.workflow.forecast import load_inputs, run_forecast

    write_sample(tmp_path, install_days=7, observed_days=7, n_campaigns=3, users_per_day=30, seed=3)
    monkeypatch.setenv(decision.SCALE_VARIABLE, "0.9")
    monkeypatch.setenv(decision.CUT_VARIABLE, "0.05")
    result = run_forecast(load_inputs(tmp_path / "events.csv", tmp_path / "installs.csv",
                                      tmp_path / "spend.csv"), ForecastRequest())
    assert result.params[decision.RECORD_KEY] == {"scale": 0.9, "cut": 0.05}
    write_outputs(result, tmp_path / "run")
    monkeypatch.setenv(decision.SCALE_VARIABLE, "0.6")
    assert decision.recorded(result.params) == Thresholds(scale=0.9, cut=0.05)
    assert load_run(tmp_path / "run").thresholds == Thresholds(scale=0.9, cut=0.05)
    # A run from before thresholds were recorded takes the team's current ones.
    assert decision.recorded({}) == Thresholds(scale=0.6, cut=0.05)


def test_bad_thresholds_stop_a_forecast_with_one_message(tmp_path, monkeypatch):
    from ltvcore.errors import InputError
    from ltvcore.request import ForecastRequest
    from ltvcore.sample import write_sample
    from ltvcore.workflow.forecast import load_inputs, run_forecast

    write_sample(tmp_path, install_days=3, observed_days=7, n_campaigns=1, users_per_day=20, seed=1)
    monkeypatch.setenv(decision.SCALE_VARIABLE, "lots")
    with pytest.raises(InputError, match=decision.SCALE_VARIABLE):
        run_forecast(load_inputs(tmp_path / "events.csv", tmp_path / "installs.csv", None),
                     ForecastRequest())
