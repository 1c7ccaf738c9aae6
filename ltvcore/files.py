"""How the product reads and writes files: one chunk size, one atomic write, one digest."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CHUNK_BYTES", "atomic_write", "create_once", "sha256_chunks", "sha256_file"]

CHUNK_BYTES = 1 << 20  # 1 MiB: streams large files in constant memory, few system calls


def _temporary_copy(target: Path, data: bytes) -> Path:
    """``data`` written and fsynced to a hidden temporary file next to ``target``."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (hidden temporary file, fsync, rename).

    A reader sees the old file or the whole new one, never a part. The file gets the
    usual permissions (``0666`` less the umask), like any file the process creates.
    """
    target = Path(path)
    temporary = _temporary_copy(target, data)
    try:
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def create_once(path: str | os.PathLike[str], data: bytes) -> bool:
    """Create ``path`` with ``data`` atomically unless it exists (then False, nothing changed):
    a hard link of a complete temporary file refuses an existing name."""
    target = Path(path)
    temporary = _temporary_copy(target, data)
    try:
        os.link(temporary, target)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


def sha256_chunks(chunks: Iterable[bytes]) -> str:
    """The hex sha256 of a stream of chunks (a file, an S3 body), never held whole."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in :data:`CHUNK_BYTES` chunks."""
    with open(path, "rb") as handle:
        return sha256_chunks(iter(lambda: handle.read(CHUNK_BYTES), b""))
