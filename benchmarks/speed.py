"""Speed and memory: 1,000 groups x 30 install days x 30 observed days, end to end.

Each measurement runs in a fresh subprocess so peak memory (max RSS) is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(".bench")

_GENERATE = """
import sys, pandas as pd
from ltvcore import sample
sim = sample.simulate(seed=5, install_days=30, n_campaigns={groups}, users_per_day={upd}, horizon_days=60)
as_of = sim.last_install + pd.Timedelta(days=29)
events, installs = sample.cut(sim, as_of)
out = sys.argv[1]
events.assign(event_date=events.event_date.dt.strftime('%Y-%m-%d')).to_csv(out + '/events.csv', index=False)
installs.assign(install_date=installs.install_date.dt.strftime('%Y-%m-%d')).to_csv(out + '/installs.csv', index=False)
events.to_parquet(out + '/events.parquet', index=False)
installs.to_parquet(out + '/installs.parquet', index=False)
print(len(installs), len(events))
"""

_PRODUCT = """
import json, resource, sys, time, tempfile
t0 = time.perf_counter()
from ltvcore.cli import main
code = main(["forecast", "--events", sys.argv[1] + "/events." + sys.argv[2], "--installs",
             sys.argv[1] + "/installs." + sys.argv[2], "--out", tempfile.mkdtemp(), "--quiet"])
assert code == 0
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_FITS = """
import json, resource, sys, time
import numpy as np
from ltvcore.warehouse.model_data import cohort_data
from ltvcore.workflow.forecast import load_inputs, resolve_as_of
from ltvcore.models.curve import CurveModel
from ltvcore.request import ForecastRequest
from benchmarks import reference
inputs = load_inputs(sys.argv[1] + "/events.parquet", sys.argv[1] + "/installs.parquet")
data = cohort_data(inputs, by=["campaign"], as_of=resolve_as_of(inputs, ForecastRequest()),
                   observe_days=7, window_days=None)
t0 = time.perf_counter()
if sys.argv[2] == "vectorised":
    CurveModel().fit(data).predict(365)
else:
    reference.forecast_ltv(data, 365, arpu_window=CurveModel().arpu_window)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_SIMULATE = """
import json, resource, sys, time
from ltvcore import sample
t0 = time.perf_counter()
if sys.argv[1] == "default":
    sample.simulate(seed=1)
else:
    sample.simulate(seed=1, n_campaigns=300, install_days=10, users_per_day=10.0, horizon_days=60)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(quick: bool = False) -> None:
    groups, upd = (200, 10) if quick else (1000, 10)
    folder = BENCH_DIR / f"speed-{groups}"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "installs.parquet").exists():
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _GENERATE.format(groups=groups, upd=upd), str(folder)],
                             check=True, capture_output=True, text=True)
        users, events = out.stdout.split()
        print(f"(generated {users} users, {events} events in {time.perf_counter() - started:.0f} s)")
    rows = []
    for fmt in ("csv", "parquet"):
        r = _run(_PRODUCT, str(folder), fmt)
        rows.append((f"ltv forecast end to end ({fmt} input)", r["seconds"], r["peak_mb"]))
    vec = _run(_FITS, str(folder), "vectorised")
    ref = _run(_FITS, str(folder), "reference")
    rows.append(("fits + LTV, vectorised (all groups at once)", vec["seconds"], vec["peak_mb"]))
    rows.append(("fits + LTV, scipy one group at a time", ref["seconds"], ref["peak_mb"]))
    for size, label in (("default", "ltv sample, default size"),
                        ("many", "ltv sample, 300 small campaigns")):
        r = _run(_SIMULATE, size)
        rows.append((label, r["seconds"], r["peak_mb"]))
    print(f"\n## Speed: {groups} groups x 30 install days x 30 observed days (2-core machine)\n")
    print(f"{'step':48s} {'seconds':>8s} {'peak MB':>8s}")
    for name, seconds, peak in rows:
        print(f"{name:48s} {seconds:8.2f} {peak:8.0f}")
    print(f"\nvectorised fits are {ref['seconds'] / vec['seconds']:.0f}x faster than the per-group loop")
