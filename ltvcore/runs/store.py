"""Artifact store: immutable runs in a local directory or under an S3 prefix.

One key layout for both backends::

    <root>/runs/<run_id>/manifest.json
    <root>/runs/<run_id>/forecast.csv, curve.csv, params.json, report.html, inputs/...
    <root>/runs/<run_id>/_status.json      (queued/running/failed marker, mutable)
    <root>/index/runs/<inverted-ms>.<run_id>.<status>.json   (one per commit or marker, immutable)

A run is *visible* (``exists``, status ``succeeded``) only once its ``manifest.json``
is present, and the manifest is always written last. Runs are never overwritten:

- locally, a run is assembled in a hidden temporary directory next to its target and
  renamed into place in one ``os.rename``; an interrupted commit leaves at most a
  hidden ``.tmp-*`` directory, which is never listed;
- on S3, data files are uploaded first and the manifest last with
  ``IfNoneMatch="*"``: if another commit got there first, S3 refuses (412) and the
  existing run stays as it was.

``list_runs`` reads the run index, never every run (:mod:`ltvcore.runs.index`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ltvcore.runs.manifest import (
    MANIFEST_NAME,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
from ltvcore.runs.local_store import LocalStore
from ltvcore.runs.s3_store import S3Store
from ltvcore.runs.store_base import (
    DEFAULT_STORE,
    MARKER_KEYS,
    MARKER_STATUSES,
    RUNS_DIR,
    STORE_ENV,
    ArtifactStore,
    InvalidRunError,
    RunNotFoundError,
    StoreError,
    parse_s3_run_uri,
    parse_s3_uri,
    request_summary,
    validate_run_id,
)

__all__ = [
    "DEFAULT_STORE",
    "MARKER_KEYS",
    "MARKER_STATUSES",
    "RUNS_DIR",
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
