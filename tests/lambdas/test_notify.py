"""lambdas/notify: the workflow's last state against moto (S3, Secrets Manager) and a local Slack
stand-in, with the payload the Notify* states send."""

from __future__ import annotations

import functools
import io
import json

import boto3
import pytest
from aws_lambda_powertools import Logger

from ltvcore.api.launchers import Job
from ltvcore.runs.store import open_store
from tests.infra.support import SlackStub, lambda_context, load_handler, make_run
from tests.lambdas.support import BUCKET, STORE, make_job


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
    stream = io.StringIO()
    monkeypatch.setattr(module.logger.registered_handler, "stream", stream)
    return module, stream


def _state(job: Job, **more) -> dict:
    validated = {"run_id": job.run_id, "request": job.request.normalised(), "dataset": job.dataset,
                 "requested_by": job.requested_by, "notify": list(job.notify), "as_of": "latest"}
    return {"input": job.execution_input(STORE), "validated": validated, **more}


def test_notify_success_reads_the_run_and_fans_out(notify, slack, aws, tmp_path):
    module, logs = notify
    job = make_job()
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
    job = make_job()
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
    job = make_job()
    result = module.handler({"status": "failed", "execution_name": job.run_id, "execution_arn": "",
                             "state": {"input": job.execution_input(STORE),
                                       "error": {"Error": "States.Timeout", "Cause": ""}}},
                            lambda_context("notify"))
    assert result["ok"] is False and set(result["failed"]) == {"team-ltv", "growth"}
    assert len(slack.posts) == 2 * 4  # each channel: one try and three bounded retries


def test_notify_reads_the_webhook_secret_once_per_container(notify, slack, aws):
    module, _logs = notify
    job = make_job()
    event = {"status": "failed", "execution_name": job.run_id, "execution_arn": "",
             "state": {"input": job.execution_input(STORE), "error": {"Error": "States.Timeout"}}}
    module.handler(event, lambda_context("notify"))
    boto3.client("secretsmanager").delete_secret(SecretId="ltv-forecast/slack", ForceDeleteWithoutRecovery=True)
    assert module.handler(event, lambda_context("notify"))["ok"] is True  # Powertools' cache (5 min)
    assert len(slack.posts) == 2 * 2


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


def _execution_ended(job: Job, status: str, minutes: int = 465, **more) -> dict:
    """Step Functions' EventBridge event when an execution ends (the documented shape)."""
    arn = f"arn:aws:states:us-east-1:123456789012:execution:sm:{job.run_id}"
    return {"version": "0", "id": "e-1", "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states", "account": "123456789012", "time": "2026-01-12T16:00:00Z",
            "region": "us-east-1", "resources": [arn],
            "detail": {"executionArn": arn, "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:sm",
                       "name": job.run_id, "status": status, "startDate": 1_768_204_800_000,
                       "stopDate": 1_768_204_800_000 + minutes * 60_000,
                       "input": json.dumps(job.execution_input(STORE)), "output": None, **more}}


class _RecordingSageMaker:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop_pipeline_execution(self, PipelineExecutionArn, ClientRequestToken):  # noqa: N803 - boto3
        assert len(ClientRequestToken) >= 32
        self.stopped.append(PipelineExecutionArn)


def test_execution_timeout_marks_the_run_failed_and_stops_the_recorded_pipeline(notify, slack, aws,
                                                                                monkeypatch):
    module, _logs = notify
    sagemaker = _RecordingSageMaker()
    monkeypatch.setattr(module, "sagemaker", lambda: sagemaker)
    job = make_job()
    open_store(STORE).mark(job.run_id, "running", {})
    pipeline = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/ltvforecast-forecast/execution/abc"
    aws.put_object(Bucket=BUCKET, Key=f"scratch/runs/{job.run_id}/pipeline.json",
                   Body=json.dumps({"pipeline_execution_arn": pipeline}).encode())
    result = module.handler(_execution_ended(job, "TIMED_OUT"), lambda_context("notify"))
    assert result["action"] == "recorded" and result["pipeline_stopped"] is True
    assert sagemaker.stopped == [pipeline]
    status = open_store(STORE).status(job.run_id)
    assert status["status"] == "failed"
    assert status["detail"]["error"] == "The forecast timed out after 465 minutes; the run was given up."
    assert any("timed out after 465 minutes" in json.dumps(body) for _path, body in slack.posts)


def test_manual_stop_without_a_recorded_pipeline_still_marks_the_run_failed(notify, slack, monkeypatch):
    module, _logs = notify
    sagemaker = _RecordingSageMaker()
    monkeypatch.setattr(module, "sagemaker", lambda: sagemaker)
    job = make_job()
    result = module.handler(_execution_ended(job, "ABORTED"), lambda_context("notify"))
    assert result["pipeline_stopped"] is False and not sagemaker.stopped
    status = open_store(STORE).status(job.run_id)
    assert status["status"] == "failed" and status["detail"]["error"] == "The forecast was stopped before it finished."
    assert {path.rsplit("/", 1)[-1] for path, _ in slack.posts} == {"team", "growth"}


def test_a_failure_the_workflow_recorded_itself_is_not_reported_twice(notify, slack):
    module, _logs = notify
    job = make_job()
    event = _execution_ended(job, "FAILED", error="ForecastFailed", cause="The forecast run failed")
    assert module.handler(event, lambda_context("notify")) == {"action": "ignored", "status": "FAILED"}
    assert open_store(STORE).status(job.run_id) is None and not slack.posts


def test_a_published_run_is_never_turned_into_a_failed_one(notify, slack, tmp_path):
    module, _logs = notify
    job = make_job()
    make_run(tmp_path, STORE, job.run_id, request=job.request.normalised())
    result = module.handler(_execution_ended(job, "TIMED_OUT"), lambda_context("notify"))
    assert result["action"] == "ignored"
    assert open_store(STORE).status(job.run_id)["status"] == "succeeded" and not slack.posts


def test_the_late_end_of_an_older_attempt_leaves_the_newer_one_alone(notify, slack, aws, monkeypatch):
    """Attempt 2 (``<run id>-2``) owns the run: attempt 1's timeout, delivered late, neither
    marks it failed nor stops the pipeline attempt 2 recorded."""
    module, _logs = notify
    sagemaker = _RecordingSageMaker()
    monkeypatch.setattr(module, "sagemaker", lambda: sagemaker)
    job = make_job()
    open_store(STORE).mark(job.run_id, "running", job.marker(execution=f"{job.run_id}-2", attempt=2))
    aws.put_object(Bucket=BUCKET, Key=f"scratch/runs/{job.run_id}/pipeline.json",
                   Body=json.dumps({"pipeline_execution_arn": "arn:…/execution/new"}).encode())
    result = module.handler(_execution_ended(job, "TIMED_OUT"), lambda_context("notify"))
    assert result["action"] == "ignored" and not sagemaker.stopped and not slack.posts
    assert open_store(STORE).status(job.run_id)["status"] == "running"
    # the newer attempt's own end is recorded, and the marker names that attempt
    ended = _execution_ended(job, "ABORTED")
    ended["detail"]["name"] = f"{job.run_id}-2"
    assert module.handler(ended, lambda_context("notify"))["action"] == "recorded"
    status = open_store(STORE).status(job.run_id)
    assert status["status"] == "failed" and status["detail"]["execution"] == f"{job.run_id}-2"
    assert sagemaker.stopped == ["arn:…/execution/new"]


def test_a_reused_run_is_announced_with_the_success_message(notify, slack, tmp_path):
    """The API's announce payload (StepFunctionsLauncher.announce) is NotifySuccess's."""
    module, _logs = notify
    job = make_job()
    make_run(tmp_path, STORE, job.run_id, request=job.request.normalised())
    payload = {"status": "succeeded", "execution_name": job.run_id,
               "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:sm:{job.run_id}",
               "state": {"input": job.execution_input(STORE)}}
    assert module.handler(payload, lambda_context("notify"))["ok"] is True
    assert {path.rsplit("/", 1)[-1] for path, _ in slack.posts} == {"team", "growth"}
    assert all(job.run_id in json.dumps(body) for _path, body in slack.posts)
