"""lambdas/pipeline_callback: SageMaker's EventBridge status-change events (moto SageMaker and
Step Functions) become the waiting workflow's task success or failure."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.infra.support import lambda_context, load_handler, pipeline_status_event


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
    monkeypatch.setattr(module, "states", lambda: states)
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_pipeline(PipelineName="ltvforecast-forecast", PipelineDefinition="{}",
                              RoleArn="arn:aws:iam::123456789012:role/p")
    arn = sagemaker.start_pipeline_execution(PipelineName="ltvforecast-forecast",
                                             PipelineExecutionDescription="TOKEN")["PipelineExecutionArn"]
    return module, states, arn


def test_callback_reports_success_with_the_token_from_the_description(callback):
    module, states, arn = callback
    result = module.handler(pipeline_status_event("Succeeded", "TOKEN", arn), lambda_context())
    assert result == {"action": "sent", "status": "Succeeded"}
    ((kind, call),) = states.calls
    assert kind == "success" and call["taskToken"] == "TOKEN"
    assert json.loads(call["output"])["pipeline_execution_arn"] == arn


def test_callback_reports_failure_with_a_cause(callback):
    module, states, arn = callback
    module.handler(pipeline_status_event("Failed", "TOKEN", arn), lambda_context())
    ((kind, call),) = states.calls
    assert kind == "failure" and call["error"] == "PipelineFailed"
    assert arn in call["cause"]  # moto records no failed step: the fallback names the execution


@pytest.mark.parametrize(("status", "token"), [("Executing", "TOKEN"), ("Succeeded", "")])
def test_callback_ignores_other_events(callback, status, token):
    module, states, arn = callback
    assert module.handler(pipeline_status_event(status, token, arn), lambda_context())["action"] == "ignored"
    assert not states.calls


def test_callback_ignores_an_execution_started_without_a_description(callback):
    module, states, arn = callback
    event = pipeline_status_event("Succeeded", "", arn)
    del event["detail"]["pipelineExecutionDescription"]
    assert module.handler(event, lambda_context()) == {"action": "ignored", "status": "Succeeded"}
    assert not states.calls


def test_callback_refuses_an_event_that_is_not_from_eventbridge(callback):
    module, states, _arn = callback
    with pytest.raises(Exception, match="validation error"):
        module.handler({"detail": {"currentPipelineExecutionStatus": "Succeeded"}}, lambda_context())
    assert not states.calls


def test_callback_drops_a_token_nobody_waits_for(aws_env):
    module = load_handler("pipeline_callback")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/ltvforecast-forecast/execution/abc"
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # knows no token
        result = module.handler(pipeline_status_event("Succeeded", "stale-token", arn), lambda_context())
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

    monkeypatch.setattr(module, "sagemaker", FakeSageMaker)
    cause = module.failure_cause("arn", "Failed")
    assert cause == "Step Prepare failed: events.csv, column 'revenue', row 12: negative revenue"


def test_executing_records_the_execution_for_the_stop_paths(callback, aws, monkeypatch):
    module, states, arn = callback
    monkeypatch.setenv("LTV_SCRATCH_RUNS", "s3://ltv-artifacts/scratch/runs")
    event = pipeline_status_event("Executing", "TOKEN", arn, display_name="run-1")
    assert module.handler(event, lambda_context()) == {"action": "recorded", "status": "Executing"}
    body = aws.get_object(Bucket="ltv-artifacts", Key="scratch/runs/run-1/pipeline.json")["Body"].read()
    assert json.loads(body) == {"pipeline_execution_arn": arn}
    assert not states.calls  # the workflow waits on


def test_executing_with_a_display_name_that_is_no_run_id_records_nothing(callback, aws, monkeypatch):
    module, _states, arn = callback
    monkeypatch.setenv("LTV_SCRATCH_RUNS", "s3://ltv-artifacts/scratch/runs")
    event = pipeline_status_event("Executing", "TOKEN", arn, display_name="../runs/x")
    assert module.handler(event, lambda_context())["action"] == "ignored"
    assert "Contents" not in aws.list_objects_v2(Bucket="ltv-artifacts")


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken"])
def test_a_late_callback_after_the_task_timed_out_is_dropped_quietly(callback, monkeypatch, code):
    from botocore.exceptions import ClientError

    module, _states, arn = callback

    class TimedOutStates:
        def send_task_failure(self, **_):
            raise ClientError({"Error": {"Code": code, "Message": "gone"}}, "SendTaskFailure")

    monkeypatch.setattr(module, "states", TimedOutStates)
    result = module.handler(pipeline_status_event("Stopped", "TOKEN", arn), lambda_context())
    assert result == {"action": "dropped", "status": "Stopped", "reason": code}
