"""The body of ``POST /forecasts``: JSON types checked here, meaning checked by ForecastRequest.

Pydantic checks shapes and types only (strictly: ``"7"`` is not a number, ``true`` is not a
day count); the rules a value must follow (ranges, known models, dates) live once in
:class:`ltvcore.request.ForecastRequest`, the same object the CLI builds.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ltvcore.request import ForecastRequest

__all__ = ["DATASET_NAME", "ForecastBody", "check_dataset_name"]

DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A dataset is a folder *name*: never a path (no ``/``, ``\\``, ``..``, no leading dot)."""

_CHANNEL = re.compile(r"#?[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


def check_dataset_name(name: str) -> str:
    """``name`` if it is a plain dataset folder name, else ``ValueError`` saying why."""
    if "/" in name or "\\" in name or ".." in name:
        raise ValueError(f"'{name[:80]}' is a path; give the name of a dataset folder")
    if not DATASET_NAME.fullmatch(name):
        raise ValueError(f"'{name[:80]}' is not a dataset name "
                         "(letters, digits, '.', '_' or '-', not starting with '.')")
    return name


class ForecastBody(BaseModel):
    """``POST /forecasts`` (docs/interface.md, HTTP API): the CLI's options plus ``dataset`` and ``notify``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    dataset: str
    by: list[str] | None = None
    as_of: str | None = None
    observe_days: int | None = None
    horizons: list[int] | None = None
    confidence: float | None = None
    model: str | None = None
    retention: str | None = None
    window_days: int | None = None
    notify: Annotated[list[str], Field(max_length=20)] = []

    @field_validator("dataset")
    @classmethod
    def _dataset_is_a_name(cls, value: str) -> str:
        return check_dataset_name(value)

    @field_validator("notify")
    @classmethod
    def _channels_are_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _CHANNEL.fullmatch(name.strip()):
                raise ValueError(f"'{name[:80]}' is not a Slack channel name "
                                 "(letters, digits, '.', '_' or '-')")
        return [name.strip().lstrip("#") for name in value]

    def to_request(self) -> ForecastRequest:
        """The validated request (raises ``InputError`` naming the field)."""
        given = self.model_dump(exclude={"notify"}, exclude_none=True)
        for name in ("by", "horizons"):
            if name in given:
                given[name] = tuple(given[name])
        return ForecastRequest(**given)
