"""Run management: content-addressed run ids, manifests, the artifact store and audits.

- :mod:`ltvcore.runs.ids` -- ``run_id(request, input_digest, code_version)``
- :mod:`ltvcore.runs.manifest` -- ``build_manifest`` / ``write_manifest`` (written last)
- :mod:`ltvcore.runs.store` -- ``open_store(uri)``: local directory or S3, immutable runs
- :mod:`ltvcore.runs.audit` -- ``verify(run)`` behind ``ltv audit verify``
- :mod:`ltvcore.cli.runs` -- the ``audit`` and ``runs`` subcommands
"""
from __future__ import annotations

from ltvcore.runs.audit import VerifyResult, verify
from ltvcore.runs.ids import run_id
from ltvcore.runs.manifest import build_manifest, code_info, code_version, sha256_file, write_manifest
from ltvcore.runs.store import (
    ArtifactStore,
    InvalidRunError,
    LocalStore,
    RunNotFoundError,
    S3Store,
    StoreError,
    fetch_run,
    open_store,
)

__all__ = [
    "ArtifactStore",
    "InvalidRunError",
    "LocalStore",
    "RunNotFoundError",
    "S3Store",
    "StoreError",
    "VerifyResult",
    "build_manifest",
    "code_info",
    "code_version",
    "fetch_run",
    "open_store",
    "run_id",
    "sha256_file",
    "verify",
    "write_manifest",
]
