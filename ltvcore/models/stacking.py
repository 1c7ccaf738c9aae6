"""Combining candidates that the out-of-sample evidence cannot tell apart.

A candidate's weight is the probability that it has the lowest error when the scored groups
are resampled: a Bayesian bootstrap (Rubin 1981) over groups, each draw reweighting the groups
by Dirichlet(1, …, 1) times their users, and the candidate with the lowest weighted mean error
in the draw scoring one win. A candidate that beats the others on nearly every group takes
all the weight, so selection is the special case; candidates whose errors overlap share it in
proportion to how often each comes out best. Weighting candidates by resampled out-of-sample
scores is the idea of pseudo-BMA+ (Yao, Vehtari, Simpson & Gelman 2018, "Using Stacking to
Average Bayesian Predictive Distributions"); counting wins instead of exponentiating scores
keeps the weights in the units the marketer judges (absolute % error) with no temperature to
choose. Optimised linear weights (stacking proper) were tried first: with a dozen groups they
sat on one corner of the simplex that the next data set moved, and forecast no better.

The combined forecast averages the components' curves and their interval bounds with the same
weights (quantile averaging), so the band keeps the confidence of its components.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltvcore.ltv import CurveLTV
from ltvcore.models.base import ForecastModel

__all__ = ["DRAWS", "MIN_WEIGHT", "StackedModel", "selection_weights"]

#: Bootstrap draws: the weights' Monte Carlo error is at most √(¼/400) = 2.5 points.
DRAWS = 400
#: Weights below this are dropped and the rest renormalised (a component that wins one draw in
#: twenty is not worth fitting on the full data).
MIN_WEIGHT = 0.05


def selection_weights(errors: np.ndarray, weight: np.ndarray, *, draws: int = DRAWS,
                      seed: int = 0) -> np.ndarray:
    """``(K,)`` probability that each candidate has the lowest weighted mean error.

    Parameters
    ----------
    errors
        ``(G, K)`` non-negative error of each candidate on each scored group; groups with a
        non-finite error for any candidate are left out.
    weight
        ``(G,)`` each group's weight (its users).
    """
    errors = np.asarray(errors, dtype=float)
    weight = np.asarray(weight, dtype=float)
    n_candidates = errors.shape[1]
    if n_candidates == 1:
        return np.ones(1)
    usable = np.isfinite(errors).all(axis=1) & (weight > 0)
    if not usable.any():
        return np.full(n_candidates, np.nan)
    errors, weight = errors[usable], weight[usable]
    rng = np.random.default_rng(seed)
    resampled = rng.dirichlet(np.ones(errors.shape[0]), draws) * weight[None, :]
    mean_error = resampled @ errors / resampled.sum(axis=1, keepdims=True)
    wins = np.bincount(mean_error.argmin(axis=1), minlength=n_candidates) / draws
    wins = np.where(wins >= MIN_WEIGHT, wins, 0.0)
    return wins / wins.sum()


class StackedModel:
    """The weighted combination of fitted models (each fitted on the same data)."""

    def __init__(self, components: dict[str, ForecastModel], weights: dict[str, float]) -> None:
        self.components = components
        self.weights = weights

    @property
    def _ordered(self) -> list[str]:
        return sorted(self.weights, key=lambda k: -self.weights[k])

    @property
    def name(self) -> str:
        names = list(dict.fromkeys(self.components[k].name for k in self._ordered))
        return "+".join(names)

    def fit(self, data: Any) -> StackedModel:  # the components arrive fitted
        return self

    def predict(self, n_days: int) -> CurveLTV:
        parts = [(self.weights[k], self.components[k].predict(n_days)) for k in self._ordered]
        if len(parts) == 1:
            return parts[0][1]
        share = np.array([w for w, _ in parts])

        def mix(curves: list[np.ndarray]) -> np.ndarray:
            return np.tensordot(share, np.stack(curves), axes=1)

        return CurveLTV(ltv=mix([p.ltv for _, p in parts]), lower=mix([p.lower for _, p in parts]),
                        upper=mix([p.upper for _, p in parts]))

    def params(self, g: int) -> dict:
        top = self.components[self._ordered[0]]
        out = dict(top.params(g))
        if len(self.weights) > 1:
            out["stack"] = {k: round(self.weights[k], 4) for k in self._ordered}
        return out

    @property
    def assumptions(self) -> list[str]:
        return self._union("assumptions")

    @property
    def warnings(self) -> list[str]:
        return self._union("warnings")

    def _union(self, attribute: str) -> list[str]:
        """The components' lines, heaviest component first, each once."""
        lines = (line for k in self._ordered for line in getattr(self.components[k], attribute))
        return list(dict.fromkeys(lines))
