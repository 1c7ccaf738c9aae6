"""Processing-job tests share the deployment tests' setup (tests/infra/conftest.py): the offline
environment and a fresh code version per test (they set ``LTV_GIT_COMMIT``)."""

from __future__ import annotations

from tests.infra.conftest import fresh_code_version  # noqa: F401 - an autouse fixture, registered by import
