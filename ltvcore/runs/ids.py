"""Content-addressed run ids.

A run id names *what* was computed, never *where* it was written or *who* asked:
it is a digest of the normalised request, the digest of the exact input snapshot
and the code version. The same request on the same data with the same code gives
the same id (so an existing run can be returned instead of computing again);
changed data or code gives a new id.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
import numbers
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from ltvcore.canonical import canonical_json

__all__ = [
    "NON_RESULT_FIELDS",
    "RUN_ID_LENGTH",
    "UNORDERED_FIELDS",
    "canonical_json",
    "combine_digests",
    "normalise_request",
    "run_id",
]

RUN_ID_LENGTH = 20
"""Hex characters kept from the sha256 (80 bits: collisions are not a practical concern)."""

NON_RESULT_FIELDS = frozenset(
    {
        # who asked and who is told
        "requested_by",
        "notify",
        # where the result is written
        "out",
        "output",
        "store",
        "status_url",
        # where the input was read from: the input digest already identifies the data
        "dataset",
        "data_dir",
        "events",
        "installs",
        "spend",
    }
)
"""Request fields that cannot change the result and are left out of the id."""

UNORDERED_FIELDS = frozenset({"horizons"})
"""Top-level list fields whose order (and duplicates) do not matter: sorted and de-duplicated.

``by`` is deliberately *not* here: its order sets the column order of the outputs.
"""

_SCHEMA = 1  # bump when the normalisation rules change, so old and new ids never collide


def _normalise_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"request values must be finite numbers, got {value!r}")
        return int(number) if number.is_integer() else number
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, Mapping):
        return {str(key): _normalise_value(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return _sorted_unique([_normalise_value(item) for item in value])
    if isinstance(value, (list, tuple)):
        return [_normalise_value(item) for item in value]
    raise TypeError(f"cannot normalise request value of type {type(value).__name__}: {value!r}")


def _sorted_unique(items: list[Any]) -> list[Any]:
    by_key = {canonical_json(item): item for item in items}
    # numbers sort numerically, everything else by its canonical text
    if all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
        return sorted(by_key.values())
    return [by_key[key] for key in sorted(by_key)]


def normalise_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """Return the part of ``request`` that determines the result, in canonical form.

    Parameters
    ----------
    request : Mapping
        The forecast request with defaults already filled in by the caller.

    Returns
    -------
    dict
        The request without :data:`NON_RESULT_FIELDS` and without ``None`` values;
        :data:`UNORDERED_FIELDS` sorted and de-duplicated; integral floats as ints
        (``7.0`` and ``7`` are the same request); dates as ISO strings.
    """
    normalised: dict[str, Any] = {}
    for key, value in request.items():
        key = str(key)
        if key in NON_RESULT_FIELDS or value is None:
            continue
        value = _normalise_value(value)
        if key in UNORDERED_FIELDS and isinstance(value, list):
            value = _sorted_unique(value)
        normalised[key] = value
    return dict(sorted(normalised.items()))


def combine_digests(digests: Mapping[str, str]) -> str:
    """Combine named sha256 digests (e.g. one per input snapshot file) into one hex digest.

    Independent of the mapping's order.
    """
    lines = "".join(f"{name}\t{digest}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def run_id(request: Mapping[str, Any], input_digest: str, code_version: str) -> str:
    """Derive the run id from what determines the result.

    Parameters
    ----------
    request : Mapping
        The forecast request, defaults filled by the caller. Fields in
        :data:`NON_RESULT_FIELDS` (who asked, who is notified, input and output
        locations) are ignored; see :func:`normalise_request`.
    input_digest : str
        Digest of the exact input snapshot the forecast uses (e.g. from
        :func:`combine_digests` over the snapshot files' sha256).
    code_version : str
        Version of the code computing the forecast (package version, optionally
        with the git commit).

    Returns
    -------
    str
        The first :data:`RUN_ID_LENGTH` lower-case hex characters of the sha256 of
        the canonical JSON of the three: URL- and path-safe, carries no order.
    """
    if not isinstance(input_digest, str) or not input_digest:
        raise ValueError("input_digest must be a non-empty string")
    if not isinstance(code_version, str) or not code_version:
        raise ValueError("code_version must be a non-empty string")
    payload = {
        "schema": _SCHEMA,
        "request": normalise_request(request),
        "input_digest": input_digest,
        "code_version": code_version,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:RUN_ID_LENGTH]
