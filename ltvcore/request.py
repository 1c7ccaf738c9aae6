"""A forecast request: the CLI's options and the HTTP API's fields, validated once.

Pure Python (no numpy or pandas) so the API Lambdas can import it cheaply.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from ltvcore.errors import InputError
from ltvcore.lifecycle.refs import is_ref, parse_ref
from ltvcore.models.registry import MODELS

__all__ = ["CURVE_COLUMNS", "FORECAST_COLUMNS", "ForecastRequest", "MODELS", "OUTPUT_COLUMNS", "RETENTIONS",
           "check_as_of", "is_iso_date",
           "request_error"]

RETENTIONS = ("ensemble", "sbg", "rational", "bdw")
MAX_HORIZON = 3650
MAX_TARGET_ROAS = 100.0

#: Columns of ``forecast.csv`` and ``curve.csv`` besides the group's ``by`` columns. A group
#: column of the same name would overwrite them, so ``by`` may not name one.
FORECAST_COLUMNS = ("horizon_days", "users", "ltv", "ltv_lower", "ltv_upper", "model",
                    "spend", "roas", "roas_lower", "roas_upper", "p_payback")
CURVE_COLUMNS = ("day", "ltv", "ltv_lower", "ltv_upper")
OUTPUT_COLUMNS = frozenset(FORECAST_COLUMNS + CURVE_COLUMNS)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{_shown(value)} is not a whole number")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range [{low}, {high}]")
        return value

    return check


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:56] + "…"


def _sequence(value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError("must be a list")
    return tuple(value)


def _by(value: Any) -> tuple[str, ...]:
    by = _sequence(value)
    if not by or any(not isinstance(c, str) or not c.strip() for c in by):
        raise ValueError("must name at least one column, e.g. campaign")
    if len(set(by)) != len(by):
        raise ValueError("names a column twice")
    clash = [c for c in by if c in OUTPUT_COLUMNS]
    if clash:
        raise ValueError(f"'{clash[0]}' is also a column of forecast.csv / curve.csv, so it "
                         "cannot name a group; rename that installs column "
                         f"(e.g. {clash[0]}_segment)")
    return by


def _as_of(value: Any) -> str | None:
    if value is not None and not is_iso_date(value):
        raise ValueError(f"{str(value)[:40]!r} is not a date YYYY-MM-DD")
    return value


def _horizons(value: Any) -> tuple[int, ...]:
    horizons = _sequence(value)
    if not horizons:
        raise ValueError("must list at least one horizon")
    check = _whole(1, MAX_HORIZON)
    return tuple(sorted(set(check(h) for h in horizons)))


def _confidence(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= float(value) < 1:
        raise ValueError(f"{_shown(value)} must be a number in [0.5, 1), e.g. 0.99")
    return float(value)


def _target_roas(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < float(value) <= MAX_TARGET_ROAS:
        raise ValueError(f"{_shown(value)} must be a number in (0, {MAX_TARGET_ROAS:g}], "
                         "e.g. 1.0 for break-even")
    return float(value)


def _choice(kind: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{str(value)[:40]!r} is not a {kind} (choose from {', '.join(choices)})")
        return value

    return check


def _model(value: Any) -> str:
    """A model name (:data:`MODELS`) or a registered model: ``NAME@champion``,
    ``NAME@challenger`` or ``NAME@VERSION`` (resolved against the run's store when it runs)."""
    if is_ref(value):
        return str(parse_ref(value))
    if value not in MODELS:
        raise ValueError(f"{str(value)[:40]!r} is not a model (choose from {', '.join(MODELS)}, "
                         "or a registered model as NAME@champion or NAME@VERSION)")
    return value


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _any_text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{_shown(value)} is not text")
    return value


class ForecastRequest(BaseModel):
    """What determines a forecast's result (plus ``dataset``, which names its input).

    The one description of a request: the CLI builds it from its options (and takes its
    defaults from here), the HTTP API and the Lambdas from JSON. Every field is checked by the
    rule next to it; an invalid request raises :class:`~ltvcore.errors.InputError` naming every
    invalid field at once (``errors``: one ``(field, reason)`` each).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: Annotated[tuple[str, ...], BeforeValidator(_by)] = ("campaign",)
    as_of: Annotated[str | None, BeforeValidator(_as_of)] = None
    observe_days: Annotated[int, BeforeValidator(_whole(1, 366))] = 7
    horizons: Annotated[tuple[int, ...], BeforeValidator(_horizons)] = (30, 90, 180, 365)
    confidence: Annotated[float, BeforeValidator(_confidence)] = 0.99
    #: The ROAS a campaign must reach to count as paid back (``p_payback``, days to payback).
    target_roas: Annotated[float, BeforeValidator(_target_roas)] = 1.0
    model: Annotated[str, BeforeValidator(_model)] = "curve"
    retention: Annotated[str, BeforeValidator(_choice("retention fit", RETENTIONS))] = "ensemble"
    window_days: Annotated[int | None, BeforeValidator(_optional(_whole(1, 100000)))] = None
    dataset: Annotated[str | None, BeforeValidator(_any_text)] = None
    seed: Annotated[int, BeforeValidator(_whole(0, 2**32 - 1))] = 0

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as error:
            raise request_error(error) from None

    @model_validator(mode="after")
    def _window_covers_the_observed_days(self) -> ForecastRequest:
        if self.window_days is not None and self.window_days < self.observe_days:
            raise PydanticCustomError("window_days", "must be at least observe_days")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *,
                  ignore: tuple[str, ...] = ("requested_by", "notify")) -> ForecastRequest:
        """Build from JSON-like fields (lists for ``by`` and ``horizons``); unknown fields are errors."""
        return cls(**{k: v for k, v in data.items() if k not in ignore})

    def replace(self, **changes: Any) -> ForecastRequest:
        """A copy with ``changes``, checked like any request."""
        return type(self)(**{**self.model_dump(), **changes})

    def normalised(self) -> dict:
        """The fields that determine the result, in canonical form (for the run id)."""
        data = self.model_dump()
        data["by"] = list(self.by)
        data["horizons"] = list(self.horizons)
        return data


def request_error(error: ValidationError) -> InputError:
    """One :class:`InputError` naming every invalid field of a request."""
    problems: list[tuple[str, str]] = []
    known = ", ".join(ForecastRequest.model_fields)
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ())]
        field = loc[0] if loc else ("window_days" if item.get("type") == "window_days" else "body")
        if item.get("type") == "extra_forbidden":
            reason = f"unknown field (known: {known})"
        else:
            reason = str(item.get("msg", "is not valid")).removeprefix("Value error, ")
        problems.append((field, reason))
    return InputError.for_fields(problems)


def is_iso_date(value: object) -> bool:
    """Whether ``value`` is a real calendar date spelled exactly ``YYYY-MM-DD``.

    ``date.fromisoformat`` alone also takes ``20260208`` and ISO week dates (``2026-W06-1``).
    """
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_as_of(as_of: str | None, last_event_date: str | None) -> None:
    """Refuse an as-of after the data's last event date.

    Past the data's end every user would read as inactive: curves would go flat and intervals
    collapse to zero width, a silently wrong forecast rather than an error.
    """
    if as_of is not None and last_event_date is not None and as_of > last_event_date:
        raise InputError(f"{as_of} is after the data's last event date {last_event_date}; "
                         f"use a date on or before {last_event_date}, or omit it", column="as_of")
