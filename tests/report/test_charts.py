"""The charts a marketer reads without help (issue 16, item 3), on real runs of the sample data.

The report of a real run (with its input snapshot) draws observed days apart from projected ones,
names the currency on money axes, shows ROAS on a log spend axis with names that do not overlap,
a cohort retention chart, a search box over the forecast table and links to its CSV files. The
run page adds what ``report.html`` may not hold (it must stay reproducible byte for byte): the
forecast across earlier runs of the same dataset and, where ``ltv monitor`` wrote results into
the store, forecast against actual. Browser checks run in the machine's Chromium
(tests/browser.py) and skip only when it is absent.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ltvcore.api import pages
from ltvcore.api.history import MONITOR_KEY, run_history
from ltvcore.report import write_report
from ltvcore.report.figures.roas import place_labels
from ltvcore.request import ForecastRequest
from ltvcore.runs.store import open_store
from ltvcore.workflow.run import forecast_to_store
from tests.browser import CHROMIUM, Browser

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample") / "data"
    subprocess.run([sys.executable, "-m", "ltvcore.cli", "sample", "--out", str(folder)],
                   check=True, capture_output=True)
    return folder


def _forecast(sample: Path, store: Path, as_of: str) -> str:
    request = ForecastRequest(dataset="demo", as_of=as_of)
    outcome = forecast_to_store(request, events=sample / "events.csv",
                                installs=sample / "installs.csv", spend=sample / "spend.csv",
                                store=store)
    return outcome.run_id


@pytest.fixture(scope="module")
def runs(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A store with two runs of dataset "demo", two weeks of data apart."""
    store = tmp_path_factory.mktemp("store")
    return store, [_forecast(sample, store, "2026-02-14"), _forecast(sample, store, "2026-02-28")]


def _payload(page: str) -> dict[str, Any]:
    return json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))


# ---------------------------------------------------------------------------------------------
# the report's HTML


def test_report_draws_observed_apart_from_projected_with_currency(runs) -> None:
    store, (_, latest) = runs
    page = (store / "runs" / latest / "report.html").read_text()
    data = _payload(page)
    curves = data["curves"]
    dashed = [t for t in curves["data"] if t.get("line", {}).get("dash") == "dash"]
    solid = [t for t in curves["data"] if "name" in t and t.get("showlegend", True)]
    assert dashed and len(dashed) == len(solid)
    for seen, ahead in zip(solid, dashed, strict=True):
        assert seen["x"][-1] == ahead["x"][0]  # one unbroken line, two styles
    region = [s for s in curves["layout"]["shapes"] if s["type"] == "rect"]
    assert len(region) == 1 and region[0]["x0"] == min(t["x"][-1] for t in solid)
    assert "revenue currency" in curves["layout"]["yaxis"]["title"]["text"]
    assert "revenue currency" in data["roas"]["layout"]["xaxis"]["title"]["text"]
    assert data["roas"]["layout"]["xaxis"]["type"] == "log"
    # at most three groups (and their bands) are drawn before the reader asks for more
    assert len({t["legendgroup"] for t in curves["data"] if t["visible"] is True}) == 3


def test_report_has_retention_search_downloads_and_analysts_section(runs) -> None:
    store, (_, latest) = runs
    page = (store / "runs" / latest / "report.html").read_text()
    retention = _payload(page)["retention"]
    observed = [t for t in retention["data"] if t["mode"] == "markers"]
    fitted = [t for t in retention["data"] if t["mode"] == "lines"]
    assert observed and fitted and observed[0]["y"][0] == 1.0  # everyone is active on day 0
    assert len(fitted[0]["x"]) == 365 and len(observed[0]["x"]) < 365
    assert 'id="table-search"' in page
    for name in ("forecast.csv", "curve.csv", "params.json"):
        assert f'<a href="{name}" download>{name}</a>' in page
    analysts = re.search(r'<section id="analysts">(.*?)</section>', page, re.S).group(1)
    assert "<details" in analysts and 'id="params-table"' in analysts
    assert 'class="wrap">curve</td>' in page
    assert "run page of <code>ltv serve</code>" in page  # convergence lives there


def test_report_stays_deterministic_with_the_snapshot(runs) -> None:
    store, (_, latest) = runs
    run = store / "runs" / latest
    before = (run / "report.html").read_bytes()
    assert write_report(run, run_id=latest).read_bytes() == before


def test_label_placement_leaves_no_overlap_on_a_crowded_cluster() -> None:
    points = [(100.0 + 4 * i, 60.0 + (i % 3) * 5, f"campaign_{i}") for i in range(8)]
    offsets = place_labels(points, 900, 300)
    boxes = []
    for (x, y, text), offset in zip(points, offsets, strict=True):
        if offset is None:
            continue
        w = len(text) * 6.6 + 4
        boxes.append((x + offset[0] - w / 2, y + offset[1] - 7.5, x + offset[0] + w / 2,
                      y + offset[1] + 7.5))
    assert len(boxes) >= 6
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


# ---------------------------------------------------------------------------------------------
# the run page's view across runs


def _described(store: Path, run_id: str) -> dict[str, Any]:
    row = open_store(store).status(run_id)
    return {"run_id": run_id, "status": "succeeded", "request": row["request"],
            "as_of": row["as_of"]}


def test_a_single_run_says_so_in_plain_text(sample: Path, tmp_path: Path) -> None:
    run_id = _forecast(sample, tmp_path, "2026-02-28")
    history = run_history(open_store(tmp_path), _described(tmp_path, run_id))
    assert history["convergence"] is None
    assert "only run of dataset demo" in history["convergence_note"]
    assert history["actual"] is None and "no monitor results" in history["actual_note"]


def _write_monitor(store: Path, run_ids: list[str]) -> None:
    head = "run_id,as_of,model,model_version,by,campaign,horizon_days,requested,users," \
           "forecast,lower,upper,actual,error_pct,covered\n"
    lines = [f"{run_ids[0]},2026-02-14,curve,curve,campaign,fb_jp_q1,30,true,800,"
             "1.2,0.9,1.5,1.1,9.1,true",
             f"{run_ids[0]},2026-02-14,curve,curve,campaign,tiktok_us,30,true,900,"
             "0.8,0.7,0.9,1.0,-20,false",
             "someone-else,2026-01-01,curve,curve,campaign,x,30,true,5,1,1,1,1,0,true"]
    (store / MONITOR_KEY).parent.mkdir(parents=True, exist_ok=True)
    (store / MONITOR_KEY).write_text(head + "\n".join(lines) + "\n")


def test_convergence_and_actuals_come_from_the_store(runs) -> None:
    store, run_ids = runs
    _write_monitor(store, run_ids)
    history = run_history(open_store(store), _described(store, run_ids[1]))
    traces = history["convergence"]["data"]
    assert all(t["x"] == ["2026-02-14", "2026-02-28"] for t in traces)
    assert "revenue currency" in history["convergence"]["layout"]["yaxis"]["title"]["text"]
    assert "2 runs of dataset demo" in history["convergence_note"]
    actual = history["actual"]["data"]
    assert len(actual[0]["x"]) == 2  # the other store run's row is not this dataset's
    assert history["actual_note"].startswith("2 forecasts") and "1 of them" in history["actual_note"]


# ---------------------------------------------------------------------------------------------
# in Chromium


def _open(url: str, profile: Path, ready: str) -> Browser:
    browser = Browser(profile, width=1280, height=2400)
    try:
        browser.open(url)
        browser.wait_for(ready)
    except BaseException:
        browser.close()
        raise
    return browser


_DRAWN = """(id => { const el = document.getElementById(id);
    return !!el && el.classList.contains('js-plotly-plot')
           && el.querySelectorAll('svg.main-svg').length > 0
           && el.querySelectorAll('.scatterlayer .trace').length > 0; })"""


@needs_chromium
def test_report_charts_draw_labels_do_not_overlap_and_search_filters(runs, tmp_path) -> None:
    store, (_, latest) = runs
    report = store / "runs" / latest / "report.html"
    browser = _open(report.as_uri(), tmp_path / "profile",
                    "document.body.getAttribute('data-charts')")
    try:
        assert browser.eval("document.body.getAttribute('data-charts')") == "rendered"
        for chart in ("ltv-chart", "roas-chart", "retention-chart"):
            assert browser.eval(f"{_DRAWN}({json.dumps(chart)})"), chart
        dashed = browser.eval("""Array.from(document.querySelectorAll(
            '#ltv-chart .scatterlayer path.js-line')).filter(p =>
            (p.style.strokeDasharray || '').length > 0).length""")
        assert dashed >= 3  # the projected parts of the three drawn curves

        boxes = browser.eval("""Array.from(document.querySelectorAll('#roas-chart g.annotation'))
            .filter(g => g.style.display !== 'none').map(g => {
              const r = g.querySelector('.annotation-text').getBoundingClientRect();
              return [g.textContent, r.left, r.top, r.right, r.bottom]; })""")
        assert len(boxes) >= 8, boxes  # 11 campaigns with spend in the sample data
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert not (a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]), (a, b)

        rows = "Array.from(document.querySelectorAll('#forecast-table tbody tr'))"
        total = browser.eval(f"{rows}.length")
        shown = browser.eval(f"""(() => {{ const s = document.getElementById('table-search');
            s.value = 'tiktok_jp'; s.dispatchEvent(new Event('input'));
            return {rows}.filter(r => !r.hidden).map(r => r.cells[0].textContent); }})()""")
        assert shown == ["tiktok_jp"] * 4 and total > 4
        both = browser.eval(f"""(() => {{ const h = document.getElementById('horizon-filter');
            h.value = '365'; h.dispatchEvent(new Event('change'));
            return {rows}.filter(r => !r.hidden).length; }})()""")
        assert both == 1  # the search and the horizon apply together
        assert "1 of" in browser.eval("document.getElementById('table-count').textContent")
        assert browser.problems() == []
    finally:
        browser.close()


@needs_chromium
def test_run_page_draws_convergence_and_actuals(runs, tmp_path) -> None:
    store, run_ids = runs
    _write_monitor(store, run_ids)
    described = _described(store, run_ids[1])
    page = pages.run_page(prefix="", run=described,
                          history=run_history(open_store(store), described))
    path = tmp_path / "run.html"
    path.write_text(page)
    browser = _open(path.as_uri(), tmp_path / "profile",
                    "document.getElementById('actual-note').textContent")
    try:
        browser.wait_for(f"{_DRAWN}('convergence-chart') && {_DRAWN}('actual-chart')")
        note = browser.eval("document.getElementById('convergence-note').textContent")
        assert "2 runs of dataset demo" in note
        assert browser.problems() == []
    finally:
        browser.close()
