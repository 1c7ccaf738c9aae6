"""Who computes an accepted forecast: a local worker pool, or a Step Functions execution.

Both answer the same two questions for the API's de-duplication, ``known(run_id)`` (is a
computation for this id under way, or on AWS did one ever start?) and ``start(job)``, and
both record ``queued`` in the store before the work can begin, so the run page shows it at
once. After that the computation owns the status: the local worker marks ``running`` and
``failed``; on AWS the state machine does. ``succeeded`` is never a marker: it is the
manifest (:mod:`ltvcore.runs.store`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ltvcore.errors import InputError

if TYPE_CHECKING:
    from ltvcore.request import ForecastRequest
    from ltvcore.runs.store import ArtifactStore

__all__ = ["Job", "Launcher", "LauncherBusy", "LocalLauncher", "StepFunctionsLauncher",
           "notify_run"]

log = logging.getLogger(__name__)


class LauncherBusy(Exception):
    """Too much work is waiting; the request may be retried later (HTTP 503)."""


@dataclass(frozen=True)
class Job:
    """An accepted forecast: what to compute, on which files, for whom."""

    run_id: str
    request: ForecastRequest
    dataset: str
    inputs: dict[str, str]  # role → local path or s3:// URI
    input_digest: str
    requested_by: str
    notify: tuple[str, ...] = ()
    status_url: str = ""
    submitted: str = ""

    def marker(self, **more: Any) -> dict[str, Any]:
        """The ``detail`` of the run's status marker (what run pages show before a manifest)."""
        return {"request": self.request.normalised(), "requested_by": self.requested_by,
                "notify": list(self.notify), "status_url": self.status_url,
                "submitted": self.submitted} | more

    def execution_input(self, store_uri: str) -> dict[str, Any]:
        """The Step Functions execution input (see :class:`StepFunctionsLauncher`)."""
        return {"run_id": self.run_id, "request": self.request.normalised(),
                "dataset": self.dataset, "inputs": dict(self.inputs),
                "input_digest": self.input_digest, "requested_by": self.requested_by,
                "notify": list(self.notify), "status_url": self.status_url,
                "store": store_uri, "submitted": self.submitted}


class Launcher(Protocol):
    def known(self, run_id: str) -> bool:
        """True when a computation of ``run_id`` is under way (or, on AWS, ever started)."""

    def start(self, job: Job) -> None:
        """Mark the run ``queued`` and start computing it; :class:`LauncherBusy` when full."""


# --------------------------------------------------------------------------- local


def _plain_error(error: BaseException) -> str:
    if isinstance(error, InputError):
        return f"The input data or request was not usable: {error}"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return (f"The forecast stopped on an internal error ({type(error).__name__}"
            f"{': ' + text[:300] if text else ''}). The server log has the details.")


def notify_run(job: Job, store: ArtifactStore, error: str | None = None, *,
               dispatch: Callable[..., Any] | None = None) -> None:
    """Tell Slack (or print, with no webhooks configured) that ``job`` finished or failed."""
    from ltvcore.notify import dispatch as default_dispatch, failure_message, success_message

    send = dispatch or default_dispatch
    if error is not None:
        payload = failure_message(run_id=job.run_id, requested_by=job.requested_by,
                                  dataset=job.dataset, error=error,
                                  where_to_look=job.status_url or None)
    else:
        manifest = store.read_manifest(job.run_id)
        text = store.read_bytes(job.run_id, "forecast.csv").decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        payload = success_message(run_id=job.run_id, requested_by=job.requested_by,
                                  dataset=job.dataset, as_of=str(manifest.get("as_of", "")),
                                  forecast_rows=rows, by=list(job.request.by),
                                  warnings=manifest.get("warnings") or (),
                                  report_url=job.status_url or None,
                                  confidence=job.request.confidence)
    send(payload, requested=list(job.notify))


class LocalLauncher:
    """A bounded pool of worker threads running the pipeline on the local store.

    Parameters
    ----------
    store
        The artifact store runs are written to.
    workers
        Forecasts computed at once (each is CPU-bound: about one per core).
    max_pending
        Accepted forecasts waiting or running at most; beyond it ``start`` raises
        :class:`LauncherBusy`.
    compute
        ``forecast_to_store``-compatible callable (default: the pipeline's, imported on first
        use so the API itself never imports pandas).
    notifier
        ``notifier(job, store, error_or_None)``; default :func:`notify_run`. ``None``-returning
        lambdas silence it.
    """

    def __init__(self, store: ArtifactStore, *, workers: int = 2, max_pending: int = 256,
                 compute: Callable[..., Any] | None = None,
                 notifier: Callable[[Job, ArtifactStore, str | None], Any] | None = None) -> None:
        self.store = store
        self.max_pending = max_pending
        self._compute = compute
        self._notifier = notifier if notifier is not None else notify_run
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ltv-forecast")
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._idle = threading.Condition(self._lock)

    def known(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._active

    def start(self, job: Job) -> None:
        with self._lock:
            if job.run_id in self._active:
                return
            if len(self._active) >= self.max_pending:
                raise LauncherBusy(f"{len(self._active)} forecasts are already waiting or running")
            self._active.add(job.run_id)
        try:
            self.store.mark(job.run_id, "queued", job.marker())
            self._pool.submit(self._run, job)
        except BaseException:
            self._done(job.run_id)
            raise

    def _done(self, run_id: str) -> None:
        with self._lock:
            self._active.discard(run_id)
            self._idle.notify_all()

    def _run(self, job: Job) -> None:
        error: str | None = None
        try:
            self.store.mark(job.run_id, "running", job.marker())
            compute = self._compute
            if compute is None:
                from ltvcore.pipeline import forecast_to_store as compute
            outcome = compute(job.request, events=job.inputs["events"],
                              installs=job.inputs.get("installs"), spend=job.inputs.get("spend"),
                              store=self.store.uri, requested_by=job.requested_by)
            if outcome.run_id != job.run_id:
                error = ("The dataset or the code changed between submission and computation "
                         f"(the result is run {outcome.run_id}); submit the form again.")
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, never raised
            if not isinstance(exc, InputError):
                log.exception("forecast %s failed", job.run_id)
            error = _plain_error(exc)
        try:
            if error is not None:
                self.store.mark(job.run_id, "failed", job.marker(error=error))
        except Exception:  # noqa: BLE001
            log.exception("could not record the failure of run %s", job.run_id)
        finally:
            self._done(job.run_id)
        try:
            self._notifier(job, self.store, error)
        except Exception:  # noqa: BLE001 - a notification never fails the run
            log.exception("notification of run %s failed", job.run_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no forecast is waiting or running (tests, shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._active, timeout)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


# --------------------------------------------------------------------------- AWS


class StepFunctionsLauncher:
    """Starts one Step Functions execution per run, named by the run id.

    Execution names are unique per state machine (for 90 days after an execution ends), so
    a second start of the same run, from this or any other Lambda instance, is refused by
    Step Functions with ``ExecutionAlreadyExists``: that is the idempotent success. It also
    means a failed run id is not recomputed by resubmitting; its page shows the failure.

    The execution input is :meth:`Job.execution_input`: ``run_id``, ``request`` (the
    normalised request, ``dataset`` included), ``dataset``, ``inputs`` (role → ``s3://`` URI),
    ``input_digest`` (pass it to ``ltvcore.steps.forecast(input_digest=...)`` so the run keeps
    this id), ``requested_by``, ``notify``, ``status_url``, ``store``, ``submitted``.
    Needs ``states:StartExecution`` and ``states:DescribeExecution``.
    """

    def __init__(self, state_machine_arn: str, store: ArtifactStore, *, client: Any = None) -> None:
        if ":stateMachine:" not in state_machine_arn:
            raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
        self.state_machine_arn = state_machine_arn
        self.store = store
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("stepfunctions")
        return self._client

    def execution_arn(self, run_id: str) -> str:
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{run_id}"

    def known(self, run_id: str) -> bool:
        try:
            self.client.describe_execution(executionArn=self.execution_arn(run_id))
        except self.client.exceptions.ExecutionDoesNotExist:
            return False
        return True

    def start(self, job: Job) -> None:
        self.store.mark(job.run_id, "queued", job.marker())
        try:
            self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=job.run_id,
                input=json.dumps(job.execution_input(self.store.uri), sort_keys=True))
        except self.client.exceptions.ExecutionAlreadyExists:
            log.info("execution %s already exists: nothing to start", job.run_id)
