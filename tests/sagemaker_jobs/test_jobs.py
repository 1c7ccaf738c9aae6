"""The processing-job entry points, end to end on sample data, with ``/opt/ml/processing``
remapped to temporary folders and SageMaker's data movement done by hand.

The warehouse is built the AWS way on moto S3: ``ltv warehouse ingest`` locally, ``aws s3 sync``
to the bucket, then the refresh's plan → Athena (DuckDB in its place) → commit. A request then
runs prepare (on what the manifest lists: aggregates, never events) → forecast on two
"instances" (one shard spec each, as ShardedByS3Key hands them out) → report → publish, and the
run gets the id the API named from ``state.json``'s digest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.pipeline_definition import JobSettings, forecast_definition
from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.runs import ids, naming
from ltvcore.runs.audit import verify
from ltvcore.runs.manifest import code_version
from ltvcore.runs.store import open_store
from ltvcore.sample import write_sample
from ltvcore.warehouse import athena
from sagemaker_jobs import forecast, paths, prepare, publish, report
from tests.infra.fake_athena import download_manifest, run_unload, sync
from tests.infra.support import ROOT

REQUEST = ForecastRequest(dataset="demo", horizons=(30, 90))
BUCKET = "ltv-artifacts"
WAREHOUSE = athena.Warehouse(bucket=BUCKET, database="ltvforecast_warehouse")


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """The dataset's committed objects, downloaded as the Prepare step's ManifestFile input
    does, and the local warehouse they came from (refreshed locally, for comparison)."""
    from ltvcore.warehouse.store import Warehouse

    root = tmp_path_factory.mktemp("aws")
    sample = write_sample(root / "files", install_days=5, observed_days=7, n_campaigns=3, users_per_day=40)
    local = Warehouse(root / "local")
    local.ingest(**{role: sample["files"][role] for role in ("events", "installs", "spend")})
    environment = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        with mock_aws():
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket=BUCKET)
            sync(s3, local.root, BUCKET, "warehouse/demo")  # events/, installs/, spend/, warehouse.json
            planned = athena.plan(s3, WAREHOUSE)
            results = [{**{k: v for k, v in item.items() if k != "sql"}, "query_id": "q",
                        "bytes": run_unload(s3, item["sql"], database=WAREHOUSE.database, bucket=BUCKET)}
                       for item in planned.items]
            done = athena.commit(s3, WAREHOUSE, datasets=planned.datasets, results=results)
            assert done["committed"] == len(planned.items) == 11 and done["failed_count"] == 0
            listed = download_manifest(s3, BUCKET, f"warehouse/demo/{athena.MANIFEST}", root / "copy")
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    assert not any(name.startswith("events/") for name in listed)
    local.refresh()
    return root / "copy", local.root


def _instance(root: Path, inputs: dict[str, Path]) -> Path:
    """A processing instance's /opt/ml/processing, with each input copied where the job reads it."""
    for relative, source in inputs.items():
        target = root / relative
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target / source.name)
    return root


def _arguments(shards: int, parameters: dict[str, str]) -> dict[str, list[str]]:
    """Each step's container arguments as the pipeline definition passes them."""
    settings = JobSettings(image_uri="image", role_arn="role", bucket="bucket")
    definition = forecast_definition(settings, shard_count=shards, cache_days=7, warehouse_prefix="warehouse",
                                     manifest=athena.MANIFEST, scratch_runs="scratch/runs")
    return {step["Name"]: [parameters[a["Get"].split(".", 1)[1]] if isinstance(a, dict) else a
                           for a in step["Arguments"]["AppSpecification"].get("ContainerArguments", [])]
            for step in definition["Steps"]}


def _digest(dataset: Path) -> str:
    """What the API names the run with: state.json's digest, read, never computed."""
    return json.loads((dataset / "state.json").read_text())["digest"]


def _run_request(tmp: Path, dataset: Path, monkeypatch, shards: int, run_id: str | None = None) -> dict:
    digest = _digest(dataset)
    run_id = run_id or ids.run_id(REQUEST.normalised(), digest, code_version())
    arguments = _arguments(shards, {"RunKey": run_id, "Dataset": "demo", "AsOf": "latest",
                                    "InputDigest": digest})
    monkeypatch.setenv("LTV_RUN_ID", run_id)  # as the state machine sets it for the publish job
    tmp.mkdir(parents=True)
    request_file = tmp / "request.json"
    request_file.write_text(json.dumps(REQUEST.normalised()))
    monkeypatch.setenv("LTV_SHARD_COUNT", str(shards))

    step = _instance(tmp / "prepare", {paths.PREPARE_INPUT: dataset})
    monkeypatch.setenv("LTV_PROCESSING_ROOT", str(step))
    assert prepare.main(arguments["Prepare"]) == 0
    specs = sorted((step / paths.SHARDS_OUTPUT).iterdir())
    assert len(specs) == shards

    parts = tmp / "parts"
    for index, spec in enumerate(specs):
        instance = _instance(tmp / f"forecast-{index}", {
            paths.FORECAST_PREPARED: step / paths.PREPARE_OUTPUT,
            paths.FORECAST_REQUEST: request_file, paths.FORECAST_SHARD: spec})
        monkeypatch.setenv("LTV_PROCESSING_ROOT", str(instance))
        assert forecast.main(arguments["Forecast"]) == 0
        shutil.copytree(instance / paths.FORECAST_OUTPUT, parts, dirs_exist_ok=True)

    merge = _instance(tmp / "report", {paths.REPORT_INPUT: parts})
    monkeypatch.setenv("LTV_PROCESSING_ROOT", str(merge))
    assert report.main(arguments["Report"]) == 0

    job = _instance(tmp / "publish", {paths.PUBLISH_INPUT: merge / paths.REPORT_OUTPUT})
    monkeypatch.setenv("LTV_PROCESSING_ROOT", str(job))
    monkeypatch.setenv("LTV_STORE", str(tmp.parent / "store"))
    monkeypatch.setenv("LTV_REQUESTED_BY", "ana")
    assert publish.main([]) == 0
    result = json.loads((job / paths.PUBLISH_OUTPUT / publish.RESULT).read_text())
    return {"result": result, "digest": digest, "prepared": step / paths.PREPARE_OUTPUT}


def test_a_sharded_request_publishes_the_run_the_api_named(committed, tmp_path, monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "3" * 40)
    done = _run_request(tmp_path / "two", committed[0], monkeypatch, shards=2)
    expected = ids.run_id(REQUEST.normalised(), done["digest"], code_version())
    result = done["result"]
    assert result["run_id"] == expected and result["reused"] is False
    store = open_store(tmp_path / "store")
    assert store.status(expected)["status"] == "succeeded"
    assert verify(result["location"]).ok
    manifest = store.read_manifest(expected)
    assert manifest["requested_by"] == "ana"
    assert {"forecast.csv", "curve.csv", "params.json", "report.html"} <= set(manifest["files"])

    single = _run_request(tmp_path / "one", committed[0], monkeypatch, shards=1)
    assert single["result"] == {**result, "reused": True}  # same run: found, not rewritten


def test_athena_and_duckdb_aggregates_forecast_the_same(committed, tmp_path, monkeypatch):
    """One SQL, two engines: the run prepared from Athena's aggregates forecasts what the run
    prepared from the local refresh's does (their ids differ: ETags versus sha256 digests)."""
    monkeypatch.setenv("LTV_GIT_COMMIT", "4" * 40)
    aws = _run_request(tmp_path / "aws", committed[0], monkeypatch, shards=1)["result"]
    local = tmp_path / "local-copy"
    shutil.copytree(committed[1], local, ignore=shutil.ignore_patterns("events"))
    # the local warehouse's own state, verified by its refresh: the prepare step reads it alike
    duck = _run_request(tmp_path / "duck", local, monkeypatch, shards=1)["result"]
    assert aws["run_id"] != duck["run_id"]
    first = (Path(aws["location"]) / "forecast.csv").read_text()
    second = (Path(duck["location"]) / "forecast.csv").read_text()
    assert first == second


def test_sharded_and_single_instance_forecasts_agree(committed, tmp_path, monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "4" * 40)
    two = _run_request(tmp_path / "a" / "two", committed[0], monkeypatch, shards=2)["result"]
    monkeypatch.setenv("LTV_GIT_COMMIT", "5" * 40)  # another code version: a new run, computed again
    monkeypatch.setattr(naming, "_cache", None)
    one = _run_request(tmp_path / "b" / "one", committed[0], monkeypatch, shards=1)["result"]
    first = (Path(two["location"]) / "forecast.csv").read_text()
    second = (Path(one["location"]) / "forecast.csv").read_text()
    assert first == second


def test_publish_refuses_a_run_other_than_the_requested_one(committed, tmp_path, monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "7" * 40)
    with pytest.raises(InputError, match="not the requested run 0000"):
        _run_request(tmp_path / "x", committed[0], monkeypatch, shards=1, run_id="0" * 20)
    assert not (tmp_path / "store" / "runs").exists()


def test_changed_data_is_refused_with_a_message_sagemaker_shows(committed, tmp_path):
    instance = _instance(tmp_path / "prepare", {paths.PREPARE_INPUT: committed[0]})
    message = tmp_path / "message"
    env = {**os.environ, "LTV_PROCESSING_ROOT": str(instance), "LTV_JOB_MESSAGE_FILE": str(message),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "sagemaker_jobs.prepare", "--input-digest", "0" * 64],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "changed after the forecast was requested" in message.read_text()


def test_a_copy_missing_an_aggregate_is_refused(committed, tmp_path, monkeypatch):
    dataset = tmp_path / "copy"
    shutil.copytree(committed[0], dataset)
    next(p for p in sorted((dataset / "user_day").rglob("*")) if p.is_file()).unlink()
    instance = _instance(tmp_path / "prepare", {paths.PREPARE_INPUT: dataset})
    monkeypatch.setenv("LTV_PROCESSING_ROOT", str(instance))
    with pytest.raises(InputError, match="incomplete"):
        prepare.main(["--input-digest", _digest(dataset)])
