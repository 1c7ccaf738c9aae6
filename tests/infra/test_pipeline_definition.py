"""The forecast pipeline's document, as the ``sagemaker`` SDK writes it in the synth environment:
the steps, arguments and paths the workflow and the entry points need, every step a valid
``CreateProcessingJob`` request, and the SDK kept out of the project's own environment."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from infra import synth_env
from infra.pipeline_definition import JobSettings, forecast_definition
from sagemaker_jobs import paths
from tests.infra.support import ROOT

SETTINGS = JobSettings(image_uri="${ImageUri}", role_arn="${ProcessingRoleArn}", bucket="bkt",
                       environment={"LTV_GIT_COMMIT": "abc"})


def _forecast(shards: int = 3) -> dict:
    return forecast_definition(SETTINGS, shard_count=shards, cache_days=7, warehouse_prefix="warehouse",
                               manifest="inputs.manifest", scratch_runs="scratch/runs")


@pytest.fixture(scope="module")
def definition() -> dict:
    return _forecast()


def _steps(definition: dict) -> dict[str, dict]:
    return {s["Name"]: s["Arguments"] for s in definition["Steps"]}


def test_schema_version_and_parameters(definition):
    assert definition["Version"] == "2020-12-01"
    assert {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]} == {
        "RunKey": ("String", "none"), "Dataset": ("String", "none"), "AsOf": ("String", "latest"),
        "InputDigest": ("String", "none")}
    assert definition["PipelineExperimentConfig"] == {"ExperimentName": {"Get": "Execution.PipelineName"},
                                                      "TrialName": {"Get": "Execution.PipelineExecutionId"}}


@pytest.mark.parametrize("shards", [1, 3])
def test_every_reference_resolves(shards):
    definition = _forecast(shards)
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
    assert "s3://bkt" not in text  # joined as "s3:/" + "bkt"


def test_steps_images_roles_and_caching(definition):
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("Prepare", "Processing"), ("Forecast", "Processing"), ("Report", "Processing")]
    for step in definition["Steps"]:
        assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P7D"}
        arguments = step["Arguments"]
        assert arguments["AppSpecification"]["ImageUri"] == "${ImageUri}"
        assert arguments["RoleArn"] == "${ProcessingRoleArn}"  # substituted when the stack deploys
        assert arguments["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
        assert "ProcessingJobName" not in arguments  # the pipeline names each job
    modules = {name: args["AppSpecification"]["ContainerEntrypoint"] for name, args in _steps(definition).items()}
    assert modules == {"Prepare": ["python3", "-m", "sagemaker_jobs.prepare"],
                       "Forecast": ["python3", "-m", "sagemaker_jobs.forecast"],
                       "Report": ["python3", "-m", "sagemaker_jobs.report"]}


def test_local_paths_are_the_entry_points_defaults(definition):
    local = {io.get("InputName") or io.get("OutputName"): (io.get("S3Input") or io.get("S3Output"))["LocalPath"]
             for args in _steps(definition).values()
             for io in args["ProcessingInputs"] + args["ProcessingOutputConfig"]["Outputs"]}
    assert local == {
        "data": paths.container(paths.PREPARE_INPUT), "prepared": paths.container(paths.FORECAST_PREPARED),
        "shards": paths.container(paths.SHARDS_OUTPUT), "shard": paths.container(paths.FORECAST_SHARD),
        "request": paths.container(paths.FORECAST_REQUEST), "forecast": paths.container(paths.FORECAST_OUTPUT),
        "parts": paths.container(paths.REPORT_INPUT), "run": paths.container(paths.REPORT_OUTPUT)}
    prepare = {o["OutputName"]: o["S3Output"]["LocalPath"]
               for o in _steps(definition)["Prepare"]["ProcessingOutputConfig"]["Outputs"]}
    assert prepare["prepared"] == paths.container(paths.PREPARE_OUTPUT)


def test_intermediates_live_under_the_run_key(definition):
    uris = {o["OutputName"]: o["S3Output"]["S3Uri"] for args in _steps(definition).values()
            for o in args["ProcessingOutputConfig"]["Outputs"]}
    for name in ("prepared", "shards", "forecast", "run"):
        assert uris[name] == {"Std:Join": {"On": "/", "Values": [
            "s3:/", "bkt", "scratch/runs", {"Get": "Parameters.RunKey"}, name]}}
    for output in _steps(definition)["Report"]["ProcessingOutputConfig"]["Outputs"]:
        assert output["S3Output"]["S3UploadMode"] == "EndOfJob"


def test_sharding_and_environment():
    steps = _steps(_forecast(shards=5))
    assert steps["Forecast"]["ProcessingResources"]["ClusterConfig"] == {
        "InstanceType": "ml.m5.xlarge", "InstanceCount": 5, "VolumeSizeInGB": 30}
    assert steps["Prepare"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert steps["Report"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    for args in steps.values():
        assert args["Environment"] == {"LTV_GIT_COMMIT": "abc", "LTV_SHARD_COUNT": "5"}
    (shard,) = [i for i in steps["Forecast"]["ProcessingInputs"] if i["InputName"] == "shard"]
    assert shard["S3Input"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert shard["S3Input"]["S3Uri"] == {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['shards'].S3Output.S3Uri"}
    with pytest.raises(ValueError):
        _forecast(shards=0)


def test_prepare_and_forecast_get_the_digest_the_run_was_named_with(definition):
    apps = {name: args["AppSpecification"] for name, args in _steps(definition).items()}
    digest = {"Get": "Parameters.InputDigest"}
    assert apps["Prepare"]["ContainerArguments"] == ["--as-of", {"Get": "Parameters.AsOf"}, "--input-digest", digest]
    assert apps["Forecast"]["ContainerArguments"] == ["--input-digest", digest]
    assert "ContainerArguments" not in apps["Report"]


def test_prepare_downloads_the_datasets_manifest_of_committed_objects(definition):
    (data,) = _steps(definition)["Prepare"]["ProcessingInputs"]
    assert data["S3Input"] == {
        "S3Uri": {"Std:Join": {"On": "/", "Values": ["s3:/", "bkt", "warehouse", {"Get": "Parameters.Dataset"},
                                                     "inputs.manifest"]}},
        "LocalPath": paths.container(paths.PREPARE_INPUT), "S3DataType": "ManifestFile", "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}


def _concrete(value: Any) -> Any:
    """A pipeline expression as the kind of value it becomes at execution time."""
    if isinstance(value, dict) and set(value) == {"Get"}:
        return "s3://bkt/x" if value["Get"].startswith("Steps.") else "value"
    if isinstance(value, dict) and set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(_concrete(part)) for part in join["Values"])
    if isinstance(value, dict):
        return {key: _concrete(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_concrete(item) for item in value]
    if isinstance(value, str):  # CloudFormation placeholders, as deployed
        return value.replace("${ProcessingRoleArn}", "arn:aws:iam::123456789012:role/processing").replace(
            "${ImageUri}", "123456789012.dkr.ecr.us-east-1.amazonaws.com/ltv:latest")
    return value


def test_every_step_is_a_valid_create_processing_job_request(definition):
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model(
        "CreateProcessingJob").input_shape
    for step in definition["Steps"]:
        request = {"ProcessingJobName": "pipelines-x", **_concrete(step["Arguments"])}
        report = ParamValidator().validate(request, shape)
        assert not report.has_errors(), f"{step['Name']}: {report.generate_report()}"


def test_the_sdk_stays_out_of_the_project_environment():
    assert importlib.util.find_spec("sagemaker") is None
    runtime = [ROOT / "pyproject.toml", ROOT / "lambdas" / "requirements.txt", ROOT / "sagemaker_jobs" / "Dockerfile"]
    for path in runtime:
        assert not re.search(r"^\s*\"?sagemaker(?!_jobs)", path.read_text(), re.MULTILINE), path
    assert re.search(r"^sagemaker-mlops==", synth_env.REQUIREMENTS.read_text(), re.MULTILINE)
    pins = [line for line in synth_env.REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")]
    # every package pinned: pip has nothing to resolve
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+!-]+", line) for line in pins)


def test_a_document_is_generated_once_then_read_from_the_cache(monkeypatch):
    _forecast()
    monkeypatch.setattr(synth_env, "ensure_python", lambda *_: pytest.fail("the SDK ran again"))
    assert _forecast()["Steps"][0]["Name"] == "Prepare"


def test_an_unreachable_index_is_one_line_naming_the_way_out(tmp_path, monkeypatch):
    requirements = tmp_path / "synth-requirements.txt"
    requirements.write_text("sagemaker-mlops==1.27.0\n")
    monkeypatch.setattr(synth_env, "BASE", tmp_path / "synth-env")

    def offline(command, **_options):
        if command[1:3] != ["-m", "pip"]:  # the venv and its version check
            return subprocess.CompletedProcess(command, 0, "", "")
        return subprocess.CompletedProcess(command, 1, "", "WARNING: Retrying\nERROR: No matching distribution "
                                                           "found for sagemaker-mlops==1.27.0\n")

    monkeypatch.setattr(synth_env.subprocess, "run", offline)
    monkeypatch.setattr(synth_env, "ROOT", tmp_path)
    with pytest.raises(synth_env.SynthEnvironmentError) as raised:
        synth_env.ensure_python(requirements)
    message = str(raised.value)
    assert "No matching distribution found for sagemaker-mlops==1.27.0" in message
    assert "build/synth-env/" in message and "\n" not in message
    assert not list((tmp_path / "synth-env").glob("*/.complete"))
