"""A run's input snapshot: the aggregates its result depends on, cut at as-of, as Parquet.

``inputs/events.parquet`` holds the events summed per user and day (a valid events file: the
models never see finer data, so a run reproduced from it is identical), ``installs.parquet`` the
users installed by as-of and ``spend.parquet`` the spend per campaign. Rows are written in
(user, date) order, so the same data always give the same bytes and the same digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ltvcore.warehouse.inputs import Inputs

__all__ = ["EventsSnapshot", "snapshot_tables", "write_snapshot", "write_tables"]


#: User-days per row group of the events snapshot: a 300M-event snapshot is written in slices,
#: never held whole as text (the user ids alone would be several GB).
CHUNK_ROWS = 1 << 22


@dataclass
class EventsSnapshot:
    """The events summed per user and day, up to as-of, written slice by slice."""

    ids: pa.Array  # user_id by user number
    user: np.ndarray
    date: np.ndarray
    revenue: np.ndarray
    last_day: int

    def write(self, path: Path) -> None:
        schema = pa.schema([("user_id", pa.string()), ("event_date", pa.date32()),
                            ("revenue", pa.float64())])
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            for start in range(0, len(self.user), CHUNK_ROWS):
                part = slice(start, start + CHUNK_ROWS)
                kept = self.date[part] <= self.last_day
                writer.write_table(pa.table({
                    "user_id": self.ids.take(pa.array(self.user[part][kept])),
                    "event_date": pa.array(self.date[part][kept], type=pa.int32()).cast(pa.date32()),
                    "revenue": pa.array(self.revenue[part][kept], type=pa.float64()),
                }, schema=schema), row_group_size=CHUNK_ROWS)


def snapshot_tables(inputs: Inputs, as_of: str) -> dict[str, pa.Table | EventsSnapshot]:
    """The snapshot's tables by role, read from DuckDB (call it where the connection is used)."""
    days = inputs.arrays()
    ids = inputs.con.sql("SELECT user_id FROM installs ORDER BY iu").to_arrow_table().column(0)
    tables: dict[str, pa.Table | EventsSnapshot] = {"events": EventsSnapshot(
        ids=ids.combine_chunks(), user=days.user, date=days.date, revenue=days.revenue,
        last_day=int(np.datetime64(as_of, "D").astype(np.int64)))}
    if inputs.installs_columns is not None:
        columns = ", ".join(inputs.column(c) for c in inputs.installs_columns)
        table = inputs.con.sql(f"SELECT {columns} FROM installs WHERE install_date <= DATE "
                               f"'{as_of}' ORDER BY iu").to_arrow_table()
        tables["installs"] = table.rename_columns(inputs.installs_columns)
    if inputs.spend is not None:
        tables["spend"] = pa.Table.from_pandas(inputs.spend, preserve_index=False)
    return tables


def write_tables(tables: dict[str, pa.Table | EventsSnapshot], staging: Path) -> dict[str, Path]:
    """Write snapshot tables under ``staging/inputs/`` (pure pyarrow: safe in a thread)."""
    folder = staging / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, table in tables.items():
        paths[role] = folder / f"{role}.parquet"
        if isinstance(table, EventsSnapshot):
            table.write(paths[role])
        else:
            pq.write_table(table, paths[role], compression="zstd")
    return paths


def write_snapshot(inputs: Inputs, as_of: str, staging: Path) -> dict[str, Path]:
    """Write the snapshot under ``staging/inputs/``; returns the paths by role."""
    return write_tables(snapshot_tables(inputs, as_of), staging)
