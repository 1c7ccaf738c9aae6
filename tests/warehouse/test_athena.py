"""The AWS refresh of the warehouse (ltvcore.warehouse.athena): plan and commit on moto S3, and
the statements it builds, which parse as Trino and are run here on DuckDB in Athena's place."""

from __future__ import annotations

import io
import json

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from moto import mock_aws

from ltvcore.errors import InputError
from ltvcore.runs.ids import combine_digests
from ltvcore.warehouse import athena
from ltvcore.warehouse.athena import MANIFEST, Warehouse
from tests.infra.fake_athena import UNLOAD, parquet, run_unload

BUCKET = "ltv-artifacts"
WAREHOUSE = Warehouse(bucket=BUCKET, database="ltvforecast_warehouse")


@pytest.fixture
def s3(monkeypatch):
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def land(s3, date: str, name: str, rows: list[tuple[str, float]], dataset: str = "demo") -> None:
    """An events object as Firehose would write it: user_id, revenue under event_date=D/."""
    table = pa.table({"user_id": [r[0] for r in rows], "revenue": [r[1] for r in rows]})
    s3.put_object(Bucket=BUCKET, Key=f"warehouse/{dataset}/events/event_date={date}/{name}",
                  Body=parquet(table))


def run_like_athena(s3, item: dict, tmp_path) -> dict:
    """The Map iteration: the item's UNLOAD on the fake Athena, then what the Unloaded state keeps."""
    scanned = run_unload(s3, item["sql"], database=WAREHOUSE.database, bucket=BUCKET)
    return {**{k: v for k, v in item.items() if k != "sql"}, "query_id": f"q-{item['date']}", "bytes": scanned}


def refresh(s3, tmp_path, **limits) -> tuple[athena.Plan, dict]:
    planned = athena.plan(s3, WAREHOUSE, **limits)
    results = [run_like_athena(s3, item, tmp_path) for item in planned.items]
    done = athena.commit(s3, WAREHOUSE, datasets=planned.datasets, results=results, removed=planned.removed)
    return planned, done


def state(s3, dataset: str = "demo") -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"warehouse/{dataset}/state.json")["Body"].read())


def aggregate(s3, date: str, dataset: str = "demo") -> dict[str, tuple[float, int]]:
    prefix = f"warehouse/{dataset}/user_day/event_date={date}/"
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()))
              for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    rows = pa.concat_tables(tables).to_pylist()
    assert all(set(row) == {"user_id", "revenue", "events"} for row in rows)  # the date is the folder
    return {row["user_id"]: (row["revenue"], row["events"]) for row in rows}


# --------------------------------------------------------------------------- statements


def test_the_select_parses_as_trino_and_the_unload_wraps_it():
    sql = athena.unload_statement(WAREHOUSE, "demo", "2026-01-02")
    found = UNLOAD.fullmatch(sql)
    assert found and found["target"] == f"s3://{BUCKET}/warehouse/demo/user_day/event_date=2026-01-02/"
    assert found["select"] == athena.select_statement(WAREHOUSE, "demo", "2026-01-02")
    parsed = sqlglot.parse_one(found["select"], read="trino")
    assert [e.alias_or_name for e in parsed.expressions] == ["user_id", "revenue", "events"]
    tables = {f"{t.db}.{t.name}" for t in parsed.find_all(sqlglot.exp.Table)}
    assert tables == {"ltvforecast_warehouse.events"}
    text = parsed.sql(dialect="trino")
    assert "dataset = 'demo'" in text  # the injected projection key, as an equality
    assert "BETWEEN CAST('2026-01-02' AS DATE) AND CAST('2026-01-02' AS DATE)" in text
    assert "\n" not in sql and "/*" not in sql  # one compact line through Step Functions


@pytest.mark.parametrize("dataset", ["../x", "a'b", "a b", ".hidden", "a..b", ""])
def test_names_that_could_break_out_of_the_sql_or_the_key_are_refused(dataset):
    with pytest.raises(ValueError):
        athena.unload_statement(WAREHOUSE, dataset, "2026-01-02")


@pytest.mark.parametrize("date", ["2026-13-01", "2026-1-1", "20260101", "2026-01-01' OR '1'='1"])
def test_dates_must_be_calendar_dates(date):
    with pytest.raises(ValueError):
        athena.unload_statement(WAREHOUSE, "demo", date)


def test_the_dataset_rule_is_the_apis():
    from ltvcore.api.models import DATASET_NAME

    assert athena.DATASET_NAME.pattern == DATASET_NAME.pattern


# --------------------------------------------------------------------------- plan and commit


def test_new_dates_are_aggregated_and_committed(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0), ("u1", 2.5), ("u2", 0.0)])
    land(s3, "2026-01-02", "part-1.parquet", [("u1", 4.0)])
    land(s3, "2026-01-02", "_SUCCESS", [])  # a writer's marker: Athena skips it, and so do we
    planned, done = refresh(s3, tmp_path)
    assert [(i["dataset"], i["date"], i["files"]) for i in planned.items] == [
        ("demo", "2026-01-01", 1), ("demo", "2026-01-02", 1)]
    assert done["committed"] == 2 and done["failed_count"] == 0 and done["bytes_scanned"] > 0
    assert aggregate(s3, "2026-01-01") == {"u1": (3.5, 2), "u2": (0.0, 1)}
    found = state(s3)
    assert found["engine"] == "athena" and found["dataset"] == "demo"
    assert (found["first_event_date"], found["last_event_date"]) == ("2026-01-01", "2026-01-02")
    entry = found["dates"]["2026-01-01"]
    assert entry["aggregate"] == combine_digests(entry["objects"]) and entry["files"] == 1
    assert found["digest"] == combine_digests({f"user_day/{d}": e["aggregate"] for d, e in found["dates"].items()})
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"warehouse/demo/{MANIFEST}")["Body"].read())
    assert manifest[0] == {"prefix": f"s3://{BUCKET}/warehouse/demo/"}
    assert manifest[1:3] == ["state.json", "warehouse.json"]
    assert sorted(manifest[3:]) == sorted(f"user_day/event_date={d}/{name}" for d, e in found["dates"].items()
                                          for name in e["objects"])
    assert not any("events/" in entry for entry in manifest[1:])  # a forecast never reads raw events
    marker = s3.get_object(Bucket=BUCKET, Key="warehouse/demo/warehouse.json")["Body"].read()
    assert json.loads(marker) == {"format": 1}


def test_a_second_run_plans_nothing_and_rewrites_nothing(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0)])
    refresh(s3, tmp_path)
    before = s3.head_object(Bucket=BUCKET, Key="warehouse/demo/state.json")["VersionId"]
    planned, done = refresh(s3, tmp_path)
    assert planned.items == [] and planned.removed == [] and planned.deferred == 0
    assert done["written"] == []
    assert s3.head_object(Bucket=BUCKET, Key="warehouse/demo/state.json")["VersionId"] == before


def test_a_late_file_re_aggregates_only_its_date(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0)])
    land(s3, "2026-01-02", "part-1.parquet", [("u2", 2.0)])
    refresh(s3, tmp_path)
    first = state(s3)
    land(s3, "2026-01-01", "part-2.parquet", [("u1", 5.0), ("u3", 1.0)])  # late events of an old date
    planned, done = refresh(s3, tmp_path)
    assert [(i["date"], i["files"]) for i in planned.items] == [("2026-01-01", 2)]
    assert aggregate(s3, "2026-01-01") == {"u1": (6.0, 2), "u3": (1.0, 1)}  # the stale object is gone
    second = state(s3)
    assert second["dates"]["2026-01-02"] == first["dates"]["2026-01-02"]  # unchanged date skipped
    assert second["dates"]["2026-01-01"]["sources"] != first["dates"]["2026-01-01"]["sources"]
    assert second["digest"] != first["digest"]


def test_a_rewritten_object_is_a_change_too(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0)])
    refresh(s3, tmp_path)
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 7.0)])  # same key, new ETag
    planned, _ = refresh(s3, tmp_path)
    assert [i["date"] for i in planned.items] == ["2026-01-01"]
    assert aggregate(s3, "2026-01-01") == {"u1": (7.0, 1)}


def test_a_date_whose_events_are_gone_leaves_the_state(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0)])
    land(s3, "2026-01-02", "part-1.parquet", [("u1", 1.0)])
    refresh(s3, tmp_path)
    s3.delete_object(Bucket=BUCKET, Key="warehouse/demo/events/event_date=2026-01-02/part-1.parquet")
    planned, done = refresh(s3, tmp_path)
    assert planned.items == [] and planned.removed == [{"dataset": "demo", "date": "2026-01-02"}]
    assert done["removed"] == 1
    assert list(state(s3)["dates"]) == ["2026-01-01"]
    assert not s3.list_objects_v2(Bucket=BUCKET, Prefix="warehouse/demo/user_day/event_date=2026-01-02/").get(
        "Contents")


def test_datasets_are_planned_apart_and_the_backlog_is_deferred(s3, tmp_path):
    for day in ("01", "02", "03"):
        land(s3, f"2026-01-{day}", "a.parquet", [("u1", 1.0)], dataset="demo")
    land(s3, "2026-01-01", "a.parquet", [("v1", 2.0)], dataset="other")
    planned = athena.plan(s3, WAREHOUSE, limit=2)
    assert planned.datasets == ["demo", "other"]
    assert [(i["dataset"], i["date"]) for i in planned.items] == [("demo", "2026-01-01"), ("demo", "2026-01-02")]
    assert planned.deferred == 2
    results = [run_like_athena(s3, item, tmp_path) for item in planned.items]
    athena.commit(s3, WAREHOUSE, datasets=planned.datasets, results=results)
    following = athena.plan(s3, WAREHOUSE, limit=2)
    assert [(i["dataset"], i["date"]) for i in following.items] == [("demo", "2026-01-03"), ("other", "2026-01-01")]
    assert following.deferred == 0


def test_installs_and_spend_are_digested_from_their_etags_and_listed_for_the_forecast(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0)])
    s3.put_object(Bucket=BUCKET, Key="warehouse/demo/installs/part-1.parquet", Body=b"installs")
    s3.put_object(Bucket=BUCKET, Key="warehouse/demo/spend/part-1.parquet", Body=b"spend")
    refresh(s3, tmp_path)
    found = state(s3)
    etag = s3.head_object(Bucket=BUCKET, Key="warehouse/demo/installs/part-1.parquet")["ETag"]
    assert found["installs"] == combine_digests({"part-1.parquet": etag})
    assert {"installs", "spend"} <= set(found) and found["digest"] == combine_digests({
        "user_day/2026-01-01": found["dates"]["2026-01-01"]["aggregate"],
        "installs": found["installs"], "spend": found["spend"]})
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"warehouse/demo/{MANIFEST}")["Body"].read())
    assert {"installs/part-1.parquet", "spend/part-1.parquet"} <= set(manifest[1:])
    # new installs and no new events: the next commit still records them (and names new runs)
    s3.put_object(Bucket=BUCKET, Key="warehouse/demo/installs/part-2.parquet", Body=b"more installs")
    planned, done = refresh(s3, tmp_path)
    assert planned.items == [] and done["written"] == ["demo"]
    assert state(s3)["installs"] != found["installs"] and state(s3)["digest"] != found["digest"]


def test_a_failed_query_is_recorded_refused_and_planned_again(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0)])
    land(s3, "2026-01-02", "part-1.parquet", [("u1", 1.0)])
    planned = athena.plan(s3, WAREHOUSE)
    good = run_like_athena(s3, planned.items[0], tmp_path)
    bad = {**{k: v for k, v in planned.items[1].items() if k != "sql"}, "error": "States.TaskFailed",
           "cause": "HIVE_CANNOT_OPEN_SPLIT: part-1.parquet is not a Parquet file"}
    done = athena.commit(s3, WAREHOUSE, datasets=planned.datasets, results=[good, bad])
    assert done["failed_count"] == 1 and done["failed"][0]["date"] == "2026-01-02"
    found = state(s3)
    assert "HIVE_CANNOT_OPEN_SPLIT" in found["dates"]["2026-01-02"]["failed"]
    assert found["last_event_date"] == "2026-01-01"
    local = tmp_path / "copy"
    (local / "user_day" / "event_date=2026-01-01").mkdir(parents=True)
    (local / "state.json").write_text(json.dumps(found))
    for name in found["dates"]["2026-01-01"]["objects"]:
        (local / "user_day" / "event_date=2026-01-01" / name).write_bytes(b"x")
    with pytest.raises(InputError, match="could not aggregate 2026-01-02.*HIVE_CANNOT_OPEN_SPLIT"):
        athena.verify_download(local, found["digest"])
    assert [i["date"] for i in athena.plan(s3, WAREHOUSE).items] == ["2026-01-02"]


def test_verify_download_checks_the_digest_and_every_object(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0)])
    refresh(s3, tmp_path)
    found = state(s3)
    local = tmp_path / "copy"
    folder = local / "user_day" / "event_date=2026-01-01"
    folder.mkdir(parents=True)
    (local / "state.json").write_text(json.dumps(found))
    with pytest.raises(InputError, match="incomplete"):
        athena.verify_download(local, found["digest"])
    for name in found["dates"]["2026-01-01"]["objects"]:
        (folder / name).write_bytes(b"x")
    assert athena.verify_download(local, found["digest"])["digest"] == found["digest"]
    with pytest.raises(InputError, match="changed after the forecast was requested"):
        athena.verify_download(local, "0" * 64)
    with pytest.raises(InputError, match="no state.json"):
        athena.verify_download(tmp_path / "empty")


def test_a_dataset_emptied_of_events_commits_an_empty_state(s3, tmp_path):
    land(s3, "2026-01-01", "part-1.parquet", [("u1", 1.0)])
    refresh(s3, tmp_path)
    s3.delete_object(Bucket=BUCKET, Key="warehouse/demo/events/event_date=2026-01-01/part-1.parquet")
    _, done = refresh(s3, tmp_path)
    assert done["removed"] == 1 and done["written"] == ["demo"]
    found = state(s3)
    assert found["dates"] == {} and found["last_event_date"] is None
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"warehouse/demo/{MANIFEST}")["Body"].read())
    assert manifest[1:] == ["state.json", "warehouse.json"]
