"""The run index (ltvcore/runs/index.py): its names, how a listing picks entries, and what a
listing costs on S3 as the store grows. What both backends do with it is in
``test_store_contract.py``."""

from __future__ import annotations

import argparse
import collections
import uuid

import boto3
import pytest
from moto import mock_aws

from ltvcore.runs import index
from ltvcore.runs.manifest import build_manifest, write_manifest
from ltvcore.runs.store import LocalStore, S3Store

BUCKET = "ltv-index"


def test_names_sort_newest_first_and_say_what_they_index():
    older = index.entry_name({"run_id": "b-run", "status": "queued", "created": "2025-07-01T10:00:00.000Z"})
    newer = index.entry_name({"run_id": "a_run", "status": "succeeded", "created": "2025-07-01T10:00:00.001Z"})
    assert sorted([older, newer, index.COMPLETE]) == [index.COMPLETE, newer, older]
    key = index.parse_name(newer)
    assert key is not None and (key.run_id, key.status) == ("a_run", "succeeded")
    assert key.stamp == index.parse_name(older).stamp - 1
    for other in (index.COMPLETE, f".{newer}.0123456789ab.tmp", "notes.txt", newer.replace("a_run", "../x")):
        assert index.parse_name(other) is None


def test_pick_keeps_each_runs_newest_entry_and_stops_after_the_limit():
    def name(run_id, status, millis):
        return index.entry_name({"run_id": run_id, "status": status,
                                 "created": f"2025-07-01T10:00:00.{millis:03d}Z"})

    names = sorted([name("a", "queued", 1), name("a", "running", 2), name("a", "succeeded", 9),
                    name("b", "failed", 8), name("c", "running", 7), name("d", "queued", 7),
                    name("e", "queued", 3), index.COMPLETE])
    consumed = []

    def listing():
        for item in names:
            consumed.append(item)
            yield item

    keys, complete = index.pick(listing(), 3)
    assert complete
    # a's newest event wins; c and d changed in the same millisecond: both kept, the caller orders
    assert [(key.run_id, key.status) for key in keys] == [("a", "succeeded"), ("b", "failed"),
                                                          ("c", "running"), ("d", "queued")]
    assert consumed[-1] == name("e", "queued", 3)  # stopped at the first entry past that millisecond
    keys, complete = index.pick(iter(names[1:]), None)
    assert not complete and [key.run_id for key in keys] == ["a", "b", "c", "d", "e"]


def test_an_entry_holds_the_row_less_what_is_derived():
    row = {"run_id": "r1", "status": "failed", "created": "2025-07-01T10:00:00.000Z", "location": "/x",
           "summary": "dataset=demo", "request": {"dataset": "demo"}, "detail": {"error": "bad"}}
    key = index.parse_name(index.entry_name(row))
    assert index.read_entry(index.entry_bytes(row), key) == {
        "run_id": "r1", "status": "failed", "created": "2025-07-01T10:00:00.000Z",
        "request": {"dataset": "demo"}, "detail": {"error": "bad"}}
    assert index.read_entry(b"[]", key) is None
    assert index.read_entry(index.entry_bytes(row | {"status": "queued"}), key) is None


# -- what a listing costs on S3 ------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "f" * 40)
    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_SESSION_TOKEN", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def staged(tmp_path, run_id):
    folder = tmp_path / f"staging-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "forecast.csv").write_bytes(b"campaign,horizon_days,users,ltv\nall,30,100,1.25\n")
    write_manifest(folder, build_manifest(folder, run_id=run_id, request={"dataset": "demo"}, as_of="2025-06-30",
                                          requested_by="ana", seed=1, timings={}))
    return folder


def filled_store(s3, tmp_path, runs):
    """A store of ``runs`` runs, each queued then failed, one in ten succeeded."""
    store = S3Store(BUCKET, f"runs-{runs}", client=s3)
    for number in range(runs):
        run_id = f"run{number:017d}"
        store.mark(run_id, "queued", {"requested_by": "ana", "request": {"dataset": "demo"}})
        if number % 10 == 0:
            store.commit(run_id, staged(tmp_path, run_id))
        else:
            store.mark(run_id, "failed", {"error": "bad input"})
    return store


def calls(store, action):
    """The S3 operations ``action()`` sends, by name."""
    counted = collections.Counter()

    def count(event_name, **kwargs):
        counted[event_name.rsplit(".", 1)[-1]] += 1

    store.client.meta.events.register("before-call.s3.*", count)
    try:
        result = action()
    finally:
        store.client.meta.events.unregister("before-call.s3.*", count)
    return counted, result


@pytest.mark.slow
def test_listing_costs_the_same_with_10_or_300_runs(s3, tmp_path):
    measured = {}  # runs -> (calls of list_runs(limit=50), calls of the scan it replaces)
    for runs in (10, 60, 300):
        store = filled_store(s3, tmp_path, runs)
        store.list_runs()  # the index is complete (an empty store's first listing marks it so)
        counted, rows = calls(store, lambda store=store: store.list_runs(limit=50))
        shown = min(runs, 50)
        assert [row["run_id"] for row in rows] == [f"run{n:017d}" for n in range(runs - 1, runs - 1 - shown, -1)]
        # one page of index keys, then per row one manifest check and one entry
        assert counted == {"ListObjectsV2": 1, "HeadObject": shown, "GetObject": shown}, runs
        assert rows == [store.status(row["run_id"]) for row in rows]
        scanned, _rows = calls(store, lambda store=store: store._scan_runs(50))
        measured[runs] = (sum(counted.values()), sum(scanned.values()))
    assert measured[60][0] == measured[300][0] == 1 + 2 * 50
    assert measured[10][0] == 1 + 2 * 10
    assert measured[300][1] > 4 * measured[60][1]  # without the index: every run is read


def test_the_first_listing_of_an_unindexed_store_indexes_it_once(s3, tmp_path):
    store = filled_store(s3, tmp_path, 12)
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=store._index_prefix())["Contents"]:
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])  # as written before the index
    first, rows = calls(store, lambda: store.list_runs(limit=5))
    assert first["PutObject"] == 12 + 1  # an entry per run, then .complete
    again, rows_again = calls(store, lambda: store.list_runs(limit=5))
    assert rows_again == rows and "PutObject" not in again
    assert sum(again.values()) == 1 + 2 * 5


def test_cli_reindex(tmp_path, capsys):
    from ltvcore.cli.runs import add_parsers

    parser = argparse.ArgumentParser(prog="ltv")
    add_parsers(parser.add_subparsers(dest="command"))
    store = LocalStore(tmp_path / "store")
    store.mark("run00000000000000001", "queued", {})
    store.mark("run00000000000000002", "failed", {"error": "bad"})
    args = parser.parse_args(["runs", "reindex", "--store", str(tmp_path / "store")])
    assert args.func(args) == 0
    assert capsys.readouterr().out == f"indexed 2 runs in {tmp_path / 'store'}\n"
    assert index.COMPLETE in set(store._index_names())
    args = parser.parse_args(["runs", "reindex", "--store", "gs://elsewhere"])
    assert args.func(args) == 2
