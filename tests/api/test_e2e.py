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
        assert "confidence" in message and "[0.5, 1)" in message
        # every invalid field at once, each next to its field
        assert "out of range" in browser.eval("document.getElementById('error-observe_days').textContent")
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
        browser.wait_for("!document.getElementById('accepted').hidden")
        assert browser.eval("document.getElementById('error-confidence').textContent") == ""
        run_id = browser.eval("document.getElementById('accepted-id').textContent")
        assert re.fullmatch(r"[0-9a-f]{20}", run_id)

        browser.eval("document.getElementById('run-link').click()")
        browser.wait_for(f"location.pathname === '/forecasts/{run_id}'")
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
        # by campaign and os there is no ROAS, so the run page says a decision needs spend
        assert "A decision needs spend" in browser.eval(
            "document.getElementById('decision-note').textContent")
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
