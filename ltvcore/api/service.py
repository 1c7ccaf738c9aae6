"""What the HTTP routes do, without HTTP: submit a forecast, describe runs, hand out artifacts.

Pure Python plus the store: no pandas or numpy (the API Lambda stays small). The run id is
computed by :func:`ltvcore.runs.naming.planned_run_id` on
:func:`ltvcore.runs.naming.input_files_digest` does (a test holds them equal), before any
data is parsed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ltvcore import decision, wording
from ltvcore.api.launchers import Job, Launcher
from ltvcore.canonical import utc_now
from ltvcore.errors import InputError
from ltvcore.lifecycle.forecasting import pin_request
from ltvcore.request import check_as_of
from ltvcore.runs.naming import planned_run_id
from ltvcore.runs.store import S3Store, validate_run_id

if TYPE_CHECKING:
    from ltvcore.api.datasets import Datasets
    from ltvcore.api.models import ForecastBody
    from ltvcore.runs.store import ArtifactStore

__all__ = ["ARTIFACTS", "Accepted", "ForecastService", "RunNotFound", "planned_run_id"]

ARTIFACTS = ("report.html", "forecast.csv", "curve.csv", "params.json", "manifest.json")
"""The run files the API hands out (the input snapshot stays in the store)."""


class RunNotFound(LookupError):
    """No run (complete or in progress) with this id; HTTP 404."""


@dataclass(frozen=True)
class Accepted:
    run_id: str
    started: bool  # False: the run existed or was already being computed


def _now() -> str:
    return utc_now("seconds")


def _seconds_since(moment: Any) -> float | None:
    """Seconds from the ISO time ``moment`` until now (None when it is not a time)."""
    try:
        then = dt.datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.timezone.utc)
    return round(max(0.0, (dt.datetime.now(dt.timezone.utc) - then).total_seconds()), 1)


class ForecastService:
    """Submissions (de-duplicated) and run descriptions over one store, dataset source and
    launcher.

    Parameters
    ----------
    store
        Where runs live.
    datasets
        Where input datasets live.
    launcher
        Who computes (``LocalLauncher`` or ``StepFunctionsLauncher``).
    link_seconds
        Lifetime of pre-signed S3 links (S3 store only).
    local
        True under ``ltv serve``: the requester may be named by an ``X-Ltv-User`` header.
    """

    def __init__(self, *, store: ArtifactStore, datasets: Datasets, launcher: Launcher,
                 link_seconds: int = 900, local: bool = True) -> None:
        self.store = store
        self.datasets = datasets
        self.launcher = launcher
        self.link_seconds = link_seconds
        self.local = local
        # the runs list's one-line decision reads each run's forecast.csv: cheap on local disk
        self.headlines = not isinstance(store, S3Store)
        self._submit_lock = threading.Lock()

    # -- submissions --------------------------------------------------------
    def submit(self, body: ForecastBody, *, requested_by: str, run_url: Any) -> Accepted:
        """Accept a forecast: validate, name the run, start it unless it exists or runs.

        ``run_url(run_id)`` gives the run page's absolute URL (for the status marker and the
        Slack message). The same request on the same data gives the same id and, while that
        run is queued, running or done, no second computation: identical submissions are
        serialised here, and the launcher (local pool or executions) and the store's manifest
        say whether one exists. A failed run is started again; a succeeded one is reused, and
        its message is sent again to the channels the submission names in ``notify``.
        """
        # NAME@champion → NAME@VERSION first: the run is named by the exact version it uses
        request = pin_request(body.to_request(), self.store)
        dataset = self.datasets.get(body.dataset)
        unknown = [c for c in request.by if dataset.by_columns is not None
                   and c not in dataset.by_columns]
        if unknown:
            raise InputError(f"'{unknown[0]}' is not an installs column of dataset "
                             f"'{dataset.name}' (available: {', '.join(dataset.by_columns or ())})",
                             column="by")
        check_as_of(request.as_of, self.datasets.last_event_date(dataset))
        digest = self.datasets.digest(dataset)
        run_id = planned_run_id(request, digest)
        job = Job(run_id=run_id, request=request, dataset=dataset.name, inputs=dataset.files,
                  input_digest=digest, requested_by=requested_by, notify=tuple(body.notify),
                  status_url=run_url(run_id), submitted=_now())
        with self._submit_lock:
            # known() before status(): a computation leaves the store final before it is
            # forgotten, so "not known" then "not succeeded" means nothing is computing it,
            # and a failed run is computed again (on AWS: a new attempt, a new execution).
            if self.launcher.known(run_id):
                return Accepted(run_id, started=False)
            status = self.store.status(run_id)
            if status is None or status["status"] != "succeeded":
                self.launcher.start(job)
                return Accepted(run_id, started=True)
        # The run is reused; whoever asks to be told about it is told (outside the lock: Slack).
        if job.notify:
            self.launcher.announce(job)
        return Accepted(run_id, started=False)

    # -- reading runs -------------------------------------------------------
    def run(self, run_id: str, *, file_url: Any) -> dict[str, Any]:
        """``{"run_id", "status", ...}`` for one run; ``RunNotFound`` when unknown.

        ``file_url(run_id, name)`` gives the local download URL of an artifact; on an S3
        store the links are pre-signed S3 URLs instead.
        """
        try:
            validate_run_id(run_id)
        except ValueError:
            raise RunNotFound(run_id) from None
        status = self.store.status(run_id)
        if status is None:
            raise RunNotFound(run_id)
        return self._describe(status, file_url=file_url, links=True)

    def runs(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Recent runs, newest first, with status, who asked and when."""
        return [self._describe(entry, file_url=None, links=False)
                for entry in self.store.list_runs(limit=limit)]

    def _describe(self, status: Mapping[str, Any], *, file_url: Any, links: bool) -> dict[str, Any]:
        detail: Mapping[str, Any] = status["detail"] if isinstance(status.get("detail"), Mapping) else {}
        request: Mapping[str, Any] = (status["request"] if isinstance(status.get("request"), Mapping)
                                      else {})
        state = status["status"]
        if state in ("incomplete", "invalid"):
            # a folder without manifest or marker: a commit in progress or debris, not done
            state = "running" if state == "incomplete" else "failed"
        entry: dict[str, Any] = {
            "run_id": status["run_id"],
            "status": state,
            "created": status.get("created"),
            "requested_by": status.get("requested_by") or detail.get("requested_by"),
            "dataset": request.get("dataset"),
            "summary": status.get("summary", ""),
            "request": dict(request) or None,
        }
        # created: when the run's state last changed (a manifest: when it finished)
        entry["submitted"] = status.get("submitted") or detail.get("submitted")
        entry["finished"] = status.get("created") if state in ("succeeded", "failed") else None
        if status.get("as_of"):
            entry["as_of"] = status["as_of"]
        if state == "running" and detail.get("stage"):
            entry["stage"] = str(detail["stage"])
        if state == "running" and detail.get("started"):
            elapsed = _seconds_since(detail["started"])
            if elapsed is not None:
                entry["started"] = detail["started"]
                entry["elapsed_s"] = elapsed
        if state == "failed":
            entry["error"] = wording.web_text(str(
                detail.get("error") or "The run failed without recording why; submit it again."))
        if state == "succeeded":
            if links:
                entry["files"] = {name: self.link(status["run_id"], name, file_url)
                                  for name in ARTIFACTS}
                params = self._params(status["run_id"])
                found = params.get("warnings")
                warnings = [str(w) for w in found] if isinstance(found, list) else []
                entry["warnings"] = wording.web_texts(warnings)
                entry.update(self._decision(status["run_id"], request, warnings, params))
            elif self.headlines:
                entry["headline"] = self._headline(status["run_id"], request)
        return entry

    def _params(self, run_id: str) -> dict[str, Any]:
        """The run's params.json (warnings, days to payback), or {} when unreadable."""
        try:
            params = json.loads(self.store.read_bytes(run_id, "params.json"))
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        return params if isinstance(params, dict) else {}

    def _ranked(self, run_id: str, request: Mapping[str, Any],
                params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | str:
        """(ranked decisions, horizon, horizons, limits) of a run's forecast.csv, or why not."""
        by = [str(c) for c in request.get("by") or ["campaign"]]
        try:
            text = self.store.read_bytes(run_id, "forecast.csv").decode("utf-8")
            rows = list(csv.DictReader(io.StringIO(text)))
            limits = decision.recorded(params)
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
            return f"no decision: {error}"
        horizons = sorted({int(float(r["horizon_days"])) for r in rows if r.get("horizon_days")})
        if not horizons:
            return "forecast.csv holds no rows"
        horizon = decision.main_horizon(horizons)
        payback = decision.payback_days(params or {}, by)
        ranked = decision.decide(rows, by, horizon=horizon, limits=limits, payback=payback)
        return ranked, horizon, horizons, limits

    def _decision(self, run_id: str, request: Mapping[str, Any], warnings: Sequence[str] = (),
                  params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The run page's decision table: :func:`ltvcore.decision.decide` on forecast.csv,
        so it ranks and labels exactly as the report and the Slack message do."""
        found = self._ranked(run_id, request, params)
        if isinstance(found, str):
            return {"decision": [], "decision_note": found}
        ranked, horizon, horizons, limits = found
        by = [str(c) for c in request.get("by") or ["campaign"]]
        target = request.get("target_roas")
        return {
            "decision": [d.as_dict(by) for d in ranked],
            "decision_note": (f"{decision.counts_text(ranked)}. "
                              f"{decision.rule_text(limits, horizon, target)}." if ranked
                              else wording.no_decision_text(by, warnings)),
            "decision_horizon": horizon, "decision_max_days": horizons[-1],
        }

    def _headline(self, run_id: str, request: Mapping[str, Any]) -> str:
        """One line for the runs list: how many campaigns to scale, watch and cut."""
        found = self._ranked(run_id, request)
        if isinstance(found, str):
            return ""
        return decision.counts_text(found[0]) if found[0] else "no decision (needs spend, by campaign)"

    # -- artifacts ----------------------------------------------------------
    def link(self, run_id: str, name: str, file_url: Any) -> str:
        """Where to download one artifact: a pre-signed URL (S3 store) or the local route."""
        if isinstance(self.store, S3Store):
            return self.presigned_url(run_id, name)
        return file_url(run_id, name)

    def presigned_url(self, run_id: str, name: str) -> str:
        assert isinstance(self.store, S3Store)
        return self.store.presigned_url(run_id, name, seconds=self.link_seconds)

    def artifact(self, run_id: str, name: str) -> bytes:
        """The bytes of one artifact of a complete run; ``RunNotFound`` otherwise."""
        try:
            validate_run_id(run_id)
        except ValueError:
            raise RunNotFound(run_id) from None
        if name not in ARTIFACTS or not self.store.exists(run_id):
            raise RunNotFound(f"{run_id}/{name}")
        try:
            return self.store.read_bytes(run_id, name)
        except FileNotFoundError:
            raise RunNotFound(f"{run_id}/{name}") from None

    # -- registered models (ltvcore.lifecycle) ------------------------------
    def _registry(self) -> Any:
        from ltvcore.lifecycle.registry import Registry

        return Registry(self.store)

    def models(self) -> list[dict[str, Any]]:
        """Every registered version with its stage, metrics and who promoted it why."""
        return [version.row() for version in self._registry().versions()]

    def model_choices(self) -> list[dict[str, str]]:
        """For the form: each registered name's champion (and newest challenger), to pick by
        alias; the run is then named by, and records, the version the alias means when it is
        submitted."""
        choices: list[dict[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for row in self.models():  # a name's versions come newest training first
            for stage in ("champion", "challenger"):
                if row["stage"] != stage or (row["name"], stage) in seen:
                    continue
                seen.add((row["name"], stage))
                choices.append({"value": f"{row['name']}@{stage}",
                                "label": f"{row['name']}@{stage} — the {stage} of {row['name']}, "
                                         f"version {row['version']}"})
        return sorted(choices, key=lambda c: (c["value"].split("@")[0],
                                              c["value"].endswith("challenger")))

    def promote(self, name: str, version: str, *, stage: Any, reason: Any, by: str) -> list[dict[str, Any]]:
        """A person's decision on a version's stage (``by``: the requester the API knows)."""
        events = self._registry().promote(name, version, str(stage or ""), by=by,
                                          reason=str(reason or ""))
        return [{"name": e.name, "version": e.version, "stage": e.stage, "by": e.by,
                 "reason": e.reason, "at": e.at} for e in events]

    def model_plots(self, name: str, version: str) -> bytes:
        """A version's ``plots.html``; ``FileNotFoundError`` when there is none."""
        from ltvcore.lifecycle.refs import NAME, VERSION

        if not (NAME.fullmatch(name) and VERSION.fullmatch(version)):
            raise FileNotFoundError(f"{name}@{version}")
        return self._registry().read_file(name, version, "plots.html")

    def dataset_choices(self) -> dict[str, dict[str, Any]]:
        """For the form: each dataset's files and ``by`` choices (None: type freely)."""
        choices: dict[str, dict[str, Any]] = {}
        for name in self.datasets.names():
            try:
                found = self.datasets.get(name)
            except InputError:
                continue
            choices[name] = {"files": sorted(os.path.basename(p) for p in found.files.values()),
                             "by": list(found.by_columns) if found.by_columns is not None else None}
        return choices
