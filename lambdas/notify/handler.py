"""Last state of the forecast workflow, on both paths: record the outcome, tell Slack.

Succeeded: reads the published run (manifest, forecast.csv) and sends the summary with a
pre-signed link to ``report.html``. Failed: marks the run ``failed`` in the store (the run page
shows the error) and sends the error in plain words with a link to the execution. Slack
delivery never raises (``ltvcore.notify.dispatch``); what happened per channel is written to
``notifications/<run_id>/`` in the bucket. Webhook URLs come from Secrets Manager at run time.

Also the target of the EventBridge rule on the state machine's "Execution Status Change"
(TIMED_OUT, ABORTED, FAILED): those ends bypass the Notify* states, and the run would stay
``running`` forever. The run (id = execution name) is marked failed in plain words, Slack is
told, and the pipeline execution the callback recorded is stopped. A FAILED execution that ended
in the workflow's own ``Failed`` state was recorded by NotifyFailure already and is ignored, and
so is the late end of an older attempt while a newer one (``<run id>-<attempt>``) is queued or
running: that run is the newer attempt's, and so is its pipeline.

A succeeded run resubmitted with ``notify`` is announced again through this Lambda: the API
invokes it asynchronously with the NotifySuccess payload (``StepFunctionsLauncher.announce``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field

from ltvcore.notify import dispatch
from ltvcore.notify.announce import run_message
from ltvcore.notify.messages import workflow_error_text as plain_error
from ltvcore.runs.store import MARKER_KEYS, S3Store, open_store, parse_s3_uri, validate_run_id

logger = Logger()
tracer = Tracer()


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    store: str = Field(alias="LTV_STORE")
    notifications: str = Field(alias="LTV_NOTIFICATIONS")  # s3://bucket/notifications
    link_hours: int = Field(alias="LTV_REPORT_LINK_HOURS", default=1)


EXECUTION_STATUS = "Step Functions Execution Status Change"
HANDLED_FAILURE = "ForecastFailed"  # the Fail state's error: NotifyFailure ran before it
PIPELINE_RECORD = "pipeline.json"  # scratch/runs/<run_id>/, written by lambdas/pipeline_callback


class ExecutionEnded(BaseModel):
    """The ``detail`` of Step Functions' execution status-change event, as far as it is read."""

    model_config = ConfigDict(extra="ignore")

    executionArn: str = ""
    name: str = ""
    status: str
    startDate: int | None = None  # epoch milliseconds
    stopDate: int | None = None
    input: str | None = None  # the execution input, as JSON text
    error: str | None = None
    cause: str | None = None

    def reason(self) -> str:
        if self.status == "TIMED_OUT":
            minutes = round(((self.stopDate or 0) - (self.startDate or 0)) / 60000)
            return (f"The forecast timed out after {minutes} minutes" if minutes > 0
                    else "The forecast timed out") + "; the run was given up."
        if self.status == "ABORTED":
            return "The forecast was stopped before it finished."
        detail = ": ".join(part for part in (self.error, self.cause) if part)
        return f"The forecast failed unexpectedly ({detail[:1000]})." if detail else "The forecast failed."


class WorkflowEnded(BaseModel):
    """The Notify* states' payload (infra/workflow.py ``_notify_payload``)."""

    status: str = "failed"
    execution_name: str = ""
    execution_arn: str = ""
    state: dict[str, Any] = Field(default_factory=dict)  # the execution's state when it ended

    @property
    def run(self) -> dict[str, Any]:
        """What is known of the run: the execution input, overlaid by what Validate returned."""
        return {**(self.state.get("input") or {}), **(self.state.get("validated") or {})}


@cache
def settings() -> Settings:
    """The environment, read once per container."""
    return Settings.model_validate(dict(os.environ))


@cache
def s3() -> Any:  # one client per container, made on first use (importing needs no region)
    # SigV4: the report link is pre-signed with it (S3 refuses SigV2 links in newer regions).
    return boto3.client("s3", config=Config(signature_version="s3v4"))


@cache
def sagemaker() -> Any:
    return boto3.client("sagemaker")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("detail-type") == EXECUTION_STATUS:
        return _execution_ended(ExecutionEnded.model_validate(event.get("detail") or {}))
    return _workflow_ended(WorkflowEnded.model_validate(event))


def _execution_ended(detail: ExecutionEnded) -> dict[str, Any]:
    if detail.status == "FAILED" and detail.error == HANDLED_FAILURE:
        return {"action": "ignored", "status": detail.status}
    try:
        run = json.loads(detail.input or "{}")
    except ValueError:
        run = {}
    run = run if isinstance(run, dict) else {}
    run_id = str(run.get("run_id") or detail.name)
    store = open_store(settings().store)
    try:
        current = store.status(validate_run_id(run_id)) or {}
    except Exception:  # noqa: BLE001 - unknown or unreadable: record the failure anyway
        current = {}
    if current.get("status") == "succeeded":  # published before the execution ended: nothing was lost
        return {"action": "ignored", "status": detail.status, "run": "succeeded"}
    owner = (current.get("detail") or {}).get("execution")
    if current.get("status") in ("queued", "running") and owner and owner != detail.name:
        # A newer attempt owns the run (and the pipeline record): this end is an older one's.
        return {"action": "ignored", "status": detail.status, "run": f"attempt {owner}"}
    stopped = _stop_pipeline(run_id)
    reason = detail.reason()
    result = _notify(store, run, run_id, "failed",
                     _failed(store, run, run_id, reason, detail.name), detail.executionArn)
    logger.info("execution ended outside the workflow", extra={
        "run_id": run_id, "status": detail.status, "pipeline_stopped": stopped})
    return {**result, "action": "recorded", "status": detail.status, "pipeline_stopped": stopped}


def _stop_pipeline(run_id: str) -> bool:
    """Stop the run's recorded pipeline execution; False when none is recorded or it ended."""
    try:
        bucket, prefix = parse_s3_uri(settings().store)
        key = "/".join(p for p in (prefix, "scratch/runs", validate_run_id(run_id), PIPELINE_RECORD) if p)
        record = json.loads(s3().get_object(Bucket=bucket, Key=key)["Body"].read())
        sagemaker().stop_pipeline_execution(PipelineExecutionArn=record["pipeline_execution_arn"],
                                            ClientRequestToken=str(uuid.uuid4()))
    except Exception as error:  # noqa: BLE001 - no pipeline, or it ended: the run is recorded anyway
        logger.info("no pipeline execution stopped", extra={"run_id": run_id, "reason": str(error)})
        return False
    return True


def _workflow_ended(event: WorkflowEnded) -> dict[str, Any]:
    run = event.run
    run_id = str(run.get("run_id") or event.execution_name)
    store = open_store(settings().store)
    error = None if event.status == "succeeded" else _failed(
        store, run, run_id, plain_error(event.state.get("error") or {}), event.execution_name)
    return _notify(store, run, run_id, event.status, error, event.execution_arn)


def _notify(store: Any, run: dict[str, Any], run_id: str, status: str, error: str | None,
            execution_arn: str) -> dict[str, Any]:
    payload = run_message(store, run_id, request=run.get("request") or {},
                          requested_by=run.get("requested_by"), dataset=run.get("dataset"),
                          error=error, report_url=_report_link(store, run_id),
                          link_lifetime=_hours(settings().link_hours),
                          where_to_look=_console_link(execution_arn))
    report = dispatch(payload, requested=run.get("notify") or [])
    _save_log(run_id, status, report.to_dict())
    logger.info("notified", extra={"run_id": run_id, "ok": report.ok, "printed": report.printed})
    return {"ok": report.ok, "delivered": list(report.delivered),
            "failed": [r.channel for r in report.failed]}


def _failed(store: Any, run: dict[str, Any], run_id: str, text: str, execution: str) -> str:
    """The failure in plain words, recorded on the run's marker (with the attempt it ended)."""
    marker = {key: run.get(key) for key in MARKER_KEYS} | {"execution": execution or run_id}
    try:
        store.mark(validate_run_id(run_id), "failed", marker | {"error": text})
    except Exception as mark_error:  # noqa: BLE001 - still tell the people who wait for it
        logger.warning("could not mark the run failed", extra={"error": str(mark_error)})
    return text


def _report_link(store: Any, run_id: str) -> str | None:
    if not isinstance(store, S3Store):
        return None
    try:
        return store.presigned_url(run_id, "report.html", seconds=settings().link_hours * 3600)
    except Exception:  # noqa: BLE001 - the message goes out without a link
        return None


def _hours(hours: int) -> str:
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


def _console_link(execution_arn: str) -> str | None:
    parts = execution_arn.split(":")
    if len(parts) < 8:
        return None
    region = parts[3]
    return (f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}")


def _save_log(run_id: str, status: str, report: dict[str, Any]) -> None:
    try:
        bucket, prefix = parse_s3_uri(settings().notifications)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            name = validate_run_id(run_id)
        except ValueError:  # an execution started with a malformed input
            name = "unknown"
        s3().put_object(
            Bucket=bucket, Key=f"{prefix}/{name}/{stamp}-{status}.json",
            Body=json.dumps(report, sort_keys=True).encode(), ContentType="application/json")
    except Exception as error:  # noqa: BLE001 - the log is a record, never a failure
        logger.warning("could not save the notification log", extra={"error": str(error)})
