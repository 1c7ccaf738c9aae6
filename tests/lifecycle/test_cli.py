"""``ltv models train | list | promote`` and ``ltv forecast --model NAME@...`` as the contract
says: train → list → promote → forecast with the champion → reproduce identical; exit 2 for bad
input with one line and nothing written; a tampered version is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltvcore.runs.audit import verify
from tests.lifecycle.conftest import files

JSON_FIELDS = {"name", "version", "stage", "metrics", "trained_at", "promoted_by", "reason"}


def listed(ltv, capsys, store: Path) -> list[dict]:
    capsys.readouterr()
    assert ltv("models", "list", "--store", store, "--format", "json") == 0
    return json.loads(capsys.readouterr().out)


def tree(store: Path) -> dict[str, bytes]:
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*") if p.is_file()}


def test_train_list_promote_forecast_reproduce(ltv, capsys, tmp_path, old_data, young_data):
    store = tmp_path / "store"
    assert ltv("models", "train", *files(old_data), "--name", "history", "--store", store) == 0
    out = capsys.readouterr().out
    version = out.split("@", 1)[1].split(" ", 1)[0]
    assert f"history@{version} (new version; stage challenger)" in out
    assert "out-of-fold backtest" in out and "challenger rule: challenger (no champion yet" in out

    [row] = listed(ltv, capsys, store)
    assert JSON_FIELDS <= set(row)
    assert (row["name"], row["version"], row["stage"], row["promoted_by"]) == \
        ("history", version, "challenger", "rule")
    assert row["metrics"]["by_age"] and row["trained_at"].endswith("Z")
    card = json.loads((store / "models/history" / version / "card.json").read_text())
    assert {"params", "dataset_digest", "as_of", "code_version", "metrics"} <= set(card)
    plots = (store / "models/history" / version / "plots.html").read_text()
    assert plots.startswith("<!doctype html>") and "Out-of-fold forecast" in plots
    assert "<script src=" not in plots  # self-contained: plotly.js inlined

    assert ltv("models", "promote", "history", version, "--stage", "champion", "--by", "carla",
               "--reason", "beats the curve at 90 days", "--store", store) == 0
    [row] = listed(ltv, capsys, store)
    assert (row["stage"], row["promoted_by"], row["reason"]) == \
        ("champion", "carla", "beats the curve at 90 days")

    assert ltv("forecast", *files(young_data), "--model", "history@champion", "--horizons", "30,90",
               "--out", store, "--quiet") == 0
    run = Path(capsys.readouterr().out.strip())
    manifest = json.loads((run / "manifest.json").read_text())
    params = json.loads((run / "params.json").read_text())
    # the exact version, in the request the run id rests on and beside it
    assert manifest["model_version"] == params["model_version"] == f"history@{version}"
    assert manifest["request"]["model"] == f"history@{version}"
    assert "history" in (run / "forecast.csv").read_text()
    assert verify(str(run)).ok

    assert ltv("reproduce", run) == 0
    assert "identical" in capsys.readouterr().out
    # NAME@VERSION names the same run as the alias did
    assert ltv("forecast", *files(young_data), "--model", f"history@{version}", "--horizons",
               "30,90", "--out", store, "--quiet") == 0
    assert Path(capsys.readouterr().out.strip()) == run


def test_training_again_on_the_same_data_is_the_same_version(ltv, capsys, store, old_data):
    before = tree(store)
    assert ltv("models", "train", *files(old_data), "--name", "history", "--store", store) == 0
    assert "already registered, unchanged" in capsys.readouterr().out
    assert tree(store) == before


def test_a_new_champion_gives_a_new_run_and_archives_the_old_one(ltv, capsys, store, old_data,
                                                                 young_data):
    [first] = listed(ltv, capsys, store)
    # the same data cut earlier trains other bytes: another version
    assert ltv("models", "train", *files(old_data), "--as-of", "2026-04-15", "--name", "history",
               "--store", store) == 0
    second = capsys.readouterr().out.split("@", 1)[1].split(" ", 1)[0]
    assert second != first["version"]
    forecast = ["forecast", *files(young_data), "--model", "history@champion", "--horizons", "30",
                "--out", store, "--quiet"]
    assert ltv("models", "promote", "history", first["version"], "--stage", "champion", "--by",
               "carla", "--reason", "first", "--store", store) == 0
    assert ltv(*forecast) == 0
    old_run = capsys.readouterr().out.strip().splitlines()[-1]
    assert ltv("models", "promote", "history", second, "--stage", "champion", "--by", "dan",
               "--reason", "newer data", "--store", store) == 0
    assert ltv(*forecast) == 0
    new_run = capsys.readouterr().out.strip().splitlines()[-1]
    assert new_run != old_run  # not the old champion's run returned again
    assert json.loads(Path(new_run, "manifest.json").read_text())["model_version"] == f"history@{second}"
    stages = {row["version"]: row for row in listed(ltv, capsys, store)}
    assert stages[second]["stage"] == "champion"
    assert stages[first["version"]]["stage"] == "archived"
    assert second in stages[first["version"]]["reason"]


@pytest.mark.parametrize("args,fragment", [
    (["models", "train", "--events", "{missing}", "--name", "history"], "file not found"),
    (["models", "train", "{old}", "--name", "History!"], "not a model name"),
    (["models", "train", "{old}", "--name", "history", "--as-of", "2026-02-30"], "not a date"),
    (["models", "train", "--events", "{young}/events.csv", "--name", "history"],
     "cannot train a history model"),
    (["models", "train", "{old}", "--name", "h", "--store", "ftp://x"], "unsupported store"),
    (["models", "promote", "history", "0123456789abcdef", "--stage", "champion", "--by", "a",
      "--reason", "b"], "no version 0123456789abcdef"),
    (["models", "promote", "history", "v1", "--stage", "champion", "--by", "a", "--reason", "b"],
     "is not a version"),
    (["models", "promote", "history", "0123456789abcdef", "--stage", "gold", "--by", "a",
      "--reason", "b"], "invalid choice"),
    (["models", "promote", "history", "0123456789abcdef", "--stage", "champion", "--by", "a"],
     "--reason"),
    (["models", "list", "--format", "yaml"], "invalid choice"),
    (["forecast", "--events", "{young}/events.csv", "--model", "history@champion"],
     "has no champion"),
    (["forecast", "--events", "{young}/events.csv", "--model", "history@0000000000000000"],
     "no version 0000000000000000"),
    (["forecast", "--events", "{young}/events.csv", "--model", "nope@champion"], "no model 'nope'"),
    (["forecast", "--events", "{young}/events.csv", "--model", "history@latest"],
     "not champion, challenger or a version"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(ltv, capsys, store, old_data,
                                                           young_data, tmp_path, args, fragment):
    filled = []
    for arg in args:
        if arg == "{old}":
            filled += files(old_data)
        else:
            filled.append(arg.format(missing=tmp_path / "nope.csv", young=young_data))
    if "--store" not in filled:
        filled += ["--out" if filled[0] == "forecast" else "--store", str(store)]
    before = tree(store)
    capsys.readouterr()
    assert ltv(*filled) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err, err
    assert tree(store) == before


def test_a_tampered_version_is_refused_and_nothing_is_written(ltv, capsys, store, young_data):
    [row] = listed(ltv, capsys, store)
    assert ltv("models", "promote", "history", row["version"], "--stage", "champion", "--by",
               "carla", "--reason", "go", "--store", store) == 0
    model = store / "models/history" / row["version"] / "model.bin"
    blob = bytearray(model.read_bytes())
    blob[-5] ^= 1
    model.write_bytes(bytes(blob))
    before = tree(store)
    capsys.readouterr()
    assert ltv("forecast", *files(young_data), "--model", "history@champion", "--out", store) == 1
    err = capsys.readouterr().err
    assert "does not match its manifest" in err and "model.bin" in err and err.count("\n") == 1
    assert tree(store) == before
