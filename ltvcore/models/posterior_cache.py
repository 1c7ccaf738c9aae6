"""A content-addressed store of posterior draws, so the same request never samples twice.

A posterior is a dict of numpy arrays (the draws of each group-level parameter plus a few
diagnostics). Its key is the sha256 of everything that determines it:

* the sufficient-statistics arrays the likelihood sees (name, dtype, shape and bytes),
* the model settings (method, draws, tune, chains, seed, priors),
* the versions of the libraries that sample it and a digest of the model package's source
  files (``ltvcore/models/btyd/*.py``).

Files are ``<key>.npz`` archives written with fixed zip timestamps (the same posterior gives the
same bytes) and no pickles; they are written to a temporary name and renamed, so a reader never
sees half a file and two writers of the same key cannot corrupt it.

The default directory is ``$LTV_CACHE_DIR`` or ``~/.cache/ltv-forecast/posteriors``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from ltvcore.files import atomic_write

__all__ = ["PosteriorCache", "cache_key", "default_cache_dir"]

_META = "__meta__"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def default_cache_dir() -> Path:
    """``$LTV_CACHE_DIR`` if set, else ``~/.cache/ltv-forecast/posteriors``."""
    env = os.environ.get("LTV_CACHE_DIR")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "ltv-forecast" / "posteriors"


def cache_key(arrays: Mapping[str, np.ndarray], settings: Mapping, versions: Mapping) -> str:
    """sha256 hex digest of the arrays (sorted by name) and the JSON of settings and versions."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        header = f"{name}|{value.dtype.str}|{value.shape}|".encode()
        digest.update(len(header).to_bytes(8, "little"))
        digest.update(header)
        digest.update(value.tobytes())
    text = json.dumps({"settings": settings, "versions": versions}, sort_keys=True, default=str)
    digest.update(text.encode())
    return digest.hexdigest()


class PosteriorCache:
    """Load and store posteriors by key in ``directory`` (created on first store)."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def load(self, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """``(arrays, meta)`` stored under ``key``, or ``None`` if absent or unreadable."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files if name != _META}
                meta = json.loads(str(archive[_META])) if _META in archive.files else {}
        except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError):
            return None  # a damaged entry is a cache miss; the fresh result overwrites it
        if meta.get("key", key) != key:
            return None
        return arrays, meta

    def store(self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping | None = None) -> Path:
        """Write ``arrays`` (and JSON-able ``meta``) under ``key``; returns the file path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = dict(arrays)
        payload[_META] = np.array(json.dumps({**(meta or {}), "key": key}, sort_keys=True,
                                             default=str))
        target = self.path(key)
        buffer = io.BytesIO()
        _write_npz(buffer, payload)
        atomic_write(target, buffer.getvalue())
        return target


def _write_npz(handle, arrays: Mapping[str, np.ndarray]) -> None:
    """An ``.npz`` that ``np.load`` reads, with fixed member order and timestamps."""
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())
