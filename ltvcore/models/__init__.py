"""Forecast models, each with ``fit(data)`` / ``predict(n_days)`` / ``params(g)`` / ``assumptions``.

``predict`` returns :class:`ltvcore.ltv.CurveLTV`: cumulative LTV per installed user by day with
its interval, for every group at once.
"""

from __future__ import annotations

import importlib.util

from ltvcore.models.curve import CurveModel

__all__ = ["AUTO_CANDIDATES", "CurveModel", "build_model", "pools_groups"]

# The old geometric baseline is not a candidate: over the few days a holdout can score it
# often looks best, then misses by 35–80% at 180 days (benchmarks/accuracy.py). The Bayesian
# model takes part by its MAP fit (seconds; NUTS would take minutes per candidate fit) where
# PyMC is installed (the `bayes` extra).
AUTO_CANDIDATES = ("curve", "curve:sbg", "curve:rational") + (
    ("btyd:map",) if importlib.util.find_spec("pymc") is not None else ())


def pools_groups(name: str) -> bool:
    """Whether a model's forecast for one group depends on the other groups in the data.

    ``curve`` and ``geometric`` fit each group on its own, so groups can be forecast in shards;
    ``btyd`` pools groups hierarchically, ``calibrated`` learns from the matured ones and
    ``auto`` may choose either: those see every group at once, or a result would depend on how
    the groups were split.
    """
    return not (name in ("curve", "geometric") or name.startswith("curve:"))


def build_model(name: str, *, retention: str = "ensemble", confidence: float = 0.99, seed: int = 0,
                horizons: tuple[int, ...] = (30, 90, 180, 365), cache: bool = True):
    """The estimator behind a ``--model`` name (heavy models imported only when asked for).

    ``cache=False`` keeps any stored result (``btyd``'s posterior cache) from answering: an
    audit's reproduction recomputes everything.
    """
    if name == "curve":
        return CurveModel(retention=retention, confidence=confidence)
    if name.startswith("curve:"):  # one retention fit, as auto's candidates name them
        return CurveModel(retention=name.split(":", 1)[1], confidence=confidence)
    if name == "geometric":
        return CurveModel(retention="geometric", confidence=confidence)
    if name == "btyd" or name.startswith("btyd:"):  # "btyd:map": a named inference method
        if importlib.util.find_spec("pymc") is None:
            from ltvcore.errors import InputError

            raise InputError("'btyd' needs PyMC, which is not installed here "
                             "(pip install 'ltv-forecast[bayes]')", column="model")
        from ltvcore.models.btyd import BTYDModel

        method = name.split(":", 1)[1] if ":" in name else "nuts"
        return BTYDModel(method=method, confidence=confidence, seed=seed,
                         cache_dir=None if cache else False)
    if name == "calibrated":
        from ltvcore.models.calibrated import CalibratedModel

        return CalibratedModel(horizons=horizons, retention=retention, confidence=confidence)
    if name == "auto":
        from ltvcore.models.auto import AutoModel

        return AutoModel(candidates=AUTO_CANDIDATES, retention=retention, confidence=confidence,
                         seed=seed, horizons=horizons, cache=cache)
    raise ValueError(f"unknown model {name!r}")
