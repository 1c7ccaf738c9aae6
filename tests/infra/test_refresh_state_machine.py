"""The synthesised warehouse refresh, executed by moto's Step Functions interpreter.

What runs for real: the ASL as synthesised (Task, Map with its ItemProcessor, Retry, Catch,
Choice and the loop back to Plan, ResultSelector, ResultPath), the refresh Lambda's handler
(in process, with the environment the template gives it) and S3.

What is substituted, because moto cannot run it: ``Unload``
(``athena:startQueryExecution.sync``) becomes a ``lambda:invoke`` task whose payload is the
original state's parameters; the stand-in checks the workgroup and database it is given and
runs the statement on DuckDB in Athena's place (tests/infra/fake_athena.py), answering with
the fields of GetQueryExecution that the state's ResultSelector reads. Its Retry, Catch,
ResultPath and TimeoutSeconds are kept.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import boto3
import pyarrow as pa
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from ltvcore.warehouse import athena
from tests.infra.fake_athena import parquet, run_unload
from tests.infra.support import ACCOUNT, REGION, flatten, lambda_context, load_handler, resources, synth

BUCKET = "ltv-artifacts"
MOTO = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory):
    _stack, template = synth(tmp_path_factory.mktemp("cdk"))
    doc = template.to_json()
    functions = resources(doc, "AWS::Lambda::Function")

    def resolve(value: Any) -> str:
        if "Ref" in value:
            pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
            if value["Ref"] in pseudo:
                return pseudo[value["Ref"]]
            assert doc["Resources"][value["Ref"]]["Type"] == "AWS::S3::Bucket", value
            return BUCKET
        if "Fn::GetAtt" in value:
            logical = value["Fn::GetAtt"][0]
            assert logical in functions, value
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"
        raise AssertionError(f"unexpected intrinsic {value}")

    (machine,) = [m for k, m in resources(doc, "AWS::StepFunctions::StateMachine").items() if "Warehouse" in k]
    definition = json.loads(flatten(machine["Properties"]["DefinitionString"], resolve))
    (logical,) = [k for k in functions if "RefreshLambda" in k]
    variables = functions[logical]["Properties"]["Environment"]["Variables"]
    environment = {k: flatten(v, resolve) for k, v in variables.items()}
    return definition, logical, environment, machine["Properties"]["StateMachineName"]


def _substituted(definition: dict) -> dict:
    definition = json.loads(json.dumps(definition))
    unload = definition["States"]["UnloadEachDate"]["ItemProcessor"]["States"]["Unload"]
    unload["Resource"] = "arn:aws:states:::lambda:invoke"
    unload["Parameters"] = {"FunctionName": "FakeAthena", "Payload": unload["Parameters"]}
    unload["ResultSelector"] = {key: value.replace("$.", "$.Payload.", 1) for key, value in
                                unload["ResultSelector"].items()}
    return definition


class World:
    def __init__(self, synthesised, monkeypatch) -> None:
        self.definition, self.logical, self.environment, self.name = synthesised
        self.queries: list[dict] = []
        self.failing: set[str] = set()
        self._lock = threading.Lock()
        self.s3 = boto3.client("s3")
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        role = boto3.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        for name in (self.logical, "FakeAthena"):
            boto3.client("lambda").create_function(
                FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
        self.handler = load_handler("warehouse_refresh")
        for cached in (self.handler.settings, self.handler.warehouse, self.handler.s3, self.handler.states):
            cached.cache_clear()
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", self._invoke_factory())

    def _invoke_factory(self):
        world = self

        def invoke(backend, function_name, qualifier, body, headers, response_headers):
            event = json.loads(body or b"{}")
            try:
                result = world._call(function_name.rsplit(":", 1)[-1], event)
            except Exception as error:  # reported the way Lambda reports an unhandled error
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
            return json.dumps(result).encode()

        return invoke

    def _call(self, name: str, event: dict) -> Any:
        if name == "FakeAthena":
            assert event["WorkGroup"] == "LtvForecast-warehouse"
            assert event["QueryExecutionContext"] == {"Database": "ltvforecast_warehouse"}
            self.queries.append(event)
            if any(f"event_date={date}/" in event["QueryString"] for date in self.failing):
                raise RuntimeError("HIVE_CANNOT_OPEN_SPLIT: not a Parquet file")
            scanned = run_unload(self.s3, event["QueryString"], database="ltvforecast_warehouse", bucket=BUCKET)
            return {"QueryExecution": {"QueryExecutionId": f"q-{len(self.queries)}",
                                       "Status": {"State": "SUCCEEDED"},
                                       "Statistics": {"DataScannedInBytes": scanned}}}
        assert name == self.logical, name
        with self._lock:
            saved = {k: os.environ.get(k) for k in self.environment}
            os.environ.update(self.environment)
            try:
                return self.handler.handler(event, lambda_context(name))
            finally:
                for key, value in saved.items():
                    os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)

    def land(self, dataset: str, date: str, users: list[str]) -> None:
        table = pa.table({"user_id": users, "revenue": [1.5] * len(users)})
        self.s3.put_object(Bucket=BUCKET, Key=f"warehouse/{dataset}/events/event_date={date}/part-0.parquet",
                           Body=parquet(table))

    def run(self, timeout: float = 60) -> dict:
        states = boto3.client("stepfunctions")
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.name}"
        try:
            states.describe_state_machine(stateMachineArn=arn)
        except states.exceptions.StateMachineDoesNotExist:
            states.create_state_machine(name=self.name, definition=json.dumps(_substituted(self.definition)),
                                        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn")
        execution = states.start_execution(stateMachineArn=arn, name=f"refresh-{time.time_ns()}",
                                           input="{}")["executionArn"]
        deadline = time.monotonic() + timeout
        while True:
            described = states.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            assert time.monotonic() < deadline, "the refresh did not finish"
            time.sleep(0.1)

    def state(self, dataset: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=f"warehouse/{dataset}/state.json")["Body"].read())


@pytest.fixture
def world(synthesised, aws_env, monkeypatch):
    with mock_aws(config=MOTO):
        yield World(synthesised, monkeypatch)


def test_new_dates_of_every_dataset_are_aggregated_and_committed(world):
    world.land("demo", "2026-01-01", ["u1", "u2"])
    world.land("demo", "2026-01-02", ["u1"])
    world.land("other", "2026-01-02", ["v1"])
    done = world.run()
    assert done["status"] == "SUCCEEDED", done
    assert len(world.queries) == 3
    assert sorted(world.state("demo")["dates"]) == ["2026-01-01", "2026-01-02"]
    assert list(world.state("other")["dates"]) == ["2026-01-02"]
    output = json.loads(done["output"])
    assert output["commit"]["committed"] == 3 and output["commit"]["failed_count"] == 0
    # the next day: one new date, one query; the rest is untouched
    world.land("demo", "2026-01-03", ["u2"])
    assert world.run()["status"] == "SUCCEEDED"
    assert len(world.queries) == 4 and "event_date=2026-01-03/" in world.queries[-1]["QueryString"]


def test_a_failed_query_fails_the_refresh_after_committing_the_rest(world):
    world.land("demo", "2026-01-01", ["u1"])
    world.land("demo", "2026-01-02", ["u1"])
    world.failing.add("2026-01-02")
    done = world.run()
    assert done["status"] == "FAILED" and done["error"] == "WarehouseRefreshFailed"
    dates = world.state("demo")["dates"]
    assert not dates["2026-01-01"].get("failed") and "HIVE_CANNOT_OPEN_SPLIT" in dates["2026-01-02"]["failed"]
    world.failing.clear()  # the data owner fixed the file: the next refresh plans that date again
    assert world.run()["status"] == "SUCCEEDED"
    assert not world.state("demo")["dates"]["2026-01-02"].get("failed")


def test_a_backlog_longer_than_one_plan_is_worked_off_in_one_execution(world, monkeypatch):
    monkeypatch.setattr(athena, "MAX_DATES", 2)
    for day in ("01", "02", "03", "04", "05"):
        world.land("demo", f"2026-01-{day}", ["u1"])
    done = world.run()
    assert done["status"] == "SUCCEEDED", done
    assert len(world.queries) == 5 and len(world.state("demo")["dates"]) == 5
    output = json.loads(done["output"])
    assert output["plan"]["deferred"] == 0 and output["round"] == {"count": 3}


def test_a_backlog_beyond_the_rounds_of_one_execution_waits_for_the_next(world, monkeypatch, synthesised):
    monkeypatch.setattr(athena, "MAX_DATES", 1)
    for day in range(1, 24):  # 23 dates, one per round: 20 rounds now, the rest next time
        world.land("demo", f"2026-01-{day:02d}", ["u1"])
    done = world.run(timeout=120)
    assert done["status"] == "SUCCEEDED", done
    assert len(world.state("demo")["dates"]) == 20 and json.loads(done["output"])["plan"]["deferred"] == 3
    assert world.run(timeout=60)["status"] == "SUCCEEDED"
    assert len(world.state("demo")["dates"]) == 23
