"""The installs table in DuckDB: one row per user, numbered ``iu`` in ``user_id`` order.

A file is read by DuckDB and checked in SQL (blank ids, dates, duplicate users, blank
campaigns); segment labels that are empty become ``(missing)``, a segment of their own. When a
rule is broken, or a Parquet column has a type only the in-memory rules convert (booleans or
floats as labels), the file goes through :func:`ltvcore.data.io.read_installs`, which names the
first offending row: installs hold one row per user, never raw events.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ltvcore.data import io
from ltvcore.errors import InputError
from ltvcore.warehouse.engine import one
from ltvcore.warehouse.events import _source, csv_header

__all__ = ["FIXED", "SEGMENT", "from_events", "from_frame", "load_installs", "segment_name"]

FIXED = ("user_id", "install_date", "campaign")
#: Segment columns are stored under positional names: a header may name a column anything.
SEGMENT = "_ltv_segment_"


def segment_name(columns: list[str], name: str) -> str:
    """The quoted SQL name of installs column ``name``."""
    if name in FIXED:
        return f'"{name}"'
    return f'"{SEGMENT}{columns.index(name)}"'


def _finish(con: duckdb.DuckDBPyConnection, select: str) -> None:
    """``installs`` from a relation of user_id, install_date, campaign, segments…"""
    con.execute(f"""
        CREATE OR REPLACE TABLE installs AS
        SELECT CAST(row_number() OVER (ORDER BY user_id) - 1 AS INTEGER) AS iu, *
        FROM ({select})
    """)


def load_installs(con: duckdb.DuckDBPyConnection, path: str | Path) -> list[str]:
    """Validate an installs file into ``installs``; returns its columns in file order (the
    ``campaign`` column placed third, added as ``all`` when absent)."""
    path = Path(path)
    fmt = io._format(path)
    if not path.is_file():
        raise InputError("file not found", file=str(path))
    if fmt == "csv":
        names = csv_header(path)
    else:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError):
            return from_frame(con, io.read_installs(path))
        names = list(schema.names)
        io._unique_names(names, path.name)
        texts = {n for n in names if n != "install_date"}
        if any(not (pa.types.is_string(schema.field(n).type) or pa.types.is_integer(schema.field(n).type))
               for n in texts) or not _date_type(schema.field("install_date").type
                                                  if "install_date" in names else pa.string()):
            return from_frame(con, io.read_installs(path))  # the in-memory rules convert these
    if "user_id" not in names or "install_date" not in names:
        io.read_installs(path)  # names the missing column
    segments = [n for n in names if n not in FIXED]
    campaign = "CAST(campaign AS VARCHAR)" if "campaign" in names else "'all'"
    labels = ", ".join(
        f"COALESCE(NULLIF(CAST(\"{n.replace(chr(34), chr(34) * 2)}\" AS VARCHAR), ''), '(missing)') "
        f"AS {SEGMENT}{i + 3}" for i, n in enumerate(segments))
    try:
        con.execute(f"""
            CREATE OR REPLACE TABLE installs_raw AS
            SELECT CAST(user_id AS VARCHAR) AS user_id, install_date AS day, {campaign} AS campaign
                   {', ' + labels if labels else ''}
            FROM {_source(fmt, path, names)}
        """)
    except duckdb.Error as exc:
        io.read_installs(path)  # the in-memory reader names what it cannot read
        first = str(exc).splitlines()[0]
        raise InputError(f"cannot be read as {fmt.upper() if fmt == 'csv' else 'Parquet'}: "
                         f"{first[:200]}", file=path.name) from None
    rows, users, bad_users, bad_campaigns = one(con, r"""
        SELECT COUNT(*), COUNT(DISTINCT user_id),
               COUNT(*) FILTER (WHERE user_id IS NULL OR user_id = ''
                   OR ((ord(user_id[1]) <= 32 OR ord(user_id[1]) >= 128)
                       AND regexp_full_match(user_id, '\s*'))),
               COUNT(*) FILTER (WHERE campaign IS NULL OR campaign = ''
                   OR ((ord(campaign[1]) <= 32 OR ord(campaign[1]) >= 128)
                       AND regexp_full_match(campaign, '\s*')))
        FROM installs_raw""")
    days = con.sql("SELECT DISTINCT day FROM installs_raw").to_arrow_table()
    try:
        io._dates(days.rename_columns(["install_date"]), "install_date", path.name)
        valid_dates = True
    except InputError:
        valid_dates = False
    if rows == 0 or users != rows or bad_users or bad_campaigns or not valid_dates:
        con.execute("DROP TABLE installs_raw")
        io.read_installs(path)  # raises the rule's message naming the first offending row
        raise AssertionError("a violation counted in SQL passed the installs rules")
    columns = ["user_id", "install_date", "campaign", *segments]
    stored = ", ".join(f"{SEGMENT}{i + 3}" for i in range(len(segments)))
    _finish(con, "SELECT user_id, CAST(day AS DATE) AS install_date, campaign"
                 f"{', ' + stored if stored else ''} FROM installs_raw")
    con.execute("DROP TABLE installs_raw")
    return columns


def _date_type(kind: pa.DataType) -> bool:
    return pa.types.is_date(kind) or pa.types.is_timestamp(kind) or pa.types.is_string(kind)


def from_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> list[str]:
    """``installs`` from an already valid frame (user_id, install_date, campaign, segments)."""
    columns = list(frame.columns)
    table = pa.table({
        "user_id": pa.array(frame["user_id"].astype(str).to_numpy(), type=pa.string()),
        "install_date": pa.array(frame["install_date"].to_numpy().astype("datetime64[D]"),
                                 type=pa.date32()),
        "campaign": pa.array(frame["campaign"].astype(str).to_numpy(), type=pa.string()),
        **{f"{SEGMENT}{i}": pa.array(frame[c].astype(str).to_numpy(), type=pa.string())
           for i, c in enumerate(columns) if c not in FIXED},
    })
    con.register("installs_arrow", table)
    _finish(con, "SELECT * FROM installs_arrow")
    con.unregister("installs_arrow")
    return columns


def from_events(con: duckdb.DuckDBPyConnection) -> None:
    """Without an installs table a user's install date is their first event, their campaign
    ``all`` (``sql/first_events.sql``)."""
    from ltvcore.warehouse.queries import query

    _finish(con, query("first_events", user_day="events_day"))


def install_days(con: duckdb.DuckDBPyConnection) -> np.ndarray:
    """Each user's install date as days since 1970-01-01, indexed by ``iu``."""
    table = con.sql("SELECT install_date FROM installs ORDER BY iu").to_arrow_table()
    return table.column(0).combine_chunks().cast(pa.int32()).to_numpy()


def from_parts(con: duckdb.DuckDBPyConnection, files: list[Path]) -> list[str]:
    """``installs`` from a warehouse's installs parts (validated when ingested; a segment a
    part lacks is ``(missing)`` for its users)."""
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    source = f"read_parquet([{listed}], union_by_name = true)"
    names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    segments = [n for n in names if n not in FIXED]
    labels = ", ".join(
        f"COALESCE(NULLIF(CAST(\"{n.replace(chr(34), chr(34) * 2)}\" AS VARCHAR), ''), '(missing)') "
        f"AS {SEGMENT}{i + 3}" for i, n in enumerate(segments))
    _finish(con, f"SELECT CAST(user_id AS VARCHAR) AS user_id, CAST(install_date AS DATE) AS install_date, "
                 f"CAST(campaign AS VARCHAR) AS campaign{', ' + labels if labels else ''} FROM {source}")
    return [*FIXED, *segments]
