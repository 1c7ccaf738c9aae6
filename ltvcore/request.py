"""A forecast request: the CLI's options and the HTTP API's fields, validated once.

Pure Python (no numpy or pandas) so the API Lambdas can import it cheaply.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field

from ltvcore.errors import InputError
from ltvcore.models.registry import MODELS

__all__ = ["CURVE_COLUMNS", "FORECAST_COLUMNS", "ForecastRequest", "MODELS", "OUTPUT_COLUMNS", "RETENTIONS", "check_as_of", "is_iso_date"]

RETENTIONS = ("ensemble", "sbg", "rational")
MAX_HORIZON = 3650

#: Columns of ``forecast.csv`` and ``curve.csv`` besides the group's ``by`` columns. A group
#: column of the same name would overwrite them, so ``by`` may not name one.
FORECAST_COLUMNS = ("horizon_days", "users", "ltv", "ltv_lower", "ltv_upper", "model",
                    "spend", "roas", "roas_lower", "roas_upper", "p_payback")
CURVE_COLUMNS = ("day", "ltv", "ltv_lower", "ltv_upper")
OUTPUT_COLUMNS = frozenset(FORECAST_COLUMNS + CURVE_COLUMNS)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class ForecastRequest:
    """What determines a forecast's result (plus ``dataset``, which names its input)."""

    by: tuple[str, ...] = ("campaign",)
    as_of: str | None = None
    observe_days: int = 7
    horizons: tuple[int, ...] = (30, 90, 180, 365)
    confidence: float = 0.99
    model: str = "curve"
    retention: str = "ensemble"
    window_days: int | None = None
    dataset: str | None = None
    seed: int = field(default=0)

    def __post_init__(self) -> None:
        by = tuple(self.by)
        if not by or any(not isinstance(c, str) or not c.strip() for c in by):
            raise InputError("must name at least one column, e.g. campaign", column="by")
        if len(set(by)) != len(by):
            raise InputError("names a column twice", column="by")
        clash = [c for c in by if c in OUTPUT_COLUMNS]
        if clash:
            raise InputError(f"'{clash[0]}' is also a column of forecast.csv / curve.csv, so it "
                             "cannot name a group; rename that installs column "
                             f"(e.g. {clash[0]}_segment)", column="by")
        object.__setattr__(self, "by", by)
        if self.as_of is not None:
            if not is_iso_date(self.as_of):
                raise InputError(f"{str(self.as_of)[:40]!r} is not a date YYYY-MM-DD",
                                 column="as_of")
            object.__setattr__(self, "as_of", str(self.as_of))
        _integer(self.observe_days, "observe_days", 1, 366)
        horizons = tuple(self.horizons)
        if not horizons:
            raise InputError("must list at least one horizon", column="horizons")
        for h in horizons:
            _integer(h, "horizons", 1, MAX_HORIZON)
        object.__setattr__(self, "horizons", tuple(sorted(set(int(h) for h in horizons))))
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)) \
                or not 0.5 <= float(self.confidence) < 1:
            raise InputError(f"{self.confidence!r} must be a number in [0.5, 1), e.g. 0.99",
                             column="confidence")
        object.__setattr__(self, "confidence", float(self.confidence))
        if self.model not in MODELS:
            raise InputError(f"'{self.model}' is not a model (choose from {', '.join(MODELS)})",
                             column="model")
        if self.retention not in RETENTIONS:
            raise InputError(f"'{self.retention}' is not a retention fit "
                             f"(choose from {', '.join(RETENTIONS)})", column="retention")
        if self.window_days is not None:
            _integer(self.window_days, "window_days", 1, 100000)
            if self.window_days < self.observe_days:
                raise InputError("must be at least observe_days", column="window_days")
        _integer(self.seed, "seed", 0, 2**32 - 1)

    @classmethod
    def from_dict(cls, data: dict, *, ignore: tuple[str, ...] = ("requested_by", "notify")) -> ForecastRequest:
        """Build from JSON-like fields (lists for ``by`` and ``horizons``); unknown fields are errors."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - set(ignore))
        if unknown:
            raise InputError(f"unknown field (known: {', '.join(sorted(known))})", column=unknown[0])
        fields = {k: v for k, v in data.items() if k in known}
        for name in ("by", "horizons"):
            value = fields.get(name)
            if isinstance(value, str):
                raise InputError("must be a list", column=name)
            if value is not None:
                try:
                    fields[name] = tuple(value)
                except TypeError:
                    raise InputError("must be a list", column=name) from None
        return cls(**fields)

    def normalised(self) -> dict:
        """The fields that determine the result, in canonical form (for the run id)."""
        data = asdict(self)
        data["by"] = list(self.by)
        data["horizons"] = list(self.horizons)
        return data


def _integer(value, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{value!r} is not a whole number", column=name)
    if not low <= value <= high:
        raise InputError(f"{value} is out of range [{low}, {high}]", column=name)


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
