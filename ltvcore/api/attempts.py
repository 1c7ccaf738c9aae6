"""The Step Functions execution names of a run's attempts: ``<run id>``, then ``<run id>-2``, ...

Step Functions keeps an execution name for 90 days after the execution ends, so a failed run
cannot start again under its own name. Each new attempt takes the next number instead; the
first keeps the bare run id, so the executions of runs that never failed are named as before.
Run ids are lower-case hex (:func:`ltvcore.runs.ids.run_id`), so ``-`` cannot be part of one.
"""

from __future__ import annotations

import re

__all__ = ["MAX_ATTEMPTS", "attempt_of", "execution_name"]

MAX_ATTEMPTS = 50
"""Attempts a run may have: each new one costs a DescribeExecution per earlier attempt, and a
run that failed this often needs a person, not another attempt."""

_SUFFIX = re.compile(r"-([1-9][0-9]{0,5})")


def execution_name(run_id: str, attempt: int) -> str:
    """The execution name of attempt ``attempt`` (1, 2, ...) of ``run_id``."""
    if attempt < 1:
        raise ValueError(f"attempts are numbered from 1, got {attempt}")
    return run_id if attempt == 1 else f"{run_id}-{attempt}"


def attempt_of(execution: str, run_id: str) -> int | None:
    """The attempt number ``execution`` names for ``run_id``; None when it names none of them.

    ``<run id>-1`` is not a name :func:`execution_name` gives, so it is not an attempt.
    """
    if execution == run_id:
        return 1
    if not execution.startswith(run_id):
        return None
    match = _SUFFIX.fullmatch(execution[len(run_id):])
    attempt = int(match.group(1)) if match else None
    return attempt if attempt is not None and attempt >= 2 else None
