"""The one contract every forecast model keeps.

A model is built with its settings only (no data, no work), learns in ``fit(data)`` from a
:class:`~ltvcore.data.cohorts.CohortData` of every group at once, and ``predict(n_days)`` gives
each group's cumulative LTV per installed user by day with its interval
(:class:`~ltvcore.ltv.CurveLTV`). What it learned is reported per group by ``params(g)``, what
it assumes by ``assumptions``, what it could not do by ``warnings``, and, for models that choose
or learn across groups, why by ``selection``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ltvcore.data.cohorts import CohortData
    from ltvcore.ltv import CurveLTV

__all__ = ["ForecastModel", "ModelDefaults"]


class ForecastModel(Protocol):
    @property
    def name(self) -> str:
        """The model that produced the forecast (``forecast.csv``'s ``model`` column)."""
        ...

    def fit(self, data: CohortData) -> ForecastModel: ...

    def predict(self, n_days: int) -> CurveLTV: ...

    def params(self, g: int) -> dict[str, Any]:
        """Group ``g``'s fitted parameters, by component (``params.json``)."""
        ...

    @property
    def assumptions(self) -> list[str]: ...

    @property
    def warnings(self) -> list[str]:
        """What the fit could not do as asked (e.g. a horizon left uncalibrated)."""
        ...

    @property
    def selection(self) -> dict[str, Any] | None:
        """What was chosen or learned across groups and why, or None for a model that does not."""
        ...


class ModelDefaults:
    """The parts of :class:`ForecastModel` most models answer the same way."""

    @property
    def warnings(self) -> list[str]:
        return []

    @property
    def selection(self) -> dict[str, Any] | None:
        return None
