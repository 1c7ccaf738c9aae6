"""First state of the forecast workflow: check the execution input, mark the run running.

The input is what ``ltvcore.api.launchers.StepFunctionsLauncher`` starts an execution with
(``run_id``, ``request``, ``dataset``, ``input_digest``, ``requested_by``, ``notify``,
``status_url``, ``submitted``). The request is validated again (an execution can be started
from anywhere) and the execution name must be the run id that the request, the data digest
and this deployment's code version give (``<run id>-<attempt>`` for a new attempt of a failed
run, ``ltvcore.api.attempts``): the run that gets published carries that id.
Writes ``request.json`` for the pipeline's forecast step and returns the pipeline parameters.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from ltvcore.api.attempts import attempt_of
from ltvcore.api.models import check_dataset_name
from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.runs.naming import cached_code_version as code_version
from ltvcore.runs.naming import planned_run_id
from ltvcore.runs.store import MARKER_KEYS, open_store, parse_s3_uri

logger = Logger()
tracer = Tracer()

LATEST = "latest"  # the pipeline's AsOf value for "the last date in the data"
_DIGEST = re.compile(r"[0-9a-f]{64}")


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    store: str = Field(alias="LTV_STORE")
    scratch_runs: str = Field(alias="LTV_SCRATCH_RUNS")  # s3://bucket/scratch/runs


class ValidateTask(BaseModel):
    """The Validate state's payload (infra/workflow.py): the execution's name and input."""

    execution_name: str = ""
    # Checked below rather than typed: a malformed input must fail as the InputError the run shows.
    input: Any = None


@cache
def settings() -> Settings:
    """The environment, read once per container."""
    return Settings.model_validate(dict(os.environ))


@cache
def s3() -> Any:  # one client per container, made on first use (importing needs no region)
    return boto3.client("s3")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_parser(model=ValidateTask)
def handler(event: ValidateTask, context: LambdaContext) -> dict[str, Any]:
    data = event.input
    if not isinstance(data, dict):
        raise InputError("the execution input must be a JSON object")
    request = ForecastRequest.from_dict(dict(data.get("request") or {}))
    dataset = str(request.dataset or data.get("dataset") or "")
    try:
        check_dataset_name(dataset)  # the API's rule: a folder name, never a path
    except ValueError as error:
        raise InputError(str(error), column="dataset") from None
    digest = str(data.get("input_digest") or "")
    if not _DIGEST.fullmatch(digest):
        raise InputError("must be the sha256 digest of the dataset's files", column="input_digest")
    run_id = planned_run_id(request, digest)
    attempt = attempt_of(event.execution_name, run_id)
    if attempt is None or data.get("run_id", run_id) != run_id:
        raise InputError(f"the execution must be named by the run id {run_id} (request, data "
                         f"digest and code version {code_version()}), or <run id>-<attempt> for "
                         "a new attempt: submit through POST /forecasts", column="run_id")
    result = {
        "run_id": run_id,
        "request": request.normalised(),
        "dataset": dataset,
        "as_of": request.as_of or LATEST,
        "input_digest": digest,
        "requested_by": str(data.get("requested_by") or "unknown"),
        "notify": [str(name) for name in data.get("notify") or []],
        "status_url": str(data.get("status_url") or ""),
        "submitted": str(data.get("submitted") or ""),
    }
    # The attempt's execution owns the marker: the notify Lambda ignores a late end of an older one.
    marker = {key: result[key] for key in MARKER_KEYS} | {"execution": event.execution_name,
                                                          "attempt": attempt}
    open_store(settings().store).mark(run_id, "running", marker)
    bucket, prefix = parse_s3_uri(settings().scratch_runs)
    s3().put_object(Bucket=bucket, Key=f"{prefix}/{run_id}/request.json",
                    Body=json.dumps(result["request"], sort_keys=True).encode(), ContentType="application/json")
    logger.info("run accepted", extra={"run_id": run_id, "dataset": dataset})
    return result
