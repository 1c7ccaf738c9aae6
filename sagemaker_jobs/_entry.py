"""Run an entry point the way SageMaker expects: exit code, and a one-line reason on failure."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ltvcore.errors import InputError
from sagemaker_jobs import paths

MAX_MESSAGE = 1024  # SageMaker keeps the first 1 KiB of the message file as ExitMessage


def run(main: Callable[[], int | None]) -> None:
    """Call ``main``; on failure leave the reason where DescribeProcessingJob shows it."""
    try:
        code = main()
    except InputError as error:  # bad data: a clear message, no traceback (docs/interface.md, inputs)
        _leave_message(str(error))
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        _leave_message(f"{type(error).__name__}: {error}")
        raise
    sys.exit(code or 0)


def _leave_message(text: str) -> None:
    path = paths.message_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text[:MAX_MESSAGE], encoding="utf-8")
    except OSError:  # never hide the original error behind this one
        pass
