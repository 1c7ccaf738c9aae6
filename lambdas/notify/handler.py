"""Last state of the forecast workflow, on both paths: record the outcome, tell Slack.

Succeeded: reads the published run (manifest, forecast.csv) and sends the summary with a
pre-signed link to ``report.html``. Failed: marks the run ``failed`` in the store (the run page
shows the error) and sends the error in plain words with a link to the execution. Slack
delivery never raises (``ltvcore.notify.dispatch``); what happened per channel is written to
``notifications/<run_id>/`` in the bucket. Webhook URLs come from Secrets Manager at run time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
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


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_parser(model=WorkflowEnded)
def handler(event: WorkflowEnded, context: LambdaContext) -> dict[str, Any]:
    run = event.run
    run_id = str(run.get("run_id") or event.execution_name)
    store = open_store(settings().store)
    error = None if event.status == "succeeded" else _failed(store, run, run_id,
                                                              event.state.get("error") or {})
    payload = run_message(store, run_id, request=run.get("request") or {},
                          requested_by=run.get("requested_by"), dataset=run.get("dataset"),
                          error=error, report_url=_report_link(store, run_id),
                          link_lifetime=_hours(settings().link_hours),
                          where_to_look=_console_link(event.execution_arn))
    report = dispatch(payload, requested=run.get("notify") or [])
    _save_log(run_id, event.status, report.to_dict())
    logger.info("notified", extra={"run_id": run_id, "ok": report.ok, "printed": report.printed})
    return {"ok": report.ok, "delivered": list(report.delivered),
            "failed": [r.channel for r in report.failed]}


def _failed(store: Any, run: dict[str, Any], run_id: str, error: dict[str, Any]) -> str:
    """The failure in plain words, recorded on the run's marker."""
    text = plain_error(error)
    marker = {key: run.get(key) for key in MARKER_KEYS}
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
