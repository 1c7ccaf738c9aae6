"""The README is true: every command it shows runs as written, and nothing refers outside the repo.

The ``sh`` blocks of the README run in order, in a scratch copy of the working folder, with the
installed ``ltv`` on the PATH (as after ``make demo``). ``ltv serve`` runs until it has answered
the form and completed one forecast, then stops.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    """Shell commands of a block, continuation lines joined."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def environment(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["LTV_CACHE_DIR"] = str(tmp_path / "cache")
    env.pop("LTV_STORE", None)
    env.pop("LTV_SLACK_WEBHOOK_URLS", None)
    return env


def serve_and_forecast(command: str, cwd: Path, env: dict[str, str]) -> None:
    words = shlex.split(command, comments=True)
    server = subprocess.Popen([*words, "--port", "0"], cwd=cwd, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        first = server.stdout.readline()
        url = re.search(r"http://[0-9.]+:[0-9]+/", first)
        assert url, f"ltv serve did not say where it listens: {first!r}"
        base = url.group(0)
        with urllib.request.urlopen(base, timeout=30) as page:
            assert b"<form" in page.read()
        body = json.dumps({"dataset": "demo", "model": "geometric"}).encode()
        request = urllib.request.Request(f"{base}forecasts", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 202
            status_url = json.loads(answer.read())["status_url"]
        deadline = time.monotonic() + 120
        while True:
            with urllib.request.urlopen(status_url, timeout=30) as answer:
                run = json.loads(answer.read())
            if run["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert run["status"] == "succeeded", run
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path):
    env = environment(tmp_path)
    blocks = sh_blocks(README.read_text())
    assert len(blocks) >= 2, "the README's runnable examples are ```sh blocks"
    script: list[str] = ["set -euo pipefail"]
    for block in blocks:
        for command in commands(block):
            if command.startswith("ltv serve"):
                run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                                     capture_output=True, text=True, timeout=1200)
                assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
                script = ["set -euo pipefail"]
                serve_and_forecast(command, tmp_path, env)
            else:
                script.append(command)
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_the_two_make_targets_of_the_readme_exist():
    text = README.read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in text
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


OUTSIDE = re.compile(r"\.\./shared|CONTRACT(\.md| §)|BACKGROUND\.md|FIELD-NOTES|STYLE\.md|"
                     r"DEVELOPERS\.md")


def test_nothing_in_the_repo_refers_outside_it():
    offenders = []
    for path in tracked_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not offenders, "\n".join(offenders)


def test_links_in_the_readme_and_docs_point_at_files_of_the_repo():
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
