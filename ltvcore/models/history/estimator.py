"""``--model history``: the cumulative LTV curve learned from matured groups' early signals.

Model
-----
For a group observed up to day ``a``, with cumulative LTV ``O`` so far of which ``D`` came after
the install day, the forecast is ``LTV_H = O + D · exp(f(signals, H))``: what it has earned,
plus what is still to come, a gradient-boosted estimate (:mod:`.training`) learned on a grid
of horizons from the groups of the same data that have reached ``H``, cut back in calendar
time to ages around ``a``. ``f`` is monotone in the horizon, so the revenue still to come is a
non-negative increment that grows with ``H``: every curve is non-decreasing by construction.
Observed days stay as observed; between grid horizons the revenue still to come is
interpolated in log-day; beyond the last learned horizon the curve grows as the retention
curve model's does.

The booster estimates the median; the point forecast is, by default
(``Settings.point="mape"``), the value that minimises the expected absolute percentage error
(the method's yardstick) when the revenue still to come is log-normal around that median with
the out-of-fold spread of the group's age, horizon and size (:func:`.trained.point_shift`). A
campaign whose future the history predicts poorly is thus forecast more cautiously;
``params.json`` records by how much (``point_vs_median_pct``).

Data it needs
-------------
At least ``min_history`` groups observed beyond every cut-back age (twice the young groups'
age), and as many that have reached each horizon it learns, comparable to the groups forecast
(same product, similar traffic). With fewer, it is the curve model, with a warning that says
why: it never guesses from nothing. Groups with no revenue yet (no ratio to scale) or far
outside the ages it learned also keep the curve model's forecast, each visibly in
``params.json``.

Interval and explanations
-------------------------
The interval is split-conformal on out-of-fold residuals of the log ratio (see
:mod:`.training`), at the request's confidence, scaled by group size (a small group's realised
LTV is noisier). Each forecast's TreeSHAP contributions name the
early signals that moved it (``params(g)["history"]["explanation"]``): ``effect_pct`` is how
much a signal moved the forecast at the explanation horizon, relative to what the model expects
of a group with average signals (``+32`` = 32% higher).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltvcore.data.cohorts import CohortData
from ltvcore.ltv import CurveLTV
from ltvcore.models.base import ModelDefaults
from ltvcore.models.history.features import LABELS, design, signals
from ltvcore.models.history.trained import TrainedHistory, monotone_in_horizon, point_shift, train
from ltvcore.models.history.training import DEFAULT_YOUNGEST, NotEnoughHistory, Settings

__all__ = ["HistoryModel", "describe"]

EXPLAIN_HORIZON = 180  # the day marketers judge a campaign by (the method's MAPE horizon)
TOP_SIGNALS = 4
AGE_REACH = 2.0  # groups up to this factor outside the trained ages are still forecast


class HistoryModel(ModelDefaults):
    """Gradient-boosted curve model trained on the matured groups of the data.

    Parameters
    ----------
    horizons
        The request's horizons (always in the learned grid).
    retention
        The retention fit of the base curve model (a feature, and the fallback); with
        ``settings``, theirs.
    confidence
        Interval level.
    min_history
        Matured groups needed to learn a horizon.
    seed
        Seed of the fold split and of LightGBM (ignored when ``settings`` is given).
    settings
        Booster hyper-parameters (:class:`~ltvcore.models.history.training.Settings`).
    trained
        A model trained before (:meth:`from_trained`): ``fit`` then only forecasts.
    """

    def __init__(self, horizons: tuple[int, ...] = (30, 90, 180, 365), retention: str = "ensemble",
                 confidence: float = 0.99, min_history: int = 8, seed: int = 0,
                 settings: Settings | None = None, trained: TrainedHistory | None = None) -> None:
        self.horizons = tuple(horizons)
        self.settings = settings or Settings(retention=retention, seed=seed)
        # The retention fit is part of what was learned (a feature): one setting for both.
        self.retention = self.settings.retention
        self.confidence = confidence
        self.min_history = min_history
        self.trained = trained

    @classmethod
    def from_trained(cls, trained: TrainedHistory, confidence: float = 0.99,
                     horizons: tuple[int, ...] = (30, 90, 180, 365)) -> HistoryModel:
        """A model whose ``fit(data)`` does not train: it forecasts ``data``'s groups with ``trained``."""
        return cls(horizons=horizons, retention=trained.params["retention"], confidence=confidence,
                   min_history=trained.params["min_history"], trained=trained)

    def _young(self, data: CohortData) -> tuple[int | None, int]:
        """The young groups' age and youngest cohort, as :class:`CalibratedModel` takes them."""
        young = data.last_day < max(self.horizons) - 1
        if not young.any():
            return None, DEFAULT_YOUNGEST
        ages = data.user_age[young[data.user_group]]
        return int(np.median(data.last_day[young])), int(ages.min()) if ages.size else 0

    def train(self, data: CohortData) -> TrainedHistory:
        """Train on ``data``'s matured groups (raises :class:`NotEnoughHistory` if too few)."""
        young_age, youngest = self._young(data)
        return train(data, horizons=self.horizons, confidence=self.confidence,
                     min_history=self.min_history, settings=self.settings, young_age=young_age,
                     youngest=youngest)

    def fit(self, data: CohortData) -> HistoryModel:
        from ltvcore.models.curve import CurveModel

        self.data_ = data
        self.warnings_: list[str] = []
        self.base_ = CurveModel(retention=self.retention, confidence=self.confidence).fit(data)
        self.trained_: TrainedHistory | None = self.trained
        if self.trained_ is None:
            try:
                self.trained_ = self.train(data)
            except NotEnoughHistory as why:
                self.warnings_.append(f"history: {why}; the forecast is the curve model's")
        self.grid_ = np.zeros(0, dtype=int)
        self.point_ = np.full((data.n_groups, 0), np.nan)
        self.centre_ = self.point_
        self.used_ = np.zeros(data.n_groups, dtype=bool)
        self.reason_: dict[int, str] = {}
        if self.trained_ is not None:
            self._forecast(data, self.trained_)
        return self

    def _forecast(self, data: CohortData, trained: TrainedHistory) -> None:
        self.grid_ = trained.grid
        base = self.base_.predict(int(self.grid_[-1]))
        sig = signals(data, base, self.base_.activity_.rate, trained.header["vocabulary"])
        last = np.clip(data.last_day, 0, None)
        ages = trained.ages
        has_revenue = sig.after_day0 > 0
        in_range = (last >= ages.min() / AGE_REACH) & (last <= ages.max() * AGE_REACH)
        self.used_ = has_revenue & in_range & (last + 1 < self.grid_[-1])
        for g in np.flatnonzero(~self.used_):
            if not has_revenue[g]:
                self.reason_[int(g)] = "no revenue after the install day yet (nothing to scale)"
            elif not in_range[g]:
                self.reason_[int(g)] = (f"{last[g] + 1} days observed, too far from the ages learned "
                                        f"({ages.min() + 1}–{ages.max() + 1} days)")
            else:
                self.reason_[int(g)] = "observed beyond the horizons learned"
        x, g, k = design(sig, self.grid_, rows=self.used_)
        raw = np.full((data.n_groups, len(self.grid_)), np.nan)
        raw[g, k] = trained.log_ratio(x)
        users = data.groups["fit_users"].to_numpy()
        self.observed_ = sig.observed
        self.after_day0_ = sig.after_day0
        self.half_ = trained.half_widths(last, users, self.confidence)
        self.centre_ = monotone_in_horizon(raw)
        self.point_ = self.centre_
        if trained.params["point"] == "mape":
            shift = point_shift(sig.observed[:, None], sig.after_day0[:, None], self.centre_,
                                trained.spread(last, users) ** 2)
            self.point_ = monotone_in_horizon(self.centre_ - shift)
        self.explanation_ = self._explain(trained, x, g, k)
        if self.used_.any() and max(self.horizons) > self.grid_[-1]:
            self.warnings_.append(f"history: learned up to day {int(self.grid_[-1])} (too few groups "
                                  f"reached later days); beyond it the curve grows as the curve model's")
        unused = int((~self.used_ & (last + 1 < max(self.horizons))).sum())
        if unused:
            self.warnings_.append(f"history: {unused} group(s) keep the curve model's forecast "
                                  "(see params.json history.reason)")

    def _explain(self, trained: TrainedHistory, x: np.ndarray, g: np.ndarray,
                 k: np.ndarray) -> dict[int, dict]:
        """Per group, TreeSHAP at the explanation horizon, in plain words.

        A contribution ``c`` is on the target's scale (log revenue still to come), so without
        it the revenue still to come would be ``exp(-c)`` times what it is: ``effect_pct`` is
        how much higher the whole forecast LTV is with it than without it. The horizon itself
        (``reach``) is reported apart: it is where the forecast looks, not what the group showed.
        """
        names = trained.features
        grid = self.grid_
        target = grid[np.argmin(np.abs(grid - EXPLAIN_HORIZON))]
        out = {}
        for group in np.unique(g):
            rows = np.flatnonzero(g == group)
            # The explanation horizon, or the group's nearest one it has not yet observed.
            row = rows[np.argmin(np.abs(grid[k[rows]] - target))]
            contrib = trained.contributions(x[row:row + 1])[0]
            observed, to_come = self.observed_[group], self.after_day0_[group] * np.exp(self.centre_[group, k[row]])

            def effect(c: float) -> float:
                return float(((observed + to_come) / (observed + to_come * np.exp(-c)) - 1) * 100)

            signal = [(n, c, v) for n, c, v in zip(names, contrib[:-1], x[row]) if n != "reach"]
            signal.sort(key=lambda item: -abs(item[1]))
            out[int(group)] = {
                "horizon": int(grid[k[row]]), "column": int(k[row]),
                "horizon_effect_pct": effect(contrib[names.index("reach")]),
                "signals": [{"feature": n, "label": _label(n), "effect_pct": effect(c),
                             "value": None if not np.isfinite(v) else float(v)}
                            for n, c, v in signal[:TOP_SIGNALS] if abs(effect(c)) >= 0.5],
            }
        return out

    def predict(self, n_days: int) -> CurveLTV:
        base = self.base_.predict(n_days)
        if not self.used_.any():
            return base
        ltv, lower, upper = base.ltv.copy(), base.lower.copy(), base.upper.copy()
        day = np.arange(n_days)
        grid = self.grid_
        top = int(grid[-1])
        for g in np.flatnonzero(self.used_):
            a = int(self.data_.last_day[g])
            ahead = np.isfinite(self.point_[g])
            half = self.half_[g, ahead]
            half = np.where(np.isfinite(half), half, np.nanmax(half) if np.isfinite(half).any() else 0.0)
            future = (day > a) & (day < top)
            obs, scale = self.observed_[g], self.after_day0_[g]
            knots = grid[ahead]
            for values, log_ratio in ((ltv, self.point_[g, ahead]), (lower, self.centre_[g, ahead] - half),
                                      (upper, self.centre_[g, ahead] + half)):
                to_come = _to_come(day[future], a, knots, scale * np.exp(log_ratio))
                values[g, future] = obs + to_come
                if n_days > top:
                    # Beyond the last learned horizon: the curve model's growth from there on.
                    tail = day >= top
                    anchor = base.ltv[g, top - 1]
                    growth = np.divide(base.ltv[g, tail], anchor, out=np.ones(int(tail.sum())), where=anchor > 0)
                    values[g, tail] = (obs + scale * np.exp(log_ratio[-1])) * growth
        lower = np.maximum.accumulate(np.maximum(lower, 0.0), axis=1)
        upper = np.maximum.accumulate(upper, axis=1)
        ltv = np.maximum.accumulate(ltv, axis=1)
        return CurveLTV(ltv=ltv, lower=np.minimum(lower, ltv), upper=np.maximum(upper, ltv))

    @property
    def name(self) -> str:
        return "history" if self.used_.any() else "curve"

    @property
    def warnings(self) -> list[str]:
        return list(self.warnings_)

    def params(self, g: int) -> dict[str, Any]:
        out = self.base_.params(g)
        if self.trained_ is None:
            out["history"] = {"used": False, "reason": "not trained (too little history)"}
            return out
        info: dict[str, Any] = {"used": bool(self.used_[g]), "model_digest": self.trained_.digest,
                                "observed_days": int(self.data_.last_day[g]) + 1}
        if not self.used_[g]:
            info["reason"] = self.reason_.get(g, "")
            out["history"] = info
            return out
        obs, scale = self.observed_[g], self.after_day0_[g]
        ratio = {str(int(h)): float(1 + scale * np.exp(r) / obs)
                 for h, r in zip(self.grid_, self.point_[g]) if np.isfinite(r)}
        explanation = self.explanation_[g]
        at = explanation["column"]
        median = obs + scale * np.exp(self.centre_[g, at])
        info.update({"observed_ltv": float(obs), "ratio_to_observed": ratio,
                     "explanation_horizon": explanation["horizon"],
                     "explanation": explanation["signals"], "explanation_text": describe(explanation["signals"]),
                     "point_vs_median_pct": float(((obs + scale * np.exp(self.point_[g, at])) / median - 1) * 100),
                     "horizon_effect_pct": explanation["horizon_effect_pct"]})
        out["history"] = info
        return out

    @property
    def selection(self) -> dict[str, Any]:
        """Recorded at the top of ``params.json``: what was learned, from what, how well it held out."""
        if self.trained_ is None:
            return {"method": "history", "trained": False, "fallback": list(self.warnings_),
                    "why": "not trained: too few matured groups; the forecast is the curve model's"}
        h = self.trained_.header
        return {"method": "gradient-boosted ln(revenue still to come by day H / revenue after the "
                          "install day so far) on early signals, trained on matured groups cut back "
                          "in calendar time (LightGBM, monotone in the horizon); split-conformal "
                          "intervals on out-of-fold residuals",
                "trained": True, "model_digest": self.trained_.digest,
                "training_groups": len(h["training_groups"]), "ages": h["ages"], "grid": h["grid"],
                "features": h["features"], "settings": h["settings"], "backtest": h["metrics"],
                "why": self._why(self.trained_)}

    def backtest_mape(self, horizons) -> dict[int, float] | None:
        """Out-of-fold MAPE per horizon at the young groups' age (None: not trained there)."""
        if self.trained_ is None or self.trained_.header["young_age"] is None:
            return None
        rows = self.trained_.metrics["by_age"].get(str(self.trained_.header["young_age"]), {})
        if not all(str(h) in rows for h in horizons):
            return None
        return {int(h): rows[str(h)]["mape"] for h in horizons}

    def _why(self, trained: TrainedHistory) -> str:
        h = trained.header
        age = h["young_age"] if h["young_age"] is not None else h["ages"][len(h["ages"]) // 2]
        rows = trained.metrics["by_age"].get(str(age), {})
        parts = [f"day {k}: {v['mape']:.1f}% vs {v['mape_curve']:.1f}% curve ({v['groups']} groups)"
                 for k, v in rows.items() if int(k) in self.horizons]
        return (f"trained on {len(h['training_groups'])} matured groups; out-of-fold error at "
                f"{age} days observed: " + "; ".join(parts))

    @property
    def assumptions(self) -> list[str]:
        return [*self.base_.assumptions,
                "history: young groups turn their early signals into later revenue as the matured "
                "groups of the training data did at the same age (same product, comparable traffic).",
                "history: the ratio of later to observed LTV depends on shapes and rates (retention, "
                "payer share, revenue timing), not on the price level."]


def _to_come(days: np.ndarray, last: int, horizons: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Revenue still to come by each of ``days``, from ``amount`` at the ``horizons``.

    Cumulative revenue bends in log-day: from 0 on the last observed day it rises linearly in
    log-day to the first horizon, and between horizons its logarithm is linear in log-day.
    Both are non-decreasing as the amounts are.
    """
    x = np.log1p(days)
    knots = np.log(horizons.astype(float))
    start = np.log1p(last)
    first = np.clip((x - start) / (knots[0] - start), 0.0, 1.0) * amount[0]
    later = np.exp(np.interp(x, knots, np.log(np.maximum(amount, 1e-300))))
    return np.where(x < knots[0], first, later)


def describe(explanation: list[dict]) -> str:
    """The explanation in words: ``"day-1 retention -12%, payer share +6%"``."""
    return ", ".join(f"{item['label']} {item['effect_pct']:+.0f}%" for item in explanation)


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("=", " = "))
