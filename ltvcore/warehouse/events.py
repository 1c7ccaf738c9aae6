"""An events file (CSV or Parquet) read by DuckDB and summed per user and day, validated in SQL.

One scan sums the events per user and day and counts every rule's violations on the way; the
distinct dates (a few hundred values) are then checked by the same rule as everywhere else.
Only when a rule is broken is the file streamed again, in bounded batches, through the rule
of :mod:`ltvcore.data.io` for the first offending column, so the message names the file, the
column and the first bad row exactly as before, at any file size, and valid files pay nothing
for good messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ltvcore.data import io
from ltvcore.errors import InputError
from ltvcore.warehouse.engine import one

__all__ = ["EventsFile", "estimated_rows", "load_events"]

REQUIRED = ("user_id", "event_date", "revenue")
BATCH_ROWS = 1 << 20  # rows per Parquet batch when locating a bad row
CSV_BLOCK = 1 << 24  # bytes per CSV block when locating a bad row


def estimated_rows(path: str | Path) -> int:
    """Rows of an events file, from Parquet metadata or a CSV's size (about 25 bytes a row)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return int(pq.ParquetFile(path).metadata.num_rows)
        return int(path.stat().st_size // 25)
    except (OSError, pa.ArrowInvalid):
        return 0


@dataclass(frozen=True)
class EventsFile:
    """What is known of an events file once it is summed per user and day (``events_day``)."""

    path: Path
    rows: int
    user_days: int
    first_date: str
    last_date: str


def _schema(path: Path) -> tuple[str, list[str], pa.Schema | None]:
    fmt = io._format(path)
    if not path.is_file():
        raise InputError("file not found", file=str(path))
    if fmt == "csv":
        return fmt, csv_header(path), None
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot be read as Parquet: {first[:200]}", file=path.name) from None
    io._unique_names(schema.names, path.name)
    return fmt, list(schema.names), schema


def csv_header(path: Path) -> list[str]:
    """A CSV file's column names; a file that cannot be read gets the reader's one line."""
    try:
        return io._csv_header(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
        io.read_table(path)  # raises the reader's one-line message
        raise


def _check_types(schema: pa.Schema, name: str) -> None:
    """Parquet column types the rules accept (the same messages as the in-memory reader)."""
    empty = pa.table({c: pa.array([], type=schema.field(c).type) for c in REQUIRED})
    io._as_text(empty, "user_id", name)
    kind = schema.field("event_date").type
    if not (pa.types.is_date(kind) or pa.types.is_timestamp(kind) or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)):
        raise InputError(f"has type {kind}, expected a date YYYY-MM-DD", file=name, column="event_date")


def _source(fmt: str, path: Path, names: list[str]) -> str:
    literal = str(path).replace("'", "''")
    if fmt == "csv":
        # Every cell as text, exactly as written (no type inference: an id such as 001 stays
        # 001); the rules convert each column by its role.
        columns = ", ".join(f"'{n.replace(chr(39), chr(39) * 2)}': 'VARCHAR'" for n in names)
        return (f"read_csv('{literal}', header = true, delim = ',', quote = '\"', escape = '\"', "
                f"columns = {{{columns}}}, auto_detect = false, strict_mode = true)")
    return f"read_parquet('{literal}')"


def load_events(con: duckdb.DuckDBPyConnection, path: str | Path) -> EventsFile:
    """Validate ``path`` and sum it per user and day into the view ``events_day``
    (``user_id`` text, ``event_date`` DATE, ``revenue`` DOUBLE, ``events`` count)."""
    path = Path(path)
    fmt, names, schema = _schema(path)
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InputError(f"missing required column (has: {', '.join(names) or 'none'})",
                         file=path.name, column=missing[0])
    if schema is not None:
        _check_types(schema, path.name)
    typed_date = schema is not None and not pa.types.is_string(schema.field("event_date").type) \
        and not pa.types.is_large_string(schema.field("event_date").type)
    day = "CAST(event_date AS DATE)" if typed_date else "event_date"
    amount = "TRY_CAST(revenue AS DOUBLE)"
    sql = f"""
        CREATE OR REPLACE TABLE user_day_raw AS
        SELECT CAST(user_id AS VARCHAR) AS user_id, {day} AS day, SUM({amount}) AS revenue,
               COUNT(*) AS events,
               COUNT(*) FILTER (WHERE {amount} IS NULL OR isnan({amount}) OR isinf({amount})
                                OR {amount} < 0 OR {amount} > {io.MAX_AMOUNT}) AS bad_revenue
        FROM {_source(fmt, path, names)}
        GROUP BY ALL
    """
    try:
        con.execute(sql)
    except duckdb.OutOfMemoryException:
        limit = one(con, "SELECT current_setting('memory_limit')")[0]
        raise MemoryError(f"{path.name}: DuckDB ran out of memory summing the events; raise "
                          f"LTV_DUCKDB_MEMORY (now {limit})") from None
    except duckdb.Error as exc:
        for column in REQUIRED:  # the stream reader names what it cannot read or convert
            _locate(path, fmt, column)
        first = str(exc).splitlines()[0]
        kind = "CSV" if fmt == "csv" else "Parquet"
        raise InputError(f"cannot be read as {kind}: {first[:200]}", file=path.name) from None
    rows, bad_revenue, user_days = one(
        con, "SELECT COALESCE(SUM(events), 0), COALESCE(SUM(bad_revenue), 0), COUNT(*) "
             "FROM user_day_raw")
    if rows == 0:
        raise InputError("has no rows", file=path.name)
    # Only ids that start with a space or a non-ASCII character can be blank: the regular
    # expression runs on those alone.
    bad_user = one(con, r"""
        SELECT COUNT(*) FROM user_day_raw WHERE user_id IS NULL OR user_id = ''
            OR ((ord(user_id[1]) <= 32 OR ord(user_id[1]) >= 128)
                AND regexp_full_match(user_id, '\s*'))""")[0]
    if bad_user:
        _locate(path, fmt, "user_id")
    days = con.sql("SELECT DISTINCT day FROM user_day_raw").to_arrow_table()
    try:
        checked = io._dates(days.rename_columns(["event_date"]), "event_date", path.name)
    except InputError:
        _locate(path, fmt, "event_date")
        raise
    if bad_revenue:
        _locate(path, fmt, "revenue")
    # A view, not a copy: the next step joins it to installs into the indexed ``user_day``.
    con.execute("CREATE OR REPLACE TEMP VIEW events_day AS SELECT user_id, CAST(day AS DATE) "
                "AS event_date, revenue, events FROM user_day_raw")
    first, last = str(checked.min()), str(checked.max())
    return EventsFile(path=path, rows=int(rows), user_days=int(user_days), first_date=first,
                      last_date=last)


def batches(path: Path, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The file in bounded batches, CSV cells as text (as :func:`ltvcore.data.io.read_table`)."""
    fmt = io._format(path)
    try:
        if fmt == "csv":
            names = io._csv_header(path)
            options = pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False, null_values=[], auto_dict_encode=False,
                include_columns=columns or [])
            with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK),
                                convert_options=options) as reader:
                for batch in reader:
                    yield pa.Table.from_batches([batch])
        else:
            parquet = pq.ParquetFile(path)
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, UnicodeDecodeError) as exc:
        kind = "CSV" if fmt == "csv" else "Parquet"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot be read as {kind}: {first[:200]}", file=path.name) from None


_RULES = {"user_id": io._text, "event_date": io._dates, "revenue": io._amounts}


def _locate(path: Path, fmt: str, column: str) -> None:
    """Raise the rule's error for the first bad row of ``column`` (1-based over the file)."""
    offset = 0
    for table in batches(path, [column]):
        try:
            _RULES[column](table, column, path.name)
        except InputError as error:
            raise InputError(error.reason, file=error.file, column=error.column,
                             row=None if error.row is None else error.row + offset) from None
        offset += table.num_rows
