"""Each run's recorded assumptions, tested against its users' days after its as-of; the report
names the assumption that broke and lists the ones no data can test."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ltvcore.monitor.assumptions import check_run, findings_frame, verdicts_frame
from ltvcore.monitor.core import monitor, open_runs
from ltvcore.monitor.settings import Thresholds
from ltvcore.request import ForecastRequest
from ltvcore.sample import simulate
from ltvcore.warehouse.inputs import load_inputs
from ltvcore.workflow.run import forecast_to_store
from tests.monitor.conftest import SAMPLE, ltv, monitor_args

ARPU = "ARPU per active user-day stays at its moving average over the last observed days."


def _monitor(world, events):
    store, listing = open_runs(str(world.store))
    inputs = load_inputs(events, world.full / "installs.csv")
    return monitor(store, listing, inputs, limits=Thresholds())


@pytest.fixture(scope="module")
def untouched(world):
    return _monitor(world, world.full / "events.csv")


@pytest.fixture(scope="module")
def changed(world, tripled):
    return _monitor(world, tripled)


def _findings(result, world, run: str, check: str) -> pd.DataFrame:
    table = findings_frame(result.findings)
    return table[(table["run_id"] == world.runs[run]) & (table["check"] == check)] \
        .set_index("group")


def _law_of_each_campaign() -> dict[str, str]:
    sim = simulate(seed=SAMPLE["seed"], install_days=SAMPLE["install_days"],
                   n_campaigns=SAMPLE["n_campaigns"], users_per_day=SAMPLE["users_per_day"],
                   horizon_days=365)
    return dict(zip(sim.campaigns["campaign"], sim.campaigns["law"]))


def test_the_sbg_law_holds_where_the_data_follow_it_and_breaks_where_they_do_not(untouched, world):
    laws = _law_of_each_campaign()
    assert sorted(set(laws.values())) != ["sbg"]  # the sample mixes laws: the test can tell
    for run in ("early_curve", "late_curve"):
        sbg = _findings(untouched, world, run, "retention law (sBG)")
        for campaign, law in laws.items():
            status = sbg.loc[f"campaign={campaign}", "status"]
            assert status == ("held" if law == "sbg" else "broken"), (run, campaign, law)
    # The old geometric baseline's constant ratio misses every campaign's long tail.
    geometric = _findings(untouched, world, "early_geometric", "retention law (geometric)")
    assert (geometric["status"] == "broken").all() and (geometric["change_pct"] > 0).all()


def test_tripled_revenue_after_as_of_breaks_arpu_stationarity_and_names_it(untouched, changed, world):
    before = _findings(untouched, world, "early_curve", "ARPU stationarity")
    after = _findings(changed, world, "early_curve", "ARPU stationarity")
    assert not (before["status"] == "broken").any()
    broken = after[after["status"] == "broken"]
    assert len(broken) >= 1
    assert (after["change_pct"] > before["change_pct"] + 150).all()
    for group, finding in broken.iterrows():
        assert finding["message"].startswith("ARPU stationarity: ARPU per active day after "
                                             "as-of was ")
        assert "% above the fitted " in finding["message"]
    verdicts = verdicts_frame(changed.verdicts)
    (verdict,) = verdicts[(verdicts["run_id"] == world.runs["early_curve"])
                          & (verdicts["assumption"] == ARPU)].itertuples()
    assert verdict.status == "broken" and "ARPU stationarity: ARPU per active day" in verdict.detail


def test_tripled_revenue_leaves_the_payer_share_alone_so_the_report_can_tell_them_apart(
        untouched, changed, world):
    before = _findings(untouched, world, "early_curve", "payer share")
    after = _findings(changed, world, "early_curve", "payer share")
    pd.testing.assert_frame_equal(before[["status", "expected", "observed"]],
                                  after[["status", "expected", "observed"]])
    per_day = _findings(changed, world, "early_curve", "revenue per paying day")
    assert (per_day["status"].isin(["broken", "too little data"])).all()
    assert (per_day["status"] == "broken").any()


def test_the_page_and_the_terminal_name_the_broken_assumption(world, tripled, tmp_path):
    ran = ltv(*monitor_args(world, tmp_path / "out", events=tripled),
              env={"LTV_MONITOR_MAPE_ALERT": "1000", "LTV_MONITOR_BIAS_ALERT": "1000"})
    assert ran.code == 0, ran.err
    page = (tmp_path / "out" / "monitor.html").read_text()
    listed = page.split('id="broken-list"', 1)[1].split("</ul>", 1)[0]
    assert "ARPU stationarity: ARPU per active day after as-of was " in listed
    assert world.runs["early_curve"] in listed
    assert "broken: " in ran.out and ("ARPU stationarity" in ran.out or "… and" in ran.out)


def test_assumptions_no_data_can_test_are_listed_as_not_checkable_with_why(untouched, world):
    verdicts = verdicts_frame(untouched.verdicts)
    mine = verdicts[verdicts["run_id"] == world.runs["early_curve"]].set_index("assumption")
    recorded = json.loads((world.run_dir("early_curve") / "params.json").read_text())["assumptions"]
    statuses = mine["status"].to_dict()
    assert list(statuses) == recorded  # every recorded sentence has a verdict, in order
    not_checkable = mine[mine["status"] == "not checkable"]
    assert any("stands in for retention" in a for a in not_checkable.index)
    assert any("Extrapolation error" in a for a in not_checkable.index)
    assert all(detail for detail in not_checkable["detail"])
    assert "interval coverage" in " ".join(not_checkable["detail"])
    assert statuses[ARPU] in {"held", "unclear", "broken"}


def test_a_run_without_days_after_its_as_of_has_nothing_to_test(world):
    store, listing = open_runs(str(world.store))
    inputs = load_inputs(world.root / f"cut-{world.early}" / "events.csv",
                         world.root / f"cut-{world.early}" / "installs.csv")
    from ltvcore.monitor.runs import past_runs

    runs = past_runs(store, listing, last_event="2099-01-01", first_checkpoint=30).runs
    run = next(r for r in runs if r.run_id == world.runs["early_curve"])
    findings, verdicts = check_run(run, inputs, Thresholds())
    assert findings == []
    assert {v.status for v in verdicts} == {"not checkable", "too little data"}


@pytest.mark.slow
def test_btyd_laws_are_tested_from_its_recorded_parameters(world, tripled, tmp_path):
    store = tmp_path / "store"
    cut = world.root / f"cut-{world.early}"
    run = forecast_to_store(ForecastRequest(horizons=(30, 90), model="btyd:map"),
                            events=cut / "events.csv", installs=cut / "installs.csv",
                            store=store).run_id
    laws = _law_of_each_campaign()
    results = {}
    for name, events in (("untouched", world.full / "events.csv"), ("tripled", tripled)):
        opened, listing = open_runs(str(store))
        found = monitor(opened, listing, load_inputs(events, world.full / "installs.csv"),
                        limits=Thresholds())
        results[name] = findings_frame(found.findings).set_index(["check", "group"])
    untouched, changed = results["untouched"], results["tripled"]
    sbg_campaign = next(c for c, law in laws.items() if law == "sbg")
    assert untouched.loc[("retention law (BG/BB)", f"campaign={sbg_campaign}"), "status"] == "held"
    paying = untouched.xs("paying law (BG/BB)")
    assert (paying["status"] != "broken").all()
    spending = changed.xs("spending law (BG/BB)")
    assert (spending["status"] == "broken").any()
    assert (spending.loc[spending["status"] == "broken", "change_pct"] > 150).all()
    # Who pays did not change: the paying law reads the same on both data.
    pd.testing.assert_frame_equal(paying[["status", "observed"]],
                                  changed.xs("paying law (BG/BB)")[["status", "observed"]])
    assert run in set(results["untouched"]["run_id"])
