"""Pinning a reference before a run is named, and loading a version from an S3 store."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from ltvcore.errors import InputError
from ltvcore.lifecycle.forecasting import pin_request, registered_model, store_of_run
from ltvcore.lifecycle.registry import Registry
from ltvcore.models.registry import ModelOptions
from ltvcore.request import ForecastRequest
from ltvcore.runs.store import open_store


def test_a_model_that_is_no_reference_never_touches_the_store(tmp_path: Path) -> None:
    request = ForecastRequest(model="curve")
    assert pin_request(request, "ftp://not-even-a-store") is request


def test_an_alias_is_pinned_to_the_version_it_names_now(store: Path) -> None:
    registry = Registry(open_store(store))
    [version] = registry.versions("history")
    pinned = pin_request(ForecastRequest(model="history@challenger"), store)
    assert pinned.model == f"history@{version.version}"
    assert pin_request(pinned, store) == pinned  # pinning is idempotent
    with pytest.raises(InputError, match="has no champion"):
        pin_request(ForecastRequest(model="history@champion"), store)
    missing = ForecastRequest(model="history@0000000000000000")
    with pytest.raises(InputError, match="no version"):
        pin_request(missing, store)
    assert pin_request(missing, store, check=False) is missing  # the loader checks it later


def test_the_store_of_a_run() -> None:
    assert store_of_run("s3://bucket/team/ltv/runs/0123456789abcdef0123") == "s3://bucket/team/ltv"
    assert store_of_run("s3://bucket/runs/0123456789abcdef0123/") == "s3://bucket"
    assert store_of_run("/data/ltv-runs/runs/abc") == "/data/ltv-runs"
    assert store_of_run("/somewhere/abc") is None


def test_a_version_in_an_s3_store_loads_verified(store: Path, monkeypatch) -> None:
    local = Registry(open_store(store))
    [version] = local.versions("history")
    model, card = local.load("history", version.version)
    for key, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                       ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_SESSION_TOKEN", "testing")):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="ltv-artifacts")
        s3 = open_store("s3://ltv-artifacts/team", client=client)
        remote = Registry(s3)
        same, created = remote.register("history", model=model, card=card, by="ana")
        assert (same, created) == (version.version, True)  # the id is the bytes', not the place's
        remote.promote("history", same, "champion", by="carla", reason="on S3")
        pinned = pin_request(ForecastRequest(model="history@champion"), s3)
        estimator, ref = registered_model(pinned.model, s3, ModelOptions(horizons=(30,)))
        assert ref == f"history@{same}" and type(estimator).__name__ == "HistoryModel"
        manifest = json.loads(client.get_object(
            Bucket="ltv-artifacts", Key=f"team/models/history/{same}/manifest.json")["Body"].read())
        assert set(manifest["files"]) == {"model.bin", "card.json"}


def test_the_pipeline_steps_load_the_version_from_ltv_store_and_never_split_it(
        store: Path, young_data: Path, tmp_path: Path, monkeypatch) -> None:
    """The SageMaker jobs get the request pinned by the API and the store from ``LTV_STORE``."""
    from ltvcore.workflow import steps

    [version] = Registry(open_store(store)).versions("history")
    monkeypatch.setenv("LTV_STORE", str(store))
    request = ForecastRequest(model=f"history@{version.version}", horizons=(30,)).normalised()
    first = steps.forecast(request, young_data, tmp_path / "shard0", shard_index=0, shard_count=2)
    second = steps.forecast(request, young_data, tmp_path / "shard1", shard_index=1, shard_count=2)
    assert first["run_id"] == second["run_id"]
    assert first["groups"] == 6 and second["groups"] == 0  # one shard forecasts every group
    params = json.loads((tmp_path / "shard0" / "params.json").read_text())
    assert params["model_version"] == f"history@{version.version}"
