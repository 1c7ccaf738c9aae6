"""The API's handlers called with real API Gateway REST proxy events (no HTTP server)."""

from __future__ import annotations

import getpass
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ltvcore.api.app import logger, requester, wants_html
from ltvcore.api.models import ForecastBody
from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest

ALICE_ARN = "arn:aws:sts::123456789012:assumed-role/MarketingAnalyst/alice@example.com"
BASE_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod"


# --------------------------------------------------------------------------- 400 / 404 / 500

INVALID = [
    ("dataset", {}),
    ("dataset", {"dataset": ""}),
    ("dataset", {"dataset": "../demo"}),
    ("dataset", {"dataset": "demo/../../etc"}),
    ("dataset", {"dataset": "/etc/passwd"}),
    ("dataset", {"dataset": "a\\b"}),
    ("dataset", {"dataset": ".hidden"}),
    ("dataset", {"dataset": "nope"}),
    ("dataset", {"dataset": "empty"}),
    ("dataset", {"dataset": ["demo"]}),
    ("by", {"dataset": "demo", "by": []}),
    ("by", {"dataset": "demo", "by": "campaign"}),
    ("by", {"dataset": "demo", "by": ["campaign", "campaign"]}),
    ("by", {"dataset": "demo", "by": ["country"]}),
    ("as_of", {"dataset": "demo", "as_of": "2026-13-01"}),
    ("as_of", {"dataset": "demo", "as_of": 20260101}),
    ("as_of", {"dataset": "demo", "as_of": "20260108"}),
    ("as_of", {"dataset": "demo", "as_of": "2026-W02-1"}),
    ("as_of", {"dataset": "demo", "as_of": "2030-01-01"}),
    ("observe_days", {"dataset": "demo", "observe_days": 0}),
    ("observe_days", {"dataset": "demo", "observe_days": "7"}),
    ("observe_days", {"dataset": "demo", "observe_days": 7.5}),
    ("observe_days", {"dataset": "demo", "observe_days": True}),
    ("horizons", {"dataset": "demo", "horizons": []}),
    ("horizons", {"dataset": "demo", "horizons": [30, 0]}),
    ("horizons", {"dataset": "demo", "horizons": [30, "x"]}),
    ("horizons", {"dataset": "demo", "horizons": "30,90"}),
    ("horizons", {"dataset": "demo", "horizons": [99999]}),
    ("confidence", {"dataset": "demo", "confidence": 1.5}),
    ("confidence", {"dataset": "demo", "confidence": "0.9"}),
    ("model", {"dataset": "demo", "model": "prophet"}),
    ("retention", {"dataset": "demo", "retention": "weibull"}),
    ("window_days", {"dataset": "demo", "window_days": 3}),
    ("notify", {"dataset": "demo", "notify": "growth"}),
    ("notify", {"dataset": "demo", "notify": ["https://hooks.slack.com/services/x"]}),
    ("seed", {"dataset": "demo", "seed": 3}),
]


@pytest.mark.parametrize(("field", "body"), INVALID,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
def test_each_invalid_field_is_a_400_naming_it(api, field, body) -> None:
    status, answer, headers = api.submit(body)
    assert status == 400, answer
    assert headers["content-type"].startswith("application/json")
    assert answer["field"] == field
    assert f"'{field}'" in answer["error"], answer["error"]
    assert "Traceback" not in answer["error"] and "File \"" not in answer["error"]
    assert not api.recorder.calls


@pytest.mark.parametrize(("raw", "headers", "says"), [
    ("{not json", {}, "not valid JSON"),
    ("[1, 2]", {}, "must be a JSON object"),
    ('"demo"', {}, "must be a JSON object"),
    ("dataset=demo", {"Content-Type": "text/plain"}, "as JSON"),
])
def test_a_body_that_is_not_a_json_object_is_a_400(api, raw, headers, says) -> None:
    status, answer, _ = api.call("POST", "/forecasts", raw_body=raw, headers=headers)
    assert status == 400 and answer["field"] == "body" and says in answer["error"]


def test_unknown_runs_files_and_routes_are_404(api) -> None:
    for path in ("/forecasts/0123456789abcdef0123", "/forecasts/bad.id",
                 "/forecasts/0123456789abcdef0123/files/forecast.csv", "/nowhere"):
        status, answer, _ = api.call("GET", path)
        assert status == 404, path
        assert set(answer) == {"error"} and answer["error"]
    status, page, headers = api.call("GET", "/forecasts/0123456789abcdef0123",
                                     headers={"Accept": "text/html"})
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert "no forecast run" in page.lower()


def test_an_internal_error_is_a_plain_500_and_logged(make_api) -> None:
    class Broken:
        def names(self):
            return ["demo"]

        def get(self, name):
            raise RuntimeError("secret detail /srv/internal/path")

    api = make_api(datasets=Broken())
    stream = io.StringIO()
    handler = logger.registered_handler
    original, handler.stream = handler.stream, stream
    try:
        status, answer, _ = api.submit({"dataset": "demo"})
    finally:
        handler.stream = original
    assert status == 500
    assert set(answer) == {"error"}
    assert "secret detail" not in answer["error"] and "Traceback" not in answer["error"]
    logged = stream.getvalue()
    assert "secret detail" in logged and "Traceback" in logged


# --------------------------------------------------------------------------- the success path


def test_success_path_end_to_end(api, data_dir: Path) -> None:
    status, answer, headers = api.submit({"dataset": "demo", "horizons": [30, 90],
                                          "by": ["campaign", "os"], "notify": ["#growth"]},
                                         headers={"X-Ltv-User": "mallory"})
    assert status == 202
    run_id = answer["run_id"]
    assert answer["status_url"] == f"{BASE_URL}/forecasts/{run_id}"
    assert headers["location"] == answer["status_url"]

    status, queued, _ = api.call("GET", f"/forecasts/{run_id}")
    assert status == 200 and queued["status"] in ("queued", "running", "succeeded")
    api.wait()

    status, run, headers = api.call("GET", f"/forecasts/{run_id}")
    assert status == 200 and run["status"] == "succeeded", run
    assert headers["vary"] == "Accept"
    # on AWS the identity is API Gateway's, never a header anyone can send
    assert run["requested_by"] == ALICE_ARN
    assert run["dataset"] == "demo" and run["request"]["by"] == ["campaign", "os"]
    assert set(run["files"]) == {"report.html", "forecast.csv", "curve.csv", "params.json",
                                 "manifest.json"}
    assert run["files"]["forecast.csv"] == f"{BASE_URL}/forecasts/{run_id}/files/forecast.csv"

    status, text, headers = api.call("GET", f"/forecasts/{run_id}/files/forecast.csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert text.encode() == api.service.store.read_bytes(run_id, "forecast.csv")
    assert text.splitlines()[0].startswith('"campaign","os","horizon_days"')
    assert "attachment" in headers["content-disposition"]
    status, manifest, _ = api.call("GET", f"/forecasts/{run_id}/files/manifest.json")
    assert manifest["requested_by"] == ALICE_ARN and manifest["run_id"] == run_id
    status, report, headers = api.call("GET", f"/forecasts/{run_id}/files/report.html")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "content-disposition" not in headers and run_id in report
    status, _, _ = api.call("GET", f"/forecasts/{run_id}/files/inputs/events.parquet")
    assert status == 404

    status, listing, _ = api.call("GET", "/forecasts")
    assert [r["run_id"] for r in listing["runs"]] == [run_id]
    assert listing["runs"][0]["status"] == "succeeded"
    assert listing["runs"][0]["requested_by"] == ALICE_ARN
    assert listing["runs"][0]["url"] == answer["status_url"]
    assert api.recorder.notified == [(run_id, None)]


def test_html_pages(api) -> None:
    status, page, headers = api.call("GET", "/", headers={"Accept": "text/html"})
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"]
    data = json.loads(page.split('id="page-data">')[1].split("</script>")[0])
    assert data["prefix"] == "/prod"
    assert set(data["datasets"]) == {"bad", "demo"}  # "empty" has no events file
    assert data["datasets"]["demo"]["by"] == ["campaign", "os", "channel", "is_emulator"]
    assert data["datasets"]["bad"]["by"] == ["campaign"]
    assert "curve" in data["models"] and "ensemble" in data["retentions"]

    _, answer, _ = api.submit({"dataset": "demo", "horizons": [30]})
    api.wait()
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    status, page, headers = api.call("GET", f"/forecasts/{answer['run_id']}",
                                     headers={"Accept": browser_accept})
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert answer["run_id"] in page and 'data-status="succeeded"' in page
    status, page, _ = api.call("GET", "/forecasts", headers={"Accept": browser_accept})
    assert status == 200 and f'data-run="{answer["run_id"]}"' in page
    assert "arn:aws:sts::123456789012:assumed-role/MarketingAnalyst/alice@example.com" in page
    status, data, _ = api.call("GET", "/forecasts", headers={"Accept": browser_accept},
                               query={"format": "json"})
    assert status == 200 and data["runs"][0]["run_id"] == answer["run_id"]
    status, answer, _ = api.call("GET", "/forecasts", query={"limit": "0"})
    assert status == 400 and answer["field"] == "limit"


def test_a_failed_run_says_why_in_plain_words_and_can_be_resubmitted(api) -> None:
    status, answer, _ = api.submit({"dataset": "bad"})
    assert status == 202
    api.wait()
    status, run, _ = api.call("GET", f"/forecasts/{answer['run_id']}")
    assert run["status"] == "failed"
    assert "revenue" in run["error"] and "events.csv" in run["error"]
    assert "Traceback" not in run["error"]
    assert "files" not in run
    assert api.recorder.notified[0][0] == answer["run_id"] and api.recorder.notified[0][1]
    # a failure is not cached: submitting again computes again (locally)
    assert api.submit({"dataset": "bad"})[1]["run_id"] == answer["run_id"]
    api.wait()
    assert len(api.recorder.calls) == 2


# --------------------------------------------------------------------------- idempotency


def test_same_request_same_run_id_as_the_cli_and_one_computation(api, data_dir, tmp_path,
                                                                  capsys) -> None:
    from ltvcore.cli import main
    from ltvcore.runs.naming import input_files_digest, planned_run_id
    from ltvcore.workflow.steps import find_inputs

    body = {"dataset": "demo", "horizons": [90, 30]}
    first = api.submit(body)[1]["run_id"]
    assert api.submit(body)[1]["run_id"] == first  # a double click
    api.wait()
    assert api.submit({"dataset": "demo", "horizons": [30, 90, 30]})[1]["run_id"] == first
    assert len(api.recorder.calls) == 1  # done runs are never recomputed

    files = find_inputs(data_dir / "demo")
    expected = planned_run_id(ForecastRequest(horizons=(30, 90), dataset="demo"),
                              input_files_digest(files))
    assert first == expected
    assert main(["forecast", "--events", str(files["events"]), "--installs",
                 str(files["installs"]), "--spend", str(files["spend"]), "--horizons", "30,90",
                 "--store", str(tmp_path / "cli-store"), "--quiet"]) == 0
    assert Path(capsys.readouterr().out.strip()).name == first
    # a different request is a different run
    assert api.submit({"dataset": "demo", "horizons": [30]})[1]["run_id"] != first


def test_concurrent_identical_submissions_compute_once(make_api) -> None:
    api = make_api(delay=0.5)
    body = ForecastBody(dataset="demo", horizons=[60])
    barrier = threading.Barrier(12)
    ids: list[str] = []

    def submit() -> None:
        barrier.wait()
        accepted = api.service.submit(body, requested_by="t", run_url=lambda r: f"/r/{r}")
        ids.append(accepted.run_id)

    threads = [threading.Thread(target=submit) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 12 and len(set(ids)) == 1
    # and through the handler while it is still running
    assert api.submit({"dataset": "demo", "horizons": [60]})[1]["run_id"] == ids[0]
    api.wait()
    assert len(api.recorder.calls) == 1
    assert api.service.store.status(ids[0])["status"] == "succeeded"


def test_a_stale_marker_from_a_stopped_server_is_recomputed(make_api, tmp_path) -> None:
    first = make_api(store_dir=tmp_path / "shared")
    body = ForecastBody(dataset="demo", horizons=[45])
    run_id = first.service.submit(body, requested_by="t", run_url=str).run_id
    first.wait()
    # a server that died mid-run leaves "running" with no worker behind it
    first.service.store._path(run_id).joinpath("manifest.json").rename(
        first.service.store._path(run_id) / "old-manifest.json")
    first.service.store.mark(run_id, "running", {"requested_by": "t"})
    second = make_api(store_dir=tmp_path / "shared")
    assert second.service.submit(body, requested_by="t", run_url=str).started
    second.wait()
    assert len(second.recorder.calls) == 1


def test_a_full_queue_is_a_503_and_records_nothing(make_api) -> None:
    api = make_api(delay=0.5, workers=1, max_pending=1)
    assert api.submit({"dataset": "demo", "horizons": [11]})[0] == 202
    status, answer, _ = api.submit({"dataset": "demo", "horizons": [12]})
    assert status == 503 and "try again" in answer["error"]
    api.wait()
    assert [r["horizons"] for r in (run["request"] for run in api.service.runs())] == [[11]]


def test_an_as_of_after_the_data_names_its_last_event_date(api, data_dir) -> None:
    import csv

    with open(data_dir / "demo" / "events.csv") as handle:
        last = max(row["event_date"] for row in csv.DictReader(handle))
    status, answer, _ = api.submit({"dataset": "demo", "as_of": "2030-01-01"})
    assert status == 400 and answer["field"] == "as_of"
    assert f"last event date {last}" in answer["error"]
    assert not api.recorder.calls and not api.service.runs()
    assert api.submit({"dataset": "demo", "as_of": last})[0] == 202
    api.wait()


def test_parquet_datasets_know_their_last_event_date(tmp_path) -> None:
    from ltvcore.api.datasets import LocalDatasets
    from ltvcore.sample import write_sample

    info = write_sample(tmp_path / "pq", install_days=3, observed_days=4, n_campaigns=2,
                        users_per_day=5, fmt="parquet")
    datasets = LocalDatasets(tmp_path)
    assert datasets.last_event_date(datasets.get("pq")) == info["as_of"]


def test_parquet_datasets_offer_their_schema_columns(tmp_path) -> None:
    from ltvcore.api.datasets import LocalDatasets
    from ltvcore.sample import write_sample

    write_sample(tmp_path / "pq", install_days=3, observed_days=4, n_campaigns=2,
                 users_per_day=5, fmt="parquet")
    found = LocalDatasets(tmp_path).get("pq")
    assert found.by_columns == ("campaign", "os", "channel", "is_emulator")
    assert {Path(p).name for p in found.files.values()} == {"events.parquet", "installs.parquet",
                                                            "spend.parquet"}


# --------------------------------------------------------------------------- identity, negotiation


def test_requester_identity() -> None:
    aws = {"requestContext": {"identity": {"userArn": ALICE_ARN, "caller": "AROA:alice"}}}
    assert requester(aws, "mallory", local=False) == ALICE_ARN
    assert requester(aws, "mallory", local=True) == ALICE_ARN
    caller_only = {"requestContext": {"identity": {"userArn": None, "caller": "AROA:alice"}}}
    assert requester(caller_only, None, local=False) == "AROA:alice"
    cognito = {"requestContext": {"authorizer": {"claims": {"email": "bob@example.com"}},
                                  "identity": {}}}
    assert requester(cognito, None, local=False) == "bob@example.com"
    anonymous = {"requestContext": {"identity": {"sourceIp": "127.0.0.1"}}}
    assert requester(anonymous, "mallory", local=False) == "unknown"
    assert requester(anonymous, "carol", local=True) == "carol"
    assert requester(anonymous, "<script>x</script>", local=True) == "scriptxscript"
    assert requester(anonymous, None, local=True) == getpass.getuser()


def test_local_requester_goes_into_the_manifest(make_api) -> None:
    api = make_api(local=True)
    _, answer, _ = api.submit({"dataset": "demo", "horizons": [20]}, user_arn=None,
                              headers={"X-Ltv-User": "carol"})
    api.wait()
    assert api.service.store.read_manifest(answer["run_id"])["requested_by"] == "carol"


@pytest.mark.parametrize(("accept", "fmt", "html"), [
    (None, None, False),
    ("*/*", None, False),
    ("application/json", None, False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, True),
    ("text/html", None, True),
    ("application/json, text/html;q=0.5", None, False),
    ("text/html;q=0.5, application/json", None, False),
    ("text/*", None, True),
    ("text/html", "json", False),
    ("application/json", "html", True),
])
def test_content_negotiation(accept, fmt, html) -> None:
    assert wants_html(accept, fmt) is html


def test_the_api_does_not_import_pandas_or_numpy() -> None:
    code = ("import sys, ltvcore.api, ltvcore.cli.serve; "
            "print(sorted(m for m in ('pandas', 'numpy', 'scipy', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_body_model_rejects_paths_and_builds_the_request() -> None:
    body = ForecastBody(dataset="demo", by=["campaign", "os"], horizons=[90, 30], notify=["#a"])
    request = body.to_request()
    assert request.horizons == (30, 90) and request.by == ("campaign", "os")
    assert request.dataset == "demo" and body.notify == ("a",)
    with pytest.raises(InputError):
        ForecastBody(dataset="demo", confidence=2.0).to_request()


def test_every_invalid_field_is_named_at_once() -> None:
    with pytest.raises(InputError) as caught:
        ForecastBody.from_json({"dataset": "../x", "confidence": 2.0, "horizons": [0],
                                "notify": ["not a channel"], "colour": "red"})
    assert [field for field, _ in caught.value.errors] == ["colour", "dataset", "notify",
                                                           "horizons", "confidence"]


def test_the_api_lists_every_invalid_field(api) -> None:
    status, answer, _ = api.submit({"dataset": "demo", "confidence": 2.0, "observe_days": 0})
    assert status == 400 and answer["field"] == "observe_days"
    assert [e["field"] for e in answer["errors"]] == ["observe_days", "confidence"]
    assert all(f"field '{e['field']}'" in e["error"] for e in answer["errors"])
    assert "observe_days" in answer["error"] and "confidence" in answer["error"]
