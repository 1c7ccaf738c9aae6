"""The warehouse's SQL, written once (``sql/*.sql``) and run on DuckDB and on Athena (Trino).

The queries use only what both engines spell the same (``date_diff('day', a, b)``, ``DATE
'…'`` literals, ``CASE``, plain joins and aggregates). :func:`for_trino` reads a query with
sqlglot's DuckDB dialect and prints it in Trino's, which the tests parse back as Trino, so a
query that stops being portable fails a test instead of a daily job on AWS.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

__all__ = ["NAMES", "for_trino", "query"]

NAMES = ("user_day", "cohort_day", "first_events")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.\"]*|\([^;]*\)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@cache
def _text(name: str) -> str:
    if name not in NAMES:
        raise KeyError(f"no query {name!r} (queries: {', '.join(NAMES)})")
    return resources.files("ltvcore.warehouse").joinpath("sql").joinpath(f"{name}.sql").read_text()


def query(name: str, **values: object) -> str:
    """Query ``name`` with its relations and literals filled in.

    Values are checked by kind before they reach the text (relations are identifiers or a
    parenthesised sub-query of ours, dates are ``YYYY-MM-DD``, numbers are integers), so no
    caller can splice arbitrary SQL into a query.
    """
    checked = {}
    for key, value in values.items():
        if isinstance(value, bool):
            raise TypeError(f"{key}: not a SQL value")
        if isinstance(value, int):
            checked[key] = str(value)
        elif key in ("first", "last", "as_of"):
            if not isinstance(value, str) or not _DATE.fullmatch(value):
                raise ValueError(f"{key}: {value!r} is not a date YYYY-MM-DD")
            checked[key] = value
        elif isinstance(value, str) and _IDENTIFIER.fullmatch(value):
            checked[key] = value
        else:
            raise ValueError(f"{key}: {value!r} is not a relation")
    return _text(name).format(**checked)


def for_trino(sql: str) -> str:
    """The Athena (Trino) spelling of a query written for DuckDB."""
    import sqlglot

    return ";\n".join(sqlglot.transpile(sql, read="duckdb", write="trino", pretty=True))
