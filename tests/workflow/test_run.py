"""A forecast from files to a published run: content-addressed, immutable, reproducible."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ltvcore.cli import main
from ltvcore.runs.audit import verify
from ltvcore.sample import write_sample
from ltvcore.workflow import steps
from ltvcore.workflow.reproduce import reproduce


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
    assert not verify(str(run)).ok
    assert any("forecast.csv" in line for line in result.refused)  # audited first, not re-run


def test_reproduce_names_a_value_the_computation_no_longer_gives(data, tmp_path, monkeypatch):
    import ltvcore.workflow.reproduce as module

    forecast(data, tmp_path / "store")
    run = only_run(tmp_path / "store")
    honest = module.compute

    def drifted(staged, **options):  # as if the code or a library had changed
        info = honest(staged, **options)
        frame = pd.read_csv(staged.directory / "forecast.csv")
        frame.loc[0, "ltv"] = frame.loc[0, "ltv"] + 1
        frame.to_csv(staged.directory / "forecast.csv", index=False)
        return info

    monkeypatch.setattr(module, "compute", drifted)
    result = reproduce(str(run))
    assert not result.identical and not result.refused
    assert "row 1, ltv" in result.differences["forecast.csv"][0]


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


def test_an_as_of_after_the_last_event_date_is_refused_naming_that_date(data, tmp_path, capsys):
    last = pd.read_csv(data / "events.csv")["event_date"].max()
    assert forecast(data, tmp_path / "store", "--as-of", "2030-01-01") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"last event date {last}" in error and "as_of" in error
    assert not (tmp_path / "store" / "runs").exists() or not [
        p for p in (tmp_path / "store" / "runs").iterdir() if not p.name.startswith(".")]
    assert forecast(data, tmp_path / "store", "--as-of", last) == 0  # the last date itself is fine


@pytest.mark.parametrize("as_of", ["20260108", "2026-W02-1", "2026-02-30", "26-01-05", " 2026-01-05"])
def test_as_of_must_be_a_real_date_spelled_yyyy_mm_dd(data, tmp_path, capsys, as_of):
    assert forecast(data, tmp_path / "store", "--as-of", as_of) == 2
    assert "is not a date YYYY-MM-DD" in capsys.readouterr().err


def test_reproduce_reports_versions_and_how_many_files_it_compared(data, tmp_path, capsys):
    forecast(data, tmp_path / "store")
    run = only_run(tmp_path / "store")
    capsys.readouterr()
    assert main(["reproduce", str(run)]) == 0
    out = capsys.readouterr().out
    assert "ran with: code" in out and "run used: code" in out and "numpy" in out
    assert "4 files compared" in out and "no cache used" in out


@pytest.mark.parametrize("tamper", ["manifest", "snapshot", "extra file"])
def test_reproduce_refuses_a_run_that_fails_its_audit(data, tmp_path, capsys, tamper):
    forecast(data, tmp_path / "store")
    run = only_run(tmp_path / "store")
    if tamper == "manifest":
        text = (run / "manifest.json").read_text()
        (run / "manifest.json").write_text(text.replace('"observe_days": 7', '"observe_days": 6'))
    elif tamper == "snapshot":
        raw = bytearray((run / "inputs" / "events.parquet").read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (run / "inputs" / "events.parquet").write_bytes(bytes(raw))
    else:
        (run / "notes.txt").write_text("added later")
    capsys.readouterr()
    assert main(["reproduce", str(run)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("refused:") and "identical" not in out


def test_reproduce_of_a_folder_that_is_not_a_run_is_an_input_error(tmp_path, capsys):
    (tmp_path / "not-a-run").mkdir()
    assert main(["reproduce", str(tmp_path / "not-a-run")]) == 2
    assert "is not a run" in capsys.readouterr().err


def test_reproduce_recomputes_btyd_without_its_posterior_cache(data, tmp_path, monkeypatch):
    """A poisoned cache (another posterior under this run's key) would change every value."""
    pytest.importorskip("pymc")
    cache = tmp_path / "cache"
    monkeypatch.setenv("LTV_CACHE_DIR", str(cache))
    assert forecast(data, tmp_path / "store", "--model", "btyd:map") == 0
    run = only_run(tmp_path / "store")
    (key_file,) = cache.glob("*.npz")
    other = tmp_path / "other"
    write_sample(other, install_days=6, observed_days=8, n_campaigns=4, users_per_day=50, seed=4)
    assert forecast(other, tmp_path / "store2", "--model", "btyd:map") == 0
    (poison,) = (p for p in cache.glob("*.npz") if p != key_file)
    key_file.write_bytes(poison.read_bytes())
    assert reproduce(str(run)).identical


def test_forecast_to_store_reports_each_stage_in_order(data, tmp_path):
    from ltvcore.request import ForecastRequest
    from ltvcore.workflow.run import STAGES, forecast_to_store

    told: list[str] = []
    kwargs = {"events": data / "events.csv", "installs": data / "installs.csv",
              "spend": data / "spend.csv", "store": tmp_path / "store"}
    outcome = forecast_to_store(ForecastRequest(horizons=(30,)), progress=told.append, **kwargs)
    assert told == list(STAGES) == ["reading", "aggregating", "fitting", "writing"]
    assert not outcome.reused
    again: list[str] = []  # an existing run is returned before anything is read
    assert forecast_to_store(ForecastRequest(horizons=(30,)), progress=again.append,
                             **kwargs).reused
    assert again == []


def test_the_report_reuses_the_forecasts_pooled_activity_and_reproduces_from_the_snapshot(
        data, tmp_path, monkeypatch, capsys):
    """A local run's report takes the observed activity the forecast already pooled (reading it
    back from the snapshot would aggregate the whole input a second time); the hand-over file is
    no artifact, and the report rebuilt from the snapshot alone is the same byte for byte."""
    from ltvcore.report import data as report_data
    from ltvcore.report.observed import OBSERVED_STASH

    def no_second_read(*_args, **_kwargs):
        raise AssertionError("the snapshot was read again")

    with monkeypatch.context() as patched:
        patched.setattr(report_data, "read_observed", no_second_read)
        assert forecast(data, tmp_path / "store") == 0
    run = only_run(tmp_path / "store")
    assert not (run / OBSERVED_STASH).exists()
    assert OBSERVED_STASH not in json.loads((run / "manifest.json").read_text()).get("files", {})
    assert "Dots: what its users did by as-of" in (run / "report.html").read_text()  # drawn
    capsys.readouterr()
    assert main(["reproduce", str(run)]) == 0
    assert "identical" in capsys.readouterr().out
