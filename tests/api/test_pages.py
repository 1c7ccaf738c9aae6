"""The marketers' pages (ltvcore.api.pages) on hostile values, without HTTP.

Every value a user or a dataset controls (dataset names, run errors, requester ARNs, summaries,
the stage prefix) must reach the page as text: these tests parse the rendered HTML and check
that it holds only the elements the templates write, with the hostile text in it verbatim.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import jinja2
import pytest

from ltvcore.api import pages

EVIL = '<script>alert("x")</script>&\'"<img src=x onerror=alert(1)><!--'
PREFIX = '/st"age\'<b>'
NAV_LINKS = 3  # layout.html's navigation: the form, the runs, the models


class Parsed(HTMLParser):
    """Tags, text (outside scripts and styles) and the scripts' bodies of one page."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in: str | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in is None:
            self.text.append(data)

    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}

    def by_id(self, element_id: str) -> dict[str, str | None]:
        found = [attrs for _, attrs in self.tags if attrs.get("id") == element_id]
        assert len(found) == 1, element_id
        return found[0]


def page_data(page: str) -> Any:
    blocks = re.findall(r'<script type="application/json" id="page-data">(.*?)</script>', page,
                        re.S)
    assert len(blocks) == 1
    assert "<" not in blocks[0] and "&" not in blocks[0]  # nothing can end the element
    return json.loads(blocks[0])


def assert_frame(parsed: Parsed) -> None:
    """What layout.html gives every page: the navigation (links escaped) and inline CSS."""
    links = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"][:NAV_LINKS]
    assert links == [f"{PREFIX}/", f"{PREFIX}/forecasts", f"{PREFIX}/models"]
    assert "img" not in parsed.names() and "b" not in parsed.names()
    assert [tag for tag, _ in parsed.tags].count("style") == 1
    assert not any("src" in attrs for _, attrs in parsed.tags)  # self-contained: nothing loaded
    hrefs = [attrs["href"] for _, attrs in parsed.tags if "href" in attrs]
    assert all(h in ("data:,", "#") or h.startswith(PREFIX) for h in hrefs), hrefs


def test_form_page_hostile_dataset_name_stays_data() -> None:
    datasets = {"zeta": {"files": ["events.csv"], "by": ["campaign"]},
                EVIL: {"files": [EVIL], "by": None}}
    page = pages.form_page(prefix=PREFIX, datasets=datasets)
    parsed = Parsed(page)
    assert_frame(parsed)
    assert [tag for tag, _ in parsed.tags].count("script") == 2  # page data, page script
    data = page_data(page)
    assert data["datasets"] == datasets and data["prefix"] == PREFIX
    assert list(data["datasets"]) == ["zeta", EVIL]  # order kept: the form preselects the first
    assert parsed.by_id("observe_days")["value"] == "7"
    assert parsed.by_id("forecast-form") is not None and parsed.by_id("accepted") is not None


def test_run_page_escapes_run_values_and_keeps_them_in_the_page_data() -> None:
    run = {"run_id": EVIL, "status": EVIL, "dataset": EVIL, "requested_by": EVIL,
           "created": "2026-01-01T00:00:00Z", "error": EVIL, "summary": EVIL}
    page = pages.run_page(prefix=PREFIX, run=run)
    parsed = Parsed(page)
    assert_frame(parsed)
    body = [attrs for tag, attrs in parsed.tags if tag == "body"]
    assert body == [{"data-status": EVIL}]
    assert "".join(parsed.text).count(EVIL) == 2  # <title> and <h1>
    assert page_data(page)["run"] == run
    assert page_data(page)["downloads"][-1] == "report.html"


def test_runs_page_escapes_every_cell() -> None:
    runs = [{"run_id": "r-1", "status": "failed", "created": "2026-01-01T00:00:00Z",
             "requested_by": EVIL, "dataset": EVIL, "summary": EVIL, "request": None},
            {"run_id": EVIL, "status": "queued", "created": None, "requested_by": None,
             "dataset": None, "summary": "", "request": None}]
    page = pages.runs_page(prefix=PREFIX, runs=runs)
    parsed = Parsed(page)
    assert_frame(parsed)
    rows = [attrs["data-run"] for tag, attrs in parsed.tags if tag == "tr" and "data-run" in attrs]
    assert rows == ["r-1", EVIL]
    hrefs = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"][NAV_LINKS:]
    assert hrefs == [f"{PREFIX}/forecasts/r-1", f"{PREFIX}/forecasts/{EVIL}"]
    assert "".join(parsed.text).count(EVIL) == 4  # requester, dataset, summary, second run id
    assert "None" not in "".join(parsed.text)  # a missing requester is an empty cell
    assert "(2 shown)" in page and "d ago" in page


def test_runs_page_without_runs_links_to_the_form() -> None:
    parsed = Parsed(pages.runs_page(prefix=PREFIX, runs=[]))
    assert "No runs yet" in "".join(parsed.text)
    assert [attrs["href"] for tag, attrs in parsed.tags if tag == "a"][-1] == f"{PREFIX}/"


def test_message_page_escapes_title_and_message() -> None:
    parsed = Parsed(pages.message_page(prefix=PREFIX, title=EVIL, message=EVIL))
    assert_frame(parsed)
    assert "".join(parsed.text).count(EVIL) == 3  # <title>, <h1>, <p>
    assert "script" not in parsed.names()


def test_a_value_the_template_needs_but_was_not_given_is_an_error() -> None:
    run = {"run_id": "r-1", "status": "running", "created": None, "requested_by": None,
           "dataset": "demo"}  # no summary
    with pytest.raises(jinja2.UndefinedError, match="summary"):
        pages.runs_page(prefix="", runs=[run])
    with pytest.raises(jinja2.UndefinedError, match="message"):
        pages.render("message.html", prefix="", title="t")


@pytest.mark.parametrize("name", ["layout.html", "form.html", "run.html", "runs.html",
                                  "message.html"])
def test_every_page_template_is_autoescaped(name: str) -> None:
    assert pages._ENV.autoescape(name) is True
    pages._ENV.get_template(name)  # and it parses


def test_no_template_marks_a_value_safe() -> None:
    # The pages hold no generated markup: nothing but the installed plotly.js bundle (package
    # code, never run data; the run page's charts) may bypass autoescape.
    unsafe = set()
    for name in pages._ENV.list_templates(extensions=["html"]):
        source = pages._ENV.loader.get_source(pages._ENV, name)[0]
        unsafe |= {(name, value) for value in re.findall(r"\{\{\s*(\w+)\s*\|\s*safe", source)}
        assert "Markup" not in source, name
    assert unsafe <= {("run.html", "plotly_js")}
