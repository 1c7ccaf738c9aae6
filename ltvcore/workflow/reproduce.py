"""``ltv reproduce RUN``: recompute a run from its own snapshot and request, compare every value.

The run is audited first (every digest against its manifest): a tampered run is refused, not
reproduced. Then the run's ``inputs/`` snapshot and the request recorded in its manifest are all
that is used, so a run stays reproducible after the warehouse changes, and no cache answers
(``btyd``'s posterior is sampled again). Outputs are compared file by file: tables cell by cell
(exact), JSON value by value, other files byte for byte.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ltvcore.errors import InputError
from ltvcore.lifecycle.forecasting import store_of_run
from ltvcore.request import ForecastRequest
from ltvcore.runs.audit import verify
from ltvcore.runs.manifest import code_info, environment_differences, environment_info, read_manifest
from ltvcore.runs.staging import staging
from ltvcore.runs.store import RunNotFoundError, fetch_run
from ltvcore.workflow.artifacts import RUN_INFO
from ltvcore.workflow.forecast import load_inputs
from ltvcore.workflow.run import compute, stage

__all__ = ["Comparison", "reproduce"]

COMPARED = ("forecast.csv", "curve.csv", "params.json", "report.html")
MAX_SHOWN = 5


@dataclass
class Comparison:
    """What a reproduction found.

    ``refused`` holds the audit's failures when the run did not match its manifest (nothing was
    recomputed then); ``ran_with`` and ``recorded`` name the code commit and package versions of
    this reproduction and of the original run.
    """

    run_id: str | None
    differences: dict[str, list[str]] = field(default_factory=dict)
    environment: list[str] = field(default_factory=list)
    compared: tuple[str, ...] = ()
    refused: list[str] = field(default_factory=list)
    ran_with: dict = field(default_factory=dict)
    recorded: dict = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.refused and not self.differences


def _versions(code: dict, environment: dict) -> dict:
    packages = environment.get("packages") or {}
    return {"git_commit": code.get("git_commit"), "version": code.get("version"),
            "python": environment.get("python"),
            "packages": {name: packages[name] for name in sorted(packages) if packages[name]}}


def reproduce(run: str, *, scratch: Path | None = None) -> Comparison:
    """Audit ``run`` (a run directory or ``s3://…/runs/<id>``), re-run it and compare its outputs.

    Raises :class:`~ltvcore.errors.InputError` when ``run`` is not a run at all.
    """
    audit = verify(run)
    if not audit.ok and audit.run_id is None:
        raise InputError(f"{run} is not a run: {'; '.join(audit.lines()[1:]) or 'no manifest.json'}")
    if not audit.ok:
        return Comparison(run_id=audit.run_id, refused=audit.lines()[1:])
    with contextlib.ExitStack() as stack:
        if scratch is None:  # in the system's hidden stage area, swept if this process is killed
            scratch = stack.enter_context(staging(None, "reproduce"))
        return _reproduce(run, Path(scratch))


def _reproduce(run: str, scratch: Path) -> Comparison:
    try:
        original = fetch_run(run, scratch / "original")
    except RunNotFoundError as error:
        raise InputError(str(error)) from None
    manifest = read_manifest(original / "manifest.json")
    request = ForecastRequest.from_dict(manifest["request"])
    snapshot = original / "inputs"
    inputs = load_inputs(snapshot / "events.parquet",
                         _optional(snapshot / "installs.parquet"),
                         _optional(snapshot / "spend.parquet"))
    inputs.names = dict(manifest.get("inputs") or inputs.names)
    again = scratch / "again"
    # A registered model (NAME@VERSION, pinned in the request) loads from the run's own store.
    staged = stage(inputs, request, again, input_digest=manifest.get("input_digest"),
                   store=store_of_run(run))
    compute(staged, cache=False)
    (again / RUN_INFO).unlink()
    from ltvcore.report import write_report

    write_report(again, run_id=manifest["run_id"])
    result = Comparison(run_id=manifest["run_id"], environment=environment_differences(manifest),
                        compared=COMPARED,
                        ran_with=_versions(code_info(), environment_info()),
                        recorded=_versions(dict(manifest.get("code") or {}),
                                           dict(manifest.get("environment") or {})))
    for name in COMPARED:
        lines = _compare(original / name, again / name)
        if lines:
            result.differences[name] = lines
    return result


def _optional(path: Path) -> Path | None:
    return path if path.exists() else None


def _compare(before: Path, after: Path) -> list[str]:
    if not before.exists() or not after.exists():
        return [f"{'missing in the run' if not before.exists() else 'not reproduced'}"]
    if before.suffix == ".csv":
        return _compare_tables(pd.read_csv(before, dtype=str, keep_default_na=False),
                               pd.read_csv(after, dtype=str, keep_default_na=False))
    if before.suffix == ".json":
        return _compare_json(json.loads(before.read_text()), json.loads(after.read_text()))
    return [] if before.read_bytes() == after.read_bytes() else ["contents differ"]


def _compare_tables(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    if list(a.columns) != list(b.columns):
        return [f"columns {list(a.columns)} became {list(b.columns)}"]
    if len(a) != len(b):
        return [f"{len(a)} rows became {len(b)}"]
    diff = a.to_numpy() != b.to_numpy()
    rows, cols = np.nonzero(diff)
    lines = [f"row {r + 1}, {a.columns[c]}: {a.iat[r, c]} → {b.iat[r, c]}"
             for r, c in zip(rows[:MAX_SHOWN], cols[:MAX_SHOWN])]
    if len(rows) > MAX_SHOWN:
        lines.append(f"… and {len(rows) - MAX_SHOWN} more cells")
    return lines


def _compare_json(a, b, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += _compare_json(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out[: MAX_SHOWN + 1]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _compare_json(x, y, f"{path}[{i}]")
        return out[: MAX_SHOWN + 1]
    return [] if a == b else [f"{path}: {a!r} → {b!r}"]
