"""Events validated in SQL: the same one-line errors as the in-memory rules, at any size."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ltvcore.data import io
from ltvcore.errors import InputError
from ltvcore.warehouse import events as sql_events
from ltvcore.warehouse.engine import connect

HEADER = "user_id,event_date,revenue\n"
GOOD = "u1,2026-01-01,0\nu1,2026-01-01,2.5\nu2,2026-01-02,1\n"

BAD_CSV = [
    "user_id,revenue\nu1,0\n",
    HEADER,
    HEADER + GOOD + "u3,2026-13-01,0\n",
    HEADER + GOOD + "u3,2026-02-30,0\n",
    HEADER + GOOD + "u3,20260201,0\n",
    HEADER + GOOD + "u3,9999-01-01,0\n",
    HEADER + GOOD + "u3,2026-01-02,-3\n",
    HEADER + GOOD + "u3,2026-01-02,abc\n",
    HEADER + GOOD + "u3,2026-01-02,NaN\n",
    HEADER + GOOD + "u3,2026-01-02,inf\n",
    HEADER + GOOD + "u3,2026-01-02,\n",
    HEADER + GOOD + "u3,2026-01-02,1e13\n",
    HEADER + GOOD + ",2026-01-02,1\n",
    HEADER + GOOD + "   ,2026-01-02,1\n",
    HEADER + GOOD + "u3,2026-01-02\n",
    "user_id,event_date,revenue,user_id\nu1,2026-01-01,0,u1\n",
    # two problems: the first column in order wins, as in the in-memory rules
    HEADER + "u1,2026-01-01,abc\n,2026-01-02,1\n",
]


def _sql_error(path) -> str:
    with pytest.raises(InputError) as caught:
        sql_events.load_events(connect(), path)
    return str(caught.value)


def _memory_error(path) -> str:
    with pytest.raises(InputError) as caught:
        io.read_events(path)
    return str(caught.value)


@pytest.mark.parametrize("text", BAD_CSV)
def test_a_bad_csv_gets_the_same_message_as_the_in_memory_rules(tmp_path, text):
    path = tmp_path / "events.csv"
    path.write_text(text)
    assert _sql_error(path) == _memory_error(path)


@pytest.mark.parametrize("column,values,kind", [
    ("user_id", [1.5, 2.5], pa.float64()),
    ("event_date", [1, 2], pa.int64()),
    ("event_date", [None, "2026-01-01"], pa.string()),
    ("revenue", [1.0, -2.0], pa.float64()),
    ("revenue", [1.0, float("nan")], pa.float64()),
    ("revenue", ["1", "x"], pa.string()),
    ("user_id", ["a", None], pa.string()),
])
def test_a_bad_parquet_gets_the_same_message_as_the_in_memory_rules(tmp_path, column, values, kind):
    table = {"user_id": pa.array(["a", "b"]), "event_date": pa.array(["2026-01-01", "2026-01-02"]),
             "revenue": pa.array([0.0, 1.0])}
    table[column] = pa.array(values, type=kind)
    path = tmp_path / "events.parquet"
    pq.write_table(pa.table(table), path)
    assert _sql_error(path) == _memory_error(path)


def test_the_first_bad_row_is_found_past_the_first_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(sql_events, "CSV_BLOCK", 4096)
    rows = [f"u{i},2026-01-0{1 + i % 5},1" for i in range(5000)]
    rows[4321] = "u4321,2026-01-02,-1"
    path = tmp_path / "events.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    message = _sql_error(path)
    assert message == "events.csv, column 'revenue', row 4322: -1 is negative (must be >= 0)"


def test_valid_events_are_summed_per_user_and_day(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(HEADER + GOOD + "001,2026-01-02,0.25\n")
    con = connect()
    summary = sql_events.load_events(con, path)
    frame = con.sql("SELECT user_id, CAST(event_date AS VARCHAR) AS d, revenue, events FROM events_day "
                    "ORDER BY user_id, d").fetchdf()
    assert (summary.rows, summary.user_days) == (4, 3)
    assert (summary.first_date, summary.last_date) == ("2026-01-01", "2026-01-02")
    expected = pd.DataFrame({"user_id": ["001", "u1", "u2"], "d": ["2026-01-02", "2026-01-01", "2026-01-02"],
                             "revenue": [0.25, 2.5, 1.0], "events": [1, 2, 1]})
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
