"""Artifact store: immutable runs in a local directory or under an S3 prefix.

One key layout for both backends::

    <root>/runs/<run_id>/manifest.json
    <root>/runs/<run_id>/forecast.csv, curve.csv, params.json, report.html, inputs/...
    <root>/runs/<run_id>/_status.json      (queued/running/failed marker, mutable)

A run is *visible* (``exists``, status ``succeeded``) only once its ``manifest.json``
is present, and the manifest is always written last. Runs are never overwritten:

- locally, a run is assembled in a hidden temporary directory next to its target and
  renamed into place in one ``os.rename``; an interrupted commit leaves at most a
  hidden ``.tmp-*`` directory, which is never listed;
- on S3, data files are uploaded first and the manifest last with
  ``IfNoneMatch="*"``: if another commit got there first, S3 refuses (412) and the
  existing run stays as it was.
"""
from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import re
import shutil
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ltvcore.runs.manifest import (
    MANIFEST_NAME,
    STATUS_NAME,
    FileDigest,
    ManifestError,
    atomic_write,
    compare_files,
    list_tree,
    manifest_files,
    read_manifest,
    sha256_file,
    utc_now,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_STORE",
    "MARKER_KEYS",
    "MARKER_STATUSES",
    "STORE_ENV",
    "ArtifactStore",
    "InvalidRunError",
    "LocalStore",
    "RunNotFoundError",
    "S3Store",
    "StoreError",
    "fetch_run",
    "open_store",
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
_CHUNK = 1 << 20
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


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into ``(bucket, prefix)`` (prefix without slashes at its ends)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI without a bucket: {uri!r}")
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

    @abstractmethod
    def commit(self, run_id: str, staging_dir: str | os.PathLike[str]) -> str:
        """Publish a finished run from ``staging_dir``; return its location.

        ``staging_dir`` must hold ``manifest.json`` (for ``run_id``) and exactly the
        files it lists, with matching digests, else :class:`InvalidRunError`. If the
        run already exists it is left untouched and its location returned.
        """

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
        if raw is not None:
            try:
                marker = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                marker = {}
            if isinstance(marker, dict) and marker.get("status") in MARKER_STATUSES:
                detail = marker.get("detail") if isinstance(marker.get("detail"), dict) else {}
                return entry | {
                    "status": marker["status"],
                    "created": marker.get("updated") or _iso(modified),
                    "request": detail.get("request"),
                    "summary": request_summary(detail.get("request")),
                    "detail": detail,
                }
        if names is None and not self.list_files(run_id):
            return None
        return entry | {"status": "incomplete", "created": _iso(modified), "request": None, "summary": ""}

    def status(self, run_id: str) -> dict[str, Any] | None:
        """Status of one run, or None when nothing at all is stored under its id.

        Returns
        -------
        dict or None
            ``run_id``, ``status`` (``succeeded`` when the manifest is present;
            else the marker's ``queued``/``running``/``failed``; else
            ``incomplete``; ``invalid`` for an unreadable manifest), ``created``,
            ``request``, ``summary``, ``location``; ``files`` when succeeded and
            ``detail`` from the marker.
        """
        return self._describe(validate_run_id(run_id), None, None)

    def list_runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Every run folder with its status, newest first (see :meth:`status`).

        Only a run with its manifest is ``succeeded``; folders without one show their
        marker's status or ``incomplete``. Hidden temporary directories of commits in
        progress are not runs and are not listed.
        """
        entries = []
        for run_id, (names, modified) in self._run_entries().items():
            entry = self._describe(run_id, names, modified)
            if entry is not None:
                entries.append(entry)
        entries.sort(key=lambda item: (_parse_time(item.get("created")), item["run_id"]), reverse=True)
        return entries if limit is None else entries[:limit]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


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

    def commit(self, run_id: str, staging_dir: str | os.PathLike[str]) -> str:
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


def _copy_file(source: Path, destination: Path) -> None:
    """Copy one file and flush it to disk (so a published run survives a crash)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(destination, "wb") as writer:
        shutil.copyfileobj(reader, writer, _CHUNK)
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


class S3Store(ArtifactStore):
    """Runs under ``s3://<bucket>/<prefix>/runs/<run_id>/``.

    Parameters
    ----------
    bucket, prefix : str
        Root of the store. Server-side encryption is left to the bucket's default.
    client : botocore S3 client, optional
        Injected client; by default ``boto3.client("s3")`` is created on first use.
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _runs_prefix(self) -> str:
        return f"{self.prefix}/{RUNS_DIR}/" if self.prefix else f"{RUNS_DIR}/"

    def _key(self, run_id: str, name: str = "") -> str:
        return f"{self._runs_prefix()}{validate_run_id(run_id)}/{_safe_name(name) if name else ''}"

    def location(self, run_id: str) -> str:
        return f"s3://{self.bucket}/{self._key(run_id)}".rstrip("/")

    def exists(self, run_id: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(run_id, MANIFEST_NAME))
        except ClientError as error:
            if _is_not_found(error):
                return False
            raise
        return True

    def _put_if_absent(self, key: str, **arguments: Any) -> bool:
        """Conditional put; False when the key exists (412). Retries S3's 409 race answer."""
        from botocore.exceptions import ClientError

        for attempt in range(5):
            body = arguments.get("Body")
            if hasattr(body, "seek"):
                body.seek(0)
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, IfNoneMatch="*", **arguments)
            except ClientError as error:
                code = _error_code(error)
                if code in ("PreconditionFailed", "412"):
                    return False
                if code == "ConditionalRequestConflict" and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise
            return True
        return False  # pragma: no cover

    def _upload(self, run_id: str, name: str, path: Path, digest: FileDigest) -> bool:
        """Upload one data file; False when the run turned out to be complete already."""
        from botocore.exceptions import ClientError

        key = self._key(run_id, name)
        extra = {"Metadata": {"sha256": digest.sha256}}
        content_type = mimetypes.guess_type(name)[0]
        if content_type:
            extra["ContentType"] = content_type
        with open(path, "rb") as body:
            if self._put_if_absent(key, Body=body, **extra):
                return True
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if not _is_not_found(error):
                    raise
                head = {}
            if head.get("Metadata", {}).get("sha256") == digest.sha256:
                return True  # same bytes already there (an earlier, interrupted attempt)
            if self.exists(run_id):
                return False
            # debris of an interrupted attempt with other bytes, in a run nobody sealed
            body.seek(0)
            condition = {"IfMatch": head["ETag"]} if head.get("ETag") else {}
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra, **condition)
        return True

    def commit(self, run_id: str, staging_dir: str | os.PathLike[str]) -> str:
        staging, raw, expected = _load_staging(staging_dir, run_id)
        if self.exists(run_id):
            return self.location(run_id)
        for name in sorted(expected):
            if not self._upload(run_id, name, staging / name, expected[name]):
                return self.location(run_id)
        # the manifest last, and only if absent: a 412 means the run exists; leave it
        self._put_if_absent(self._key(run_id, MANIFEST_NAME), Body=raw, ContentType="application/json")
        return self.location(run_id)

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def list_files(self, run_id: str) -> dict[str, int]:
        prefix = self._key(run_id)
        files = {item["Key"][len(prefix) :]: item["Size"] for item in self._list(prefix)}
        return dict(sorted((name, size) for name, size in files.items() if name and not name.endswith("/")))

    def _get(self, run_id: str, name: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(run_id, name))["Body"]
        except ClientError as error:
            if _is_not_found(error):
                raise FileNotFoundError(f"{self.location(run_id)}/{name}") from None
            raise

    def read_bytes(self, run_id: str, name: str) -> bytes:
        body = self._get(run_id, name)
        try:
            return body.read()
        finally:
            body.close()

    def file_sha256(self, run_id: str, name: str) -> str:
        import hashlib

        digest = hashlib.sha256()
        body = self._get(run_id, name)
        try:
            for chunk in body.iter_chunks(_CHUNK):
                digest.update(chunk)
        finally:
            body.close()
        return digest.hexdigest()

    def fetch(self, run_id: str, dest_dir: str | os.PathLike[str]) -> Path:
        if not self.exists(run_id):
            raise RunNotFoundError(f"no complete run {run_id} in {self.uri}")
        destination = Path(dest_dir)
        for name in self.list_files(run_id):
            path = destination / _safe_name(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            body = self._get(run_id, name)
            try:
                with open(path, "wb") as handle:
                    for chunk in body.iter_chunks(_CHUNK):
                        handle.write(chunk)
            finally:
                body.close()
        return destination

    def mark(self, run_id: str, status: str, detail: Mapping[str, Any] | None = None) -> bool:
        body = _marker_bytes(run_id, status, detail)
        if self.exists(run_id):
            return False
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(run_id, STATUS_NAME), Body=body, ContentType="application/json"
        )
        return True

    def _run_entries(self) -> dict[str, tuple[set[str], datetime | None]]:
        prefix = self._runs_prefix()
        entries: dict[str, tuple[set[str], datetime | None]] = {}
        for item in self._list(prefix):
            run_id, _, name = item["Key"][len(prefix) :].partition("/")
            if not name or not _RUN_ID.fullmatch(run_id):
                continue
            names, modified = entries.get(run_id, (set(), None))
            names.add(name)
            stamp = item.get("LastModified")
            if stamp is not None and (modified is None or stamp > modified):
                modified = stamp
            entries[run_id] = (names, modified)
        return entries


def open_store(uri: str | os.PathLike[str] | None = None, *, client: S3Client | None = None) -> ArtifactStore:
    """Open the artifact store at ``uri``.

    Parameters
    ----------
    uri : str or path, optional
        ``s3://bucket[/prefix]`` for S3, otherwise a local directory (``file://``
        accepted). Default: env ``LTV_STORE``, else ``./ltv-runs``.
    client : botocore S3 client, optional
        Used by the S3 backend instead of creating one.
    """
    if uri is None or str(uri) == "":
        uri = os.environ.get(STORE_ENV) or DEFAULT_STORE
    text = os.fspath(uri)
    if text.startswith("s3://"):
        bucket, prefix = parse_s3_uri(text)
        return S3Store(bucket, prefix, client=client)
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise ValueError(f"unsupported store URI {text!r}: use a directory or s3://bucket/prefix")
    return LocalStore(Path(text))


def fetch_run(run: str | os.PathLike[str], dest_dir: str | os.PathLike[str], *, client: S3Client | None = None) -> Path:
    """Make a run available as a local directory (for ``ltv reproduce``).

    ``run`` is a run directory (returned as is) or ``s3://bucket/prefix/runs/<run_id>``
    (downloaded into ``dest_dir``). Raises :class:`RunNotFoundError` when the run has
    no manifest.
    """
    text = os.fspath(run)
    if text.startswith("s3://"):
        bucket, prefix, run_id = parse_s3_run_uri(text)
        return S3Store(bucket, prefix, client=client).fetch(run_id, dest_dir)
    path = Path(text)
    if not (path / MANIFEST_NAME).is_file():
        raise RunNotFoundError(f"{path} is not a complete run (no {MANIFEST_NAME})")
    return path
