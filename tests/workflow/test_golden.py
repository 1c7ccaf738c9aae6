"""A fixed set of requests gives the outputs recorded in ``tests/golden/``.

The files were written by this same test (``LTV_WRITE_GOLDEN=1``) before the outer layers were
restructured; the restructuring was proven byte-identical on the machine that wrote them. Here
values are compared to 1e-9 relative, since another machine's BLAS may round a last digit of a
fit differently; text cells and the shape of every file must match exactly.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ltvcore.request import ForecastRequest
from ltvcore.sample import write_sample
from ltvcore.workflow.artifacts import write_outputs
from ltvcore.workflow.forecast import load_inputs, run_forecast

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("LTV_WRITE_GOLDEN") == "1"

DATA = {
    "game": dict(install_days=14, observed_days=14, n_campaigns=6, users_per_day=40, seed=11),
    "purchase": dict(install_days=10, observed_days=20, n_campaigns=4, users_per_day=30, seed=12,
                     kind="purchase"),
}
CASES = {
    "game-curve": ("game", {}),
    "game-curve-os": ("game", {"by": ("campaign", "os")}),
    "game-sbg-90": ("game", {"retention": "sbg", "confidence": 0.9, "horizons": (30, 60)}),
    "game-geometric": ("game", {"model": "geometric"}),
    "game-calibrated": ("game", {"model": "calibrated", "as_of": "2026-01-20"}),
    "game-auto": ("game", {"model": "auto"}),
    "game-btyd-map": ("game", {"model": "btyd:map"}),
    "purchase-curve": ("purchase", {"window_days": 25}),
    "purchase-btyd-map": ("purchase", {"model": "btyd:map", "observe_days": 3}),
}
FILES = ("forecast.csv", "curve.csv", "params.json")
#: Relative tolerance by case. btyd's MAP is where L-BFGS stops (gradient tolerance): another
#: CPU's rounding (numba's and BLAS's instruction set) moves that point by about 1e-6 relative,
#: measured between two machines of this workplace. With 3 observed days the purchase case's
#: flat directions move further: its forecast bounds by 3e-4, the paying rate of its handful of
#: day-0 payers by 4e-3. ``auto`` on game data stacks a beta-discrete-Weibull fit, whose
#: damped Newton search stops at a gradient tolerance too: it moved the 365-day bound by 5e-6
#: between two machines. Everything else is closed form or converges far below 1e-9.
RTOL = {"game-btyd-map": 1e-4, "purchase-btyd-map": 1e-2, "game-auto": 1e-4}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    made = {}
    for name, settings in DATA.items():
        folder = tmp_path_factory.mktemp(name)
        write_sample(folder, **settings)
        made[name] = load_inputs(folder / "events.csv", folder / "installs.csv",
                                 folder / "spend.csv")
    return made


#: Not results: the posterior cache's key digests the model's source, so any edit moves it.
NOT_RESULTS = frozenset({"posterior_key"})


def close(a, b, where: str, rtol: float = 1e-9) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), where
        for key in a:
            if key not in NOT_RESULTS:
                close(a[key], b[key], f"{where}.{key}", rtol)
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{where}[{i}]", rtol)
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def same_table(expected: Path, got: Path, rtol: float = 1e-9) -> None:
    a = pd.read_csv(expected, dtype=str, keep_default_na=False)
    b = pd.read_csv(got, dtype=str, keep_default_na=False)
    assert list(a.columns) == list(b.columns) and a.shape == b.shape, expected.name
    for column in a.columns:
        left, right = a[column], b[column]
        numeric = pd.to_numeric(left, errors="coerce")
        filled = left != ""
        if filled.any() and numeric[filled].notna().all():  # numbers, some cells maybe empty
            assert (filled == (right != "")).all(), f"{expected.name}:{column}: empty cells"
            pd.testing.assert_series_equal(numeric[filled], pd.to_numeric(right[filled]),
                                           rtol=rtol, atol=1e-6, check_names=False)
        else:
            assert left.tolist() == right.tolist(), f"{expected.name}:{column}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_fixed_request_gives_its_golden_outputs(datasets, tmp_path, case):
    if "btyd" in case:
        pytest.importorskip("pymc")
    data, fields = CASES[case]
    result = run_forecast(datasets[data], ForecastRequest(**fields), cache=False)
    write_outputs(result, tmp_path)
    expected = GOLDEN / case
    if WRITE:
        expected.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(tmp_path / name, expected / name)
    for name in ("forecast.csv", "curve.csv"):
        same_table(expected / name, tmp_path / name, RTOL.get(case, 1e-9))
    close(json.loads((expected / "params.json").read_text()),
          json.loads((tmp_path / "params.json").read_text()), "params", RTOL.get(case, 1e-9))
