"""The artifact store's contract, one suite run against both backends (a local folder, S3).

Backend-specific mechanics (renames, conditional puts, permissions) are tested in
``test_store_local.py`` and ``test_store_s3.py``; what a caller may rely on is tested here.
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from moto import mock_aws

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
