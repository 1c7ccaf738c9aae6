"""The notify step: the message that a run finished or failed, the same from every launcher.

A finished run is announced from what its store holds (manifest and ``forecast.csv``); if
those cannot be read the run is still announced, without its table, so nobody waits in vain.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ltvcore import decision
from ltvcore.notify.messages import failure_message, success_message

if TYPE_CHECKING:
    from ltvcore.runs.store import ArtifactStore

__all__ = ["run_message"]

log = logging.getLogger(__name__)


def run_message(store: ArtifactStore, run_id: str, *, request: Mapping[str, Any],
                requested_by: str | None, dataset: str | None, error: str | None = None,
                report_url: str | None = None, link_lifetime: str | None = None,
                where_to_look: str | None = None) -> dict[str, Any]:
    """The Block Kit payload for run ``run_id``: failed with ``error``, or succeeded."""
    if error is not None:
        return failure_message(run_id=run_id or None, requested_by=requested_by, dataset=dataset,
                               error=error, where_to_look=where_to_look)
    manifest: dict[str, Any] = {}
    params: dict[str, Any] = {}
    rows: list[dict[str, str]] = []
    by = list(request.get("by") or ["campaign"])
    try:
        manifest = store.read_manifest(run_id)
        text = store.read_bytes(run_id, "forecast.csv").decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        params = json.loads(store.read_bytes(run_id, "params.json"))
    except Exception as problem:  # noqa: BLE001 - announce the run even if its files are unreadable
        log.warning("could not read run %s for the message: %s", run_id, problem)
    return success_message(
        run_id=run_id, requested_by=requested_by, dataset=str(dataset or ""),
        as_of=str(manifest.get("as_of") or request.get("as_of") or ""), forecast_rows=rows,
        by=by, warnings=manifest.get("warnings") or (), report_url=report_url,
        link_lifetime=link_lifetime, confidence=request.get("confidence"),
        target_roas=request.get("target_roas"), payback=decision.payback_days(params, by),
        limits=decision.recorded(params))
