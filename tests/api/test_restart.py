"""No run stays queued or running after its server is gone; stopping records no shutdown error.

A real ``ltv serve`` is killed (SIGKILL) with runs queued and running, and restarted; another
is stopped with Ctrl-C (SIGINT). In-process tests cover the parts: a live launcher's runs are
left alone, a stopped one's are marked, markers of older servers too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ltvcore.api import LocalLauncher
from ltvcore.api.launchers import INTERRUPTED
from ltvcore.api.models import ForecastBody
from ltvcore.runs.store import open_store
from tests.api.conftest import http_request


class Served:
    """``python -m ltvcore.cli serve`` in a subprocess, on a free port."""

    def __init__(self, data_dir: Path, store: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LTV_SLACK")}
        self.log = log
        self.handle = open(log, "ab")  # a file, not a pipe: nothing can block on a full pipe
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ltvcore.cli", "serve", "--port", "0", "--workers", "1",
             "--quiet", "--data-dir", str(data_dir), "--store", str(store)],
            stdout=self.handle, stderr=subprocess.STDOUT, env=env,
            cwd=Path(__file__).resolve().parents[2])
        self.port = self._port()

    def _port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("ltv serve: http://127.0.0.1:"):
                    return int(line.split(":")[3].split("/")[0])
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"ltv serve did not start: {self.log.read_text()}")

    def submit(self, horizons: list[int]) -> str:
        body = json.dumps({"dataset": "demo", "horizons": horizons}).encode()
        status, _, raw = http_request(self.port, "POST", "/forecasts", body,
                                      {"Content-Type": "application/json"})
        assert status == 202, raw
        return json.loads(raw)["run_id"]

    def runs(self) -> dict[str, dict]:
        status, _, raw = http_request(self.port, "GET", "/forecasts")
        assert status == 200, raw
        return {run["run_id"]: run for run in json.loads(raw)["runs"]}

    def wait_for(self, predicate, timeout: float = 60) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if predicate(runs):
                return runs
            time.sleep(0.05)
        raise AssertionError(f"timed out; runs: {self.runs()}")

    def stop(self, sig: int, timeout: float = 120) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # ltv serve prints every thread's stack
            time.sleep(2)
            raise AssertionError(f"ltv serve did not stop on signal {sig}:\n"
                                 f"{self.log.read_text(errors='replace')[-20000:]}") from None
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.handle.close()


@pytest.fixture
def served(tmp_path):
    started: list[Served] = []

    def start(data_dir: Path, store: Path) -> Served:
        started.append(Served(data_dir, store, tmp_path / f"serve{len(started)}.log"))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        server.handle.close()


def _states(runs: dict[str, dict]) -> dict[str, str]:
    return {run_id: run["status"] for run_id, run in runs.items()}


def test_a_killed_server_leaves_no_run_queued_or_running(served, data_dir, tmp_path) -> None:
    store = tmp_path / "store"
    first = served(data_dir, store)
    ids = [first.submit([30, 100 + i]) for i in range(5)]
    first.wait_for(lambda runs: "running" in _states(runs).values())
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    left = {run["run_id"]: run["status"] for run in open_store(store).list_runs()}
    assert "running" in left.values() and "queued" in left.values(), left

    second = served(data_dir, store)
    runs = second.runs()
    for run_id in ids:
        if left[run_id] != "succeeded":
            assert runs[run_id]["status"] == "failed", runs[run_id]
            assert runs[run_id]["error"] == INTERRUPTED
        else:
            assert runs[run_id]["status"] == "succeeded"
    assert len(list((store / "runs" / ".launchers").glob("*.lock"))) == 1  # the live one's
    # resubmitting an interrupted run computes it again
    again = next(run_id for run_id in ids if left[run_id] == "running")
    assert second.submit([30, 100 + ids.index(again)]) == again
    second.wait_for(lambda runs: runs[again]["status"] == "succeeded")
    assert second.stop(signal.SIGINT) == 0


def test_ctrl_c_stops_cleanly_and_records_no_shutdown_error(served, data_dir, tmp_path) -> None:
    store = tmp_path / "store"
    server = served(data_dir, store)
    ids = [server.submit([30, 200 + i]) for i in range(4)]
    server.wait_for(lambda runs: "running" in _states(runs).values())
    assert server.stop(signal.SIGINT) == 0
    log = server.log.read_text()
    assert "cannot schedule new futures" not in log and "Traceback" not in log, log
    runs = {run["run_id"]: run for run in open_store(store).list_runs()}
    assert set(runs) == set(ids)
    states = {run_id: run["status"] for run_id, run in runs.items()}
    assert "succeeded" in states.values() and "failed" in states.values(), states
    for run in runs.values():  # the running one finished; the queue was marked interrupted
        assert run["status"] == "succeeded" or run["detail"]["error"] == INTERRUPTED, run


def test_sigterm_stops_like_ctrl_c(served, data_dir, tmp_path) -> None:
    server = served(data_dir, tmp_path / "store")
    server.runs()
    assert server.stop(signal.SIGTERM) == 0
    assert not list((tmp_path / "store" / "runs" / ".launchers").glob("*.lock"))


# --------------------------------------------------------------------------- in process


class Gate:
    """A compute that waits until released (so runs stay running while the test looks)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started = threading.Event()

    def compute(self, request, **kwargs):
        from ltvcore.workflow.run import forecast_to_store

        self.started.set()
        assert self.open.wait(30)
        return forecast_to_store(request, **kwargs)


def _service(store_dir: Path, data_dir: Path, launcher: LocalLauncher):
    from ltvcore.api import ForecastService
    from ltvcore.api.datasets import LocalDatasets

    return ForecastService(store=launcher.store, datasets=LocalDatasets(data_dir),
                           launcher=launcher, local=True)


def test_a_live_launchers_runs_are_left_alone_and_a_stopped_ones_marked(data_dir,
                                                                        tmp_path) -> None:
    store = open_store(tmp_path / "store")
    gate = Gate()
    live = LocalLauncher(store, workers=1, compute=gate.compute, notifier=lambda *a: None)
    service = _service(tmp_path, data_dir, live)
    running = service.submit(ForecastBody(dataset="demo", horizons=[31]), requested_by="t",
                             run_url=str).run_id
    queued = service.submit(ForecastBody(dataset="demo", horizons=[32]), requested_by="t",
                            run_url=str).run_id
    assert gate.started.wait(30)
    other = LocalLauncher(store, workers=1, notifier=lambda *a: None)  # a second server
    assert other.recover() == []
    assert store.status(running)["status"] == "running"
    assert store.status(queued)["status"] == "queued"
    other.shutdown()
    gate.open.set()
    assert live.wait_idle(60)
    live.shutdown(wait=True)
    assert store.status(running)["status"] == "succeeded"
    assert store.status(queued)["status"] == "succeeded"  # computed once the worker was free


def test_shutdown_marks_the_queue_interrupted_and_refuses_new_work(data_dir, tmp_path) -> None:
    from ltvcore.api.launchers import LauncherBusy

    store = open_store(tmp_path / "store")
    gate = Gate()
    launcher = LocalLauncher(store, workers=1, compute=gate.compute, notifier=lambda *a: None)
    service = _service(tmp_path, data_dir, launcher)
    ids = [service.submit(ForecastBody(dataset="demo", horizons=[40 + i]), requested_by="t",
                          run_url=str).run_id for i in range(3)]
    assert gate.started.wait(30)
    assert launcher.running() == 1
    stopper = threading.Thread(target=launcher.shutdown)
    stopper.start()
    deadline = time.monotonic() + 10
    while store.status(ids[2])["status"] != "failed" and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(LauncherBusy):
        service.submit(ForecastBody(dataset="demo", horizons=[49]), requested_by="t",
                       run_url=str)
    gate.open.set()
    stopper.join(30)
    assert store.status(ids[0])["status"] == "succeeded"
    for run_id in ids[1:]:
        status = store.status(run_id)
        assert status["status"] == "failed" and status["detail"]["error"] == INTERRUPTED


def test_abandoned_runs_are_marked_interrupted_and_record_nothing_later(data_dir,
                                                                        tmp_path) -> None:
    store = open_store(tmp_path / "store")
    started = threading.Event()
    release = threading.Event()

    def dies_at_exit(request, **kwargs):
        started.set()
        release.wait(30)
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    launcher = LocalLauncher(store, workers=1, compute=dies_at_exit, notifier=lambda *a: None)
    run_id = _service(tmp_path, data_dir, launcher).submit(
        ForecastBody(dataset="demo", horizons=[50]), requested_by="t", run_url=str).run_id
    assert started.wait(30)
    launcher.shutdown(wait=False)
    release.set()
    time.sleep(0.2)
    status = store.status(run_id)
    assert status["status"] == "failed" and status["detail"]["error"] == INTERRUPTED


@pytest.mark.parametrize("state", ["queued", "running"])
def test_markers_of_an_older_server_are_interrupted_on_start_and_resubmit_computes(
        make_api, tmp_path, state) -> None:
    # written as before launchers named themselves (and as a hand-made marker would be)
    first = make_api(store_dir=tmp_path / "shared")
    first.service.store.mark("0123456789abcdef0123", state,
                             {"requested_by": "t", "request": {"dataset": "demo"}})
    second = make_api(store_dir=tmp_path / "shared")
    status, run, _ = second.call("GET", "/forecasts/0123456789abcdef0123")
    assert status == 200 and run["status"] == "failed" and run["error"] == INTERRUPTED

    body = {"dataset": "demo", "horizons": [45]}
    status, answer, _ = first.submit(body)
    assert status == 202
    first.wait()
    store = first.service.store
    (store._path(answer["run_id"]) / "manifest.json").unlink()
    store.mark(answer["run_id"], state, {"requested_by": "t"})
    third = make_api(store_dir=tmp_path / "shared")
    assert third.service.store.status(answer["run_id"])["detail"]["error"] == INTERRUPTED
    assert third.submit(body)[0] == 202
    third.wait()
    assert len(third.recorder.calls) == 1
    assert third.service.store.status(answer["run_id"])["status"] == "succeeded"


def test_a_marker_of_a_dead_process_is_interrupted_even_without_its_lock(make_api,
                                                                        tmp_path) -> None:
    api = make_api(store_dir=tmp_path / "shared")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    owner = {"host": api.launcher.owner["host"], "pid": int(dead.stdout), "token": "0" * 32,
             "locked": False}
    api.service.store.mark("abcdef0123456789abcd", "running", {"launcher": owner})
    api.service.store.mark("bcdef0123456789abcde", "running",
                           {"launcher": {**owner, "pid": os.getpid()}})  # alive: this one
    api.service.store.mark("cdef0123456789abcdef", "queued",
                           {"launcher": {**owner, "host": "elsewhere"}})  # cannot tell
    assert make_api(store_dir=tmp_path / "shared").launcher.recover() == []  # done at start
    store = api.service.store
    assert store.status("abcdef0123456789abcd")["detail"]["error"] == INTERRUPTED
    assert store.status("bcdef0123456789abcde")["status"] == "running"
    assert store.status("cdef0123456789abcdef")["status"] == "queued"
