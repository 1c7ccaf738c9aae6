"""The artifact store's contract, one suite run against both backends (a local folder, S3).

Backend-specific mechanics (renames, conditional puts, permissions) are tested in
``test_store_local.py`` and ``test_store_s3.py``; what a caller may rely on is tested here.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid

import boto3
import pytest
from moto import mock_aws

from ltvcore.runs import index
from ltvcore.runs.audit import verify
from ltvcore.runs.manifest import build_manifest, write_manifest
from ltvcore.runs.store import ArtifactStore, InvalidRunError, LocalStore, RunNotFoundError, S3Store, fetch_run

RUN_ID = "0123456789abcdef0123"
OTHER_ID = "fedcba9876543210fedc"
FILES = {
    "forecast.csv": b"campaign,horizon_days,users,ltv\nall,30,100,1.25\n",
    "curve.csv": b"campaign,day,ltv\nall,0,0.1\nall,1,0.2\n",
    "params.json": b'{"groups": []}',
    "report.html": b"<!doctype html><title>LTV</title>",
    "inputs/events.parquet": bytes(range(256)) * 4,
}


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch) -> ArtifactStore:
    monkeypatch.setenv("LTV_GIT_COMMIT", "f" * 40)
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_SESSION_TOKEN", "testing")):
        monkeypatch.setenv(name, value)
    mock = mock_aws()
    mock.start()
    request.addfinalizer(mock.stop)
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="ltv-contract")
    client.put_bucket_versioning(Bucket="ltv-contract",
                                 VersioningConfiguration={"Status": "Enabled"})
    return S3Store("ltv-contract", "team/ltv", client=client)


def staged(tmp_path, run_id: str = RUN_ID, files=FILES, requested_by: str = "ana"):
    folder = tmp_path / f"staging-{uuid.uuid4().hex[:6]}"
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    manifest = build_manifest(folder, run_id=run_id, request={"dataset": "demo", "horizons": [30]},
                              as_of="2025-06-30", requested_by=requested_by, seed=1, timings={})
    write_manifest(folder, manifest)
    return folder


def test_a_committed_run_is_visible_intact_and_readable(store, tmp_path):
    assert not store.exists(RUN_ID) and store.status(RUN_ID) is None
    location = store.commit(RUN_ID, staged(tmp_path))
    assert store.exists(RUN_ID) and location == store.location(RUN_ID)
    assert store.status(RUN_ID)["status"] == "succeeded"
    assert store.read_bytes(RUN_ID, "forecast.csv") == FILES["forecast.csv"]
    assert store.read_manifest(RUN_ID)["run_id"] == RUN_ID
    assert verify(location, **({"client": store.client} if isinstance(store, S3Store) else {})).ok


def test_a_run_is_never_overwritten(store, tmp_path):
    store.commit(RUN_ID, staged(tmp_path, requested_by="first"))
    changed = dict(FILES, **{"forecast.csv": b"campaign,ltv\nall,9\n"})
    store.commit(RUN_ID, staged(tmp_path, files=changed, requested_by="second"))
    assert store.read_bytes(RUN_ID, "forecast.csv") == FILES["forecast.csv"]
    assert store.read_manifest(RUN_ID)["requested_by"] == "first"


def test_markers_describe_runs_in_progress_and_stop_at_the_commit(store, tmp_path):
    assert store.mark(RUN_ID, "queued", {"requested_by": "ana"})
    assert store.status(RUN_ID)["status"] == "queued"
    assert store.mark(RUN_ID, "running", {"requested_by": "ana"})
    assert store.status(RUN_ID)["status"] == "running"
    assert not store.exists(RUN_ID)
    store.commit(RUN_ID, staged(tmp_path))
    assert not store.mark(RUN_ID, "failed", {"error": "late"})  # a sealed run stays succeeded
    assert store.status(RUN_ID)["status"] == "succeeded"


def test_a_failed_marker_keeps_its_reason(store):
    store.mark(RUN_ID, "failed", {"error": "events.csv, column 'revenue': negative"})
    status = store.status(RUN_ID)
    assert status["status"] == "failed" and "negative" in status["detail"]["error"]


def test_list_runs_shows_every_run_with_its_status(store, tmp_path):
    store.commit(RUN_ID, staged(tmp_path))
    store.mark(OTHER_ID, "running", {})
    listed = {entry["run_id"]: entry["status"] for entry in store.list_runs()}
    assert listed == {RUN_ID: "succeeded", OTHER_ID: "running"}
    assert len(store.list_runs(limit=1)) == 1


def test_fetch_copies_a_complete_run_and_refuses_an_incomplete_one(store, tmp_path):
    store.commit(RUN_ID, staged(tmp_path))
    copy = store.fetch(RUN_ID, tmp_path / "copy")
    assert (copy / "inputs" / "events.parquet").read_bytes() == FILES["inputs/events.parquet"]
    store.mark(OTHER_ID, "running", {})
    with pytest.raises(RunNotFoundError):
        store.fetch(OTHER_ID, tmp_path / "other")
    if isinstance(store, LocalStore):
        assert fetch_run(store.location(RUN_ID), tmp_path / "x") == tmp_path / "store" / "runs" / RUN_ID


def test_a_staging_folder_that_does_not_match_its_manifest_is_refused(store, tmp_path):
    folder = staged(tmp_path)
    (folder / "forecast.csv").write_bytes(b"edited after sealing")
    with pytest.raises(InvalidRunError):
        store.commit(RUN_ID, folder)
    assert not store.exists(RUN_ID)


@pytest.mark.parametrize("run_id", ["../escape", "", "a/b", ".hidden"])
def test_unsafe_run_ids_are_refused(store, run_id):
    with pytest.raises(ValueError):
        store.status(run_id)


# -- the run index (ltvcore/runs/index.py) ------------------------------------------------


def index_keys(store):
    return [key for key in map(index.parse_name, store._index_names()) if key is not None]


def wipe_index(store):
    """Make ``store`` look like one written before the index existed."""
    if isinstance(store, LocalStore):
        shutil.rmtree(store.root / "index", ignore_errors=True)
        return
    prefix = store._index_prefix()
    for item in store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix).get("Contents", []):
        store.client.delete_object(Bucket=store.bucket, Key=item["Key"])


def delete_manifest(store, run_id):
    if isinstance(store, LocalStore):
        (store.root / "runs" / run_id / "manifest.json").unlink()
    else:
        store.client.delete_object(Bucket=store.bucket, Key=store._key(run_id, "manifest.json"))


def test_a_commit_writes_one_index_entry_from_its_manifest(store, tmp_path):
    store.commit(RUN_ID, staged(tmp_path))
    (key,) = index_keys(store)
    assert (key.run_id, key.status) == (RUN_ID, "succeeded")
    entry = json.loads(store._read_index(key.name))
    assert entry["created"] == store.read_manifest(RUN_ID)["created"]
    assert entry["request"] == {"dataset": "demo", "horizons": [30]} and entry["requested_by"] == "ana"
    assert "location" not in entry and "summary" not in entry  # derived when read
    store.commit(RUN_ID, staged(tmp_path, requested_by="bob"))  # refused: the same entry again
    assert index_keys(store) == [key]


def test_a_refused_commit_writes_no_index_entry(store, tmp_path):
    folder = staged(tmp_path)
    (folder / "curve.csv").write_bytes(b"edited after sealing")
    with pytest.raises(InvalidRunError):
        store.commit(RUN_ID, folder)
    assert index_keys(store) == []


def test_each_marker_adds_an_entry_and_the_newest_event_is_listed(store, tmp_path):
    store.mark(RUN_ID, "queued", {"requested_by": "ana", "submitted": "2025-07-01T10:00:00.000Z"})
    store.mark(RUN_ID, "running", {"requested_by": "ana", "submitted": "2025-07-01T10:00:00.000Z",
                                   "stage": "fitting"})
    assert [key.status for key in index_keys(store)] == ["running", "queued"]  # newest first
    (row,) = store.list_runs()
    assert row["status"] == "running" and row["detail"]["stage"] == "fitting"
    assert row == store.status(RUN_ID)
    store.commit(RUN_ID, staged(tmp_path))
    assert [key.status for key in index_keys(store)] == ["succeeded", "running", "queued"]
    (row,) = store.list_runs()
    assert row == store.status(RUN_ID)  # the listing row is the run's status
    assert row["status"] == "succeeded" and row["submitted"] == "2025-07-01T10:00:00.000Z"
    assert row["summary"] == "dataset=demo horizons=30" and row["location"] == store.location(RUN_ID)


def test_a_listing_reads_only_the_entries_it_shows(store, tmp_path, monkeypatch):
    ids = [f"run{index:017d}" for index in range(5)]
    for run_id in ids:
        store.mark(run_id, "queued", {})
        store.commit(run_id, staged(tmp_path, run_id=run_id))
    store.list_runs()  # the index is complete
    read = []
    real_read = store._read_index
    monkeypatch.setattr(store, "_read_index", lambda name: read.append(name) or real_read(name))
    assert [row["run_id"] for row in store.list_runs(limit=2)] == ids[:-3:-1]
    assert len(read) == 2
    assert [row["run_id"] for row in store.list_runs()] == ids[::-1]
    assert store.list_runs(limit=0) == []


def test_a_store_written_before_the_index_is_indexed_by_its_first_listing(store, tmp_path):
    store.commit(RUN_ID, staged(tmp_path))
    store.mark(OTHER_ID, "failed", {"error": "bad input"})
    before = {row["run_id"]: row for row in store._scan_runs(None)}
    wipe_index(store)
    assert list(store._index_names()) == []
    assert {row["run_id"]: row for row in store.list_runs()} == before
    assert index.COMPLETE in set(store._index_names())
    assert {(key.run_id, key.status) for key in index_keys(store)} == {
        (RUN_ID, "succeeded"), (OTHER_ID, "failed")}
    assert store.rebuild_index() == 2  # idempotent: the same names again
    assert len(index_keys(store)) == 2


def test_a_reader_that_cannot_write_the_index_lists_by_scanning(store, tmp_path, monkeypatch, caplog):
    store.commit(RUN_ID, staged(tmp_path))
    wipe_index(store)

    def refused(name, body):
        raise OSError("read-only")

    monkeypatch.setattr(store, "_write_index", refused)
    with caplog.at_level(logging.WARNING):
        assert [row["run_id"] for row in store.list_runs()] == [RUN_ID]
    assert "scanning every run" in caplog.text


def test_a_failed_index_write_never_fails_a_commit_and_reindex_repairs_it(store, tmp_path, monkeypatch,
                                                                          caplog):
    assert store.list_runs() == []  # an empty store: its index is complete at once
    real_write = store._write_index

    def refused(name, body):
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_index", refused)
    with caplog.at_level(logging.WARNING):
        store.commit(RUN_ID, staged(tmp_path))
        assert store.mark(OTHER_ID, "queued", {})
    assert "ltv runs reindex" in caplog.text
    assert store.exists(RUN_ID) and store.list_runs() == []
    monkeypatch.setattr(store, "_write_index", real_write)
    assert store.rebuild_index() == 2
    assert {row["run_id"]: row["status"] for row in store.list_runs()} == {RUN_ID: "succeeded",
                                                                          OTHER_ID: "queued"}


def test_the_run_wins_over_an_entry_it_contradicts(store, tmp_path):
    store.commit(RUN_ID, staged(tmp_path))
    # a marker written while a commit sealed the run: its entry is newer than the commit's
    store._record({"run_id": RUN_ID, "status": "running", "created": "2999-01-01T00:00:00.000Z",
                   "request": None, "detail": {}})
    store.commit(OTHER_ID, staged(tmp_path, run_id=OTHER_ID))
    delete_manifest(store, OTHER_ID)  # a run hidden by hand: never listed as done
    rows = {row["run_id"]: row for row in store.list_runs()}
    assert rows == {RUN_ID: store.status(RUN_ID), OTHER_ID: store.status(OTHER_ID)}
    assert (rows[RUN_ID]["status"], rows[OTHER_ID]["status"]) == ("succeeded", "incomplete")


def test_an_unreadable_entry_is_described_from_the_run(store, tmp_path):
    store.commit(RUN_ID, staged(tmp_path))
    (key,) = index_keys(store)
    store._write_index(key.name, b"{not json")
    (row,) = store.list_runs()
    assert row == store.status(RUN_ID)


def test_concurrent_commits_and_marks_of_different_runs_keep_every_entry(store, tmp_path):
    ids = [f"par{index:017d}" for index in range(8)]
    folders = {run_id: staged(tmp_path, run_id=run_id) for run_id in ids}
    barrier = threading.Barrier(len(ids))
    errors = []

    def publish(run_id):
        try:
            barrier.wait()
            store.mark(run_id, "running", {})
            store.commit(run_id, folders[run_id])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=publish, args=(run_id,)) for run_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted((key.run_id, key.status) for key in index_keys(store)) == sorted(
        [(run_id, "running") for run_id in ids] + [(run_id, "succeeded") for run_id in ids])
    assert {row["run_id"]: row["status"] for row in store.list_runs()} == dict.fromkeys(ids, "succeeded")
