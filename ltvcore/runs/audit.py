"""``ltv audit verify``: check a run's files against its manifest.

Every digest is recomputed from the stored bytes (S3 objects are streamed, never
trusted by ETag or metadata). The manifest itself is checked against its own seal
(see :mod:`ltvcore.runs.manifest`). ``_status.json`` is the one file a run may hold
without the manifest listing it (the queued/running marker it had before it was sealed); it is
verified too: a well-formed marker of this very run, holding nothing but marker fields.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ltvcore.runs.manifest import (
    MANIFEST_NAME,
    STATUS_NAME,
    ManifestError,
    Mismatch,
    compare_files,
    list_tree,
    manifest_files,
    manifest_integrity,
    read_manifest,
    sha256_file,
)
from ltvcore.runs.store import MARKER_STATUSES, RUNS_DIR, S3Store, parse_s3_run_uri

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

__all__ = ["VerifyResult", "verify"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`.

    Attributes
    ----------
    run : str
        What was verified (directory or S3 URI).
    run_id : str or None
        The manifest's run id, when it could be read.
    files : int
        Number of files the manifest lists.
    missing, extra : tuple of str
        Files listed but absent; files present but not listed.
    altered : tuple of Mismatch
        Files (``manifest.json`` included) whose bytes differ from the record.
    problems : tuple of str
        Failures that are not about one listed file (no manifest, unreadable
        manifest, run id not matching its folder).
    """

    run: str
    run_id: str | None = None
    files: int = 0
    missing: tuple[str, ...] = ()
    altered: tuple[Mismatch, ...] = ()
    extra: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not (self.missing or self.altered or self.extra or self.problems)

    def lines(self) -> list[str]:
        """Human-readable report: ``intact: N files`` or one line per failure."""
        if self.ok:
            return [f"intact: {self.files} files"]
        lines = [f"FAILED: {self.run}"]
        lines += [f"problem: {problem}" for problem in self.problems]
        lines += [f"missing: {name}" for name in self.missing]
        lines += [f"altered: {item}" for item in self.altered]
        lines += [f"extra: {name}" for name in self.extra]
        return lines


def verify(run: str | os.PathLike[str], *, client: S3Client | None = None) -> VerifyResult:
    """Recompute every digest of a run and compare with its manifest.

    Parameters
    ----------
    run : str or path
        A run directory, or ``s3://bucket[/prefix]/runs/<run_id>``.
    client : botocore S3 client, optional
        For S3 runs; by default ``boto3.client("s3")``.

    Returns
    -------
    VerifyResult
        ``ok`` when the manifest is intact and every listed file is present with
        its recorded size and sha256, and nothing else is present.

    Raises
    ------
    ValueError
        When ``run`` is an S3 URI that does not end in ``runs/<run_id>``.
    """
    text = os.fspath(run)
    folder_name: str | None
    if text.startswith("s3://"):
        bucket, prefix, run_id = parse_s3_run_uri(text)
        store = S3Store(bucket, prefix, client=client)
        sizes = store.list_files(run_id)

        def read(name: str) -> bytes:
            return store.read_bytes(run_id, name)

        def sha256_of(name: str) -> str:
            return store.file_sha256(run_id, name)

        folder_name = run_id
    else:
        path = Path(text)
        if not path.is_dir():
            return VerifyResult(run=text, problems=(f"no run directory at {text}",))
        sizes = list_tree(path)

        def read(name: str) -> bytes:
            return (path / name).read_bytes()

        def sha256_of(name: str) -> str:
            return sha256_file(path / name)

        resolved = path.resolve()
        folder_name = resolved.name if resolved.parent.name == RUNS_DIR else None
    return _verify(text, sizes, read, sha256_of, folder_name)


def _verify(
    run: str,
    sizes: dict[str, int],
    read: Callable[[str], bytes],
    sha256_of: Callable[[str], str],
    folder_name: str | None,
) -> VerifyResult:
    if MANIFEST_NAME not in sizes:
        what = "manifest.json is missing: the run is incomplete or was tampered with"
        if not sizes:
            what = f"nothing stored at {run}"
        return VerifyResult(run=run, problems=(what,))
    raw = read(MANIFEST_NAME)
    try:
        manifest = read_manifest(raw)
        expected = manifest_files(manifest)
        seal = manifest_integrity(raw)
    except ManifestError as error:
        return VerifyResult(run=run, problems=(f"manifest.json is unreadable: {error}",))
    run_id = manifest.get("run_id") if isinstance(manifest.get("run_id"), str) else None
    problems = []
    if folder_name is not None and run_id != folder_name:
        problems.append(f"manifest.json is for run {run_id!r} but the run's folder is {folder_name!r}")
    present = {name: size for name, size in sizes.items() if name not in (MANIFEST_NAME, STATUS_NAME)}
    comparison = compare_files(expected, present, sha256_of)
    altered = tuple(Mismatch(MANIFEST_NAME, reason) for reason in seal) + comparison.altered
    if STATUS_NAME in sizes:
        reason = _marker_problem(read(STATUS_NAME), run_id)
        if reason:
            altered += (Mismatch(STATUS_NAME, reason),)
    return VerifyResult(
        run=run,
        run_id=run_id,
        files=len(expected),
        missing=comparison.missing,
        altered=altered,
        extra=comparison.extra,
        problems=tuple(problems),
    )


_MARKER_FIELDS = frozenset({"run_id", "status", "updated", "detail"})


def _marker_problem(raw: bytes, run_id: str | None) -> str | None:
    """Why a sealed run's ``_status.json`` is not its own pre-seal marker (None when it is)."""
    try:
        marker = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "is not a status marker (not JSON)"
    if not isinstance(marker, dict) or set(marker) - _MARKER_FIELDS:
        return "is not a status marker (unexpected fields)"
    if marker.get("run_id") != run_id:
        return f"is the marker of run {str(marker.get('run_id'))[:40]!r}, not of this run"
    if marker.get("status") not in MARKER_STATUSES:
        return f"holds status {str(marker.get('status'))[:20]!r}, not a marker's status"
    if not isinstance(marker.get("detail", {}), dict):
        return "is not a status marker (its detail is not an object)"
    return None
