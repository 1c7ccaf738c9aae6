"""Forecast models behind one contract (:class:`~ltvcore.models.base.ForecastModel`), known by
name in one registry (:mod:`ltvcore.models.registry`).

``predict`` returns :class:`ltvcore.ltv.CurveLTV`: cumulative LTV per installed user by day with
its interval, for every group at once. Importing this package imports no model (nor numpy): the
request checks model names in the API Lambda, which has neither.
"""

from __future__ import annotations

from ltvcore.models.base import ForecastModel
from ltvcore.models.registry import AUTO_CANDIDATES, MODELS, ModelOptions, build_model, pools_groups

__all__ = ["AUTO_CANDIDATES", "ForecastModel", "MODELS", "ModelOptions", "build_model",
           "pools_groups"]
