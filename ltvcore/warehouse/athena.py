"""The warehouse's daily aggregates on AWS: which dates to aggregate, the Athena statements
that aggregate them, and the state written once they have.

Every dataset folder under the warehouse prefix has the layout of :mod:`ltvcore.warehouse.layout`.
The daily refresh (``infra/warehouse.py``) is three steps around this module:

1. :func:`plan` lists each dataset's ``events/`` objects, groups them by ``event_date=`` folder
   and compares each date's objects (key and ETag) with ``state.json``: a date is aggregated when
   it is new or its objects changed (a late file re-aggregates that date only). For each such
   date it clears ``user_day/event_date=D/`` (``UNLOAD`` writes only into an empty location) and
   builds one statement, :func:`unload_statement`: ``sql/user_day.sql`` over the Glue ``events``
   table, in Trino's spelling (:func:`ltvcore.warehouse.queries.for_trino`), unloaded as Parquet.
2. Step Functions runs each statement on Athena (``athena:startQueryExecution.sync``).
3. :func:`commit` lists the aggregates Athena wrote (their ETags: nothing is downloaded) and
   writes ``state.json`` per dataset, plus :data:`MANIFEST`: the exact objects a forecast reads
   (aggregates, installs, spend, state), as a SageMaker manifest.

``state.json`` plays the local warehouse's part (:mod:`ltvcore.warehouse.store`): ``dates`` and
one ``digest``, what a run is named by. Per date the local one records part names and the
aggregate's sha256; on S3 the identities are ETags, which need no download (``"engine":
"athena"`` tells the two apart)::

    {"format": 1, "engine": "athena", "dataset": "demo",
     "dates": {"2026-01-01": {"sources": <digest of the events objects' keys and ETags>,
                              "files": 3, "aggregate": <digest of the user_day objects' ETags>,
                              "objects": {"<user_day object name>": "<ETag>"}}},
     "installs": <digest>, "spend": <digest>,            (when the dataset has them)
     "first_event_date": …, "last_event_date": …,
     "digest": <combine_digests of every date's aggregate, installs and spend>,
     "refreshed_at": …}

A date whose query failed is kept as ``{"failed": <reason>, …}``: :func:`verify_download` refuses
it (naming the date) rather than forecasting without it, and the next refresh plans it again.
The sources are kept as one digest per date, not as a list of object names: a Firehose stream
writes hundreds of objects a day, and every forecast request reads this file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltvcore.errors import InputError
from ltvcore.runs.ids import combine_digests
from ltvcore.warehouse import layout
from ltvcore.warehouse.queries import for_trino, query

__all__ = ["MANIFEST", "MAX_DATES", "Plan", "Warehouse", "commit", "plan", "read_state",
           "select_statement", "unload_statement", "verify_download"]

MANIFEST = "inputs.manifest"
"""A SageMaker manifest (``S3DataType: ManifestFile``) of the committed objects a forecast reads."""

MAX_DATES = 100
"""Dates per plan. Each travels through the state machine with its statement (up to about 1 KB
with a long dataset name; Step Functions holds 256 KiB of state) and costs about ten history
events (25,000 per execution): a longer backlog is planned again right after the commit, in the
same execution, for a bounded number of rounds (infra/warehouse.py)."""

STATE_FORMAT = 1
ENGINE = "athena"
# The API's dataset rule (ltvcore.api.models.DATASET_NAME; a test keeps the two equal): a folder
# name of letters, digits, '.', '_' and '-', so it is safe in a SQL string literal and a key.
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_REASON = 500
_UNLOAD = "UNLOAD ({select}) TO '{target}' WITH (format = 'PARQUET', compression = 'ZSTD')"


@dataclass(frozen=True)
class Warehouse:
    """Where the dataset folders are (``s3://bucket/prefix/<dataset>/``) and what the Glue
    catalog calls the events table (one table for every dataset, ``dataset`` a partition key)."""

    bucket: str
    prefix: str = "warehouse"
    database: str = "ltv_warehouse"
    events_table: str = "events"

    @property
    def root(self) -> str:
        """The key prefix of the dataset folders: ``"<prefix>/"``, or ``""`` at the bucket's root."""
        prefix = self.prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    def key(self, dataset: str, *parts: str) -> str:
        """The key of ``parts`` inside a dataset folder (``parts`` empty: the folder, with "/")."""
        return self.root + "/".join([dataset, *parts]) + ("" if parts else "/")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass
class Plan:
    """What :func:`plan` found: one item per date to aggregate (``dataset``, ``date``,
    ``sources``, ``files``, ``sql``), the committed dates whose events are gone, every dataset
    seen, and how many due dates were left for the next plan (over :data:`MAX_DATES`)."""

    datasets: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, str]] = field(default_factory=list)
    deferred: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"datasets": self.datasets, "items": self.items, "removed": self.removed,
                "deferred": self.deferred, "dates": len(self.items)}


# --------------------------------------------------------------------------- statements


def _dataset(name: str) -> str:
    if not DATASET_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"{name!r} is not a dataset name")
    return name


def _date(text: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    dt.date.fromisoformat(text)  # a calendar date, not only its shape
    return text


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):  # Glue lower-cases names; no quoting needed
        raise ValueError(f"{name!r} is not a Glue database or table name")
    return name


def select_statement(warehouse: Warehouse, dataset: str, date: str) -> str:
    """``sql/user_day.sql`` for one date of one dataset over the Glue events table, in Trino's
    spelling: the columns of a ``user_day/`` object (``user_id``, ``revenue``, ``events``)."""
    table = f"{_identifier(warehouse.database)}.{_identifier(warehouse.events_table)}"
    # The dataset filter sits next to the table: Athena's injected projection needs an equality
    # on the key, and the date filter of user_day.sql prunes the date projection to one folder.
    events = f"(SELECT user_id, revenue, event_date FROM {table} WHERE dataset = '{_dataset(dataset)}')"
    day = query("user_day", events=events, first=_date(date), last=date)
    # event_date is the partition folder's name, so it is not a column of the objects (as in
    # any Hive layout); one line without comments, because each statement travels through
    # Step Functions.
    return f"SELECT user_id, revenue, events FROM ({_compact(for_trino(day))}) AS user_day"


def _compact(trino_sql: str) -> str:
    import sqlglot

    return sqlglot.parse_one(trino_sql, read="trino").sql(dialect="trino", comments=False)


def unload_statement(warehouse: Warehouse, dataset: str, date: str) -> str:
    """The ``UNLOAD`` writing one date's aggregate to ``user_day/event_date=D/`` as Parquet.

    ``UNLOAD`` rather than ``INSERT INTO``: Athena's inserts ignore a projected table's
    ``storage.location.template``, and they only ever append; ``UNLOAD`` writes exactly where it
    is told and refuses a location that is not empty, so a date can never be counted twice.
    """
    target = warehouse.uri(warehouse.key(dataset, layout.partition(layout.USER_DAY, date))) + "/"
    return _UNLOAD.format(select=select_statement(warehouse, dataset, date), target=target)


# --------------------------------------------------------------------------- S3 listing


def _objects(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """Key (relative to ``prefix``) → ETag of the data objects under ``prefix``: folder markers
    and the names Athena skips (a path part starting with ``_`` or ``.``) are left out."""
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):]
            if not relative or relative.endswith("/"):
                continue
            if any(part.startswith(("_", ".")) for part in relative.split("/")):
                continue
            found[relative] = item["ETag"]
    return found


def _datasets(s3: Any, warehouse: Warehouse) -> list[str]:
    root = warehouse.root
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=warehouse.bucket, Prefix=root,
                                                            Delimiter="/"):
        for entry in page.get("CommonPrefixes", []):
            name = entry["Prefix"][len(root):].rstrip("/")
            if DATASET_NAME.fullmatch(name) and ".." not in name:
                names.append(name)
    return sorted(names)


def _by_date(objects: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The ``events/`` objects grouped by their ``event_date=YYYY-MM-DD`` folder."""
    dates: dict[str, dict[str, str]] = {}
    for relative, etag in objects.items():
        folder, _, name = relative.partition("/")
        date = layout.date_of(folder)
        if date is not None and name:
            dates.setdefault(date, {})[name] = etag
    return dates


def read_state(s3: Any, warehouse: Warehouse, dataset: str) -> dict[str, Any] | None:
    """The dataset's ``state.json``, or None before its first refresh."""
    try:
        body = s3.get_object(Bucket=warehouse.bucket, Key=warehouse.key(dataset, layout.STATE))["Body"]
    except s3.exceptions.NoSuchKey:
        return None
    with body:
        return dict(json.loads(body.read()))


def _delete(s3: Any, bucket: str, keys: Iterable[str]) -> None:
    keys = list(keys)
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
        batch = [{"Key": key} for key in keys[start:start + 1000]]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if response.get("Errors"):
            first = response["Errors"][0]
            raise RuntimeError(f"cannot delete s3://{bucket}/{first['Key']}: {first.get('Message')}")


# --------------------------------------------------------------------------- plan


def plan(s3: Any, warehouse: Warehouse, *, limit: int | None = None) -> Plan:
    """The dates to aggregate in every dataset: new, or whose ``events/`` objects changed.

    Clears the ``user_day/`` folder of each planned date (stale aggregates, or the leftovers of
    a failed ``UNLOAD``); at most ``limit`` (:data:`MAX_DATES`) dates, oldest first per dataset.
    """
    limit = MAX_DATES if limit is None else limit
    result = Plan(datasets=_datasets(s3, warehouse))
    due: list[tuple[str, str, str, int]] = []
    for dataset in result.datasets:
        state = read_state(s3, warehouse, dataset) or {}
        committed = state.get("dates", {})
        listed = _by_date(_objects(s3, warehouse.bucket, warehouse.key(dataset, layout.EVENTS) + "/"))
        for date, objects in sorted(listed.items()):
            sources = combine_digests(objects)
            if committed.get(date, {}).get("sources") != sources:
                due.append((dataset, date, sources, len(objects)))
        result.removed.extend({"dataset": dataset, "date": date}
                              for date in sorted(set(committed) - set(listed)))
    result.deferred = max(0, len(due) - limit)
    for dataset, date, sources, files in due[:limit]:
        folder = warehouse.key(dataset, layout.partition(layout.USER_DAY, date)) + "/"
        _delete(s3, warehouse.bucket, (folder + name for name in _all_objects(s3, warehouse.bucket, folder)))
        result.items.append({"dataset": dataset, "date": date, "sources": sources, "files": files,
                             "sql": unload_statement(warehouse, dataset, date)})
    return result


def _all_objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (relative), hidden names included: ``UNLOAD`` wants it empty."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"][len(prefix):] for item in page.get("Contents", []))
    return keys


# --------------------------------------------------------------------------- commit


def commit(s3: Any, warehouse: Warehouse, *, datasets: Iterable[str], results: Iterable[Mapping[str, Any]],
           removed: Iterable[Mapping[str, str]] = (), now: dt.datetime | None = None) -> dict[str, Any]:
    """Record what the queries wrote: ``state.json`` and :data:`MANIFEST` of every dataset.

    ``results`` has one entry per planned date: the plan's item (``dataset``, ``date``,
    ``sources``, ``files``) and either ``query_id`` (the ``UNLOAD`` succeeded) or ``error`` and
    ``cause``. A dataset's files are rewritten only when their content changes.
    """
    stamp = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    by_dataset: dict[str, list[Mapping[str, Any]]] = {}
    for item in results:
        by_dataset.setdefault(_dataset(str(item["dataset"])), []).append(item)
    gone: dict[str, list[str]] = {}
    for entry in removed:
        gone.setdefault(_dataset(entry["dataset"]), []).append(_date(entry["date"]))
    summary: dict[str, Any] = {"datasets": 0, "committed": 0, "removed": 0, "failed": [],
                               "bytes_scanned": 0, "written": []}
    for dataset in sorted({*datasets, *by_dataset, *gone}):
        state = read_state(s3, warehouse, dataset) or {}
        dates = dict(state.get("dates", {}))
        for item in by_dataset.get(dataset, []):
            date = _date(str(item["date"]))
            if "error" in item or "query_id" not in item:
                reason = f"{item.get('error') or 'Error'}: {item.get('cause') or 'the query did not finish'}"
                dates[date] = {"sources": "", "files": int(item.get("files", 0)), "aggregate": "",
                               "objects": {}, "failed": reason[:_MAX_REASON]}
                summary["failed"].append({"dataset": dataset, "date": date, "error": reason[:_MAX_REASON]})
                continue
            folder = warehouse.key(dataset, layout.partition(layout.USER_DAY, date)) + "/"
            objects = _objects(s3, warehouse.bucket, folder)
            dates[date] = {"sources": str(item["sources"]), "files": int(item["files"]),
                           "aggregate": combine_digests(objects), "objects": dict(sorted(objects.items()))}
            summary["committed"] += 1
            summary["bytes_scanned"] += int(item.get("bytes") or 0)
        for date in gone.get(dataset, []):
            folder = warehouse.key(dataset, layout.partition(layout.USER_DAY, date)) + "/"
            _delete(s3, warehouse.bucket, (folder + n for n in _all_objects(s3, warehouse.bucket, folder)))
            if dates.pop(date, None) is not None:
                summary["removed"] += 1
        if not dates and not state:
            continue  # no events yet: nothing a forecast could read, nothing to take back
        summary["datasets"] += 1
        new_state, tables = _state(s3, warehouse, dataset, dates, stamp)
        if _write(s3, warehouse, dataset, new_state, tables, state):
            summary["written"].append(dataset)
    summary["failed_count"] = len(summary["failed"])
    return summary


def _state(s3: Any, warehouse: Warehouse, dataset: str, dates: dict[str, dict[str, Any]],
           stamp: str) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The new ``state.json``, and the installs and spend objects it was computed from."""
    parts = {f"{layout.USER_DAY}/{date}": entry["aggregate"] or "failed" for date, entry in dates.items()}
    tables: dict[str, dict[str, str]] = {}
    for table in (layout.INSTALLS, layout.SPEND):
        objects = _objects(s3, warehouse.bucket, warehouse.key(dataset, table) + "/")
        if objects:
            tables[table] = dict(sorted(objects.items()))
            parts[table] = combine_digests(objects)
    good = sorted(date for date, entry in dates.items() if not entry.get("failed"))
    state: dict[str, Any] = {
        "format": STATE_FORMAT, "engine": ENGINE, "dataset": dataset,
        "dates": dict(sorted(dates.items())),
        **{table: parts[table] for table in tables},
        "first_event_date": good[0] if good else None,
        "last_event_date": good[-1] if good else None,
        "digest": combine_digests(parts),
        "refreshed_at": stamp,
    }
    return state, tables


def _write(s3: Any, warehouse: Warehouse, dataset: str, state: dict[str, Any],
           tables: Mapping[str, Mapping[str, str]], previous: Mapping[str, Any]) -> bool:
    """Write the manifest, then ``state.json`` (the commit point); False when nothing changed."""
    def content(value: Mapping[str, Any]) -> dict[str, Any]:
        return {key: item for key, item in value.items() if key != "refreshed_at"}

    if content(state) == content(previous):
        return False
    entries = [layout.STATE, layout.MARKER]
    for date, entry in state["dates"].items():
        if not entry.get("failed"):
            folder = layout.partition(layout.USER_DAY, date)
            entries.extend(f"{folder}/{name}" for name in entry["objects"])
    for table, objects in tables.items():
        entries.extend(f"{table}/{name}" for name in objects)
    marker = warehouse.key(dataset, layout.MARKER)
    if not _exists(s3, warehouse.bucket, marker):
        _put(s3, warehouse.bucket, marker, {"format": layout.FORMAT})
    _put(s3, warehouse.bucket, warehouse.key(dataset, MANIFEST),
         [{"prefix": warehouse.uri(warehouse.key(dataset))}, *entries])
    _put(s3, warehouse.bucket, warehouse.key(dataset, layout.STATE), state)
    return True


def _exists(s3: Any, bucket: str, key: str) -> bool:
    response = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(item["Key"] == key for item in response.get("Contents", []))


def _put(s3: Any, bucket: str, key: str, value: Any) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(value, indent=1).encode(),
                  ContentType="application/json")


# --------------------------------------------------------------------------- the forecast's copy


def verify_download(directory: str | Path, digest: str | None = None) -> dict[str, Any]:
    """Check a local copy of the committed objects (what :data:`MANIFEST` lists): ``state.json``
    has the digest the run was named with, no date failed to refresh, and each date's
    aggregate objects are all there. Returns the state; ``InputError`` saying what is wrong."""
    root = Path(directory)
    path = root / layout.STATE
    if not path.is_file():
        raise InputError("has no state.json: the warehouse refresh has not committed this dataset",
                         file=str(root.name or root))
    state = json.loads(path.read_text(encoding="utf-8"))
    if digest and state.get("digest") != digest:
        found = str(state.get("digest") or "none")
        raise InputError(f"the dataset changed after the forecast was requested (digest {found[:12]}…, "
                         f"requested {digest[:12]}…): submit it again")
    for date, entry in sorted(state.get("dates", {}).items()):
        if entry.get("failed"):
            raise InputError(f"the warehouse refresh could not aggregate {date} ({entry['failed'][:200]}); "
                             "forecasts of this dataset resume once a refresh succeeds")
        folder = root / layout.partition(layout.USER_DAY, date)
        missing = [name for name in entry.get("objects", {}) if not (folder / name).is_file()]
        if missing:
            raise InputError(f"the aggregate of {date} is incomplete ({missing[0]} is missing): "
                             "the warehouse changed while it was copied; submit it again")
    return state
