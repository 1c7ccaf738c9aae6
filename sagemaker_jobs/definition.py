"""The SageMaker pipeline, as a pipeline definition document generated at synth time.

``forecast`` (one execution per forecast request, started by the state machine) runs the
processing image (``Dockerfile``) and its entry points: ``Prepare`` receives the dataset's
committed daily aggregates (the objects the warehouse refresh's manifest lists: ``user_day/``,
``installs/``, ``spend/``, ``state.json``; never the raw ``events/``), checks they are the data
the run was named with, cuts them at the request's as-of and writes one shard spec per
forecast instance → ``Forecast`` runs on ``forecastShardCount`` instances; each receives
exactly one shard spec (input distributed ``ShardedByS3Key``) and forecasts only its groups →
``Report`` merges the shards into one run directory with ``report.html``. Publishing (manifest
last) is not a pipeline step: it has side effects, so the state machine runs it after the
pipeline, never from a cache. The daily aggregation itself runs on Athena (infra/warehouse.py).

Step caching is on for the three deterministic steps. SageMaker keys a processing step's cache
on its container, arguments, environment and inputs (not its outputs), so every input that can
change under the same S3 URI is also named by content: ``InputDigest`` (the ``digest`` of the
dataset's ``state.json``, which the API names the run with) is a container argument of
``Prepare``, and a request's ``RunKey`` is content-addressed (request, data digest, code
version). Intermediates are written under ``scratch/runs/<RunKey>/``, so a cache hit of
``Forecast``/``Report`` (which implies the same ``RunKey``) leaves the run directory exactly
where the state machine looks.

The document is what the ``sagemaker`` SDK 3.x writes from ``Pipeline.definition()`` for these
steps (schema 2020-12-01: ``Get`` / ``Std:Join`` expressions, ``CacheConfig`` per step; compared
key for key against sagemaker 3.27 when this was written). The SDK itself is not used: it
requires ``pandas<3`` (through mlflow), which conflicts with ltvcore's pandas 3, and weighs
about 1 GB, for what is a few dozen lines of JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sagemaker_jobs import paths

__all__ = [
    "AS_OF",
    "DATASET",
    "INPUT_DIGEST",
    "LATEST",
    "RUN_KEY",
    "JobSettings",
    "forecast_definition",
    "run_prefix",
]

SCHEMA_VERSION = "2020-12-01"

# Parameters of the forecast pipeline (the state machine passes each of them).
RUN_KEY = "RunKey"
DATASET = "Dataset"
AS_OF = "AsOf"
INPUT_DIGEST = "InputDigest"
LATEST = "latest"
"""``AsOf`` value meaning "the last date in the data" (parameter values may not be empty)."""

PREPARE, FORECAST, REPORT = "Prepare", "Forecast", "Report"


@dataclass(frozen=True)
class JobSettings:
    """What every processing step of a pipeline shares. Strings may be CloudFormation
    placeholders (``${ImageUri}``) that the stack substitutes when it deploys the document."""

    image_uri: str
    role_arn: str
    bucket: str
    instance_type: str = "ml.m5.xlarge"
    volume_gb: int = 30
    max_runtime_seconds: int = 7200
    environment: Mapping[str, str] = field(default_factory=dict)


def run_prefix(scratch_runs: str, *parts: Any) -> dict:
    """``s3://<bucket>/<scratch_runs>/<RunKey>/<parts...>`` as a pipeline expression."""
    return _join("/", "s3:/", "{bucket}", scratch_runs.strip("/"), _param(RUN_KEY), *parts)


def forecast_definition(settings: JobSettings, *, shard_count: int, cache_days: int,
                        warehouse_prefix: str, manifest: str, scratch_runs: str) -> dict:
    """The per-request pipeline: Prepare → Forecast (``shard_count`` instances) → Report.

    ``Prepare`` downloads ``s3://<bucket>/<warehouse_prefix>/<Dataset>/<manifest>``'s objects,
    laid out under its input folder as they are under the dataset's folder.
    """
    if shard_count < 1:
        raise ValueError("shard_count must be at least 1")
    cache = {"Enabled": True, "ExpireAfter": f"P{int(cache_days)}D"}
    shards_env = {"LTV_SHARD_COUNT": str(shard_count)}
    manifest_uri = _join("/", "s3:/", "{bucket}", warehouse_prefix.strip("/"), _param(DATASET), manifest)

    prepare = _step(
        PREPARE, "sagemaker_jobs.prepare", settings, cache=cache, env=shards_env,
        arguments=["--as-of", _param(AS_OF), "--input-digest", _param(INPUT_DIGEST)],
        inputs=[_input("data", manifest_uri, paths.PREPARE_INPUT, data_type="ManifestFile")],
        outputs=[_output("prepared", run_prefix(scratch_runs, "prepared"), paths.PREPARE_OUTPUT),
                 _output("shards", run_prefix(scratch_runs, "shards"), paths.SHARDS_OUTPUT)],
    )
    forecast = _step(
        FORECAST, "sagemaker_jobs.forecast", settings, cache=cache, env=shards_env,
        instance_count=shard_count,
        # the digest the run was named with: the run keeps the id the requester was given
        arguments=["--input-digest", _param(INPUT_DIGEST)],
        inputs=[_input("prepared", _step_output(PREPARE, "prepared"), paths.FORECAST_PREPARED),
                _input("request", run_prefix(scratch_runs, "request.json"), paths.FORECAST_REQUEST),
                _input("shard", _step_output(PREPARE, "shards"), paths.FORECAST_SHARD,
                       distribution="ShardedByS3Key")],
        outputs=[_output("forecast", run_prefix(scratch_runs, "forecast"), paths.FORECAST_OUTPUT)],
    )
    report = _step(
        REPORT, "sagemaker_jobs.report", settings, cache=cache, env=shards_env,
        inputs=[_input("parts", _step_output(FORECAST, "forecast"), paths.REPORT_INPUT)],
        outputs=[_output("run", run_prefix(scratch_runs, "run"), paths.REPORT_OUTPUT)],
    )
    parameters = [_parameter(RUN_KEY, "none"), _parameter(DATASET, "none"),
                  _parameter(AS_OF, LATEST), _parameter(INPUT_DIGEST, "none")]
    return _document(parameters, [prepare, forecast, report], settings.bucket)


# --------------------------------------------------------------------------- schema helpers


def _param(name: str) -> dict:
    return {"Get": f"Parameters.{name}"}


def _step_output(step: str, output: str) -> dict:
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"}


def _join(on: str, *values: Any) -> dict:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def _parameter(name: str, default: str) -> dict:
    return {"Name": name, "Type": "String", "DefaultValue": default}


def _input(name: str, uri: Any, local: str, *, distribution: str = "FullyReplicated",
           data_type: str = "S3Prefix") -> dict:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": paths.container(local),
            "S3DataType": data_type,
            "S3InputMode": "File",
            "S3DataDistributionType": distribution,
            "S3CompressionType": "None",
        },
    }


def _output(name: str, uri: Any, local: str) -> dict:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": paths.container(local), "S3UploadMode": "EndOfJob"},
    }


def _step(name: str, module: str, settings: JobSettings, *, inputs: Sequence[dict],
          outputs: Sequence[dict], arguments: Sequence[Any] = (), env: Mapping[str, str] | None = None,
          instance_count: int = 1, cache: dict | None = None) -> dict:
    app: dict[str, Any] = {
        "ImageUri": settings.image_uri,
        "ContainerEntrypoint": ["python3", "-m", module],
    }
    if arguments:
        app["ContainerArguments"] = list(arguments)
    step: dict[str, Any] = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {
                "InstanceType": settings.instance_type,
                "InstanceCount": int(instance_count),
                "VolumeSizeInGB": int(settings.volume_gb),
            }},
            "AppSpecification": app,
            "RoleArn": settings.role_arn,
            "ProcessingInputs": list(inputs),
            "ProcessingOutputConfig": {"Outputs": list(outputs)},
            "Environment": {**settings.environment, **(env or {})},
            "StoppingCondition": {"MaxRuntimeInSeconds": int(settings.max_runtime_seconds)},
        },
    }
    if cache:
        step["CacheConfig"] = dict(cache)
    return step


def _document(parameters: list[dict], steps: list[dict], bucket: str) -> dict:
    document = {
        "Version": SCHEMA_VERSION,
        "Metadata": {},
        "Parameters": parameters,
        "PipelineExperimentConfig": {
            "ExperimentName": {"Get": "Execution.PipelineName"},
            "TrialName": {"Get": "Execution.PipelineExecutionId"},
        },
        "Steps": steps,
    }
    return _fill_bucket(document, bucket)


def _fill_bucket(value: Any, bucket: str) -> Any:
    if isinstance(value, str):
        return value.replace("{bucket}", bucket)
    if isinstance(value, list):
        return [_fill_bucket(item, bucket) for item in value]
    if isinstance(value, dict):
        return {key: _fill_bucket(item, bucket) for key, item in value.items()}
    return value
