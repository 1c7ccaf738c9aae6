"""How a request names a registered model: ``NAME@champion``, ``NAME@challenger``, ``NAME@VERSION``.

Pure standard library: :mod:`ltvcore.request` checks a name with it, and the API Lambda imports
the request without numpy or pandas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ALIASES", "NAME", "SETTABLE_STAGES", "STAGES", "VERSION", "ModelRef", "check_name",
           "is_ref", "parse_ref"]

#: A registered model's name: short, lower case, safe as one path component and one S3 key part.
NAME = re.compile(r"[a-z0-9_-]{1,40}")
#: A version id: the first 16 hex of a sha256 (64 bits; a name holds a handful of versions, so
#: a collision is not a practical concern, and the id stays short enough to type).
VERSION = re.compile(r"[0-9a-f]{16}")
#: The lifecycle, in order. ``dev`` is every new version's first stage.
STAGES = ("dev", "challenger", "champion", "archived")
#: What ``ltv models promote --stage`` may set (``dev`` is only ever the first stage).
SETTABLE_STAGES = ("challenger", "champion", "archived")
#: The stages a reference may name instead of a version; each resolves to one version.
ALIASES = ("champion", "challenger")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: ``name`` and either an alias (``champion``/``challenger``) or a version."""

    name: str
    target: str

    @property
    def pinned(self) -> bool:
        """True when the reference names a version (it resolves to itself)."""
        return self.target not in ALIASES

    def __str__(self) -> str:
        return f"{self.name}@{self.target}"


def is_ref(value: object) -> bool:
    """Whether ``value`` is spelled like a registered-model reference (``NAME@...``)."""
    return isinstance(value, str) and "@" in value


def check_name(name: object) -> str:
    """``name`` when it is a valid registered-model name, else ``ValueError`` saying why."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"{str(name)[:50]!r} is not a model name (1 to 40 of a-z, 0-9, '_', '-')")
    return name


def parse_ref(value: object) -> ModelRef:
    """Parse ``NAME@champion|challenger|VERSION``; ``ValueError`` naming what is wrong."""
    if not is_ref(value):
        raise ValueError(f"{str(value)[:50]!r} is not NAME@champion, NAME@challenger or NAME@VERSION")
    assert isinstance(value, str)
    name, _, target = value.partition("@")
    check_name(name)
    if target not in ALIASES and not VERSION.fullmatch(target):
        raise ValueError(f"{target[:40]!r} after '@' is not champion, challenger or a version "
                         "(16 hex characters, as ltv models list shows)")
    return ModelRef(name, target)
