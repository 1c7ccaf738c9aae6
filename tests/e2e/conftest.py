"""End-to-end tests share the deployment tests' setup (tests/infra/conftest.py): the repository
root on sys.path, an offline environment and a fresh code version per test."""

from __future__ import annotations

from tests.infra.conftest import fresh_code_version  # noqa: F401 - an autouse fixture, registered by import
