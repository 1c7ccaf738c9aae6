"""``ltv monitor``: how the published forecasts of past runs held up, and why not.

For every succeeded run of a store, the newer data give the realised LTV of the run's users at
each checkpoint they have reached; the forecast as published is scored against it (monitor.csv),
summarised by model version over time (monitor.html), and a model version whose recent error
passes a threshold is announced on Slack. Each run's recorded assumptions are tested against
its users' later days, and the page names the ones that broke. See docs/monitor.md.

Modules: ``runs`` (reading a store's runs), ``scoring`` (rows, summaries, drift), ``assumptions``
(the checks), ``alerts`` (Slack), ``page`` (monitor.html), ``settings`` (thresholds and their
environment variables) and ``core`` (the command end to end).
"""

from __future__ import annotations

from ltvcore.monitor.core import MonitorResult, monitor, open_runs, run_monitor, write_outputs
from ltvcore.monitor.settings import Thresholds, thresholds

__all__ = ["MonitorResult", "Thresholds", "monitor", "open_runs", "run_monitor", "thresholds",
           "write_outputs"]
