"""The thresholds of ``ltv monitor``: stated defaults, each overridable by an environment variable.

They are settings rather than options because the command line is a fixed contract
(docs/monitor.md) and because a deployment sets them once for every scheduled monitor, not per
call. A value that is not a number in range is bad input (exit 2), named by its variable, found
before anything is read or written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ltvcore.errors import InputError

__all__ = ["ENV_ASSUMPTION_TOLERANCE", "ENV_BIAS_ALERT", "ENV_MAPE_ALERT", "ENV_RECENT_RUNS",
           "Thresholds", "thresholds"]

ENV_MAPE_ALERT = "LTV_MONITOR_MAPE_ALERT"
ENV_BIAS_ALERT = "LTV_MONITOR_BIAS_ALERT"
ENV_RECENT_RUNS = "LTV_MONITOR_RECENT_RUNS"
ENV_ASSUMPTION_TOLERANCE = "LTV_MONITOR_ASSUMPTION_TOLERANCE"


@dataclass(frozen=True)
class Thresholds:
    """When the monitor alerts and when it calls an assumption broken.

    ``mape_alert`` and ``bias_alert`` are percentages: a model version alerts at a checkpoint
    when the MAPE of its forecasts from its ``recent_runs`` latest as-of dates exceeds
    ``mape_alert``, or their mean signed error leaves ``±bias_alert``. ``assumption_tolerance``
    (a percentage) is how far a realised quantity may stray from what the model assumed before
    the assumption counts as broken (it must also be beyond the noise: :data:`Z_BROKEN`).
    """

    mape_alert: float = 25.0
    bias_alert: float = 15.0
    recent_runs: int = 3
    assumption_tolerance: float = 20.0


#: How many standard errors a deviation must reach to be more than noise. Monitoring tests every
#: assumption of every group of every run, so a 1-in-20 test would cry wolf daily; 3 standard
#: errors is about 1 in 370 for a normal statistic.
Z_BROKEN = 3.0


def _percent(env: Mapping[str, str], name: str, default: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip().removesuffix("%").strip()
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"environment {name}={raw[:40]!r} is not a percentage (e.g. 25 or 25%)") \
            from None
    if not math.isfinite(value) or not 0 < value <= high:
        raise InputError(f"environment {name}={raw[:40]!r} must be a percentage above 0 and at "
                         f"most {high:g}")
    return value


def thresholds(env: Mapping[str, str] | None = None) -> Thresholds:
    """The thresholds in force: the defaults of :class:`Thresholds`, overridden by the env."""
    env = os.environ if env is None else env
    default = Thresholds()
    raw_recent = env.get(ENV_RECENT_RUNS)
    recent = default.recent_runs
    if raw_recent is not None and raw_recent.strip():
        try:
            recent = int(raw_recent.strip())
        except ValueError:
            recent = 0
        if not 1 <= recent <= 1000:
            raise InputError(f"environment {ENV_RECENT_RUNS}={raw_recent[:40]!r} must be a whole "
                             "number of runs from 1 to 1000")
    return Thresholds(
        mape_alert=_percent(env, ENV_MAPE_ALERT, default.mape_alert, 1000.0),
        bias_alert=_percent(env, ENV_BIAS_ALERT, default.bias_alert, 1000.0),
        recent_runs=recent,
        assumption_tolerance=_percent(env, ENV_ASSUMPTION_TOLERANCE,
                                      default.assumption_tolerance, 1000.0),
    )
