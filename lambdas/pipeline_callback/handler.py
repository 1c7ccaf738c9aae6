"""Tells the waiting workflow that its SageMaker pipeline execution ended.

EventBridge sends every "SageMaker Model Building Pipeline Execution Status Change" of the
forecast pipeline here. The state machine started the execution with its task token as the
execution *description* (a description holds 3072 characters; a pipeline parameter only 1024,
and task tokens may be longer), so the event itself carries the token back:
Succeeded → ``SendTaskSuccess``; Failed/Stopped → ``SendTaskFailure`` with the failed step's
own message (what the job wrote to ``/opt/ml/output/message``, e.g. which input row is bad).
A token the workflow no longer waits for (it timed out or was stopped) is logged and dropped:
raising would only make EventBridge retry in vain.

Executing: the execution's ARN is recorded under ``<LTV_SCRATCH_RUNS>/<run_id>/pipeline.json``
(the display name is the run id), so whoever gives up on the run can stop this pipeline: the
state machine's Catch path after a RunPipeline timeout, the notify Lambda after an execution
timeout or a manual stop. The waiting task's output never carries the ARN before it ends.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import envelopes, event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel

logger = Logger()
tracer = Tracer()

FINAL = {"Succeeded": None, "Failed": "PipelineFailed", "Stopped": "PipelineStopped"}
MAX_CAUSE = 32768
_GONE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")
RECORD = "pipeline.json"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a key segment, never a path


class PipelineStatusChange(BaseModel):
    """The ``detail`` of the status-change event, as far as the callback reads it."""

    currentPipelineExecutionStatus: str | None = None
    pipelineExecutionArn: str = ""
    pipelineExecutionDescription: str | None = None  # the task token
    pipelineExecutionDisplayName: str | None = None  # the run id


# One client per container, made on first use: importing the handler needs no region or credentials.
@cache
def states() -> Any:
    return boto3.client("stepfunctions")


@cache
def sagemaker() -> Any:
    return boto3.client("sagemaker")


@cache
def s3() -> Any:
    return boto3.client("s3")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_parser(model=PipelineStatusChange, envelope=envelopes.EventBridgeEnvelope)
def handler(detail: PipelineStatusChange, context: LambdaContext) -> dict[str, Any]:
    status, execution_arn = detail.currentPipelineExecutionStatus, detail.pipelineExecutionArn
    token = (detail.pipelineExecutionDescription or "").strip()
    if status == "Executing" and token:
        return record(detail.pipelineExecutionDisplayName or "", execution_arn)
    if status not in FINAL or not token:
        return {"action": "ignored", "status": status}
    try:
        if FINAL[status] is None:
            states().send_task_success(taskToken=token, output=json.dumps(
                {"pipeline_execution_arn": execution_arn, "status": status}))
        else:
            states().send_task_failure(taskToken=token, error=FINAL[status],
                                       cause=failure_cause(execution_arn, status)[:MAX_CAUSE])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in _GONE:
            raise
        logger.warning("the workflow no longer waits for this pipeline execution",
                       extra={"pipeline_execution_arn": execution_arn, "reason": code})
        return {"action": "dropped", "status": status, "reason": code}
    logger.info("workflow told", extra={"pipeline_execution_arn": execution_arn, "status": status})
    return {"action": "sent", "status": status}


def record(run_id: str, execution_arn: str) -> dict[str, Any]:
    """Write the run's pipeline execution ARN where the stop paths look for it."""
    scratch = os.environ.get("LTV_SCRATCH_RUNS", "")
    if not scratch.startswith("s3://") or not _RUN_ID.match(run_id):
        logger.warning("pipeline execution not recorded", extra={"run_id": run_id})
        return {"action": "ignored", "status": "Executing"}
    bucket, _, prefix = scratch[len("s3://"):].partition("/")
    key = f"{prefix.strip('/')}/{run_id}/{RECORD}".lstrip("/")
    s3().put_object(Bucket=bucket, Key=key, ContentType="application/json",
                    Body=json.dumps({"pipeline_execution_arn": execution_arn}).encode())
    logger.info("pipeline execution recorded", extra={"run_id": run_id, "key": key})
    return {"action": "recorded", "status": "Executing"}


def failure_cause(execution_arn: str, status: str) -> str:
    """The failed step and its job's own message, else the pipeline's failure reason."""
    reason = ""
    try:
        reason = sagemaker().describe_pipeline_execution(
            PipelineExecutionArn=execution_arn).get("FailureReason") or ""
        steps = sagemaker().list_pipeline_execution_steps(
            PipelineExecutionArn=execution_arn)["PipelineExecutionSteps"]
        for step in steps:
            if step.get("StepStatus") != "Failed":
                continue
            message = step.get("FailureReason") or ""
            job_arn = step.get("Metadata", {}).get("ProcessingJob", {}).get("Arn", "")
            if job_arn:
                job = sagemaker().describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
                message = job.get("ExitMessage") or job.get("FailureReason") or message
            return f"Step {step.get('StepName')} failed: {message}".strip()
    except Exception as error:  # noqa: BLE001 - the callback must go out even without details
        logger.warning("could not read the failure details", extra={"error": str(error)})
    return reason or f"The SageMaker pipeline execution {status.lower()} ({execution_arn})."
