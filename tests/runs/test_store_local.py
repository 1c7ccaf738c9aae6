from __future__ import annotations

import json
import os
import uuid

import pytest

from ltvcore.runs import local_store as store_module
from ltvcore.runs.audit import verify
from ltvcore.runs.manifest import build_manifest, write_manifest
from ltvcore.runs.store import InvalidRunError, LocalStore, RunNotFoundError, fetch_run, open_store

RUN_ID = "0123456789abcdef0123"
FILES = {
    "forecast.csv": b"campaign,horizon_days,users,ltv\nall,30,100,1.25\n",
    "curve.csv": b"campaign,day,ltv\nall,0,0.1\nall,1,0.2\n",
    "params.json": b'{"groups": [{"key": {"campaign": "all"}, "models": {"sbg": {"alpha": 0.7, "beta": 1.2}}}]}',
    "report.html": b"<!doctype html><title>LTV</title>",
    "inputs/events.parquet": bytes(range(256)) * 8,
}


@pytest.fixture(autouse=True)
def _no_git(monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "f" * 40)


def make_staging(tmp_path, run_id=RUN_ID, files=FILES, requested_by="ana"):
    staging = tmp_path / f"staging-{uuid.uuid4().hex[:6]}"
    for name, content in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(content)
    manifest = build_manifest(
        staging,
        run_id=run_id,
        request={"dataset": "demo", "by": ["campaign"], "horizons": [30, 90]},
        as_of="2025-06-30",
        requested_by=requested_by,
        seed=1,
        timings={"fit": 0.1},
    )
    write_manifest(staging, manifest)
    return staging


def visible_dirs(store):
    return sorted(p.name for p in (store.root / "runs").iterdir() if not p.name.startswith("."))


def test_commit_then_verify_intact(tmp_path):
    store = LocalStore(tmp_path / "store")
    location = store.commit(RUN_ID, make_staging(tmp_path))
    assert location == str((tmp_path / "store" / "runs" / RUN_ID).absolute())
    assert store.exists(RUN_ID)
    result = verify(location)
    assert result.ok, result.lines()
    assert result.files == len(FILES)
    assert result.lines() == [f"intact: {len(FILES)} files"]
    assert store.read_bytes(RUN_ID, "inputs/events.parquet") == FILES["inputs/events.parquet"]


def test_status_and_list(tmp_path):
    store = LocalStore(tmp_path / "store")
    assert store.status(RUN_ID) is None
    assert store.list_runs() == []
    store.commit(RUN_ID, make_staging(tmp_path))
    status = store.status(RUN_ID)
    assert status["status"] == "succeeded"
    assert "forecast.csv" in status["files"]
    (entry,) = store.list_runs()
    assert entry["run_id"] == RUN_ID and entry["status"] == "succeeded"
    assert entry["summary"] == "dataset=demo by=campaign horizons=30,90"
    assert entry["created"].endswith("Z")


def test_list_is_newest_first(tmp_path):
    store = LocalStore(tmp_path / "store")
    ids = [f"run{index:017d}" for index in range(3)]
    for run_id in ids:
        store.commit(run_id, make_staging(tmp_path, run_id=run_id))
    assert [entry["run_id"] for entry in store.list_runs()] == ids[::-1]
    assert len(store.list_runs(limit=2)) == 2


def test_committing_twice_keeps_the_first_run(tmp_path):
    store = LocalStore(tmp_path / "store")
    first = store.commit(RUN_ID, make_staging(tmp_path, requested_by="ana"))
    manifest_before = (tmp_path / "store" / "runs" / RUN_ID / "manifest.json").read_bytes()
    second = store.commit(RUN_ID, make_staging(tmp_path, requested_by="bob"))
    assert first == second
    assert visible_dirs(store) == [RUN_ID]
    assert (tmp_path / "store" / "runs" / RUN_ID / "manifest.json").read_bytes() == manifest_before
    assert store.read_manifest(RUN_ID)["requested_by"] == "ana"
    assert not [p for p in (store.root / "runs").iterdir() if p.name.startswith((".tmp-", ".trash-"))]


def test_interrupted_commit_leaves_nothing_visible(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    staging = make_staging(tmp_path)
    real_copy = store_module._copy_file
    copied = []

    def failing_copy(source, destination):
        if copied:
            raise OSError("disk full")
        copied.append(source)
        real_copy(source, destination)

    monkeypatch.setattr(store_module, "_copy_file", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        store.commit(RUN_ID, staging)
    assert not store.exists(RUN_ID)
    assert store.status(RUN_ID) is None
    assert store.list_runs() == []
    assert visible_dirs(store) == []
    assert [p.name for p in (store.root / "runs").iterdir() if p.is_dir()] == []

    monkeypatch.setattr(store_module, "_copy_file", real_copy)
    store.commit(RUN_ID, staging)
    assert verify(store.location(RUN_ID)).ok


def test_deleting_the_manifest_hides_the_run(tmp_path):
    store = LocalStore(tmp_path / "store")
    location = store.commit(RUN_ID, make_staging(tmp_path))
    os.remove(os.path.join(location, "manifest.json"))
    assert not store.exists(RUN_ID)
    (entry,) = store.list_runs()
    assert entry["status"] == "incomplete"
    assert store.status(RUN_ID)["status"] == "incomplete"
    with pytest.raises(RunNotFoundError):
        store.fetch(RUN_ID, tmp_path / "copy")
    result = verify(location)
    assert not result.ok
    assert "manifest.json is missing" in result.problems[0]


def test_markers_then_commit(tmp_path):
    store = LocalStore(tmp_path / "store")
    assert store.mark(RUN_ID, "queued", {"request": {"dataset": "demo"}})
    assert store.status(RUN_ID)["status"] == "queued"
    assert store.mark(RUN_ID, "running")
    (entry,) = store.list_runs()
    assert entry["status"] == "running"
    assert not store.exists(RUN_ID)

    store.commit(RUN_ID, make_staging(tmp_path))
    assert store.status(RUN_ID)["status"] == "succeeded"
    assert verify(store.location(RUN_ID)).ok  # the marker is the documented exception
    assert store.mark(RUN_ID, "failed", {"error": "late"}) is False
    marker = json.loads(store.read_bytes(RUN_ID, "_status.json"))
    assert marker["status"] == "running"


def test_failed_marker_detail(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.mark(RUN_ID, "failed", {"error": "events.csv: column revenue missing"})
    status = store.status(RUN_ID)
    assert status["status"] == "failed"
    assert status["detail"]["error"].startswith("events.csv")
    with pytest.raises(ValueError):
        store.mark(RUN_ID, "succeeded")


def test_commit_refuses_an_inconsistent_staging_dir(tmp_path):
    store = LocalStore(tmp_path / "store")
    staging = make_staging(tmp_path)
    (staging / "forecast.csv").write_bytes(b"changed after the manifest")
    with pytest.raises(InvalidRunError, match="forecast.csv"):
        store.commit(RUN_ID, staging)
    with pytest.raises(InvalidRunError, match="not"):
        store.commit("another000000000000", make_staging(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidRunError, match="manifest.json"):
        store.commit(RUN_ID, empty)
    assert not (store.root / "runs").exists() or visible_dirs(store) == []


def test_fetch_and_fetch_run(tmp_path):
    store = LocalStore(tmp_path / "store")
    location = store.commit(RUN_ID, make_staging(tmp_path))
    copy = store.fetch(RUN_ID, tmp_path / "copy")
    assert verify(copy).ok
    assert fetch_run(location, tmp_path / "unused") == type(copy)(location)
    with pytest.raises(RunNotFoundError):
        fetch_run(tmp_path / "nowhere", tmp_path / "unused")


def test_rejects_unsafe_ids_and_names(tmp_path):
    store = LocalStore(tmp_path / "store")
    for bad in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(ValueError):
            store.exists(bad)
    store.commit(RUN_ID, make_staging(tmp_path))
    with pytest.raises(ValueError):
        store.read_bytes(RUN_ID, "../../etc/passwd")


def test_open_store_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("LTV_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_store(), LocalStore)
    assert open_store().root == store_module.Path("ltv-runs")
    monkeypatch.setenv("LTV_STORE", str(tmp_path / "env-store"))
    assert open_store().root == tmp_path / "env-store"
    assert open_store(tmp_path / "given").root == tmp_path / "given"
    s3 = open_store("s3://bucket/some/prefix/")
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.location(RUN_ID) == f"s3://bucket/some/prefix/runs/{RUN_ID}"
    with pytest.raises(ValueError):
        open_store("gs://bucket")


def test_a_concurrent_commit_that_finishes_first_wins(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    winner, loser = make_staging(tmp_path, requested_by="ana"), make_staging(tmp_path, requested_by="bob")
    real_copy = store_module._copy_file
    state = {"raced": False}

    def racing_copy(source, destination):
        if not state["raced"]:
            state["raced"] = True
            monkeypatch.setattr(store_module, "_copy_file", real_copy)
            store.commit(RUN_ID, winner)  # finishes while "bob" is still copying
        real_copy(source, destination)

    monkeypatch.setattr(store_module, "_copy_file", racing_copy)
    store.commit(RUN_ID, loser)
    assert store.read_manifest(RUN_ID)["requested_by"] == "ana"
    assert visible_dirs(store) == [RUN_ID]
    assert verify(store.location(RUN_ID)).ok


def test_published_runs_get_the_usual_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        store = LocalStore(tmp_path / "store")
        location = store.commit(RUN_ID, make_staging(tmp_path))
        store.mark("run00000000000000001", "queued")
    finally:
        os.umask(previous)
    assert os.stat(location).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(location, "manifest.json")).st_mode & 0o777 == 0o644
    marker = tmp_path / "store" / "runs" / "run00000000000000001" / "_status.json"
    assert marker.stat().st_mode & 0o777 == 0o644
