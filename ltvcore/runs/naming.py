"""Naming a run before any work: the request, the input files' digests and the code version.

Pure standard library (no pandas), so the API Lambda names runs exactly as the CLI does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ltvcore.errors import InputError
from ltvcore.runs.ids import combine_digests, run_id
from ltvcore.runs.manifest import code_version, sha256_file
from ltvcore.warehouse.layout import fresh_state, is_warehouse

if TYPE_CHECKING:
    from ltvcore.request import ForecastRequest

__all__ = ["cached_code_version", "input_files_digest", "planned_run_id"]

CODE_VERSION_SECONDS = 5.0
_cache: tuple[float, str] | None = None
_lock = threading.Lock()


def cached_code_version() -> str:
    """The code version, re-read at most every few seconds.

    Outside a container it asks git (two subprocesses, several ms: most of an API
    submission's cost). A worker derives the id again when it runs, so a tree that changed
    meanwhile fails that run with the reason instead of mislabelling it.
    """
    global _cache
    with _lock:
        now = time.monotonic()
        if _cache is None or now - _cache[0] > CODE_VERSION_SECONDS:
            _cache = (now, code_version())
        return _cache[1]


def input_files_digest(files: Mapping[str, str | Path | None]) -> str:
    """Digest of the input files by role (events, installs, spend): what the run id rests on.

    Hashing the files as given (not the parsed tables) lets the HTTP API name a run before any
    data is parsed, with the same id the CLI derives.
    """
    given = {role: Path(path) for role, path in files.items() if path is not None}
    if "events" in given and is_warehouse(given["events"]):
        # A warehouse's state names its aggregates' content: nothing is hashed here.
        if len(given) > 1:
            raise InputError("a warehouse brings its own installs and spend: ingest them into it "
                             "(ltv warehouse ingest) instead of passing --installs / --spend",
                             file=given["events"].name)
        return fresh_state(given["events"])["digest"]
    for role, path in given.items():
        if not path.is_file():
            raise InputError("file not found" if not path.exists() else "not a file",
                             file=str(path))
    return combine_digests({role: sha256_file(path) for role, path in given.items()})


def planned_run_id(request: ForecastRequest, input_digest: str) -> str:
    """The id a run of ``request`` on data with ``input_digest`` gets, before any work."""
    return run_id(request.normalised(), input_digest, cached_code_version())
