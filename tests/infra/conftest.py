"""Deployment tests: the repository root on sys.path (infra/, sagemaker_jobs/ are not installed
packages), an offline environment, and fake AWS credentials for moto."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon here

from tests.infra.support import REGION  # noqa: E402


@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials and a region, so boto3 never looks for real ones."""
    for key, value in {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def fresh_code_version(monkeypatch):
    """Tests set LTV_GIT_COMMIT; ltvcore caches the code version for a few seconds."""
    from ltvcore.runs import naming

    monkeypatch.setattr(naming, "_cache", None)


@pytest.fixture(scope="session")
def default_template(tmp_path_factory):
    """The stack with cdk.json's settings, synthesised once for the modules that only read it."""
    from tests.infra.support import synth

    _stack, template = synth(tmp_path_factory.mktemp("cdk-default"))
    return template.to_json()
