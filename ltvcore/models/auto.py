"""``--model auto``: choose the model per request, by the best evidence the data hold.

Without history, a time-split holdout inside the observed data: every candidate is fitted on
the early part of each cohort's life (days ``0 … split``) and scored, per group, on the days
after the split. On login data the retention fits compete on the active user-days they project
there; on purchase data every candidate competes on the cumulative LTV each group has reached
by its last observed day. Candidates the holdout cannot separate are combined
(:mod:`ltvcore.models.stacking`: weights by how often each scores best over resampled groups;
one that dominates takes all). With history (groups that have already reached the horizons), a
backtest on them: each candidate forecasts those groups from the young groups' age and is scored
over the calibrated horizons; the calibrated model brings its leave-one-group-out error on the
same groups; the best wins. The choice is refitted on everything. Candidates, scores, weights
and the choice are recorded in ``params.json`` so the report can say which model was used and why.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ltvcore.data.cohorts import CohortData, cut_back, truncate
from ltvcore.ltv import observed_ltv
from ltvcore.models.base import ModelDefaults
from ltvcore.models.registry import ModelOptions, build_model
from ltvcore.models.stacking import StackedModel, selection_weights
from ltvcore.retention import ActivityCurve, activity_curve

__all__ = ["AutoModel", "HistoryLearner"]


def _is_curve(name: str) -> bool:
    return name == "curve" or name.startswith("curve:")


def _activity_errors(data: CohortData, observed: ActivityCurve, split: int,
                     fits: dict) -> dict[str, np.ndarray]:
    """Each retention fit's (on days ``0 … split``) absolute % error, per group, on the active
    user-days it projects onto the group's later observed days (``observed``: the data's
    activity curve); NaN where a group has none."""
    day = np.arange(data.active.shape[1])[None, :]
    held_out = (day > split) & (data.at_risk > 0)
    actual = np.where(held_out, observed.rate * data.at_risk, 0.0).sum(1)
    scorable = actual > 0
    errors = {}
    for name, model in fits.items():
        rate = np.mean([fit.predict(data.active.shape[1]) for fit in model.fits_.values()], axis=0)
        projected = np.where(held_out, rate * data.at_risk, 0.0).sum(1)
        errors[name] = np.where(scorable, np.abs(projected / np.where(scorable, actual, 1.0) - 1),
                                np.nan)
    return errors


def _mean_error(errors: dict[str, np.ndarray], weight: np.ndarray) -> dict[str, float]:
    """User-weighted mean absolute % error over the scorable groups (NaN: none)."""
    out = {}
    for name, error in errors.items():
        ok = np.isfinite(error)
        out[name] = float(np.average(error[ok], weights=weight[ok]) * 100) if ok.any() else float("nan")
    return out


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
        self.day1_rate_ = observed.day1_rate
        self.login_data_ = observed.reads_as_logins
        candidates = tuple(name for name in self.candidates
                           if not name.endswith("-d1") or self.login_data_)
        curves = [name for name in candidates if _is_curve(name)] if self.login_data_ else []
        if curves:
            candidates = tuple(curves)
        self.considered_ = candidates
        fitted = {name: self._build(name).fit(early) for name in candidates}
        # On login data, retention fits (which share one ARPU) are compared on what differs
        # between them: the activity they project onto the held-out days, free of the revenue's
        # noise. There the LTV holdout (a few percent of payers over a few days) is too noisy
        # to choose by: it preferred btyd, which then missed the long horizon by twice the
        # curves' error on every game benchmark, so only the retention fits compete. Where an
        # active day is a purchase, revenue is as informative and all compete on LTV.
        activity = _activity_errors(data, observed, self.split_day_,
                                    {n: fitted[n] for n in curves})
        self.retention_scores_ = _mean_error(activity, weight)
        ltv_errors = {}
        for name in candidates:
            predicted = fitted[name].predict(int(last.max()) + 1).ltv
            guess = predicted[np.arange(data.n_groups), last]
            ltv_errors[name] = np.where(scorable, np.abs(guess - target)
                                        / np.where(scorable, target, 1.0), np.nan)
        self.scores_ = _mean_error(ltv_errors, weight)
        errors = activity if curves else ltv_errors
        contest = list(errors)
        shares = selection_weights(np.column_stack([errors[n] for n in contest]), weight)
        if np.isfinite(shares).all():
            self.weights_ = {n: float(w) for n, w in zip(contest, shares) if w > 0}
        else:  # no group has days after the split to score: the first candidate
            self.weights_ = {contest[0]: 1.0}
        self.choice_ = max(self.weights_, key=self.weights_.__getitem__)
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
            mape = {name: float(np.mean(v)) for name, v in per_horizon.items()}
            self.backtest_ = {"horizons": horizons, "groups": groups,
                              "history_age_days": calibrated.age_, "mape": mape,
                              "mape_by_horizon": per_horizon}
            self.choice_ = min(mape, key=mape.__getitem__)
            self.weights_ = {self.choice_: 1.0}
            self.evidence_ = "backtest"
            if self.choice_ == "calibrated":
                self.model_ = calibrated
                return self
            if self.choice_ in learned:
                self.model_ = learned[self.choice_]
                return self
        components = {name: self._build(name).fit(data) for name in self.weights_}
        self.model_ = (components[self.choice_] if len(components) == 1
                       else StackedModel(components, self.weights_))
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
                    "weights": self.weights_, "backtest": b, "holdout_scores": self.scores_, "choice": self.choice_,
                    "why": f"on the matured groups (days {', '.join(map(str, b['horizons']))}), "
                           f"{self.choice_} missed by {b['mape'][self.choice_]:.1f}% on average "
                           f"({others})"}
        login = bool(self.retention_scores_)
        scores = self.retention_scores_ if login else self.scores_
        best = self.choice_
        if not np.isfinite(scores.get(best, np.nan)):
            why = f"no group had days after the split to score; {best} (the first candidate) kept"
        else:
            why = (f"{best} projected the later days' activity best" if login
                   else f"{best} had the lowest holdout error") + f" ({scores[best]:.1f}%)"
            if len(self.weights_) > 1:
                shares = ", ".join(f"{k} {v:.0%}" for k, v in self.weights_.items())
                why += ("; the holdout could not separate it from the others, so the forecast "
                        f"combines them by how often each scored best over resampled groups ({shares})")
        return {"method": "time-split holdout inside the observed data",
                "fit_days": f"0..{self.split_day_}",
                "scored_on": ("active user-days projected onto each group's days after the split "
                              "(login data: retention fits only)" if login else
                              "cumulative LTV reached by each group's last observed day"),
                "score": "user-weighted mean absolute % error",
                "combined_by": "Bayesian bootstrap over groups: a candidate's weight is the share "
                               "of resampled group sets on which it scored best",
                "weights": self.weights_,
                "scores": self.scores_, "choice": self.choice_, "backtest": self.backtest_,
                "retention_scores": self.retention_scores_,
                "why": why}

    @property
    def assumptions(self) -> list[str]:
        return [*self.model_.assumptions,
                "auto: the model that best predicts the later observed days from the earlier "
                "ones also extrapolates best beyond them."]
