"""The activity rate a run's fitted retention laws imply, from the parameters in ``params.json``.

One home for reading a law back from its recorded parameters: the monitor tests them against
newer data (:mod:`ltvcore.monitor.assumptions`) and the report draws them over the observed
rates (:mod:`ltvcore.report.figures.retention`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import betaln

__all__ = ["LAW_NAMES", "activity_laws", "fitted_activity"]

#: The check name of each law, keyed by its entry in a group's ``models``.
LAW_NAMES = {"sbg": "retention law (sBG)", "bdw": "retention law (BdW)",
             "rational": "retention law (rational)", "geometric": "retention law (geometric)",
             "btyd": "retention law (BG/BB)"}


def activity_laws(models: Mapping[str, Any], days: int) -> dict[str, np.ndarray]:
    """Each fitted law's activity rate on days ``0 … days−1`` since install, by check name."""
    t = np.arange(days, dtype=float)
    laws = {}
    if "sbg" in models:
        p = models["sbg"]
        a, b = float(p["alpha"]), float(p["beta"])
        laws[LAW_NAMES["sbg"]] = float(p["day0_rate"]) * np.exp(betaln(a, b + t) - betaln(a, b))
    if "bdw" in models:
        p = models["bdw"]
        a, b, c = float(p["alpha"]), float(p["beta"]), float(p["c"])
        laws[LAW_NAMES["bdw"]] = float(p["day0_rate"]) * np.exp(betaln(a, b + t**c) - betaln(a, b))
    if "rational" in models:
        p = models["rational"]
        laws[LAW_NAMES["rational"]] = float(p["d"]) / (
            float(p["b"]) * np.maximum(t, 1.0) ** float(p["a"]) + float(p.get("c", 1.0)))
    if "geometric" in models:
        p = models["geometric"]
        laws[LAW_NAMES["geometric"]] = float(p["day1_rate"]) * float(p["r"]) ** (t - 1.0)
    if "btyd" in models:
        p = models["btyd"]
        gamma, delta = float(p["theta_gamma"]), float(p["theta_delta"])
        alive = np.exp(betaln(gamma, delta + t) - betaln(gamma, delta))
        laws[LAW_NAMES["btyd"]] = float(p["p_alpha"]) / (
            float(p["p_alpha"]) + float(p["p_beta"])) * alive
    return laws


def fitted_activity(models: Mapping[str, Any], days: int) -> np.ndarray | None:
    """The one retention curve a group's forecast rests on, or None when it records no law.

    The curve model's ``ensemble`` averages the sBG and rational forecasts, which share one
    ARPU: its point forecast is that of the mean of the two laws.
    """
    try:
        laws = activity_laws(models, days)
    except (KeyError, TypeError, ValueError):  # a law recorded without its parameters
        return None
    if not laws:
        return None
    return np.mean(list(laws.values()), axis=0)
