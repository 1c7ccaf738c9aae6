"""report.html: unit checks on the HTML, then the page loaded in headless Chromium.

The browser checks drive Debian's Chromium over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: plain NUL-separated JSON on fds 3/4, no websocket library needed).
They skip only when Chromium is absent; ``scripts/ensure-chromium.sh`` installs it.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltvcore.ltv import CurveLTV
from ltvcore.payback import payback_columns
from ltvcore.report import render_report, write_report
from tests.browser import CHROMIUM, Browser

HORIZONS = (30, 90, 180, 365)
EVIL = '<script>alert("x")</script>&\'"<a href="https://evil.example">x</a>'


# ---------------------------------------------------------------------------------------------
# fixture builder


def make_run(run_dir: Path, *, campaigns: dict[str, dict[str, float]] | None = None,
             spend: bool = True, by_os: bool = False, extras: bool = True,
             manifest: dict[str, Any] | None = None) -> Path:
    """Write forecast.csv, curve.csv and params.json for a few synthetic campaigns.

    Each campaign is ``{"scale": LTV plateau, "users": n, "spend": amount or NaN}``.
    """
    campaigns = campaigns or {
        "summer_sale": {"scale": 9.0, "users": 4000, "spend": 18000.0},   # scale
        "brand_search": {"scale": 6.0, "users": 2500, "spend": 16000.0},  # cut (ROAS ≈ 0.94)
        "tiktok_ugc": {"scale": 3.0, "users": 6000, "spend": 9000.0},     # scale
        "organic": {"scale": 4.0, "users": 8000, "spend": math.nan},      # no spend
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    oses = ("ios", "android") if by_os else (None,)
    forecast_rows, curve_rows, param_groups = [], [], []
    for name, c in campaigns.items():
        for os_name in oses:
            key = {"campaign": name} | ({"os": os_name} if os_name else {})
            scale = c["scale"] * (1.2 if os_name == "ios" else 1.0)
            tau = 60.0
            curve = [scale * (1 - math.exp(-(d + 1) / tau)) for d in range(max(HORIZONS))]
            for day, value in enumerate(curve):
                width = 0.25 * value * (1 - 0.5 * day / max(HORIZONS))
                curve_rows.append(key | {"day": day, "ltv": value, "ltv_lower": value - width,
                                         "ltv_upper": value + width})
            band = np.array([[value, 0.25 * value * (1 - 0.5 * day / max(HORIZONS))]
                             for day, value in enumerate(curve)])
            payback = payback_columns(
                CurveLTV(band[None, :, 0], band[None, :, 0] - band[None, :, 1],
                         band[None, :, 0] + band[None, :, 1]),
                np.array([c["users"]]), np.array([c["spend"]]), np.array(HORIZONS), 1.0, 0.99)
            for i, h in enumerate(HORIZONS):
                value = curve[h - 1]
                width = 0.25 * value * (1 - 0.5 * (h - 1) / max(HORIZONS))
                row = key | {"horizon_days": h, "users": c["users"], "ltv": value,
                             "ltv_lower": value - width, "ltv_upper": value + width,
                             "model": "curve"}
                if spend:
                    s = c["spend"]
                    row |= {"spend": s, "roas": value * c["users"] / s,
                            "roas_lower": (value - width) * c["users"] / s,
                            "roas_upper": (value + width) * c["users"] / s,
                            "p_payback": payback["p_payback"][0, i]}
                    row |= {k: v[0] for k, v in payback.items() if k != "p_payback"}
                forecast_rows.append(row)
            param_groups.append({"key": key, "models": {
                "sbg": {"alpha": 0.8 + scale / 10, "beta": 2.5},
                "rational": {"a": 0.6, "b": 0.05, "c": 1.0, "d": 1.0},
                "arpu": {"daily": scale / 200}}})
    pd.DataFrame(forecast_rows).to_csv(run_dir / "forecast.csv", index=False)
    pd.DataFrame(curve_rows).to_csv(run_dir / "curve.csv", index=False)
    params: dict[str, Any] = {"groups": param_groups}
    if extras:
        params |= {
            "run_id": "r-3f9a1c",
            "as_of": "2026-03-31",
            "request": {"dataset": "demo-game", "by": ["campaign", "os"] if by_os else ["campaign"],
                        "horizons": list(HORIZONS), "confidence": 0.99, "model": "curve",
                        "retention": "ensemble", "observe_days": 7},
            "warnings": ["12 users have events before their install date; they were dropped.",
                         "Campaign 'tiktok_ugc' has only 6 days of data."],
            "assumptions": ["Retention keeps following the fitted curve after the observed days.",
                            "ARPU of active users stays at its recent moving average."],
        }
    (run_dir / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")
    if manifest is not None:
        (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run_dir


def _outside_plotly(page: str) -> str:
    """The page without the embedded plotly.js (whose source mentions URLs it never loads here)."""
    import plotly.offline

    bundle = plotly.offline.get_plotlyjs()
    assert page.count(bundle) == 1, "plotly.js must be embedded exactly once"
    return page.replace(bundle, "")


def _table_rows(page: str) -> list[str]:
    body = re.search(r'<table id="forecast-table".*?<tbody>(.*?)</tbody>', page, re.S)
    assert body
    return re.findall(r"<tr[^>]*>.*?</tr>", body.group(1), re.S)


# ---------------------------------------------------------------------------------------------
# unit checks on the HTML


def test_page_is_self_contained_without_external_urls(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path / "run"))
    rest = _outside_plotly(page)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", rest, re.I), \
        re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", rest, re.I)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page, re.I)
    assert "default-src 'none'" in page  # the browser refuses any network load as well
    assert page.count("<script") == 3  # data, plotly.js, the page's own script


def test_header_shows_run_request_model_and_details(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path / "run"))
    for text in ("LTV forecast — demo-game", "r-3f9a1c", "2026-03-31", "curve",
                 "retention fit: ensemble", "99% interval",
                 "12 users have events before their install date",
                 "Retention keeps following the fitted curve",
                 "alpha = ", "beta = 2.5", "observe_days"):
        assert text in page, text


def test_manifest_fills_run_id_and_explicit_run_id_wins(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", extras=False,
                   manifest={"run_id": "from-manifest", "as_of": "2026-02-01",
                             "request": {"dataset": "ds"}})
    page = render_report(run)
    assert "from-manifest" in page and "2026-02-01" in page and "LTV forecast — ds" in page
    assert "override-id" in render_report(run, run_id="override-id")
    assert "No assumptions were recorded" in page
    assert "No data-quality warnings" in page


def test_group_names_are_escaped(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", campaigns={
        EVIL: {"scale": 9.0, "users": 100, "spend": 100.0},
        "plain": {"scale": 2.0, "users": 100, "spend": 1000.0}})
    params = json.loads((run / "params.json").read_text())
    params["warnings"].append("<img src=x onerror=alert(1)>")
    (run / "params.json").write_text(json.dumps(params))
    page = _outside_plotly(render_report(run))
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert '<a href="https://evil' not in page
    # Shown as text, once per horizon in the forecast table, once in the parameter table and
    # once in the decision table.
    cells = [html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", page)]
    assert cells.count(EVIL) == len(HORIZONS) + 1 + 1
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page,
                     re.S)
    assert data and "<" not in data.group(1)
    names = {t.get("name") for t in json.loads(data.group(1))["curves"]["data"]}
    assert html.escape(EVIL, quote=False) in names  # plotly decodes &lt; &gt; &amp; back


def test_every_data_value_is_text_not_markup(tmp_path: Path) -> None:
    from html.parser import HTMLParser

    run = make_run(tmp_path / "run", campaigns={
        EVIL: {"scale": 9.0, "users": 100, "spend": 100.0}})
    params = json.loads((run / "params.json").read_text())
    params["request"] |= {"dataset": EVIL, "requested_by": EVIL}
    params["warnings"] = [EVIL]
    params["assumptions"] = [EVIL]
    params["model_selection"] = {"why": EVIL, "method": EVIL}
    params["setting"] = EVIL
    params["groups"][0]["models"] = {EVIL: {EVIL: EVIL}}
    (run / "params.json").write_text(json.dumps(params))
    page = _outside_plotly(render_report(run, run_id=EVIL))

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.tags: list[str] = []
            self.text: list[str] = []
            self.raw = False

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            self.tags.append(tag)
            self.raw = tag in ("script", "style")

        def handle_endtag(self, tag: str) -> None:
            self.raw = False

        def handle_data(self, data: str) -> None:
            if not self.raw:
                self.text.append(data)

    parsed = Collect()
    parsed.feed(page)
    assert parsed.tags.count("script") == 3 and "img" not in parsed.tags
    text = "".join(parsed.text)
    # <title>, <h1>, the run card, the request (dataset, requested_by), the model choice (why,
    # method), the warning, the forecast table (one row per horizon), the parameter table
    # (model, group, "name = value"), the run setting, the assumption and the decision table.
    assert text.count(EVIL) == 2 + 1 + 2 + 2 + 1 + len(HORIZONS) + 4 + 1 + 1 + 1, \
        text.count(EVIL)


def test_only_our_own_code_bypasses_autoescape() -> None:
    from ltvcore.report import page as page_module

    env = page_module._ENV
    assert env.autoescape("report.html") is True and env.autoescape("macros.html") is True
    unsafe = set()
    for name in env.list_templates(extensions=["html"]):
        source = env.loader.get_source(env, name)[0]
        unsafe |= set(re.findall(r"\{\{\s*(\w+)\s*\|\s*safe", source))
    assert unsafe == {"css", "plotly_js", "script"}  # assets.py and the plotly.js bundle


def test_a_value_the_template_needs_is_never_silently_empty() -> None:
    import jinja2

    from ltvcore.report import page as page_module

    with pytest.raises(jinja2.UndefinedError):
        page_module._ENV.get_template("report.html").render(title="t")


def test_sortable_table_and_decision_rule(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path / "run"))
    assert 'class="sortable"' in page and "sortTable" in page and 'data-type="num"' in page
    assert ("p_payback = probability that ROAS at 365 days reaches 1.00x; scale when ≥ 0.8, "
            "cut when ≤ 0.2") in page
    rows = _table_rows(page)
    assert len(rows) == 4 * len(HORIZONS)
    scale = [r for r in rows if 'class="scale"' in r]
    # summer_sale and tiktok_ugc: ROAS ≈ 2 with a narrow band; brand_search ≈ 0.94.
    assert len(scale) == 2
    assert all('data-horizon="365"' in r for r in scale)
    assert any("summer_sale" in r for r in scale) and any("tiktok_ugc" in r for r in scale)
    assert 'id="roas-chart"' in page and "ROAS = 1 (target)" in page
    assert "2 of 3" in page  # to-scale count card: organic has no spend


def _decision_rows(page: str) -> list[tuple[str, str]]:
    body = re.search(r'<table id="decision-table">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return re.findall(r'data-label="(\w+)"><td class="num">\d+</td><td>([^<]*)</td>', body)


def test_decision_view_ranks_campaigns_by_payback_probability(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path / "run"))
    assert page.index('id="decision"') < page.index('id="warnings"')  # at the top
    ranked = _decision_rows(page)
    # summer_sale and tiktok_ugc both pay back almost surely; the higher ROAS ranks first.
    assert [name for _, name in ranked] == ["summer_sale", "tiktok_ugc", "brand_search"]
    assert [label for label, _ in ranked] == ["scale", "scale", "cut"]
    assert "2 to scale, 0 to watch, 1 to cut" in page
    assert "not within 365 days" in page  # brand_search never reaches ROAS 1


def test_decision_thresholds_from_the_environment_are_stated(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LTV_DECISION_CUT", "0.01")
    page = render_report(make_run(tmp_path / "run"))
    assert "cut when ≤ 0.01" in page
    assert [label for label, _ in _decision_rows(page)] == ["scale", "scale", "watch"]


def test_without_spend_the_decision_view_says_it_needs_spend(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path / "run", spend=False))
    assert 'id="decision-missing"' in page and "A decision needs spend" in page
    assert 'id="decision-table"' not in page and "badge scale" not in page


def test_no_spend_variant_replaces_roas_chart_with_a_note(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path / "run", spend=False))
    assert 'id="roas-chart"' not in page
    assert 'id="roas-missing"' in page and "No spend data" in page
    assert 'class="scale"' not in page
    assert "ROAS upper" not in page
    data = re.search(r'id="report-data">(.*?)</script>', page, re.S)
    assert json.loads(data.group(1))["roas"] is None


def test_many_groups_show_top_ten_with_a_note(tmp_path: Path) -> None:
    campaigns = {f"c{i:02d}": {"scale": float(i + 1), "users": 100, "spend": 500.0}
                 for i in range(14)}
    page = render_report(make_run(tmp_path / "run", campaigns=campaigns, extras=False))
    assert "The legend offers the 10 groups with the highest LTV at day 365 (of 14" in page
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    names = [t["name"] for t in data["curves"]["data"] if t.get("showlegend", True)]
    assert names == [f"c{i:02d}" for i in range(13, 3, -1)]
    # only the top three are drawn (with their bands) until the reader picks others
    drawn = {t["name"] for t in data["curves"]["data"] if "name" in t and t["visible"] is True}
    assert drawn == {"c13", "c12", "c11"}
    assert len(_table_rows(page)) == 14 * len(HORIZONS)


def test_multi_column_groups(tmp_path: Path) -> None:
    page = render_report(make_run(tmp_path / "run", by_os=True))
    assert "summer_sale · ios" in page
    assert re.search(r"<th[^>]*>campaign</th><th[^>]*>os</th><th[^>]*>decision</th>"
                     r"<th[^>]*>horizon", page)
    assert "ROAS per group" in page


def test_write_report_is_atomic_and_deterministic(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    path = write_report(run)
    assert path == run / "report.html"
    first = path.read_bytes()
    write_report(run)
    assert path.read_bytes() == first
    assert sorted(p.name for p in run.iterdir()) == ["curve.csv", "forecast.csv", "params.json",
                                                     "report.html"]


def test_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    frame = pd.read_csv(run / "forecast.csv").drop(columns=["ltv_upper"])
    frame.to_csv(run / "forecast.csv", index=False)
    with pytest.raises(ValueError, match="forecast.csv: missing column"):
        render_report(run)


# ---------------------------------------------------------------------------------------------
# headless Chromium over the DevTools protocol (pipe transport)

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed and could not be installed "
           "(run scripts/ensure-chromium.sh as root: apt-get install chromium)")
WIDTH, HEIGHT = 1280, 2000


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG: (width, height, rows of raw pixel bytes). Stdlib only."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def colour_stats(png: bytes, target: str) -> tuple[int, float, int]:
    """(distinct RGB colours, share of not near-white pixels, pixels near ``target`` "#rrggbb")."""
    width, height, rows = png_pixels(png)
    bpp = len(rows[0]) // width
    want = tuple(int(target[i:i + 2], 16) for i in (1, 3, 5))
    colours: set[bytes] = set()
    inked = matching = 0
    for row in rows:
        for i in range(0, len(row), bpp):
            rgb = row[i:i + 3]
            colours.add(rgb)
            if min(rgb) < 235:
                inked += 1
                if all(abs(a - b) <= 24 for a, b in zip(rgb, want, strict=True)):
                    matching += 1
    return len(colours), inked / (width * height), matching


def _load(url: str, profile: Path) -> Browser:
    browser = Browser(profile, width=WIDTH, height=HEIGHT)
    try:
        browser.open(url)
        state = browser.wait_for(
            "document.body.getAttribute('data-charts') || "
            "(document.readyState === 'complete' && !document.getElementById('ltv-chart') "
            "&& 'none')")
    except BaseException:
        browser.close()
        raise
    browser.state = state  # type: ignore[attr-defined]
    return browser


def _clip(browser: Browser, selector: str, scale: float = 0.5) -> dict[str, float]:
    box = browser.eval(
        f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
        ".getBoundingClientRect(); return {x: r.left + scrollX, y: r.top + scrollY, "
        "width: r.width, height: r.height}; })()")
    return box | {"scale": scale}


def _keep(name: str, data: bytes, tmp_path: Path) -> Path:
    """Screenshots land in tmp_path; LTV_REPORT_SCREENSHOTS=DIR keeps a copy to look at."""
    path = tmp_path / name
    path.write_bytes(data)
    keep = os.environ.get("LTV_REPORT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


@needs_chromium
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    report = write_report(run)
    browser = _load(report.as_uri(), tmp_path / "profile")
    try:
        assert browser.state == "rendered", browser.eval(
            "document.querySelector('.chart-error').textContent")
        counts = browser.eval("""({
            svgs: document.querySelectorAll('svg.main-svg').length,
            ltvSvgs: document.querySelectorAll('#ltv-chart svg.main-svg').length,
            ltvTraces: document.querySelectorAll('#ltv-chart .scatterlayer .trace').length,
            ltvLegend: document.querySelectorAll('#ltv-chart .legend .traces').length,
            ltvPaths: Array.from(document.querySelectorAll('#ltv-chart .scatterlayer path.js-line'))
                        .filter(p => (p.getAttribute('d') || '').length > 100).length,
            roasPoints: document.querySelectorAll('#roas-chart .scatterlayer .point').length,
            roasErrorBars: document.querySelectorAll('#roas-chart .errorbar').length,
            roasText: Array.from(document.querySelectorAll('#roas-chart .annotation-text'))
                        .map(t => t.textContent),
            rule: document.getElementById('decision-rule').textContent,
            rows: document.querySelectorAll('#forecast-table tbody tr').length,
            promisingRows: document.querySelectorAll('#forecast-table tr.scale').length,
        })""")
        assert counts["ltvSvgs"] >= 1 and counts["svgs"] >= 2, counts
        # band top, band bottom, line for the top three groups; the fourth waits in the legend
        assert counts["ltvTraces"] == 3 * 3, counts
        assert counts["ltvLegend"] == 4, counts
        assert counts["ltvPaths"] >= 4, counts
        assert counts["roasPoints"] == 3 and counts["roasErrorBars"] == 3, counts
        assert sorted(counts["roasText"]) == ["brand_search", "summer_sale", "tiktok_ugc"]
        assert "scale when ≥ 0.8" in counts["rule"]
        assert counts["rows"] == 16 and counts["promisingRows"] == 2, counts

        # Sorting: LTV column, first click high-to-low, second click low-to-high (numerically).
        column = browser.eval("""Array.from(document.querySelectorAll('#forecast-table thead th'))
                                 .findIndex(th => th.textContent === 'LTV')""")
        read = (f"Array.from(document.querySelectorAll('#forecast-table tbody tr'))"
                f".map(r => parseFloat(r.cells[{column}].getAttribute('data-v')))")
        browser.eval(f"document.querySelectorAll('#forecast-table thead th')[{column}].click()")
        values = browser.eval(read)
        assert values == sorted(values, reverse=True) and len(values) == 16
        browser.eval(f"document.querySelectorAll('#forecast-table thead th')[{column}].click()")
        assert browser.eval(read) == sorted(values)
        users = browser.eval("""(() => { const ths = Array.from(document.querySelectorAll(
            '#forecast-table thead th')); const i = ths.findIndex(t => t.textContent === 'users');
            ths[i].click(); return Array.from(document.querySelectorAll('#forecast-table tbody tr'))
            .map(r => r.cells[i].textContent); })()""")
        assert users[0] == "8,000" and users[-1] == "2,500"  # numeric, not "2,500" > "8,000"

        # The horizon filter.
        visible = browser.eval("""(() => { const s = document.getElementById('horizon-filter');
            s.value = '365'; s.dispatchEvent(new Event('change'));
            return Array.from(document.querySelectorAll('#forecast-table tbody tr'))
                   .filter(r => !r.hidden).length; })()""")
        assert visible == 4
        browser.eval("""(() => { const s = document.getElementById('horizon-filter');
            s.value = 'all'; s.dispatchEvent(new Event('change')); })()""")

        # Pixels: the whole viewport and each chart are real, varied images.
        shot = _keep("report.png", browser.screenshot(), tmp_path)
        data = shot.read_bytes()
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == (WIDTH, HEIGHT) and len(data) > 60_000, (width, height, len(data))
        # The first curve's colour, and the scale marker's green, must really be drawn.
        for selector, colour, scale in (("#ltv-chart", "#4e79a7", 0.5),
                                        ("#roas-chart", "#1a9850", 1.0)):
            chart = browser.screenshot(_clip(browser, selector, scale))
            _keep(selector.strip("#") + ".png", chart, tmp_path)
            colours, inked, matching = colour_stats(chart, colour)
            assert colours >= 20 and inked > 0.005 and matching >= 30, \
                (selector, colours, inked, matching)

        assert browser.problems() == []
    finally:
        browser.close()


@needs_chromium
def test_no_spend_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    campaigns = {EVIL: {"scale": 5.0, "users": 100, "spend": math.nan},
                 "organic": {"scale": 3.0, "users": 900, "spend": math.nan}}
    run = make_run(tmp_path / "run", campaigns=campaigns, spend=False, extras=False)
    browser = _load(write_report(run).as_uri(), tmp_path / "profile")
    try:
        assert browser.state == "rendered"
        found = browser.eval("""({
            ltvTraces: document.querySelectorAll('#ltv-chart .scatterlayer .trace').length,
            roasChart: !!document.getElementById('roas-chart'),
            note: document.getElementById('roas-missing').textContent,
            legend: Array.from(document.querySelectorAll('#ltv-chart .legendtext'))
                      .map(t => t.textContent),
            cell: document.querySelector('#forecast-table tbody td').textContent,
            scripts: document.scripts.length,
        })""")
        assert found["ltvTraces"] == 6 and not found["roasChart"], found
        assert "No spend data" in found["note"]
        assert EVIL in found["legend"], found["legend"]  # shown literally, not interpreted
        assert found["scripts"] == 3  # the evil name injected no script
        _keep("report-no-spend.png", browser.screenshot(), tmp_path)
        assert browser.problems() == []
    finally:
        browser.close()


def test_warnings_and_missing_notes_name_settings_not_cli_flags(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", spend=False, by_os=True)
    params = json.loads((run / "params.json").read_text())
    params["warnings"] = ["spend is per campaign, so ROAS is given only with --by campaign",
                          "no cohort old enough (lower --observe-days or move --as-of)"]
    (run / "params.json").write_text(json.dumps(params))
    page = render_report(run)
    text = html.unescape(re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", page,
                                flags=re.S))
    assert not re.search(r"(?<![\w-])--(by|spend|observe-days|as-of)\b", text)
    assert "grouped by campaign alone" in text and "the observed-days setting" in text
    # spend was given but split by os: the notes say so instead of asking for spend
    missing = re.search(r'id="roas-missing">(.*?)</p>', page, re.S).group(1)
    assert "No spend data" not in missing and "spend is per campaign" in missing
    decision_note = re.search(r'id="decision-missing">(.*?)</p>', page, re.S).group(1)
    assert "grouped by campaign, os" in decision_note and "no spend" not in decision_note.lower()
