"""The API against AWS (moto): Step Functions executions named by run id, S3 datasets and
pre-signed artifact links, and the Lambda entry point configured from its environment."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

import ltvcore.api
from ltvcore.api import ForecastService, SettingsError, StepFunctionsLauncher, create_app
from ltvcore.api.config import ApiSettings, build_service
from ltvcore.api.datasets import LocalDatasets, S3Datasets
from ltvcore.api.launchers import Job
from ltvcore.api.service import planned_run_id
from ltvcore.request import ForecastRequest
from ltvcore.runs.store import S3Store

ALICE_ARN = "arn:aws:sts::123456789012:assumed-role/MarketingAnalyst/alice@example.com"
WAREHOUSE = "s3://ltv-warehouse/datasets"
STORE = "s3://ltv-artifacts/ltv"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in ("ltv-warehouse", "ltv-artifacts"):
            s3.create_bucket(Bucket=bucket,
                             CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="ltv-forecast", roleArn="arn:aws:iam::123456789012:role/ltv-forecast-sfn",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass",
                                                                           "End": True}}}),
        )["stateMachineArn"]
        yield {"s3": s3, "sfn": sfn, "arn": arn}


def upload(s3, data_dir: Path, name: str = "demo", *, checksum: bool = False) -> None:
    for path in sorted((data_dir / name).iterdir()):
        extra = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
        s3.put_object(Bucket="ltv-warehouse", Key=f"datasets/{name}/{path.name}",
                      Body=path.read_bytes(), **extra)


def aws_service(aws) -> ForecastService:
    store = S3Store("ltv-artifacts", "ltv")
    return ForecastService(store=store, datasets=S3Datasets(WAREHOUSE),
                           launcher=StepFunctionsLauncher(aws["arn"], store), local=False)


def call(app, rest, parse, method, path, **kwargs):
    return parse(app.resolve(rest(method, path, **kwargs), None))


def test_submissions_start_one_execution_named_by_the_run_id(aws, data_dir, rest, parse) -> None:
    upload(aws["s3"], data_dir)
    app = create_app(aws_service(aws))
    body = {"dataset": "demo", "horizons": [30, 90], "notify": ["growth"]}
    answers = [call(app, rest, parse, "POST", "/forecasts", body=body) for _ in range(3)]
    assert {a[0] for a in answers} == {202}
    run_id = answers[0][1]["run_id"]
    assert {a[1]["run_id"] for a in answers} == {run_id}

    local = LocalDatasets(data_dir)
    expected = planned_run_id(ForecastRequest(horizons=(30, 90), dataset="demo"),
                              local.digest(local.get("demo")))
    assert run_id == expected  # S3 bytes and local bytes name the same run

    executions = aws["sfn"].list_executions(stateMachineArn=aws["arn"])["executions"]
    assert [e["name"] for e in executions] == [run_id]
    described = aws["sfn"].describe_execution(executionArn=executions[0]["executionArn"])
    started = json.loads(described["input"])
    assert started["run_id"] == run_id and started["dataset"] == "demo"
    assert started["requested_by"] == ALICE_ARN and started["notify"] == ["growth"]
    assert started["inputs"] == {role: f"{WAREHOUSE}/demo/{role}.csv"
                                 for role in ("events", "installs", "spend")}
    assert started["request"]["horizons"] == [30, 90] and started["store"] == STORE
    assert started["status_url"].endswith(f"/prod/forecasts/{run_id}")

    status, run, _ = call(app, rest, parse, "GET", f"/forecasts/{run_id}")
    assert status == 200 and run["status"] == "queued" and run["requested_by"] == ALICE_ARN
    status, _, _ = call(app, rest, parse, "POST", "/forecasts",
                        body={"dataset": "demo", "by": ["country"]})
    assert status == 400


def test_a_second_start_of_the_same_run_is_idempotent(aws, data_dir) -> None:
    upload(aws["s3"], data_dir)
    service = aws_service(aws)
    launcher: StepFunctionsLauncher = service.launcher  # type: ignore[assignment]
    dataset = service.datasets.get("demo")
    request = ForecastRequest(dataset="demo")
    job = Job(run_id="0123456789abcdef0123", request=request, dataset="demo",
              inputs=dataset.files, input_digest=service.datasets.digest(dataset),
              requested_by=ALICE_ARN)
    assert not launcher.known(job.run_id)
    launcher.start(job)
    launcher.start(job)  # ExecutionAlreadyExists: success, nothing new
    assert launcher.known(job.run_id)
    executions = aws["sfn"].list_executions(stateMachineArn=aws["arn"])["executions"]
    assert [e["name"] for e in executions] == [job.run_id]


def test_s3_digests_match_local_ones_with_or_without_checksums(aws, data_dir) -> None:
    upload(aws["s3"], data_dir, checksum=True)
    aws["s3"].copy_object(Bucket="ltv-warehouse", Key="datasets/plain/events.csv",
                          CopySource={"Bucket": "ltv-warehouse",
                                      "Key": "datasets/demo/events.csv"})
    s3 = S3Datasets(WAREHOUSE)
    local = LocalDatasets(data_dir)
    assert s3.names() == ["demo", "plain"]
    assert s3.digest(s3.get("demo")) == local.digest(local.get("demo"))
    plain = s3.get("plain")
    assert plain.by_columns == ("campaign",) and set(plain.files) == {"events"}
    events = (data_dir / "demo" / "events.csv").read_bytes()
    head = aws["s3"].head_object(Bucket="ltv-warehouse", Key="datasets/demo/events.csv",
                                 ChecksumMode="ENABLED")
    if head.get("ChecksumSHA256"):  # the checksum path was taken, and agrees with the bytes
        assert base64.b64decode(head["ChecksumSHA256"]).hex() == hashlib.sha256(events).hexdigest()
    assert s3.get("demo").by_columns == ("campaign", "os", "channel", "is_emulator")


def test_artifacts_come_as_short_lived_presigned_urls(aws, data_dir, tmp_path, rest,
                                                      parse) -> None:
    from ltvcore.workflow.run import forecast_to_store
    from ltvcore.workflow.steps import find_inputs

    files = find_inputs(data_dir / "demo")
    outcome = forecast_to_store(ForecastRequest(horizons=(30,), dataset="demo"),
                                events=files["events"], installs=files["installs"],
                                spend=files["spend"], store=str(tmp_path / "local"),
                                requested_by=ALICE_ARN)
    service = aws_service(aws)
    service.store.commit(outcome.run_id, outcome.location)
    app = create_app(service)

    status, run, _ = call(app, rest, parse, "GET", f"/forecasts/{outcome.run_id}")
    assert status == 200 and run["status"] == "succeeded"
    link = run["files"]["forecast.csv"]
    assert link.startswith("https://ltv-artifacts.s3") and "X-Amz-Signature=" in link
    assert "X-Amz-Expires=900" in link and f"ltv/runs/{outcome.run_id}/forecast.csv" in link
    status, _, headers = call(app, rest, parse, "GET",
                              f"/forecasts/{outcome.run_id}/files/report.html")
    assert status == 302 and "X-Amz-Signature=" in headers["location"]
    status, _, _ = call(app, rest, parse, "GET", "/forecasts/0123456789abcdef0123/files/curve.csv")
    assert status == 404
    status, listing, _ = call(app, rest, parse, "GET", "/forecasts")
    assert [r["run_id"] for r in listing["runs"]] == [outcome.run_id]


def test_lambda_handler_is_configured_from_the_environment(aws, data_dir, monkeypatch, rest,
                                                           parse) -> None:
    upload(aws["s3"], data_dir)
    monkeypatch.setenv("LTV_STORE", STORE)
    monkeypatch.setenv("LTV_DATA_DIR", WAREHOUSE)
    monkeypatch.setenv("LTV_STATE_MACHINE_ARN", aws["arn"])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ltv-api")
    monkeypatch.setattr(ltvcore.api, "_app", None)
    status, answer, _ = parse(ltvcore.api.lambda_handler(
        rest("POST", "/forecasts", body={"dataset": "demo"}), None))
    assert status == 202
    executions = aws["sfn"].list_executions(stateMachineArn=aws["arn"])["executions"]
    assert [e["name"] for e in executions] == [answer["run_id"]]
    status, page, _ = parse(ltvcore.api.lambda_handler(
        rest("GET", "/", headers={"Accept": "text/html"}), None))
    assert status == 200 and '"demo"' in page


def test_a_lambda_without_a_state_machine_is_a_cold_start_error(monkeypatch) -> None:
    settings = ApiSettings.from_environ({"AWS_LAMBDA_FUNCTION_NAME": "ltv-api",
                                         "LTV_STORE": STORE})
    with pytest.raises(SettingsError, match="LTV_STATE_MACHINE_ARN"):
        build_service(settings)
    with pytest.raises(SettingsError, match="LTV_LINK_SECONDS"):
        ApiSettings.from_environ({"LTV_LINK_SECONDS": "5"})
