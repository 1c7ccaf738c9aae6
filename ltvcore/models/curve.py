"""The seed method: retention × ARPU, summed over a finite horizon.

``LTV_H = Σ_{t<H} ARPU·R(t)`` with ``R`` the sBG fit, the rational fit, or their mean
(``ensemble``, the default: one tends to under- and the other to over-estimate), or the
beta-discrete-Weibull fit (``bdw``: sBG with churn that changes with tenure), and ARPU the
moving average of revenue per active user. Observed days enter as observed. See
:mod:`ltvcore.ltv` for the interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltvcore.arpu import ArpuEstimate, estimate_arpu
from ltvcore.data.cohorts import CohortData
from ltvcore.ltv import CurveLTV, fit_interval, z_value
from ltvcore.models.base import ModelDefaults
from ltvcore.retention import (
    LOGIN_DAY1_RATE,
    ActivityCurve,
    BdWRetention,
    RationalRetention,
    SBGRetention,
    activity_curve,
)
from ltvcore.retention.geometric import GeometricRetention
from ltvcore.retention.returning import ReturningRetention

__all__ = ["EXTRAPOLATION_SD", "CurveModel", "RETENTION_CHOICES", "extrapolation_sd_for"]

RETENTION_CHOICES = ("ensemble", "sbg", "rational", "bdw")
# The same fits with the survival law fitted from day 1 on (:mod:`ltvcore.retention.returning`):
# auto's candidates for login data, where a living user skips days.
FROM_DAY_ONE = ("ensemble-d1", "sbg-d1", "bdw-d1")

# Log-scale spread of the projected revenue per unit of √ln(horizon / observed span), by what
# "active" means in the data (:attr:`ActivityCurve.reads_as_logins`). Login data extrapolate
# worst: a first week of logins cannot tell a wear-out churn from a constant one. First
# calibrated at 0.48 for both on realised LTV, when the band left out the sampling noise of the
# observed days (99th percentile of |ln(actual / forecast)| / √ln(H / (T + 1)) over 360
# backtests: 0.95–1.37 game, 0.36–0.78 purchase). With that noise counted, the known-truth
# processes (benchmarks/known_truth.py; game, BG/NBD, Pareto/NBD, BG/BB; 3 seeds × 12
# campaigns × 7, 28, 84 days observed) keep 97–100% coverage of the expected LTV at 90–365
# days down to 0.26 on game data and 0.18 on purchase data; the rates below keep a margin
# above those for data the processes do not describe.
EXTRAPOLATION_SD = {"logins": 0.36, "purchases": 0.26}


def extrapolation_sd_for(activity: ActivityCurve) -> np.ndarray:
    """``(G,)`` calibrated extrapolation spread of each group's kind (:data:`EXTRAPOLATION_SD`).

    Decided per group (its own day-1 rate), so that a forecast split into shards of groups
    gives each group the band it gets in one piece.
    """
    return np.where(activity.day1_rates >= LOGIN_DAY1_RATE, EXTRAPOLATION_SD["logins"],
                    EXTRAPOLATION_SD["purchases"])

ASSUMPTIONS = [
    "Activity rate (active users / users at risk), made non-increasing by its running minimum, "
    "stands in for retention.",
    "sBG: each user's daily churn probability is constant and Beta-distributed across users.",
    "Rational: retention follows d / (b·t^a + c) beyond the observed days.",
    "ARPU per active user-day stays at its moving average over the last observed days.",
    "Retention and ARPU are independent; cohorts of a group share one retention curve.",
    "Extrapolation error of the projected revenue grows with ln(horizon / observed days) at the "
    "rate calibrated on backtests (extrapolation_sd).",
]
# With retention="bdw" this replaces the sBG and rational lines (ASSUMPTIONS[1:3]).
BDW_ASSUMPTION = ("BdW: a user's daily churn probability is 1 − (1 − θ)^(t^c − (t−1)^c) on day t of "
                  "tenure (rising for c > 1, falling for c < 1, one c per group), with θ "
                  "Beta-distributed across users.")

FROM_DAY_ONE_ASSUMPTION = ("A living user is active on only some days: the survival law is fitted "
                           "from day 1 on and scaled to the observed day-1 activity rate.")


class CurveModel(ModelDefaults):
    """Retention × ARPU forecast for all groups at once.

    Parameters
    ----------
    retention
        ``"ensemble"`` (mean of sBG and rational), ``"sbg"``, ``"rational"`` or ``"bdw"``
        (beta-discrete-Weibull, :mod:`ltvcore.retention.bdw`).
    arpu_window
        Days in the ARPU moving average.
    confidence
        Interval level, e.g. 0.99.
    extrapolation_sd
        Log-scale extrapolation spread; ``None`` (default): the rate calibrated for the data's
        kind (:func:`extrapolation_sd_for`), set on ``fit`` as ``extrapolation_sd_``.
    """

    def __init__(self, retention: str = "ensemble", arpu_window: int | None = None,
                 confidence: float = 0.99, extrapolation_sd: float | None = None) -> None:
        self.retention = retention
        self.arpu_window = arpu_window
        self.confidence = confidence
        self.extrapolation_sd = extrapolation_sd

    @property
    def name(self) -> str:
        # The old baseline is this method with a constant daily retention.
        return "geometric" if self.retention == "geometric" else "curve"

    def fit(self, data: CohortData) -> CurveModel:
        if self.retention not in RETENTION_CHOICES + FROM_DAY_ONE + ("geometric",):
            raise ValueError(f"retention must be one of {', '.join(RETENTION_CHOICES)}")
        self.data_ = data
        self.activity_ = activity_curve(data.active, data.at_risk)
        self.fits_: dict[str, Any] = {}
        law, _, start = self.retention.partition("-")
        if start:
            def survival(fit):  # the law from day 1 on, at the observed day-1 level
                return ReturningRetention(fit)
        else:
            def survival(fit):
                return fit
        if law in ("ensemble", "sbg"):
            self.fits_["sbg"] = survival(SBGRetention()).fit(self.activity_)
        if law in ("ensemble", "rational"):
            # The rational curve is fitted from day 1 on with its own level already.
            self.fits_["rational"] = RationalRetention().fit(self.activity_)
        if law == "bdw":
            self.fits_["bdw"] = survival(BdWRetention()).fit(self.activity_)
        if self.retention == "geometric":
            self.fits_["geometric"] = GeometricRetention().fit(self.activity_)
        self.arpu_: ArpuEstimate = estimate_arpu(data, window=self.arpu_window)
        self.extrapolation_sd_ = (extrapolation_sd_for(self.activity_)
                                  if self.extrapolation_sd is None
                                  else np.full(data.n_groups, float(self.extrapolation_sd)))
        return self

    def predict(self, n_days: int) -> CurveLTV:
        """Cumulative LTV and interval for days ``0 … n_days-1``."""
        data, arpu = self.data_, self.arpu_
        z = z_value(self.confidence)
        width = data.revenue.shape[1]
        observed = np.zeros((data.n_groups, n_days))
        span = min(width, n_days)
        observed[:, :span] = np.divide(data.revenue[:, :span], data.at_risk[:, :span],
                                       out=np.zeros((data.n_groups, span)),
                                       where=data.at_risk[:, :span] > 0)
        users = data.groups["users"].to_numpy()
        per_fit = [
            fit_interval(observed, data.last_day, fit.predict(n_days), fit.jacobian(n_days),
                         fit.cov_, arpu.arpu, arpu.se, arpu.user_sd, users, z,
                         self.extrapolation_sd_)
            for fit in self.fits_.values()
        ]
        if len(per_fit) == 1:
            return per_fit[0]
        return CurveLTV(
            ltv=np.mean([f.ltv for f in per_fit], axis=0),
            lower=np.minimum.reduce([f.lower for f in per_fit]),
            upper=np.maximum.reduce([f.upper for f in per_fit]),
        )

    def params(self, g: int) -> dict:
        models = {name: fit.params(g) for name, fit in self.fits_.items()}
        models["arpu"] = self.arpu_.params(g)
        models["curve"] = {"retention": self.retention, "arpu_window": self.arpu_window,
                           "extrapolation_sd": float(self.extrapolation_sd_[g]),
                           "last_observed_day": int(self.data_.last_day[g])}
        return models

    @property
    def assumptions(self) -> list[str]:
        if self.retention == "geometric":
            return [ASSUMPTIONS[0], "Retention falls by a constant daily ratio r after day 1 "
                    "(LTV = ARPU·(1 − r^H)/(1 − r), the old geometric-series metric).",
                    *ASSUMPTIONS[3:]]
        law, _, start = self.retention.partition("-")
        lines = [ASSUMPTIONS[0], BDW_ASSUMPTION, *ASSUMPTIONS[3:]] if law == "bdw" else list(ASSUMPTIONS)
        if start:
            lines.insert(1, FROM_DAY_ONE_ASSUMPTION)
        return lines
