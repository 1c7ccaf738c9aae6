from __future__ import annotations

import argparse
import json
import shutil
import uuid

import pytest

from ltvcore.cli.runs import add_parsers
from ltvcore.runs.audit import verify
from ltvcore.runs.manifest import build_manifest, write_manifest
from ltvcore.runs.store import LocalStore

RUN_ID = "0123456789abcdef0123"
FILES = {
    "forecast.csv": b"campaign,horizon_days,users,ltv\nall,30,100,1.25\n",
    "curve.csv": b"campaign,day,ltv\nall,0,0.1\nall,1,0.2\n",
    "params.json": b'{"groups": []}',
    "report.html": b"<!doctype html><title>LTV</title>",
    "inputs/events.parquet": bytes(range(256)) * 8,
}


@pytest.fixture(autouse=True)
def _no_git(monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "f" * 40)


def make_run(tmp_path, run_id=RUN_ID):
    staging = tmp_path / f"staging-{uuid.uuid4().hex[:6]}"
    for name, content in FILES.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(content)
    manifest = build_manifest(
        staging,
        run_id=run_id,
        request={"dataset": "demo", "by": ["campaign"], "horizons": [30]},
        as_of="2025-06-30",
        requested_by="ana",
        seed=1,
        timings={},
    )
    write_manifest(staging, manifest)
    return staging


def flip(path, position):
    content = bytearray(path.read_bytes())
    content[position] ^= 0x01
    path.write_bytes(bytes(content))


def test_intact(tmp_path):
    result = verify(make_run(tmp_path))
    assert result.ok
    assert result.run_id == RUN_ID
    assert result.lines() == ["intact: 5 files"]


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_flipped_byte_in_any_file_is_named(tmp_path, name, where):
    run = make_run(tmp_path)
    size = len(FILES[name])
    flip(run / name, {"first": 0, "middle": size // 2, "last": size - 1}[where])
    result = verify(run)
    assert not result.ok
    assert [item.name for item in result.altered] == [name]
    assert f"altered: {name} (sha256 differs from the manifest)" in result.lines()


@pytest.mark.parametrize("position", [0, 10, 100, 400, 800, -40, -2, -1])
def test_one_flipped_byte_in_the_manifest_is_named(tmp_path, position):
    run = make_run(tmp_path)
    flip(run / "manifest.json", position)
    result = verify(run)
    assert not result.ok
    assert any("manifest.json" in line for line in result.lines()[1:]), result.lines()


def test_size_change_is_reported(tmp_path):
    run = make_run(tmp_path)
    (run / "curve.csv").write_bytes(FILES["curve.csv"] + b"all,2,0.3\n")
    (item,) = verify(run).altered
    assert item.name == "curve.csv" and "bytes, manifest says" in item.reason


def test_missing_and_extra(tmp_path):
    run = make_run(tmp_path)
    (run / "report.html").unlink()
    (run / "inputs" / "more.parquet").write_bytes(b"x")
    marker = {"run_id": RUN_ID, "status": "running", "updated": "2025-06-30T00:00:00Z", "detail": {}}
    (run / "_status.json").write_text(json.dumps(marker))  # its pre-seal marker: allowed
    result = verify(run)
    assert not result.altered
    assert result.missing == ("report.html",)
    assert result.extra == ("inputs/more.parquet",)
    assert "missing: report.html" in result.lines()
    assert "extra: inputs/more.parquet" in result.lines()


@pytest.mark.parametrize("content", [
    b"not json at all",
    b'{"status": "running"}',                                  # no run id: not this run's
    b'{"run_id": "ffffffffffffffffffff", "status": "running"}',  # another run's marker
    b'{"run_id": "%s", "status": "succeeded"}',                # a status no marker holds
    b'{"run_id": "%s", "status": "failed", "manifest": {}}',   # smuggled fields
    b'{"run_id": "%s", "status": "failed", "detail": [1]}',
])
def test_a_status_marker_inside_a_sealed_run_is_verified_too(tmp_path, content):
    run = make_run(tmp_path)
    (run / "_status.json").write_bytes(content.replace(b"%s", RUN_ID.encode()))
    result = verify(run)
    assert not result.ok
    assert [item.name for item in result.altered] == ["_status.json"]


def test_missing_manifest_is_its_own_failure(tmp_path):
    run = make_run(tmp_path)
    (run / "manifest.json").unlink()
    result = verify(run)
    assert not result.ok
    assert result.problems == ("manifest.json is missing: the run is incomplete or was tampered with",)


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"files": {"a": {"sha256": "x", "bytes": 1}}}'])
def test_unparsable_manifest_is_its_own_failure(tmp_path, content):
    run = make_run(tmp_path)
    (run / "manifest.json").write_bytes(content)
    result = verify(run)
    assert not result.ok
    assert result.problems[0].startswith("manifest.json is unreadable")


def test_nothing_there(tmp_path):
    result = verify(tmp_path / "no-such-run")
    assert not result.ok and "no run directory" in result.problems[0]


def test_run_folder_must_match_the_manifest_run_id(tmp_path):
    store = LocalStore(tmp_path / "store")
    location = store.commit(RUN_ID, make_run(tmp_path))
    renamed = tmp_path / "store" / "runs" / "ffffffffffffffffffff"
    shutil.copytree(location, renamed)
    result = verify(renamed)
    assert not result.ok and "is for run" in result.problems[0]


# -- command line -----------------------------------------------------------


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="ltv")
    add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_verify_intact(tmp_path, capsys):
    run = make_run(tmp_path)
    assert run_cli("audit", "verify", str(run)) == 0
    assert capsys.readouterr().out == "intact: 5 files\n"


def test_cli_verify_lists_each_failure(tmp_path, capsys):
    run = make_run(tmp_path)
    flip(run / "params.json", 3)
    (run / "curve.csv").unlink()
    (run / "notes.txt").write_text("hi")
    assert run_cli("audit", "verify", str(run)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"FAILED: {run}"
    assert "altered: params.json (sha256 differs from the manifest)" in out
    assert "missing: curve.csv" in out
    assert "extra: notes.txt" in out


def test_cli_verify_bad_s3_uri_is_a_usage_error(capsys):
    assert run_cli("audit", "verify", "s3://bucket/not-a-run") == 2
    assert "runs/<run_id>" in capsys.readouterr().err


def test_cli_without_subcommand_is_a_usage_error(capsys):
    assert run_cli("audit") == 2
    assert run_cli("runs") == 2


def test_cli_runs_list(tmp_path, capsys, monkeypatch):
    store = LocalStore(tmp_path / "store")
    store.commit(RUN_ID, make_run(tmp_path))
    store.mark("run00000000000000001", "queued", {"request": {"dataset": "other"}})
    assert run_cli("runs", "list", "--store", str(tmp_path / "store")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "ID", "CREATED", "(UTC)", "STATUS", "REQUEST"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "succeeded" in rows[RUN_ID] and "dataset=demo by=campaign horizons=30" in rows[RUN_ID]
    assert "queued" in rows["run00000000000000001"]
    status_column = lines[0].index("STATUS")
    assert all(line[status_column:].split()[0] in ("succeeded", "queued") for line in lines[1:])

    monkeypatch.setenv("LTV_STORE", str(tmp_path / "empty"))
    assert run_cli("runs", "list") == 0
    assert capsys.readouterr().out.startswith("no runs in")
