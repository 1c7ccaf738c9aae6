"""A warehouse's key layout: the same under a local directory and under an S3 prefix.

::

    <warehouse>/warehouse.json                                 marks a warehouse (format version)
    <warehouse>/events/event_date=YYYY-MM-DD/part-*.parquet    raw events (user_id, revenue), by date
    <warehouse>/installs/part-*.parquet                        one row per user
    <warehouse>/spend/part-*.parquet                           campaign, spend
    <warehouse>/user_day/event_date=YYYY-MM-DD/data.parquet    daily aggregate (sql/user_day.sql)
    <warehouse>/state.json                                     what each aggregate was built from

Any writer of date-partitioned Parquet may add ``events/`` files (``ltv warehouse ingest``,
Firehose with dynamic partitioning, a Spark job); ``refresh`` re-aggregates exactly the dates
whose ``events/`` files changed since ``state.json`` was written. ``state.json`` holds, per
date, the source files' names (content-addressed for ingested files, or the ETag on S3) and the
aggregate's sha256, plus the digests of installs and spend and one combined ``digest``: what a
run is named by, read without touching the data.

Pure standard library: the API reads a warehouse's state without DuckDB or pandas.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

__all__ = ["AGGREGATE_FILE", "EVENTS", "INSTALLS", "MARKER", "SPEND", "STATE", "USER_DAY",
           "date_of", "event_parts", "fresh_state", "is_warehouse", "partition", "read_state",
           "stale_dates"]

MARKER = "warehouse.json"
STATE = "state.json"
EVENTS = "events"
INSTALLS = "installs"
SPEND = "spend"
USER_DAY = "user_day"
AGGREGATE_FILE = "data.parquet"
FORMAT = 1

_PARTITION = re.compile(r"event_date=([0-9]{4}-[0-9]{2}-[0-9]{2})")


def partition(table: str, date: str) -> str:
    """The folder (key prefix, no trailing slash) of one date of ``events`` or ``user_day``."""
    return f"{table}/event_date={date}"


def date_of(folder_name: str) -> str | None:
    """``YYYY-MM-DD`` of a partition folder name such as ``event_date=2026-02-01``."""
    found = _PARTITION.fullmatch(folder_name)
    return found.group(1) if found else None


def read_state(root: str | os.PathLike[str]) -> dict:
    """``state.json`` of a local warehouse (empty before its first refresh)."""
    path = Path(root) / STATE
    if not path.is_file():
        return {"dates": {}, "digest": None}
    return json.loads(path.read_text())


def event_parts(root: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Each date's ``events/`` part names, sorted: what its aggregate is built from."""
    folder = Path(root) / EVENTS
    if not folder.is_dir():
        return {}
    found = {}
    for child in sorted(folder.iterdir()):
        date = date_of(child.name)
        if date is None or not child.is_dir():
            continue
        parts = sorted(p.name for p in child.iterdir()
                       if p.suffix == ".parquet" and not p.name.startswith("."))
        if parts:
            found[date] = parts
    return found


def stale_dates(root: str | os.PathLike[str]) -> list[str]:
    """Dates whose events changed (or disappeared) since the last refresh. A copy of the
    aggregates alone (no ``events/``, as a forecast job downloads them) has none."""
    if not (Path(root) / EVENTS).is_dir():
        return []
    recorded = read_state(root).get("dates", {})
    current = event_parts(root)
    changed = [d for d, parts in current.items() if recorded.get(d, {}).get("sources") != parts]
    return sorted(changed + [d for d in recorded if d not in current])


def is_warehouse(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / MARKER).is_file()


def fresh_state(root: str | os.PathLike[str]) -> dict:
    """``state.json``, refusing a warehouse with events not yet aggregated (one line, naming
    the dates and the command that aggregates them). Reads no data: what names a run."""
    from ltvcore.errors import InputError

    name = Path(root).name or str(root)
    if not is_warehouse(root):
        raise InputError(f"not a warehouse (no {MARKER})", file=name)
    stale = stale_dates(root)
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        raise InputError(f"events of {shown} are not aggregated yet: run ltv warehouse refresh "
                         f"{root}", file=name)
    state = read_state(root)
    if not state.get("dates"):
        raise InputError("the warehouse holds no events", file=name)
    return state
