"""lambdas/validate: the workflow's first state against moto S3, with the payload the Validate
state sends (the execution's name and input)."""

from __future__ import annotations

import json

import pytest

from ltvcore.errors import InputError
from ltvcore.runs.store import open_store
from tests.infra.support import lambda_context, load_handler
from tests.lambdas.support import BUCKET, DIGEST, STORE, make_job


@pytest.fixture
def validate(aws, monkeypatch):
    monkeypatch.setenv("LTV_STORE", STORE)
    monkeypatch.setenv("LTV_SCRATCH_RUNS", f"{STORE}/scratch/runs")
    module = load_handler("validate")
    module.settings.cache_clear()
    return module


def test_validate_accepts_the_launchers_input_marks_running_and_writes_the_request(validate, aws):
    job = make_job()
    event = {"execution_name": job.run_id, "input": job.execution_input(STORE)}
    result = validate.handler(event, lambda_context("validate"))
    assert result["run_id"] == job.run_id
    assert result["as_of"] == "latest" and result["input_digest"] == DIGEST
    assert result["dataset"] == "demo" and result["notify"] == ["growth"]
    status = open_store(STORE).status(job.run_id)
    assert status["status"] == "running" and status["detail"]["requested_by"].endswith("user/ana")
    body = aws.get_object(Bucket=BUCKET, Key=f"scratch/runs/{job.run_id}/request.json")["Body"].read()
    assert json.loads(body) == job.request.normalised()


def test_validate_refuses_an_execution_not_named_by_the_run_id(validate):
    job = make_job()
    with pytest.raises(InputError, match="run id") as caught:
        validate.handler({"execution_name": "manual-run", "input": job.execution_input(STORE)},
                         lambda_context())
    assert caught.value.column == "run_id"


def test_validate_accepts_a_new_attempt_and_records_it_on_the_marker(validate):
    job = make_job()
    event = {"execution_name": f"{job.run_id}-3", "input": job.execution_input(STORE)}
    assert validate.handler(event, lambda_context("validate"))["run_id"] == job.run_id
    detail = open_store(STORE).status(job.run_id)["detail"]
    assert (detail["execution"], detail["attempt"]) == (f"{job.run_id}-3", 3)


@pytest.mark.parametrize("suffix", ["-1", "-0", "-02", "-x", "2", "-2-2"])
def test_validate_refuses_names_that_are_no_attempt(validate, suffix):
    job = make_job()
    with pytest.raises(InputError, match="attempt"):
        validate.handler({"execution_name": job.run_id + suffix, "input": job.execution_input(STORE)},
                         lambda_context())


@pytest.mark.parametrize("data", [None, [1, 2], "run"])
def test_validate_refuses_an_input_that_is_not_an_object(validate, data):
    with pytest.raises(InputError, match="JSON object"):
        validate.handler({"execution_name": "x", "input": data}, lambda_context())


@pytest.mark.parametrize(("change", "field"), [
    ({"request": {"dataset": "demo", "horizons": [0]}}, "horizons"),
    ({"request": {"dataset": "../etc", "horizons": [30]}}, "dataset"),
    ({"input_digest": "not-a-digest"}, "input_digest"),
    ({"request": {"dataset": "demo", "colour": "red"}}, "colour"),
])
def test_validate_names_the_bad_field(validate, change, field):
    data = make_job().execution_input(STORE) | change
    with pytest.raises(InputError) as caught:
        validate.handler({"execution_name": "x", "input": data}, lambda_context())
    assert caught.value.column == field
