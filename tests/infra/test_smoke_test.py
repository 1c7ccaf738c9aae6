"""scripts/smoke-test offline: moto holds the warehouse bucket and the refresh state machine
(executed by moto's interpreter), botocore's Stubber answers DescribeStacks with the stack's
outputs (moto's CloudFormation needs packages this project does not install), and a local HTTP
server stands in for the tools API, checking that every request is SigV4-signed for execute-api."""

from __future__ import annotations

import argparse
import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ltvcore.request import FORECAST_COLUMNS
from tests.infra.support import ACCOUNT, ROOT

BUCKET = "ltvforecast-artifacts"
RUN_ID = "0123456789abcdef0123"


def _script():
    spec = importlib.util.spec_from_file_location("smoke_test", ROOT / "scripts" / "smoke_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ToolsApi:
    """``POST /v1/api/forecasts`` and ``GET /v1/api/forecasts/{id}`` (running, then ``final``)."""

    def __init__(self, final: str = "succeeded") -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.polls = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append(("POST", self.path, dict(self.headers), body))
                self._answer(202, json.dumps({"run_id": RUN_ID, "status_url": "…"}).encode())

            def do_GET(self) -> None:  # noqa: N802
                api.requests.append(("GET", self.path, dict(self.headers), None))
                if self.path == "/files/forecast.csv":
                    header = ",".join(("campaign", *FORECAST_COLUMNS))
                    row = ",".join(["spring", "30", "120", *["1.0"] * (len(FORECAST_COLUMNS) - 2)])
                    return self._answer(200, f"{header}\n{row}\n".encode(), "text/csv")
                api.polls += 1
                status = "running" if api.polls < 2 else final
                run = {"run_id": RUN_ID, "status": status, "error": "Athena said no"}
                if status == "succeeded":
                    run["files"] = {name: f"{api.url('files/' + name)}" for name in ("forecast.csv", "report.html")}
                self._answer(200, json.dumps(run).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{path}"


class Session:
    """A boto3 session whose CloudFormation client answers DescribeStacks for ``stacks``."""

    def __init__(self, stacks: dict[str, dict[str, str]]) -> None:
        self.real = boto3.Session()
        self.region_name = self.real.region_name
        self.cloudformation = self.real.client("cloudformation")
        stubber = Stubber(self.cloudformation)
        for name, outputs in stacks.items():
            stubber.add_response("describe_stacks", {"Stacks": [{
                "StackName": name, "CreationTime": "2026-01-12T08:00:00Z", "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]},
                {"StackName": name})
        stubber.activate()

    def client(self, name: str) -> Any:
        return self.cloudformation if name == "cloudformation" else self.real.client(name)

    def get_credentials(self) -> Any:
        return self.real.get_credentials()


@pytest.fixture
def deployed(aws_env):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        refresh = boto3.client("stepfunctions").create_state_machine(
            name="warehouse-refresh", roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        )["stateMachineArn"]
        api = ToolsApi()
        outputs = {"ToolsApiUrl": api.url("v1/api/"), "WarehouseUri": f"s3://{BUCKET}/warehouse",
                   "WarehouseRefreshStateMachineArn": refresh, "StoreUri": f"s3://{BUCKET}"}
        yield api, outputs
        api.server.shutdown()


def _args() -> argparse.Namespace:
    return _script().parse_args(["--poll-seconds", "0.05", "--timeout-minutes", "2"])


def test_the_smoke_test_lands_data_refreshes_submits_waits_and_reads_the_forecast(deployed):
    api, outputs = deployed
    said: list[str] = []
    run_id = _script().run(_args(), session=Session({"LtvForecast": outputs}), say=said.append)
    assert run_id == RUN_ID and [line[:3] for line in said] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert all(k.startswith("warehouse/ltv-smoke-test/") for k in keys)
    folders = {k.split("/")[2] for k in keys}
    assert folders == {"events", "installs", "spend"}  # no user_day/, no state.json: the refresh's
    assert any(k.endswith(".parquet") and "/events/event_date=" in k for k in keys)
    (post, *gets) = api.requests
    assert post[:2] == ("POST", "/v1/api/forecasts") and post[3] == {"dataset": "ltv-smoke-test",
                                                                     "horizons": [30, 90]}
    for method, path, headers, _body in [post, *gets]:
        if path.startswith("/v1/api/"):  # the API's routes are signed; the pre-signed link is not
            assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
            assert "/us-east-1/execute-api/aws4_request" in headers["Authorization"], (method, path)
    assert [g[1] for g in gets] == [f"/v1/api/forecasts/{RUN_ID}"] * 2 + ["/files/forecast.csv"]


def test_a_failed_run_fails_the_smoke_test_with_its_error(deployed, capsys, monkeypatch):
    script = _script()
    failing = ToolsApi(final="failed")
    session = Session({"LtvForecast": {**deployed[1], "ToolsApiUrl": failing.url("v1/api/")}})
    monkeypatch.setattr(script.boto3, "Session", lambda: session)
    try:
        assert script.main(["--skip-data", "--poll-seconds", "0.05"]) == 1
    finally:
        failing.server.shutdown()
    assert "failed: Athena said no" in capsys.readouterr().err


def test_a_stack_without_the_outputs_is_named(deployed):
    script = _script()
    session = Session({"Other": {"StoreUri": "s3://x"}})
    with pytest.raises(script.SmokeTestFailed, match="no output ToolsApiUrl"):
        script.stack_outputs(session.client("cloudformation"), "Other")
