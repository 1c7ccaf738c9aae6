"""A run's snapshot: the user-day sums up to as-of, the same content however it is sliced."""

import pandas as pd
import pyarrow.parquet as pq

from ltvcore.sample import write_sample
from ltvcore.warehouse import snapshot
from ltvcore.warehouse.inputs import load_inputs


def test_the_events_snapshot_is_the_user_day_sums_to_as_of_in_any_number_of_slices(tmp_path, monkeypatch):
    write_sample(tmp_path / "src", install_days=4, observed_days=10, n_campaigns=2, users_per_day=25)
    inputs = load_inputs(tmp_path / "src" / "events.csv", tmp_path / "src" / "installs.csv")
    whole = snapshot.write_snapshot(inputs, "2026-01-08", tmp_path / "whole")
    monkeypatch.setattr(snapshot, "CHUNK_ROWS", 97)
    sliced = snapshot.write_snapshot(inputs, "2026-01-08", tmp_path / "sliced")
    a = pq.read_table(whole["events"]).to_pandas()
    b = pq.read_table(sliced["events"]).to_pandas()
    pd.testing.assert_frame_equal(a, b)
    raw = pd.read_csv(tmp_path / "src" / "events.csv", dtype={"user_id": str})
    raw = raw[raw["event_date"] <= "2026-01-08"]
    expected = raw.groupby(["user_id", "event_date"], as_index=False)["revenue"].sum()
    got = a.assign(event_date=a["event_date"].astype(str)).sort_values(["user_id", "event_date"])
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
    assert pq.ParquetFile(sliced["events"]).num_row_groups > 1
