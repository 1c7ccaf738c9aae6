"""Reading the three input tables (events, installs, spend) from CSV or Parquet, with validation.

Every rule of CONTRACT §1 lives here. A violation raises :class:`~ltvcore.errors.InputError`
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

__all__ = ["read_events", "read_installs", "read_spend", "read_table"]

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _format(path: Path) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError("not a CSV or Parquet file (expected .csv or .parquet)", file=path.name)
    return fmt


def read_table(path: str | Path) -> pa.Table:
    """Read a CSV or Parquet file with every column as text (CSV) or its stored type (Parquet)."""
    path = Path(path)
    fmt = _format(path)
    if not path.is_file():
        raise InputError("file not found", file=str(path))
    try:
        if fmt == "csv":
            return pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=1 << 24),
                convert_options=pacsv.ConvertOptions(
                    column_types={}, strings_can_be_null=True, auto_dict_encode=False
                ),
            )
        return pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        kind = "CSV" if fmt == "csv" else "Parquet"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot be read as {kind}: {first}", file=path.name) from None


def _require(table: pa.Table, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InputError(
            f"missing required column (has: {', '.join(table.column_names) or 'none'})",
            file=name, column=missing[0],
        )
    if table.num_rows == 0:
        raise InputError("has no rows", file=name)


def _first(mask: np.ndarray) -> int:
    """1-based index of the first True."""
    return int(np.flatnonzero(mask)[0]) + 1


def _text(table: pa.Table, column: str, name: str) -> np.ndarray:
    """A required, non-empty text column."""
    col = table.column(column)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
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
        return days.astype("datetime64[D]")
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        raise InputError(f"has type {col.type}, expected a date YYYY-MM-DD", file=name,
                         column=column)
    parsed = pc.strptime(col, format="%Y-%m-%d", unit="s", error_is_null=True)
    bad = pd.isna(parsed.to_numpy(zero_copy_only=False))
    if bad.any():
        row = _first(bad)
        raw = col[row - 1].as_py()
        raise InputError(f"'{raw}' is not a date YYYY-MM-DD", file=name, column=column, row=row)
    days = pc.cast(pc.cast(parsed, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
    return days.astype("datetime64[D]")


def _amounts(table: pa.Table, column: str, name: str) -> np.ndarray:
    """A required non-negative finite float column."""
    col = table.column(column)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        values = col.to_numpy(zero_copy_only=False).astype(float)
        texts = None
    else:
        texts = col.to_numpy(zero_copy_only=False)
        values = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        row = _first(bad)
        raw = None if texts is None else texts[row - 1]
        what = "is empty or NaN" if raw is None or pd.isna(raw) or raw == "" else f"'{raw}' is not a number"
        raise InputError(what, file=name, column=column, row=row)
    negative = values < 0
    if negative.any():
        row = _first(negative)
        raise InputError(f"{values[row - 1]:g} is negative (must be >= 0)", file=name,
                         column=column, row=row)
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
        raise InputError(f"duplicate install row for user '{users[row - 1]}'", file=path.name,
                         column="user_id", row=row)
    if "campaign" in table.column_names:
        frame["campaign"] = _text(table, "campaign", path.name)
    else:
        frame["campaign"] = "all"
    for column in table.column_names:
        if column in frame.columns:
            continue
        # Segment attributes are labels: a missing value is its own segment, not an error.
        values = pc.cast(table.column(column), pa.string()).to_numpy(zero_copy_only=False)
        frame[column] = pd.Series(values, dtype=object).fillna("(missing)").to_numpy()
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
    return frame.groupby("campaign", as_index=False, sort=True)["spend"].sum()
