"""A failed run is attempted again as a new execution (``<run id>-<attempt>``), a running one is
not started twice, and a succeeded one is reused and, asked with ``notify``, announced again
through the notify Lambda (moto: Step Functions, S3, Lambda)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from ltvcore.api import ForecastService, StepFunctionsLauncher, create_app
from ltvcore.api.attempts import MAX_ATTEMPTS, attempt_of, execution_name
from ltvcore.api.datasets import S3Datasets
from ltvcore.api.launchers import LauncherBusy
from ltvcore.runs.store import S3Store
from tests.api.test_aws import STORE, WAREHOUSE, call, upload
from tests.infra.support import make_run

RUN = "0123456789abcdef0123"


def test_attempt_names_round_trip():
    assert execution_name(RUN, 1) == RUN and execution_name(RUN, 12) == f"{RUN}-12"
    for attempt in (1, 2, 9, 10, MAX_ATTEMPTS):
        assert attempt_of(execution_name(RUN, attempt), RUN) == attempt
    for name in (f"{RUN}-1", f"{RUN}-0", f"{RUN}-02", f"{RUN}x", f"{RUN}-2-2", "other", RUN[:-1]):
        assert attempt_of(name, RUN) is None, name
    with pytest.raises(ValueError):
        execution_name(RUN, 0)
    assert len(execution_name("f" * 128, MAX_ATTEMPTS)) > 80 > len(execution_name(RUN, MAX_ATTEMPTS))


@pytest.fixture
def aws(monkeypatch):
    """tests/api/test_aws.py's account, with Lambda's simple backend (no Docker)."""
    for name, value in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        s3 = boto3.client("s3")
        for bucket in ("ltv-warehouse", "ltv-artifacts"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="ltv-forecast", roleArn="arn:aws:iam::123456789012:role/ltv-forecast-sfn",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        )["stateMachineArn"]
        yield {"s3": s3, "sfn": sfn, "arn": arn}


@pytest.fixture
def api(aws, data_dir, monkeypatch):
    upload(aws["s3"], data_dir)
    role = boto3.client("iam").create_role(RoleName="notify", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("lambda").create_function(FunctionName="notify", Runtime="python3.12", Role=role,
                                           Handler="handler.handler",
                                           Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    invoked: list[tuple[str, dict, str]] = []

    def invoke(backend, function_name, qualifier, body, headers, response_headers):
        invoked.append((function_name, json.loads(body), headers.get("X-Amz-Invocation-Type", "")))
        return b""

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    store = S3Store("ltv-artifacts", "ltv")
    launcher = StepFunctionsLauncher(aws["arn"], store, notify_function="notify")
    service = ForecastService(store=store, datasets=S3Datasets(WAREHOUSE), launcher=launcher, local=False)
    return create_app(service), launcher, invoked


def _names(aws) -> list[str]:
    return sorted(e["name"] for e in aws["sfn"].list_executions(stateMachineArn=aws["arn"])["executions"])


def test_a_failed_run_starts_again_as_the_next_attempt(aws, api, rest, parse):
    app, launcher, _invoked = api
    body = {"dataset": "demo", "horizons": [30, 90]}
    status, answer, _ = call(app, rest, parse, "POST", "/forecasts", body=body)
    run_id = answer["run_id"]
    assert status == 202 and _names(aws) == [run_id]
    call(app, rest, parse, "POST", "/forecasts", body=body)
    assert _names(aws) == [run_id]  # running: not started twice
    for attempt in (2, 3):
        # the attempt ends without success (moto's executions run until stopped); the notify
        # Lambda marks such a run failed
        aws["sfn"].stop_execution(executionArn=launcher.execution_arn(run_id, attempt - 1))
        launcher.store.mark(run_id, "failed", {"error": "The forecast was stopped before it finished."})
        assert not launcher.known(run_id)
        status, again, _ = call(app, rest, parse, "POST", "/forecasts", body=body)
        assert (status, again["run_id"]) == (202, run_id)
        assert _names(aws) == sorted(execution_name(run_id, n) for n in range(1, attempt + 1))
        assert launcher.known(run_id) and launcher.latest(run_id)[0] == attempt
        status, run, _ = call(app, rest, parse, "GET", f"/forecasts/{run_id}")
        assert run["status"] == "queued"
        detail = launcher.store.status(run_id)["detail"]
        assert (detail["execution"], detail["attempt"]) == (execution_name(run_id, attempt), attempt)
        described = aws["sfn"].describe_execution(executionArn=launcher.execution_arn(run_id, attempt))
        assert json.loads(described["input"])["run_id"] == run_id  # the same run, a new attempt


def test_a_succeeded_run_is_reused_and_announced_again_when_asked(aws, api, rest, parse, tmp_path):
    app, launcher, invoked = api
    body = {"dataset": "demo", "horizons": [30, 90]}
    status, answer, _ = call(app, rest, parse, "POST", "/forecasts", body=body)
    run_id = answer["run_id"]
    make_run(tmp_path, STORE, run_id)  # what Publish commits; the execution then succeeds
    aws["sfn"].stop_execution(executionArn=launcher.execution_arn(run_id))
    status, again, _ = call(app, rest, parse, "POST", "/forecasts", body=body)
    assert (status, again["run_id"]) == (202, run_id)
    assert _names(aws) == [run_id] and invoked == []  # no notify asked: nothing sent
    status, _again, _ = call(app, rest, parse, "POST", "/forecasts", body={**body, "notify": ["growth"]})
    assert status == 202 and _names(aws) == [run_id]
    ((function, payload, kind),) = invoked
    assert (function, kind) == ("notify", "Event")  # asynchronous: the API answers at once
    assert payload["status"] == "succeeded" and payload["execution_name"] == run_id
    assert payload["execution_arn"] == launcher.execution_arn(run_id)
    assert payload["state"]["input"]["notify"] == ["growth"]
    assert payload["state"]["input"]["run_id"] == run_id


def test_a_run_attempted_too_often_is_left_to_a_person(aws, data_dir, monkeypatch):
    store = S3Store("ltv-artifacts", "ltv")
    launcher = StepFunctionsLauncher(aws["arn"], store)
    monkeypatch.setattr(launcher, "latest", lambda run_id: (MAX_ATTEMPTS, {"status": "FAILED"}))
    from ltvcore.api.launchers import Job
    from ltvcore.request import ForecastRequest

    job = Job(run_id=RUN, request=ForecastRequest(dataset="demo"), dataset="demo", inputs={},
              input_digest="ab" * 32, requested_by="ana")
    with pytest.raises(LauncherBusy, match="attempted"):
        launcher.start(job)
    assert _names(aws) == []


def test_locally_a_succeeded_run_is_announced_again_by_the_launchers_notifier(data_dir, tmp_path, rest, parse):
    from ltvcore.api import LocalLauncher
    from ltvcore.api.datasets import LocalDatasets
    from ltvcore.api.service import planned_run_id
    from ltvcore.request import ForecastRequest
    from ltvcore.runs.store import open_store

    store = open_store(str(tmp_path / "runs"))
    told: list[tuple[str, tuple[str, ...], str | None]] = []
    launcher = LocalLauncher(store, notifier=lambda job, _store, error: told.append(
        (job.run_id, job.notify, error)), compute=lambda *a, **k: pytest.fail("nothing to compute"))
    datasets = LocalDatasets(data_dir)
    run_id = planned_run_id(ForecastRequest(dataset="demo", horizons=(30, 90)),
                            datasets.digest(datasets.get("demo")))
    make_run(tmp_path, store.uri, run_id)
    app = create_app(ForecastService(store=store, datasets=datasets, launcher=launcher))
    try:
        body = {"dataset": "demo", "horizons": [30, 90]}
        assert call(app, rest, parse, "POST", "/forecasts", body=body)[1]["run_id"] == run_id
        assert told == []
        call(app, rest, parse, "POST", "/forecasts", body={**body, "notify": ["growth"]})
        assert told == [(run_id, ("growth",), None)]
    finally:
        launcher.shutdown()
