"""Last state of the forecast workflow, on both paths: record the outcome, tell Slack.

Succeeded: reads the published run (manifest, forecast.csv) and sends the summary with a
pre-signed link to ``report.html``. Failed: marks the run ``failed`` in the store (the run page
shows the error) and sends the error in plain words with a link to the execution. Slack
delivery never raises (``ltvcore.notify.dispatch``); what happened per channel is written to
``notifications/<run_id>/`` in the bucket. Webhook URLs come from Secrets Manager at run time.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field

from ltvcore.notify import dispatch, failure_message, success_message
from ltvcore.notify.messages import workflow_error_text as plain_error
from ltvcore.runs.store import MARKER_KEYS, S3Store, open_store, parse_s3_uri, validate_run_id

logger = Logger()
tracer = Tracer()


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    store: str = Field(alias="LTV_STORE")
    notifications: str = Field(alias="LTV_NOTIFICATIONS")  # s3://bucket/notifications
    link_hours: int = Field(alias="LTV_REPORT_LINK_HOURS", default=1)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = event.get("state") if isinstance(event.get("state"), dict) else {}
    run = {**(state.get("input") or {}), **(state.get("validated") or {})}
    run_id = str(run.get("run_id") or event.get("execution_name") or "")
    if event.get("status") == "succeeded":
        payload = _success(run, run_id)
    else:
        payload = _failure(run, run_id, state.get("error") or {}, event.get("execution_arn", ""))
    report = dispatch(payload, requested=run.get("notify") or [])
    _save_log(run_id, event.get("status", "failed"), report.to_dict())
    logger.info("notified", extra={"run_id": run_id, "ok": report.ok, "printed": report.printed})
    return {"ok": report.ok, "delivered": list(report.delivered),
            "failed": [r.channel for r in report.failed]}


def _success(run: dict[str, Any], run_id: str) -> dict:
    request = run.get("request") or {}
    store = open_store(settings().store)
    manifest: dict[str, Any] = {}
    rows: list[dict[str, str]] = []
    try:
        manifest = store.read_manifest(run_id)
        text = store.read_bytes(run_id, "forecast.csv").decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
    except Exception as error:  # noqa: BLE001 - announce the run even if its files are unreadable
        logger.warning("could not read the run for the message", extra={"error": str(error)})
    return success_message(
        run_id=run_id, requested_by=run.get("requested_by"), dataset=str(run.get("dataset", "")),
        as_of=str(manifest.get("as_of") or request.get("as_of") or ""), forecast_rows=rows,
        by=list(request.get("by") or ["campaign"]), warnings=manifest.get("warnings") or (),
        report_url=_report_link(store, run_id), link_lifetime=_hours(settings().link_hours),
        confidence=request.get("confidence"))


def _failure(run: dict[str, Any], run_id: str, error: dict[str, Any], execution_arn: str) -> dict:
    text = plain_error(error)
    marker = {key: run.get(key) for key in MARKER_KEYS}
    try:
        open_store(settings().store).mark(validate_run_id(run_id), "failed", marker | {"error": text})
    except Exception as mark_error:  # noqa: BLE001 - still tell the people who wait for it
        logger.warning("could not mark the run failed", extra={"error": str(mark_error)})
    return failure_message(run_id=run_id or None, requested_by=run.get("requested_by"),
                           dataset=run.get("dataset"), error=text,
                           where_to_look=_console_link(execution_arn))


def _report_link(store: Any, run_id: str) -> str | None:
    if not isinstance(store, S3Store):
        return None
    try:
        bucket, key = parse_s3_uri(f"{store.location(run_id)}/report.html")
        signer = boto3.client("s3", config=Config(signature_version="s3v4"))
        return signer.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key},
            ExpiresIn=settings().link_hours * 3600)
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
        boto3.client("s3").put_object(
            Bucket=bucket, Key=f"{prefix}/{name}/{stamp}-{status}.json",
            Body=json.dumps(report, sort_keys=True).encode(), ContentType="application/json")
    except Exception as error:  # noqa: BLE001 - the log is a record, never a failure
        logger.warning("could not save the notification log", extra={"error": str(error)})
