"""The body of ``POST /forecasts``: JSON types checked here, meaning checked by ForecastRequest.

Pydantic checks shapes and types only (strictly: ``"7"`` is not a number, ``true`` is not a
day count); the rules a value must follow (ranges, known models, dates) live once in
:class:`ltvcore.request.ForecastRequest`, the same object the CLI builds.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest

__all__ = ["BODY_FIELDS", "DATASET_NAME", "REQUEST_FIELDS", "ForecastBody", "check_dataset_name"]

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


#: The request fields a body may set: the CLI's options (the seed stays the server's).
REQUEST_FIELDS = tuple(name for name in ForecastRequest.model_fields if name not in ("dataset", "seed"))
BODY_FIELDS = ("dataset", *REQUEST_FIELDS, "notify")
MAX_CHANNELS = 20


class ForecastBody(BaseModel):
    """``POST /forecasts`` (docs/interface.md, HTTP API): a request plus ``dataset`` and ``notify``.

    The request's fields and rules are :class:`~ltvcore.request.ForecastRequest`'s; this adds
    only what is the API's own (the dataset is a folder name; Slack channels to tell).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    notify: tuple[str, ...] = ()
    request: ForecastRequest

    @classmethod
    def from_json(cls, data: Any) -> ForecastBody:
        """The body of a JSON object, or one :class:`InputError` naming every invalid field."""
        if not isinstance(data, dict):
            raise InputError("the request body must be a JSON object", column="body")
        return cls.model_validate(data)

    @model_validator(mode="before")
    @classmethod
    def _from_flat_fields(cls, data: Any) -> Any:
        """The JSON shape (request fields beside ``dataset`` and ``notify``) to the model's."""
        if not isinstance(data, dict) or "request" in data:
            return data
        problems: list[tuple[str, str]] = []
        for name in sorted(set(data) - set(BODY_FIELDS), key=str):
            problems.append((str(name)[:60], f"is not a request field (fields: {', '.join(BODY_FIELDS)})"))
        dataset = data.get("dataset")
        if dataset is None:
            problems.append(("dataset", "is required"))
        elif not isinstance(dataset, str):
            problems.append(("dataset", "must be text, the name of a dataset folder"))
        else:
            try:
                check_dataset_name(dataset)
            except ValueError as error:
                problems.append(("dataset", str(error)))
        notify = _channels(data.get("notify"), problems)
        given = {name: data[name] for name in REQUEST_FIELDS if data.get(name) is not None}
        request = None
        try:
            request = ForecastRequest(**given)
        except InputError as error:
            problems += error.errors
        if problems or request is None:
            raise InputError.for_fields(problems)  # not a ValueError: pydantic lets it through
        return {"dataset": dataset, "notify": notify, "request": request}

    def to_request(self) -> ForecastRequest:
        """The request, naming its dataset."""
        return self.request.replace(dataset=self.dataset)


def _channels(value: Any, problems: list[tuple[str, str]]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        problems.append(("notify", "must be a list of Slack channel names"))
        return ()
    if len(value) > MAX_CHANNELS:
        problems.append(("notify", f"names {len(value)} channels; at most {MAX_CHANNELS}"))
        return ()
    for name in value:
        if not _CHANNEL.fullmatch(name.strip()):
            problems.append(("notify", f"'{name[:80]}' is not a Slack channel name "
                                       "(letters, digits, '.', '_' or '-')"))
            return ()
    return tuple(name.strip().lstrip("#") for name in value)
