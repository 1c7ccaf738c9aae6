"""Peer row of the accuracy benchmark: the standard open-source BTYD library on the same task.

The peer is pymc-marketing's BG/NBD + Gamma-Gamma (``benchmarks/peer_fit.py`` says exactly how
it is applied). It is a benchmark-only dependency with its own pins
(``benchmarks/peer-requirements.txt``), installed into its own venv ``.bench/peer-venv`` the
first time it is needed (the one step that needs PyPI; later runs are offline), so the project
venv never sees it. Each case's inputs go to ``.bench/peer/<case>/`` as parquet, the fit runs
there as a subprocess in the peer venv, and its ``forecast.csv`` comes back as rows beside ours.
A forecast is reused while the inputs, the fit script and the pins are unchanged.

Set ``LTV_BENCH_PEER=0`` to leave the peer out.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from benchmarks.scenarios import HORIZONS

if TYPE_CHECKING:
    from benchmarks.scenarios import Case

__all__ = ["LIBRARY", "MODEL", "PeerUnavailable", "ensure_venv", "optional_peer_rows", "peer_rows"]

LIBRARY = "pymc-marketing"
MODEL = f"peer: {LIBRARY}"

_ROOT = Path(__file__).resolve().parent.parent
_BENCH = _ROOT / ".bench"
_VENV = _BENCH / "peer-venv"
_REQUIREMENTS = Path(__file__).with_name("peer-requirements.txt")
_FIT_SCRIPT = Path(__file__).with_name("peer_fit.py")
_STAMP = _VENV / ".requirements.sha256"
_LOCK = _BENCH / "peer.lock"
_INSTALL_TIMEOUT_S = 1800
_FIT_TIMEOUT_S = 1800

_unavailable: str | None = None  # why the peer is out for this process, once known


class PeerUnavailable(RuntimeError):
    """The peer venv could not be made, or the peer fit failed."""


def _python() -> Path:
    return _VENV / "bin" / "python"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _clean_env() -> dict[str, str]:
    """The environment of a peer subprocess: nothing of the project venv leaks in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    # Its own compile cache, so the peer never contends for the project's pytensor lock.
    env["PYTENSOR_FLAGS"] = f"base_compiledir={_BENCH / 'peer-pytensor'}"
    return env


@contextlib.contextmanager
def _locked():
    """One peer step at a time across processes (two benchmark runs may share the tree)."""
    _BENCH.mkdir(parents=True, exist_ok=True)
    with open(_LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_venv() -> Path:
    """The peer venv's python, creating the venv from the pins if it is missing or stale."""
    with _locked():
        return _ensure_venv()


def _ensure_venv() -> Path:
    want = _digest(_REQUIREMENTS.read_bytes())
    if _python().exists() and _STAMP.exists() and _STAMP.read_text().strip() == want:
        return _python()
    print(f"(peer: creating {_VENV} with {LIBRARY} from "
          f"{_REQUIREMENTS.name}; one-time, needs PyPI, a few minutes)", flush=True)
    shutil.rmtree(_VENV, ignore_errors=True)
    steps = ([sys.executable, "-m", "venv", str(_VENV)],
             [str(_python()), "-m", "pip", "install", "--quiet", "-r", str(_REQUIREMENTS)])
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, env=_clean_env(),
                                  timeout=_INSTALL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PeerUnavailable(f"{' '.join(step[:3])} failed: {exc}") from exc
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise PeerUnavailable(f"{' '.join(step[:4])} failed (exit {done.returncode}):\n{tail}")
    _STAMP.write_text(want + "\n")
    return _python()


def _case_dir(case: Case) -> Path:
    name = re.sub(r"[^a-z0-9]+", "-", f"{case.kind} {case.scenario} seed {case.seed}".lower())
    return _BENCH / "peer" / name.strip("-")


def peer_rows(case: Case) -> pd.DataFrame:
    """The peer's forecast for one benchmark case, shaped like our models' rows.

    Returns
    -------
    pandas.DataFrame
        ``campaign``, ``horizon_days``, ``ltv``, ``ltv_lower``, ``ltv_upper`` (NaN: a MAP fit
        gives no interval), ``model`` (``"peer: pymc-marketing"``), one row per campaign of the
        inputs (last year's campaigns included; scoring keeps those with a truth).

    Raises
    ------
    PeerUnavailable
        When the peer venv cannot be made or the fit fails (the message says why).
    """
    with _locked():
        python = _ensure_venv()
        return _fit_or_reuse(case, python)


def _fit_or_reuse(case: Case, python: Path) -> pd.DataFrame:
    events = case.events[["user_id", "event_date", "revenue"]]
    installs = case.installs[["user_id", "install_date", "campaign"]]
    request = {"as_of": case.as_of, "horizons": list(HORIZONS)}
    key = _digest(pd.util.hash_pandas_object(events, index=False).to_numpy().tobytes(),
                  pd.util.hash_pandas_object(installs, index=False).to_numpy().tobytes(),
                  json.dumps(request).encode(), _FIT_SCRIPT.read_bytes(),
                  _REQUIREMENTS.read_bytes())
    folder = _case_dir(case)
    forecast, key_file = folder / "forecast.csv", folder / "inputs.sha256"
    if not (forecast.exists() and key_file.exists() and key_file.read_text().strip() == key):
        folder.mkdir(parents=True, exist_ok=True)
        key_file.unlink(missing_ok=True)
        events.to_parquet(folder / "events.parquet", index=False)
        installs.to_parquet(folder / "installs.parquet", index=False)
        (folder / "request.json").write_text(json.dumps(request))
        started = time.perf_counter()
        try:
            done = subprocess.run([str(python), str(_FIT_SCRIPT), str(folder)], capture_output=True,
                                  text=True, env=_clean_env(), timeout=_FIT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PeerUnavailable(f"peer fit for {folder.name} failed: {exc}") from exc
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise PeerUnavailable(f"peer fit for {folder.name} failed (exit {done.returncode}):\n"
                                  f"{tail}")
        info = json.loads((folder / "fit.json").read_text())
        info["wall_s"] = round(time.perf_counter() - started, 2)
        (folder / "fit.json").write_text(json.dumps(info, indent=2))
        key_file.write_text(key + "\n")
    rows = pd.read_csv(forecast)
    return rows.assign(ltv_lower=np.nan, ltv_upper=np.nan, model=MODEL)[
        ["campaign", "horizon_days", "ltv", "ltv_lower", "ltv_upper", "model"]]


def optional_peer_rows(case: Case) -> pd.DataFrame | None:
    """:func:`peer_rows`, or ``None`` with a note (printed once) when the peer is unavailable."""
    global _unavailable
    if _unavailable is None and os.environ.get("LTV_BENCH_PEER", "1") == "0":
        _unavailable = "LTV_BENCH_PEER=0"
        print("(peer row left out: LTV_BENCH_PEER=0)", flush=True)
    if _unavailable is not None:
        return None
    try:
        return peer_rows(case)
    except PeerUnavailable as exc:
        _unavailable = str(exc)
        print(f"(peer row left out, the benchmark goes on without it: {exc})", flush=True)
        return None
