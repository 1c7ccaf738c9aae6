"""The registry over HTTP: ``GET /models``, ``POST /models/{name}/{version}/promote`` (who decides
is the requester, never a field), the form's champion choice, and a submission with
``NAME@champion`` naming its run by the exact version."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ltvcore.api import ForecastService, LocalLauncher, create_app
from ltvcore.api.datasets import LocalDatasets
from ltvcore.runs.naming import planned_run_id
from ltvcore.runs.store import open_store
from tests.api.conftest import ALICE_ARN, reply, rest_event
from tests.api.test_pages import EVIL, PREFIX, Parsed, assert_frame, page_data


class Api:
    def __init__(self, store: Path, data_dir: Path) -> None:
        self.store = open_store(store)
        self.launcher = LocalLauncher(self.store, workers=1, notifier=lambda *a: None)
        self.service = ForecastService(store=self.store, datasets=LocalDatasets(data_dir),
                                       launcher=self.launcher, local=False)
        self.app = create_app(self.service)

    def call(self, method: str, path: str, **kwargs):
        return reply(self.app.resolve(rest_event(method, path, **kwargs), None))


@pytest.fixture
def api(store: Path, young_data: Path, tmp_path: Path):
    data_dir = tmp_path / "datasets"
    shutil.copytree(young_data, data_dir / "young")
    (data_dir / "young" / "truth.csv").unlink()
    made = Api(store, data_dir)
    yield made
    made.launcher.wait_idle(60)
    made.launcher.shutdown()


def only_version(api: Api) -> str:
    status, body, _ = api.call("GET", "/models")
    assert status == 200
    [row] = body["models"]
    return row["version"]


def test_models_lists_and_promote_records_the_requester(api: Api) -> None:
    version = only_version(api)
    status, body, _ = api.call("POST", f"/models/history/{version}/promote",
                               body={"stage": "champion", "reason": "holds out best"})
    assert status == 200 and body["events"][0]["by"] == ALICE_ARN
    _, listing, _ = api.call("GET", "/models")
    [row] = listing["models"]
    assert {"name", "version", "stage", "metrics", "trained_at", "promoted_by", "reason"} <= set(row)
    assert (row["stage"], row["promoted_by"], row["reason"]) == ("champion", ALICE_ARN, "holds out best")


@pytest.mark.parametrize("body,field,fragment", [
    ({"stage": "gold", "reason": "x"}, "stage", "not a stage"),
    ({"stage": "champion"}, "reason", "say why"),
    ({"stage": "champion", "reason": "x", "by": "mallory"}, "by", "who decides is the requester"),
])
def test_a_bad_promotion_is_a_400_naming_the_field_and_changes_nothing(api: Api, body, field,
                                                                       fragment) -> None:
    version = only_version(api)
    before = sorted(p.name for p in (Path(api.store.uri) / "models/history/stages").iterdir())
    status, answer, _ = api.call("POST", f"/models/history/{version}/promote", body=body)
    assert status == 400 and answer["field"] == field and fragment in answer["error"]
    assert sorted(p.name for p in (Path(api.store.uri) / "models/history/stages").iterdir()) == before
    status, answer, _ = api.call("POST", "/models/history/0123456789abcdef/promote",
                                 body={"stage": "champion", "reason": "x"})
    assert status == 400 and "no version 0123456789abcdef" in answer["error"]


def test_the_form_offers_the_champion_and_a_submission_pins_its_version(api: Api,
                                                                       young_data: Path) -> None:
    version = only_version(api)
    api.call("POST", f"/models/history/{version}/promote", body={"stage": "champion", "reason": "go"})
    status, page, _ = api.call("GET", "/", headers={"Accept": "text/html"})
    data = json.loads(page.split('id="page-data">')[1].split("</script>")[0])
    assert "curve" in data["models"] and "history@champion" in data["models"]
    assert data["model_labels"]["history@champion"] == \
        f"history@champion — the champion of history, version {version}"

    status, answer, _ = api.call("POST", "/forecasts", body={"dataset": "young", "horizons": [30],
                                                             "model": "history@champion"})
    assert status == 202
    from ltvcore.request import ForecastRequest

    dataset = api.service.datasets.get("young")
    pinned = ForecastRequest(dataset="young", horizons=(30,), model=f"history@{version}")
    assert answer["run_id"] == planned_run_id(pinned, api.service.datasets.digest(dataset))
    assert api.launcher.wait_idle(90)
    _, run, _ = api.call("GET", f"/forecasts/{answer['run_id']}")
    assert run["status"] == "succeeded", run
    manifest = json.loads(api.store.read_bytes(answer["run_id"], "manifest.json"))
    assert manifest["model_version"] == f"history@{version}"


def test_a_submission_naming_a_missing_champion_is_a_400_on_model(api: Api) -> None:
    status, answer, _ = api.call("POST", "/forecasts", body={"dataset": "young",
                                                             "model": "history@champion"})
    assert status == 400 and answer["field"] == "model" and "has no champion" in answer["error"]


def test_a_tampered_version_cannot_be_promoted(api: Api) -> None:
    version = only_version(api)
    card = Path(api.store.uri) / "models/history" / version / "card.json"
    card.write_text(card.read_text().replace('"trained_by": "ana"', '"trained_by": "eve"'))
    status, answer, _ = api.call("POST", f"/models/history/{version}/promote",
                                 body={"stage": "champion", "reason": "x"})
    assert status == 409 and "does not match its manifest" in answer["error"]


def test_the_models_page_escapes_every_value() -> None:
    from ltvcore.api import pages

    row = {"name": EVIL, "version": EVIL, "stage": EVIL, "metrics": {}, "trained_at": EVIL,
           "promoted_by": EVIL, "reason": EVIL,
           "backtest": {"horizons": {"180": {"mape": 12.345, "coverage": 97.0}}}}
    page = pages.models_page(prefix=PREFIX, models=[row])
    parsed = Parsed(page)
    assert_frame(parsed)
    assert "img" not in parsed.names()
    assert page_data(page) == {"prefix": PREFIX}
    text = "".join(parsed.text)
    assert text.count(EVIL) >= 5 and "12.3%" in text and "97.0%" in text
    [form] = [attrs for tag, attrs in parsed.tags if tag == "form"]
    assert form["data-name"] == EVIL and form["data-version"] == EVIL


def test_the_request_and_the_api_check_model_names_without_numpy() -> None:
    code = ("import sys, ltvcore.request, ltvcore.api.service, ltvcore.lifecycle.registry; "
            "from ltvcore.request import ForecastRequest; "
            "assert ForecastRequest(model='history@champion').model == 'history@champion'; "
            "assert not {'numpy', 'pandas'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
