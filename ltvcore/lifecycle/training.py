"""``ltv models train``: fit the history model on data cut at as-of and register the version.

What a version records (its ``card.json``): the model's parameters, the digest of the input files
(:func:`ltvcore.runs.naming.input_files_digest`, as a run's id uses), the as-of date and
grouping, the code version and the packages it ran with, the out-of-fold backtest metrics, who
trained it and when; ``plots.html`` shows the out-of-fold forecasts against what happened.

The model is trained for requests of any age (``young_age=None``: cut back to the default ages,
not to one request's): a registered version is used by later forecasts on other data.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ltvcore.errors import InputError
from ltvcore.lifecycle.refs import check_name
from ltvcore.lifecycle.registry import Registry
from ltvcore.lifecycle.rule import Verdict

__all__ = ["BY", "OBSERVE_DAYS", "Trained", "backtest_summary", "train"]

#: The grouping and cohort rule a registered model is trained with: campaigns are the groups a
#: marketer forecasts, and seven observed days is the product's default request.
BY = ("campaign",)
OBSERVE_DAYS = 7
FAMILY = "history"


@dataclass(frozen=True)
class Trained:
    name: str
    version: str
    created: bool  # False: the same training was registered before (nothing written)
    stage: str
    card: dict[str, Any]
    verdict: Verdict | None  # the challenger rule's, for a new version


def _who() -> str:
    try:
        return os.environ.get("LTV_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (e.g. a container without one)
        return "unknown"


def backtest_summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The history model's out-of-fold metrics per horizon, over every age it was cut back to.

    The model reports MAPE and held-out coverage per (age, horizon); a registered version serves
    requests of any age, so the rule judges it by their mean over the ages, weighted by the
    groups each scored. Percent throughout; ``nominal`` is the interval level trained at.
    """
    totals: dict[int, dict[str, float]] = {}
    for rows in (metrics.get("by_age") or {}).values():
        for horizon, row in rows.items():
            n = float(row.get("groups") or 0)
            if n <= 0 or row.get("mape") is None:
                continue
            t = totals.setdefault(int(horizon), {"n": 0.0, "mape": 0.0, "bias": 0.0,
                                                 "curve": 0.0, "cov_n": 0.0, "cov": 0.0})
            t["n"] += n
            t["mape"] += n * float(row["mape"])
            t["bias"] += n * float(row.get("bias") or 0.0)
            t["curve"] += n * float(row.get("mape_curve") or 0.0)
            if row.get("coverage") is not None:
                t["cov_n"] += n
                t["cov"] += n * float(row["coverage"])
    horizons = {
        str(h): {"scored": int(t["n"]),  # (group, age) pairs
                 "mape": round(t["mape"] / t["n"], 3), "bias": round(t["bias"] / t["n"], 3),
                 "mape_curve": round(t["curve"] / t["n"], 3),
                 "coverage": round(t["cov"] / t["cov_n"], 3) if t["cov_n"] else None}
        for h, t in sorted(totals.items())}
    confidence = metrics.get("confidence")
    return {"nominal": None if confidence is None else round(float(confidence) * 100, 6),
            "over": "every age trained, weighted by groups", "horizons": horizons}


def train(*, events: str, installs: str | None = None, spend: str | None = None,
          as_of: str | None = None, name: str, registry: Registry,
          by_user: str | None = None) -> Trained:
    """Train, register (stage ``dev``) and apply the challenger rule; what was done.

    Bad input (:class:`InputError`, nothing written): a bad name or as-of, unreadable files, or
    data with too few matured campaigns to learn from.
    """
    try:
        check_name(name)
    except ValueError as error:
        raise InputError(str(error), column="name") from None
    from ltvcore.lifecycle.forecasting import needs_lightgbm

    needs_lightgbm()
    from ltvcore.models.history import HistoryModel, NotEnoughHistory
    from ltvcore.models.history.trained import train as fit_history
    from ltvcore.models.history.training import DEFAULT_YOUNGEST
    from ltvcore.request import ForecastRequest
    from ltvcore.runs.manifest import code_info, code_version, environment_info
    from ltvcore.runs.naming import input_files_digest
    from ltvcore.warehouse.model_data import cohort_data
    from ltvcore.workflow.forecast import load_inputs, resolve_as_of

    request = ForecastRequest(as_of=as_of, by=BY, observe_days=OBSERVE_DAYS)  # checks the date
    digest = input_files_digest({"events": events, "installs": installs, "spend": spend})
    inputs = load_inputs(events, installs, spend)
    cut = resolve_as_of(inputs, request)
    data = cohort_data(inputs, by=list(BY), as_of=cut, observe_days=OBSERVE_DAYS, window_days=None)
    model = HistoryModel(horizons=request.horizons, confidence=request.confidence)
    try:
        trained = fit_history(data, horizons=model.horizons, confidence=model.confidence,
                              min_history=model.min_history, settings=model.settings,
                              young_age=None, youngest=DEFAULT_YOUNGEST)
    except NotEnoughHistory as why:
        raise InputError(f"cannot train a history model on this data: {why}; it needs campaigns "
                         "observed for weeks (use data with more history, or a later --as-of)",
                         column="events") from None
    header = trained.header
    who = by_user or _who()
    card: dict[str, Any] = {
        "model": FAMILY, "params": trained.params, "metrics": trained.metrics,
        "backtest": backtest_summary(trained.metrics),
        "dataset_digest": digest, "inputs": dict(inputs.names), "as_of": cut, "by": list(BY),
        "observe_days": OBSERVE_DAYS, "confidence": model.confidence,
        "grid": header.get("grid"), "ages": header.get("ages"),
        "training_groups": len(header.get("training_groups") or []), "rows": header.get("rows"),
        "code_version": code_version(), "code": code_info(), "environment": environment_info(),
        "trained_at": _now(), "trained_by": who,
    }
    from ltvcore.lifecycle.plots import training_plots

    plots = training_plots(trained, title=f"{name}: out-of-fold backtest (data to {cut})")
    version, created = registry.register(name, model=trained.to_bytes(), card=card, plots=plots,
                                         by=who)
    verdict = None
    if created:
        verdict, _event = registry.apply_rule(name, version)
    current = registry.current(name)[version]
    return Trained(name=name, version=version, created=created, stage=current.stage,
                   card=current.card, verdict=verdict)


def _now() -> str:
    from ltvcore.canonical import utc_now

    return utc_now()
