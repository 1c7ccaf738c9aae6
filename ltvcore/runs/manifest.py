"""The run manifest: what was asked, with which code, and the digest of every file.

``manifest.json`` is written last into a run. It lists the sha256 and size of every
other file of the run (inputs snapshot included) and seals itself: the field
``manifest_sha256`` is the sha256 of the canonical JSON of all other fields, and the
file is stored in one canonical layout, so changing any byte of the manifest is
detectable too (see :func:`manifest_integrity`).

``_status.json`` (the queued/running/failed marker of a run, see
:meth:`ltvcore.runs.store.ArtifactStore.mark`) is the one documented exception: it is
mutable, never listed in a manifest and ignored by verification.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import numbers
import os
import platform
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from ltvcore.canonical import canonical_json, utc_now
from ltvcore.files import atomic_write, sha256_file

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "STATUS_NAME",
    "TRACKED_PACKAGES",
    "FileComparison",
    "FileDigest",
    "ManifestError",
    "Mismatch",
    "atomic_write",
    "build_manifest",
    "code_info",
    "code_version",
    "compare_files",
    "environment_differences",
    "environment_info",
    "list_tree",
    "manifest_bytes",
    "manifest_files",
    "manifest_integrity",
    "read_manifest",
    "sha256_file",
    "utc_now",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
STATUS_NAME = "_status.json"
MANIFEST_VERSION = 1
DIGEST_FIELD = "manifest_sha256"
PACKAGE_NAME = "ltv-forecast"
TRACKED_PACKAGES = ("numpy", "pandas", "pyarrow", "duckdb", "scipy", "lightgbm", "pymc", "plotly", "boto3")
_UNTRACKED = frozenset({MANIFEST_NAME, STATUS_NAME})


class ManifestError(ValueError):
    """A manifest is missing, unreadable or malformed."""


@dataclass(frozen=True)
class FileDigest:
    """sha256 (hex) and size in bytes of one file."""

    sha256: str
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True)
class Mismatch:
    """A file whose content differs from what the manifest recorded."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


@dataclass(frozen=True)
class FileComparison:
    """Outcome of comparing a run's files with its manifest."""

    missing: tuple[str, ...] = ()
    altered: tuple[Mismatch, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.altered or self.extra)

    def describe(self) -> str:
        parts = [f"missing {name}" for name in self.missing]
        parts += [f"altered {item}" for item in self.altered]
        parts += [f"extra {name}" for name in self.extra]
        return "; ".join(parts) or "intact"






def list_tree(root: str | os.PathLike[str]) -> dict[str, int]:
    """Map every regular file under ``root`` (recursively) to its size.

    Keys are paths relative to ``root`` in POSIX form (``inputs/events.parquet``).
    """
    root = Path(root)
    sizes: dict[str, int] = {}
    for directory, _dirs, files in os.walk(root):
        for file in files:
            path = Path(directory, file)
            if path.is_file():
                sizes[path.relative_to(root).as_posix()] = path.stat().st_size
    return dict(sorted(sizes.items()))


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default, allow_nan=False))


def _run_git(*args: str) -> str | None:
    package_dir = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=package_dir,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _package_version() -> str | None:
    try:
        import ltvcore

        version = getattr(ltvcore, "__version__", None)
    except ImportError:  # pragma: no cover - we are inside ltvcore
        version = None
    if version:
        return str(version)
    try:
        return importlib.metadata.version(PACKAGE_NAME)
    except importlib.metadata.PackageNotFoundError:
        return None


def code_info() -> dict[str, Any]:
    """Describe the code that is running.

    Returns
    -------
    dict
        ``package``, ``version`` (``ltvcore.__version__``), ``git_commit`` (env
        ``LTV_GIT_COMMIT`` when set, else ``git rev-parse HEAD`` in the package's
        repository, else ``None``), ``git_dirty`` (uncommitted changes to tracked
        files of the package; ``None`` when unknown) and ``container_image`` (env
        ``LTV_CONTAINER_IMAGE`` or ``None``).
    """
    commit = os.environ.get("LTV_GIT_COMMIT") or None
    dirty: bool | None = None
    if commit is None:
        commit = _run_git("rev-parse", "HEAD")
        if commit is not None:
            status = _run_git("status", "--porcelain", "--untracked-files=no", "--", ".")
            dirty = None if status is None else bool(status)
    return {
        "package": PACKAGE_NAME,
        "version": _package_version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "container_image": os.environ.get("LTV_CONTAINER_IMAGE") or None,
    }


def code_version(info: Mapping[str, Any] | None = None) -> str:
    """A one-string code version for :func:`ltvcore.runs.ids.run_id`.

    ``<version>``, plus ``+g<12 hex of the commit>`` when the commit is known and
    ``.dirty`` when the working tree has uncommitted changes.
    """
    info = code_info() if info is None else info
    text = str(info.get("version") or "unknown")
    commit = info.get("git_commit")
    if commit:
        text += f"+g{str(commit)[:12]}"
        if info.get("git_dirty"):
            text += ".dirty"
    return text


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_info() -> dict[str, Any]:
    """Python version and versions of :data:`TRACKED_PACKAGES` (``None`` when not installed)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {name: _distribution_version(name) for name in TRACKED_PACKAGES},
    }


def build_manifest(
    staging_dir: str | os.PathLike[str],
    *,
    run_id: str,
    request: Mapping[str, Any],
    as_of: str | dt.date | None,
    requested_by: str | None,
    seed: int | None,
    timings: Mapping[str, float],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe a finished run whose files are all in ``staging_dir``.

    Parameters
    ----------
    staging_dir : path
        Directory holding every file of the run (input snapshots under ``inputs/``).
    run_id : str
        The run's id (:func:`ltvcore.runs.ids.run_id`).
    request : Mapping
        The request as executed (defaults filled), recorded verbatim.
    as_of : str or date or None
        The as-of date used.
    requested_by : str or None
        Who asked (recorded, never part of the run id).
    seed : int or None
        Random seed of any stochastic step.
    timings : Mapping
        Seconds per step.
    extra : Mapping, optional
        More top-level fields (e.g. ``input_digest``, ``warnings``); may not
        replace a standard field.

    Returns
    -------
    dict
        JSON-ready manifest; ``files`` maps each file's relative POSIX path to
        ``{"sha256", "bytes"}`` for every file in ``staging_dir`` except
        ``manifest.json`` and ``_status.json`` at its top.
    """
    staging = Path(staging_dir)
    if not staging.is_dir():
        raise FileNotFoundError(f"staging directory {staging} does not exist")
    files = {
        name: FileDigest(sha256_file(staging / name), size).as_dict()
        for name, size in list_tree(staging).items()
        if name not in _UNTRACKED
    }
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "run_id": run_id,
        "created": utc_now(),
        "requested_by": requested_by,
        "request": _jsonable(dict(request)),
        "as_of": _jsonable(as_of),
        "seed": _jsonable(seed),
        "code": code_info(),
        "environment": environment_info(),
        "timings": _jsonable(dict(timings)),
    }
    for key, value in (extra or {}).items():
        if key in manifest or key in ("files", DIGEST_FIELD):
            raise ValueError(f"extra field {key!r} would replace a standard manifest field")
        manifest[key] = _jsonable(value)
    manifest["files"] = files
    return manifest


def _content_digest(content: Mapping[str, Any]) -> str:
    body = {key: value for key, value in content.items() if key != DIGEST_FIELD}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _layout(content: Mapping[str, Any]) -> bytes:
    return (json.dumps(content, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Seal ``manifest`` (set ``manifest_sha256``) and return its canonical file content."""
    body = {key: value for key, value in _jsonable(dict(manifest)).items() if key != DIGEST_FIELD}
    body[DIGEST_FIELD] = _content_digest(body)
    return _layout(body)




def write_manifest(staging_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Seal and write ``manifest.json`` into ``staging_dir`` atomically; return its path."""
    return atomic_write(Path(staging_dir) / MANIFEST_NAME, manifest_bytes(manifest))


def read_manifest(source: bytes | str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a manifest from its bytes or its path and check its structure.

    Raises
    ------
    ManifestError
        When the file is missing, not JSON, or has no valid ``files`` table.
    """
    if isinstance(source, bytes):
        raw = source
    else:
        try:
            raw = Path(source).read_bytes()
        except FileNotFoundError:
            raise ManifestError(f"{MANIFEST_NAME} is missing") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{MANIFEST_NAME} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{MANIFEST_NAME} is not a JSON object")
    manifest_files(manifest)
    return manifest


def manifest_files(manifest: Mapping[str, Any]) -> dict[str, FileDigest]:
    """Return the validated ``files`` table of a parsed manifest."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ManifestError(f"{MANIFEST_NAME} has no 'files' table")
    table: dict[str, FileDigest] = {}
    for name, entry in files.items():
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("bytes") if isinstance(entry, dict) else None
        valid_sha = isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
        valid_size = isinstance(size, int) and not isinstance(size, bool) and size >= 0
        if not (valid_sha and valid_size):
            raise ManifestError(f"{MANIFEST_NAME} has a malformed entry for {name!r}")
        table[name] = FileDigest(sha, size)  # type: ignore[arg-type]  # both validated above
    return table


def manifest_integrity(raw: bytes) -> list[str]:
    """Check that a manifest's bytes are exactly as :func:`write_manifest` wrote them.

    Returns
    -------
    list of str
        Empty when intact, else the reasons (content differs from its own recorded
        digest; layout is not canonical).
    """
    manifest = read_manifest(raw)
    reasons = []
    recorded = manifest.get(DIGEST_FIELD)
    if not isinstance(recorded, str):
        reasons.append(f"no {DIGEST_FIELD} seal")
    elif recorded != _content_digest(manifest):
        reasons.append("content does not match its recorded digest")
    if _layout(manifest) != raw:
        reasons.append("bytes are not in canonical form")
    return reasons


def compare_files(
    expected: Mapping[str, FileDigest],
    sizes: Mapping[str, int],
    sha256_of: Callable[[str], str],
) -> FileComparison:
    """Compare present files with the manifest's table.

    Parameters
    ----------
    expected : Mapping
        Manifest table (:func:`manifest_files`).
    sizes : Mapping
        Files present (relative name to size), already without the manifest and
        the status marker.
    sha256_of : callable
        Computes the sha256 of a present file; only called when sizes agree.
    """
    missing = tuple(sorted(name for name in expected if name not in sizes))
    extra = tuple(sorted(name for name in sizes if name not in expected))
    altered = []
    for name in sorted(set(expected) & set(sizes)):
        want = expected[name]
        if sizes[name] != want.bytes:
            altered.append(Mismatch(name, f"{sizes[name]} bytes, manifest says {want.bytes}"))
        elif sha256_of(name) != want.sha256:
            altered.append(Mismatch(name, "sha256 differs from the manifest"))
    return FileComparison(missing=missing, altered=tuple(altered), extra=extra)


def environment_differences(manifest: Mapping[str, Any]) -> list[str]:
    """Name what differs between the recorded and the running environment.

    For ``ltv reproduce``: one human-readable line per differing Python, package or
    code version; empty when everything recorded matches.
    """
    lines = []
    recorded_env = manifest.get("environment") or {}
    current_env = environment_info()
    if recorded_env.get("python") and recorded_env.get("python") != current_env["python"]:
        lines.append(f"python: run used {recorded_env['python']}, running {current_env['python']}")
    recorded_packages = recorded_env.get("packages") or {}
    for name in sorted(set(recorded_packages) | set(TRACKED_PACKAGES)):
        was = recorded_packages.get(name)
        now = current_env["packages"].get(name) if name in current_env["packages"] else _distribution_version(name)
        if name in recorded_packages and was != now:
            lines.append(f"{name}: run used {was or 'none'}, installed {now or 'none'}")
    recorded_code = manifest.get("code") or {}
    current_code = code_info()
    for field in ("version", "git_commit"):
        was, now = recorded_code.get(field), current_code.get(field)
        if was and now and was != now:
            lines.append(f"code {field}: run used {was}, running {now}")
    return lines
