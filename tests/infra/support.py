"""Helpers of the deployment tests (imported as ``tests.infra.support``)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
TEST_CONTEXT = {"ltv:bundleLambdaDependencies": False}  # offline: no pip while bundling


def synth(tmp_dir: Path, context: dict[str, Any] | None = None, *, checks: bool = False):
    """Synthesise the app into ``tmp_dir``; return ``(stack, template dict)``."""
    from aws_cdk.assertions import Template

    from infra.stack import build_app

    app, stack = build_app({**TEST_CONTEXT, **(context or {})}, outdir=str(tmp_dir), checks=checks)
    app.synth()
    return stack, Template.from_stack(stack)


def load_handler(name: str) -> ModuleType:
    """``lambdas/<name>/handler.py`` as its own module (each Lambda has a top-level ``handler``)."""
    module_name = f"ltv_lambda_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "lambdas" / name / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def lambda_context(name: str = "test") -> SimpleNamespace:
    return SimpleNamespace(function_name=name, memory_limit_in_mb=512, aws_request_id="req-1",
                           invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
                           get_remaining_time_in_millis=lambda: 30000)


def pipeline_status_event(status: str, token: str, arn: str, display_name: str = "run") -> dict:
    """What EventBridge delivers when a pipeline execution changes status (the shape of the
    SageMaker documentation's example; the callback parses the whole envelope)."""
    pipeline_arn = arn.split("/execution/")[0]
    return {
        "version": "0", "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker", "account": ACCOUNT, "time": "2026-01-12T08:10:00Z",
        "region": REGION, "resources": [pipeline_arn, arn],
        "detail": {
            "pipelineExecutionDisplayName": display_name, "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
            "executionStartTime": "2026-01-12T08:00:00Z", "executionEndTime": "2026-01-12T08:10:00Z",
            "pipelineExecutionDescription": token, "pipelineArn": pipeline_arn, "pipelineExecutionArn": arn,
        },
    }


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == kind}


def flatten(value: Any, resolve: Any = None) -> str:
    """A CloudFormation string value as text. Intrinsics become ``${Logical}`` /
    ``${Logical.Attribute}`` (JSON-safe), or whatever ``resolve(intrinsic)`` returns."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten(part, resolve) for part in parts)
    if resolve is not None:
        return resolve(value)
    if isinstance(value, dict) and "Ref" in value:
        return "${%s}" % value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${%s}" % ".".join(value["Fn::GetAtt"])
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
    raise ValueError(f"cannot render {value!r}")


class SlackStub:
    """A local HTTP server standing in for Slack's incoming webhooks (127.0.0.1 only)."""

    def __init__(self, status: int = 200) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.status = status
        self.posts: list[tuple[str, dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.posts.append((self.path, json.loads(body or b"{}")))
                payload = b"ok" if stub.status == 200 else b"server_error"
                self.send_response(stub.status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, channel: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/{channel}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_run(tmp_dir: Path, store_uri: str, run_id: str, *, request: dict | None = None) -> None:
    """Commit a small complete run (manifest last) to the store at ``store_uri``."""
    from ltvcore.runs.manifest import build_manifest, write_manifest
    from ltvcore.runs.store import open_store

    staging = tmp_dir / f"staging-{run_id}"
    staging.mkdir(parents=True)
    (staging / "forecast.csv").write_text(
        "campaign,horizon_days,users,ltv,ltv_lower,ltv_upper,model\n"
        "spring,30,120,1.50,1.10,1.90,curve\nspring,365,120,4.20,3.00,5.40,curve\n"
        "summer,30,80,0.90,0.60,1.20,curve\nsummer,365,80,2.10,1.40,2.80,curve\n")
    (staging / "report.html").write_text("<!doctype html><title>report</title>")
    manifest = build_manifest(staging, run_id=run_id,
                              request=request or {"dataset": "demo", "by": ["campaign"]},
                              as_of="2026-01-11", requested_by="ana", seed=0, timings={},
                              extra={"warnings": ["few installs in summer"]})
    write_manifest(staging, manifest)
    open_store(store_uri).commit(run_id, staging)


_PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
           "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "LtvForecast"}


def deployed_value(value: dict[str, Any]) -> str:
    """A CloudFormation intrinsic as the kind of value it becomes when deployed."""
    if "Ref" in value:
        return _PSEUDO.get(value["Ref"], value["Ref"].lower())
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        if attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"
        return f"{logical}-{attribute}".lower()
    if "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        for name, real in _PSEUDO.items():
            text = text.replace("${%s}" % name, real)
        return text
    raise AssertionError(f"unexpected intrinsic {value}")


def state_machine_definitions(template: dict) -> dict[str, dict]:
    """Every state machine's ASL, its references as the values they become when deployed."""
    return {key: json.loads(flatten(m["Properties"]["DefinitionString"], deployed_value))
            for key, m in resources(template, "AWS::StepFunctions::StateMachine").items()}
