"""One Python for the whole product: ``.python-version`` names it, and the Lambda runtime, the
Lambda bundling, the processing image, the Makefile's venv, pyproject's ``requires-python``,
the README and the interpreter running these tests all agree with it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.specifiers import SpecifierSet

from infra import bundling
from tests.infra.support import ROOT, resources, synth

VERSION = (ROOT / ".python-version").read_text().strip()
MAJOR, MINOR = (int(part) for part in VERSION.split("."))


@pytest.fixture(scope="module")
def assembly(tmp_path_factory):
    """The synthesised template and the cloud assembly's asset manifest."""
    out = tmp_path_factory.mktemp("cdk-python")
    _stack, template = synth(out)
    (manifest,) = out.glob("*.assets.json")
    return template.to_json(), json.loads(manifest.read_text())


def test_the_version_is_one_major_minor():
    assert re.fullmatch(r"3\.\d+", VERSION)
    assert bundling.PYTHON_VERSION == bundling.python_version() == VERSION


def test_every_handler_lambda_runs_it(assembly):
    template, _assets = assembly
    handlers = {key: fn["Properties"] for key, fn in resources(template, "AWS::Lambda::Function").items()
                if fn["Properties"].get("Handler") == "handler.handler"}
    assert len(handlers) >= 5
    assert {key: props["Runtime"] for key, props in handlers.items()} == {key: f"python{VERSION}" for key in handlers}
    assert bundling.LAMBDA_RUNTIME.name == f"python{VERSION}"


def test_lambda_dependencies_are_wheels_for_it():
    command = bundling.pip_command(ROOT / "x")
    assert command[command.index("--python-version") + 1] == VERSION


def test_the_processing_image_is_built_on_it(assembly):
    _template, assets = assembly
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "sagemaker_jobs/Dockerfile"
    assert image["source"]["dockerBuildArgs"] == {"PYTHON_VERSION": VERSION}
    dockerfile = (ROOT / "sagemaker_jobs" / "Dockerfile").read_text()
    # the tag comes only from the build argument, which has no default of its own
    assert re.search(r"^ARG PYTHON_VERSION$", dockerfile, re.MULTILINE)
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert base == "public.ecr.aws/docker/library/python:${PYTHON_VERSION}-slim-bookworm"


def test_the_makefile_builds_the_venv_with_it():
    shown = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "show-py: ; @echo $(PY)", "show-py"],
                           cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"python{VERSION}"
    dry = subprocess.run(["make", "-n", "-B", "install"], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert f"python{VERSION} -m venv .venv" in dry.stdout, dry.stdout + dry.stderr


def test_pyproject_requires_it_and_no_tool_pins_another():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    allowed = SpecifierSet(project["project"]["requires-python"])
    assert f"{VERSION}.0" in allowed and f"{VERSION}.99" in allowed
    assert f"{MAJOR}.{MINOR - 1}.99" not in allowed and f"{MAJOR}.{MINOR + 1}.0" not in allowed
    assert "target-version" not in project["tool"]["ruff"]  # ruff reads requires-python
    assert "python_version" not in project["tool"]["mypy"]  # mypy checks for the venv's Python


def test_the_readme_names_no_other_python():
    named = set(re.findall(r"python:?(3\.\d+)|Python (3\.\d+)", (ROOT / "README.md").read_text()))
    versions = {a or b for a, b in named}
    assert versions == {VERSION}


def test_these_tests_run_on_it():
    """Fails in a venv of another Python: ``make test`` rebuilds such a venv."""
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == VERSION, sys.executable
