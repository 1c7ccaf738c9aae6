"""Lambda code assets built on this machine, without Docker.

A function's asset is its handler folder (``lambdas/<name>/``), the ``ltvcore`` package source
and, unless turned off, the third-party packages of ``lambdas/requirements.txt`` installed by
pip as Linux x86_64 wheels for the Lambda runtime's Python (``--platform manylinux2014_x86_64
--only-binary=:all:``). That Python is the product's one version, ``.python-version`` at the
repository root (``PYTHON_VERSION``): the Lambda runtime, the processing image's base image, the
synth environment and the tests' virtual environment (``make``) all read it there. The pip result
is cached per requirements content under ``build/lambda-deps/`` so one synth installs once for
every function.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

__all__ = ["BundlingError", "LAMBDA_RUNTIME", "PYTHON_VERSION", "ROOT", "ensure_dependencies", "handler_code",
           "pip_command", "python_version"]

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "lambdas" / "requirements.txt"


def python_version(root: Path = ROOT) -> str:
    """The product's Python, ``major.minor``, as ``.python-version`` names it (pyenv reads it too)."""
    text = (root / ".python-version").read_text().strip()
    if not re.fullmatch(r"3\.\d+", text):
        raise ValueError(f"{root / '.python-version'}: expected a 'major.minor' version such as 3.12, got {text!r}")
    return text


PYTHON_VERSION = python_version()
# A runtime CDK knows by name (its bundling image and deprecation dates come with it).
LAMBDA_RUNTIME: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_" + PYTHON_VERSION.replace(".", "_"))
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def pip_command(target: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    """pip installing Linux wheels of ``requirements`` for the runtime into ``target``."""
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--platform", "manylinux2014_x86_64", "--implementation", "cp",
            "--python-version", PYTHON_VERSION, "--only-binary=:all:", "--upgrade",
            "--target", str(target), "-r", str(requirements)]


class BundlingError(RuntimeError):
    """The Lambda dependencies could not be installed: one line saying why and what to do."""


def ensure_dependencies(requirements: Path = REQUIREMENTS) -> Path:
    """The pip-installed Lambda dependencies, installed once per requirements content.

    Called before synthesis (``app.py``), so a machine without access to the package index
    hears it in one line rather than from inside a jsii callback's traceback.
    """
    digest = hashlib.sha256(requirements.read_bytes() + PYTHON_VERSION.encode()).hexdigest()[:16]
    cache = ROOT / "build" / "lambda-deps" / digest
    if not (cache / ".complete").is_file():
        partial = cache.with_name(cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        done = subprocess.run(pip_command(partial, requirements), capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            lines = [line.strip() for line in (done.stderr or done.stdout).splitlines()
                     if line.strip() and not line.lstrip().startswith("WARNING")]
            cause = lines[-1] if lines else f"pip exited with {done.returncode}"
            raise BundlingError(
                f"cannot install the Lambda dependencies ({requirements.relative_to(ROOT)}, "
                f"Linux wheels for Python {PYTHON_VERSION}) from the package index: {cause}. "
                "Run once where the index is reachable (the result is cached in "
                "build/lambda-deps/), or synthesise without them: "
                "-c ltv:bundleLambdaDependencies=false")
        shutil.rmtree(cache, ignore_errors=True)
        partial.rename(cache)
        (cache / ".complete").touch()
    return cache


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """Copies the handler and ltvcore (and the pip-installed dependencies) into the asset."""

    def __init__(self, handler_dir: Path, *, with_dependencies: bool) -> None:
        self.handler_dir = handler_dir
        self.with_dependencies = with_dependencies

    def try_bundle(self, output_dir: str, *, image, **_options) -> bool:  # noqa: ANN001 - jsii
        output = Path(output_dir)
        if self.with_dependencies:
            shutil.copytree(ensure_dependencies(REQUIREMENTS), output, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".complete", "__pycache__"))
        shutil.copytree(ROOT / "ltvcore", output / "ltvcore", dirs_exist_ok=True, ignore=_IGNORE)
        shutil.copytree(self.handler_dir, output, dirs_exist_ok=True, ignore=_IGNORE)
        return True


def handler_code(name: str, *, with_dependencies: bool) -> lambda_.Code:
    """The code asset of ``lambdas/<name>/handler.py`` (hashed on its bundled output)."""
    handler_dir = ROOT / "lambdas" / name
    if not (handler_dir / "handler.py").is_file():
        raise FileNotFoundError(f"{handler_dir}/handler.py does not exist")
    return lambda_.Code.from_asset(
        str(handler_dir),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=LAMBDA_RUNTIME.bundling_image,
            local=LocalPythonBundling(handler_dir, with_dependencies=with_dependencies),
        ),
    )
