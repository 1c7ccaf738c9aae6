"""``--model history``: a gradient-boosted curve model learned from the data's matured groups.

:mod:`.features` computes the early signals (shapes and rates, never currency), :mod:`.training`
cuts matured groups back in calendar time into training examples and fits LightGBM with
out-of-fold residuals, :mod:`.trained` is the serialisable model, and :mod:`.estimator` the
:class:`~ltvcore.models.base.ForecastModel` that forecasts with it.
"""

from __future__ import annotations

from ltvcore.models.history.estimator import HistoryModel
from ltvcore.models.history.trained import TrainedHistory
from ltvcore.models.history.training import NotEnoughHistory, Settings

__all__ = ["HistoryModel", "NotEnoughHistory", "Settings", "TrainedHistory"]
