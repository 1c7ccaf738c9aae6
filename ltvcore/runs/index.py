"""The run index: how ``list_runs(limit)`` lists the newest runs without scanning every run.

Listing used to walk every key under ``runs/`` and read every run's manifest, so ``GET
/forecasts`` grew with the store. The store now also keeps, in the same layout on both
backends::

    <root>/index/runs/<inverted-ms>.<run_id>.<status>.json   one per run event, never rewritten
    <root>/index/runs/.complete                             every run older than the index is in it

- ``<inverted-ms>`` is ``9999999999999`` minus the event's time in milliseconds since the epoch
  (13 digits): the keys sort **newest first**, the order S3 lists keys in (and
  ``sorted(os.scandir(...))`` locally). The time is the row's ``created``: a manifest's
  ``created``, a marker's ``updated``, so a rebuild writes the very names the events did.
- An entry holds the listing row as :meth:`ArtifactStore.status` gives it (``run_id``,
  ``status``, ``created``, ``request``, ``requested_by``, ``as_of``, ``files``, ``submitted``,
  the marker's ``detail``), less what is derived when read (``location``, ``summary``). The
  decision headline of the local runs page is not in it: it depends on thresholds set where the
  API runs, so the page reads it from ``forecast.csv``, one file per row shown.
- ``commit`` writes an entry after the manifest, built from the stored manifest (an entry never
  claims a run that is not committed); ``mark`` writes one after each marker. One object per
  event, so concurrent writers never lose one another's entries (no shared file is read, changed
  and written back); locally each is written to a temporary file and renamed into place, on S3
  with one ``put_object``. A failed index write is logged, not raised: the run itself is the
  truth and :meth:`ArtifactStore.rebuild_index` (``ltv runs reindex``) repairs the index.

Reading (:func:`pick`): list index names from the start (S3: one ``list_objects_v2`` page of
up to 1,000 keys; locally one sorted ``os.scandir``) until ``limit`` distinct runs are seen; a
run's newest entry wins. Each row shown then costs one manifest check (``exists``) and one entry
read, run side by side on S3: ``1 + 2 * rows`` calls whatever the number of runs (a second page
only when a page holds fewer than ``limit`` runs, i.e. over ~1,000/limit events per run). When
the manifest check disagrees with the entry (a manifest deleted by hand, a marker written while
a commit sealed the run) or the entry is unreadable, that row is described from the run itself
(:meth:`ArtifactStore.status`), so a listing never shows as done a run without its manifest.

A store written before the index has no ``.complete``: the first listing scans every run once
(:meth:`ArtifactStore.rebuild_index`), writes their entries, then ``.complete``; a reader that may
not write lists by scanning, as before. Writers of an older version (still running during an
upgrade) write no entries: run ``ltv runs reindex`` once they are all replaced.

Why S3 objects, not a DynamoDB table: the index lives where the runs live, with no table to
deploy, pay for or back up (the roles that read and write runs need ``index/*`` in their S3
grants, nothing else), and the same layout (and code) works on a local folder, which ``ltv
serve`` and the tests use; S3 lists keys in order and has the conditional writes the store
already relies on. A table would give queries by status or user, which nothing needs yet.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

__all__ = ["COMPLETE", "INDEX_DIR", "IndexKey", "complete_bytes", "entry_bytes", "entry_name",
           "parse_name", "pick", "read_entry"]

INDEX_DIR = "index/runs"
COMPLETE = ".complete"
_NEWEST = 10**13 - 1  # milliseconds: year 2286
_NAME = re.compile(r"(?P<stamp>[0-9]{13})\.(?P<run_id>[A-Za-z0-9][A-Za-z0-9_-]{0,127})\.(?P<status>[a-z]+)\.json")
_DERIVED = ("location", "summary")


class IndexKey(NamedTuple):
    """One index entry, as its name tells: ``stamp`` is the inverted time (smaller is newer)."""

    name: str
    stamp: int
    run_id: str
    status: str


def _millis(created: Any) -> int:
    if isinstance(created, str):
        try:
            moment = datetime.fromisoformat(created)
        except ValueError:
            pass
        else:
            moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
            return min(max(int(moment.timestamp() * 1000), 0), _NEWEST)
    return int(time.time() * 1000)


def entry_name(row: Mapping[str, Any]) -> str:
    """The index name of a listing row: ``<inverted-ms>.<run_id>.<status>.json``."""
    return f"{_NEWEST - _millis(row.get('created')):013d}.{row['run_id']}.{row['status']}.json"


def parse_name(name: str) -> IndexKey | None:
    """The key an index name stands for; None for anything else (``.complete``, temporary files)."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return IndexKey(name, int(match["stamp"]), match["run_id"], match["status"])


def entry_bytes(row: Mapping[str, Any]) -> bytes:
    """What an entry holds: the row less what is derived when read."""
    body = {key: value for key, value in row.items() if key not in _DERIVED}
    return (json.dumps(body, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode("utf-8")


def read_entry(raw: bytes, key: IndexKey) -> dict[str, Any] | None:
    """The row an entry holds; None when it is unreadable or is not the entry its name says."""
    try:
        row = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(row, dict) or row.get("run_id") != key.run_id or row.get("status") != key.status:
        return None
    return row


def complete_bytes(runs: int) -> bytes:
    """Content of :data:`COMPLETE`: when the index was rebuilt and how many runs it found."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return (json.dumps({"rebuilt": stamp, "runs": runs}) + "\n").encode("utf-8")


def pick(names: Iterable[str], limit: int | None) -> tuple[list[IndexKey], bool]:
    """The newest entry of each of the ``limit`` most recently changed runs; whether the index is complete.

    ``names`` come in ascending order (newest first; :data:`COMPLETE` sorts before every entry).
    Reading stops once ``limit`` runs are found and the entries of that same millisecond are
    read too (ties are ordered by the caller, as the listing always did: by run id).
    """
    complete = False
    chosen: dict[str, IndexKey] = {}
    boundary: int | None = None
    for name in names:
        if name == COMPLETE:
            complete = True
            continue
        key = parse_name(name)
        if key is None:
            continue
        if boundary is not None and key.stamp != boundary:
            break
        if key.run_id in chosen:
            continue  # an older event of a run already chosen
        chosen[key.run_id] = key
        if limit is not None and boundary is None and len(chosen) >= limit:
            boundary = key.stamp
    return list(chosen.values()), complete
