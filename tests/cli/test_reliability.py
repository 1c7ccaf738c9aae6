"""Bad input is normal input, item by item: bounded dates, finite outputs, exit 2 for every
kind of bad input, stages that never leak, messages that stay on one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ltvcore.cli import main
from ltvcore.runs.staging import sweep
from ltvcore.sample import write_sample


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_sample(folder, install_days=4, observed_days=8, n_campaigns=2, users_per_day=10, seed=2)
    return folder


def forecast(data: Path, store: Path, *extra: str, events: Path | None = None,
             spend: Path | None = None) -> int:
    return main(["forecast", "--events", str(events or data / "events.csv"),
                 "--installs", str(data / "installs.csv"),
                 "--spend", str(spend or data / "spend.csv"), "--out", str(store), "--quiet",
                 *extra])


def with_line(source: Path, target: Path, line: str) -> Path:
    target.write_text(source.read_text() + line + "\n")
    return target


def refused(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("ltv: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def no_run(store: Path) -> None:
    assert not store.exists() or not list(store.rglob("manifest.json"))


# -- 4: dates are bounded --------------------------------------------------------------


@pytest.mark.parametrize(("date", "says"), [("9999-12-31", "outside the dates"),
                                            ("2099-12-31", "days after the first install")])
def test_one_far_future_event_is_refused_at_once(data, tmp_path, capsys, date, says):
    events = with_line(data / "events.csv", tmp_path / "events.csv", f"u000001,{date},0")
    assert forecast(data, tmp_path / "store", events=events) == 2  # refused before any work
    refused(capsys, "events.csv", "column 'event_date'", "row ", says)
    no_run(tmp_path / "store")


# -- 5: every output of an exit-0 run is finite, or the input is an error ---------------


@pytest.mark.parametrize("revenue", ["1e308", "1e300", "1e13"])
def test_implausibly_large_revenue_is_an_input_error(data, tmp_path, capsys, revenue):
    events = with_line(data / "events.csv", tmp_path / "events.csv", f"u000001,2026-01-02,{revenue}")
    assert forecast(data, tmp_path / "store", events=events) == 2
    refused(capsys, "column 'revenue'", "larger than any plausible amount")
    no_run(tmp_path / "store")


@pytest.mark.parametrize("spend", ["1e-320", "5e-324", "1e-9"])
def test_a_spend_too_small_to_divide_by_is_an_input_error(data, tmp_path, capsys, spend):
    path = tmp_path / "spend.csv"
    lines = (data / "spend.csv").read_text().splitlines()
    campaign = lines[1].split(",")[0]
    path.write_text("\n".join([lines[0], f"{campaign},{spend}"] + lines[2:]) + "\n")
    assert forecast(data, tmp_path / "store", spend=path) == 2
    refused(capsys, "spend.csv", "column 'spend'", "too small")


def test_a_campaign_without_spend_has_empty_roas_and_strict_json(data, tmp_path):
    import json

    path = tmp_path / "spend.csv"
    lines = (data / "spend.csv").read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n")  # the second campaign has no spend
    assert forecast(data, tmp_path / "store", spend=path) == 0
    (run,) = (p for p in (tmp_path / "store" / "runs").iterdir() if not p.name.startswith("."))
    json.loads((run / "params.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"params.json holds {c}"))


# -- 6: exit 2, not 1, for every kind of bad input -------------------------------------


@pytest.mark.parametrize("args", [
    ["backtest", "--events", "{data}/events.csv", "--every", "0"],
    ["backtest", "--events", "{data}/events.csv", "--every", "-7"],
    ["backtest", "--events", "{data}/events.csv", "--first", "notadate"],
    ["backtest", "--events", "{data}/events.csv", "--last", "2026-02-30"],
    ["forecast", "--events", "{data}/events.csv", "--out", "s3://"],
    ["forecast", "--events", "{data}/events.csv", "--out", "http://example.com/x"],
    ["forecast", "--events", "{data}/events.csv", "--as-of", "2026-W02-1"],
    ["forecast", "--events", "{data}/events.csv", "--as-of", "20260108"],
    ["reproduce", "{tmp}"],
    ["reproduce", "{tmp}/missing"],
    ["sample", "--out", "{data}/events.csv"],
    ["sample", "--out", "{tmp}/s", "--install-days", "100000000"],
    ["sample", "--out", "{tmp}/s", "--users-per-day", "1e9"],
    ["sample", "--out", "{tmp}/s", "--campaigns", "0"],
])
def test_bad_usage_exits_2_with_one_line(data, tmp_path, capsys, args):
    argv = [a.format(data=data, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    refused(capsys)


def test_as_of_spelled_without_dashes_is_named_as_given(data, tmp_path, capsys):
    assert forecast(data, tmp_path / "store", "--as-of", "20260208") == 2
    refused(capsys, "'20260208' is not a date YYYY-MM-DD")


# -- 12: stages live in the store's hidden area and are swept --------------------------


def test_a_forecast_stages_inside_the_store_and_leaves_nothing(data, tmp_path):
    assert forecast(data, tmp_path / "store") == 0
    stages = tmp_path / "store" / ".staging"
    assert stages.is_dir() and not [p for p in stages.rglob("*") if p.is_file()]


def test_stages_of_dead_processes_are_swept_live_ones_kept(tmp_path):
    root = tmp_path / "stages"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    gone = root / f"{dead}-{'a' * 12}"
    mine = root / f"{os.getpid()}-{'b' * 12}"
    for folder in (gone, mine):
        folder.mkdir(parents=True)
        (folder / "events.parquet").write_bytes(b"x" * 1000)
    assert sweep(root) == [gone]
    assert mine.is_dir() and not gone.exists()
    old = time.time() + 2 * 24 * 3600  # a day later, even a live id's stage is stale
    assert sweep(root, now=old) == [mine]


def test_a_killed_forecast_leaves_a_stage_the_next_one_sweeps(tmp_path):
    folder = tmp_path / "data"
    write_sample(folder, install_days=20, observed_days=20, n_campaigns=6, users_per_day=60,
                 seed=3)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "ltvcore.cli", "forecast", "--events",
               str(folder / "events.csv"), "--installs", str(folder / "installs.csv"),
               "--model", "calibrated", "--out", str(store), "--quiet"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stages = store / ".staging" / "run"
    deadline = time.monotonic() + 60
    while not (stages.is_dir() and any(stages.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = list(stages.iterdir())
    assert left, "the forecast was killed before it staged anything"
    assert main(command[3:-1] + ["--model", "geometric", "--quiet"]) == 0
    assert not any(p in list(stages.iterdir()) for p in left)


# -- 13: one line, warned, bounded ------------------------------------------------------


def test_a_user_id_with_a_newline_gives_a_one_line_error(data, tmp_path, capsys):
    events = with_line(data / "events.csv", tmp_path / "events.csv", '"ghost\nuser",2026-01-02,0')
    assert forecast(data, tmp_path / "store", events=events) == 2
    refused(capsys, "ghost\\nuser")


def test_spend_for_campaigns_not_in_the_data_is_warned_about(data, tmp_path, capsys):
    spend = with_line(data / "spend.csv", tmp_path / "spend.csv", "not_a_campaign,100")
    assert main(["forecast", "--events", str(data / "events.csv"), "--installs",
                 str(data / "installs.csv"), "--spend", str(spend), "--out",
                 str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert "warning: spend for campaigns not forecast here (not_a_campaign): ignored" in out
