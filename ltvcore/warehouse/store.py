"""A local warehouse (the layout of :mod:`ltvcore.warehouse.layout`): ingest, refresh, open.

* :meth:`Warehouse.ingest` validates files by the input rules and adds them: events split by
  date into ``events/event_date=D/part-<digest>.parquet``, installs and spend as one part each.
  A part is named by the digest of the file it came from, so ingesting the same file twice
  changes nothing.
* :meth:`Warehouse.refresh` runs ``sql/user_day.sql`` for each date whose ``events/`` files
  differ from what ``state.json`` records, and only those: a new day costs one day's work, a late
  file for an old date re-aggregates that date alone.
* :func:`open_warehouse` gives a forecast's :class:`~ltvcore.warehouse.inputs.Inputs` over the
  aggregates; the run is named by ``state.json``'s digest, so nothing is hashed at request time.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ltvcore.data import io
from ltvcore.errors import InputError
from ltvcore.files import atomic_write, sha256_file
from ltvcore.runs.ids import combine_digests
from ltvcore.warehouse import installs as installs_table
from ltvcore.warehouse import layout
from ltvcore.warehouse.engine import connect, one
from ltvcore.warehouse.events import estimated_rows, load_events
from ltvcore.warehouse.inputs import Inputs, _index
from ltvcore.warehouse.layout import is_warehouse
from ltvcore.warehouse.queries import query

__all__ = ["Refresh", "Warehouse", "is_warehouse", "open_warehouse"]

PART_DIGEST = 16  # hex characters of a source file's sha256 in its part names


@dataclass
class Refresh:
    """What one refresh did: dates aggregated (new or changed), dates unchanged, seconds."""

    aggregated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    digest: str = ""


def _literal(path: Path | str) -> str:
    return str(path).replace("'", "''")


class Warehouse:
    """A warehouse directory (created on first ingest)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- layout ------------------------------------------------------------------------------
    def _state(self) -> dict:
        return layout.read_state(self.root)

    def _event_dates(self) -> dict[str, list[str]]:
        return layout.event_parts(self.root)

    def stale(self) -> list[str]:
        """Dates whose events changed since the last refresh (or whose aggregate is gone)."""
        return layout.stale_dates(self.root)

    def _parts(self, table: str) -> list[Path]:
        folder = self.root / table
        return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []

    # -- ingest ------------------------------------------------------------------------------
    def ingest(self, events: str | Path | None = None, installs: str | Path | None = None,
               spend: str | Path | None = None) -> dict[str, object]:
        """Validate and add files; returns, per role, the dates (events) or rows added, or
        ``"unchanged"`` when that exact file was ingested before."""
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / layout.MARKER
        if not marker.exists():
            atomic_write(marker, json.dumps({"format": layout.FORMAT}).encode() + b"\n")
        done: dict[str, object] = {}
        if installs is not None:
            done["installs"] = self._ingest_table(layout.INSTALLS, Path(installs),
                                                  io.read_installs)
        if spend is not None:
            done["spend"] = self._ingest_table(layout.SPEND, Path(spend), io.read_spend)
        if events is not None:
            done["events"] = self._ingest_events(Path(events))
        return done

    def _ingest_table(self, table: str, path: Path, read) -> object:
        frame = read(path)  # validated: installs and spend are one row per user / campaign
        name = f"part-{sha256_file(path)[:PART_DIGEST]}.parquet"
        target = self.root / table / name
        if target.exists():
            return "unchanged"
        if table == layout.INSTALLS:
            self._check_new_installs(frame, path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{name}.tmp")
        frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        rows = pa.Table.from_pandas(frame, preserve_index=False)
        if "install_date" in rows.column_names:  # a date, as the interface and Glue say
            index = rows.column_names.index("install_date")
            rows = rows.set_column(index, "install_date", rows.column(index).cast(pa.date32()))
        pq.write_table(rows, temporary, compression="zstd")
        os.replace(temporary, target)
        return len(frame)

    def _check_new_installs(self, frame: pd.DataFrame, name: str) -> None:
        """A user already installed in another part is a duplicate install row."""
        parts = self._parts(layout.INSTALLS)
        if not parts:
            return
        con = connect()
        con.register("new_installs", frame[["user_id"]])
        files = ", ".join(f"'{_literal(p)}'" for p in parts)
        clash = con.execute(
            f"SELECT n.user_id FROM new_installs AS n JOIN read_parquet([{files}]) AS o "
            "ON n.user_id = o.user_id LIMIT 1").fetchall()
        if clash:
            user = clash[0][0]
            row = int(frame.index[frame["user_id"] == user][0]) + 1
            raise InputError(f"duplicate install row for user {io._shown(user)} (already in the "
                             "warehouse)", file=name, column="user_id", row=row)

    def _ingest_events(self, path: Path) -> object:
        con = connect(estimated_rows(path))
        summary = load_events(con, path)  # the rules, in SQL; raises before anything is written
        digest = sha256_file(path)[:PART_DIGEST]
        current = self._event_dates()
        if any(f"part-{digest}.parquet" in parts for parts in current.values()):
            return "unchanged"
        staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=self.root))
        try:
            # One scan writes every date's part; a date's file appears only once complete.
            fmt = io._format(path)
            source = _typed_events(fmt, path)
            con.execute("SET preserve_insertion_order = true")
            con.execute(
                f"COPY (SELECT user_id, revenue, event_date FROM {source} ORDER BY event_date, "
                f"user_id) TO '{_literal(staging)}' (FORMAT parquet, COMPRESSION zstd, "
                f"PARTITION_BY (event_date), FILENAME_PATTERN 'part-{digest}')")
            dates = []
            for folder in sorted(staging.iterdir()):
                date = layout.date_of(folder.name)
                if date is None:
                    continue
                target = self.root / layout.partition(layout.EVENTS, date)
                target.mkdir(parents=True, exist_ok=True)
                (written,) = list(folder.glob("*.parquet"))
                os.replace(written, target / f"part-{digest}.parquet")
                dates.append(date)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {"rows": summary.rows, "dates": dates}

    # -- refresh -----------------------------------------------------------------------------
    def refresh(self) -> Refresh:
        """Aggregate the new and changed dates into ``user_day/``; rewrite ``state.json``."""
        if not is_warehouse(self.root):
            raise InputError(f"{self.root} is not a warehouse (no {layout.MARKER}): "
                             "create it with ltv warehouse ingest")
        started = time.perf_counter()
        state = self._state()
        recorded = dict(state.get("dates", {}))
        current = self._event_dates()
        report = Refresh()
        con = connect()
        con.execute("SET preserve_insertion_order = true")  # aggregates written in key order
        for date, parts in current.items():
            if recorded.get(date, {}).get("sources") == parts \
                    and (self.root / layout.partition(layout.USER_DAY, date) / layout.AGGREGATE_FILE).is_file():
                report.unchanged += 1
                continue
            recorded[date] = self._aggregate(con, date, parts)
            report.aggregated.append(date)
        for date in [d for d in recorded if d not in current]:
            shutil.rmtree(self.root / layout.partition(layout.USER_DAY, date), ignore_errors=True)
            del recorded[date]
            report.removed.append(date)
        tables = {t: [p.name for p in self._parts(t)] for t in (layout.INSTALLS, layout.SPEND)}
        digest = combine_digests({
            "events": combine_digests({d: v["sha256"] for d, v in recorded.items()}),
            **{t: combine_digests({n: n for n in names}) for t, names in tables.items() if names},
        })
        state = {"format": layout.FORMAT, "dates": dict(sorted(recorded.items())),
                 **{t: names for t, names in tables.items()}, "digest": digest}
        atomic_write(self.root / layout.STATE, json.dumps(state, indent=1).encode() + b"\n")
        report.seconds = time.perf_counter() - started
        report.digest = digest
        return report

    def _aggregate(self, con, date: str, parts: list[str]) -> dict:
        folder = self.root / layout.partition(layout.EVENTS, date)
        files = ", ".join(f"'{_literal(folder / p)}'" for p in parts)
        events = (f"(SELECT user_id, revenue, DATE '{date}' AS event_date "
                  f"FROM read_parquet([{files}]))")
        sql = query("user_day", events=events, first=date, last=date)
        target = self.root / layout.partition(layout.USER_DAY, date)
        target.mkdir(parents=True, exist_ok=True)
        temporary = target / f".{layout.AGGREGATE_FILE}.tmp"
        con.execute(f"COPY (SELECT user_id, revenue, events FROM ({sql}) ORDER BY user_id) "
                    f"TO '{_literal(temporary)}' (FORMAT parquet, COMPRESSION zstd)")
        os.replace(temporary, target / layout.AGGREGATE_FILE)
        rows = one(con, f"SELECT COUNT(*) FROM read_parquet('{_literal(target / layout.AGGREGATE_FILE)}')")[0]
        return {"sources": parts, "sha256": sha256_file(target / layout.AGGREGATE_FILE),
                "user_days": int(rows)}

    def status(self) -> dict:
        state = self._state()
        dates = sorted(state.get("dates", {}))
        return {"warehouse": str(self.root), "dates": len(dates),
                "first_date": dates[0] if dates else None, "last_date": dates[-1] if dates else None,
                "user_days": sum(v.get("user_days", 0) for v in state.get("dates", {}).values()),
                "installs_parts": len(state.get(layout.INSTALLS, [])),
                "spend_parts": len(state.get(layout.SPEND, [])),
                "stale_dates": self.stale(), "digest": state.get("digest")}


def _typed_events(fmt: str, path: Path) -> str:
    """The (already validated) events file as typed columns."""
    from ltvcore.warehouse.events import _schema, _source

    _, names, _ = _schema(path)
    source = _source(fmt, path, names)
    return (f"(SELECT CAST(user_id AS VARCHAR) AS user_id, CAST(event_date AS DATE) AS event_date, "
            f"CAST(revenue AS DOUBLE) AS revenue FROM {source})")


def open_warehouse(root: str | os.PathLike[str]) -> Inputs:
    """A forecast's inputs over a refreshed warehouse's aggregates (nothing raw is read)."""
    warehouse = Warehouse(root)
    name = Path(root).name or str(root)
    state = layout.fresh_state(root)
    con = connect(sum(int(v.get("user_days", 0)) for v in state["dates"].values()))
    aggregates = _literal(warehouse.root / layout.USER_DAY / "*" / layout.AGGREGATE_FILE)
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW events_day AS
        SELECT user_id, event_date, revenue, events
        FROM read_parquet('{aggregates}', hive_partitioning = true,
                          hive_types = {{'event_date': DATE}})
    """)
    names = {"events": f"{name}/{layout.EVENTS}"}
    columns = None
    installs = warehouse._parts(layout.INSTALLS)
    if installs:
        names["installs"] = f"{name}/{layout.INSTALLS}"
        columns = installs_table.from_parts(con, installs)
    spend = None
    spend_parts = warehouse._parts(layout.SPEND)
    if spend_parts:
        names["spend"] = f"{name}/{layout.SPEND}"
        frames = [pd.read_parquet(p) for p in spend_parts]
        spend = pd.concat(frames).groupby("campaign", as_index=False, sort=True)["spend"].sum()
    dates = sorted(state["dates"])
    inputs = Inputs(con=con, installs_columns=columns, spend=spend, names=names,
                    first_event=dates[0], last_event=dates[-1], digest=state["digest"])
    return _index(inputs)
