"""The daily warehouse refresh's Lambda steps (infra/warehouse.py): plan, then commit.

``{"action": "plan", "execution": <execution ARN>}`` returns the dates to aggregate and one
Athena statement each (:func:`ltvcore.warehouse.athena.plan`); ``{"action": "commit",
"datasets": […], "results": [one per date: the plan's item with query_id or error], "removed":
[…]}`` writes each dataset's ``state.json`` and manifest (:func:`ltvcore.warehouse.athena.commit`).

Two refreshes at once could each clear a date and both unload into it, so plan first checks
that its execution is the only one running and fails otherwise.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from ltvcore.runs.store import parse_s3_uri
from ltvcore.warehouse import athena

logger = Logger()
tracer = Tracer()


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    warehouse: str = Field(alias="LTV_WAREHOUSE")  # s3://bucket/warehouse
    database: str = Field(alias="LTV_GLUE_DATABASE")
    events_table: str = Field("events", alias="LTV_GLUE_EVENTS_TABLE")
    state_machine_arn: str = Field(alias="LTV_REFRESH_STATE_MACHINE_ARN")


class RefreshTask(BaseModel):
    """The payload of the Plan and Commit states."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["plan", "commit"]
    execution: str = ""
    datasets: list[str] = []
    results: list[dict[str, Any]] = []
    removed: list[dict[str, str]] = []


class RefreshBusy(RuntimeError):
    """Another refresh execution is running."""


@cache
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))


@cache
def warehouse() -> athena.Warehouse:
    bucket, prefix = parse_s3_uri(settings().warehouse)
    return athena.Warehouse(bucket=bucket, prefix=prefix, database=settings().database,
                            events_table=settings().events_table)


@cache
def s3() -> Any:  # clients made on first use: importing the handler needs no region
    return boto3.client("s3")


@cache
def states() -> Any:
    return boto3.client("stepfunctions")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_parser(model=RefreshTask)
def handler(event: RefreshTask, context: LambdaContext) -> dict[str, Any]:
    if event.action == "plan":
        _only_refresh_running(event.execution)
        planned = athena.plan(s3(), warehouse()).to_dict()
        logger.info("planned", extra={k: planned[k] for k in ("datasets", "dates", "deferred")})
        return planned
    done = athena.commit(s3(), warehouse(), datasets=event.datasets, results=event.results,
                         removed=event.removed)
    logger.info("committed", extra=done)
    return done


def _only_refresh_running(execution: str) -> None:
    running = states().list_executions(stateMachineArn=settings().state_machine_arn,
                                       statusFilter="RUNNING", maxResults=10)["executions"]
    others = [item["executionArn"] for item in running if item["executionArn"] != execution]
    if others:
        raise RefreshBusy(f"another warehouse refresh is running ({others[0]}): this one stops "
                          "before it changes anything")
