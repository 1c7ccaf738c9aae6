"""Lambda handler tests share the deployment tests' setup (tests/infra/conftest.py): the offline
environment, fake AWS credentials (``aws_env``) and a fresh code version per test."""

from __future__ import annotations

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from tests.infra.conftest import aws_env, fresh_code_version  # noqa: F401 - fixtures, registered by import
from tests.lambdas.support import BUCKET


@pytest.fixture
def aws(aws_env, monkeypatch):  # noqa: F811 - the imported fixture, requested by name
    """moto with the artifact bucket; the Powertools secret cache starts empty."""
    monkeypatch.setenv("LTV_GIT_COMMIT", "1" * 40)
    parameters.clear_caches()
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield s3
    parameters.clear_caches()
