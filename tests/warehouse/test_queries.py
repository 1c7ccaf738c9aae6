"""Each query is written once and reads the same on DuckDB and on Athena (Trino)."""

import pytest
import sqlglot

from ltvcore.warehouse.queries import NAMES, for_trino, query

VALUES = {"events": "events", "user_day": "user_day", "installs": "installs", "users": "users",
          "first": "2026-01-01", "last": "2026-01-31", "as_of": "2026-01-31", "horizon": 30}


def _filled(name: str) -> str:
    return query(name, **VALUES)


@pytest.mark.parametrize("name", NAMES)
def test_every_query_parses_as_duckdb_and_its_athena_form_as_trino(name):
    sql = _filled(name)
    sqlglot.parse_one(sql, read="duckdb")
    athena = for_trino(sql)
    parsed = sqlglot.parse_one(athena, read="trino")
    assert parsed.find(sqlglot.exp.Select) is not None
    assert "date_diff" not in sql or "DATE_DIFF('DAY'" in athena.upper().replace('"', "'") \
        or "DATE_DIFF('day'" in athena


@pytest.mark.parametrize("name", NAMES)
def test_the_portable_text_is_already_valid_trino(name):
    """Written in the common subset, the query needs no rewriting to run on Athena."""
    sqlglot.parse_one(_filled(name), read="trino")


@pytest.mark.parametrize("values", [
    {"as_of": "2026-01-31' OR '1'='1"},
    {"first": "yesterday"},
    {"events": "events; DROP TABLE x"},
    {"horizon": True},
])
def test_values_that_are_not_dates_numbers_or_relations_are_refused(values):
    with pytest.raises((ValueError, TypeError)):
        query("user_day", **{**VALUES, **values})
