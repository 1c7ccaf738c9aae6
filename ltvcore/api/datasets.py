"""Where datasets live: folders under ``ltv serve --data-dir`` or under the warehouse S3 prefix.

A dataset is a folder holding ``events.csv|parquet`` and optional ``installs.*`` and ``spend.*``
(the rule of :func:`ltvcore.workflow.steps.find_inputs`), or a local warehouse
(:mod:`ltvcore.warehouse.layout`), whose digest its last refresh wrote. The API needs three cheap things from it
before any parsing: its files, the digest of their bytes (which names the run) and the
columns of ``installs`` (the ``by`` choices, from the CSV header or the Parquet schema).
"""

from __future__ import annotations

import csv
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ltvcore.api.models import check_dataset_name
from ltvcore.errors import InputError
from ltvcore.files import CHUNK_BYTES, sha256_chunks
from ltvcore.request import is_iso_date
from ltvcore.runs.ids import combine_digests
from ltvcore.runs.manifest import sha256_file
from ltvcore.warehouse import layout

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["Dataset", "Datasets", "LocalDatasets", "S3Datasets", "by_choices", "open_datasets"]

ROLES = ("events", "installs", "spend")
SUFFIXES = (".parquet", ".csv")  # the order find_inputs prefers
_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Dataset:
    """One dataset's input files (role → local path or ``s3://`` URI) and ``by`` choices."""

    name: str
    files: dict[str, str]
    by_columns: tuple[str, ...] | None  # None: unknown without parsing (e.g. Parquet on S3)


class Datasets(Protocol):
    def names(self) -> list[str]:
        """Dataset folder names, sorted."""

    def get(self, name: str) -> Dataset:
        """The dataset ``name`` (``InputError`` on field ``dataset`` when there is none)."""

    def digest(self, dataset: Dataset) -> str:
        """Digest of the dataset's files by role: what :func:`ltvcore.runs.naming.input_files_digest`
        gives for the same bytes."""

    def last_event_date(self, dataset: Dataset) -> str | None:
        """The dataset's last ``event_date`` (``YYYY-MM-DD``), or None when it cannot be told
        cheaply (the forecast step then checks as-of against the data itself)."""


def by_choices(header: list[str] | None) -> tuple[str, ...]:
    """Columns usable in ``by``: ``campaign`` (always: it defaults to ``all``) and segments."""
    extra = [c for c in header or () if c not in ("user_id", "install_date", "campaign")]
    return ("campaign", *extra)


def _csv_header(first_bytes: bytes) -> list[str]:
    text = first_bytes.decode("utf-8-sig", errors="replace")
    line = text.splitlines()[0] if text else ""
    return [cell.strip() for cell in next(csv.reader([line]), [])]


def _unknown_dataset(name: str, available: list[str]) -> InputError:
    shown = ", ".join(available[:20]) or "none"
    return InputError(f"no dataset '{name}' (available: {shown})", column="dataset")


class _DigestCache:
    """sha256 of files keyed by identity (path and size/mtime, or S3 key and ETag)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digests: dict[tuple, str] = {}

    def get(self, key: tuple, compute) -> str:
        with self._lock:
            found = self._digests.get(key)
        if found is None:
            found = compute()
            with self._lock:
                if len(self._digests) > 4096:
                    self._digests.clear()
                self._digests[key] = found
        return found


class LocalDatasets:
    """Dataset folders under a local directory (``ltv serve --data-dir``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._cache = _DigestCache()
        self._last_dates = _DigestCache()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(child.name for child in self.root.iterdir()
                      if child.is_dir() and not child.name.startswith(".")
                      and (any((child / f"events{s}").is_file() for s in SUFFIXES)
                           or layout.is_warehouse(child)))

    def get(self, name: str) -> Dataset:
        from ltvcore.workflow.steps import find_inputs  # the one rule for a folder's files

        try:
            check_dataset_name(name)
        except ValueError as error:
            raise InputError(str(error), column="dataset") from None
        folder = self.root / name
        if not folder.is_dir():
            raise _unknown_dataset(name, self.names())
        if layout.is_warehouse(folder):
            return self._warehouse(name, folder)
        try:
            found = find_inputs(folder)
        except InputError as error:
            raise InputError(error.reason, column="dataset") from None
        installs = found.get("installs")
        by_columns: tuple[str, ...] | None = by_choices(None)
        if installs is not None:
            header = self._header(installs)
            by_columns = by_choices(header) if header is not None else None
        return Dataset(name=name, files={role: str(path) for role, path in found.items()},
                       by_columns=by_columns)

    def _warehouse(self, name: str, folder: Path) -> Dataset:
        """A warehouse dataset: its folder is the events "file"; installs and spend are its own."""
        parts = sorted((folder / layout.INSTALLS).glob("part-*.parquet"))
        columns: list[str] = []
        for part in parts:
            columns += [c for c in self._header(part) or [] if c not in columns]
        return Dataset(name=name, files={"events": str(folder)},
                       by_columns=by_choices(columns if parts else None))

    @staticmethod
    def _header(path: Path) -> list[str] | None:
        if path.suffix == ".csv":
            with open(path, "rb") as handle:
                return _csv_header(handle.read(_HEADER_BYTES))
        try:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        except Exception:  # noqa: BLE001 - unreadable here: the run reports it properly
            return None

    def digest(self, dataset: Dataset) -> str:
        if layout.is_warehouse(dataset.files["events"]):
            try:  # written by the refresh, where the aggregates are: nothing to hash here
                return str(layout.fresh_state(dataset.files["events"])["digest"])
            except InputError as error:
                raise InputError(error.reason, column="dataset") from None
        digests = {}
        for role, text in dataset.files.items():
            stat = os.stat(text)
            digests[role] = self._cache.get((text, stat.st_size, stat.st_mtime_ns),
                                            lambda text=text: sha256_file(text))
        return combine_digests(digests)

    def last_event_date(self, dataset: Dataset) -> str | None:
        path = dataset.files["events"]
        if layout.is_warehouse(path):
            dates = sorted(layout.read_state(path).get("dates", {}))
            return dates[-1] if dates else None
        stat = os.stat(path)
        found = self._last_dates.get((path, stat.st_size, stat.st_mtime_ns),
                                     lambda: _last_event_date(path) or "")
        return found or None


def _last_event_date(path: str) -> str | None:
    """The largest well-formed ``event_date`` of a local events file, read as text.

    ISO dates order as text, so no date parsing is needed; a file that cannot be read here
    gives None and the forecast step reports what is wrong with it.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if path.endswith(".csv"):
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                include_columns=["event_date"], column_types={"event_date": pa.string()}))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=["event_date"])
        column = table.column("event_date")
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.string())
        column = pc.filter(column, pc.match_substring_regex(column, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        last = pc.max(column).as_py()
    except Exception:  # noqa: BLE001 - unreadable here: the run reports it properly
        return None
    return str(last)[:10] if last else None


class S3Datasets:
    """Dataset folders under ``s3://bucket/prefix/`` (the warehouse prefix on AWS).

    A file's sha256 is taken from its ``sha256`` user metadata or a full-object
    ``ChecksumSHA256`` when present, else by streaming the object once (cached by ETag).
    """

    def __init__(self, uri: str, *, client: S3Client | None = None) -> None:
        from ltvcore.runs.store import parse_s3_uri

        self.bucket, self.prefix = parse_s3_uri(uri)
        self._client = client
        self._cache = _DigestCache()

    @property
    def client(self) -> S3Client:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _folder(self, name: str = "") -> str:
        base = f"{self.prefix}/" if self.prefix else ""
        return f"{base}{name}/" if name else base

    def names(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        names = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._folder(), Delimiter="/"):
            for entry in page.get("CommonPrefixes", []):
                name = entry["Prefix"][len(self._folder()):].rstrip("/")
                try:
                    names.append(check_dataset_name(name))
                except ValueError:
                    continue
        return sorted(names)

    def get(self, name: str) -> Dataset:
        try:
            check_dataset_name(name)
        except ValueError as error:
            raise InputError(str(error), column="dataset") from None
        response = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._folder(name),
                                               Delimiter="/")
        present = {item["Key"][len(self._folder(name)):] for item in response.get("Contents", [])}
        if not present and not response.get("CommonPrefixes"):
            raise _unknown_dataset(name, self.names())
        if layout.STATE in present:  # a warehouse dataset: its aggregates name and feed the run
            return Dataset(name=name, files={"events": f"s3://{self.bucket}/{self._folder(name).rstrip('/')}"},
                           by_columns=None)
        files = {}
        for role in ROLES:
            for suffix in SUFFIXES:
                if f"{role}{suffix}" in present:
                    files[role] = f"s3://{self.bucket}/{self._folder(name)}{role}{suffix}"
                    break
        if "events" not in files:
            raise InputError(f"no events.csv or events.parquet in {name}", column="dataset")
        by_columns: tuple[str, ...] | None = by_choices(None)
        if "installs" in files:
            by_columns = None
            if files["installs"].endswith(".csv"):
                key = self._key(files["installs"])
                body = self.client.get_object(Bucket=self.bucket, Key=key,
                                              Range=f"bytes=0-{_HEADER_BYTES - 1}")["Body"]
                try:
                    by_columns = by_choices(_csv_header(body.read()))
                finally:
                    body.close()
        return Dataset(name=name, files=files, by_columns=by_columns)

    def _key(self, uri: str) -> str:
        return uri[len(f"s3://{self.bucket}/"):]

    def _sha256(self, key: str, head: dict) -> str:
        metadata = head.get("Metadata", {})
        if len(metadata.get("sha256", "")) == 64:
            return metadata["sha256"]
        checksum = head.get("ChecksumSHA256")
        if checksum and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT" \
                and "-" not in checksum:
            import base64

            return base64.b64decode(checksum).hex()
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            return sha256_chunks(body.iter_chunks(CHUNK_BYTES))
        finally:
            body.close()

    def _state(self, dataset: Dataset) -> dict | None:
        """A warehouse dataset's ``state.json`` (written by the daily refresh), else None."""
        uri = dataset.files["events"]
        if uri.endswith(SUFFIXES):
            return None
        import json

        key = f"{self._key(uri).rstrip('/')}/{layout.STATE}"
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            return json.loads(body.read())
        finally:
            body.close()

    def digest(self, dataset: Dataset) -> str:
        state = self._state(dataset)
        if state is not None:  # written where the aggregates are: nothing to hash here
            if not state.get("digest") or not state.get("last_event_date"):
                raise InputError(f"dataset {dataset.name} has no aggregated events yet (the daily "
                                 "refresh has not run)", column="dataset")
            return str(state["digest"])
        digests = {}
        for role, uri in dataset.files.items():
            key = self._key(uri)
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            digests[role] = self._cache.get((key, head.get("ETag")),
                                            lambda key=key, head=head: self._sha256(key, head))
        return combine_digests(digests)

    def last_event_date(self, dataset: Dataset) -> str | None:
        """From a warehouse's ``state.json``, or the events object's ``last-event-date``
        metadata, which the loader sets; a file without it is checked by the forecast step."""
        state = self._state(dataset)
        if state is not None:
            value = state.get("last_event_date")
            return value if isinstance(value, str) and is_iso_date(value) else None
        head = self.client.head_object(Bucket=self.bucket, Key=self._key(dataset.files["events"]))
        value = head.get("Metadata", {}).get("last-event-date")
        return value if value and is_iso_date(value) else None


def open_datasets(location: str | os.PathLike[str]) -> Datasets:
    """Datasets under a local directory or an ``s3://bucket/prefix``."""
    text = os.fspath(location)
    if text.startswith("s3://"):
        return S3Datasets(text)
    return LocalDatasets(text)
