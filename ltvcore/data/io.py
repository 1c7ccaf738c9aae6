"""Reading the three input tables (events, installs, spend) from CSV or Parquet, with validation.

Every rule of docs/interface.md, inputs lives here. A violation raises :class:`~ltvcore.errors.InputError`
naming the file, the column and the first offending row (1-based data row, header excluded).
The fast path lets pyarrow parse with the expected types; only when that fails is the file
re-read as text to find the first bad row, so valid input pays nothing for good messages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ltvcore.errors import InputError

__all__ = ["DATE_RANGE", "MAX_AMOUNT", "MIN_SPEND", "read_events", "read_installs", "read_spend",
           "read_table"]

#: The dates inputs may hold. Wide enough for any real history (the CDNOW purchase data
#: start in 1997), narrow enough that a mistyped year is an error, not a millennium of days.
DATE_RANGE = ("1970-01-01", "2099-12-31")
#: The largest revenue or spend of one row. Sums of many such rows stay far from overflow, so
#: every forecast and ROAS of valid input is finite.
MAX_AMOUNT = 1e12
#: The smallest positive spend: ROAS divides by it.
MIN_SPEND = 1e-6

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _format(path: Path) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError("not a CSV or Parquet file (expected .csv or .parquet)", file=path.name)
    return fmt


def read_table(path: str | Path) -> pa.Table:
    """Read a CSV or Parquet file: every CSV column as text, Parquet columns as stored.

    CSV cells are never type-inferred: an id such as ``001`` or a 20-digit ad-network campaign
    would otherwise become a number and lose its identity. Each column is converted by the rule
    of its role (text, date or amount) afterwards.
    """
    path = Path(path)
    fmt = _format(path)
    if not path.is_file():
        raise InputError("file not found", file=str(path))
    try:
        if fmt == "csv":
            names = _csv_header(path)
            return pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=1 << 24),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in names},
                    strings_can_be_null=False, quoted_strings_can_be_null=False,
                    null_values=[], auto_dict_encode=False,
                ),
            )
        table = pq.read_table(path)
        _unique_names(table.column_names, path.name)
        return table
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, UnicodeDecodeError) as exc:
        kind = "CSV" if fmt == "csv" else "Parquet"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot be read as {kind}: {first[:200]}", file=path.name) from None


def _csv_header(path: Path) -> list[str]:
    """The header's column names (read as text: no block is type-inferred)."""
    with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16),
                        convert_options=pacsv.ConvertOptions(include_columns=[])) as reader:
        names = reader.schema.names
    _unique_names(names, path.name)
    return names


def _unique_names(names: list[str], file: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError("is named twice in the header", file=file, column=name)
        seen.add(name)


def _require(table: pa.Table, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InputError(
            f"missing required column (has: {', '.join(table.column_names) or 'none'})",
            file=name, column=missing[0],
        )
    if table.num_rows == 0:
        raise InputError("has no rows", file=name)


def _shown(value: object, limit: int = 60) -> str:
    """A cell for an error message: quoted, one line, bounded."""
    text = repr(str(value))
    return text if len(text) <= limit else text[: limit - 4] + "…'"


def _first(mask: np.ndarray) -> int:
    """1-based index of the first True."""
    return int(np.flatnonzero(mask)[0]) + 1


def _as_text(table: pa.Table, column: str, name: str, *, labels: bool = False) -> pa.ChunkedArray:
    """A column as text, exactly as written: text stays text, whole numbers become their digits.

    Floating-point ids are refused (a 23-digit id stored as a double has already lost digits);
    segment labels (``labels``) may also be booleans or floats. Nested types are refused.
    """
    col = table.column(column)
    kind = col.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return col
    if pa.types.is_dictionary(kind):
        return pc.cast(col, pa.string())
    exact = pa.types.is_integer(kind) or pa.types.is_decimal(kind)
    if exact or (labels and (pa.types.is_boolean(kind) or pa.types.is_floating(kind))):
        return pc.cast(col, pa.string())
    allowed = "text or whole numbers" + (", booleans or numbers" if labels else "")
    raise InputError(f"has type {kind}; expected {allowed}", file=name, column=column)


def _text(table: pa.Table, column: str, name: str) -> np.ndarray:
    """A required, non-empty text column."""
    col = _as_text(table, column, name)
    values = col.to_numpy(zero_copy_only=False)
    bad = pd.isna(values)
    if bad.any():
        raise InputError("is empty", file=name, column=column, row=_first(bad))
    stripped = pc.utf8_trim_whitespace(col).to_numpy(zero_copy_only=False)
    empty = stripped == ""
    if empty.any():
        raise InputError("is empty", file=name, column=column, row=_first(empty))
    return values.astype(object)


def _dates(table: pa.Table, column: str, name: str) -> np.ndarray:
    """A required date column as datetime64[D]; accepts YYYY-MM-DD text or a date/timestamp type."""
    col = table.column(column)
    if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
        if col.null_count:
            bad = pd.isna(col.to_numpy(zero_copy_only=False))
            raise InputError("is empty (expected a date YYYY-MM-DD)", file=name, column=column,
                             row=_first(bad))
        # Days since the epoch as integers: converting date objects one by one is slow.
        days = pc.cast(pc.cast(col, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        return _bounded(days.astype("datetime64[D]"), column, name)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        raise InputError(f"has type {col.type}, expected a date YYYY-MM-DD", file=name,
                         column=column)
    # Exactly YYYY-MM-DD, and a real calendar day: strptime alone shifts 2026-02-30 to
    # 2026-03-02 and reads 26-01-05 as the year 26, so the parsed day must print back as written.
    parsed = pc.strptime(col, format="%Y-%m-%d", unit="s", error_is_null=True)
    spelled = pc.match_substring_regex(col, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    again = pc.strftime(parsed, format="%Y-%m-%d")
    good = pc.and_kleene(spelled, pc.equal(again, col))
    bad = ~pc.fill_null(good, False).to_numpy(zero_copy_only=False)
    if bad.any():
        row = _first(bad)
        raw = col[row - 1].as_py()
        raise InputError(f"{_shown(raw)} is not a date YYYY-MM-DD", file=name, column=column,
                         row=row)
    days = pc.cast(pc.cast(parsed, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
    return _bounded(days.astype("datetime64[D]"), column, name)


def _bounded(dates: np.ndarray, column: str, name: str) -> np.ndarray:
    """Dates inside :data:`DATE_RANGE`: a typo such as 9999-12-31 would otherwise make every
    cohort table span millennia (minutes of work and gigabytes for a handful of users)."""
    low, high = (np.datetime64(d, "D") for d in DATE_RANGE)
    outside = (dates < low) | (dates > high)
    if outside.any():
        row = _first(outside)
        raise InputError(f"{dates[row - 1]} is outside the dates this product forecasts "
                         f"({DATE_RANGE[0]} … {DATE_RANGE[1]})", file=name, column=column, row=row)
    return dates


def _amounts(table: pa.Table, column: str, name: str) -> np.ndarray:
    """A required non-negative finite float column."""
    col = table.column(column)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        values = col.to_numpy(zero_copy_only=False).astype(float)
        texts = None
    else:
        texts = None
        try:  # arrow's cast is strict and fast; only a failure pays for finding the bad row
            values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            texts = col.to_numpy(zero_copy_only=False)
            values = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        row = _first(bad)
        raw = None if texts is None else texts[row - 1]
        what = ("is empty or NaN" if raw is None or pd.isna(raw) or raw == ""
                else f"{_shown(raw)} is not a number")
        raise InputError(what, file=name, column=column, row=row)
    negative = values < 0
    if negative.any():
        row = _first(negative)
        raise InputError(f"{values[row - 1]:g} is negative (must be >= 0)", file=name,
                         column=column, row=row)
    huge = values > MAX_AMOUNT
    if huge.any():
        row = _first(huge)
        raise InputError(f"{values[row - 1]:g} is larger than any plausible amount "
                         f"(at most {MAX_AMOUNT:g})", file=name, column=column, row=row)
    return values


def read_events(path: str | Path) -> pd.DataFrame:
    """Events: ``user_id``, ``event_date``, ``revenue`` (several rows per user-day allowed)."""
    path = Path(path)
    table = read_table(path)
    _require(table, ["user_id", "event_date", "revenue"], path.name)
    return pd.DataFrame({
        "user_id": _text(table, "user_id", path.name),
        "event_date": _dates(table, "event_date", path.name),
        "revenue": _amounts(table, "revenue", path.name),
    })


def read_installs(path: str | Path) -> pd.DataFrame:
    """Installs: unique ``user_id``, ``install_date``, optional ``campaign`` and segment columns."""
    path = Path(path)
    table = read_table(path)
    _require(table, ["user_id", "install_date"], path.name)
    users = _text(table, "user_id", path.name)
    frame = pd.DataFrame({
        "user_id": users,
        "install_date": _dates(table, "install_date", path.name),
    })
    duplicated = pd.Series(users).duplicated().to_numpy()
    if duplicated.any():
        row = _first(duplicated)
        raise InputError(f"duplicate install row for user {_shown(users[row - 1])}", file=path.name,
                         column="user_id", row=row)
    if "campaign" in table.column_names:
        frame["campaign"] = _text(table, "campaign", path.name)
    else:
        frame["campaign"] = "all"
    for column in table.column_names:
        if column in frame.columns:
            continue
        # Segment attributes are labels: a missing value is its own segment, not an error.
        values = _as_text(table, column, path.name, labels=True).to_numpy(zero_copy_only=False)
        labels = pd.Series(values, dtype=object).fillna("(missing)")
        frame[column] = labels.mask(labels == "", "(missing)").to_numpy()
    return frame


def read_spend(path: str | Path) -> pd.DataFrame:
    """Spend: ``campaign``, ``spend``; several rows of one campaign (e.g. per day) are summed."""
    path = Path(path)
    table = read_table(path)
    _require(table, ["campaign", "spend"], path.name)
    frame = pd.DataFrame({
        "campaign": _text(table, "campaign", path.name),
        "spend": _amounts(table, "spend", path.name),
    })
    tiny = (frame["spend"].to_numpy() > 0) & (frame["spend"].to_numpy() < MIN_SPEND)
    if tiny.any():
        row = _first(tiny)
        raise InputError(f"{frame['spend'].iloc[row - 1]:g} is too small to divide ROAS by "
                         f"(0, or at least {MIN_SPEND:g})", file=path.name, column="spend", row=row)
    return frame.groupby("campaign", as_index=False, sort=True)["spend"].sum()
