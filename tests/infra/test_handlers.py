"""The workflow's Lambda handlers against moto (S3, Secrets Manager, SageMaker, Step Functions),
with the event shapes Step Functions and EventBridge send."""

from __future__ import annotations

import functools
import io
import json

import boto3
import pytest
from aws_lambda_powertools import Logger
from moto import mock_aws

from ltvcore.api.launchers import Job
from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.runs import ids
from ltvcore.runs.manifest import code_version
from ltvcore.runs.store import open_store
from tests.infra.support import SlackStub, lambda_context, load_handler, make_run

BUCKET = "ltv-artifacts"
STORE = f"s3://{BUCKET}"
DIGEST = "ab" * 32


@pytest.fixture
def aws(aws_env, monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "1" * 40)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield s3


def _job(request: ForecastRequest | None = None, digest: str = DIGEST) -> Job:
    request = request or ForecastRequest(dataset="demo", horizons=(30, 365))
    run_id = ids.run_id(request.normalised(), digest, code_version())
    return Job(run_id=run_id, request=request, dataset="demo",
               inputs={"events": f"{STORE}/warehouse/prepared/demo/events.parquet"},
               input_digest=digest, requested_by="arn:aws:iam::123456789012:user/ana",
               notify=("growth",), status_url=f"https://api.example/v1/forecasts/{run_id}",
               submitted="2026-01-12T08:00:00Z")


# --------------------------------------------------------------------------- validate


@pytest.fixture
def validate(aws, monkeypatch):
    monkeypatch.setenv("LTV_STORE", STORE)
    monkeypatch.setenv("LTV_SCRATCH_RUNS", f"{STORE}/scratch/runs")
    module = load_handler("validate")
    module.settings.cache_clear()
    return module


def test_validate_accepts_the_launchers_input_marks_running_and_writes_the_request(validate, aws):
    job = _job()
    event = {"execution_name": job.run_id, "input": job.execution_input(STORE)}
    result = validate.handler(event, lambda_context("validate"))
    assert result["run_id"] == job.run_id
    assert result["as_of"] == "latest" and result["input_digest"] == DIGEST
    assert result["dataset"] == "demo" and result["notify"] == ["growth"]
    status = open_store(STORE).status(job.run_id)
    assert status["status"] == "running" and status["detail"]["requested_by"].endswith("user/ana")
    body = aws.get_object(Bucket=BUCKET, Key=f"scratch/runs/{job.run_id}/request.json")["Body"].read()
    assert json.loads(body) == job.request.normalised()


def test_validate_refuses_an_execution_not_named_by_the_run_id(validate):
    job = _job()
    with pytest.raises(InputError, match="run id") as caught:
        validate.handler({"execution_name": "manual-run", "input": job.execution_input(STORE)},
                         lambda_context())
    assert caught.value.column == "run_id"


@pytest.mark.parametrize(("change", "field"), [
    ({"request": {"dataset": "demo", "horizons": [0]}}, "horizons"),
    ({"request": {"dataset": "../etc", "horizons": [30]}}, "dataset"),
    ({"input_digest": "not-a-digest"}, "input_digest"),
    ({"request": {"dataset": "demo", "colour": "red"}}, "colour"),
])
def test_validate_names_the_bad_field(validate, change, field):
    data = _job().execution_input(STORE) | change
    with pytest.raises(InputError) as caught:
        validate.handler({"execution_name": "x", "input": data}, lambda_context())
    assert caught.value.column == field


# --------------------------------------------------------------------------- pipeline callback


def _status_event(status: str, token: str, arn: str) -> dict:
    """The event EventBridge delivers (shape of the SageMaker documentation's example)."""
    return {
        "version": "0", "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker", "account": "123456789012", "time": "2026-01-12T08:10:00Z",
        "region": "us-east-1", "resources": [arn.split("/execution/")[0], arn],
        "detail": {
            "pipelineExecutionDisplayName": "run", "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
            "executionStartTime": "2026-01-12T08:00:00Z", "executionEndTime": "2026-01-12T08:10:00Z",
            "pipelineExecutionDescription": token,
            "pipelineArn": arn.split("/execution/")[0], "pipelineExecutionArn": arn,
        },
    }


class _RecordingStates:
    """Stands in for the Step Functions client: moto cannot hand out a task token."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def send_task_success(self, **kwargs):
        self.calls.append(("success", kwargs))

    def send_task_failure(self, **kwargs):
        self.calls.append(("failure", kwargs))


@pytest.fixture
def callback(aws, monkeypatch):
    module = load_handler("pipeline_callback")
    states = _RecordingStates()
    real_client = boto3.client
    monkeypatch.setattr(module.boto3, "client",
                        lambda name, *a, **k: states if name == "stepfunctions" else real_client(name, *a, **k))
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_pipeline(PipelineName="ltvforecast-forecast", PipelineDefinition="{}",
                              RoleArn="arn:aws:iam::123456789012:role/p")
    arn = sagemaker.start_pipeline_execution(PipelineName="ltvforecast-forecast",
                                             PipelineExecutionDescription="TOKEN")["PipelineExecutionArn"]
    return module, states, arn


def test_callback_reports_success_with_the_token_from_the_description(callback):
    module, states, arn = callback
    result = module.handler(_status_event("Succeeded", "TOKEN", arn), lambda_context())
    assert result == {"action": "sent", "status": "Succeeded"}
    ((kind, call),) = states.calls
    assert kind == "success" and call["taskToken"] == "TOKEN"
    assert json.loads(call["output"])["pipeline_execution_arn"] == arn


def test_callback_reports_failure_with_a_cause(callback):
    module, states, arn = callback
    module.handler(_status_event("Failed", "TOKEN", arn), lambda_context())
    ((kind, call),) = states.calls
    assert kind == "failure" and call["error"] == "PipelineFailed"
    assert arn in call["cause"]  # moto records no failed step: the fallback names the execution


@pytest.mark.parametrize(("status", "token"), [("Executing", "TOKEN"), ("Succeeded", "")])
def test_callback_ignores_other_events(callback, status, token):
    module, states, arn = callback
    assert module.handler(_status_event(status, token, arn), lambda_context())["action"] == "ignored"
    assert not states.calls


def test_callback_drops_a_token_nobody_waits_for(aws_env):
    module = load_handler("pipeline_callback")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/ltvforecast-forecast/execution/abc"
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # knows no token
        result = module.handler(_status_event("Succeeded", "stale-token", arn), lambda_context())
    assert result == {"action": "dropped", "status": "Succeeded", "reason": "InvalidToken"}


def test_failure_cause_names_the_failed_step_and_its_message(monkeypatch):
    module = load_handler("pipeline_callback")

    class FakeSageMaker:
        def describe_pipeline_execution(self, **_):
            return {"FailureReason": "Step failure: One or multiple steps failed."}

        def list_pipeline_execution_steps(self, **_):
            return {"PipelineExecutionSteps": [
                {"StepName": "Report", "StepStatus": "Succeeded"},
                {"StepName": "Prepare", "StepStatus": "Failed", "FailureReason": "AlgorithmError",
                 "Metadata": {"ProcessingJob": {"Arn": "arn:aws:sagemaker:r:1:processing-job/pipelines-x-prepare"}}}]}

        def describe_processing_job(self, ProcessingJobName):  # noqa: N803 - boto3's naming
            assert ProcessingJobName == "pipelines-x-prepare"
            return {"ExitMessage": "events.csv, column 'revenue', row 12: negative revenue"}

    monkeypatch.setattr(module.boto3, "client", lambda name, *a, **k: FakeSageMaker())
    cause = module.failure_cause("arn", "Failed")
    assert cause == "Step Prepare failed: events.csv, column 'revenue', row 12: negative revenue"


# --------------------------------------------------------------------------- notify


@pytest.fixture
def slack():
    stub = SlackStub()
    yield stub
    stub.close()


@pytest.fixture
def notify(aws, monkeypatch, slack):
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="ltv-forecast/slack", SecretString=json.dumps({
        "channels": {"team-ltv": slack.url("team"), "growth": slack.url("growth")},
        "default_channels": ["team-ltv"]}))
    monkeypatch.setenv("LTV_STORE", STORE)
    monkeypatch.setenv("LTV_NOTIFICATIONS", f"{STORE}/notifications")
    monkeypatch.setenv("LTV_SLACK_SECRET_NAME", "ltv-forecast/slack")
    monkeypatch.setenv("LTV_REPORT_LINK_HOURS", "2")
    module = load_handler("notify")
    module.settings.cache_clear()
    from ltvcore.notify.secrets import _default_cache

    _default_cache.clear()
    stream = io.StringIO()
    monkeypatch.setattr(module.logger.registered_handler, "stream", stream)
    return module, stream


def _state(job: Job, **more) -> dict:
    validated = {"run_id": job.run_id, "request": job.request.normalised(), "dataset": job.dataset,
                 "requested_by": job.requested_by, "notify": list(job.notify), "as_of": "latest"}
    return {"input": job.execution_input(STORE), "validated": validated, **more}


def test_notify_success_reads_the_run_and_fans_out(notify, slack, aws, tmp_path):
    module, logs = notify
    job = _job()
    make_run(tmp_path, STORE, job.run_id, request=job.request.normalised())
    state = _state(job, publish={"job": "ltv-publish-1", "status": "Completed"})
    result = module.handler({"status": "succeeded", "execution_name": job.run_id,
                             "execution_arn": "arn:aws:states:us-east-1:1:execution:sm:x", "state": state},
                            lambda_context("notify"))
    assert result == {"ok": True, "delivered": ["team-ltv", "growth"], "failed": []}
    assert sorted(path.rsplit("/", 1)[-1] for path, _ in slack.posts) == ["growth", "team"]
    message = json.dumps(slack.posts[0][1])
    assert job.run_id in message and "spring" in message and "few installs in summer" in message
    assert "X-Amz-Expires=7200" in message and "2 hours" in message  # pre-signed, lifetime stated
    logs_written = aws.list_objects_v2(Bucket=BUCKET, Prefix=f"notifications/{job.run_id}/")["Contents"]
    assert logs_written[0]["Key"].endswith("-succeeded.json")
    assert "/services/" not in logs.getvalue() + json.dumps(result)  # webhook URLs stay secret
    record = aws.get_object(Bucket=BUCKET, Key=logs_written[0]["Key"])["Body"].read().decode()
    assert "/services/" not in record


def test_notify_failure_marks_the_run_failed_in_plain_words(notify, slack):
    module, _logs = notify
    job = _job()
    error = {"Error": "InputError", "Cause": json.dumps({
        "errorType": "InputError", "errorMessage": "field 'horizons': 0 is out of range [1, 3650]"})}
    module.handler({"status": "failed", "execution_name": job.run_id,
                    "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:sm:{job.run_id}",
                    "state": {"input": job.execution_input(STORE), "error": error}},
                   lambda_context("notify"))
    status = open_store(STORE).status(job.run_id)
    assert status["status"] == "failed"
    assert status["detail"]["error"] == ("The request or its data was not usable: "
                                         "field 'horizons': 0 is out of range [1, 3650]")
    message = json.dumps(slack.posts[0][1])
    assert "out of range" in message and "console.aws.amazon.com/states" in message


def test_notify_never_raises_when_slack_is_down(notify, slack, monkeypatch):
    module, _logs = notify
    monkeypatch.setattr(module, "dispatch", functools.partial(module.dispatch, backoff_factor=0.0))
    slack.status = 500
    job = _job()
    result = module.handler({"status": "failed", "execution_name": job.run_id, "execution_arn": "",
                             "state": {"input": job.execution_input(STORE),
                                       "error": {"Error": "States.Timeout", "Cause": ""}}},
                            lambda_context("notify"))
    assert result["ok"] is False and set(result["failed"]) == {"team-ltv", "growth"}
    assert len(slack.posts) == 2 * 4  # each channel: one try and three bounded retries


@pytest.mark.parametrize(("error", "expected"), [
    ({"Error": "PipelineFailed", "Cause": "Step Prepare failed: bad row"},
     "The forecast pipeline did not finish. Step Prepare failed: bad row"),
    ({"Error": "States.Timeout"}, "The forecast pipeline did not report back in time; the run was given up."),
    ({"Error": "States.TaskFailed", "Cause": "job failed"}, "States.TaskFailed: job failed"),
    ({}, "The run failed."),
])
def test_plain_error(error, expected):
    assert load_handler("notify").plain_error(error) == expected


def test_handlers_log_json_lines(notify):
    module, logs = notify
    module.logger.info("probe")
    assert json.loads(logs.getvalue().splitlines()[-1])["message"] == "probe"
    assert isinstance(module.logger, Logger)  # Powertools' structured logger, not print
