"""Athena and SageMaker's data movement, played on moto S3 with DuckDB (imported as
``tests.infra.fake_athena`` by the warehouse, deployment and processing-job tests).

:func:`run_unload` does what Athena does with one planned ``UNLOAD``: it checks the target is
empty, reads the Glue ``events`` table (a DuckDB view over the objects, with ``dataset`` and
``event_date`` taken from each key, as the partition projection does), runs the statement's
SELECT, transpiled from Trino to DuckDB by sqlglot, and writes the result as one Parquet object
named the way Athena names its files (no extension). :func:`download_manifest` copies a
SageMaker manifest's objects to a local folder, laid out as under the manifest's prefix.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot

UNLOAD = re.compile(r"UNLOAD \((?P<select>SELECT .+)\) TO '(?P<target>s3://[^']+/)' "
                    r"WITH \(format = 'PARQUET', compression = 'ZSTD'\)", re.DOTALL)


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def run_unload(s3, sql: str, *, database: str, bucket: str, prefix: str = "warehouse") -> int:
    """Run one ``UNLOAD`` statement of the refresh; returns the bytes of events it read."""
    found = UNLOAD.fullmatch(sql)
    assert found, sql
    target_bucket, _, target = found["target"][len("s3://"):].partition("/")
    assert not s3.list_objects_v2(Bucket=target_bucket, Prefix=target).get("Contents"), \
        f"UNLOAD refuses a location that is not empty: {found['target']}"
    with tempfile.TemporaryDirectory() as scratch:
        selects, scanned = [], 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            for entry in page.get("Contents", []):
                parts = entry["Key"][len(prefix) + 1:].split("/")
                if len(parts) != 4 or parts[1] != "events" or parts[3].startswith(("_", ".")):
                    continue
                path = Path(scratch) / f"{len(selects)}.parquet"
                path.write_bytes(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
                scanned += entry["Size"]
                day = parts[2].split("=", 1)[1]
                selects.append(f"SELECT CAST(user_id AS VARCHAR) AS user_id, CAST(revenue AS DOUBLE) AS revenue, "
                               f"'{parts[0]}' AS dataset, DATE '{day}' AS event_date FROM read_parquet('{path}')")
        con = duckdb.connect()
        con.execute(f"CREATE SCHEMA {database}")
        empty = "SELECT '' AS user_id, 0.0 AS revenue, '' AS dataset, DATE '2000-01-01' AS event_date LIMIT 0"
        con.execute(f"CREATE VIEW {database}.events AS {' UNION ALL '.join(selects) or empty}")
        table = con.sql(sqlglot.transpile(found["select"], read="trino", write="duckdb")[0]).to_arrow_table()
    s3.put_object(Bucket=target_bucket, Key=f"{target}20260110_093000_00042_fake1_{len(table)}",
                  Body=parquet(table))
    return scanned


def download_manifest(s3, bucket: str, key: str, local: Path) -> list[str]:
    """What a ``ManifestFile`` processing input does: every listed object, under ``local``."""
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    prefix = manifest[0]["prefix"]
    source_bucket, _, root = prefix[len("s3://"):].partition("/")
    for relative in manifest[1:]:
        target = local / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=source_bucket, Key=root + relative)["Body"].read())
    return manifest[1:]


def sync(s3, folder: Path, bucket: str, prefix: str) -> None:
    """``aws s3 sync folder s3://bucket/prefix`` (files only, hidden ones too)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes())
