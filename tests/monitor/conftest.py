"""A store of real runs forecast from early cuts of seeded sample data, the full data to monitor
them with, a command-line helper and a local stand-in for Slack.

The sample (seed 11: three campaigns, 40 install days, 130 days observed after the last install)
is cut on two early as-of dates, as an analyst would have had it; runs are forecast from the cuts
with the production entry point (``forecast_to_store``) and monitored with the full data. One
more run is forecast so late that nothing of it can have matured, and one run only ever failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from ltvcore.request import ForecastRequest
from ltvcore.runs.store import open_store
from ltvcore.sample import write_sample
from ltvcore.workflow.run import forecast_to_store

SAMPLE = dict(seed=11, install_days=40, observed_days=130, n_campaigns=3, users_per_day=200)
#: Variables that would let the machine's own settings into a test.
HERMETIC = ("LTV_STORE", "LTV_SLACK_SECRET_NAME", "LTV_SLACK_CONFIG", "LTV_SLACK_WEBHOOK_URLS",
            "LTV_MONITOR_MAPE_ALERT", "LTV_MONITOR_BIAS_ALERT", "LTV_MONITOR_RECENT_RUNS",
            "LTV_MONITOR_ASSUMPTION_TOLERANCE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
            "http_proxy")


@dataclass(frozen=True)
class World:
    root: Path
    full: Path            # the sample's folder: events.csv, installs.csv (the newer data)
    store: Path
    early: str            # as-of of the first cut (two runs: curve and geometric)
    late: str             # as-of of the second cut (one curve run, also asking for day 180)
    data_end: str
    runs: dict[str, str]  # name → run id: early_curve, early_geometric, early_by_os, late_curve,
                          # recent
    failed: str           # a run that only ever failed

    def events(self) -> pd.DataFrame:
        return pd.read_csv(self.full / "events.csv", dtype={"user_id": str})

    def installs(self) -> pd.DataFrame:
        return pd.read_csv(self.full / "installs.csv", dtype={"user_id": str})

    def run_dir(self, name: str) -> Path:
        return self.store / "runs" / self.runs[name]


def _cut(events: pd.DataFrame, installs: pd.DataFrame, as_of: str, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    events[events["event_date"] <= as_of].to_csv(folder / "events.csv", index=False)
    installs[installs["install_date"] <= as_of].to_csv(folder / "installs.csv", index=False)
    return folder / "events.csv", folder / "installs.csv"


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("monitor")
    info = write_sample(root / "sample", **SAMPLE)
    events = pd.read_csv(root / "sample/events.csv", dtype={"user_id": str})
    installs = pd.read_csv(root / "sample/installs.csv", dtype={"user_id": str})
    first = pd.Timestamp(installs["install_date"].min())
    early = str((first + pd.Timedelta(days=19)).date())
    late = str((first + pd.Timedelta(days=33)).date())
    recent = str((pd.Timestamp(info["as_of"]) - pd.Timedelta(days=10)).date())
    store = root / "store"
    runs = {}
    for name, as_of, model, horizons, by in (
            ("early_curve", early, "curve", (30, 90), ("campaign",)),
            ("early_geometric", early, "geometric", (30, 90), ("campaign",)),
            ("early_by_os", early, "curve", (30, 90), ("campaign", "os")),
            ("late_curve", late, "curve", (30, 90, 180), ("campaign",)),
            ("recent", recent, "curve", (30, 90), ("campaign",))):
        ev, ins = _cut(events, installs, as_of, root / f"cut-{as_of}")
        outcome = forecast_to_store(ForecastRequest(horizons=horizons, model=model, by=by),
                                    events=ev, installs=ins, store=store)
        runs[name] = outcome.run_id
    failed = "failedrun000000000001"
    open_store(store).mark(failed, "failed", {"request": {"model": "curve"}})
    return World(root=root, full=root / "sample", store=store, early=early, late=late,
                 data_end=info["as_of"], runs=runs, failed=failed)


@pytest.fixture(scope="session")
def tripled(world: World) -> Path:
    """The full events with every revenue after the early as-of multiplied by three."""
    events = world.events()
    later = events["event_date"] > world.early
    events.loc[later, "revenue"] *= 3
    path = world.root / "tripled-events.csv"
    events.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def ltv(*argv: str, env: dict[str, str] | None = None) -> Ran:
    """``ltv …`` through the real ``main`` (its exit codes and one-line errors), with ``ltv
    monitor`` wired in if main.py does not wire it yet; the environment is hermetic."""
    import importlib

    from ltvcore.cli.monitor import add_parser

    cli = importlib.import_module("ltvcore.cli.main")
    with pytest.MonkeyPatch.context() as mp:
        for name in HERMETIC:
            mp.delenv(name, raising=False)
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        original = cli.build_parser

        def build() -> argparse.ArgumentParser:
            parser = original()
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            if "monitor" not in sub.choices:
                add_parser(sub)
            return parser

        mp.setattr(cli, "build_parser", build)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main([str(a) for a in argv])
    return Ran(code, out.getvalue(), err.getvalue())


def monitor_args(world: World, out: Path, events: Path | None = None) -> list[str]:
    return ["monitor", "--store", str(world.store), "--events", str(events or world.full / "events.csv"),
            "--installs", str(world.full / "installs.csv"), "--out", str(out)]


@pytest.fixture(scope="session")
def monitored(world: World, tmp_path_factory) -> tuple[Path, Ran]:
    """``ltv monitor`` of the store with the full data, default thresholds, no Slack webhook."""
    out = tmp_path_factory.mktemp("monitored") / "out"
    ran = ltv(*monitor_args(world, out))
    assert ran.code == 0, ran.err
    return out, ran


@pytest.fixture(scope="session")
def rows(monitored) -> pd.DataFrame:
    out, _ = monitored
    return pd.read_csv(out / "monitor.csv", dtype={"campaign": str, "os": str, "run_id": str,
                                                   "as_of": str}, keep_default_na=False,
                       na_values={"error_pct": [""]})


class FakeSlack:
    """Records each POSTed JSON body by path; answers 200, or the status set for a path."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.status: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.posts.append((self.path, body))
                status = fake.status.get(self.path, 200)
                data = b"ok" if status == 200 else b"no_service"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, name: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/services/T0TEAM/B{name.upper()}/{name}SeCrEt"


@pytest.fixture
def slack():
    fake = FakeSlack()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
