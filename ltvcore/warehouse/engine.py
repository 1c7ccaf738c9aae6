"""The embedded engine: one DuckDB connection per forecast, bounded in memory and threads.

DuckDB spills joins and aggregates to ``temp_directory`` beyond ``memory_limit``, which is what
keeps a forecast's memory bounded by its aggregates rather than by the raw events. The limits
are settings (``LTV_DUCKDB_MEMORY``, ``LTV_DUCKDB_THREADS``) because the right values depend on
the machine, not on the data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref

import duckdb

__all__ = ["MEMORY_ENV", "THREADS_ENV", "connect"]

MEMORY_ENV = "LTV_DUCKDB_MEMORY"
THREADS_ENV = "LTV_DUCKDB_THREADS"
DEFAULT_MEMORY = "1GB"
#: Input rows an in-memory database always takes; beyond, as many as the memory limit holds at
#: :data:`BYTES_PER_ROW` (a day-level row with its share of the aggregation's working memory).
IN_MEMORY_ROWS = 12_000_000
BYTES_PER_ROW = 100
_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "B": 1}


def connect(rows: int = 0) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the product's limits, for about ``rows`` input rows.

    Up to :data:`IN_MEMORY_ROWS` the database is in memory; beyond, it is a scratch file,
    because an in-memory database cannot evict its tables' blocks, so a day-level table larger
    than the memory limit would fail instead of spilling (a file costs writes, so small inputs
    do without). The scratch folder goes with the connection.
    """
    scratch = tempfile.mkdtemp(prefix="ltv-duckdb-")
    in_memory = max(IN_MEMORY_ROWS, _bytes(_memory()) // BYTES_PER_ROW)
    database = os.path.join(scratch, "work.duckdb") if rows > in_memory else ":memory:"
    con = duckdb.connect(database)
    weakref.finalize(con, shutil.rmtree, scratch, True)
    con.execute(f"SET memory_limit = '{_memory()}'")
    threads = os.environ.get(THREADS_ENV)
    if threads and threads.isdigit() and int(threads) > 0:
        con.execute(f"SET threads = {int(threads)}")
    # Insertion order is never relied on (every query that feeds a model orders its rows), and
    # keeping it costs memory on large scans.
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    # DuckDB 2.0.1's type pushdown turns TRY_CAST over a CSV column into the reader's strict
    # conversion, so one bad revenue cell aborts the scan instead of counting as a violation.
    con.execute("SET disabled_optimizers = 'type_pushdown'")
    con.execute(f"SET temp_directory = '{os.path.join(scratch, 'spill')}'")
    return con


def _bytes(setting: str) -> int:
    """``1GB``, ``953.6 MiB``… as bytes (0 when it cannot be read)."""
    text = setting.strip().upper().replace(" ", "")
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * _UNITS[unit])
            except ValueError:
                return 0
    return 0


def _memory() -> str:
    """``LTV_DUCKDB_MEMORY``, else half the machine's memory: DuckDB's hash aggregate over
    many user-days needs room in memory even when it spills (1 GB failed at 100M events)."""
    value = os.environ.get(MEMORY_ENV, "").strip()
    number = value.rstrip("KMGTBkmgtib ")
    if value and number.replace(".", "", 1).isdigit():
        return value
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_MEMORY
    return f"{max(total // 2 // 2**20, 1024)}MB"


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The first row of a query (or ``None``), with the result consumed: DuckDB 2 refuses
    other work on a connection while a result is only partly fetched."""
    rows = con.execute(sql).fetchall()
    return rows[0] if rows else None  # type: ignore[return-value]
