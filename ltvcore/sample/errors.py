"""The error type of the sample generator."""

from __future__ import annotations

from ltvcore.errors import InputError

__all__ = ["SampleError"]


class SampleError(InputError, ValueError):
    """A bad argument to the sample generator (an :class:`InputError` and a ``ValueError``)."""
