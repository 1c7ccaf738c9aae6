"""The synthesised state machine, executed by moto's Step Functions interpreter.

What runs for real: the ASL as synthesised (Pass/Task/Fail states, Retry, Catch, JSONPath,
intrinsics, ResultSelector), the validate and notify Lambda handlers (in process, with the
environment the template gives them), the ``aws-sdk:s3:getObject`` task, the pipeline callback
handler answering with ``SendTaskSuccess``/``SendTaskFailure``, the S3 store, Secrets Manager
and a local HTTP server standing in for Slack.

What is substituted, because moto cannot run it:

- ``RunPipeline`` (``aws-sdk:sagemaker:startPipelineExecution.waitForTaskToken``) becomes a
  ``lambda:invoke.waitForTaskToken`` task whose payload is the original state's parameters; the
  stand-in calls moto's ``StartPipelineExecution`` with them. The test then delivers the
  EventBridge status-change event to the real callback handler. Its Retry, Catch, ResultPath
  and TimeoutSeconds are kept (the timeout test shortens TimeoutSeconds to 2 s).
- ``Publish`` (``sagemaker:createProcessingJob.sync``) becomes a ``lambda:invoke`` task whose
  payload is the original state's parameters (the processing job request); the stand-in does
  what the publish job does: commit the run (manifest last) and leave ``publish.json``. Its
  Retry, Catch and ResultPath are kept; its ResultSelector reads the same two fields from the
  Lambda's ``Payload``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from ltvcore.api.launchers import Job, StepFunctionsLauncher
from ltvcore.request import ForecastRequest
from ltvcore.runs import ids
from ltvcore.runs.manifest import code_version
from ltvcore.runs.store import open_store
from tests.infra.support import (
    ACCOUNT,
    REGION,
    SlackStub,
    flatten,
    lambda_context,
    load_handler,
    make_run,
    pipeline_status_event,
    resources,
    synth,
)

BUCKET = "ltv-artifacts"
STORE = f"s3://{BUCKET}"
DIGEST = "cd" * 32
MOTO = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory):
    _stack, template = synth(tmp_path_factory.mktemp("cdk"))
    doc = template.to_json()
    functions = resources(doc, "AWS::Lambda::Function")

    def resolve(value: Any) -> str:
        if "Ref" in value:
            name = value["Ref"]
            pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                      "AWS::URLSuffix": "amazonaws.com"}
            if name in pseudo:
                return pseudo[name]
            assert doc["Resources"][name]["Type"] == "AWS::S3::Bucket", name
            return BUCKET
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            if logical in functions:
                return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"
            return f"arn:aws:iam::{ACCOUNT}:role/{logical}"
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for key, real in (("AWS::AccountId", ACCOUNT), ("AWS::Region", REGION),
                              ("AWS::URLSuffix", "amazonaws.com"), ("AWS::Partition", "aws")):
                text = text.replace("${%s}" % key, real)
            return text
        raise AssertionError(f"unexpected intrinsic {value}")

    (machine,) = [m for key, m in resources(doc, "AWS::StepFunctions::StateMachine").items() if "Workflow" in key]
    definition = json.loads(flatten(machine["Properties"]["DefinitionString"], resolve))
    environments = {logical: {k: flatten(v, resolve) for k, v in
                              f["Properties"]["Environment"]["Variables"].items()}
                    for logical, f in functions.items() if "Validate" in logical or "Notify" in logical}
    return definition, environments


def _substituted(definition: dict, *, pipeline_timeout: int | None = None) -> dict:
    """The definition with only the two SageMaker states replaced (see the module docstring)."""
    definition = json.loads(json.dumps(definition))
    run = definition["States"]["RunPipeline"]
    run["Resource"] = "arn:aws:states:::lambda:invoke.waitForTaskToken"
    run["Parameters"] = {"FunctionName": "FakeStartPipeline", "Payload": run["Parameters"]}
    if pipeline_timeout is not None:
        run["TimeoutSeconds"] = pipeline_timeout
    publish = definition["States"]["Publish"]
    publish["Resource"] = "arn:aws:states:::lambda:invoke"
    publish["Parameters"] = {"FunctionName": "FakePublishJob", "Payload": publish["Parameters"]}
    publish["ResultSelector"] = {"job.$": "$.Payload.ProcessingJobName",
                                 "status.$": "$.Payload.ProcessingJobStatus"}
    # moto's aws-sdk:s3:getObject hands the Body over as a stream (Step Functions: text), and
    # moto has no StopPipelineExecution: stand-ins for both (Catch, ResultPath and paths kept)
    read = definition["States"]["ReadPipelineRecord"]
    read["Resource"] = "arn:aws:states:::lambda:invoke"
    read["Parameters"] = {"FunctionName": "FakeGetObject", "Payload": read["Parameters"]}
    read["ResultSelector"] = {"record.$": "States.StringToJson($.Payload.Body)"}
    stop = definition["States"]["StopPipeline"]
    stop["Resource"] = "arn:aws:states:::lambda:invoke"
    stop["Parameters"] = {"FunctionName": "FakeStopPipeline", "Payload": stop["Parameters"]}
    return definition


class World:
    """moto accounts for one test: bucket, secret, Slack stub, Lambdas routed to Python."""

    def __init__(self, environments: dict[str, dict[str, str]], monkeypatch, tmp_path: Path) -> None:
        self.environments = environments
        self.tmp_path = tmp_path
        self.slack = SlackStub()
        self.started: list[dict] = []
        self.stopped: list[dict] = []
        self.publish: Callable[[dict], dict] = self._publish_ok
        self.broken: set[str] = set()
        self._lock = threading.Lock()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        boto3.client("secretsmanager").create_secret(Name="ltv-forecast/slack", SecretString=json.dumps({
            "channels": {"team-ltv": self.slack.url("team"), "growth": self.slack.url("growth")},
            "default_channels": ["team-ltv"]}))
        boto3.client("sagemaker").create_pipeline(
            PipelineName="ltvforecast-forecast", PipelineDefinition="{}",
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline")
        role = boto3.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda")
        for name in [*environments, "FakeStartPipeline", "FakePublishJob", "FakeStopPipeline", "FakeGetObject"]:
            lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                                Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
        self.handlers = {"ValidateLambda": load_handler("validate"), "NotifyLambda": load_handler("notify")}
        for module in self.handlers.values():
            module.settings.cache_clear()
        parameters.clear_caches()  # the webhook secret is read again, from this test's account
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", self._invoke_factory())

    # -- Lambda routing -----------------------------------------------------
    def _invoke_factory(self):
        world = self

        def invoke(backend, function_name, qualifier, body, headers, response_headers):
            event = json.loads(body or b"{}")
            try:
                result = world._call(function_name.rsplit(":", 1)[-1], event)
            except Exception as error:  # reported the way Lambda reports an unhandled error
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
            return json.dumps(result).encode()

        return invoke

    def _call(self, name: str, event: dict) -> Any:
        if name == "FakeStartPipeline":
            arn = boto3.client("sagemaker").start_pipeline_execution(**event)["PipelineExecutionArn"]
            self.started.append({**event, "arn": arn})
            return {"PipelineExecutionArn": arn}
        if name == "FakeGetObject":  # raises NoSuchKey (caught by the state) when unrecorded
            body = boto3.client("s3").get_object(**event)["Body"].read().decode()
            return {"Body": body}
        if name == "FakeStopPipeline":
            self.stopped.append(event)
            return {}
        if name == "FakePublishJob":
            return self.publish(event)
        (logical,) = [key for key in self.environments if key == name]
        kind = next(k for k in self.handlers if k in logical)
        if kind in self.broken:
            raise RuntimeError(f"{kind} is broken for this test")
        with self._lock:
            saved = {k: os.environ.get(k) for k in self.environments[logical]}
            os.environ.update(self.environments[logical])
            try:
                return self.handlers[kind].handler(event, lambda_context(logical))
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def _publish_ok(self, job: dict) -> dict:
        """What ``sagemaker_jobs.publish`` leaves behind: the run committed, then its result."""
        run_id = job["Environment"]["LTV_RUN_ID"]
        assert job["Tags"] == [{"Key": "ltv:run-id", "Value": run_id}]
        assert job["AppSpecification"]["ContainerEntrypoint"] == ["python3", "-m", "sagemaker_jobs.publish"]
        make_run(self.tmp_path, STORE, run_id)
        result = {"run_id": run_id, "location": f"{STORE}/runs/{run_id}", "reused": False}
        boto3.client("s3").put_object(Bucket=BUCKET, Key=f"scratch/runs/{run_id}/publish/publish.json",
                                      Body=json.dumps(result).encode())
        assert job["ProcessingInputs"][0]["S3Input"]["S3Uri"] == f"{STORE}/scratch/runs/{run_id}/run"
        return {"ProcessingJobName": job["ProcessingJobName"], "ProcessingJobStatus": "Completed"}

    # -- driving ------------------------------------------------------------
    def start(self, definition: dict, job: Job, name: str | None = None) -> str:
        states = boto3.client("stepfunctions")
        machine = states.create_state_machine(name=f"forecast-{len(self.started)}-{time.time_ns()}",
                                              definition=json.dumps(definition),
                                              roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn")
        return states.start_execution(stateMachineArn=machine["stateMachineArn"], name=name or job.run_id,
                                      input=json.dumps(job.execution_input(STORE)))["executionArn"]

    def wait_for_pipeline(self, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while not self.started:
            assert time.monotonic() < deadline, "the pipeline was never started"
            time.sleep(0.05)
        return self.started[-1]

    def pipeline_ends(self, status: str) -> dict:
        """EventBridge delivers the status change of the started pipeline to the callback Lambda."""
        started = self.wait_for_pipeline()
        event = pipeline_status_event(status, started["PipelineExecutionDescription"], started["arn"],
                                      display_name=started["PipelineExecutionDisplayName"])
        return load_handler("pipeline_callback").handler(event, lambda_context("callback"))

    def finish(self, execution_arn: str, timeout: float = 30) -> dict:
        states = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = states.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            assert time.monotonic() < deadline, "the execution did not finish"
            time.sleep(0.1)

    def messages(self) -> list[str]:
        return [json.dumps(body) for _path, body in self.slack.posts]


@pytest.fixture
def world(synthesised, aws_env, monkeypatch, tmp_path):
    monkeypatch.setenv("LTV_GIT_COMMIT", "6" * 40)
    with mock_aws(config=MOTO):
        environments = json.loads(json.dumps(synthesised[1]))
        for env in environments.values():
            env["LTV_GIT_COMMIT"] = "6" * 40  # the template's commit, as every Lambda and job gets it
        built = World(environments, monkeypatch, tmp_path)
        yield built
        built.slack.close()


def _job(request: ForecastRequest | None = None) -> Job:
    request = request or ForecastRequest(dataset="demo", horizons=(30, 365))
    run_id = ids.run_id(request.normalised(), DIGEST, code_version())
    return Job(run_id=run_id, request=request, dataset="demo", inputs={}, input_digest=DIGEST,
               requested_by="arn:aws:iam::123456789012:user/ana", notify=("growth",),
               status_url=f"https://api.example/v1/forecasts/{run_id}", submitted="2026-01-12T08:00:00Z")


def test_code_version_seen_by_the_handlers(world):
    assert code_version() == "0.1.0+g666666666666"


def test_success_path(world, synthesised):
    job = _job()
    execution = world.start(_substituted(synthesised[0]), job)
    assert world.pipeline_ends("Succeeded") == {"action": "sent", "status": "Succeeded"}
    done = world.finish(execution)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == {"run_id": job.run_id, "location": f"{STORE}/runs/{job.run_id}"}
    started = world.started[0]
    assert {p["Name"]: p["Value"] for p in started["PipelineParameters"]} == {
        "RunKey": job.run_id, "Dataset": "demo", "AsOf": "latest", "InputDigest": DIGEST}
    assert started["PipelineExecutionDisplayName"] == job.run_id
    assert open_store(STORE).status(job.run_id)["status"] == "succeeded"
    request = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"scratch/runs/{job.run_id}/request.json")
    assert json.loads(request["Body"].read())["horizons"] == [30, 365]
    messages = world.messages()
    assert len(messages) == 2 and all("ready" in m and job.run_id in m for m in messages)


def test_invalid_request_fails_into_the_failure_notification(world, synthesised):
    job = _job()
    bad = json.loads(json.dumps(job.execution_input(STORE)))
    bad["request"]["horizons"] = [0]
    states = boto3.client("stepfunctions")
    machine = states.create_state_machine(name="forecast-bad", definition=json.dumps(_substituted(synthesised[0])),
                                          roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn")
    execution = states.start_execution(stateMachineArn=machine["stateMachineArn"], name=job.run_id,
                                       input=json.dumps(bad))["executionArn"]
    done = world.finish(execution)
    assert done["status"] == "FAILED"
    assert done.get("error") == "ForecastFailed"
    assert not world.started
    status = open_store(STORE).status(job.run_id)
    assert status["status"] == "failed" and "horizons" in status["detail"]["error"]
    assert any("failed" in m and "horizons" in m for m in world.messages())


def test_pipeline_failure_fails_into_the_failure_notification(world, synthesised):
    job = _job()
    execution = world.start(_substituted(synthesised[0]), job)
    assert world.pipeline_ends("Failed")["action"] == "sent"
    done = world.finish(execution)
    assert done["status"] == "FAILED" and done.get("error") == "ForecastFailed"
    status = open_store(STORE).status(job.run_id)
    assert status["status"] == "failed" and "pipeline did not finish" in status["detail"]["error"]
    assert len(world.messages()) == 2 and all("failed" in m for m in world.messages())


def test_a_lost_callback_times_out_into_the_failure_notification(world, synthesised):
    job = _job()
    execution = world.start(_substituted(synthesised[0], pipeline_timeout=2), job)
    world.wait_for_pipeline()  # started, but no status change ever arrives
    done = world.finish(execution)
    assert done["status"] == "FAILED" and done.get("error") == "ForecastFailed"
    assert "did not report back in time" in open_store(STORE).status(job.run_id)["detail"]["error"]
    assert any("did not report back" in m for m in world.messages())


def test_publish_failure_fails_into_the_failure_notification(world, synthesised):
    def broken_publish(job: dict) -> dict:
        raise RuntimeError("ProcessingJob ltv-publish-1 failed: AlgorithmError")

    world.publish = broken_publish
    job = _job()
    execution = world.start(_substituted(synthesised[0]), job)
    world.pipeline_ends("Succeeded")
    done = world.finish(execution)
    assert done["status"] == "FAILED"
    assert not open_store(STORE).exists(job.run_id)
    assert "AlgorithmError" in open_store(STORE).status(job.run_id)["detail"]["error"]


def test_a_failing_success_notification_never_fails_the_published_run(world, synthesised):
    world.broken.add("NotifyLambda")
    job = _job()
    execution = world.start(_substituted(synthesised[0]), job)
    world.pipeline_ends("Succeeded")
    done = world.finish(execution)
    assert done["status"] == "SUCCEEDED"
    assert open_store(STORE).status(job.run_id)["status"] == "succeeded"
    assert world.messages() == []


def test_a_timed_out_pipeline_is_stopped_before_the_failure_notification(world, synthesised, monkeypatch):
    job = _job()
    execution = world.start(_substituted(synthesised[0], pipeline_timeout=3), job)
    started = world.wait_for_pipeline()
    # the status change to Executing reaches the real callback, which records the execution
    monkeypatch.setenv("LTV_SCRATCH_RUNS", f"{STORE}/scratch/runs")
    event = pipeline_status_event("Executing", started["PipelineExecutionDescription"], started["arn"],
                                  display_name=started["PipelineExecutionDisplayName"])
    assert load_handler("pipeline_callback").handler(event, lambda_context("callback"))["action"] == "recorded"
    done = world.finish(execution)
    assert done["status"] == "FAILED" and done.get("error") == "ForecastFailed"
    (stop,) = world.stopped
    assert stop["PipelineExecutionArn"] == started["arn"] and len(stop["ClientRequestToken"]) == 36
    assert "did not report back in time" in open_store(STORE).status(job.run_id)["detail"]["error"]
    # (The pipeline's Stopped event then meets a timed-out token; moto still accepts that token,
    # so tests/lambdas/test_pipeline_callback.py covers the quiet drop of TaskTimedOut.)


def test_a_failed_run_is_attempted_again_and_a_succeeded_one_announced_again(world, synthesised):
    """Through the API's launcher: attempt 1 fails, attempt 2 (``<run id>-2``) passes Validate
    and publishes; announcing the succeeded run goes through the real notify handler."""
    states = boto3.client("stepfunctions")
    machine = states.create_state_machine(name="forecast-attempts", definition=json.dumps(
        _substituted(synthesised[0])), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn")["stateMachineArn"]
    (notify,) = [key for key in world.environments if "Notify" in key]
    launcher = StepFunctionsLauncher(machine, open_store(STORE), notify_function=notify)
    job = _job()
    launcher.start(job)
    launcher.start(job)  # running: not started twice
    assert launcher.known(job.run_id) and launcher.latest(job.run_id)[0] == 1
    world.pipeline_ends("Failed")
    assert world.finish(launcher.execution_arn(job.run_id))["status"] == "FAILED"
    assert not launcher.known(job.run_id)
    assert open_store(STORE).status(job.run_id)["status"] == "failed"

    launcher.start(job)
    second = launcher.execution_arn(job.run_id, 2)
    assert second.endswith(f":{job.run_id}-2")
    deadline = time.monotonic() + 20
    while len(world.started) < 2:
        assert time.monotonic() < deadline, "attempt 2 never started its pipeline"
        time.sleep(0.05)
    assert world.pipeline_ends("Succeeded")["action"] == "sent"
    done = world.finish(second)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["run_id"] == job.run_id
    assert open_store(STORE).status(job.run_id)["status"] == "succeeded"
    names = sorted(e["name"] for e in states.list_executions(stateMachineArn=machine)["executions"])
    assert names == [job.run_id, f"{job.run_id}-2"]
    messages = world.messages()
    assert len(messages) == 4 and sum("ready" in m for m in messages) == 2

    launcher.announce(job)  # a resubmission with notify: the success message again
    again = world.messages()[4:]
    assert len(again) == 2 and all("ready" in m and job.run_id in m for m in again)
    assert len(states.list_executions(stateMachineArn=machine)["executions"]) == 2
