from __future__ import annotations

import json
import subprocess

import pytest

from ltvcore.runs import manifest as manifest_module
from ltvcore.runs.manifest import (
    MANIFEST_NAME,
    TRACKED_PACKAGES,
    build_manifest,
    code_info,
    code_version,
    environment_differences,
    manifest_integrity,
    read_manifest,
    sha256_file,
    write_manifest,
)

RUN_ID = "0123456789abcdef0123"


@pytest.fixture(autouse=True)
def _no_git(monkeypatch):
    monkeypatch.setenv("LTV_GIT_COMMIT", "f" * 40)
    monkeypatch.delenv("LTV_CONTAINER_IMAGE", raising=False)


@pytest.fixture
def staging(tmp_path):
    root = tmp_path / "staging"
    (root / "inputs").mkdir(parents=True)
    (root / "forecast.csv").write_text("campaign,horizon_days,ltv\nall,30,1.5\n")
    (root / "params.json").write_text('{"groups": []}')
    (root / "inputs" / "events.parquet").write_bytes(bytes(range(256)))
    (root / "_status.json").write_text('{"status": "running"}')
    return root


def _build(staging, **overrides):
    arguments = dict(
        run_id=RUN_ID,
        request={"by": ["campaign"], "horizons": [30]},
        as_of="2025-06-30",
        requested_by="ana",
        seed=42,
        timings={"fit": 0.25},
    )
    arguments.update(overrides)
    return build_manifest(staging, **arguments)


def test_sha256_file_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "blob"
    path.write_bytes(b"x" * (3 << 20))
    assert sha256_file(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_lists_every_file_recursively_except_manifest_and_status(staging):
    (staging / MANIFEST_NAME).write_text("{}")
    manifest = _build(staging)
    assert sorted(manifest["files"]) == ["forecast.csv", "inputs/events.parquet", "params.json"]
    entry = manifest["files"]["inputs/events.parquet"]
    assert entry == {"sha256": sha256_file(staging / "inputs" / "events.parquet"), "bytes": 256}


def test_records_request_code_environment_and_seed(staging, monkeypatch):
    monkeypatch.setenv("LTV_CONTAINER_IMAGE", "123.dkr.ecr/ltv:abc")
    manifest = _build(staging)
    assert manifest["run_id"] == RUN_ID
    assert manifest["created"].endswith("Z")
    assert manifest["request"] == {"by": ["campaign"], "horizons": [30]}
    assert (manifest["as_of"], manifest["requested_by"], manifest["seed"]) == ("2025-06-30", "ana", 42)
    assert manifest["timings"] == {"fit": 0.25}
    assert manifest["code"]["git_commit"] == "f" * 40
    assert manifest["code"]["container_image"] == "123.dkr.ecr/ltv:abc"
    assert "version" in manifest["code"]
    packages = manifest["environment"]["packages"]
    assert set(packages) == set(TRACKED_PACKAGES)
    assert packages["numpy"] and packages["pandas"] and packages["pyarrow"] and packages["scipy"]
    assert manifest["environment"]["python"].startswith("3.")
    json.dumps(manifest)


def test_dates_and_numpy_values_become_json(staging):
    import datetime as dt

    import numpy as np

    manifest = _build(staging, as_of=dt.date(2025, 6, 30), seed=np.int64(5), request={"horizons": np.array([30, 90])})
    assert manifest["as_of"] == "2025-06-30"
    assert manifest["seed"] == 5
    assert manifest["request"] == {"horizons": [30, 90]}


def test_extra_fields_cannot_replace_standard_ones(staging):
    assert _build(staging, extra={"input_digest": "abc"})["input_digest"] == "abc"
    with pytest.raises(ValueError, match="files"):
        _build(staging, extra={"files": {}})
    with pytest.raises(ValueError, match="run_id"):
        _build(staging, extra={"run_id": "other"})


def test_write_manifest_is_atomic_sealed_and_canonical(staging):
    path = write_manifest(staging, _build(staging))
    assert path == staging / MANIFEST_NAME
    assert not [p for p in staging.iterdir() if p.name.endswith(".tmp")]
    raw = path.read_bytes()
    assert manifest_integrity(raw) == []
    parsed = read_manifest(raw)
    assert len(parsed["manifest_sha256"]) == 64


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace('"requested_by": "ana"', '"requested_by": "bob"'),
        lambda text: text.replace('"seed": 42', '"seed": 43'),
        lambda text: text.replace("\n  ", "\n\t", 1),
    ],
    ids=["value", "number", "whitespace"],
)
def test_any_edit_of_the_manifest_breaks_its_seal(staging, edit):
    raw = write_manifest(staging, _build(staging)).read_text()
    edited = edit(raw)
    assert edited != raw
    assert manifest_integrity(edited.encode()) != []


def test_git_commit_probe_when_env_unset(monkeypatch):
    monkeypatch.delenv("LTV_GIT_COMMIT")
    calls = []

    def fake_run(arguments, **kwargs):
        calls.append(arguments)
        output = "abc123def4567890\n" if "rev-parse" in arguments else " M ltvcore/x.py\n"
        return subprocess.CompletedProcess(arguments, 0, stdout=output, stderr="")

    monkeypatch.setattr(manifest_module.subprocess, "run", fake_run)
    info = code_info()
    assert info["git_commit"] == "abc123def4567890"
    assert info["git_dirty"] is True
    assert calls[0] == ["git", "rev-parse", "HEAD"]
    assert code_version(info).endswith("+gabc123def456.dirty")


def test_no_git_gives_null_commit(monkeypatch):
    monkeypatch.delenv("LTV_GIT_COMMIT")

    def no_git(arguments, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(manifest_module.subprocess, "run", no_git)
    info = code_info()
    assert info["git_commit"] is None and info["git_dirty"] is None
    assert "+g" not in code_version(info)


def test_environment_differences_names_changed_versions(staging):
    manifest = _build(staging)
    assert environment_differences(manifest) == []
    manifest["environment"]["packages"]["numpy"] = "1.0.0"
    manifest["environment"]["python"] = "3.9.0"
    lines = environment_differences(manifest)
    assert any(line.startswith("numpy: run used 1.0.0") for line in lines)
    assert any(line.startswith("python: run used 3.9.0") for line in lines)
