"""A forecast's inputs held by DuckDB, and the few arrays the models are built from.

The table ``installs`` (one row per user, numbered ``iu`` in ``user_id`` order; derived from
first events when no installs are given) stays in DuckDB; the events summed per user and day
become three arrays (user number, date, revenue) in (user, date) order, the aggregate every
model is built from. The spend table is small and stays a frame. :func:`load_inputs` reads
files (every rule of docs/interface.md,
inputs), :func:`from_frames` takes tables already in memory (simulators, benchmarks), and
:func:`ltvcore.warehouse.store.open_warehouse` a warehouse's daily aggregates: all three end in
:func:`_index`, so every source gives the models the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ltvcore.data import io
from ltvcore.errors import InputError
from ltvcore.warehouse import installs as installs_table
from ltvcore.warehouse.engine import connect, one
from ltvcore.warehouse.events import batches, estimated_rows, load_events

__all__ = ["DayArrays", "Inputs", "from_frames", "load_inputs"]

BATCH = 1 << 20  # user-days per batch fetched from DuckDB


@dataclass(frozen=True)
class DayArrays:
    """Every user-day as arrays in (user, date) order: ``user`` is ``iu``, ``date`` days
    since 1970-01-01; and each user's install date (``install``, by ``iu``)."""

    user: np.ndarray
    date: np.ndarray
    revenue: np.ndarray
    install: np.ndarray


@dataclass
class Inputs:
    """Validated inputs in a DuckDB connection (tables ``installs`` and ``user_day``).

    ``installs_columns`` lists the installs file's columns (``None`` when there is none);
    ``paths`` the files read, by role, for messages that point at a row; ``digest`` the
    aggregates' digest when the source knows it (a warehouse).
    """

    con: duckdb.DuckDBPyConnection
    installs_columns: list[str] | None
    spend: pd.DataFrame | None
    names: dict = field(default_factory=dict)
    first_event: str = ""
    last_event: str = ""
    paths: dict = field(default_factory=dict)
    digest: str | None = None
    _arrays: DayArrays | None = None

    @property
    def has_installs(self) -> bool:
        return self.installs_columns is not None

    def column(self, name: str) -> str:
        """The quoted SQL name of installs column ``name``."""
        return installs_table.segment_name(self.installs_columns or list(installs_table.FIXED), name)

    def arrays(self) -> DayArrays:
        """The user-days and install dates as numpy arrays (set when the inputs are read)."""
        assert self._arrays is not None, "inputs are indexed when read"
        return self._arrays

    def user_days(self) -> str:
        """Register the user-days as the DuckDB view ``user_day`` (user_id, event_date,
        revenue), for queries such as the cohort table; returns its name."""
        days = self.arrays()
        ids = self.con.sql("SELECT user_id FROM installs ORDER BY iu").to_arrow_table().column(0)
        self.con.register("user_day", pa.table({
            "user_id": ids.combine_chunks().take(pa.array(days.user)),
            "event_date": pa.array(days.date, type=pa.int32()).cast(pa.date32()),
            "revenue": pa.array(days.revenue, type=pa.float64())}))
        return "user_day"

    def first_install(self) -> tuple[str, int | None]:
        """The earliest install date and, with an installs file, its first 1-based row."""
        first = str(one(self.con, "SELECT CAST(MIN(install_date) AS VARCHAR) FROM installs")[0])
        path = self.paths.get("installs")
        if path is None:
            return first, None
        offset = 0
        for table in batches(path, ["install_date"]):
            days = io._dates(table, "install_date", path.name)
            hit = np.flatnonzero(days == np.datetime64(first, "D"))
            if hit.size:
                return first, offset + int(hit[0]) + 1
            offset += table.num_rows
        return first, None


def load_inputs(events: str | Path, installs: str | Path | None = None,
                spend: str | Path | None = None) -> Inputs:
    """Read and validate the input files (docs/interface.md, inputs); ``events`` may also be
    a warehouse directory, which brings its own installs and spend."""
    from ltvcore.warehouse.layout import is_warehouse

    if is_warehouse(events):
        if installs is not None or spend is not None:
            raise InputError("a warehouse brings its own installs and spend: ingest them into it "
                             "(ltv warehouse ingest) instead of passing --installs / --spend",
                             file=Path(events).name)
        from ltvcore.warehouse.store import open_warehouse

        return open_warehouse(events)
    con = connect(estimated_rows(events))
    names = {"events": Path(events).name}
    paths = {"events": Path(events)}
    summary = load_events(con, events)
    columns = None
    if installs is not None:
        names["installs"] = Path(installs).name
        paths["installs"] = Path(installs)
        columns = installs_table.load_installs(con, installs)
    spend_frame = None
    if spend is not None:
        names["spend"] = Path(spend).name
        spend_frame = io.read_spend(spend)
    inputs = Inputs(con=con, installs_columns=columns, spend=spend_frame, names=names,
                    first_event=summary.first_date, last_event=summary.last_date, paths=paths)
    return _index(inputs)


def from_frames(events: pd.DataFrame, installs: pd.DataFrame | None = None,
                spend: pd.DataFrame | None = None, names: dict | None = None) -> Inputs:
    """Inputs from tables already in memory and already valid (simulated data, benchmarks)."""
    con = connect()
    frame = pa.table({"user_id": pa.array(events["user_id"].astype(str).to_numpy(), type=pa.string()),
                      "event_date": pa.array(events["event_date"].to_numpy().astype("datetime64[D]"),
                                             type=pa.date32()),
                      "revenue": pa.array(events["revenue"].to_numpy(dtype=float))})
    con.register("events_frame", frame)
    con.execute("""
        CREATE OR REPLACE TABLE events_frame_day AS
        SELECT user_id, event_date, SUM(revenue) AS revenue, COUNT(*) AS events
        FROM events_frame GROUP BY ALL
    """)
    con.unregister("events_frame")
    con.execute("CREATE OR REPLACE TEMP VIEW events_day AS SELECT * FROM events_frame_day")
    columns = None
    if installs is not None:
        inst = installs.copy()
        if "campaign" not in inst.columns:
            inst["campaign"] = "all"
        ordered = [*installs_table.FIXED, *[c for c in inst.columns if c not in installs_table.FIXED]]
        columns = installs_table.from_frame(con, inst[ordered])
    first, last = one(con, "SELECT CAST(MIN(event_date) AS VARCHAR), "
                           "CAST(MAX(event_date) AS VARCHAR) FROM events_day")
    spend_frame = None
    if spend is not None:
        spend_frame = spend.groupby("campaign", as_index=False, sort=True)["spend"].sum()
    inputs = Inputs(con=con, installs_columns=columns, spend=spend_frame,
                    names=dict(names or {"events": "events", "installs": "installs"}),
                    first_event=first, last_event=last)
    return _index(inputs)


def _index(inputs: Inputs) -> Inputs:
    """The user-day arrays from the view ``events_day``: each user-day joined once to its
    user's number, in (user, date) order, enforcing the cross-file rules (every event's user
    has an install row; no event precedes its user's install)."""
    con = inputs.con
    if not inputs.has_installs:
        installs_table.from_events(con)
    rows = one(con, "SELECT COUNT(*) FROM events_day")[0]
    reader = con.sql("""
        SELECT i.iu, e.event_date, e.revenue
        FROM events_day AS e LEFT JOIN installs AS i ON e.user_id = i.user_id
        ORDER BY i.iu NULLS FIRST, e.event_date
    """).to_arrow_reader(BATCH)
    # Filled batch by batch: the arrays are the only full copy of the user-days in memory.
    user = np.empty(rows, dtype=np.int32)
    date = np.empty(rows, dtype=np.int32)
    revenue = np.empty(rows, dtype=np.float64)
    name = inputs.names["events"]
    start = 0
    for batch in reader:
        if batch.column(0).null_count:
            reader.close()
            row, who, _ = _first_event_row(inputs, "i.user_id IS NULL")
            raise InputError(f"user '{who}' has events but no install row", file=name,
                             column="user_id", row=row)
        stop = start + batch.num_rows
        user[start:stop] = batch.column(0).to_numpy()
        date[start:stop] = batch.column(1).cast(pa.int32()).to_numpy()
        revenue[start:stop] = batch.column(2).to_numpy()
        start = stop
    arrays = DayArrays(user=user, date=date, revenue=revenue,
                       install=installs_table.install_days(con))
    if (arrays.date < arrays.install[arrays.user]).any():
        row, who, installed = _first_event_row(inputs, "e.event_date < i.install_date")
        raise InputError(f"user '{who}' has an event before their install date ({installed})",
                         file=name, column="event_date", row=row)
    con.execute("DROP VIEW events_day")
    # The day-level tables are in the arrays now: their memory goes back to DuckDB's pool.
    con.execute("DROP TABLE IF EXISTS user_day_raw")
    con.execute("DROP TABLE IF EXISTS events_frame_day")
    inputs._arrays = arrays
    return inputs


def _first_event_row(inputs: Inputs, condition: str) -> tuple[int | None, str, str]:
    """The first events-file row (1-based) joined to its install row where ``condition``
    holds: streamed in bounded batches, so it costs no more memory than one batch. Without a
    file (a warehouse's aggregates) the first such user-day in key order, with no row."""
    if "events" not in inputs.paths:
        hit = one(inputs.con,
                  "SELECT e.user_id, CAST(i.install_date AS VARCHAR) FROM events_day AS e "
                  f"LEFT JOIN installs AS i ON e.user_id = i.user_id WHERE {condition} "
                  "ORDER BY e.user_id, e.event_date LIMIT 1")
        return None, hit[0], hit[1]
    offset = 0
    for table in batches(inputs.paths["events"], ["user_id", "event_date"]):
        frame = pa.table({
            "user_id": io._as_text(table, "user_id", inputs.names["events"]),
            "event_date": pa.array(io._dates(table, "event_date", inputs.names["events"]),
                                   type=pa.date32()),
            "n": pa.array(np.arange(table.num_rows), type=pa.int64()),
        })
        inputs.con.register("events_batch", frame)
        hit = one(inputs.con,
                  "SELECT e.n, e.user_id, CAST(i.install_date AS VARCHAR) FROM events_batch AS e "
                  f"LEFT JOIN installs AS i ON e.user_id = i.user_id WHERE {condition} "
                  "ORDER BY e.n LIMIT 1")
        inputs.con.unregister("events_batch")
        if hit is not None:
            return offset + int(hit[0]) + 1, hit[1], hit[2]
        offset += table.num_rows
    raise AssertionError("a violation counted in SQL was not found in the file")
