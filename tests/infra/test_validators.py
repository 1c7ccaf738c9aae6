"""Validators on the synthesised template, so a broken one cannot land (cfn-lint and cdk-nag
have tests/infra/test_cfn_lint.py and tests/infra/test_nag.py):

- both state machines through ``asl-validator`` (the npm package pinned in package.json);
- every Task state's arguments against botocore's input shape of the API it calls;
- the SageMaker pipeline's processing steps against ``CreateProcessingJob``'s input shape.

``asl-validator`` comes from ``node_modules`` (``scripts/ensure-node-deps.sh``, which runs
``npm ci`` when package-lock.json changed); the first test here runs that script when the
binary is missing, and fails, rather than skips, when it cannot be installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.infra import shapes
from tests.infra.support import ROOT, flatten, resources, state_machine_definitions

ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
@pytest.fixture(scope="module")
def definitions(default_template) -> dict[str, dict]:
    found = state_machine_definitions(default_template)
    assert len(found) == 2  # the forecast workflow and the warehouse refresh
    return found


@pytest.fixture(scope="module")
def asl_validator() -> str:
    if not ASL_VALIDATOR.exists():
        done = subprocess.run(["sh", str(ROOT / "scripts" / "ensure-node-deps.sh")], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm ci failed:\n{done.stderr[-2000:]}"
    assert ASL_VALIDATOR.exists(), "node_modules/.bin/asl-validator is missing: run npm ci"
    return str(ASL_VALIDATOR)


# --------------------------------------------------------------------------- asl-validator


def test_asl_validator_is_pinned_exactly():
    package = json.loads((ROOT / "package.json").read_text())
    assert package["devDependencies"]["asl-validator"] == "4.0.0"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/asl-validator"]["version"] == "4.0.0"


def test_both_state_machines_pass_asl_validator(definitions, asl_validator, tmp_path):
    assert shutil.which("node"), "Node.js is needed (the CDK synth needs it too)"
    for key, definition in definitions.items():
        path = tmp_path / f"{key}.asl.json"
        path.write_text(json.dumps(definition, indent=2))
        done = subprocess.run([asl_validator, "--json-path", str(path)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"{key}:\n{done.stdout}\n{done.stderr}"


def test_asl_validator_rejects_a_broken_definition(asl_validator, tmp_path):
    """The check can fail: a state whose Next names nothing."""
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Gone"}}}))
    done = subprocess.run([asl_validator, "--json-path", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0


# --------------------------------------------------------------------------- botocore shapes


def test_every_task_argument_matches_the_api_it_calls(definitions):
    checked = set()
    for key, definition in definitions.items():
        for name, state in shapes.task_states(definition):
            service, operation, arguments, free = shapes.task_arguments(state)
            problems = shapes.model(service).check(operation, arguments, free=free)
            assert problems == [], f"{key} {name}: {problems}"
            checked.add((service, operation, shapes.task_operation(state["Resource"])[2]))
    assert {("sagemaker", "StartPipelineExecution", False), ("sagemaker", "StopPipelineExecution", False),
            ("sagemaker", "CreateProcessingJob", True), ("s3", "GetObject", False),
            ("lambda", "Invoke", True), ("athena", "StartQueryExecution", True)} <= checked


def _pipelines(doc: dict) -> dict[str, dict]:
    found = {}
    for pipeline in resources(doc, "AWS::SageMaker::Pipeline").values():
        body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
        text = body if isinstance(body, str) else flatten(body)
        found[pipeline["Properties"]["PipelineName"]] = json.loads(text)
    return found


def test_every_processing_step_matches_create_processing_job(default_template):
    steps = [(name, step) for name, definition in _pipelines(default_template).items()
             for step in definition["Steps"]]
    assert steps
    sagemaker = shapes.model("sagemaker")
    for name, step in steps:
        assert step["Type"] == "Processing", (name, step["Name"])
        # the pipeline names each job itself
        problems = sagemaker.check("CreateProcessingJob", step["Arguments"], optional=("ProcessingJobName",))
        assert problems == [], f"{name} {step['Name']}: {problems}"


# --------------------------------------------------------------------------- the validator itself


@pytest.mark.parametrize(("arguments", "problem"), [
    ({"RoleArn": "arn:aws:iam::1:role/r", "AppSpecification": {"ImageUri": "i"}}, "'ProcessingResources'"),
    ({"RoleArn": "r", "AppSpecification": {"ImageUri": "i", "Entrypoint": ["x"]},
      "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                "VolumeSizeInGB": 10}}}, "'Entrypoint' is not a member"),
    ({"RoleArn": "r", "AppSpecification": {"ImageUri": "i"},
      "ProcessingResources": {"ClusterConfig": {"InstanceCount": "1", "InstanceType": "ml.m5.xlarge",
                                                "VolumeSizeInGB": 10}}}, "an integer"),
    ({"RoleArn": "r", "AppSpecification": {"ImageUri": "i"},
      "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.huge",
                                                "VolumeSizeInGB": 10}}}, "not one of"),
    ({"RoleArn": "r", "AppSpecification": {"ImageUri": "i"},
      "ProcessingResources.$": "States.Format('{}', $.x)"}, "run-time string"),
    ({"RoleArn": "r", "AppSpecification": {"ImageUri": "i", "ContainerArguments": "--x"},
      "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                "VolumeSizeInGB": 10}}}, "a list"),
])
def test_the_shape_validator_finds(arguments, problem):
    problems = shapes.model("sagemaker").check("CreateProcessingJob", arguments,
                                               optional=("ProcessingJobName",))
    assert any(problem in p for p in problems), problems


def test_the_shape_validator_accepts_run_time_values():
    arguments = {"ProcessingJobName.$": "States.Format('x-{}', States.UUID())", "RoleArn": "${Role.Arn}",
                 "AppSpecification": {"ImageUri": {"Get": "Parameters.Image"},
                                      "ContainerArguments": ["--day", {"Std:Join": {"On": "", "Values": []}}]},
                 "ProcessingResources.$": "$.resources",
                 "Environment": {"A": "b", "RUN.$": "$.run_id"}}
    assert shapes.model("sagemaker").check("CreateProcessingJob", arguments) == []
