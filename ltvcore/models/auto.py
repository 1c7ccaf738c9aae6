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
from ltvcore.retention import ActivityCurve, activity_curve

__all__ = ["AutoModel", "HistoryLearner"]


#: Median day-1 activity rate from which the data read as logins rather than purchases. Games
#: keep 20–50% of players on day 1; shoppers buy again the next day at a few percent.
LOGIN_DAY1_RATE = 0.1


def _is_curve(name: str) -> bool:
    return name == "curve" or name.startswith("curve:")


def _activity_scores(data: CohortData, observed: ActivityCurve, split: int, fits: dict,
                     weight: np.ndarray) -> dict[str, float]:
    """User-weighted mean absolute % error of the active user-days each retention fit (on days
    ``0 … split``) projects onto each group's later observed days (``observed``: the data's
    activity curve)."""
    day = np.arange(data.active.shape[1])[None, :]
    held_out = (day > split) & (data.at_risk > 0)
    actual = np.where(held_out, observed.rate * data.at_risk, 0.0).sum(1)
    scorable = actual > 0
    scores = {}
    for name, model in fits.items():
        rate = np.mean([fit.predict(data.active.shape[1]) for fit in model.fits_.values()], axis=0)
        projected = np.where(held_out, rate * data.at_risk, 0.0).sum(1)
        if scorable.any():
            ape = np.abs(projected[scorable] / actual[scorable] - 1)
            scores[name] = float(np.average(ape, weights=weight[scorable]) * 100)
        else:
            scores[name] = float("nan")
    return scores


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
        # Fits from day 1 read login data (a living user skips days): where "active" means a
        # purchase, a day-1 rate of a few percent carries too little to fit a law from.
        observed = activity_curve(data.active, data.at_risk)
        self.day1_rate_ = float(np.median(observed.rate[:, 1]))
        candidates = tuple(name for name in self.candidates
                           if not name.endswith("-d1") or self.day1_rate_ >= LOGIN_DAY1_RATE)
        self.considered_ = candidates
        fitted = {name: self._build(name).fit(early) for name in candidates}
        # On login data, retention fits (which share one ARPU) are compared on what differs
        # between them: the activity they project onto the held-out days, free of the revenue's
        # noise (a few percent of payers make later revenue far noisier than logins). Where an
        # active day is a purchase, revenue is as informative and all compete on LTV.
        self.login_data_ = self.day1_rate_ >= LOGIN_DAY1_RATE
        curves = [name for name in candidates if _is_curve(name)] if self.login_data_ else []
        self.retention_scores_ = _activity_scores(data, observed, self.split_day_,
                                                  {n: fitted[n] for n in curves}, weight)
        finite_retention = {k: v for k, v in self.retention_scores_.items() if np.isfinite(v)}
        best_curve = min(finite_retention, key=finite_retention.__getitem__) if finite_retention else None
        self.scores_ = {}
        for name in candidates:
            predicted = fitted[name].predict(int(last.max()) + 1).ltv
            guess = predicted[np.arange(data.n_groups), last]
            if scorable.any():
                ape = np.abs(guess - target)[scorable] / target[scorable]
                self.scores_[name] = float(np.average(ape, weights=weight[scorable]) * 100)
            else:
                self.scores_[name] = float("nan")
        # The LTV holdout then decides between the best retention fit and the other models.
        contenders = {k: v for k, v in self.scores_.items() if np.isfinite(v)
                      and (not _is_curve(k) or best_curve is None or k == best_curve)}
        self.choice_ = (min(contenders, key=contenders.__getitem__) if contenders
                        else best_curve or self.candidates[0])
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
                "retention_scored_on": "active user-days projected onto each group's days after "
                                       "the split (retention fits only)",
                "retention_scores": self.retention_scores_,
                "why": f"{self.choice_} had the lowest holdout error"
                       + ("" if not _is_curve(self.choice_) else " among the models, and its retention "
                          "fit projected the later days' activity best")
                       + (f" ({self.scores_[self.choice_]:.1f}%)" if np.isfinite(self.scores_[self.choice_]) else
                          " (no group had days after the split to score; first candidate kept)")}

    @property
    def assumptions(self) -> list[str]:
        return [*self.model_.assumptions,
                "auto: the model that best predicts the later observed days from the earlier "
                "ones also extrapolates best beyond them."]
