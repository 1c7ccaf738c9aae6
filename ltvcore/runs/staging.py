"""Where a run is assembled before it is committed, and the sweeping of stages left behind.

A run is staged in the store's own hidden area (``<store>/.staging/`` for a local store; the
system temp folder's ``ltv-staging/`` for S3, whose runs must be assembled on a local disk),
in a folder named by the staging process's id. A process killed mid-run leaves its folder
behind; the next stage sweeps every folder whose process is gone, or that is older than a
day (a process id can be reused), and the debris of killed commits in the store.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ltvcore.runs.store import ArtifactStore

__all__ = ["stage_root", "staging", "sweep"]

STAGING_DIR = ".staging"
MAX_AGE_S = 24 * 3600
COMMIT_DEBRIS_AGE_S = 3600  # a commit copies one run's files: an hour-old one was killed
_STAGE = re.compile(r"(?P<pid>[0-9]+)-[0-9a-f]{12}")
_DEBRIS = re.compile(r"\.(tmp|trash)-[0-9a-f]+-[0-9a-f]+")


def stage_root(store: ArtifactStore | None) -> Path:
    """The hidden folder stages of ``store`` live in (None: no store, e.g. a reproduction)."""
    from ltvcore.runs.store import LocalStore

    if isinstance(store, LocalStore):
        return store.root / STAGING_DIR
    return Path(tempfile.gettempdir()) / "ltv-staging"


@contextlib.contextmanager
def staging(store: ArtifactStore | None, kind: str = "run") -> Iterator[Path]:
    """A fresh, empty stage for one run of ``store``, removed afterwards, whatever happens."""
    root = stage_root(store) / kind
    root.mkdir(parents=True, exist_ok=True)
    sweep(root, store)
    path = root / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep(root: Path, store: ArtifactStore | None = None, *, now: float | None = None) -> list[Path]:
    """Remove stages of processes that are gone (or older than a day); return what went."""
    now = time.time() if now is None else now
    removed = []
    for child in root.iterdir() if root.is_dir() else ():
        match = _STAGE.fullmatch(child.name)
        if not match or not child.is_dir():
            continue
        try:
            age = now - child.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > MAX_AGE_S or not _alive(int(match["pid"])):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    from ltvcore.runs.store import RUNS_DIR, LocalStore

    if isinstance(store, LocalStore) and (store.root / RUNS_DIR).is_dir():
        for child in (store.root / RUNS_DIR).iterdir():
            if _DEBRIS.fullmatch(child.name):
                with contextlib.suppress(FileNotFoundError):
                    if now - child.stat().st_mtime > COMMIT_DEBRIS_AGE_S:
                        shutil.rmtree(child, ignore_errors=True)
                        removed.append(child)
    return removed
