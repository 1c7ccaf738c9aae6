"""``ltv monitor`` end to end: the store's runs and newer data in, monitor.csv and monitor.html
out, drift alerts to Slack.

Everything a user can get wrong is found before anything is written: the thresholds (env), the
store (it must hold runs), ``--out`` (not a file) and the input files (the forecast's own
validation, :func:`~ltvcore.warehouse.inputs.load_inputs`). Both files are rendered in memory,
written into a hidden folder inside ``--out`` and renamed into place, so a reader sees the old
pair or the new one, never a part. Alerts go out after the files exist, so the message can
point at them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ltvcore.errors import InputError
from ltvcore.monitor.assumptions import Finding, Verdict, check_run
from ltvcore.monitor.runs import Skipped, past_runs
from ltvcore.monitor.scoring import CHECKPOINTS, Drift, compare, drifts, frame, over_time, summary
from ltvcore.monitor.settings import Thresholds, thresholds
from ltvcore.runs.store import RUNS_DIR, ArtifactStore, LocalStore, open_store
from ltvcore.warehouse.inputs import Inputs, load_inputs
from ltvcore.workflow.artifacts import write_csv

__all__ = ["MonitorResult", "OUTPUT_FILES", "check_out", "monitor", "open_runs", "run_monitor",
           "write_outputs"]

OUTPUT_FILES = ("monitor.csv", "monitor.html")


@dataclass
class MonitorResult:
    """What one monitor found: monitor.csv's rows and everything monitor.html shows."""

    store: str
    data_end: str
    limits: Thresholds
    rows: pd.DataFrame
    summary: pd.DataFrame
    over_time: pd.DataFrame
    drifts: list[Drift]
    findings: list[Finding]
    verdicts: list[Verdict]
    listed: int
    compared: int
    pending: list[str]
    skipped: list[Skipped]
    notes: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    checkpoints: tuple[int, ...] = CHECKPOINTS


def open_runs(uri: str | None) -> tuple[ArtifactStore, list[dict]]:
    """The store at ``uri`` (default ``$LTV_STORE`` or ./ltv-runs) and its runs; bad input when
    it is no store or holds no runs (a local path that does not exist is not created)."""
    try:
        store = open_store(uri)
    except ValueError as error:
        raise InputError(str(error), column="store") from None
    # A local folder without runs/ holds none: say so before listing, which would index it
    # (write into it) or create it.
    if isinstance(store, LocalStore) and not (store.root / RUNS_DIR).is_dir():
        raise InputError(f"no runs in {store.uri}", column="store")
    rows = store.list_runs()
    if not rows:
        raise InputError(f"no runs in {store.uri}", column="store")
    if not any(r.get("status") == "succeeded" for r in rows):
        raise InputError(f"no runs in {store.uri} have succeeded ({len(rows)} queued, running "
                         "or failed): nothing was published to compare", column="store")
    return store, rows


def check_out(out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a directory", column="out")
    return path


def _group_columns(inputs: Inputs) -> list[str]:
    """The installs columns a run can have grouped by (without installs: campaign "all")."""
    return list(inputs.installs_columns[2:]) if inputs.installs_columns is not None else ["campaign"]


def monitor(store: ArtifactStore, listing: list[dict], inputs: Inputs, *,
            limits: Thresholds) -> MonitorResult:
    """Score every past run of ``store`` against ``inputs`` and test its assumptions."""
    found = past_runs(store, listing, last_event=inputs.last_event,
                      first_checkpoint=min(CHECKPOINTS))
    available = set(_group_columns(inputs))
    parts, notes, findings, verdicts = [], [], [], []
    skipped, compared, confidences = list(found.skipped), 0, []
    for run in found.runs:
        missing = [c for c in run.by if c not in available]
        if missing:
            skipped.append(Skipped(run.run_id, f"grouped by {', '.join(missing)}, which the newer "
                                               "installs do not have"))
            continue
        if run.as_of < inputs.first_event:
            skipped.append(Skipped(run.run_id, f"as of {run.as_of}, before the newer data start "
                                               f"({inputs.first_event})"))
            continue
        rows, run_notes = compare(run, inputs)
        if rows.empty:
            skipped.append(Skipped(run.run_id, "no group of this run has reached a checkpoint in "
                                               "the newer data"))
        else:
            compared += 1
            parts.append(rows)
            confidences.append(run.confidence)
        notes += run_notes
        run_findings, run_verdicts = check_run(run, inputs, limits)
        findings += run_findings
        verdicts += run_verdicts
    rows = frame(parts)
    return MonitorResult(
        store=store.uri, data_end=inputs.last_event, limits=limits, rows=rows,
        summary=summary(rows), over_time=over_time(rows),
        drifts=drifts(rows, limits) if not rows.empty else [], findings=findings,
        verdicts=verdicts, listed=found.listed, compared=compared, pending=found.pending,
        skipped=skipped, notes=notes, confidences=confidences)


def write_outputs(result: MonitorResult, out: Path) -> list[Path]:
    """monitor.csv and monitor.html into ``out``, each replaced in one rename."""
    from ltvcore.monitor.page import build_page

    html = build_page(result).encode()  # rendered before anything touches the disk
    out.mkdir(parents=True, exist_ok=True)
    # The hidden folder sits inside ``out``: the same file system, so os.replace is atomic.
    with tempfile.TemporaryDirectory(dir=out, prefix=".monitor-") as folder:
        staged = Path(folder)
        write_csv(result.rows, staged / "monitor.csv")
        (staged / "monitor.html").write_bytes(html)
        for name in OUTPUT_FILES:
            os.replace(staged / name, out / name)
    return [out / name for name in OUTPUT_FILES]


def run_monitor(*, store: str | None, events: str, installs: str | None, spend: str | None,
                out: str) -> tuple[MonitorResult, list[Path]]:
    """Validate, compute and write: the command's whole work but the alerts and the printing."""
    limits = thresholds()
    target = check_out(out)
    opened, listing = open_runs(store)
    inputs = load_inputs(events, installs, spend)
    result = monitor(opened, listing, inputs, limits=limits)
    return result, write_outputs(result, target)

