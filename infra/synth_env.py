"""The synth environment: a virtual environment of its own in which the CDK app runs the
``sagemaker`` SDK to write the pipeline definition (``infra/pipeline_definition.py``).

The SDK cannot live in the project's environment: ``sagemaker-core`` pins ``rich<15`` (ltvcore
pins 15.0.0), and ``sagemaker-mlops`` brings ``sagemaker-train`` → mlflow, Flask, SQLAlchemy,
scikit-learn, pyiceberg, s3fs … (about 130 packages, 1 GB). So it gets a venv here, built on
first use with the product's one Python (``.python-version``: the running interpreter when it
is that version, else ``python3.X`` from the PATH) from the fully pinned
``infra/synth-requirements.txt`` (wheels only, so pip has nothing to resolve or compile), under
``build/synth-env/<digest>/``, and reused by every synth after that. ``make test`` builds it
before the tests (``python -m infra.synth_env``); ``npx cdk synth`` builds it on its first run.
The processing image and the Lambda bundles never see it.

Documents are cached by content (``build/synth-env/documents/``): the same settings, SDK pins
and generator give the same document without starting the SDK again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.bundling import PYTHON_VERSION, ROOT, BundlingError

__all__ = ["REQUIREMENTS", "SynthEnvironmentError", "ensure_python", "run_module"]

REQUIREMENTS = ROOT / "infra" / "synth-requirements.txt"
BASE = ROOT / "build" / "synth-env"
# The files whose content a generated document depends on, besides the settings and the pins.
GENERATOR_SOURCES = [ROOT / "infra" / "pipeline_definition.py", ROOT / "sagemaker_jobs" / "definition.py",
                     ROOT / "sagemaker_jobs" / "paths.py"]
PIP_SECONDS = 1800


class SynthEnvironmentError(BundlingError):
    """The synth environment could not be built or the SDK failed: one line saying why."""


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def environment_dir(requirements: Path = REQUIREMENTS) -> Path:
    """Where the venv for ``requirements`` and this Python lives."""
    return BASE / _digest(requirements.read_bytes(), PYTHON_VERSION.encode())


def base_python() -> str:
    """The product's Python to build the venv with."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == PYTHON_VERSION:
        return sys.executable
    found = shutil.which(f"python{PYTHON_VERSION}")  # pyenv's shim reads .python-version (cwd=ROOT)
    if not found:
        raise SynthEnvironmentError(f"cannot build the synth environment: no python{PYTHON_VERSION} on the PATH "
                                    f"(the product's Python, .python-version; this is {sys.executable})")
    return found


def ensure_python(requirements: Path = REQUIREMENTS) -> Path:
    """The synth environment's interpreter, building the environment first if needed."""
    home = environment_dir(requirements)
    python = home / "bin" / "python"
    if (home / ".complete").is_file():
        return python
    BASE.mkdir(parents=True, exist_ok=True)
    with open(BASE / f"{home.name}.lock", "w") as lock:  # one builder at a time per environment
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / ".complete").is_file():
            return python
        shutil.rmtree(home, ignore_errors=True)
        steps = [[base_python(), "-m", "venv", str(home)],
                 [str(python), "-c", "import sys; v = '%d.%d' % sys.version_info[:2]; "
                  f"sys.exit(None if v == '{PYTHON_VERSION}' else 'its Python is ' + v + ', not {PYTHON_VERSION}')"],
                 [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "--no-input", "--only-binary=:all:", "-r", str(requirements)]]
        for command in steps:
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_SECONDS, cwd=ROOT)
            except subprocess.TimeoutExpired:
                shutil.rmtree(home, ignore_errors=True)
                raise SynthEnvironmentError(_failure(requirements, f"{command[2]} took over {PIP_SECONDS} s"))
            if done.returncode != 0:
                shutil.rmtree(home, ignore_errors=True)
                raise SynthEnvironmentError(_failure(requirements, _last_line(done)))
        (home / ".complete").write_text(PYTHON_VERSION + "\n")
    return python


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (done.stderr or done.stdout).splitlines()
             if line.strip() and not line.lstrip().startswith("WARNING")]
    return lines[-1] if lines else f"exited with {done.returncode}"


def _failure(requirements: Path, cause: str) -> str:
    return (f"cannot build the synth environment (the sagemaker SDK, {requirements.relative_to(ROOT)}, "
            f"for Python {PYTHON_VERSION}): {cause}. Run once where the "
            "package index is reachable (the result is kept in build/synth-env/)")


def run_module(module: str, payload: dict[str, Any], requirements: Path = REQUIREMENTS) -> dict:
    """``python -m module`` in the synth environment, ``payload`` as JSON on stdin; its stdout as
    JSON. Cached by the payload, the pins and the generator's sources."""
    text = json.dumps(payload, sort_keys=True)
    key = _digest(text.encode(), module.encode(), requirements.read_bytes(), PYTHON_VERSION.encode(),
                  *(path.read_bytes() for path in GENERATOR_SOURCES))
    cached = BASE / "documents" / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    python = ensure_python(requirements)
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("PYTHON", "VIRTUAL_ENV", "AWS_PROFILE"))}
    environment.update({"PYTHONPATH": str(ROOT), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
                        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"})
    done = subprocess.run([str(python), "-m", module], input=text, capture_output=True, text=True,
                          cwd=ROOT, env=environment, timeout=300)
    if done.returncode != 0:
        raise SynthEnvironmentError(f"{module} failed in the synth environment: {_last_line(done)}")
    document = json.loads(done.stdout)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(document, sort_keys=True))
    partial.replace(cached)
    return document


if __name__ == "__main__":  # make test: build it before the tests, so no test pays for it
    print(ensure_python())
