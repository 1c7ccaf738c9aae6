"""A warehouse under ``ltv serve --data-dir`` is a dataset: listed, named without hashing data,
forecast from its aggregates under the id the API planned."""

import pytest

from ltvcore.api import datasets as datasets_module
from ltvcore.api.datasets import LocalDatasets
from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.runs.naming import planned_run_id
from ltvcore.sample import write_sample
from ltvcore.warehouse.store import Warehouse
from ltvcore.workflow.run import forecast_to_store


@pytest.fixture
def root(tmp_path):
    write_sample(tmp_path / "src", install_days=4, observed_days=8, n_campaigns=2,
                 users_per_day=30, seed=2)
    warehouse = Warehouse(tmp_path / "data" / "game")
    warehouse.ingest(events=tmp_path / "src" / "events.csv",
                     installs=tmp_path / "src" / "installs.csv", spend=tmp_path / "src" / "spend.csv")
    warehouse.refresh()
    return tmp_path


def test_a_warehouse_is_listed_and_named_by_its_state_without_reading_data(root, monkeypatch):
    found = LocalDatasets(root / "data")
    assert found.names() == ["game"]
    dataset = found.get("game")
    assert dataset.by_columns == ("campaign", "os", "channel", "is_emulator")

    def no_hashing(path):
        raise AssertionError(f"hashed {path}")

    monkeypatch.setattr(datasets_module, "sha256_file", no_hashing)
    digest = found.digest(dataset)
    assert digest == Warehouse(root / "data" / "game").status()["digest"]
    assert found.last_event_date(dataset) == "2026-01-11"
    request = ForecastRequest(by=("campaign",))
    outcome = forecast_to_store(request, events=dataset.files["events"], store=root / "store")
    assert outcome.run_id == planned_run_id(request, digest)


def test_a_warehouse_with_new_events_not_aggregated_is_refused_on_the_dataset_field(root):
    (root / "late.csv").write_text("user_id,event_date,revenue\nu000001,2026-01-03,1\n")
    Warehouse(root / "data" / "game").ingest(events=root / "late.csv")
    found = LocalDatasets(root / "data")
    with pytest.raises(InputError, match="not aggregated yet") as caught:
        found.digest(found.get("game"))
    assert caught.value.errors[0][0] == "dataset"
