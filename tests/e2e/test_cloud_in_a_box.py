"""Cloud in a box: one forecast request through the deployed stack, offline, on a moto server.

A marketer's ``POST /forecasts`` reaches the API function; its Step Functions execution runs in
moto's interpreter (the synthesised definition); the forecast pipeline's steps run as local
processes on the moto bucket; the run is published and announced in Slack; ``GET`` shows it
succeeded, and ``ltv audit verify`` and ``ltv reproduce`` check it where it is, on ``s3://``.

What is real:

- the template, synthesised once (``tests.infra.support.synth``), deployed on a moto server
  (real HTTP; boto3 everywhere, the job processes and the CLI included, reaches it through
  ``AWS_ENDPOINT_URL``): its two buckets, its Lambda functions with the environment it gives
  them, the forecast pipeline with the definition the ``sagemaker`` SDK wrote, and the
  workflow state machine with its synthesised definition; the Slack secret the operator
  creates (``ltv-forecast/slack``) holds the webhook URLs of a local HTTP server;
- moto's Step Functions interpreter runs the ASL: Pass, Lambda tasks with their Retry/Catch,
  intrinsics, ResultSelector/ResultPath, and ``RunPipeline`` as synthesised
  (``aws-sdk:sagemaker:startPipelineExecution.waitForTaskToken``: moto starts a pipeline
  execution that carries the task token in its description);
- every Lambda task, and every call the test makes in API Gateway's or EventBridge's place,
  runs the real handler module (``lambdas/<name>/handler.py``) in this process, in the
  function's environment: the API, Validate, the pipeline callback and notify (their clients
  talk to the moto server like everything else);
- the pipeline's steps are its definition document's steps: ``Prepare``, ``Forecast`` and
  ``Report`` run their entry points (``python -m sagemaker_jobs.<step>``) as local processes
  with the container arguments and environment the document gives them, their ``Get`` and
  ``Std:Join`` expressions evaluated; so does the publish job, with the request the
  ``Publish`` state builds;
- ``ltv audit verify`` and ``ltv reproduce`` run as commands, in processes of their own.

What is substituted, because moto cannot run it:

- Lambda's runtime: moto's Lambda without Docker only echoes, so its ``Invoke`` is patched to
  call the function's handler module in this process (``tests.e2e.cloud.Cloud.invoke``), with
  the template's environment variables set for the call; no bundle, memory or timeout.
- SageMaker itself: moto records pipeline executions and never runs them. The test plays its
  part (``tests.e2e.cloud.LocalSageMaker``): it copies each step's inputs from the moto bucket
  as SageMaker does (``ManifestFile``, ``S3Prefix``, ``ShardedByS3Key``; ``File`` mode), runs
  the entry point with ``/opt/ml/processing`` remapped to a temporary folder, and uploads the
  outputs (``EndOfJob``). Step caching, instance types and stopping conditions are not played.
- EventBridge: the test delivers the pipeline's status changes (Executing, then Succeeded) to
  the callback function, in the shape SageMaker documents; the event's pipeline ARN is checked
  against the template's rule.
- ``Publish`` (``sagemaker:createProcessingJob.sync``, which moto does not run): its state
  becomes a ``lambda:invoke`` of a stand-in function whose payload is the state's own
  ``Parameters`` (the processing job request, as the interpreter resolved them); the stand-in
  runs that request with ``LocalSageMaker`` and answers the two fields the state's
  ResultSelector reads. Retry, Catch, ResultPath and TimeoutSeconds are kept.
- The daily warehouse refresh is setup, not under test: as in tests/sagemaker_jobs, the events
  are ingested locally and synced to the bucket, and the refresh's ``UNLOAD`` statements run on
  DuckDB in Athena's place (``tests.infra.fake_athena``) before ``athena.commit`` writes
  ``state.json`` and the manifest the Prepare step reads.
- API Gateway and the sign-in: the API function gets the REST proxy event API Gateway sends
  after the authoriser accepted a signed-in marketer (tests/lambdas/test_auth.py covers that).

Failure paths (validation, pipeline failure, timeouts, stops) are covered in
tests/infra/test_state_machine.py; this test is the one path a run takes when all goes well.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from ltvcore.runs.store import open_store
from ltvcore.sample import write_sample
from ltvcore.warehouse import athena
from ltvcore.warehouse.store import Warehouse
from tests.e2e.cloud import Cloud, LocalSageMaker, api_event
from tests.infra.fake_athena import run_unload, sync
from tests.infra.support import ROOT, SlackStub, flatten, pipeline_status_event, resources, synth

COMMIT = "e2e0" * 10  # the code version the template's functions and jobs all carry
PUBLISH_STAND_IN = "localsagemakerpublishjob"
DATASET = "demo"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LTV_GIT_COMMIT", COMMIT)
        _stack, synthesised = synth(tmp_path_factory.mktemp("cdk"))
    return synthesised.to_json()


@pytest.fixture
def box(template, monkeypatch, tmp_path):
    """The stack on a moto server, Slack on a local HTTP server, SageMaker played locally."""
    monkeypatch.setenv("LTV_GIT_COMMIT", COMMIT)
    slack = SlackStub()
    cloud = Cloud(template, monkeypatch)
    environment = {key: os.environ[key] for key in ("PATH", "HOME", "TMPDIR", "LTV_CACHE_DIR",
                                                    "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION",
                                                    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                    "AWS_SESSION_TOKEN") if key in os.environ}
    environment["PYTHONPATH"] = str(ROOT)  # sagemaker_jobs/ importable, as in the processing image
    sagemaker = LocalSageMaker(tmp_path / "processing", environment)

    def publish_job(request: dict) -> dict:
        sagemaker.run_job(request["ProcessingJobName"], request)
        return {"ProcessingJobName": request["ProcessingJobName"], "ProcessingJobStatus": "Completed"}

    try:
        cloud.deploy(workflow=_publish_by_stand_in, stand_ins={PUBLISH_STAND_IN: publish_job}, slack_secret={
            "channels": {"team-ltv": slack.url("team"), "growth": slack.url("growth")},
            "default_channels": ["team-ltv"]})
        _refresh_warehouse(cloud, tmp_path / "sample")
        yield cloud, sagemaker, slack, environment
    finally:
        slack.close()
        cloud.close()


def _publish_by_stand_in(definition: dict) -> dict:
    """Only ``Publish`` changes (see the module docstring)."""
    publish = definition["States"]["Publish"]
    assert publish["Resource"] == "arn:aws:states:::sagemaker:createProcessingJob.sync"
    publish["Resource"] = "arn:aws:states:::lambda:invoke"
    publish["Parameters"] = {"FunctionName": PUBLISH_STAND_IN, "Payload": publish["Parameters"]}
    publish["ResultSelector"] = {key: value.replace("$.", "$.Payload.", 1)
                                 for key, value in publish["ResultSelector"].items()}
    return definition


def _refresh_warehouse(cloud: Cloud, folder: Path) -> None:
    """The daily refresh of the ``demo`` dataset, Athena played by DuckDB (setup, not under test)."""
    sample = write_sample(folder / "files", install_days=5, observed_days=7, n_campaigns=3, users_per_day=40)
    local = Warehouse(folder / "ingested")
    local.ingest(**{role: sample["files"][role] for role in ("events", "installs", "spend")})
    s3, bucket = boto3.client("s3"), cloud.bucket()
    refresh = cloud.environments[cloud.function("warehouse_refresh")]
    prefix = refresh["LTV_WAREHOUSE"].removeprefix(f"s3://{bucket}/")
    sync(s3, local.root, bucket, f"{prefix}/{DATASET}")
    warehouse = athena.Warehouse(bucket=bucket, prefix=prefix, database=refresh["LTV_GLUE_DATABASE"])
    planned = athena.plan(s3, warehouse)
    results = [{**{k: v for k, v in item.items() if k != "sql"}, "query_id": f"q{n}",
                "bytes": run_unload(s3, item["sql"], database=warehouse.database, bucket=bucket, prefix=prefix)}
               for n, item in enumerate(planned.items)]
    done = athena.commit(s3, warehouse, datasets=planned.datasets, results=results)
    assert done["failed_count"] == 0 and done["committed"] == len(planned.items) > 0


def _until(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)
    return found


def _ltv(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    command = Path(sys.executable).with_name("ltv")
    return subprocess.run([str(command), *arguments], capture_output=True, text=True, timeout=180,
                          env=environment, cwd=ROOT)


def test_a_forecast_request_from_post_to_reproduce_on_the_cloud_in_a_box(box, template):
    cloud, sagemaker, slack, environment = box
    api, callback = cloud.function("api"), cloud.function("pipeline_callback")
    bucket, store = cloud.bucket(), f"s3://{cloud.bucket()}"

    # A signed-in marketer asks for a forecast: 202 and the run's id, one execution by that name.
    body = {"dataset": DATASET, "horizons": [30, 90], "notify": ["growth"]}
    accepted = cloud.invoke(api, api_event("POST", "/forecasts", resource="/forecasts", body=body))
    assert accepted["statusCode"] == 202, accepted
    run_id = json.loads(accepted["body"])["run_id"]
    states = boto3.client("stepfunctions")
    machine = cloud.resolve({"Ref": cloud.logical("AWS::StepFunctions::StateMachine", "Workflow")})
    (execution,) = states.list_executions(stateMachineArn=machine)["executions"]
    assert execution["name"] == run_id

    # Validate passes and RunPipeline starts the forecast pipeline with the task token.
    sm = boto3.client("sagemaker")
    (pipeline,) = [p["Properties"]["PipelineName"] for p in resources(template, "AWS::SageMaker::Pipeline").values()]
    summary = _until(lambda: sm.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"],
                     "the pipeline's start")[0]
    started = sm.describe_pipeline_execution(PipelineExecutionArn=summary["PipelineExecutionArn"])
    assert started["PipelineExecutionDisplayName"] == run_id
    chosen = {p["Name"]: p["Value"] for p in sm.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=started["PipelineExecutionArn"])["PipelineParameters"]}
    assert chosen["RunKey"] == run_id and chosen["Dataset"] == DATASET and chosen["AsOf"] == "latest"
    request = boto3.client("s3").get_object(Bucket=bucket, Key=f"scratch/runs/{run_id}/request.json")
    assert json.loads(request["Body"].read())["horizons"] == [30, 90]  # Validate left it for Forecast

    # SageMaker runs the pipeline; EventBridge tells the callback when it executes and when it ends.
    (rule,) = [r for key, r in resources(template, "AWS::Events::Rule").items() if "PipelineStatus" in key]
    watched = [flatten(arn, cloud.resolve) for arn in rule["Properties"]["EventPattern"]["detail"]["pipelineArn"]]

    def status_change(status: str) -> dict:
        event = pipeline_status_event(status, started["PipelineExecutionDescription"],
                                      started["PipelineExecutionArn"], display_name=run_id)
        assert event["detail"]["pipelineArn"] in watched  # the rule matches this pipeline's events
        return cloud.invoke(callback, event)

    assert status_change("Executing")["action"] == "recorded"
    record = boto3.client("s3").get_object(Bucket=bucket, Key=f"scratch/runs/{run_id}/pipeline.json")
    assert json.loads(record["Body"].read()) == {"pipeline_execution_arn": started["PipelineExecutionArn"]}
    document = json.loads(sm.describe_pipeline_definition_for_execution(
        PipelineExecutionArn=started["PipelineExecutionArn"])["PipelineDefinition"])
    assert sagemaker.run_pipeline(document, chosen) == ["Prepare", "Forecast", "Report"]
    assert status_change("Succeeded") == {"action": "sent", "status": "Succeeded"}

    # Publish commits the run (manifest last), NotifySuccess tells Slack, the execution succeeds.
    done = _until(lambda: (d := states.describe_execution(executionArn=execution["executionArn"]))["status"]
                  != "RUNNING" and d, "the execution's end")
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == {"run_id": run_id, "location": f"{store}/runs/{run_id}"}
    history = states.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["Start", "Validate", "RunPipeline", "Publish", "NotifySuccess", "Done", "Succeeded"]
    publish = sagemaker.jobs[-1]
    assert publish["name"].startswith("ltv-publish-") and publish["Environment"]["LTV_RUN_ID"] == run_id
    posts = _until(lambda: len(slack.posts) >= 2 and slack.posts, "the Slack messages")
    assert sorted(path.rsplit("/", 1)[-1] for path, _ in posts) == ["growth", "team"]
    for _, message in posts:
        text = json.dumps(message)
        assert "LTV forecast ready" in text and run_id in text and "ana@example.com" in text

    # GET shows the run succeeded, requested by the signed-in person, its files behind links.
    answer = cloud.invoke(api, api_event("GET", f"/forecasts/{run_id}", resource="/forecasts/{run_id}",
                                         path_parameters={"run_id": run_id}))
    assert answer["statusCode"] == 200
    run = json.loads(answer["body"])
    assert run["status"] == "succeeded" and run["requested_by"] == "ana@example.com"
    assert run["request"]["horizons"] == [30, 90] and run["dataset"] == DATASET
    assert open_store(store).read_manifest(run_id)["requested_by"] == "ana@example.com"
    with urllib.request.urlopen(run["files"]["forecast.csv"], timeout=10) as response:  # pre-signed, on moto
        rows = list(csv.DictReader(io.StringIO(response.read().decode())))
    assert len({row["campaign"] for row in rows}) == 3  # the sample's campaigns, each at both horizons
    assert sorted(row["horizon_days"] for row in rows) == ["30"] * 3 + ["90"] * 3

    # The engineer's checks, on the run where it is.
    location = f"{store}/runs/{run_id}"
    audit = _ltv(environment, "audit", "verify", location)
    assert audit.returncode == 0 and audit.stdout.startswith("intact:"), audit.stdout + audit.stderr
    # run from a checkout of the commit the run records (as the functions and jobs were built)
    again = _ltv({**environment, "LTV_GIT_COMMIT": COMMIT}, "reproduce", location)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"identical: run {run_id} reproduced value for value" in again.stdout
