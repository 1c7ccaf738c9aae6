"""A warehouse to keep adding to: idempotent ingest, incremental refresh, forecasts from it."""

import json
import shutil

import pandas as pd
import pytest

from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.runs import naming
from ltvcore.sample import write_sample
from ltvcore.warehouse import layout
from ltvcore.warehouse.store import Warehouse, open_warehouse
from ltvcore.workflow.forecast import load_inputs, run_forecast


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, install_days=10, observed_days=14, n_campaigns=3, users_per_day=40, seed=8)
    return folder


def _split_by_date(sample_dir, tmp_path, last_early: str):
    """The sample's events as two files: up to ``last_early``, and the days after."""
    events = pd.read_csv(sample_dir / "events.csv", dtype=str)
    early, late = events[events["event_date"] <= last_early], events[events["event_date"] > last_early]
    early.to_csv(tmp_path / "early.csv", index=False)
    late.to_csv(tmp_path / "late.csv", index=False)
    return tmp_path / "early.csv", tmp_path / "late.csv"


def test_a_forecast_from_a_warehouse_equals_the_forecast_from_the_files(sample_dir, tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    warehouse.ingest(events=sample_dir / "events.csv", installs=sample_dir / "installs.csv",
                     spend=sample_dir / "spend.csv")
    warehouse.refresh()
    request = ForecastRequest(by=("campaign", "os"))
    from_warehouse = run_forecast(open_warehouse(tmp_path / "wh"), request)
    from_files = run_forecast(load_inputs(sample_dir / "events.csv", sample_dir / "installs.csv",
                                          sample_dir / "spend.csv"), request)
    pd.testing.assert_frame_equal(from_warehouse.forecast, from_files.forecast, rtol=1e-12)
    pd.testing.assert_frame_equal(from_warehouse.curve, from_files.curve, rtol=1e-12)


def test_ingesting_the_same_file_twice_changes_nothing(sample_dir, tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    first = warehouse.ingest(events=sample_dir / "events.csv", installs=sample_dir / "installs.csv")
    assert first["installs"] > 0 and first["events"]["rows"] > 0
    warehouse.refresh()
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "wh").rglob("*"))
    state = (tmp_path / "wh" / layout.STATE).read_text()
    again = warehouse.ingest(events=sample_dir / "events.csv", installs=sample_dir / "installs.csv")
    assert again == {"installs": "unchanged", "events": "unchanged"}
    assert warehouse.refresh().aggregated == []
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "wh").rglob("*")) == before
    assert json.loads((tmp_path / "wh" / layout.STATE).read_text())["digest"] == json.loads(state)["digest"]


def test_a_new_day_costs_one_date_and_a_late_file_re_aggregates_only_its_date(sample_dir, tmp_path):
    early, late = _split_by_date(sample_dir, tmp_path, "2026-01-20")
    warehouse = Warehouse(tmp_path / "wh")
    warehouse.ingest(events=early, installs=sample_dir / "installs.csv")
    full = warehouse.refresh()
    assert len(full.aggregated) == 20
    warehouse.ingest(events=late)
    new = warehouse.refresh()
    assert new.aggregated == sorted(set(pd.read_csv(late)["event_date"]))
    assert new.unchanged == 20
    # a late event for an old date: that date alone is aggregated again
    (tmp_path / "straggler.csv").write_text("user_id,event_date,revenue\nu000001,2026-01-05,3.5\n")
    warehouse.ingest(events=tmp_path / "straggler.csv")
    assert warehouse.stale() == ["2026-01-05"]
    assert warehouse.refresh().aggregated == ["2026-01-05"]
    day = pd.read_parquet(tmp_path / "wh" / layout.partition(layout.USER_DAY, "2026-01-05") / layout.AGGREGATE_FILE)
    assert day.loc[day["user_id"] == "u000001", "events"].iat[0] >= 1


def test_the_incremental_warehouse_equals_one_built_at_once(sample_dir, tmp_path):
    early, late = _split_by_date(sample_dir, tmp_path, "2026-01-17")
    step = Warehouse(tmp_path / "step")
    step.ingest(events=early, installs=sample_dir / "installs.csv")
    step.refresh()
    step.ingest(events=late)
    step.refresh()
    once = Warehouse(tmp_path / "once")
    once.ingest(events=sample_dir / "events.csv", installs=sample_dir / "installs.csv")
    once.refresh()
    request = ForecastRequest()
    a = run_forecast(open_warehouse(tmp_path / "step"), request).forecast
    b = run_forecast(open_warehouse(tmp_path / "once"), request).forecast
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)


def test_a_warehouse_with_events_not_yet_aggregated_is_refused_naming_the_command(sample_dir, tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    warehouse.ingest(events=sample_dir / "events.csv")
    with pytest.raises(InputError, match="not aggregated yet: run ltv warehouse refresh"):
        open_warehouse(tmp_path / "wh")


def test_bad_files_are_refused_and_nothing_is_added(sample_dir, tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    warehouse.ingest(installs=sample_dir / "installs.csv")
    (tmp_path / "bad.csv").write_text("user_id,event_date,revenue\nu000001,2026-01-02,-1\n")
    with pytest.raises(InputError, match="bad.csv, column 'revenue', row 1"):
        warehouse.ingest(events=tmp_path / "bad.csv")
    assert not (tmp_path / "wh" / layout.EVENTS).exists()
    shutil.copy(sample_dir / "installs.csv", tmp_path / "again.csv")
    with open(tmp_path / "again.csv", "a") as handle:
        handle.write("brand-new,2026-01-03,x,ios,organic,false\n")
    with pytest.raises(InputError, match=r"row 1: duplicate install row .* \(already in the warehouse\)"):
        warehouse.ingest(installs=tmp_path / "again.csv")


def test_a_run_is_named_by_the_state_digest_without_reading_the_data(sample_dir, tmp_path, monkeypatch):
    warehouse = Warehouse(tmp_path / "wh")
    warehouse.ingest(events=sample_dir / "events.csv", installs=sample_dir / "installs.csv")
    digest = warehouse.refresh().digest

    def no_hashing(path):
        raise AssertionError(f"hashed {path}")

    monkeypatch.setattr(naming, "sha256_file", no_hashing)
    assert naming.input_files_digest({"events": tmp_path / "wh"}) == digest
