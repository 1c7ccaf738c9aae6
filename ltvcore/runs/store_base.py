"""The artifact store's contract and the rules both backends share.

One key layout for both backends::

    <root>/runs/<run_id>/manifest.json
    <root>/runs/<run_id>/forecast.csv, curve.csv, params.json, report.html, inputs/...
    <root>/runs/<run_id>/_status.json      (queued/running/failed marker, mutable)
    <root>/index/runs/<inverted-ms>.<run_id>.<status>.json   (one per commit or marker, immutable)

A run is *visible* (``exists``, status ``succeeded``) only once its ``manifest.json``
is present, and the manifest is always written last. Runs are never overwritten (see
:mod:`ltvcore.runs.local_store` and :mod:`ltvcore.runs.s3_store` for how each backend makes
a commit atomic). ``list_runs`` reads the index, not every run: see :mod:`ltvcore.runs.index`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from ltvcore.files import CHUNK_BYTES
from ltvcore.runs import index
from ltvcore.runs.manifest import (
    MANIFEST_NAME,
    STATUS_NAME,
    FileDigest,
    ManifestError,
    compare_files,
    list_tree,
    manifest_files,
    read_manifest,
    sha256_file,
    utc_now,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")

__all__ = [
    "DEFAULT_STORE",
    "MARKER_KEYS",
    "MARKER_STATUSES",
    "RUNS_DIR",
    "STORE_ENV",
    "ArtifactStore",
    "InvalidRunError",
    "RunNotFoundError",
    "StoreError",
    "parse_s3_run_uri",
    "parse_s3_uri",
    "request_summary",
    "validate_run_id",
]

DEFAULT_STORE = "ltv-runs"
STORE_ENV = "LTV_STORE"
RUNS_DIR = "runs"
MARKER_STATUSES = frozenset({"queued", "running", "failed"})
#: What a status marker's detail carries about the request (the API writes it on submit, the
#: workflow's Lambdas when a run starts or fails).
MARKER_KEYS = ("request", "requested_by", "notify", "status_url", "submitted")
"""Statuses a marker may record; ``succeeded`` is never a marker: it *is* the manifest."""

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_SUMMARY_FIRST = ("dataset", "events", "by", "as_of", "horizons", "model", "retention", "observe_days", "confidence")
_SUMMARY_SKIP = frozenset({"requested_by", "notify"})


class StoreError(Exception):
    """The artifact store cannot do what was asked."""


class RunNotFoundError(StoreError, LookupError):
    """No complete run with this id."""


class InvalidRunError(StoreError, ValueError):
    """A staging directory does not hold a consistent run (manifest missing or not matching)."""


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a safe single path component, else raise ``ValueError``."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"invalid run id {run_id!r}: expected letters, digits, '-' or '_'")
    return run_id


def _safe_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"invalid file name in a run: {name!r}")
    return name


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into ``(bucket, prefix)`` (prefix without slashes at its ends)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI without a bucket: {uri!r}")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"{bucket[:70]!r} is not an S3 bucket name (3–63 characters: lower-case "
                         "letters, digits, '.', '-')")
    return bucket, prefix.strip("/")


def parse_s3_run_uri(uri: str) -> tuple[str, str, str]:
    """Split ``s3://bucket/prefix/runs/<run_id>`` into ``(bucket, prefix, run_id)``."""
    bucket, key = parse_s3_uri(uri)
    parts = key.split("/") if key else []
    if len(parts) < 2 or parts[-2] != RUNS_DIR:
        raise ValueError(f"expected s3://bucket[/prefix]/{RUNS_DIR}/<run_id>, got {uri!r}")
    return bucket, "/".join(parts[:-2]), validate_run_id(parts[-1])


def request_summary(request: Mapping[str, Any] | None) -> str:
    """One line ``key=value ...`` describing a request (lists comma-joined)."""
    if not isinstance(request, Mapping):
        return ""
    keys = [key for key in _SUMMARY_FIRST if key in request]
    keys += sorted(key for key in request if key not in keys and key not in _SUMMARY_SKIP)
    parts = []
    for key in keys:
        value = request[key]
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _parse_time(text: Any) -> datetime:
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return datetime.min.replace(tzinfo=timezone.utc)


def _iso(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _load_staging(staging_dir: str | os.PathLike[str], run_id: str) -> tuple[Path, bytes, dict[str, FileDigest]]:
    """Check a staging directory against its own manifest before anything is published."""
    staging = Path(staging_dir)
    if not staging.is_dir():
        raise InvalidRunError(f"staging directory {staging} does not exist")
    try:
        raw = (staging / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        raise InvalidRunError(f"{staging} has no {MANIFEST_NAME}: write it (last) before committing") from None
    try:
        manifest = read_manifest(raw)
    except ManifestError as error:
        raise InvalidRunError(f"{staging}: {error}") from None
    if manifest.get("run_id") != run_id:
        raise InvalidRunError(f"{staging}: manifest is for run {manifest.get('run_id')!r}, not {run_id!r}")
    expected = manifest_files(manifest)
    for name in expected:
        _safe_name(name)
    present = {name: size for name, size in list_tree(staging).items() if name not in (MANIFEST_NAME, STATUS_NAME)}
    comparison = compare_files(expected, present, lambda name: sha256_file(staging / name))
    if not comparison.ok:
        raise InvalidRunError(f"{staging} does not match its manifest: {comparison.describe()}")
    return staging, raw, expected


class ArtifactStore(ABC):
    """Where runs live. Obtain one with :func:`open_store`."""

    # -- backend primitives -------------------------------------------------
    @property
    @abstractmethod
    def uri(self) -> str:
        """The store's root as given to :func:`open_store`."""

    @abstractmethod
    def location(self, run_id: str) -> str:
        """Where the run's files are (a directory path or ``s3://.../runs/<run_id>``)."""

    @abstractmethod
    def exists(self, run_id: str) -> bool:
        """True when the run is complete (its manifest is present)."""

    def commit(self, run_id: str, staging_dir: str | os.PathLike[str]) -> str:
        """Publish a finished run from ``staging_dir``; return its location.

        ``staging_dir`` must hold ``manifest.json`` (for ``run_id``) and exactly the
        files it lists, with matching digests, else :class:`InvalidRunError`. If the
        run already exists it is left untouched and its location returned. Once the
        manifest is stored, the run's index entry is written from it.
        """
        location = self._publish(run_id, staging_dir)
        self._index_committed(run_id)
        return location

    @abstractmethod
    def _publish(self, run_id: str, staging_dir: str | os.PathLike[str]) -> str:
        """:meth:`commit` without the index: the backend's atomic publication."""

    @abstractmethod
    def list_files(self, run_id: str) -> dict[str, int]:
        """Every file stored for the run (relative name to size), complete or not."""

    @abstractmethod
    def read_bytes(self, run_id: str, name: str) -> bytes:
        """Content of one file of the run; ``FileNotFoundError`` when absent."""

    @abstractmethod
    def file_sha256(self, run_id: str, name: str) -> str:
        """sha256 of one stored file, computed from its stored bytes."""

    @abstractmethod
    def fetch(self, run_id: str, dest_dir: str | os.PathLike[str]) -> Path:
        """Copy every file of a complete run into ``dest_dir``; return ``dest_dir``."""

    @abstractmethod
    def mark(self, run_id: str, status: str, detail: Mapping[str, Any] | None = None) -> bool:
        """Record a ``queued``/``running``/``failed`` marker (``_status.json``).

        Returns False (and writes nothing) when the run is already complete.
        """

    @abstractmethod
    def _run_entries(self) -> dict[str, tuple[set[str], datetime | None]]:
        """Run id to (top-level file names, last modification) for every run folder."""

    @abstractmethod
    def _index_names(self) -> Iterator[str]:
        """Names of the objects in ``index/runs/``, in ascending order (nothing when absent)."""

    @abstractmethod
    def _read_index(self, name: str) -> bytes:
        """Content of one index object; ``FileNotFoundError`` when absent."""

    @abstractmethod
    def _write_index(self, name: str, body: bytes) -> None:
        """Write one index object whole (readers see all of it or nothing)."""

    def _storage_errors(self) -> tuple[type[Exception], ...]:
        """What a failed read or write of the backend raises (not a programming error)."""
        return (OSError, StoreError)

    def _map(self, function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """``[function(item) for item in items]``; a backend may run them side by side."""
        return [function(item) for item in items]

    # -- shared behaviour ---------------------------------------------------
    def _read_optional(self, run_id: str, name: str) -> bytes | None:
        try:
            return self.read_bytes(run_id, name)
        except FileNotFoundError:
            return None

    def read_manifest(self, run_id: str) -> dict[str, Any]:
        """The parsed manifest of a complete run (:class:`RunNotFoundError` if none)."""
        raw = self._read_optional(validate_run_id(run_id), MANIFEST_NAME)
        if raw is None:
            raise RunNotFoundError(f"no complete run {run_id} in {self.uri}")
        return read_manifest(raw)

    def _describe(self, run_id: str, names: set[str] | None, modified: datetime | None) -> dict[str, Any] | None:
        entry: dict[str, Any] = {"run_id": run_id, "location": self.location(run_id)}
        raw = self._read_optional(run_id, MANIFEST_NAME) if names is None or MANIFEST_NAME in names else None
        if raw is not None:
            try:
                manifest = read_manifest(raw)
            except ManifestError as error:
                return entry | {"status": "invalid", "created": _iso(modified), "request": None,
                                "summary": "", "detail": {"error": str(error)}}
            kept = (self._marker_detail(run_id)
                    if names is None or STATUS_NAME in names else {})
            if kept.get("submitted"):  # the marker a commit keeps: when it was asked for
                entry["submitted"] = kept["submitted"]
            return entry | {
                "status": "succeeded",
                "created": manifest.get("created"),
                "request": manifest.get("request"),
                "summary": request_summary(manifest.get("request")),
                "as_of": manifest.get("as_of"),
                "requested_by": manifest.get("requested_by"),
                "files": sorted(manifest_files(manifest)),
            }
        raw = self._read_optional(run_id, STATUS_NAME) if names is None or STATUS_NAME in names else None
        described = self._marker_row(run_id, raw, modified) if raw is not None else None
        if described is not None:
            return described
        if names is None and not self.list_files(run_id):
            return None
        return entry | {"status": "incomplete", "created": _iso(modified), "request": None, "summary": ""}

    def _marker_row(self, run_id: str, raw: bytes, modified: datetime | None) -> dict[str, Any] | None:
        """The row of a run described by its marker ``raw``; None when it is not a marker."""
        try:
            marker = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(marker, dict) or marker.get("status") not in MARKER_STATUSES:
            return None
        entry: dict[str, Any] = {"run_id": run_id, "location": self.location(run_id)}
        detail: dict[str, Any] = marker["detail"] if isinstance(marker.get("detail"), dict) else {}
        if detail.get("submitted"):
            entry["submitted"] = detail["submitted"]
        return entry | {
            "status": marker["status"],
            "created": marker.get("updated") or _iso(modified),
            "request": detail.get("request"),
            "summary": request_summary(detail.get("request")),
            "detail": detail,
        }

    def _marker_detail(self, run_id: str) -> dict[str, Any]:
        """The ``detail`` of the run's status marker, ``{}`` when absent or unreadable."""
        raw = self._read_optional(run_id, STATUS_NAME)
        try:
            marker = json.loads(raw) if raw is not None else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        detail = marker.get("detail") if isinstance(marker, dict) else None
        return detail if isinstance(detail, dict) else {}

    def status(self, run_id: str) -> dict[str, Any] | None:
        """Status of one run, or None when nothing at all is stored under its id.

        Returns
        -------
        dict or None
            ``run_id``, ``status`` (``succeeded`` when the manifest is present;
            else the marker's ``queued``/``running``/``failed``; else
            ``incomplete``; ``invalid`` for an unreadable manifest), ``created``,
            ``request``, ``summary``, ``location``; ``files`` when succeeded and
            ``detail`` from the marker; ``submitted`` when the marker (kept by a commit)
            says when the run was asked for.
        """
        return self._describe(validate_run_id(run_id), None, None)

    def list_runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The ``limit`` most recently changed runs (default: all) with their status, newest first.

        Rows are those of :meth:`status`. Only a run with its manifest is ``succeeded``;
        folders without one show their marker's status or ``incomplete``. Hidden temporary
        directories of commits in progress are not runs and are not listed. Read from the
        index (:mod:`ltvcore.runs.index`): the cost depends on ``limit``, not on how many runs
        the store holds. A store without an index is indexed first (:meth:`rebuild_index`).
        """
        if limit is not None and limit <= 0:
            return []
        keys, complete = index.pick(self._index_names(), limit)
        if not complete:
            try:
                self.rebuild_index()
            except self._storage_errors() as error:  # e.g. a reader that may not write
                log.warning("cannot index the runs of %s (%s): listing them by scanning every run",
                            self.uri, error)
                return self._scan_runs(limit)
            keys, _complete = index.pick(self._index_names(), limit)
        rows = [row for row in self._map(self._index_row, keys) if row is not None]
        rows.sort(key=_newest_first, reverse=True)
        return rows if limit is None else rows[:limit]

    def rebuild_index(self) -> int:
        """Index every run found by scanning ``runs/``, then mark the index complete.

        For a store written before the index (run lazily by the first :meth:`list_runs`, or
        by ``ltv runs reindex``); costs one scan of every run, like listing did before the
        index. Idempotent: an entry's name follows from its row, so the entries written by
        the runs' events are written again, not doubled. Returns the number of runs indexed.
        """
        def index_run(item: tuple[str, tuple[set[str], datetime | None]]) -> bool:
            run_id, (names, modified) = item
            row = self._describe(run_id, names, modified)
            if row is None:
                return False
            self._write_index(index.entry_name(row), index.entry_bytes(row))
            return True

        count = sum(self._map(index_run, self._run_entries().items()))
        self._write_index(index.COMPLETE, index.complete_bytes(count))
        return count

    def _index_row(self, key: index.IndexKey) -> dict[str, Any] | None:
        """The listing row of one chosen entry: the entry when the run agrees, else the run's own."""
        committed = self.exists(key.run_id)
        if committed == (key.status == "succeeded") and key.status in _INDEXED:
            try:
                raw: bytes | None = self._read_index(key.name)
            except FileNotFoundError:
                raw = None
            row = index.read_entry(raw, key) if raw is not None else None
            if row is not None:
                return ({"run_id": key.run_id, "location": self.location(key.run_id)} | row
                        | {"summary": request_summary(row.get("request"))})
        return self._describe(key.run_id, None, None)

    def _record(self, row: Mapping[str, Any] | None) -> None:
        """Add one run event to the index; a failure is logged (``rebuild_index`` repairs it)."""
        if row is None:
            return
        try:
            self._write_index(index.entry_name(row), index.entry_bytes(row))
        except self._storage_errors() as error:
            log.warning("run %s: could not write its index entry (%s); it may be missing from run "
                        "listings until `ltv runs reindex --store %s`", row["run_id"], error, self.uri)

    def _index_committed(self, run_id: str) -> None:
        """Index a committed run from what the store now holds (its manifest and kept marker)."""
        try:
            row = self._describe(run_id, None, None)
        except self._storage_errors() as error:
            log.warning("run %s: could not read it back to index it (%s)", run_id, error)
            return
        if row is not None and row["status"] == "succeeded":
            self._record(row)

    def _index_marker(self, run_id: str, body: bytes) -> None:
        """Index the marker ``body`` just written for ``run_id``."""
        self._record(self._marker_row(run_id, body, None))

    def _scan_runs(self, limit: int | None) -> list[dict[str, Any]]:
        """Listing without the index: describe every run folder (the cost grows with the store)."""
        entries = []
        for run_id, (names, modified) in self._run_entries().items():
            entry = self._describe(run_id, names, modified)
            if entry is not None:
                entries.append(entry)
        entries.sort(key=_newest_first, reverse=True)
        return entries if limit is None else entries[:limit]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


_INDEXED = MARKER_STATUSES | {"succeeded"}
"""Statuses an index entry is trusted for (others come from rebuilds: described from the run)."""


def _newest_first(row: Mapping[str, Any]) -> tuple[datetime, str]:
    return _parse_time(row.get("created")), row["run_id"]


def _copy_file(source: Path, destination: Path) -> None:
    """Copy one file and flush it to disk (so a published run survives a crash)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(destination, "wb") as writer:
        shutil.copyfileobj(reader, writer, CHUNK_BYTES)
        writer.flush()
        os.fsync(writer.fileno())


def _marker_bytes(run_id: str, status: str, detail: Mapping[str, Any] | None) -> bytes:
    validate_run_id(run_id)
    if status not in MARKER_STATUSES:
        raise ValueError(f"status must be one of {sorted(MARKER_STATUSES)}, got {status!r}")
    marker = {"run_id": run_id, "status": status, "updated": utc_now(), "detail": dict(detail or {})}
    return (json.dumps(marker, indent=2, default=str) + "\n").encode("utf-8")


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _is_not_found(error: Exception) -> bool:
    return _error_code(error) in ("404", "NoSuchKey", "NotFound")


