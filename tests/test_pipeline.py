"""A forecast from files to a published run: content-addressed, immutable, reproducible."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ltvcore import steps
from ltvcore.cli import main
from ltvcore.reproduce import reproduce
from ltvcore.runs.audit import verify
from ltvcore.sample import write_sample


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_sample(folder, install_days=6, observed_days=8, n_campaigns=4, users_per_day=50, seed=3)
    return folder


def forecast(data: Path, store: Path, *extra: str) -> int:
    return main(["forecast", "--events", str(data / "events.csv"), "--installs", str(data / "installs.csv"),
                 "--spend", str(data / "spend.csv"), "--out", str(store), "--quiet", *extra])


def sharded(request: dict, data: Path, tmp_path: Path, count: int) -> tuple[list[Path], Path]:
    """Run the forecast step as ``count`` shards and merge them: (shard dirs, merged dir)."""
    shards = [tmp_path / f"shard{index}" for index in range(count)]
    for index, out in enumerate(shards):
        steps.forecast(request, data, out, shard_index=index, shard_count=count)
    merged = tmp_path / "merged"
    steps.report(shards, merged)
    return shards, merged


def only_run(store: Path) -> Path:
    runs = [p for p in (store / "runs").iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1
    return runs[0]


def test_a_run_holds_the_contract_files_the_snapshot_and_a_manifest_written_last(data, tmp_path):
    assert forecast(data, tmp_path / "store") == 0
    run = only_run(tmp_path / "store")
    names = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert {"forecast.csv", "curve.csv", "params.json", "report.html", "manifest.json",
            "inputs/events.parquet", "inputs/installs.parquet", "inputs/spend.parquet"} <= names
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["run_id"] == run.name
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["request"]["as_of"] == "2026-01-13"
    assert verify(str(run)).ok


def test_the_same_request_on_the_same_data_is_one_run(data, tmp_path, capsys):
    forecast(data, tmp_path / "store")
    first = capsys.readouterr().out.strip()
    forecast(data, tmp_path / "store")
    second = capsys.readouterr().out.strip()
    assert first == second
    only_run(tmp_path / "store")


def test_changed_data_or_request_gives_a_new_run(data, tmp_path):
    forecast(data, tmp_path / "store")
    forecast(data, tmp_path / "store", "--confidence", "0.9")
    changed = tmp_path / "changed"
    changed.mkdir()
    for name in ("installs.csv", "spend.csv"):
        (changed / name).write_bytes((data / name).read_bytes())
    events = (data / "events.csv").read_text().splitlines()
    (changed / "events.csv").write_text("\n".join(events[:-1]) + "\n")
    forecast(changed, tmp_path / "store")
    assert len([p for p in (tmp_path / "store" / "runs").iterdir() if not p.name.startswith(".")]) == 3


def test_reproduce_is_identical_and_finds_a_changed_value(data, tmp_path):
    forecast(data, tmp_path / "store")
    run = only_run(tmp_path / "store")
    assert reproduce(str(run)).identical
    frame = pd.read_csv(run / "forecast.csv")
    frame.loc[0, "ltv"] = frame.loc[0, "ltv"] + 1
    frame.to_csv(run / "forecast.csv", index=False)
    result = reproduce(str(run))
    assert not result.identical
    assert "forecast.csv" in result.differences
    assert "row 1, ltv" in result.differences["forecast.csv"][0]
    assert not verify(str(run)).ok


def test_reproduce_cli_says_identical(data, tmp_path, capsys):
    forecast(data, tmp_path / "store")
    run = only_run(tmp_path / "store")
    capsys.readouterr()
    assert main(["reproduce", str(run)]) == 0
    assert "identical" in capsys.readouterr().out


def test_the_steps_sharded_give_the_single_process_forecast(data, tmp_path):
    forecast(data, tmp_path / "store")
    single = only_run(tmp_path / "store")
    prepared = tmp_path / "prepared"
    summary = steps.prepare(data, prepared)
    assert summary["users"] > 0 and (prepared / "cohorts.parquet").exists()
    _, merged = sharded({}, data, tmp_path, 3)
    published = steps.publish(merged, str(tmp_path / "store2"))
    run = Path(published["location"])
    pd.testing.assert_frame_equal(pd.read_csv(run / "forecast.csv"), pd.read_csv(single / "forecast.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(run / "curve.csv"), pd.read_csv(single / "curve.csv"))
    assert published["run_id"] == single.name


@pytest.mark.parametrize("model", ["btyd:map", "calibrated"])
def test_models_that_pool_groups_are_not_split_by_shards(data, tmp_path, model):
    if model.startswith("btyd"):
        pytest.importorskip("pymc")
    forecast(data, tmp_path / "store", "--model", model)
    single = only_run(tmp_path / "store")
    shards, merged = sharded({"model": model}, data, tmp_path, 3)
    # The first shard forecasts every group; the others have nothing to add.
    assert all((out / "forecast.csv").stat().st_size == 0 for out in shards[1:])
    run = Path(steps.publish(merged, str(tmp_path / "store2"))["location"])
    assert run.name == single.name
    pd.testing.assert_frame_equal(pd.read_csv(run / "forecast.csv"), pd.read_csv(single / "forecast.csv"))
    merged_params = json.loads((run / "params.json").read_text())
    assert merged_params == json.loads((single / "params.json").read_text())


def test_without_installs_one_group_is_forecast_once_across_shards(data, tmp_path):
    alone = tmp_path / "events-only"
    alone.mkdir()
    (alone / "events.csv").write_bytes((data / "events.csv").read_bytes())
    _, merged = sharded({}, alone, tmp_path, 2)
    frame = pd.read_csv(merged / "forecast.csv")
    assert list(frame["campaign"].unique()) == ["all"]
    assert not frame.duplicated(["campaign", "horizon_days"]).any()


def test_prepared_data_forecasts_like_raw_files(data, tmp_path):
    prepared = tmp_path / "prepared"
    steps.prepare(data, prepared)
    out = tmp_path / "from-prepared"
    steps.forecast({}, prepared, out)
    raw = tmp_path / "from-raw"
    steps.forecast({}, data, raw)
    a = pd.read_csv(out / "forecast.csv")
    b = pd.read_csv(raw / "forecast.csv")
    pd.testing.assert_frame_equal(a, b)
