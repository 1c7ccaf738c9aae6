"""Runs under an S3 prefix: data files are uploaded first and the manifest last with
``IfNoneMatch="*"``: if another commit got there first, S3 refuses (412) and the existing run
stays as it was. Each run index entry (:mod:`ltvcore.runs.index`) is one ``put_object``; a
listing reads one page of index keys and its rows' entries side by side.
"""
from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ltvcore.runs.manifest import (
    MANIFEST_NAME,
    STATUS_NAME,
    FileDigest,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
from ltvcore.files import CHUNK_BYTES, sha256_chunks
from ltvcore.runs.index import INDEX_DIR
from ltvcore.runs.store_base import (
    _RUN_ID,
    RUNS_DIR,
    ArtifactStore,
    RunNotFoundError,
    StoreError,
    _error_code,
    _is_not_found,
    _load_staging,
    _marker_bytes,
    _safe_name,
    validate_run_id,
)

__all__ = ["S3Store"]

_T = TypeVar("_T")
_R = TypeVar("_R")
#: Requests a listing or a rebuild sends at once (a listing: one manifest check and one entry per
#: row): botocore keeps 10 connections per client by default.
PARALLEL_REQUESTS = 10


def put_if_absent(client: Any, bucket: str, key: str, **arguments: Any) -> bool:
    """``put_object`` with ``IfNoneMatch="*"``: False when the key exists (412). S3 answers two
    conditional writes of one key at once with 409 ``ConditionalRequestConflict``: ask again."""
    from botocore.exceptions import ClientError

    for attempt in range(5):
        body = arguments.get("Body")
        if body is not None and hasattr(body, "seek"):
            body.seek(0)
        try:
            client.put_object(Bucket=bucket, Key=key, IfNoneMatch="*", **arguments)
        except ClientError as error:
            code = _error_code(error)
            if code in ("PreconditionFailed", "412"):
                return False
            if code == "ConditionalRequestConflict" and attempt < 4:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise
        return True
    return False  # pragma: no cover - the loop returns or raises


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
        self._signer: Any = None

    @property
    def client(self) -> S3Client:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def presigned_url(self, run_id: str, name: str, *, seconds: int) -> str:
        """A link to one file of a run, valid for ``seconds``: HTML opens in the browser,
        everything else downloads as ``<run_id>-<name>``.

        Signed with SigV4, which KMS-encrypted objects require, by a client of its own (the
        store's may be configured otherwise, e.g. an older signature or a test endpoint).
        """
        if self._signer is None:
            import boto3
            from botocore.config import Config

            self._signer = boto3.client("s3", config=Config(signature_version="s3v4"))
        disposition = ("inline" if name.endswith(".html")
                       else f'attachment; filename="{validate_run_id(run_id)}-{name}"')
        return self._signer.generate_presigned_url(
            "get_object", ExpiresIn=seconds,
            Params={"Bucket": self.bucket, "Key": self._key(run_id, name),
                    "ResponseContentDisposition": disposition})

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
        """Conditional put; False when the key exists (412)."""
        return put_if_absent(self.client, self.bucket, key, **arguments)

    def _upload(self, run_id: str, name: str, path: Path, digest: FileDigest) -> bool:
        """Upload one data file; False when the run turned out to be complete already."""
        from botocore.exceptions import ClientError

        key = self._key(run_id, name)
        extra: dict[str, Any] = {"Metadata": {"sha256": digest.sha256}}
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

    def _publish(self, run_id: str, staging_dir: str | os.PathLike[str]) -> str:
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
        body = self._get(run_id, name)
        try:
            return sha256_chunks(body.iter_chunks(CHUNK_BYTES))
        finally:
            body.close()

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
                    for chunk in body.iter_chunks(CHUNK_BYTES):
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
        self._index_marker(run_id, body)
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

    # -- the run index ------------------------------------------------------
    def _index_prefix(self) -> str:
        return f"{self.prefix}/{INDEX_DIR}/" if self.prefix else f"{INDEX_DIR}/"

    def _index_names(self) -> Iterator[str]:
        prefix = self._index_prefix()
        for item in self._list(prefix):  # pages are fetched as they are read
            yield item["Key"][len(prefix) :]

    def _read_index(self, name: str) -> bytes:
        from botocore.exceptions import ClientError

        key = self._index_prefix() + _safe_name(name)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if _is_not_found(error):
                raise FileNotFoundError(f"s3://{self.bucket}/{key}") from None
            raise
        try:
            return body.read()
        finally:
            body.close()

    def _write_index(self, name: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._index_prefix() + _safe_name(name), Body=body,
                               ContentType="application/json")

    def _storage_errors(self) -> tuple[type[Exception], ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        return (OSError, StoreError, ClientError, BotoCoreError)

    def _map(self, function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        work = list(items)
        if len(work) < 2:
            return [function(item) for item in work]
        _ = self.client  # created once, before the threads share it
        pool = ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(work)))
        try:
            return list(pool.map(function, work))
        finally:  # after a failure, what has not started never does (e.g. a rebuild refused)
            pool.shutdown(wait=True, cancel_futures=True)
