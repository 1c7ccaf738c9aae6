"""The run's ``report.html``: a self-contained page of charts and tables for marketers.

The page embeds plotly.js inline (no CDN, no network: it works offline and from an e-mail
attachment) and its data as one JSON block. It shows the decision view (scale / watch / cut by
payback probability), the LTV curves with interval bands (observed days apart from projected
ones), ROAS against spend, cohort retention, a sortable and searchable forecast table linking the
run's CSV files, data-quality warnings, the fitted model parameters (for analysts) and the run's
assumptions. What needs other runs (convergence, forecast against actual) is on the run page.

The report is written while the run is staged, before ``manifest.json``; it never shows render
time, so rendering the same artifacts twice gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from ltvcore.files import atomic_write
from ltvcore.report.data import MAIN_HORIZON, load_run
from ltvcore.report.observed import Observed
from ltvcore.report.page import build_page

__all__ = ["REPORT_FILE", "MAIN_HORIZON", "render_report", "write_report"]

REPORT_FILE = "report.html"


def render_report(run_dir: Path, *, run_id: str | None = None, observed: Observed | None = None) -> str:
    """Render the report of the run in ``run_dir``.

    Parameters
    ----------
    run_dir
        A run directory holding ``forecast.csv``, ``curve.csv`` and ``params.json``;
        ``manifest.json`` is read when present. ``params.json`` may also carry ``warnings``,
        ``request``, ``as_of``, ``assumptions`` and ``run_id`` at its top level.
    run_id
        The run id to show, for a run still being staged (it overrides the manifest's).
    observed
        The groups' observed activity, when the caller pooled it already; otherwise it is read
        from the run's input snapshot (the same numbers, at the cost of a second aggregation).

    Returns
    -------
    str
        The complete HTML document.
    """
    return build_page(load_run(Path(run_dir), run_id=run_id, observed=observed))


def write_report(run_dir: Path, *, run_id: str | None = None, observed: Observed | None = None) -> Path:
    """Render the report and write ``run_dir/report.html`` atomically; returns its path."""
    run_dir = Path(run_dir)
    page = render_report(run_dir, run_id=run_id, observed=observed)
    target = run_dir / REPORT_FILE
    atomic_write(target, page.encode("utf-8"))
    return target
