"""Where the processing jobs find their inputs and leave their outputs.

SageMaker mounts every input and collects every output under ``/opt/ml/processing``; the
pipeline definition (``infra/pipeline_definition.py``) and the entry points share these names. Locally (tests,
the local backend) set ``LTV_PROCESSING_ROOT`` to a scratch directory, or pass the entry
points explicit ``--input``/``--output`` paths.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CONTAINER_ROOT", "container", "local", "message_file"]

CONTAINER_ROOT = "/opt/ml/processing"

# prepare: a dataset's committed aggregates (its manifest's objects) → the cut inputs + shard specs
PREPARE_INPUT = "input/data"
PREPARE_OUTPUT = "output/prepared"
SHARDS_OUTPUT = "output/shards"
# forecast: prepared data + the request + one shard spec per instance → one run part per shard
FORECAST_PREPARED = "input/prepared"
FORECAST_REQUEST = "input/request"
FORECAST_SHARD = "input/shard"
FORECAST_OUTPUT = "output/forecast"
# report: every shard's part → the merged run directory with report.html
REPORT_INPUT = "input/parts"
REPORT_OUTPUT = "output/run"
# publish: the run directory → the store (manifest last), plus a small result file
PUBLISH_INPUT = "input/run"
PUBLISH_OUTPUT = "output/result"


def container(relative: str) -> str:
    """The absolute path in the container, as written in the pipeline definition."""
    return f"{CONTAINER_ROOT}/{relative}"


def local(relative: str) -> Path:
    """The same path on this machine: under ``$LTV_PROCESSING_ROOT`` when set."""
    return Path(os.environ.get("LTV_PROCESSING_ROOT") or CONTAINER_ROOT) / relative


def message_file() -> Path:
    """SageMaker shows this file's content as the job's ``ExitMessage`` when it fails."""
    return Path(os.environ.get("LTV_JOB_MESSAGE_FILE") or "/opt/ml/output/message")
