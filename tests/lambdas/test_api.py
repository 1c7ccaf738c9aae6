"""lambdas/api: REST proxy events in, docs/interface.md, HTTP API answers out, one
Step Functions execution per run id (moto), and no pandas in the Lambda."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from ltvcore.request import ForecastRequest
from ltvcore.runs import ids
from ltvcore.runs.manifest import code_version
from tests.infra.support import ROOT, lambda_context, load_handler

BUCKET = "ltv-artifacts"
EVENTS = b"user_id,event_date,revenue\nu1,2026-01-01,0.5\nu1,2026-01-02,0\nu2,2026-01-02,1.25\n"
INSTALLS = b"user_id,install_date,campaign,os\nu1,2026-01-01,spring,ios\nu2,2026-01-02,summer,android\n"
DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
USER = "arn:aws:sts::123456789012:assumed-role/Marketing/ana"


@pytest.fixture
def api(aws_env, monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "2" * 40)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="warehouse/prepared/demo/events.csv", Body=EVENTS)
        s3.put_object(Bucket=BUCKET, Key="warehouse/prepared/demo/installs.csv", Body=INSTALLS)
        states = boto3.client("stepfunctions")
        machine = states.create_state_machine(
            name="forecast", roleArn="arn:aws:iam::123456789012:role/sfn",
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}))
        monkeypatch.setenv("LTV_STORE", f"s3://{BUCKET}")
        monkeypatch.setenv("LTV_DATA_DIR", f"s3://{BUCKET}/warehouse/prepared")
        monkeypatch.setenv("LTV_STATE_MACHINE_ARN", machine["stateMachineArn"])
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "api")
        module = load_handler("api")
        import ltvcore.api

        monkeypatch.setattr(ltvcore.api, "_app", None)  # a cold start with this environment
        yield module, states, machine["stateMachineArn"]


def _event(method: str, path: str, body: object | None = None, *, resource: str | None = None,
           path_parameters: dict | None = None) -> dict:
    """A REST API (v1) proxy event as API Gateway sends it for an IAM-signed request."""
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "resource": resource or path, "path": path, "httpMethod": method,
        "headers": {"Host": DOMAIN, "Content-Type": "application/json", "X-Forwarded-Proto": "https"},
        "multiValueHeaders": {"Host": [DOMAIN], "Content-Type": ["application/json"],
                              "X-Forwarded-Proto": ["https"]},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters, "stageVariables": None,
        "requestContext": {
            "resourceId": "r1", "resourcePath": resource or path, "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1", "domainName": DOMAIN, "apiId": "abc123", "accountId": "123456789012",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "protocol": "HTTP/1.1",
            "identity": {"userArn": USER, "caller": "AROAEXAMPLE:ana", "sourceIp": "10.0.0.1",
                         "accountId": "123456789012", "user": "AROAEXAMPLE:ana"},
        },
        "body": text, "isBase64Encoded": False,
    }


def _call(module, event) -> tuple[int, dict | str]:
    response = module.handler(event, lambda_context("api"))
    body = response["body"]
    try:
        return response["statusCode"], json.loads(body)
    except ValueError:
        return response["statusCode"], body


def _expected_run_id(request: ForecastRequest) -> str:
    digest = ids.combine_digests({"events": hashlib.sha256(EVENTS).hexdigest(),
                                  "installs": hashlib.sha256(INSTALLS).hexdigest()})
    return ids.run_id(request.normalised(), digest, code_version())


def test_submit_names_the_run_and_starts_one_execution(api):
    module, states, machine = api
    body = {"dataset": "demo", "horizons": [30, 365], "notify": ["growth"]}
    status, answer = _call(module, _event("POST", "/forecasts", body))
    assert status == 202
    expected = _expected_run_id(ForecastRequest(dataset="demo", horizons=(30, 365)))
    assert answer == {"run_id": expected, "status_url": f"https://{DOMAIN}/v1/forecasts/{expected}"}
    status, again = _call(module, _event("POST", "/forecasts", body))  # a double click
    assert (status, again["run_id"]) == (202, expected)
    (execution,) = states.list_executions(stateMachineArn=machine)["executions"]
    assert execution["name"] == expected
    started = json.loads(states.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["run_id"] == expected and started["requested_by"] == USER
    assert started["request"]["dataset"] == "demo" and started["notify"] == ["growth"]


@pytest.mark.parametrize(("body", "field"), [
    ({"dataset": "demo", "horizons": [0]}, "horizons"),
    ({"dataset": "demo", "horizons": "30"}, "horizons"),
    ({"dataset": "nope"}, "dataset"),
    ({"dataset": "../../etc"}, "dataset"),
    ({"dataset": "demo", "colour": "red"}, "colour"),
    ({"horizons": [30]}, "dataset"),
])
def test_invalid_requests_answer_400_naming_the_field(api, body, field):
    status, answer = _call(api[0], _event("POST", "/forecasts", body))
    assert status == 400 and field in answer["error"], answer
    assert "Traceback" not in json.dumps(answer)


def test_a_body_that_is_not_json_answers_400(api):
    status, answer = _call(api[0], _event("POST", "/forecasts", "{not json"))
    assert status == 400 and "error" in answer


def test_run_status_list_and_unknown_run(api):
    module = api[0]
    _status, accepted = _call(module, _event("POST", "/forecasts", {"dataset": "demo"}))
    run_id = accepted["run_id"]
    status, run = _call(module, _event("GET", f"/forecasts/{run_id}", resource="/forecasts/{run_id}",
                                       path_parameters={"run_id": run_id}))
    assert status == 200 and run["run_id"] == run_id and run["status"] == "queued"
    status, listing = _call(module, _event("GET", "/forecasts"))
    assert status == 200 and [r["run_id"] for r in listing["runs"]] == [run_id]
    status, missing = _call(module, _event("GET", "/forecasts/0123456789abcdef0123",
                                           resource="/forecasts/{run_id}",
                                           path_parameters={"run_id": "0123456789abcdef0123"}))
    assert status == 404 and "error" in missing


def test_the_form_is_served(api):
    status, page = _call(api[0], _event("GET", "/"))
    assert status == 200 and "<form" in page.lower()


def test_importing_the_api_handler_never_imports_pandas_or_numpy():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('handler', {str(ROOT / 'lambdas/api/handler.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "heavy = sorted(m for m in ('pandas', 'numpy', 'pyarrow', 'scipy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1",
                               "POWERTOOLS_TRACE_DISABLED": "true", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_a_signed_in_person_is_the_requester_not_a_header(api):
    """Browser routes: the authoriser's verified e-mail (requestContext.authorizer) is recorded."""
    module, states, machine = api
    event = _event("POST", "/forecasts", {"dataset": "demo"})
    event["headers"]["X-Ltv-User"] = "mallory"
    event["requestContext"]["identity"] = {"sourceIp": "10.0.0.1", "userArn": None, "caller": None}
    event["requestContext"]["authorizer"] = {"principalId": "okta_ana", "username": "okta_ana",
                                             "email": "ana@example.com", "sub": "5b1c"}
    status, answer = _call(module, event)
    assert status == 202
    (execution,) = states.list_executions(stateMachineArn=machine)["executions"]
    started = json.loads(states.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["requested_by"] == "ana@example.com"


def test_tools_reach_the_same_routes_under_api(api):
    """/api/... (IAM) is the same app: the prefix is taken off, and kept in the links it builds."""
    module, states, machine = api
    event = _event("POST", "/api/forecasts", {"dataset": "demo", "horizons": [30, 365]})
    status, answer = _call(module, event)
    expected = _expected_run_id(ForecastRequest(dataset="demo", horizons=(30, 365)))
    assert status == 202
    assert answer == {"run_id": expected, "status_url": f"https://{DOMAIN}/v1/api/forecasts/{expected}"}
    (execution,) = states.list_executions(stateMachineArn=machine)["executions"]
    started = json.loads(states.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["requested_by"] == USER  # the IAM identity
    status, run = _call(module, _event("GET", f"/api/forecasts/{expected}", resource="/api/forecasts/{run_id}",
                                       path_parameters={"run_id": expected}))
    assert status == 200 and run["run_id"] == expected


def test_only_api_gateway_resources_under_api_lose_the_prefix():
    from infra.api import TOOLS_PREFIX

    module = load_handler("api")
    assert module.TOOLS_PREFIX == f"/{TOOLS_PREFIX}"  # the prefix the stack deploys the twin under
    browser = {"resource": "/forecasts/{run_id}", "path": "/api/forecasts"}
    assert module.route_event(browser) is browser
    tools = module.route_event({"resource": "/api/models", "path": "/api/models"})
    assert (tools["resource"], tools["path"]) == ("/models", "/models")
