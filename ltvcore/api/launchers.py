"""Who computes an accepted forecast: a local worker pool, or a Step Functions execution.

Both answer the same questions for the API's de-duplication, ``known(run_id)`` (is a
computation for this id under way?), ``start(job)`` and ``announce(job)`` (tell the job's
channels about a run that succeeded before), and both record ``queued`` in the store before
the work can begin, so the run page shows it at once. After that the computation owns the
status: the local worker marks ``running`` and ``failed``; on AWS the state machine does.
``succeeded`` is never a marker: it is the manifest (:mod:`ltvcore.runs.store`).

A local worker pool dies with its process, so its markers name it (``detail.launcher``:
host, pid and a token) and, on a local store, it holds an advisory lock on
``runs/.launchers/<token>.lock`` while it lives; the kernel drops the lock even on SIGKILL.
A new :class:`LocalLauncher` marks every ``queued``/``running`` run whose launcher is gone
``failed`` with :data:`INTERRUPTED` (resubmitting it computes it again), and so does a clean
shutdown for the work it will not do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ltvcore.api import attempts
from ltvcore.canonical import utc_now
from ltvcore.errors import InputError

if TYPE_CHECKING:
    from ltvcore.request import ForecastRequest
    from ltvcore.runs.store import ArtifactStore

__all__ = ["INTERRUPTED", "Job", "Launcher", "LauncherBusy", "LocalLauncher",
           "StepFunctionsLauncher", "notify_run"]

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted by a server restart; resubmit"
"""The error of a run its local server stopped (or was killed) before computing to the end."""

_TOKEN = re.compile(r"[0-9a-f]{32}")


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
        """True when a computation of ``run_id`` is under way."""

    def start(self, job: Job) -> None:
        """Mark the run ``queued`` and start computing it; :class:`LauncherBusy` when full."""

    def announce(self, job: Job) -> None:
        """Send the message of the succeeded run ``job`` names to ``job.notify`` again."""


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
    from ltvcore.notify import dispatch as default_dispatch
    from ltvcore.notify.announce import run_message

    send = dispatch or default_dispatch
    payload = run_message(store, job.run_id, request=job.request.normalised(),
                          requested_by=job.requested_by, dataset=job.dataset, error=error,
                          report_url=job.status_url or None, where_to_look=job.status_url or None)
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
    recover
        Mark the runs of launchers that are gone (a killed server) interrupted on start
        (:meth:`recover`).
    """

    def __init__(self, store: ArtifactStore, *, workers: int = 2, max_pending: int = 256,
                 compute: Callable[..., Any] | None = None,
                 notifier: Callable[[Job, ArtifactStore, str | None], Any] | None = None,
                 recover: bool = True) -> None:
        self.store = store
        self.max_pending = max_pending
        self._compute = compute
        self._notifier = notifier if notifier is not None else notify_run
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ltv-forecast")
        self._lock = threading.Lock()
        self._active: dict[str, Job] = {}
        self._waiting: dict[str, Future[None]] = {}  # accepted, no worker yet
        self._idle = threading.Condition(self._lock)
        self._closing = False
        self._abandoned = False
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                      "token": uuid.uuid4().hex}
        self._claims = _claims_dir(store)
        self._claim = self._hold_claim()
        self.owner["locked"] = self._claim is not None
        if recover:
            try:
                self.recover()
            except Exception:  # noqa: BLE001 - a server with stale markers still serves
                log.exception("could not check the store for interrupted runs")

    def known(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._active

    def start(self, job: Job) -> None:
        with self._lock:
            if job.run_id in self._active:
                return
            if self._closing:
                raise LauncherBusy("the server is stopping")
            if len(self._active) >= self.max_pending:
                raise LauncherBusy(f"{len(self._active)} forecasts are already waiting or running")
            self._active[job.run_id] = job
        try:
            self.store.mark(job.run_id, "queued", self._marker(job))
            with self._lock:
                if not self._closing:  # else the pool refuses: shutdown began meanwhile
                    self._waiting[job.run_id] = self._pool.submit(self._run, job)
                    return
        except BaseException:
            self._done(job.run_id)
            raise
        self._interrupt(job.run_id)
        raise LauncherBusy("the server is stopping")

    def announce(self, job: Job) -> None:
        try:
            self._notifier(job, self.store, None)
        except Exception:  # noqa: BLE001 - the run stands; only the message is lost
            log.exception("notification of run %s failed", job.run_id)

    def _marker(self, job: Job, **more: Any) -> dict[str, Any]:
        return job.marker(launcher=self.owner, **more)

    def _progress(self, job: Job, started: str) -> Callable[[str], None]:
        """The computation's ``progress``: the stage it enters, on the run's marker."""
        def tell(stage: str) -> None:
            if self._abandoned:
                return
            try:  # a run already complete keeps its manifest (mark writes nothing then)
                self.store.mark(job.run_id, "running",
                                self._marker(job, stage=str(stage), started=started))
            except Exception:  # noqa: BLE001 - progress never fails the run
                log.exception("could not record the stage of run %s", job.run_id)

        return tell

    def _done(self, run_id: str) -> None:
        with self._lock:
            self._active.pop(run_id, None)
            self._waiting.pop(run_id, None)
            self._idle.notify_all()

    def _run(self, job: Job) -> None:
        with self._lock:
            self._waiting.pop(job.run_id, None)
        error: str | None = None
        try:
            started = utc_now()
            self.store.mark(job.run_id, "running",
                            self._marker(job, stage="reading", started=started))
            if self._compute is not None:
                compute = self._compute
            else:
                from ltvcore.workflow.run import forecast_to_store as compute
            outcome = compute(job.request, events=job.inputs["events"],
                              installs=job.inputs.get("installs"), spend=job.inputs.get("spend"),
                              store=self.store.uri, requested_by=job.requested_by,
                              progress=self._progress(job, started))
            if outcome.run_id != job.run_id:
                error = ("The dataset or the code changed between submission and computation "
                         f"(the result is run {outcome.run_id}); submit the form again.")
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, never raised
            if self._abandoned:
                # the process is going away under it (e.g. pyarrow's pool refusing work after
                # interpreter shutdown): that is not what went wrong with the forecast
                self._done(job.run_id)
                return
            if not isinstance(exc, InputError):
                log.exception("forecast %s failed", job.run_id)
            error = _plain_error(exc)
        if self._abandoned:
            self._done(job.run_id)
            return
        try:
            if error is not None:
                self.store.mark(job.run_id, "failed", self._marker(job, error=error))
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

    def running(self) -> int:
        """Forecasts being computed now (accepted ones that have a worker)."""
        with self._lock:
            return len(self._active) - len(self._waiting)

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work and mark what is still queued :data:`INTERRUPTED`.

        Parameters
        ----------
        wait
            Wait for the running forecasts to finish; else abandon them, marked interrupted
            too (their threads then record nothing; a run that still completes is succeeded).
        """
        with self._lock:
            self._closing = True
            waiting = list(self._waiting.items())
        for run_id, future in waiting:
            if future.cancel():
                self._interrupt(run_id)
        if not wait:
            with self._lock:
                self._abandoned = True
                running = list(self._active)
            for run_id in running:
                self._interrupt(run_id)
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        self._release_claim()

    def _interrupt(self, run_id: str) -> None:
        with self._lock:
            job = self._active.get(run_id)
        try:
            if job is not None:
                self.store.mark(run_id, "failed", self._marker(job, error=INTERRUPTED))
        except Exception:  # noqa: BLE001 - the next start marks it instead
            log.exception("could not mark run %s interrupted", run_id)
        finally:
            self._done(run_id)

    # -- runs left behind by launchers that are gone -------------------------
    def _hold_claim(self) -> Any:
        """The lock that says this launcher lives (None where locks cannot be shared)."""
        if self._claims is None:
            return None
        handle = None
        path = self._claims / f"{self.owner['token']}.lock"
        try:
            import fcntl

            self._claims.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+b")  # noqa: SIM115
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            # another launcher's clean-up may have taken the file for a dead one's and
            # unlinked it before the lock was ours: then nobody could see this lock
            if os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                raise OSError(f"{path} was removed while being locked")
        except (ImportError, OSError):
            if handle is not None:
                handle.close()
            log.warning("cannot hold a launcher lock in %s: runs of a killed server are "
                        "recognised by process id only", self._claims)
            self._claims = None
            return None
        return handle

    def _release_claim(self) -> None:
        handle, self._claim = self._claim, None
        if handle is not None:
            with contextlib.suppress(OSError):
                os.unlink(handle.name)
            handle.close()

    def _gone(self, owner: Any) -> bool | None:
        """Whether the launcher a marker names is gone: True, False, or None (cannot tell)."""
        if not isinstance(owner, Mapping) or not _TOKEN.fullmatch(str(owner.get("token", ""))):
            return None
        if owner["token"] == self.owner["token"]:
            return False
        if self._claims is not None and owner.get("locked"):
            return _unlocked(self._claims / f"{owner['token']}.lock")
        if owner.get("host") != self.owner["host"] or not isinstance(owner.get("pid"), int):
            return None
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return True
        except OSError:  # it exists, owned by someone else
            return False
        return False

    def recover(self) -> list[str]:
        """Mark failed (:data:`INTERRUPTED`) the queued or running runs nobody computes.

        Those are the runs whose launcher is gone; on a local store also those whose marker
        names no launcher (written by an older ``ltv serve``: nothing else queues runs in a
        local store). Markers of live launchers, and on S3 those of Step Functions, are left
        alone. Returns the run ids marked.
        """
        local = self._claims is not None
        marked = []
        for entry in self.store.list_runs():
            if entry["status"] not in ("queued", "running") or self.known(entry["run_id"]):
                continue
            detail = entry.get("detail") or {}
            owner = detail.get("launcher")
            if not (self._gone(owner) if owner is not None else local):
                continue
            current = self.store.status(entry["run_id"])  # unchanged since listed?
            if current is None or current.get("created") != entry.get("created"):
                continue
            if current["status"] not in ("queued", "running"):
                continue
            if self.store.mark(entry["run_id"], "failed", {**detail, "error": INTERRUPTED}):
                marked.append(entry["run_id"])
        if self._claims is not None:
            for path in self._claims.glob("*.lock"):  # launchers gone without a marker left
                if path.stem != self.owner["token"]:
                    _unlocked(path)
        if marked:
            log.warning("marked %d run(s) left queued or running by a stopped server as "
                        "interrupted: %s", len(marked), ", ".join(marked))
        return marked


def _claims_dir(store: ArtifactStore) -> Path | None:
    """Where local launchers keep their liveness locks (hidden: never listed as a run)."""
    from ltvcore.runs.store import RUNS_DIR, LocalStore

    return store.root / RUNS_DIR / ".launchers" if isinstance(store, LocalStore) else None


def _unlocked(path: Path) -> bool:
    """True when nobody holds the lock file ``path`` (its launcher is gone); removes it then."""
    import fcntl

    try:
        handle = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return True
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        with contextlib.suppress(OSError):
            os.unlink(path)
    return True


# --------------------------------------------------------------------------- AWS


class StepFunctionsLauncher:
    """Starts one Step Functions execution per attempt of a run (:mod:`ltvcore.api.attempts`).

    The first attempt is named by the run id, a new attempt of a run whose last execution
    ended without success by ``<run id>-<attempt>``: execution names stay taken for 90 days.
    A run whose latest execution runs is not started again. Two API instances starting the
    same attempt at once are told ``ExecutionAlreadyExists`` by Step Functions: that is the
    idempotent success. Whether a run succeeded is the store's (its manifest), asked by
    :class:`~ltvcore.api.service.ForecastService` before :meth:`start`.

    The execution input is :meth:`Job.execution_input`: ``run_id``, ``request`` (the
    normalised request, ``dataset`` included), ``dataset``, ``inputs`` (role → ``s3://`` URI),
    ``input_digest`` (pass it to ``ltvcore.workflow.steps.forecast(input_digest=...)`` so the run keeps
    this id), ``requested_by``, ``notify``, ``status_url``, ``store``, ``submitted``.
    Needs ``states:StartExecution`` and ``states:DescribeExecution``; with ``notify_function``
    (the workflow's notify Lambda) also ``lambda:InvokeFunction`` on it, for :meth:`announce`.
    """

    def __init__(self, state_machine_arn: str, store: ArtifactStore, *, client: Any = None,
                 notify_function: str | None = None, lambda_client: Any = None) -> None:
        if ":stateMachine:" not in state_machine_arn:
            raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
        self.state_machine_arn = state_machine_arn
        self.store = store
        self.notify_function = notify_function
        self._client = client
        self._lambda = lambda_client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("stepfunctions")
        return self._client

    @property
    def lambda_client(self) -> Any:
        if self._lambda is None:
            import boto3

            self._lambda = boto3.client("lambda")
        return self._lambda

    def execution_arn(self, run_id: str, attempt: int = 1) -> str:
        name = attempts.execution_name(run_id, attempt)
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"

    def latest(self, run_id: str) -> tuple[int, dict[str, Any] | None]:
        """The number and description of the run's latest attempt; ``(0, None)`` when none."""
        found: tuple[int, dict[str, Any] | None] = (0, None)
        for attempt in range(1, attempts.MAX_ATTEMPTS + 1):
            try:
                described = self.client.describe_execution(
                    executionArn=self.execution_arn(run_id, attempt))
            except self.client.exceptions.ExecutionDoesNotExist:
                break
            found = (attempt, described)
        return found

    def known(self, run_id: str) -> bool:
        _attempt, described = self.latest(run_id)
        return described is not None and described["status"] == "RUNNING"

    def start(self, job: Job) -> None:
        attempt, described = self.latest(job.run_id)
        if described is not None and described["status"] == "RUNNING":
            return  # another submission started it since known() was asked
        if attempt >= attempts.MAX_ATTEMPTS:
            raise LauncherBusy(f"run {job.run_id} was attempted {attempt} times; an engineer "
                               "should look at its executions before it is tried again")
        name = attempts.execution_name(job.run_id, attempt + 1)
        self.store.mark(job.run_id, "queued", job.marker(execution=name, attempt=attempt + 1))
        try:
            self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name,
                input=json.dumps(job.execution_input(self.store.uri), sort_keys=True))
        except self.client.exceptions.ExecutionAlreadyExists:
            log.info("execution %s already exists: nothing to start", name)

    def announce(self, job: Job) -> None:
        """Ask the notify Lambda (asynchronously) for the success message, as NotifySuccess does."""
        if not self.notify_function:
            log.warning("no notify function configured: run %s is not announced again", job.run_id)
            return
        attempt, _described = self.latest(job.run_id)
        attempt = max(attempt, 1)
        payload = {"status": "succeeded",
                   "execution_name": attempts.execution_name(job.run_id, attempt),
                   "execution_arn": self.execution_arn(job.run_id, attempt),
                   "state": {"input": job.execution_input(self.store.uri)}}
        self.lambda_client.invoke(FunctionName=self.notify_function, InvocationType="Event",
                                  Payload=json.dumps(payload, sort_keys=True).encode())
