"""The processing-job entry points, end to end on sample data, with ``/opt/ml/processing``
remapped to temporary folders and SageMaker's data movement done by hand: the daily prepare,
then one request: prepare → forecast on two "instances" (one shard spec each, as
ShardedByS3Key hands them out) → report → publish, and the run gets the id the API named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ltvcore.api.datasets import LocalDatasets
from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.runs import ids, naming
from ltvcore.runs.audit import verify
from ltvcore.runs.manifest import code_version
from ltvcore.runs.store import open_store
from ltvcore.sample import write_sample
from sagemaker_jobs import forecast, paths, prepare, publish, report
from sagemaker_jobs.definition import JobSettings, forecast_definition
from tests.infra.support import ROOT

REQUEST = ForecastRequest(dataset="demo", horizons=(30, 90))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The daily prepare over a raw warehouse with one good and one bad dataset."""
    root = tmp_path_factory.mktemp("warehouse")
    write_sample(root / "raw" / "demo", install_days=5, observed_days=7, n_campaigns=3, users_per_day=40)
    (root / "raw" / "broken").mkdir()
    (root / "raw" / "broken" / "events.csv").write_text("user_id,event_date,revenue\nu1,2026-01-01,-3\n")
    assert prepare.main(["--all-datasets", "--input", str(root / "raw"),
                         "--output", str(root / "prepared")]) == 0
    return root / "prepared"


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
    definition = forecast_definition(settings, shard_count=shards, cache_days=7,
                                     prepared_prefix="warehouse/prepared", scratch_runs="scratch/runs")
    return {step["Name"]: [parameters[a["Get"].split(".", 1)[1]] if isinstance(a, dict) else a
                           for a in step["Arguments"]["AppSpecification"].get("ContainerArguments", [])]
            for step in definition["Steps"]}


def _run_request(tmp: Path, warehouse: Path, monkeypatch, shards: int, run_id: str | None = None) -> dict:
    digest = LocalDatasets(warehouse).digest(LocalDatasets(warehouse).get("demo"))  # as the API does
    run_id = run_id or ids.run_id(REQUEST.normalised(), digest, code_version())
    arguments = _arguments(shards, {"RunKey": run_id, "Dataset": "demo", "AsOf": "latest",
                                    "InputDigest": digest})
    monkeypatch.setenv("LTV_RUN_ID", run_id)  # as the state machine sets it for the publish job
    tmp.mkdir(parents=True)
    request_file = tmp / "request.json"
    request_file.write_text(json.dumps(REQUEST.normalised()))
    monkeypatch.setenv("LTV_SHARD_COUNT", str(shards))

    step = _instance(tmp / "prepare", {paths.PREPARE_INPUT: warehouse / "demo"})
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
    return {"result": result, "digest": digest}


def test_daily_prepare_keeps_going_past_a_bad_dataset(warehouse):
    assert sorted(p.name for p in (warehouse / "demo").iterdir()) == [
        "cohorts.parquet", "events.parquet", "installs.parquet", "spend.parquet"]
    daily = json.loads((warehouse / "_daily_report.json").read_text())
    assert daily["demo"]["ok"] is True
    assert daily["broken"]["ok"] is False and "revenue" in daily["broken"]["error"]
    assert not (warehouse / "broken").exists()


def test_a_sharded_request_publishes_the_run_the_api_named(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "3" * 40)
    done = _run_request(tmp_path / "two", warehouse, monkeypatch, shards=2)
    expected = ids.run_id(REQUEST.normalised(), done["digest"], code_version())
    result = done["result"]
    assert result["run_id"] == expected and result["reused"] is False
    store = open_store(tmp_path / "store")
    assert store.status(expected)["status"] == "succeeded"
    assert verify(result["location"]).ok
    manifest = store.read_manifest(expected)
    assert manifest["requested_by"] == "ana"
    assert {"forecast.csv", "curve.csv", "params.json", "report.html"} <= set(manifest["files"])

    single = _run_request(tmp_path / "one", warehouse, monkeypatch, shards=1)
    assert single["result"] == {**result, "reused": True}  # same run: found, not rewritten


def test_sharded_and_single_instance_forecasts_agree(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "4" * 40)
    two = _run_request(tmp_path / "a" / "two", warehouse, monkeypatch, shards=2)["result"]
    monkeypatch.setenv("LTV_GIT_COMMIT", "5" * 40)  # another code version: a new run, computed again
    monkeypatch.setattr(naming, "_cache", None)
    one = _run_request(tmp_path / "b" / "one", warehouse, monkeypatch, shards=1)["result"]
    first = (Path(two["location"]) / "forecast.csv").read_text()
    second = (Path(one["location"]) / "forecast.csv").read_text()
    assert first == second


def test_publish_refuses_a_run_other_than_the_requested_one(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "7" * 40)
    with pytest.raises(InputError, match="not the requested run 0000"):
        _run_request(tmp_path / "x", warehouse, monkeypatch, shards=1, run_id="0" * 20)
    assert not (tmp_path / "store" / "runs").exists()


def test_changed_data_is_refused_with_a_message_sagemaker_shows(warehouse, tmp_path):
    instance = _instance(tmp_path / "prepare", {paths.PREPARE_INPUT: warehouse / "demo"})
    message = tmp_path / "message"
    env = {**os.environ, "LTV_PROCESSING_ROOT": str(instance), "LTV_JOB_MESSAGE_FILE": str(message),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "sagemaker_jobs.prepare", "--input-digest", "0" * 64],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "changed after the forecast was requested" in message.read_text()
