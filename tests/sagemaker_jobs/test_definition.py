"""The SageMaker pipeline documents are self-consistent and match the entry points' paths."""

from __future__ import annotations

import json
import re

import pytest

from sagemaker_jobs import paths
from sagemaker_jobs.definition import JobSettings, forecast_definition

SETTINGS = JobSettings(image_uri="IMAGE", role_arn="arn:aws:iam::123456789012:role/r", bucket="bkt",
                       environment={"LTV_GIT_COMMIT": "abc"})


def _forecast(shards: int = 3) -> dict:
    return forecast_definition(SETTINGS, shard_count=shards, cache_days=7, warehouse_prefix="warehouse",
                               manifest="inputs.manifest", scratch_runs="scratch/runs")


def test_schema_version_and_parameters():
    definition = _forecast()
    assert definition["Version"] == "2020-12-01"
    assert {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]} == {
        "RunKey": "none", "Dataset": "none", "AsOf": "latest", "InputDigest": "none"}


@pytest.mark.parametrize("definition", [_forecast(1), _forecast(3)])
def test_every_reference_resolves(definition):
    text = json.dumps(definition)
    declared = {p["Name"] for p in definition["Parameters"]}
    assert set(re.findall(r'"Parameters\.(\w+)"', text)) <= declared
    outputs: dict[str, set[str]] = {}
    for step in definition["Steps"]:  # a step may only read outputs of the steps before it
        for name, output in re.findall(r"Steps\.(\w+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]",
                                       json.dumps(step)):
            assert output in outputs.get(name, set()), (step["Name"], name, output)
        outputs[step["Name"]] = {o["OutputName"] for o in
                                 step["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
    assert "{bucket}" not in text and "s3://bkt" not in text  # joined as "s3:/" + "bkt"


def test_local_paths_are_the_entry_points_defaults():
    steps = {s["Name"]: s["Arguments"] for s in _forecast()["Steps"]}
    local = {io.get("InputName") or io.get("OutputName"): (io.get("S3Input") or io.get("S3Output"))["LocalPath"]
             for args in steps.values()
             for io in args["ProcessingInputs"] + args["ProcessingOutputConfig"]["Outputs"]}
    assert local["data"] == paths.container(paths.PREPARE_INPUT)
    assert local["shards"] == paths.container(paths.SHARDS_OUTPUT)
    assert local["shard"] == paths.container(paths.FORECAST_SHARD)
    assert local["request"] == paths.container(paths.FORECAST_REQUEST)
    assert local["forecast"] == paths.container(paths.FORECAST_OUTPUT)
    assert local["parts"] == paths.container(paths.REPORT_INPUT)
    assert local["run"] == paths.container(paths.REPORT_OUTPUT)
    assert all(path.startswith("/opt/ml/processing/") for path in local.values())


def test_intermediates_live_under_the_run_key():
    steps = {s["Name"]: s["Arguments"] for s in _forecast()["Steps"]}
    run = steps["Report"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert run == {"Std:Join": {"On": "/", "Values": ["s3:/", "bkt", "scratch/runs",
                                                      {"Get": "Parameters.RunKey"}, "run"]}}


def test_sharding_and_environment():
    steps = {s["Name"]: s["Arguments"] for s in _forecast(shards=5)["Steps"]}
    assert steps["Forecast"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 5
    assert steps["Prepare"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    for args in steps.values():
        assert args["Environment"] == {"LTV_GIT_COMMIT": "abc", "LTV_SHARD_COUNT": "5"}
        assert args["AppSpecification"]["ContainerEntrypoint"][:2] == ["python3", "-m"]
    with pytest.raises(ValueError):
        _forecast(shards=0)


def test_prepare_and_forecast_get_the_digest_the_run_was_named_with():
    steps = {s["Name"]: s["Arguments"]["AppSpecification"] for s in _forecast()["Steps"]}
    digest = {"Get": "Parameters.InputDigest"}
    assert steps["Prepare"]["ContainerArguments"] == ["--as-of", {"Get": "Parameters.AsOf"},
                                                      "--input-digest", digest]
    assert steps["Forecast"]["ContainerArguments"] == ["--input-digest", digest]
    assert "ContainerArguments" not in steps["Report"]


def test_prepare_downloads_the_datasets_manifest_of_committed_objects():
    (data,) = {s["Name"]: s["Arguments"] for s in _forecast()["Steps"]}["Prepare"]["ProcessingInputs"]
    assert data["S3Input"]["S3DataType"] == "ManifestFile"
    assert data["S3Input"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        "s3:/", "bkt", "warehouse", {"Get": "Parameters.Dataset"}, "inputs.manifest"]}}
    assert data["S3Input"]["LocalPath"] == paths.container(paths.PREPARE_INPUT)
