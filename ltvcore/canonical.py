"""The product's one spelling of a moment and of a JSON value that is hashed or compared."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

__all__ = ["canonical_json", "utc_now"]


def utc_now(timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """Current UTC time as ISO 8601 with a ``Z`` suffix, e.g. ``2026-02-28T10:00:00.123Z``."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def canonical_json(value: Any) -> str:
    """``value`` serialised deterministically (sorted keys, no whitespace, no NaN)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
