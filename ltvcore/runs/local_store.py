"""Runs in a local directory: each commit is assembled in a hidden temporary directory next
to its target and renamed into place in one ``os.rename``; an interrupted commit leaves at most
a hidden ``.tmp-*`` directory, which is never listed (and is swept: :mod:`ltvcore.runs.staging`).
The run index (:mod:`ltvcore.runs.index`) is a folder of small files, each written to a hidden
temporary file and renamed into place.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ltvcore.runs.manifest import (
    MANIFEST_NAME,
    STATUS_NAME,
    atomic_write,
    list_tree,
    sha256_file,
)

if TYPE_CHECKING:
    pass
from ltvcore.runs.index import INDEX_DIR
from ltvcore.runs.store_base import (
    _RUN_ID,
    RUNS_DIR,
    ArtifactStore,
    RunNotFoundError,
    _copy_file,
    _load_staging,
    _marker_bytes,
    _safe_name,
    validate_run_id,
)

__all__ = ["LocalStore"]


class LocalStore(ArtifactStore):
    """Runs under ``<root>/runs/<run_id>/`` on a local file system."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def uri(self) -> str:
        return str(self.root)

    @property
    def _runs(self) -> Path:
        return self.root / RUNS_DIR

    @property
    def _index(self) -> Path:
        return self.root / INDEX_DIR

    def _path(self, run_id: str) -> Path:
        return self._runs / validate_run_id(run_id)

    def location(self, run_id: str) -> str:
        return str(self._path(run_id).absolute())

    def exists(self, run_id: str) -> bool:
        return (self._path(run_id) / MANIFEST_NAME).is_file()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise publishing and marking across processes sharing this store."""
        self._runs.mkdir(parents=True, exist_ok=True)
        with open(self._runs / ".lock", "a+b") as handle:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _publish(self, run_id: str, staging_dir: str | os.PathLike[str]) -> str:
        target = self._path(run_id)
        staging, _raw, expected = _load_staging(staging_dir, run_id)
        if self.exists(run_id):
            return self.location(run_id)
        self._runs.mkdir(parents=True, exist_ok=True)
        temporary = self._runs / f".tmp-{run_id}-{uuid.uuid4().hex[:12]}"
        temporary.mkdir()  # not mkdtemp: the published run keeps the usual umask permissions
        trash: Path | None = None
        try:
            for name in sorted(expected):
                _copy_file(staging / name, temporary / name)
            _copy_file(staging / MANIFEST_NAME, temporary / MANIFEST_NAME)
            with self._locked():
                if self.exists(run_id):  # another commit won: runs are never overwritten
                    return self.location(run_id)
                if target.exists():
                    # a folder holding only a status marker or debris of a killed commit
                    marker = target / STATUS_NAME
                    if marker.is_file():
                        shutil.copyfile(marker, temporary / STATUS_NAME)
                    trash = self._runs / f".trash-{run_id}-{uuid.uuid4().hex[:8]}"
                    os.rename(target, trash)
                os.rename(temporary, target)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)
        return self.location(run_id)

    def list_files(self, run_id: str) -> dict[str, int]:
        path = self._path(run_id)
        return list_tree(path) if path.is_dir() else {}

    def _file(self, run_id: str, name: str) -> Path:
        return self._path(run_id) / _safe_name(name)

    def read_bytes(self, run_id: str, name: str) -> bytes:
        return self._file(run_id, name).read_bytes()

    def file_sha256(self, run_id: str, name: str) -> str:
        return sha256_file(self._file(run_id, name))

    def fetch(self, run_id: str, dest_dir: str | os.PathLike[str]) -> Path:
        if not self.exists(run_id):
            raise RunNotFoundError(f"no complete run {run_id} in {self.uri}")
        destination = Path(dest_dir)
        shutil.copytree(self._path(run_id), destination, dirs_exist_ok=True)
        return destination

    def mark(self, run_id: str, status: str, detail: Mapping[str, Any] | None = None) -> bool:
        body = _marker_bytes(run_id, status, detail)
        with self._locked():
            if self.exists(run_id):
                return False
            path = self._path(run_id)
            path.mkdir(parents=True, exist_ok=True)
            atomic_write(path / STATUS_NAME, body)
            self._index_marker(run_id, body)
        return True

    def _run_entries(self) -> dict[str, tuple[set[str], datetime | None]]:
        entries: dict[str, tuple[set[str], datetime | None]] = {}
        if not self._runs.is_dir():
            return entries
        for child in self._runs.iterdir():
            if child.name.startswith(".") or not child.is_dir() or not _RUN_ID.fullmatch(child.name):
                continue
            names = {item.name for item in child.iterdir() if item.is_file()}
            modified = datetime.fromtimestamp(child.stat().st_mtime, tz=timezone.utc)
            entries[child.name] = (names, modified)
        return entries

    def _index_names(self) -> Iterator[str]:
        try:
            with os.scandir(self._index) as found:
                names = sorted(entry.name for entry in found)
        except FileNotFoundError:
            names = []
        return iter(names)

    def _read_index(self, name: str) -> bytes:
        return (self._index / _safe_name(name)).read_bytes()

    def _write_index(self, name: str, body: bytes) -> None:
        self._index.mkdir(parents=True, exist_ok=True)
        atomic_write(self._index / _safe_name(name), body)
