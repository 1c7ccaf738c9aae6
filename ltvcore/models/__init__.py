"""Forecast models, each with ``fit(data)`` / ``predict(n_days)`` / ``params(g)`` / ``assumptions``.

``predict`` returns :class:`ltvcore.ltv.CurveLTV`: cumulative LTV per installed user by day with
its interval, for every group at once.
"""

from __future__ import annotations

from ltvcore.models.curve import CurveModel

__all__ = ["AUTO_CANDIDATES", "CurveModel", "build_model"]

AUTO_CANDIDATES = ("curve", "geometric")


def build_model(name: str, *, retention: str = "ensemble", confidence: float = 0.99, seed: int = 0,
                horizons: tuple[int, ...] = (30, 90, 180, 365)):
    """The estimator behind a ``--model`` name (heavy models imported only when asked for)."""
    if name == "curve":
        return CurveModel(retention=retention, confidence=confidence)
    if name == "geometric":
        return CurveModel(retention="geometric", confidence=confidence)
    if name == "btyd":
        from ltvcore.models.btyd import BTYDModel

        return BTYDModel(confidence=confidence, seed=seed)
    if name == "calibrated":
        from ltvcore.models.calibrated import CalibratedModel

        return CalibratedModel(horizons=horizons, retention=retention, confidence=confidence)
    if name == "auto":
        from ltvcore.models.auto import AutoModel

        return AutoModel(candidates=AUTO_CANDIDATES, retention=retention, confidence=confidence,
                         seed=seed, horizons=horizons)
    raise ValueError(f"unknown model {name!r}")
