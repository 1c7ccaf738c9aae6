"""The embedded engine: one DuckDB connection per forecast, bounded in memory and threads.

DuckDB spills joins and aggregates to ``temp_directory`` beyond ``memory_limit``, which is what
keeps a forecast's memory bounded by its aggregates rather than by the raw events. The limits
are settings (``LTV_DUCKDB_MEMORY``, ``LTV_DUCKDB_THREADS``) because the right values depend on
the machine, not on the data.
"""

from __future__ import annotations

import os
import tempfile

import duckdb

__all__ = ["MEMORY_ENV", "THREADS_ENV", "connect"]

MEMORY_ENV = "LTV_DUCKDB_MEMORY"
THREADS_ENV = "LTV_DUCKDB_THREADS"
DEFAULT_MEMORY = "1GB"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the product's limits."""
    con = duckdb.connect(":memory:")
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
    spill = os.path.join(tempfile.gettempdir(), "ltv-duckdb")
    con.execute(f"SET temp_directory = '{spill}'")
    return con


def _memory() -> str:
    value = os.environ.get(MEMORY_ENV, DEFAULT_MEMORY).strip()
    number = value.rstrip("KMGTBkmgtib ")
    if not number.replace(".", "", 1).isdigit():
        return DEFAULT_MEMORY
    return value


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The first row of a query (or ``None``), with the result consumed: DuckDB 2 refuses
    other work on a connection while a result is only partly fetched."""
    rows = con.execute(sql).fetchall()
    return rows[0] if rows else None  # type: ignore[return-value]
