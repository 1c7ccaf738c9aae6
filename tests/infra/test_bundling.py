"""Lambda assets are bundled locally (no Docker): handler + ltvcore + Linux wheels from pip."""

from __future__ import annotations

import subprocess

import pytest

from infra import bundling
from tests.infra.support import ROOT


def test_bundle_holds_the_handler_and_ltvcore_only(tmp_path):
    bundler = bundling.LocalPythonBundling(ROOT / "lambdas" / "api", with_dependencies=False)
    assert bundler.try_bundle(str(tmp_path), image=None) is True
    assert (tmp_path / "handler.py").is_file()
    assert (tmp_path / "ltvcore" / "request.py").is_file()
    assert (tmp_path / "ltvcore" / "notify" / "delivery.py").is_file()
    assert not list(tmp_path.rglob("__pycache__"))
    assert not (tmp_path / "pydantic").exists()


def test_pip_installs_linux_wheels_for_the_lambda_runtime():
    command = bundling.pip_command(ROOT / "x")
    joined = " ".join(command)
    assert "--platform manylinux2014_x86_64" in joined and "--only-binary=:all:" in joined
    assert f"--python-version {bundling.PYTHON_VERSION}" in joined
    assert bundling.LAMBDA_RUNTIME.name == f"python{bundling.PYTHON_VERSION}"
    assert command[-2:] == ["-r", str(bundling.REQUIREMENTS)]


def test_dependencies_are_installed_once_and_copied_into_each_bundle(tmp_path, monkeypatch):
    calls = []

    def fake_pip(command, **_options):
        calls.append(command)
        target = command[command.index("--target") + 1]
        (ROOT / target).mkdir(parents=True, exist_ok=True)
        (ROOT / target / "slack_sdk").mkdir()
        (ROOT / target / "slack_sdk" / "__init__.py").write_text("")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(bundling, "ROOT", tmp_path)
    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("slack_sdk==3.47.0\n")
    monkeypatch.setattr(bundling, "REQUIREMENTS", requirements)
    (tmp_path / "ltvcore").mkdir()
    (tmp_path / "ltvcore" / "__init__.py").write_text("")
    handler_dir = tmp_path / "lambdas" / "notify"
    handler_dir.mkdir(parents=True)
    (handler_dir / "handler.py").write_text("def handler(event, context): return 1\n")
    for name in ("one", "two"):
        out = tmp_path / name
        out.mkdir()
        bundling.LocalPythonBundling(handler_dir, with_dependencies=True).try_bundle(str(out), image=None)
        assert (out / "slack_sdk" / "__init__.py").is_file() and (out / "handler.py").is_file()
        assert not (out / ".complete").exists()
    assert len(calls) == 1


def test_requirements_are_pinned():
    lines = [line for line in bundling.REQUIREMENTS.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)


def test_an_unreachable_package_index_is_one_line_saying_what_to_do(tmp_path, monkeypatch):
    def offline_pip(command, **_options):
        return subprocess.CompletedProcess(command, 1, "", (
            "WARNING: Retrying (Retry(total=4)) after connection broken\n"
            "ERROR: Could not find a version that satisfies the requirement slack_sdk==3.47.0\n"))

    monkeypatch.setattr(bundling, "ROOT", tmp_path)
    monkeypatch.setattr(bundling.subprocess, "run", offline_pip)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("slack_sdk==3.47.0\n")
    with pytest.raises(bundling.BundlingError) as caught:
        bundling.ensure_dependencies(requirements)
    message = str(caught.value)
    assert "\n" not in message
    assert "package index" in message and "slack_sdk==3.47.0" in message
    assert "ltv:bundleLambdaDependencies=false" in message
    assert not list((tmp_path / "build" / "lambda-deps").glob("*"))  # no half-installed cache


def test_app_py_reports_the_bundling_failure_in_one_line(monkeypatch, capsys):
    import runpy

    import infra.stack

    def failing_build_app(*_args, **_kwargs):
        raise bundling.BundlingError("cannot install the Lambda dependencies: offline")

    monkeypatch.setattr(infra.stack, "build_app", failing_build_app)
    app = runpy.run_path(str(ROOT / "app.py"))
    assert app["main"]() == 2
    assert capsys.readouterr().err == "app.py: cannot install the Lambda dependencies: offline\n"
