from __future__ import annotations

import json
import uuid

import boto3
import pytest
from moto import mock_aws

from ltvcore.runs.audit import verify
from ltvcore.runs.manifest import build_manifest, write_manifest
from ltvcore.runs.store import RunNotFoundError, S3Store, fetch_run, open_store

BUCKET = "ltv-artifacts"
PREFIX = "team/ltv"
RUN_ID = "0123456789abcdef0123"
FILES = {
    "forecast.csv": b"campaign,horizon_days,users,ltv\nall,30,100,1.25\n",
    "curve.csv": b"campaign,day,ltv\nall,0,0.1\nall,1,0.2\n",
    "params.json": b'{"groups": [{"key": {"campaign": "all"}, "models": {"sbg": {"alpha": 0.7, "beta": 1.2}}}]}',
    "report.html": b"<!doctype html><title>LTV</title>",
    "inputs/events.parquet": bytes(range(256)) * 8,
}


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "f" * 40)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


@pytest.fixture
def store(s3):
    return S3Store(BUCKET, PREFIX, client=s3)


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


def key(name, run_id=RUN_ID):
    return f"{PREFIX}/runs/{run_id}/{name}"


def versions(client, name):
    listing = client.list_object_versions(Bucket=BUCKET, Prefix=key(name))
    return [v for v in listing.get("Versions", []) if v["Key"] == key(name)]


def test_commit_then_verify_intact(tmp_path, s3, store):
    location = store.commit(RUN_ID, make_staging(tmp_path))
    assert location == f"s3://{BUCKET}/{PREFIX}/runs/{RUN_ID}"
    assert store.exists(RUN_ID)
    result = verify(location, client=s3)
    assert result.ok, result.lines()
    assert result.files == len(FILES)
    head = s3.head_object(Bucket=BUCKET, Key=key("report.html"))
    assert head["ContentType"] == "text/html"
    assert store.read_bytes(RUN_ID, "inputs/events.parquet") == FILES["inputs/events.parquet"]


def test_open_store_builds_an_s3_backend_lazily(tmp_path, s3):
    lazy = open_store(f"s3://{BUCKET}/{PREFIX}")
    lazy.commit(RUN_ID, make_staging(tmp_path))
    assert lazy.exists(RUN_ID)
    assert verify(lazy.location(RUN_ID)).ok  # verify creates its own client too


@pytest.mark.parametrize("name", [*FILES, "manifest.json"])
def test_tampering_one_byte_of_any_file_fails_naming_it(tmp_path, s3, store, name):
    location = store.commit(RUN_ID, make_staging(tmp_path))
    content = bytearray(s3.get_object(Bucket=BUCKET, Key=key(name))["Body"].read())
    content[len(content) // 2] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key(name), Body=bytes(content))
    result = verify(location, client=s3)
    assert not result.ok
    assert any(name in line for line in result.lines()[1:]), result.lines()


def test_missing_and_extra_files(tmp_path, s3, store):
    location = store.commit(RUN_ID, make_staging(tmp_path))
    s3.delete_object(Bucket=BUCKET, Key=key("curve.csv"))
    s3.put_object(Bucket=BUCKET, Key=key("inputs/sneaky.csv"), Body=b"x")
    marker = json.dumps({"run_id": RUN_ID, "status": "running", "detail": {}}).encode()
    s3.put_object(Bucket=BUCKET, Key=key("_status.json"), Body=marker)  # its pre-seal marker
    result = verify(location, client=s3)
    assert result.missing == ("curve.csv",)
    assert result.extra == ("inputs/sneaky.csv",)
    assert result.altered == ()


def test_deleting_the_manifest_hides_the_run(tmp_path, s3, store):
    location = store.commit(RUN_ID, make_staging(tmp_path))
    s3.delete_object(Bucket=BUCKET, Key=key("manifest.json"))
    assert not store.exists(RUN_ID)
    (entry,) = store.list_runs()
    assert entry["status"] == "incomplete"
    assert store.status(RUN_ID)["status"] == "incomplete"
    with pytest.raises(RunNotFoundError):
        store.fetch(RUN_ID, tmp_path / "copy")
    result = verify(location, client=s3)
    assert "manifest.json is missing" in result.problems[0]


def test_committing_twice_never_overwrites(tmp_path, s3, store):
    store.commit(RUN_ID, make_staging(tmp_path, requested_by="ana"))
    store.commit(RUN_ID, make_staging(tmp_path, requested_by="bob"))
    assert len(versions(s3, "manifest.json")) == 1
    for name in FILES:
        assert len(versions(s3, name)) == 1, name
    assert store.read_manifest(RUN_ID)["requested_by"] == "ana"
    assert [entry["run_id"] for entry in store.list_runs()] == [RUN_ID]


def test_conditional_put_refuses_when_another_commit_sealed_first(tmp_path, s3, store, monkeypatch):
    winner = make_staging(tmp_path, requested_by="ana")
    loser = make_staging(tmp_path, requested_by="bob")
    monkeypatch.setattr(store, "exists", lambda run_id: False)  # both saw no run when they started
    store.commit(RUN_ID, winner)
    store.commit(RUN_ID, loser)  # its data uploads match; its manifest put gets 412
    monkeypatch.undo()
    assert len(versions(s3, "manifest.json")) == 1
    assert store.read_manifest(RUN_ID)["requested_by"] == "ana"
    assert verify(store.location(RUN_ID), client=s3).ok


def test_a_commit_stops_when_the_run_was_sealed_with_other_bytes(tmp_path, s3, store, monkeypatch):
    store.commit(RUN_ID, make_staging(tmp_path, requested_by="ana"))
    other = dict(FILES, **{"report.html": b"<!doctype html><title>other render</title>"})
    real_exists = store.exists
    calls = []

    def exists(run_id):  # the late commit started before the run was sealed
        calls.append(run_id)
        return len(calls) > 1 and real_exists(run_id)

    monkeypatch.setattr(store, "exists", exists)
    store.commit(RUN_ID, make_staging(tmp_path, files=other, requested_by="bob"))
    monkeypatch.undo()
    assert len(calls) == 2  # stopped at report.html, the first upload that differs
    assert store.read_manifest(RUN_ID)["requested_by"] == "ana"
    assert len(versions(s3, "report.html")) == 1
    assert verify(store.location(RUN_ID), client=s3).ok


def test_debris_of_an_interrupted_upload_is_replaced(tmp_path, s3, store):
    s3.put_object(Bucket=BUCKET, Key=key("forecast.csv"), Body=b"half a fi")
    assert not store.exists(RUN_ID)
    assert store.status(RUN_ID)["status"] == "incomplete"
    store.commit(RUN_ID, make_staging(tmp_path))
    assert verify(store.location(RUN_ID), client=s3).ok


def test_markers_list_and_status(tmp_path, s3, store):
    assert store.status(RUN_ID) is None
    assert store.mark("run00000000000000001", "failed", {"error": "bad input"})
    assert store.mark(RUN_ID, "running", {"request": {"dataset": "demo"}})
    statuses = {entry["run_id"]: entry["status"] for entry in store.list_runs()}
    assert statuses == {"run00000000000000001": "failed", RUN_ID: "running"}
    store.commit(RUN_ID, make_staging(tmp_path))
    assert store.status(RUN_ID)["status"] == "succeeded"
    assert store.mark(RUN_ID, "failed") is False
    assert store.list_runs()[0]["run_id"] == RUN_ID  # newest first
    assert verify(store.location(RUN_ID), client=s3).ok


def test_list_runs_with_an_empty_prefix(tmp_path, s3):
    root_store = S3Store(BUCKET, "", client=s3)
    root_store.commit(RUN_ID, make_staging(tmp_path))
    assert [entry["run_id"] for entry in root_store.list_runs()] == [RUN_ID]
    assert root_store.location(RUN_ID) == f"s3://{BUCKET}/runs/{RUN_ID}"
    assert verify(root_store.location(RUN_ID), client=s3).ok


def test_fetch_downloads_an_intact_copy(tmp_path, s3, store):
    location = store.commit(RUN_ID, make_staging(tmp_path))
    copy = fetch_run(location, tmp_path / "copy", client=s3)
    assert (copy / "inputs" / "events.parquet").read_bytes() == FILES["inputs/events.parquet"]
    assert verify(copy).ok


def test_bad_s3_run_uri(s3):
    with pytest.raises(ValueError):
        verify(f"s3://{BUCKET}/{PREFIX}/{RUN_ID}", client=s3)


def test_cli_on_s3(tmp_path, s3, store, capsys):
    import argparse

    from ltvcore.cli.runs import add_parsers

    parser = argparse.ArgumentParser(prog="ltv")
    add_parsers(parser.add_subparsers(dest="command"))

    def run_cli(*argv):
        args = parser.parse_args(argv)
        return args.func(args)

    location = store.commit(RUN_ID, make_staging(tmp_path))
    assert run_cli("audit", "verify", location) == 0
    assert capsys.readouterr().out == f"intact: {len(FILES)} files\n"
    assert run_cli("runs", "list", "--store", f"s3://{BUCKET}/{PREFIX}") == 0
    assert RUN_ID in capsys.readouterr().out
    s3.put_object(Bucket=BUCKET, Key=key("params.json"), Body=b"{}")
    assert run_cli("audit", "verify", location) == 1
    assert "altered: params.json" in capsys.readouterr().out
    assert run_cli("audit", "verify", f"s3://no-such-bucket/runs/{RUN_ID}") == 1
    assert "error: cannot verify" in capsys.readouterr().err
