"""Bad input is normal input: one clear message (file, column, first bad row), exit 2, nothing written."""

from pathlib import Path

import pandas as pd
import pytest

from ltvcore.cli import main

EVENTS = "user_id,event_date,revenue\nu1,2026-01-01,0\nu1,2026-01-02,1.5\nu2,2026-01-01,0\n"
INSTALLS = "user_id,install_date,campaign,os\nu1,2026-01-01,fb,ios\nu2,2026-01-01,fb,android\n"


def run(tmp_path: Path, capsys, *, events=EVENTS, installs=INSTALLS, spend=None, extra=(),
        events_name="events.csv"):
    ev = tmp_path / events_name
    ev.write_text(events)
    args = ["forecast", "--events", str(ev), "--out", str(tmp_path / "store"), "--observe-days", "2"]
    if installs is not None:
        (tmp_path / "installs.csv").write_text(installs)
        args += ["--installs", str(tmp_path / "installs.csv")]
    if spend is not None:
        (tmp_path / "spend.csv").write_text(spend)
        args += ["--spend", str(tmp_path / "spend.csv")]
    code = main(args + list(extra))
    err = capsys.readouterr().err
    return code, err


def assert_rejected(tmp_path, code, err, *fragments):
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    store = tmp_path / "store"
    assert not store.exists() or not any(store.rglob("manifest.json"))


@pytest.mark.parametrize("events,fragments", [
    ("user_id,revenue\nu1,0\n", ["events.csv", "column 'event_date'", "missing"]),
    ("user_id,event_date,revenue\nu1,2026-01-01,0\nu1,2026-13-01,0\n",
     ["events.csv", "column 'event_date'", "row 2", "2026-13-01"]),
    ("user_id,event_date,revenue\nu1,2026-01-01,0\nu1,2026-01-02,-3\n",
     ["events.csv", "column 'revenue'", "row 2", "negative"]),
    ("user_id,event_date,revenue\nu1,2026-01-01,0\nu1,2026-01-02,abc\n",
     ["events.csv", "column 'revenue'", "row 2", "'abc' is not a number"]),
    ("user_id,event_date,revenue\nu1,2026-01-01,0\nu1,2026-01-02,NaN\n",
     ["events.csv", "column 'revenue'", "row 2"]),
    ("user_id,event_date,revenue\nu1,2026-01-01,0\n,2026-01-02,1\n",
     ["events.csv", "column 'user_id'", "row 2", "empty"]),
    ("user_id,event_date,revenue\n", ["events.csv", "no rows"]),
])
def test_bad_events_are_rejected_with_file_column_and_row(tmp_path, capsys, events, fragments):
    code, err = run(tmp_path, capsys, events=events)
    assert_rejected(tmp_path, code, err, *fragments)


def test_duplicate_install_rows(tmp_path, capsys):
    installs = INSTALLS + "u1,2026-01-01,fb,ios\n"
    code, err = run(tmp_path, capsys, installs=installs)
    assert_rejected(tmp_path, code, err, "installs.csv", "column 'user_id'", "row 3", "duplicate")


def test_events_without_an_install_row(tmp_path, capsys):
    code, err = run(tmp_path, capsys, events=EVENTS + "u9,2026-01-02,0\n")
    assert_rejected(tmp_path, code, err, "events.csv", "row 4", "u9", "no install row")


def test_events_before_the_install_date(tmp_path, capsys):
    installs = "user_id,install_date,campaign\nu1,2026-01-02,fb\nu2,2026-01-01,fb\n"
    code, err = run(tmp_path, capsys, installs=installs)
    assert_rejected(tmp_path, code, err, "events.csv", "column 'event_date'", "row 1", "before")


def test_unknown_by_column(tmp_path, capsys):
    code, err = run(tmp_path, capsys, extra=["--by", "campaign,country"])
    assert_rejected(tmp_path, code, err, "installs.csv", "country", "available: campaign, os")


def test_bad_spend(tmp_path, capsys):
    code, err = run(tmp_path, capsys, spend="campaign,spend\nfb,-1\n")
    assert_rejected(tmp_path, code, err, "spend.csv", "column 'spend'", "row 1", "negative")


def test_a_file_that_is_neither_csv_nor_parquet(tmp_path, capsys):
    code, err = run(tmp_path, capsys, events_name="events.json")
    assert_rejected(tmp_path, code, err, "events.json", "not a CSV or Parquet")


@pytest.mark.parametrize("role", ["--events", "--installs", "--spend"])
def test_a_missing_input_file_is_named(tmp_path, capsys, role):
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "installs.csv").write_text(INSTALLS)
    (tmp_path / "spend.csv").write_text("campaign,spend\nfb,10\n")
    args = {"--events": "events.csv", "--installs": "installs.csv", "--spend": "spend.csv"}
    argv = ["forecast", "--out", str(tmp_path / "other")]
    for flag, name in args.items():
        argv += [flag, str(tmp_path / ("missing.csv" if flag == role else name))]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "missing.csv" in err and "file not found" in err
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").rglob("manifest.json"))


def test_a_corrupt_parquet_file(tmp_path, capsys):
    code, err = run(tmp_path, capsys, events="not parquet at all", events_name="events.parquet")
    assert_rejected(tmp_path, code, err, "events.parquet", "cannot be read as Parquet")


def test_empty_result_after_as_of(tmp_path, capsys):
    code, err = run(tmp_path, capsys, extra=["--as-of", "2025-12-01"])
    assert_rejected(tmp_path, code, err, "no events on or before as-of 2025-12-01")


def test_not_enough_observed_days(tmp_path, capsys):
    code, err = run(tmp_path, capsys, extra=["--observe-days", "7"])
    assert_rejected(tmp_path, code, err, "observe_days", "at least 7 observed days")


@pytest.mark.parametrize("extra,fragment", [
    (["--horizons", "30,abc"], "whole numbers"),
    (["--horizons", "0"], "field 'horizons'"),
    (["--confidence", "1.5"], "field 'confidence'"),
    (["--as-of", "yesterday"], "field 'as_of'"),
    (["--retention", "magic"], "invalid choice"),
])
def test_bad_options(tmp_path, capsys, extra, fragment):
    code, err = run(tmp_path, capsys, extra=extra)
    assert_rejected(tmp_path, code, err, fragment)


def test_parquet_input_reads_like_csv(tmp_path):
    from ltvcore.data.io import read_events
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "event_date": pd.to_datetime(["2026-01-01", "2026-01-02"]),
                          "revenue": [0.0, 2.5]})
    frame.to_parquet(tmp_path / "events.parquet")
    (tmp_path / "events.csv").write_text("user_id,event_date,revenue\nu1,2026-01-01,0\nu2,2026-01-02,2.5\n")
    a = read_events(tmp_path / "events.parquet")
    b = read_events(tmp_path / "events.csv")
    pd.testing.assert_frame_equal(a, b)


def test_several_events_per_user_day_are_summed_and_missing_installs_default(tmp_path):
    from ltvcore.data.io import read_events
    from tests.data.pandas_reference import attach_installs
    (tmp_path / "events.csv").write_text(
        "user_id,event_date,revenue\nu1,2026-01-02,1\nu1,2026-01-01,0\nu1,2026-01-02,2\n")
    events = read_events(tmp_path / "events.csv")
    installs, user, age = attach_installs(events, None)
    assert list(installs["campaign"]) == ["all"]
    assert str(installs["install_date"].iat[0])[:10] == "2026-01-01"
    assert list(age) == [1, 0, 1]
