"""The forecast pipeline, written with the ``sagemaker`` SDK (v3: ``sagemaker-core`` and
``sagemaker-mlops``) and turned into its definition document by ``Pipeline.definition()`` when
the stack is synthesised.

Two sides, one module:

- ``forecast_definition`` runs in the CDK app (the project's environment). It hands the
  pipeline's settings as JSON to ``python -m infra.pipeline_definition`` in the synth
  environment (``infra.synth_env``: a virtual environment of its own, built from
  ``infra/synth-requirements.txt``) and returns the document that prints.
- ``build`` runs there, and only there: the SDK's dependencies (mlflow, ``rich<15``, …) do not
  fit next to ltvcore's, and neither the processing image nor a Lambda bundle carries them. This
  side imports nothing of the project beyond ``sagemaker_jobs.definition`` and
  ``sagemaker_jobs.paths`` (standard library only); the SDK is imported inside ``build``.

Offline: steps are ``Processor(image_uri=…, entrypoint=[…])`` runs under a ``PipelineSession``,
which records each job request instead of starting it and uploads nothing (a ``ScriptProcessor``
would upload its code to S3 while defining). Strings may be CloudFormation placeholders
(``${ImageUri}``, ``${ProcessingRoleArn}``, ``${ArtifactBucket}``) that the stack substitutes
when it deploys the document.

``forecast`` (one execution per forecast request, started by the state machine) runs the
processing image (``sagemaker_jobs/Dockerfile``) and its entry points: ``Prepare`` receives the
dataset's committed daily aggregates (the objects the warehouse refresh's manifest lists:
``user_day/``, ``installs/``, ``spend/``, ``state.json``; never the raw ``events/``), checks they
are the data the run was named with, cuts them at the request's as-of and writes one shard spec
per forecast instance → ``Forecast`` runs on ``shard_count`` instances; each receives exactly
one shard spec (input distributed ``ShardedByS3Key``) and forecasts only its groups →
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
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sagemaker_jobs import paths
from sagemaker_jobs.definition import AS_OF, DATASET, FORECAST, INPUT_DIGEST, LATEST, PREPARE, REPORT, RUN_KEY

__all__ = ["SDK_CONFIG", "JobSettings", "build", "forecast_definition", "main"]

SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


@dataclass(frozen=True)
class JobSettings:
    """What every processing step of the pipeline shares. Strings may be CloudFormation
    placeholders (``${ImageUri}``) that the stack substitutes when it deploys the document."""

    image_uri: str
    role_arn: str
    bucket: str
    instance_type: str = "ml.m5.xlarge"
    volume_gb: int = 30
    max_runtime_seconds: int = 7200
    environment: Mapping[str, str] = field(default_factory=dict)


def forecast_definition(settings: JobSettings, *, shard_count: int, cache_days: int, warehouse_prefix: str,
                        manifest: str, scratch_runs: str) -> dict:
    """The per-request pipeline's document: Prepare → Forecast (``shard_count`` instances) → Report,
    as the SDK writes it (generated in the synth environment; see the module docstring).

    ``Prepare`` downloads ``s3://<bucket>/<warehouse_prefix>/<Dataset>/<manifest>``'s objects,
    laid out under its input folder as they are under the dataset's folder.
    """
    if shard_count < 1:
        raise ValueError("shard_count must be at least 1")
    from infra import synth_env  # the CDK app's side only: it imports aws_cdk

    spec = {**dataclasses.asdict(settings), "environment": dict(settings.environment),
            "shard_count": shard_count, "cache_days": cache_days, "warehouse_prefix": warehouse_prefix,
            "manifest": manifest, "scratch_runs": scratch_runs}
    return synth_env.run_module("infra.pipeline_definition", spec)


def build(spec: dict[str, Any]) -> dict:
    """The forecast pipeline's definition document for ``spec`` (``JobSettings`` fields plus
    ``shard_count``, ``cache_days``, ``warehouse_prefix``, ``manifest``, ``scratch_runs``)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the SDK reads a region at import
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep

    class StackSession(PipelineSession):
        """No look-ups: the role is a CloudFormation value (``${ProcessingRoleArn}``), not a name."""

        def expand_role(self, role: str) -> str:
            return role

    shard_count = int(spec["shard_count"])
    if shard_count < 1:
        raise ValueError("shard_count must be at least 1")
    # The SDK's own defaults, whatever config.yaml this machine has, and no telemetry calls. The
    # SDK checks that config against its JSON schema at every look-up (about 50 per document, a
    # third of a second each): check each config once.
    SageMakerConfig.validate_sagemaker_config = staticmethod(
        _once(SageMakerConfig.validate_sagemaker_config))
    session = StackSession(sagemaker_config=SDK_CONFIG)
    bucket = spec["bucket"]
    run_key = ParameterString(name=RUN_KEY, default_value="none")
    dataset = ParameterString(name=DATASET, default_value="none")
    as_of = ParameterString(name=AS_OF, default_value=LATEST)
    input_digest = ParameterString(name=INPUT_DIGEST, default_value="none")
    cache = CacheConfig(enable_caching=True, expire_after=f"P{int(spec['cache_days'])}D")
    environment = {**spec.get("environment", {}), "LTV_SHARD_COUNT": str(shard_count)}
    scratch_runs = spec["scratch_runs"].strip("/")

    def under_run(*parts: Any) -> Any:  # s3://<bucket>/<scratch_runs>/<RunKey>/<parts...>
        return Join(on="/", values=["s3:/", bucket, scratch_runs, run_key, *parts])

    def s3_input(name: str, uri: Any, local: str, *, distribution: str = "FullyReplicated",
                 data_type: str = "S3Prefix") -> ProcessingInput:
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=paths.container(local), s3_data_type=data_type, s3_input_mode="File",
            s3_data_distribution_type=distribution, s3_compression_type="None"))

    def s3_output(name: str, uri: Any, local: str) -> ProcessingOutput:
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=uri, local_path=paths.container(local), s3_upload_mode="EndOfJob"))

    def step(name: str, module: str, *, inputs: list, outputs: list, arguments: list | None = None,
             instance_count: int = 1) -> ProcessingStep:
        processor = Processor(
            role=spec["role_arn"], image_uri=spec["image_uri"], entrypoint=["python3", "-m", module],
            instance_count=instance_count, instance_type=spec["instance_type"],
            volume_size_in_gb=int(spec["volume_gb"]), max_runtime_in_seconds=int(spec["max_runtime_seconds"]),
            env=environment, sagemaker_session=session)
        return ProcessingStep(name=name, cache_config=cache, step_args=processor.run(
            inputs=inputs, outputs=outputs, arguments=arguments))

    def output_of(producer: ProcessingStep, name: str) -> Any:
        return producer.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    manifest = Join(on="/", values=["s3:/", bucket, spec["warehouse_prefix"].strip("/"), dataset, spec["manifest"]])
    prepare = step(
        PREPARE, "sagemaker_jobs.prepare",
        arguments=["--as-of", as_of, "--input-digest", input_digest],
        inputs=[s3_input("data", manifest, paths.PREPARE_INPUT, data_type="ManifestFile")],
        outputs=[s3_output("prepared", under_run("prepared"), paths.PREPARE_OUTPUT),
                 s3_output("shards", under_run("shards"), paths.SHARDS_OUTPUT)])
    forecast = step(
        FORECAST, "sagemaker_jobs.forecast", instance_count=shard_count,
        # the digest the run was named with: the run keeps the id the requester was given
        arguments=["--input-digest", input_digest],
        inputs=[s3_input("prepared", output_of(prepare, "prepared"), paths.FORECAST_PREPARED),
                s3_input("request", under_run("request.json"), paths.FORECAST_REQUEST),
                s3_input("shard", output_of(prepare, "shards"), paths.FORECAST_SHARD,
                         distribution="ShardedByS3Key")],
        outputs=[s3_output("forecast", under_run("forecast"), paths.FORECAST_OUTPUT)])
    report = step(
        REPORT, "sagemaker_jobs.report",
        inputs=[s3_input("parts", output_of(forecast, "forecast"), paths.REPORT_INPUT)],
        outputs=[s3_output("run", under_run("run"), paths.REPORT_OUTPUT)])
    pipeline = Pipeline(name="forecast", parameters=[run_key, dataset, as_of, input_digest],
                        steps=[prepare, forecast, report], sagemaker_session=session)
    return json.loads(pipeline.definition())


def _once(validate: Callable[[dict | None], None]) -> Callable[[dict | None], None]:
    checked: list[dict | None] = []

    def validate_once(config: dict | None = None) -> None:
        if config not in checked:
            validate(config)
            checked.append(copy.deepcopy(config))

    return validate_once


def main() -> int:
    """The settings as JSON on stdin → the document as JSON on stdout (all else on stderr)."""
    out, sys.stdout = sys.stdout, sys.stderr  # whatever the SDK prints is not the document
    document = build(json.load(sys.stdin))
    json.dump(document, out, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
