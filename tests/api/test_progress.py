"""What a run shows while and after it computes: its stage and elapsed time, when it was
submitted and finished, warnings in the form's words, and plain field errors."""

from __future__ import annotations

import re
import time

from ltvcore.api.launchers import LocalLauncher
from ltvcore.runs.store import open_store

FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _poll(api, run_id: str, until, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, answer, _ = api.call("GET", f"/forecasts/{run_id}")
        assert status == 200
        if until(answer):
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.02)


def test_a_running_run_reports_its_stage_and_elapsed_time(make_api) -> None:
    api = make_api(delay=1.5)
    status, accepted, _ = api.submit({"dataset": "demo", "horizons": [30]})
    assert status == 202
    running = _poll(api, accepted["run_id"], lambda a: a["status"] == "running")
    assert running["stage"] == "reading"  # the first stage, while the (slowed) worker starts
    assert isinstance(running["elapsed_s"], float) and 0 <= running["elapsed_s"] < 30
    submitted = running["submitted"]
    later = _poll(api, accepted["run_id"], lambda a: a.get("elapsed_s", 0) >= 1.0)
    assert later["elapsed_s"] >= 1.0 and later["started"] == running["started"]
    api.wait()
    done = _poll(api, accepted["run_id"], lambda a: a["status"] == "succeeded")
    assert "stage" not in done and "elapsed_s" not in done
    # the submission time survives completion; the finish is the manifest's time
    assert done["submitted"] == submitted and done["finished"] == done["created"]
    assert done["finished"] >= done["submitted"]


def test_the_launcher_records_every_stage_on_the_marker(tmp_path, data_dir) -> None:
    store = open_store(tmp_path / "store")
    seen: list[tuple[str, str | None, str | None]] = []

    def compute(request, *, progress, **kwargs):
        from ltvcore.workflow.run import forecast_to_store

        def spy(stage: str) -> None:
            progress(stage)
            [marker] = store.list_runs()  # the one run, marked by the launcher
            detail = marker.get("detail") or {}
            seen.append((marker["status"], detail.get("stage"), detail.get("started")))

        return forecast_to_store(request, progress=spy, **kwargs)

    from ltvcore.api.datasets import LocalDatasets
    from ltvcore.api.models import ForecastBody
    from ltvcore.api.service import ForecastService

    launcher = LocalLauncher(store, workers=1, compute=compute, notifier=lambda *a: None)
    service = ForecastService(store=store, datasets=LocalDatasets(data_dir), launcher=launcher)
    try:
        body = ForecastBody.from_json({"dataset": "demo", "horizons": [30]})
        run_id = service.submit(body, requested_by="t", run_url=lambda r: f"/forecasts/{r}").run_id
        assert launcher.wait_idle(60)
    finally:
        launcher.shutdown()
    assert [stage for _, stage, _ in seen] == ["reading", "aggregating", "fitting", "writing"]
    assert {status for status, _, _ in seen} == {"running"}
    assert len({started for _, _, started in seen}) == 1  # one start time throughout
    assert store.status(run_id)["status"] == "succeeded"


def test_run_page_warnings_and_decision_note_name_no_cli_flag(api) -> None:
    status, accepted, _ = api.submit({"dataset": "demo", "horizons": [30], "by": ["campaign", "os"]})
    assert status == 202
    api.wait()
    _, run, _ = api.call("GET", f"/forecasts/{accepted['run_id']}")
    assert run["status"] == "succeeded" and run["decision"] == []
    assert any("grouped by campaign alone" in w for w in run["warnings"]), run["warnings"]
    for text in [*run["warnings"], run["decision_note"]]:
        assert not FLAG.search(text), text
    # spend was given: the split, not missing spend, is why there is no decision
    assert "grouped by campaign, os" in run["decision_note"]
    assert "no spend" not in run["decision_note"].lower()


def test_runs_list_keeps_submitted_shows_finished_and_a_headline(api) -> None:
    status, accepted, _ = api.submit({"dataset": "demo", "horizons": [30], "target_roas": 0.5})
    assert status == 202
    api.wait()
    _, listed, _ = api.call("GET", "/forecasts")
    entry = next(r for r in listed["runs"] if r["run_id"] == accepted["run_id"])
    assert entry["submitted"] and entry["finished"] == entry["created"]
    assert re.fullmatch(r"\d+ to scale, \d+ to watch, \d+ to cut", entry["headline"])
    status, page, _ = api.call("GET", "/forecasts", query={"format": "html"})
    assert status == 200
    assert 'id="runs-filter"' in page and entry["headline"] in page
    row = re.search(rf'<tr data-run="{accepted["run_id"]}">.*?</tr>', page, re.S).group(0)
    assert f'title="{entry["submitted"]}"' in row and f'title="{entry["finished"]}"' in row
    for key in ("run", "status", "submitted", "finished", "headline"):
        assert f'data-key="{key}"' in page


def test_field_errors_carry_a_plain_message_for_the_form(api) -> None:
    status, answer, _ = api.submit({"dataset": "demo", "horizons": [30, "x"], "confidence": 1.5,
                                    "observe_days": 0})
    assert status == 400
    by_field = {e["field"]: e for e in answer["errors"]}
    assert set(by_field) == {"horizons", "confidence", "observe_days"}
    assert by_field["horizons"]["message"] == "Horizons: 'x' is not a number of days"
    assert by_field["observe_days"]["message"] == "Observed days: 0 is too few days; use 1 to 366"
    assert by_field["confidence"]["message"].startswith("Interval confidence: 1.5 is not")
    for field, error in by_field.items():
        assert f"'{field}'" in error["error"]  # the API's error still names the field
    status, answer, _ = api.submit({"dataset": "demo", "as_of": "2030-01-01"})
    assert status == 400 and answer["field"] == "as_of" and "'as_of'" in answer["error"]
    assert answer["message"].startswith("As of: 2030-01-01 is after the data's last event date")
