"""``--model calibrated``: a base model corrected by what past, matured groups turned out to be.

The original team found the ARPU part carried most of the error and fixed it with a linear
regression from early signals to the 365-day value (the second stage of the original method). Here: every group
in the data whose users have all reached horizon ``H`` is a training example. Its data are cut
back to the age the young groups have reached, the base model forecasts from that, and a ridge
regression learns ``ln(realised_H / base_H)`` from early signals:

* ``ln(base_H / observed)``: how much of the forecast is extrapolation,
* ``ln(1 + ARPU·100)``: paying intensity per active day,
* retention on the last observed day.

Leave-one-group-out error is computed in closed form (the hat matrix) for both the calibrated
and the base forecasts of the training groups, and recorded. Horizons with fewer than
``min_history`` matured groups keep the base forecast, visibly: the run's warnings say so and
``params.json`` records which horizons were calibrated.
"""

from __future__ import annotations

import numpy as np
from scipy.special import stdtrit

from ltvcore.data.cohorts import CohortData, cut_back
from ltvcore.ltv import CurveLTV, observed_ltv
from ltvcore.models.base import ModelDefaults

__all__ = ["CalibratedModel"]


class CalibratedModel(ModelDefaults):
    """Ridge-calibrated ``base`` forecasts.

    Parameters
    ----------
    horizons
        The horizons to calibrate (the request's).
    min_history
        Matured groups needed to calibrate a horizon.
    ridge
        L2 penalty on the slopes (features are standardised; the intercept is free).
    """

    def __init__(self, horizons: tuple[int, ...], retention: str = "ensemble",
                 confidence: float = 0.99, min_history: int = 8, ridge: float = 1.0) -> None:
        self.horizons = tuple(horizons)
        self.retention = retention
        self.confidence = confidence
        self.min_history = min_history
        self.ridge = ridge

    def _base(self):
        from ltvcore.models.curve import CurveModel

        # No assumed extrapolation spread: the calibration measures that error (leave-one-out)
        # and adds it below; the point forecast does not depend on it.
        return CurveModel(retention=self.retention, confidence=self.confidence,
                          extrapolation_sd=0.0)

    def fit(self, data: CohortData) -> CalibratedModel:
        self.data_ = data
        self.base_ = self._base().fit(data)
        young = data.last_day < max(self.horizons) - 1
        self.age_ = int(np.median(data.last_day[young])) if young.any() else int(np.median(data.last_day))
        ages = data.user_age[young[data.user_group]] if young.any() else data.user_age
        self.youngest_ = int(ages.min()) if ages.size else 0
        self.calibration_ = {}
        self.warnings_ = []
        # Groups observed past every horizon are the history; cut them back to the date they
        # were as old as the young groups are now (cohort ages mixed as the young groups' are).
        early = cut_back(data, self.age_, self.youngest_)
        early_model = self._base().fit(early)
        early_curve = early_model.predict(max(self.horizons))
        realised = observed_ltv(data)
        early_features = self._features(early, early_model, early_curve)
        for h in self.horizons:
            matured = data.last_day >= h - 1
            matured &= data.groups["fit_users"].to_numpy() > 0
            n = int(matured.sum())
            if h <= self.age_ + 1 or n < self.min_history:
                if h > self.age_ + 1:
                    self.warnings_.append(
                        f"calibrated: only {n} group(s) have reached day {h} (need "
                        f"{self.min_history}); the {h}-day forecast is the uncalibrated curve model")
                continue
            base_h = early_curve.ltv[matured, h - 1]
            actual = realised[matured, h - 1]
            ok = (base_h > 0) & (actual > 0)
            if ok.sum() < self.min_history:
                continue
            x = early_features[h][matured][ok]
            y = np.log(actual[ok] / base_h[ok])
            coef, mean, scale, loo = self._ridge(x, y)
            self.calibration_[h] = {
                "coef": coef, "mean": mean, "scale": scale, "groups": int(ok.sum()),
                "loo_log_sd": float(np.sqrt(np.mean(loo**2))),
                "loo_mape_calibrated": float(np.mean(np.abs(np.expm1(-loo))) * 100),
                "loo_mape_base": float(np.mean(np.abs(base_h[ok] / actual[ok] - 1)) * 100),
            }
        self.curve_ = self._apply(self.base_.predict(max(self.horizons)))
        return self

    def _features(self, data: CohortData, model, curve: CurveLTV) -> dict[int, np.ndarray]:
        g = np.arange(data.n_groups)
        last = np.clip(data.last_day, 0, None)
        observed = np.maximum(curve.ltv[g, np.minimum(last, curve.ltv.shape[1] - 1)], 1e-9)
        arpu = np.log1p(model.arpu_.arpu * 100)
        retention = model.activity_.rate[g, np.minimum(last, model.activity_.rate.shape[1] - 1)]
        return {h: np.column_stack([np.log(np.maximum(curve.ltv[:, h - 1], 1e-9) / observed),
                                    arpu, retention])
                for h in self.horizons}

    def _ridge(self, x, y):
        mean = x.mean(0)
        scale = np.where(x.std(0) > 0, x.std(0), 1.0)
        design = np.column_stack([np.ones(len(y)), (x - mean) / scale])
        penalty = self.ridge * np.eye(design.shape[1])
        penalty[0, 0] = 0.0
        inverse = np.linalg.inv(design.T @ design + penalty)
        coef = inverse @ design.T @ y
        hat = np.einsum("ij,jk,ik->i", design, inverse, design)
        loo = (y - design @ coef) / np.maximum(1 - hat, 1e-6)
        return coef, mean, scale, loo

    def _apply(self, base: CurveLTV) -> CurveLTV:
        """Scale the projected part by the learned factor, interpolated in log-day between horizons."""
        if not self.calibration_:
            return base
        features = self._features(self.data_, self.base_, base)
        n_groups, n_days = base.ltv.shape
        last = np.clip(self.data_.last_day, 0, n_days - 1)
        knots = [h for h in self.horizons if h in self.calibration_]
        log_factor = np.zeros((n_groups, len(knots)))
        log_sd = np.zeros(len(knots))
        for i, h in enumerate(knots):
            c = self.calibration_[h]
            design = np.column_stack([np.ones(n_groups), (features[h] - c["mean"]) / c["scale"]])
            log_factor[:, i] = design @ c["coef"]
            log_sd[i] = c["loo_log_sd"]
        day = np.arange(n_days)
        factor = np.ones((n_groups, n_days))
        spread = np.zeros((n_groups, n_days))
        for g in range(n_groups):
            xs = np.log(np.r_[last[g] + 1, knots])
            future = day > last[g]
            log_day = np.log(day[future] + 1.0)
            factor[g, future] = np.exp(np.interp(log_day, xs, np.r_[0.0, log_factor[g]]))
            spread[g, future] = np.interp(log_day, xs, np.r_[0.0, log_sd])
        observed = base.ltv[np.arange(n_groups), last][:, None]
        projected = np.maximum(base.ltv - observed, 0.0)
        ltv = np.where(day > last[:, None], observed + projected * factor, base.ltv)
        # The calibrated interval: the base interval's relative width, moved with the point, and
        # widened by the leave-one-out error of the calibration itself (on the log scale), with
        # a Student-t quantile: that error is estimated from a few dozen groups.
        dof = max(min(c["groups"] for c in self.calibration_.values()) - len(c["coef"]), 1)
        z = float(stdtrit(dof, 0.5 + self.confidence / 2))
        rel_low = np.divide(base.ltv - base.lower, base.ltv, out=np.zeros_like(ltv), where=base.ltv > 0)
        rel_up = np.divide(base.upper - base.ltv, base.ltv, out=np.zeros_like(ltv), where=base.ltv > 0)
        low = ltv - ltv * np.hypot(rel_low, 1 - np.exp(-z * spread))
        up = ltv + ltv * np.hypot(rel_up, np.expm1(z * spread))
        lower = np.maximum.accumulate(np.maximum(low, 0.0), axis=1)
        upper = np.maximum.accumulate(up, axis=1)
        return CurveLTV(ltv=np.maximum.accumulate(ltv, axis=1), lower=np.minimum(lower, ltv),
                        upper=np.maximum(upper, ltv))

    @property
    def name(self) -> str:
        return "calibrated" if self.calibration_ else "curve"

    @property
    def warnings(self) -> list[str]:
        return list(self.warnings_)

    def predict(self, n_days: int) -> CurveLTV:
        if n_days <= self.curve_.ltv.shape[1]:
            return CurveLTV(self.curve_.ltv[:, :n_days], self.curve_.lower[:, :n_days],
                            self.curve_.upper[:, :n_days])
        return self._apply(self.base_.predict(n_days))

    def params(self, g: int) -> dict:
        out = self.base_.params(g)
        out["calibrated"] = {"calibrated_horizons": sorted(self.calibration_),
                             "history_age_days": self.age_}
        return out

    @property
    def selection(self) -> dict:
        """Recorded at the top of ``params.json``: what was learned and how well it held out."""
        return {
            "method": "ridge regression of ln(realised / curve forecast) on early signals, "
                      "trained on matured groups cut back to the young groups' age",
            "history_age_days": self.age_,
            "horizons": {str(h): {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                  for k, v in c.items()} for h, c in self.calibration_.items()},
            "fallback": [w for w in self.warnings_],
            "why": self._why(),
        }

    def _why(self) -> str:
        if not self.calibration_:
            return ("not calibrated: too few groups in the data have reached the horizons; "
                    "the forecast is the curve model's")
        parts = [f"day {h}: {c['loo_mape_calibrated']:.1f}% vs {c['loo_mape_base']:.1f}% "
                 f"uncalibrated ({c['groups']} groups)" for h, c in sorted(self.calibration_.items())]
        return ("calibrated on matured groups cut back to day "
                f"{self.age_}; leave-one-group-out error " + "; ".join(parts))

    @property
    def assumptions(self) -> list[str]:
        return [*self.base_.assumptions,
                "calibrated: young groups err like the matured groups of the same data did at "
                "the same age; the correction depends on the early signals linearly (ridge)."]
