"""End to end in headless Chromium: ``ltv serve``'s models page promotes a trained version, the
form then forecasts with ``history@champion``, and the run reproduces identically."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import browser as browser_module


@pytest.fixture
def server(tmp_path: Path, store: Path, young_data: Path):
    if browser_module.CHROMIUM is None:
        pytest.skip("Chromium is not installed (run scripts/ensure-chromium.sh as root)")
    data_dir = tmp_path / "datasets"
    shutil.copytree(young_data, data_dir / "young")
    (data_dir / "young" / "truth.csv").unlink()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LTV_SLACK", "LTV_STATE_MACHINE", "AWS_LAMBDA"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ltvcore.cli", "serve", "--port", "0", "--data-dir",
             str(data_dir), "--store", str(store), "--quiet"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "ltv serve did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_promote_on_the_models_page_then_forecast_with_the_champion(server, store, tmp_path,
                                                                     ltv, capsys) -> None:
    [version] = [p.name for p in (store / "models/history").iterdir() if p.name != "stages"]
    with browser_module.Browser(tmp_path / "profile", timeout=60) as browser:
        browser.open(f"{server}/models")
        row = f"tr[data-version='{version}']"
        stage = f"document.querySelector(\"{row} [data-col=stage]\").textContent.trim()"
        assert browser.eval(stage) == "challenger"  # set by the rule on training
        browser.eval(f"document.querySelector(\"{row} input[name=reason]\").value = "
                     "'best out-of-fold error'")
        browser.eval(f"document.querySelector(\"{row} form.promote button\").click()")
        browser.wait_for(f"{stage} === 'champion'")  # the page reloads with the new stage
        who = browser.eval(f"document.querySelector(\"{row} [data-col=promoted_by]\").textContent")
        assert who == getpass.getuser()  # the requester ltv serve knows, not a form field
        assert browser.eval(f"document.querySelector(\"{row} [data-col=reason]\").textContent") \
            == "best out-of-fold error"

        browser.navigate(f"{server}/")
        labels = browser.eval("Object.fromEntries(Array.from(document.getElementById('model')"
                              ".options, o => [o.value, o.textContent]))")
        assert labels["history@champion"] == \
            f"history@champion — the champion of history, version {version}"
        browser.eval("document.getElementById('model').value = 'history@champion'")
        browser.eval("document.getElementById('horizons').value = '30,90'")
        browser.eval("document.getElementById('submit').click()")
        run_id = browser.wait_for(
            "(location.pathname.match(/^\\/forecasts\\/([0-9a-f]{20})$/) || [])[1]")
        browser.wait_for("document.body.dataset.status === 'succeeded'", timeout=90)
        manifest = browser.eval(
            "fetch(document.querySelector('#downloads a[download$=\"manifest.json\"]').href)"
            ".then(r => r.json())")
    assert manifest["run_id"] == run_id
    assert manifest["model_version"] == manifest["request"]["model"] == f"history@{version}"
    capsys.readouterr()
    assert ltv("reproduce", store / "runs" / run_id) == 0
    assert "identical" in capsys.readouterr().out
    events = sorted((store / "models/history/stages").iterdir())
    assert json.loads(events[0].read_text())["stage"] == "champion"
