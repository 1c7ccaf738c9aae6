"""``--model auto``: pick the model per request, by the best evidence the data hold.

Without history, a time-split holdout inside the observed data: every candidate is fitted on
the early part of each cohort's life (days ``0 … split``) and scored on how well it predicts the
cumulative LTV each group has actually reached by its last observed day. With history (groups
that have already reached the horizons), a backtest on them: each candidate forecasts those
groups from the young groups' age and is scored over the calibrated horizons; the
calibrated model brings its leave-one-group-out error on the same groups. The best score wins
and is refitted on everything. Candidates, scores and
the choice are recorded in ``params.json`` so the report can say which model was used and why.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ltvcore.data.cohorts import CohortData, cut_back, truncate
from ltvcore.ltv import observed_ltv
from ltvcore.models.base import ModelDefaults
from ltvcore.models.registry import ModelOptions, build_model

__all__ = ["AutoModel", "HistoryLearner"]


class HistoryLearner(Protocol):
    """A model trained on the matured groups that measures its own held-out error on them."""

    def backtest_mape(self, horizons: list[int]) -> dict[int, float] | None:
        """MAPE per horizon forecasting those groups from the young groups' age (None: cannot)."""
        ...


class AutoModel(ModelDefaults):
    """Chooses among ``candidates`` (names of :data:`ltvcore.models.registry.REGISTRY`)."""

    def __init__(self, candidates: tuple[str, ...] = ("curve", "curve:sbg", "curve:rational"),
                 options: ModelOptions | None = None, learners: tuple[str, ...] = ()) -> None:
        self.candidates = candidates
        self.options = options or ModelOptions()
        self.learners = learners

    def _build(self, name: str):
        return build_model(name, self.options)

    def fit(self, data: CohortData) -> AutoModel:
        last = data.last_day
        self.split_day_ = max(2, int(np.median(last)) // 2)
        early = truncate(data, self.split_day_)
        target = observed_ltv(data)[np.arange(data.n_groups), last]
        weight = data.groups["fit_users"].to_numpy().astype(float)
        scorable = (last > self.split_day_) & (target > 0)
        self.scores_ = {}
        for name in self.candidates:
            predicted = self._build(name).fit(early).predict(int(last.max()) + 1).ltv
            guess = predicted[np.arange(data.n_groups), last]
            if scorable.any():
                ape = np.abs(guess - target)[scorable] / target[scorable]
                self.scores_[name] = float(np.average(ape, weights=weight[scorable]) * 100)
            else:
                self.scores_[name] = float("nan")
        finite = {k: v for k, v in self.scores_.items() if np.isfinite(v)}
        self.choice_ = min(finite, key=finite.__getitem__) if finite else self.candidates[0]
        self.evidence_ = "holdout"
        self.backtest_ = None
        calibrated = self._build("calibrated").fit(data)
        if calibrated.calibration_:
            # History decides: every candidate forecasts the matured groups from the young
            # groups' age; calibrated brings its own leave-one-group-out error.
            horizons = sorted(calibrated.calibration_)
            early = cut_back(data, calibrated.age_, calibrated.youngest_)
            realised = observed_ltv(data)
            fits = {name: self._build(name).fit(early).predict(horizons[-1]).ltv
                    for name in self.candidates}
            per_horizon: dict[str, list[float]] = {name: []
                                                   for name in [*self.candidates, "calibrated"]}
            groups = {}
            for h in horizons:
                actual = realised[:, h - 1]
                matured = (data.last_day >= h - 1) & (actual > 0)
                groups[h] = int(matured.sum())
                for name, curve in fits.items():
                    per_horizon[name].append(
                        float(np.mean(np.abs(curve[matured, h - 1] / actual[matured] - 1)) * 100))
                per_horizon["calibrated"].append(calibrated.calibration_[h]["loo_mape_calibrated"])
            learned = {}
            for name in self.learners:
                learner = self._build(name).fit(data)
                held_out = learner.backtest_mape(horizons)
                if held_out is not None:
                    learned[name] = learner
                    per_horizon[name] = [held_out[h] for h in horizons]
            errors = {name: float(np.mean(v)) for name, v in per_horizon.items()}
            self.backtest_ = {"horizons": horizons, "groups": groups,
                              "history_age_days": calibrated.age_, "mape": errors,
                              "mape_by_horizon": per_horizon}
            self.choice_ = min(errors, key=errors.__getitem__)
            self.evidence_ = "backtest"
            if self.choice_ == "calibrated":
                self.model_ = calibrated
                return self
            if self.choice_ in learned:
                self.model_ = learned[self.choice_]
                return self
        self.model_ = self._build(self.choice_).fit(data)
        return self

    @property
    def name(self) -> str:
        return self.model_.name

    def predict(self, n_days: int):
        return self.model_.predict(n_days)

    def params(self, g: int) -> dict:
        return self.model_.params(g)

    @property
    def selection(self) -> dict:
        if self.evidence_ == "backtest" and self.backtest_ is not None:
            b = self.backtest_
            others = ", ".join(f"{k} {v:.1f}%" for k, v in b["mape"].items() if k != self.choice_)
            return {"method": "backtest on the groups that have reached the horizon, forecast "
                              "from the young groups' age (calibrated: leave-one-group-out)",
                    "backtest": b, "holdout_scores": self.scores_, "choice": self.choice_,
                    "why": f"on the matured groups (days {', '.join(map(str, b['horizons']))}), "
                           f"{self.choice_} missed by {b['mape'][self.choice_]:.1f}% on average "
                           f"({others})"}
        return {"method": "time-split holdout inside the observed data",
                "fit_days": f"0..{self.split_day_}",
                "scored_on": "cumulative LTV reached by each group's last observed day",
                "score": "user-weighted mean absolute % error",
                "scores": self.scores_, "choice": self.choice_, "backtest": self.backtest_,
                "why": f"{self.choice_} had the lowest holdout error"
                       + (f" ({self.scores_[self.choice_]:.1f}%)" if np.isfinite(self.scores_[self.choice_]) else
                          " (no group had days after the split to score; first candidate kept)")}

    @property
    def assumptions(self) -> list[str]:
        return [*self.model_.assumptions,
                "auto: the model that best predicts the later observed days from the earlier "
                "ones also extrapolates best beyond them."]
