"""``ltv monitor`` on the command line: exit 2 with one line and nothing written on bad input,
outputs replaced whole, a self-contained page, thresholds from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltvcore.errors import InputError
from ltvcore.monitor import settings
from ltvcore.monitor.runs import version_label
from tests.browser import CHROMIUM, Browser
from tests.monitor.conftest import ltv, monitor_args


def _bad(world, tmp_path, *, store=None, events=None, out=None, env=None, extra=()):
    out = out or tmp_path / "out"
    args = monitor_args(world, out, events=events)
    if store is not None:
        args[args.index("--store") + 1] = str(store)
    ran = ltv(*args, *extra, env=env)
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert len(ran.err.strip().splitlines()) == 1, ran.err
    return ran


@pytest.mark.parametrize("case,fragment", [
    ("empty store", "no runs in"),
    ("no such store", "no runs in"),
    ("only failed runs", "have succeeded"),
    ("not a store", "unsupported store URI"),
    ("no events file", "missing.csv: file not found"),
    ("out is a file", "is not a directory"),
    ("bad threshold", "LTV_MONITOR_MAPE_ALERT"),
    ("bad recent runs", "LTV_MONITOR_RECENT_RUNS"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(world, tmp_path, case, fragment):
    kwargs: dict = {}
    if case == "empty store":
        (tmp_path / "empty").mkdir()
        kwargs["store"] = tmp_path / "empty"
    elif case == "no such store":
        kwargs["store"] = tmp_path / "nowhere"
    elif case == "only failed runs":
        from ltvcore.runs.store import open_store

        open_store(tmp_path / "failed").mark("onlyfailed01", "failed", {})
        kwargs["store"] = tmp_path / "failed"
    elif case == "not a store":
        kwargs["store"] = "ftp://example.com/runs"
    elif case == "no events file":
        kwargs["events"] = tmp_path / "missing.csv"
    elif case == "out is a file":
        (tmp_path / "taken").write_text("mine")
        kwargs["out"] = tmp_path / "taken"
    elif case == "bad threshold":
        kwargs["env"] = {"LTV_MONITOR_MAPE_ALERT": "a lot"}
    elif case == "bad recent runs":
        kwargs["env"] = {"LTV_MONITOR_RECENT_RUNS": "0"}
    ran = _bad(world, tmp_path, **kwargs)
    assert fragment in ran.err and ran.err.startswith("ltv: error: ")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "nowhere").exists()  # a store that is not there is not created
    if case == "empty store":
        assert list((tmp_path / "empty").iterdir()) == []  # nor written into
    if case == "out is a file":
        assert (tmp_path / "taken").read_text() == "mine"


def test_the_required_options_are_required(world, tmp_path):
    ran = ltv("monitor", "--store", str(world.store), "--out", str(tmp_path / "out"))
    assert ran.code == 2 and not (tmp_path / "out").exists()


def test_outputs_are_replaced_whole_and_no_temporary_file_is_left(world, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "monitor.csv").write_text("old")
    (out / "keep.txt").write_text("not ours")
    assert ltv(*monitor_args(world, out)).code == 0
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "monitor.csv", "monitor.html"]
    assert (out / "monitor.csv").read_text().startswith('"run_id","as_of"')

    # A failure while the page is built leaves the previous pair as it was.
    before = {name: (out / name).read_bytes() for name in ("monitor.csv", "monitor.html")}

    def broken(result):
        raise RuntimeError("page exploded")

    monkeypatch.setattr("ltvcore.monitor.page.build_page", broken)
    ran = ltv(*monitor_args(world, out))
    assert ran.code == 1 and "page exploded" in ran.err
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "monitor.csv", "monitor.html"]


def test_the_page_is_self_contained(monitored):
    import plotly.offline

    page = (monitored[0] / "monitor.html").read_text()
    bundle = plotly.offline.get_plotlyjs()
    assert page.count(bundle) == 1
    rest = page.replace(bundle, "")
    assert "<script src" not in rest and "<link" not in rest
    assert "http://" not in rest and "https://" not in rest
    data = json.loads(rest.split('<script type="application/json" id="report-data">', 1)[1]
                      .split("</script>", 1)[0])
    assert set(data["charts"]) == {"mape-chart", "bias-chart", "coverage-chart", "scatter-chart"}


def test_the_terminal_summary(monitored, world):
    _, ran = monitored
    assert f"data through {world.data_end}: 4 of 6 run(s) compared" in ran.out
    assert "1 too recent, 1 left out" in ran.out
    assert "monitor.csv" in ran.out and "monitor.html" in ran.out


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_the_page_draws_its_charts_in_headless_chromium(monitored, tmp_path):
    page = monitored[0] / "monitor.html"
    with Browser(tmp_path / "profile", width=1280, height=2400) as browser:
        browser.open(page.as_uri())
        assert browser.wait_for("document.body.getAttribute('data-charts')") == "rendered"
        assert browser.eval("document.querySelectorAll('svg.main-svg').length") >= 4
        assert browser.eval("document.querySelectorAll('#scatter-chart .point').length") > 10
        assert browser.problems() == []


def test_thresholds_have_stated_defaults_and_environment_overrides():
    assert settings.thresholds({}) == settings.Thresholds(25.0, 15.0, 3, 20.0)
    limits = settings.thresholds({"LTV_MONITOR_MAPE_ALERT": "30%", "LTV_MONITOR_BIAS_ALERT": " 10 ",
                                  "LTV_MONITOR_RECENT_RUNS": "5",
                                  "LTV_MONITOR_ASSUMPTION_TOLERANCE": "50"})
    assert limits == settings.Thresholds(30.0, 10.0, 5, 50.0)
    for bad in ("-5", "0", "nan", "inf", "lots"):
        with pytest.raises(InputError, match="LTV_MONITOR_BIAS_ALERT"):
            settings.thresholds({"LTV_MONITOR_BIAS_ALERT": bad})


def test_model_version_comes_from_the_manifest_when_recorded():
    assert version_label(None, "curve") == "curve"
    assert version_label("", "curve") == "curve"
    assert version_label("curve-2026.03", "curve") == "curve-2026.03"
    assert version_label({"name": "curve", "version": 4}, "geometric") == "curve@4"
    assert version_label({"name": "curve"}, "curve") == "curve"


def test_the_documented_contract_matches_the_parser():
    import argparse

    from ltvcore.cli.monitor import add_parser

    subparsers = argparse.ArgumentParser(prog="ltv").add_subparsers(dest="command")
    add_parser(subparsers)
    usage = subparsers.choices["monitor"].format_usage()
    doc = (Path(__file__).parents[2] / "docs" / "monitor.md").read_text()
    assert "ltv monitor [--store STORE] --events PATH [--installs PATH] [--spend PATH] --out DIR" in doc
    for option in ("--store", "--events", "--installs", "--spend", "--out"):
        assert option in usage


def test_a_warehouse_as_newer_data_gives_the_same_rows(world, monitored, tmp_path):
    warehouse = tmp_path / "warehouse"
    assert ltv("warehouse", "ingest", warehouse, "--events", world.full / "events.csv",
               "--installs", world.full / "installs.csv", "--refresh").code == 0
    ran = ltv("monitor", "--store", world.store, "--events", warehouse, "--out", tmp_path / "out")
    assert ran.code == 0, ran.err
    assert (tmp_path / "out" / "monitor.csv").read_bytes() == \
        (monitored[0] / "monitor.csv").read_bytes()


def test_a_damaged_run_is_left_out_with_the_reason_and_the_others_still_compared(world, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(world.store, store)
    (store / "runs" / world.runs["late_curve"] / "curve.csv").unlink()
    ran = ltv("monitor", "--store", store, "--events", world.full / "events.csv",
              "--installs", world.full / "installs.csv", "--out", tmp_path / "out")
    assert ran.code == 0, ran.err
    assert "3 of 6 run(s) compared" in ran.out
    page = (tmp_path / "out" / "monitor.html").read_text()
    assert f'{world.runs["late_curve"]}</span>: unreadable (FileNotFoundError' in page
