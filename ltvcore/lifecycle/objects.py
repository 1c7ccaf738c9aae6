"""Immutable objects under the artifact store's root, for the model registry.

The run store (:mod:`ltvcore.runs.store`) is keyed by run id; the registry needs a few more keys
beside ``runs/`` (``models/<name>/...``), with the same guarantee: an object, once written, is
never replaced. Locally an object is written to a hidden temporary file and *linked* into place
(``os.link`` fails when the name exists, so two writers cannot both win); on S3 it is one
``put_object`` with ``IfNoneMatch="*"`` (S3 refuses with 412 when the key exists). Neither needs
a lock, a database or a server.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ltvcore.files import CHUNK_BYTES, create_once, sha256_chunks, sha256_file

if TYPE_CHECKING:
    from ltvcore.runs.store import ArtifactStore

__all__ = ["Objects", "objects_for"]


def _key(key: str) -> str:
    """``key`` when it is a relative POSIX path without ``.``/``..`` parts or hidden names."""
    parts = key.split("/")
    if not key or "\\" in key or PurePosixPath(key).is_absolute() \
            or any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key


class Objects(ABC):
    """Write-once objects by key (``models/history/0123…/card.json``)."""

    @property
    @abstractmethod
    def uri(self) -> str:
        """The store's root."""

    @abstractmethod
    def put_if_absent(self, key: str, body: bytes, content_type: str | None = None) -> bool:
        """Write ``body`` under ``key`` unless an object is there; False when one was."""

    @abstractmethod
    def read(self, key: str) -> bytes:
        """An object's bytes; ``FileNotFoundError`` when absent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    def sha256(self, key: str) -> str:
        """The sha256 of an object, computed from its stored bytes (never from metadata)."""

    @abstractmethod
    def list(self, prefix: str) -> dict[str, int]:
        """Every object under ``prefix/`` (key relative to it → size), sorted by key."""

    def location(self, key: str) -> str:
        """Where ``key`` is, for messages."""
        return f"{self.uri.rstrip('/')}/{_key(key)}"


class _LocalObjects(Objects):
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def uri(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _key(key)

    def put_if_absent(self, key: str, body: bytes, content_type: str | None = None) -> bool:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return create_once(target, body)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def sha256(self, key: str) -> str:
        return sha256_file(self._path(key))

    def list(self, prefix: str) -> dict[str, int]:
        base = self._path(prefix)
        found: dict[str, int] = {}
        for directory, folders, files in os.walk(base):
            folders[:] = [f for f in folders if not f.startswith(".")]
            for name in files:
                if name.startswith("."):  # a write in progress (or its debris)
                    continue
                path = Path(directory, name)
                found[path.relative_to(base).as_posix()] = path.stat().st_size
        return dict(sorted(found.items()))


class _S3Objects(Objects):
    def __init__(self, store: Any) -> None:
        self._store = store  # an S3Store: its client (injected or created on first use)
        self.bucket = store.bucket
        self.prefix = store.prefix

    @property
    def uri(self) -> str:
        return str(self._store.uri)

    @property
    def client(self) -> Any:
        return self._store.client

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{_key(key)}" if self.prefix else _key(key)

    @staticmethod
    def _code(error: Exception) -> str:
        response = getattr(error, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    def put_if_absent(self, key: str, body: bytes, content_type: str | None = None) -> bool:
        from ltvcore.runs.s3_store import put_if_absent

        extra = {"ContentType": content_type} if content_type else {}
        return put_if_absent(self.client, self.bucket, self._full(key), Body=body, **extra)

    def _body(self, key: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"]
        except ClientError as error:
            if self._code(error) in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(self.location(key)) from None
            raise

    def read(self, key: str) -> bytes:
        body = self._body(key)
        try:
            return body.read()
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as error:
            if self._code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def sha256(self, key: str) -> str:
        body = self._body(key)
        try:
            return sha256_chunks(body.iter_chunks(CHUNK_BYTES))
        finally:
            body.close()

    def list(self, prefix: str) -> dict[str, int]:
        start = self._full(prefix).rstrip("/") + "/"
        found: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                name = item["Key"][len(start):]
                if name and not name.endswith("/"):
                    found[name] = item["Size"]
        return dict(sorted(found.items()))


def objects_for(store: ArtifactStore) -> Objects:
    """The object layer over the same root as ``store`` (a local directory or an S3 prefix)."""
    from ltvcore.runs.store import LocalStore, S3Store

    if isinstance(store, LocalStore):
        return _LocalObjects(Path(store.root))
    if isinstance(store, S3Store):
        return _S3Objects(store)
    raise TypeError(f"no model registry for a {type(store).__name__}")
