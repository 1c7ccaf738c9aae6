"""The registry as a specification, with the model as opaque bytes: content-addressed versions,
stage events, one champion per name, verification, and the same behaviour on S3 (moto)."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest
from moto import mock_aws

from ltvcore.errors import InputError
from ltvcore.lifecycle.registry import ModelIntegrityError, Registry, version_id
from ltvcore.lifecycle.rule import challenger_verdict
from ltvcore.runs.store import open_store


def card(mape180: float, coverage: float = 98.0) -> dict:
    return {"model": "history", "params": {"k": 1}, "trained_at": "2026-01-01T00:00:00.000Z",
            "metrics": {"mape": {"180": mape180}},
            "backtest": {"nominal": 99.0, "horizons": {"30": {"mape": mape180 / 2, "coverage": 99.0},
                                                        "180": {"mape": mape180, "coverage": coverage}}}}


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path, monkeypatch):
    if request.param == "local":
        yield Registry(open_store(tmp_path / "store"))
        return
    for key, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                       ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_SESSION_TOKEN", "testing")):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="ltv-artifacts")
        yield Registry(open_store("s3://ltv-artifacts/team", client=client))


def test_same_bytes_are_the_same_version_and_nothing_is_written_twice(registry):
    version, created = registry.register("history", model=b"weights-1", card=card(20), by="ana")
    assert created and version == version_id("history", hashlib.sha256(b"weights-1").hexdigest())
    again, created_again = registry.register("history", model=b"weights-1", card=card(20), by="bo")
    assert (again, created_again) == (version, False)
    [listed] = registry.versions("history")
    assert listed.stage == "dev" and listed.event.by == "ana" and len(listed.history) == 1
    other, _ = registry.register("history", model=b"weights-2", card=card(18), by="ana")
    assert other != version and len(version) == 16


def test_one_champion_per_name_and_the_previous_one_is_archived(registry):
    first, _ = registry.register("history", model=b"a", card=card(20), by="ana")
    second, _ = registry.register("history", model=b"b", card=card(15), by="ana")
    registry.promote("history", first, "champion", by="carla", reason="first one")
    written = registry.promote("history", second, "champion", by="dan", reason="better at 180 d")
    assert [(e.version, e.stage) for e in written] == [(second, "champion"), (first, "archived")]
    stages = {v.version: (v.stage, v.event.by, v.event.reason) for v in registry.versions("history")}
    assert stages[second] == ("champion", "dan", "better at 180 d")
    assert stages[first][0] == "archived" and second in stages[first][2]
    assert registry.resolve("history@champion").target == second
    assert registry.resolve(f"history@{first}").target == first  # archived still resolves pinned


def test_promote_refuses_bad_input_and_writes_nothing(registry):
    version, _ = registry.register("history", model=b"a", card=card(20), by="ana")
    before = registry.objects.list("models")
    for args, field in ((("history", "0" * 16, "champion"), "version"),
                        (("nope", version, "champion"), "version"),
                        (("history", version, "dev"), "stage"),
                        (("history", version, "gold"), "stage"),
                        (("History!", version, "champion"), "name")):
        with pytest.raises(InputError) as error:
            registry.promote(*args, by="ana", reason="x")
        assert error.value.column == field
    with pytest.raises(InputError, match="--by"):
        registry.promote("history", version, "champion", by=" ", reason="x")
    with pytest.raises(InputError, match="--reason"):
        registry.promote("history", version, "champion", by="ana", reason="")
    assert registry.objects.list("models") == before
    registry.promote("history", version, "archived", by="ana", reason="not needed")
    after = registry.objects.list("models")
    with pytest.raises(InputError, match="already archived"):
        registry.promote("history", version, "archived", by="ana", reason="again")
    assert registry.objects.list("models") == after


def test_references_resolve_or_say_what_is_missing(registry):
    with pytest.raises(InputError, match="no model 'history'"):
        registry.resolve("history@champion")
    version, _ = registry.register("history", model=b"a", card=card(20), by="ana")
    with pytest.raises(InputError, match="has no champion"):
        registry.resolve("history@champion")
    with pytest.raises(InputError, match="no version 0000000000000000"):
        registry.resolve("history@0000000000000000")
    verdict, event = registry.apply_rule("history", version)
    assert verdict.challenger and event.by == "rule" and "no champion yet" in event.reason
    assert registry.resolve("history@challenger").target == version


def test_a_tampered_artifact_is_refused_with_the_reason(registry):
    version, _ = registry.register("history", model=b"weights", card=card(20), by="ana")
    assert registry.verify("history", version) == []
    model, loaded = registry.load("history", version)
    assert model == b"weights" and loaded["version"] == version
    _overwrite(registry, f"models/history/{version}/model.bin", b"weightz")
    problems = registry.verify("history", version)
    assert problems and "model.bin" in problems[0]
    with pytest.raises(ModelIntegrityError, match="does not match its manifest"):
        registry.load("history", version)
    with pytest.raises(ModelIntegrityError):
        registry.promote("history", version, "champion", by="ana", reason="x")


def _overwrite(registry, key: str, body: bytes) -> None:
    """Tamper behind the registry's back (it never overwrites anything itself)."""
    objects = registry.objects
    if hasattr(objects, "root"):
        (objects.root / key).write_bytes(body)
    else:
        objects.client.put_object(Bucket=objects.bucket, Key=f"{objects.prefix}/{key}", Body=body)


def test_a_race_that_left_two_champions_reads_as_one(registry):
    first, _ = registry.register("history", model=b"a", card=card(20), by="ana")
    second, _ = registry.register("history", model=b"b", card=card(15), by="ana")
    registry.record("history", first, "champion", by="x", reason="one")
    registry.record("history", second, "champion", by="y", reason="two")  # no archive written
    stages = {v.version: v.stage for v in registry.versions("history")}
    assert stages == {first: "archived", second: "champion"}


def test_stage_events_are_immutable_objects_newest_first(registry):
    version, _ = registry.register("history", model=b"a", card=card(20), by="ana")
    registry.promote("history", version, "champion", by="carla", reason="go")
    registry.promote("history", version, "archived", by="carla", reason="retire")
    keys = [k for k in registry.objects.list("models/history/stages")]
    assert [k.rsplit("-", 1)[1] for k in keys] == ["archived.json", "champion.json", "dev.json"]
    body = json.loads(registry.objects.read(f"models/history/stages/{keys[0]}"))
    assert set(body) == {"name", "version", "stage", "by", "reason", "at"}


@pytest.mark.parametrize("candidate,champion,expected", [
    (card(20), None, True),                       # no champion yet
    (card(14.0), card(15.0), True),               # exactly one point better
    (card(14.5), card(15.0), False),              # half a point: noise
    (card(10.0, coverage=90.0), card(15.0), False),  # better, but intervals too narrow
])
def test_the_challenger_rule(candidate, champion, expected):
    verdict = challenger_verdict(candidate["backtest"],
                                 None if champion is None else champion["backtest"])
    assert verdict.challenger is expected
    if champion is not None:
        assert "MAPE at 180 d" in verdict.reason and "coverage" in verdict.reason
