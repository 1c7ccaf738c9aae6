"""Ids and segments are text exactly as written; dates are real days spelled YYYY-MM-DD; group
columns never collide with output columns. Each rule holds for CSV and Parquet alike."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ltvcore.cli import main
from ltvcore.data.io import read_events, read_installs, read_spend
from ltvcore.errors import InputError
from ltvcore.request import OUTPUT_COLUMNS


def days(n: int) -> list[str]:
    return [str(d.date()) for d in pd.date_range("2026-01-01", periods=n)]


def write(frame: pd.DataFrame, path: Path) -> Path:
    """CSV as text, or Parquet with every column as a string column."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame.astype(str), preserve_index=False), path)
    return path


def dataset(tmp_path: Path, campaigns: list[str], suffix: str, users_each: int = 3,
            user_ids=None) -> tuple[Path, Path]:
    """Users of each campaign active every day for 10 days."""
    installs, events = [], []
    n = 0
    for campaign in campaigns:
        for _ in range(users_each):
            user = user_ids[n] if user_ids else f"u{n}"
            installs.append((user, "2026-01-01", campaign))
            events += [(user, day, 1.0 if i % 3 == 0 else 0.0) for i, day in enumerate(days(10))]
            n += 1
    ev = write(pd.DataFrame(events, columns=["user_id", "event_date", "revenue"]),
               tmp_path / f"events{suffix}")
    ins = write(pd.DataFrame(installs, columns=["user_id", "install_date", "campaign"]),
                tmp_path / f"installs{suffix}")
    return ev, ins


def forecast(tmp_path: Path, ev: Path, ins: Path, *extra: str) -> tuple[int, pd.DataFrame | None]:
    store = tmp_path / "store"
    code = main(["forecast", "--events", str(ev), "--installs", str(ins), "--out", str(store),
                 "--observe-days", "3", "--model", "geometric", "--quiet", *extra])
    runs = list((store / "runs").glob("*/forecast.csv")) if store.exists() else []
    frame = pd.read_csv(runs[0], dtype=str) if runs else None
    return code, frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("campaigns", [
    ["01", "1", "001"],
    ["23851234567890123456", "23851234567890123457", "23851234567890123458",
     "23851234567890123459"],
    ["1e3", "1000", "1E3"],
    ["0x10", "16", "true", "True"],
])
def test_numeric_looking_campaigns_stay_distinct_groups_as_written(tmp_path, suffix, campaigns):
    ev, ins = dataset(tmp_path, campaigns, suffix)
    code, frame = forecast(tmp_path, ev, ins)
    assert code == 0
    assert sorted(frame["campaign"].unique()) == sorted(campaigns)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_user_ids_are_joined_as_written_not_as_numbers(tmp_path, suffix):
    events = write(pd.DataFrame({"user_id": ["000001"], "event_date": ["2026-01-01"],
                                 "revenue": ["1"]}), tmp_path / f"events{suffix}")
    installs = write(pd.DataFrame({"user_id": ["1"], "install_date": ["2026-01-01"],
                                   "campaign": ["a"]}), tmp_path / f"installs{suffix}")
    code = main(["forecast", "--events", str(events), "--installs", str(installs),
                 "--out", str(tmp_path / "store")])
    assert code == 2  # '000001' has no install row: it is not user '1'


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_long_numeric_user_ids_are_not_false_duplicates(tmp_path, suffix):
    ids = [f"1234567890123456789012{d}" for d in range(6)]
    ev, ins = dataset(tmp_path, ["a", "b"], suffix, users_each=3, user_ids=ids)
    frame = read_installs(ins)
    assert list(frame["user_id"]) == ids
    assert forecast(tmp_path, ev, ins)[0] == 0


def test_integer_typed_parquet_ids_become_their_digits(tmp_path):
    path = tmp_path / "installs.parquet"
    pq.write_table(pa.table({"user_id": pa.array([10**18 + 1, 2], pa.int64()),
                             "install_date": ["2026-01-01", "2026-01-01"],
                             "campaign": pa.array([7, 7], pa.int64())}), path)
    frame = read_installs(path)
    assert list(frame["user_id"]) == ["1000000000000000001", "2"]
    assert list(frame["campaign"]) == ["7", "7"]


def test_float_typed_parquet_ids_are_refused_they_have_lost_digits(tmp_path):
    path = tmp_path / "installs.parquet"
    pq.write_table(pa.table({"user_id": pa.array([1.2345678901234568e22], pa.float64()),
                             "install_date": ["2026-01-01"]}), path)
    with pytest.raises(InputError, match="column 'user_id'.*double"):
        read_installs(path)


@pytest.mark.parametrize("kind", [pa.list_(pa.string()), pa.struct([("a", pa.string())])])
def test_nested_parquet_segment_columns_are_an_input_error(tmp_path, kind):
    values = [["x"]] if pa.types.is_list(kind) else [{"a": "x"}]
    path = tmp_path / "installs.parquet"
    pq.write_table(pa.table({"user_id": ["u1"], "install_date": ["2026-01-01"],
                             "os": pa.array(values, kind)}), path)
    with pytest.raises(InputError, match="installs.parquet, column 'os'"):
        read_installs(path)


def test_spend_campaigns_are_text_as_written(tmp_path):
    path = tmp_path / "spend.csv"
    path.write_text("campaign,spend\n01,10\n1,20\n001,30\n")
    assert dict(zip(*read_spend(path).to_dict("list").values())) == {"001": 30.0, "01": 10.0,
                                                                      "1": 20.0}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("bad", ["2026-02-30", "2026-04-31", "2025-02-29", "26-01-05",
                                 " 2026-01-05", "2026-01-05 ", "2026-1-5", "2026/01/05",
                                 "20260105", "2026-01-05T00:00", "2026-00-10", "9999-99-99"])
@pytest.mark.parametrize("column", ["event_date", "install_date"])
def test_impossible_or_misspelled_dates_are_refused_naming_file_column_and_row(
        tmp_path, suffix, bad, column):
    ev, ins = dataset(tmp_path, ["a"], suffix)
    target = ev if column == "event_date" else ins
    frame = (pd.read_csv(target, dtype=str, keep_default_na=False) if suffix == ".csv"
             else pq.read_table(target).to_pandas())
    frame.loc[1, column] = bad
    write(frame, target)
    reader = read_events if column == "event_date" else read_installs
    with pytest.raises(InputError) as caught:
        reader(target)
    assert str(caught.value).startswith(f"{target.name}, column '{column}', row 2: ")
    assert "is not a date YYYY-MM-DD" in str(caught.value)


def test_a_leap_day_is_a_date(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,event_date,revenue\nu1,2024-02-29,0\n")
    assert str(read_events(path)["event_date"].iloc[0])[:10] == "2024-02-29"


@pytest.mark.parametrize("name", sorted(OUTPUT_COLUMNS))
def test_a_segment_named_like_an_output_column_is_refused(tmp_path, capsys, name):
    ev, ins = dataset(tmp_path, ["a", "b"], ".csv")
    frame = pd.read_csv(ins, dtype=str)
    frame[name] = "x"
    frame.to_csv(ins, index=False)
    code, written = forecast(tmp_path, ev, ins, "--by", f"campaign,{name}")
    err = capsys.readouterr().err
    assert code == 2 and written is None
    assert err.count("\n") == 1 and "field 'by'" in err and f"'{name}'" in err
    assert "ltv-run-" not in err and "Traceback" not in err


def test_duplicate_header_names_are_an_input_error(tmp_path):
    path = tmp_path / "installs.csv"
    path.write_text("user_id,install_date,os,os\nu1,2026-01-01,ios,android\n")
    with pytest.raises(InputError, match="installs.csv, column 'os': is named twice"):
        read_installs(path)


@pytest.mark.parametrize("raw", [b"\xff\xfe", "é".encode("latin-1")])
def test_bytes_that_are_not_utf8_are_an_input_error(tmp_path, raw):
    path = tmp_path / "events.csv"
    path.write_bytes(b"user_id,event_date,revenue\n" + raw + b",2026-01-01,1\n")
    with pytest.raises(InputError, match="events.csv: cannot be read as CSV"):
        read_events(path)
