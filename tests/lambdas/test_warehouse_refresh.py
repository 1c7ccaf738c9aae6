"""The warehouse refresh Lambda: plan and commit through the handler, on moto S3, and the guard
that keeps two refreshes from clearing and unloading the same dates."""

from __future__ import annotations

import json
import os

import boto3
import pyarrow as pa
import pytest
from pydantic import ValidationError

from tests.infra.fake_athena import parquet, run_unload
from tests.infra.support import ACCOUNT, REGION, lambda_context, load_handler
from tests.lambdas.support import BUCKET

MACHINE = "LtvForecast-warehouse-refresh"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}"


@pytest.fixture
def refresh(aws, monkeypatch):
    monkeypatch.setenv("LTV_WAREHOUSE", f"s3://{BUCKET}/warehouse")
    monkeypatch.setenv("LTV_GLUE_DATABASE", "ltvforecast_warehouse")
    monkeypatch.setenv("LTV_REFRESH_STATE_MACHINE_ARN", MACHINE_ARN)
    module = load_handler("warehouse_refresh")
    for cached in (module.settings, module.warehouse, module.s3, module.states):
        cached.cache_clear()
    boto3.client("stepfunctions").create_state_machine(
        name=MACHINE, definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn")
    yield module
    for cached in (module.settings, module.warehouse, module.s3, module.states):
        cached.cache_clear()


def _start() -> str:
    return boto3.client("stepfunctions").start_execution(stateMachineArn=MACHINE_ARN)["executionArn"]


def _land(s3, date: str) -> None:
    table = pa.table({"user_id": ["u1", "u2"], "revenue": [1.0, 0.0]})
    s3.put_object(Bucket=BUCKET, Key=f"warehouse/demo/events/event_date={date}/part-0.parquet", Body=parquet(table))


def test_plan_then_commit_through_the_handler(refresh, aws):
    _land(aws, "2026-01-01")
    execution = _start()
    planned = refresh.handler({"action": "plan", "execution": execution}, lambda_context("refresh"))
    assert planned["datasets"] == ["demo"] and planned["dates"] == 1 and planned["deferred"] == 0
    (item,) = planned["items"]
    assert item["sql"].startswith("UNLOAD (SELECT user_id, revenue, events FROM")
    assert "ltvforecast_warehouse.events" in item["sql"]
    scanned = run_unload(aws, item["sql"], database="ltvforecast_warehouse", bucket=BUCKET)
    result = {k: v for k, v in item.items() if k != "sql"} | {"query_id": "q-1", "bytes": scanned}
    done = refresh.handler({"action": "commit", "datasets": planned["datasets"], "results": [result],
                            "removed": planned["removed"]}, lambda_context("refresh"))
    assert done["committed"] == 1 and done["failed_count"] == 0 and done["written"] == ["demo"]
    state = json.loads(aws.get_object(Bucket=BUCKET, Key="warehouse/demo/state.json")["Body"].read())
    assert list(state["dates"]) == ["2026-01-01"]
    again = refresh.handler({"action": "plan", "execution": execution}, lambda_context("refresh"))
    assert again["items"] == [] and again["dates"] == 0


def test_plan_refuses_to_run_beside_another_refresh(refresh, aws):
    _land(aws, "2026-01-01")
    other, mine = _start(), _start()
    with pytest.raises(refresh.RefreshBusy, match="another warehouse refresh is running"):
        refresh.handler({"action": "plan", "execution": mine}, lambda_context("refresh"))
    assert other
    # nothing was touched: no aggregate folder cleared, no state written
    assert not aws.list_objects_v2(Bucket=BUCKET, Prefix="warehouse/demo/user_day/").get("Contents")


def test_unknown_actions_and_fields_are_refused(refresh):
    with pytest.raises(ValidationError):
        refresh.handler({"action": "drop"}, lambda_context("refresh"))
    with pytest.raises(ValidationError):
        refresh.handler({"action": "plan", "sql": "DROP TABLE events"}, lambda_context("refresh"))


def test_the_lambda_needs_neither_duckdb_nor_pandas():
    """Its bundle holds ltvcore's source and lambdas/requirements.txt only (no DuckDB, pandas,
    numpy or pyarrow): the handler and the statements it builds must import without them."""
    import subprocess
    import sys

    from tests.infra.support import ROOT

    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('duckdb', 'pandas', 'numpy', 'pyarrow'):\n"
        "            raise ImportError(f'{name} is not in the Lambda bundle')\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.path.insert(0, 'lambdas/warehouse_refresh')\n"
        "import handler\n"
        "from ltvcore.warehouse import athena\n"
        "print(athena.unload_statement(athena.Warehouse('b'), 'demo', '2026-01-01')[:6])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": REGION})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "UNLOAD"
