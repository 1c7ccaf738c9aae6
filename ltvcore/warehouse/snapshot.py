"""A run's input snapshot: the aggregates its result depends on, cut at as-of, as Parquet.

``inputs/events.parquet`` holds the events summed per user and day (a valid events file: the
models never see finer data, so a run reproduced from it is identical), ``installs.parquet`` the
users installed by as-of and ``spend.parquet`` the spend per campaign. Rows are written in
(user, date) order, so the same data always give the same bytes and the same digest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ltvcore.warehouse.inputs import Inputs

__all__ = ["snapshot_tables", "write_snapshot", "write_tables"]


def snapshot_tables(inputs: Inputs, as_of: str) -> dict[str, pa.Table]:
    """The snapshot's tables by role, read from DuckDB (call it where the connection is used)."""
    days = inputs.arrays()
    kept = days.date <= int(np.datetime64(as_of, "D").astype(np.int64))
    ids = inputs.con.sql("SELECT user_id FROM installs ORDER BY iu").to_arrow_table().column(0)
    tables = {"events": pa.table({
        "user_id": ids.combine_chunks().take(pa.array(days.user[kept])),
        "event_date": pa.array(days.date[kept], type=pa.int32()).cast(pa.date32()),
        "revenue": pa.array(days.revenue[kept], type=pa.float64()),
    })}
    if inputs.installs_columns is not None:
        columns = ", ".join(inputs.column(c) for c in inputs.installs_columns)
        table = inputs.con.sql(f"SELECT {columns} FROM installs WHERE install_date <= DATE "
                               f"'{as_of}' ORDER BY iu").to_arrow_table()
        tables["installs"] = table.rename_columns(inputs.installs_columns)
    if inputs.spend is not None:
        tables["spend"] = pa.Table.from_pandas(inputs.spend, preserve_index=False)
    return tables


def write_tables(tables: dict[str, pa.Table], staging: Path) -> dict[str, Path]:
    """Write snapshot tables under ``staging/inputs/`` (pure pyarrow: safe in a thread)."""
    folder = staging / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, table in tables.items():
        paths[role] = folder / f"{role}.parquet"
        pq.write_table(table, paths[role], compression="zstd")
    return paths


def write_snapshot(inputs: Inputs, as_of: str, staging: Path) -> dict[str, Path]:
    """Write the snapshot under ``staging/inputs/``; returns the paths by role."""
    return write_tables(snapshot_tables(inputs, as_of), staging)
