"""A live progress line on the terminal while a forecast runs: its stage and the time spent.

The stages are those the workflow reports (reading, aggregating, fitting, writing); a long fit
(a btyd posterior, a history model's training) then shows a spinner and a clock instead of
nothing for a minute. Shown only on an interactive terminal and without ``--quiet``: scripts,
pipes and CI logs get exactly the output they had.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO, Any

__all__ = ["StageDisplay"]

LABELS = {"reading": "reading the data", "aggregating": "aggregating cohorts",
          "fitting": "fitting the model", "writing": "writing the run"}


class StageDisplay:
    """``with StageDisplay(enabled) as progress: forecast(..., progress=progress)``."""

    def __init__(self, enabled: bool, *, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.stages: list[str] = []
        self._progress: Any = None
        self._task: Any = None

    @classmethod
    def for_terminal(cls, quiet: bool) -> StageDisplay:
        return cls(enabled=not quiet and sys.stderr.isatty())

    def __enter__(self) -> StageDisplay:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, force_terminal=True)
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("starting", total=None)
        return self

    def __call__(self, stage: str) -> None:
        self.stages.append(stage)
        if self._progress is not None:
            step = f"[{len(self.stages)}/{len(LABELS)}] " if stage in LABELS else ""
            self._progress.update(self._task, description=step + LABELS.get(stage, stage))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
