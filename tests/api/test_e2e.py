"""End to end: ``ltv serve`` in its own process, the form filled and submitted in headless
Chromium, the run page followed until the report shows the forecast."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture
def server(tmp_path: Path, data_dir: Path):
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LTV_SLACK", "LTV_STATE_MACHINE", "AWS_LAMBDA"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ltvcore.cli", "serve", "--port", "0", "--data-dir",
             str(data_dir), "--store", str(tmp_path / "store"), "--quiet"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "ltv serve did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{found.group(1)}", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_form_to_report_in_headless_chromium(server, browser_cls, tmp_path: Path) -> None:
    base, log = server
    with browser_cls(tmp_path / "profile", timeout=60) as browser:
        browser.open(f"{base}/")
        options = browser.eval("Array.from(document.getElementById('dataset').options, "
                               "o => o.value)")
        assert options == ["bad", "demo"]
        browser.eval("const d = document.getElementById('dataset'); d.value = 'demo';"
                     " d.dispatchEvent(new Event('change'))")
        assert browser.wait_for("document.querySelectorAll('#by-options input').length") == 4

        def fill(field: str, value: str) -> None:
            browser.eval(f"document.getElementById({json.dumps(field)}).value = "
                         f"{json.dumps(value)}")

        # a bad value: the server's message appears next to the right field
        fill("horizons", "30,90")
        fill("confidence", "1.5")
        fill("observe_days", "0")
        browser.eval("document.getElementById('submit').click()")
        message = browser.wait_for("document.getElementById('error-confidence').textContent")
        # plain words, the form's label first: no "field '…'", no interval notation
        assert message.startswith("Interval confidence: 1.5 is not a confidence between 0.5 and 1")
        # every invalid field at once, each next to its field
        assert browser.eval("document.getElementById('error-observe_days').textContent") == \
            "Observed days: 0 is too few days; use 1 to 366"
        assert browser.eval("document.getElementById('error-horizons').textContent") == ""
        fill("observe_days", "7")
        assert browser.eval("document.getElementById('accepted').hidden") is True

        # an as-of after the data ends: refused on that field, naming the data's last date
        fill("confidence", "0.95")
        fill("as_of", "2030-01-01")
        browser.eval("document.getElementById('submit').click()")
        message = browser.wait_for("document.getElementById('error-as_of').textContent")
        assert "last event date" in message and "2030-01-01" in message
        assert browser.eval("document.getElementById('accepted').hidden") is True
        fill("as_of", "")

        browser.eval("document.querySelector('#by-options input[value=os]').click()")
        fill("notify", "#growth")
        browser.eval("document.getElementById('submit').click()")
        # accepted: the form goes to the run page by itself
        run_id = browser.wait_for(
            "(location.pathname.match(/^\\/forecasts\\/([0-9a-f]{20})$/) || [])[1]")
        assert re.fullmatch(r"[0-9a-f]{20}", run_id)
        browser.wait_for("document.body.dataset.status !== undefined")
        browser.wait_for("document.body.dataset.status === 'succeeded'", timeout=90)
        links = browser.eval("Array.from(document.querySelectorAll('#downloads a'), "
                             "a => a.textContent)")
        assert {"forecast.csv", "curve.csv", "manifest.json"} <= set(links)
        # the report is in the page, and it shows the forecast of this run's groups
        rows = browser.wait_for(
            "(() => { const d = document.getElementById('report').contentDocument;"
            " return d && d.querySelectorAll('#forecast-table tbody tr').length; })()")
        assert rows == 3 * 2 * 2  # 3 campaigns × 2 os × 2 horizons
        report_text = browser.eval("document.getElementById('report').contentDocument.body"
                                   ".innerText")
        assert run_id in report_text and "fb_us_q1" in report_text
        csv_head = browser.eval(
            "fetch(document.querySelector('#downloads a[download$=\"forecast.csv\"]').href)"
            ".then(r => r.text()).then(t => t.split('\\n')[0])")
        assert csv_head.startswith('"campaign","os","horizon_days"')
        manifest = browser.eval(
            "fetch(document.querySelector('#downloads a[download$=\"manifest.json\"]').href)"
            ".then(r => r.json())")
        assert manifest["run_id"] == run_id and manifest["request"]["confidence"] == 0.95
        # by campaign and os there is no ROAS: the run page says why (spend is per campaign)
        note = browser.eval("document.getElementById('decision-note').textContent")
        assert "grouped by campaign, os" in note and "--" not in note
        warnings = browser.eval("document.getElementById('warning-list').textContent")
        assert "grouped by campaign alone" in warnings and "--by" not in warnings
        assert browser.eval("document.getElementById('decision-table').hidden") is True
        (tmp_path / "run-page.png").write_bytes(browser.screenshot())

        # by campaign with spend: the run page's decision table, labelled as the report is
        accepted = browser.eval(
            "fetch('/forecasts', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({dataset: 'demo', horizons: [30, 90], target_roas: 0.5})})"
            ".then(r => r.json())")
        browser.navigate(f"{base}/forecasts/{accepted['run_id']}")
        browser.wait_for("document.body.dataset.status === 'succeeded'", timeout=90)
        table = browser.eval(
            "Array.from(document.querySelectorAll('#decision-table tbody tr'), r =>"
            " [r.cells[1].textContent, r.cells[2].textContent, r.cells[3].textContent])")
        assert len(table) == 3 and browser.eval(
            "document.getElementById('decision-table').hidden") is False
        assert all(label in ("scale", "watch", "cut") for _, label, _ in table)
        assert [float(p.rstrip("%")) for _, _, p in table] == sorted(
            (float(p.rstrip("%")) for _, _, p in table), reverse=True)
        assert "reaches 0.50x" in browser.eval(
            "document.getElementById('decision-note').textContent")
        report_rows = browser.wait_for(
            "(() => { const d = document.getElementById('report').contentDocument;"
            " const rows = d && d.querySelectorAll('#decision-table tbody tr');"
            " return rows && rows.length && Array.from(rows, r =>"
            " [r.cells[1].textContent, r.cells[2].textContent, r.cells[3].textContent]); })()")
        assert report_rows == table
        (tmp_path / "run-page-decision.png").write_bytes(browser.screenshot())

        browser.navigate(f"{base}/forecasts")
        assert browser.eval(
            f"!!document.querySelector('tr[data-run=\"{run_id}\"] .badge.succeeded')")
        problems = browser.problems(allowed_hosts=(base,))
        expected = [p for p in problems if "status of 400" in p]  # refused confidence and as-of
        assert len(expected) == 2 and [p for p in problems if p not in expected] == []
    assert "LTV forecast ready" in log.read_text()  # no webhook configured: printed locally


def test_all_form_errors_at_once_and_progress_while_computing(make_api, serve, browser_cls,
                                                              tmp_path: Path) -> None:
    """A slowed computation: the run page shows its stage and elapsed time while it runs."""
    api = make_api(delay=3.0)
    base = f"http://127.0.0.1:{serve(api)}"
    with browser_cls(tmp_path / "profile", timeout=60) as browser:
        browser.open(f"{base}/")
        browser.eval("const d = document.getElementById('dataset'); d.value = 'demo';"
                     " d.dispatchEvent(new Event('change'))")
        browser.wait_for("document.querySelectorAll('#by-options input').length")

        def fill(field: str, value: str) -> None:
            browser.eval(f"document.getElementById({json.dumps(field)}).value = "
                         f"{json.dumps(value)}")

        bad = {"horizons": "30,x", "observe_days": "0", "window_days": "abc",
               "confidence": "2", "target_roas": "-1", "as_of": ""}
        for field, value in bad.items():
            fill(field, value)
        browser.eval("document.querySelector('#by-options input[value=campaign]').click()")
        browser.eval("document.getElementById('submit').click()")
        browser.wait_for("document.getElementById('error-horizons').textContent")
        shown = browser.eval(
            "Object.fromEntries(Array.from(document.querySelectorAll('.error'),"
            " e => [e.id.replace('error-', ''), e.textContent]))")
        assert shown["horizons"] == "Horizons: 'x' is not a number of days"
        assert shown["observe_days"].startswith("Observed days: 0 is too few days")
        assert shown["window_days"] == "Install window: 'abc' is not a number of days"
        assert shown["confidence"].startswith("Interval confidence: 2 is not")
        assert shown["target_roas"].startswith("Target ROAS: -1 is not a ROAS")
        assert shown["by"] == "Group by: pick at least one column, e.g. campaign"
        for text in shown.values():
            assert "field '" not in text
        assert browser.eval("location.pathname") == "/"

        for field, value in {"horizons": "30", "observe_days": "7", "window_days": "",
                             "confidence": "0.9", "target_roas": "1"}.items():
            fill(field, value)
        browser.eval("document.querySelector('#by-options input[value=campaign]').click()")
        browser.eval("document.getElementById('submit').click()")
        browser.wait_for("/^\\/forecasts\\/[0-9a-f]{20}$/.test(location.pathname)")
        browser.wait_for("document.body.dataset.status === 'running'")
        progress = browser.wait_for(
            "(() => { const p = document.getElementById('progress');"
            " return !p.hidden && /elapsed/.test(p.textContent) && p.textContent; })()")
        assert "Reading the data" in progress and re.search(r"\d+ s elapsed", progress)
        assert browser.eval("document.getElementById('progress').dataset.stage") == "reading"
        browser.wait_for("document.body.dataset.status === 'succeeded'", timeout=90)
        assert browser.eval("document.getElementById('progress').hidden") is True
        facts = browser.eval("document.getElementById('facts').textContent")
        assert "Submitted" in facts and "Finished" in facts
        (tmp_path / "run-page-done.png").write_bytes(browser.screenshot())

        # the runs list: filter and sort in the page
        browser.navigate(f"{base}/forecasts")
        assert browser.eval("document.querySelectorAll('#runs tbody tr[data-run]').length") == 1
        browser.eval("const f = document.getElementById('runs-filter'); f.value = 'nomatch';"
                     " f.dispatchEvent(new Event('input'))")
        assert browser.eval("document.querySelector('#runs tbody tr[data-run]').hidden") is True
        browser.eval("const g = document.getElementById('runs-filter'); g.value = 'succeeded';"
                     " g.dispatchEvent(new Event('input'))")
        assert browser.eval("document.querySelector('#runs tbody tr[data-run]').hidden") is False
        browser.eval("document.querySelector('th[data-key=status] button').click()")
        assert browser.eval(
            "document.querySelector('th[data-key=status]').getAttribute('aria-sort')") == "ascending"
        assert browser.problems(allowed_hosts=(base,)) == [
            p for p in browser.problems(allowed_hosts=(base,)) if "status of 400" in p]
