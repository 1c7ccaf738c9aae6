"""A trained history model as bytes: a JSON header and LightGBM's model text.

:class:`TrainedHistory` is everything a forecast needs (the booster, the feature list and
attribute vocabulary, the grid of horizons and ages it was trained on, the out-of-fold
residuals the intervals come from) and what it proved (:attr:`~TrainedHistory.metrics`, the
out-of-fold backtest). Its bytes are deterministic, so :attr:`~TrainedHistory.digest` names a
model: the same training on the same data gives the same digest, and a registry can store,
compare and promote models by it. No pickle: the header is JSON, the booster is text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ltvcore.data.cohorts import CohortData
from ltvcore.models.history.features import (
    GROUP_FEATURES,
    HORIZON_FEATURES,
    MONOTONE,
    attribute_names,
    attribute_vocabulary,
)
from ltvcore.models.history.training import (
    GRID,
    NotEnoughHistory,
    Settings,
    booster_params,
    cut_ages,
    examples,
    fit_booster,
    half_width,
    noise_scale,
    out_of_fold,
    settings_dict,
)

__all__ = ["FORMAT", "TrainedHistory", "monotone_in_horizon", "point_shift", "to_ltv", "train"]

FORMAT = "ltv-history/1"


@dataclass(frozen=True)
class TrainedHistory:
    """A trained history model: ``header`` (JSON-able) and ``booster`` (LightGBM model text)."""

    header: dict[str, Any]
    booster: str

    def to_bytes(self) -> bytes:
        """Deterministic bytes: the header as sorted compact JSON, a newline, the booster text."""
        head = json.dumps(self.header, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return head.encode() + b"\n" + self.booster.encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> TrainedHistory:
        head, _, booster = blob.partition(b"\n")
        header = json.loads(head)
        if header.get("format") != FORMAT:
            raise ValueError(f"not a history model (format {header.get('format')!r}, expected {FORMAT!r})")
        return cls(header=header, booster=booster.decode())

    @cached_property
    def digest(self) -> str:
        """sha256 of :meth:`to_bytes`."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def metrics(self) -> dict[str, Any]:
        """The out-of-fold backtest: per age and horizon, MAPE, bias and held-out coverage."""
        return self.header["metrics"]

    @property
    def params(self) -> dict[str, Any]:
        """Hyper-parameters and training design."""
        return self.header["settings"]

    @property
    def features(self) -> list[str]:
        return self.header["features"]

    @property
    def grid(self) -> np.ndarray:
        return np.asarray(self.header["grid"])

    @property
    def ages(self) -> np.ndarray:
        return np.asarray(self.header["ages"])

    @cached_property
    def _booster(self):
        import lightgbm as lgb

        return lgb.Booster(model_str=self.booster)

    def log_ratio(self, x: np.ndarray) -> np.ndarray:
        """The booster's raw target per row: ``ln(revenue still to come / revenue after day 0)``."""
        return self._booster.predict(x) if len(x) else np.zeros(0)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """TreeSHAP per row: one column per feature and the expected value last; rows sum to
        :meth:`log_ratio`."""
        if not len(x):
            return np.zeros((0, len(self.features) + 1))
        return np.asarray(self._booster.predict(x, pred_contrib=True))

    def half_widths(self, age: np.ndarray, users: np.ndarray, confidence: float) -> np.ndarray:
        """``(G, len(grid))`` log-scale interval half-widths for groups of ``age`` days and
        ``users`` users (NaN where no residual exists)."""
        return self._per_group(lambda r: half_width(r, confidence), age, users)

    def spread(self, age: np.ndarray, users: np.ndarray) -> np.ndarray:
        """``(G, len(grid))`` root mean square of the out-of-fold log residuals, per group."""
        def rms(r: np.ndarray) -> float:
            r = r[np.isfinite(r)]
            return float(np.sqrt(np.mean(r**2))) if len(r) >= 3 else float("nan")

        return self._per_group(rms, age, users)

    def _per_group(self, statistic, age: np.ndarray, users: np.ndarray) -> np.ndarray:
        """A statistic of the scaled residuals per (age, horizon), interpolated in log-age to
        each group's age and scaled back to its size."""
        scaled = self._scaled_residuals()
        table = np.array([[statistic(scaled[:, i, k]) for k in range(scaled.shape[2])]
                          for i in range(scaled.shape[1])])
        log_ages = np.log1p(self.ages)
        out = np.full((len(age), table.shape[1]), np.nan)
        for k in range(table.shape[1]):
            known = np.isfinite(table[:, k])
            if known.any():
                out[:, k] = np.interp(np.log1p(age), log_ages[known], table[known, k])
        return out * noise_scale(np.asarray(users, dtype=float), self.header["median_users"])[:, None]

    def _scaled_residuals(self) -> np.ndarray:
        """Out-of-fold residuals ``(groups, ages, grid)`` divided by each group's noise scale."""
        residuals = np.array(self.header["residuals"], dtype=float)
        scale = noise_scale(np.asarray(self.header["residual_users"], dtype=float),
                            self.header["median_users"])
        return residuals / scale[:, None, None]


def monotone_in_horizon(predicted: np.ndarray) -> np.ndarray:
    """Row-wise along horizons, non-decreasing (NaN: horizons a group cannot have).

    The booster is monotone in its horizon features already; this keeps it so after the point's
    shift below the median (which grows with the horizon's spread).
    """
    filled = np.fmax.accumulate(np.where(np.isfinite(predicted), predicted, np.nan), axis=-1)
    return np.where(np.isfinite(predicted), filled, np.nan)


def to_ltv(observed: np.ndarray, after_day0: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The LTV a target value means: observed + after-install-day revenue × ``exp(y)``."""
    return observed + after_day0 * np.exp(y)


def feature_names(vocabulary: dict[str, list[str]]) -> list[str]:
    return [*GROUP_FEATURES, *attribute_names(vocabulary), *HORIZON_FEATURES]


def train(data: CohortData, *, horizons: tuple[int, ...], confidence: float, min_history: int,
          settings: Settings, young_age: int | None, youngest: int) -> TrainedHistory:
    """Train on the groups of ``data`` observed beyond every cut-back age.

    ``young_age`` is the age of the groups to forecast (ages are cut around it), or None for
    a model meant for requests of any age; ``youngest`` the youngest cohort age they include.
    """
    grid = tuple(sorted({*GRID, *horizons}))
    ages = cut_ages(young_age, grid)
    # A training group has data after every cut (the groups being forecast have none).
    candidates = (data.last_day > max(ages)) & (data.groups["fit_users"].to_numpy() > 0)
    if candidates.sum() < min_history:
        raise NotEnoughHistory(f"only {int(candidates.sum())} group(s) have been observed for more than "
                               f"{max(ages)} days (need {min_history})")
    vocabulary = attribute_vocabulary(data, candidates)
    names = feature_names(vocabulary)
    ex = examples(data, ages, youngest, grid, settings, vocabulary, candidates)
    # Horizons too few groups have reached are not learned; the grid ends at the last learned
    # one (maturity only thins out with the horizon), and beyond it the forecast follows the
    # retention curve's growth (and says so).
    counts = np.array([len(np.unique(ex.group[ex.horizon == k])) for k in range(len(grid))])
    learned = np.flatnonzero(counts >= min_history)
    if not learned.size:
        raise NotEnoughHistory(f"no horizon of {', '.join(map(str, grid))} has been reached by "
                               f"{min_history} groups (most: {int(counts.max())})")
    grid = grid[: int(learned[-1]) + 1]
    keep = ex.horizon < len(grid)
    ex = ex.rows(keep)
    members = np.unique(ex.group)
    params = booster_params(settings, names, MONOTONE, len(ex.y) / len(members) / len(grid))
    oof = out_of_fold(ex, params, names, settings)
    booster = fit_booster(ex.x, ex.y, ex.weight, params, names, settings.rounds)

    index = np.searchsorted(members, ex.group)
    actual, predicted, curve, observed, after_day0 = (np.full((len(members), len(ages), len(grid)), np.nan)
                                                      for _ in range(5))
    for table, values in ((actual, ex.y), (predicted, oof), (curve, ex.curve), (observed, ex.observed),
                          (after_day0, ex.after_day0)):
        table[index, ex.age, ex.horizon] = values
    predicted = monotone_in_horizon(predicted)
    users = data.groups["fit_users"].to_numpy(dtype=float)[members]
    median_users = float(np.median(data.groups["fit_users"].to_numpy(dtype=float)[candidates]))
    scale = noise_scale(users, median_users)[:, None, None]
    header = {
        "format": FORMAT,
        "lightgbm": _lightgbm_version(),
        "features": names,
        "vocabulary": vocabulary,
        "grid": list(grid),
        "ages": list(ages),
        "young_age": young_age,
        "youngest": youngest,
        "settings": {**settings_dict(settings), "min_history": min_history,
                     "min_data_in_leaf": params["min_data_in_leaf"]},
        "training_groups": [{c: str(v) for c, v in key.items()}
                            for key in data.groups.loc[members, data.by].to_dict("records")],
        "rows": int(len(ex.y)),
        "median_users": median_users,
        "residual_users": users.tolist(),
        "residuals": _json_table(actual - predicted),
        "metrics": _metrics((actual, predicted, curve, observed, after_day0), scale, ages, grid,
                            young_age, confidence, mape_point=settings.point == "mape"),
    }
    return TrainedHistory(header=header, booster=booster)


def _metrics(tables, scale, ages, grid, young_age, confidence, mape_point) -> dict:
    """Out-of-fold error per age and horizon (forecast/actual − 1 on the LTV scale), and the
    coverage of each group's interval; both the interval and the point's shift below the median
    (``mape_point``) come from the *other* groups' residuals, as they would for a new group."""
    actual, predicted, curve, observed, after_day0 = tables
    scaled = (actual - predicted) / scale
    by_age = {}
    for i, age in enumerate(ages):
        rows = {}
        for k, h in enumerate(grid):
            ok = np.isfinite(actual[:, i, k]) & np.isfinite(predicted[:, i, k])
            if not ok.any():
                continue
            o, d = observed[ok, i, k], after_day0[ok, i, k]
            truth = to_ltv(o, d, actual[ok, i, k])
            r = scaled[ok, i, k]
            others = [np.delete(r, j) for j in range(len(r))]
            point = predicted[ok, i, k]
            if mape_point:
                spread = np.array([np.mean(x**2) if len(x) else 0.0 for x in others]) * scale[ok, 0, 0] ** 2
                point = point - point_shift(o, d, point, spread)
            err = to_ltv(o, d, point) / truth - 1
            base = to_ltv(o, d, curve[ok, i, k]) / truth - 1
            held = [abs(r[j]) <= half_width(others[j], confidence) for j in range(len(r))]
            rows[str(h)] = {"groups": int(ok.sum()), "mape": float(np.mean(np.abs(err)) * 100),
                            "bias": float(np.mean(err) * 100),
                            "coverage": float(np.mean(held) * 100) if len(r) > 3 else None,
                            "mape_curve": float(np.mean(np.abs(base)) * 100)}
        by_age[str(age)] = rows
    return {"confidence": confidence, "young_age": young_age, "by_age": by_age}


def point_shift(observed: np.ndarray, after_day0: np.ndarray, centre: np.ndarray,
                variance: np.ndarray) -> np.ndarray:
    """How far below the median (on the target's log scale) the MAPE-optimal point lies.

    If the revenue still to come is log-normal around its median with variance ``σ²``, the
    value minimising the expected absolute percentage error of the *LTV* lies ``s·σ²`` below
    it, ``s`` the share of the LTV still to come (to first order: the observed part is known).
    """
    to_come = after_day0 * np.exp(centre)
    return np.nan_to_num(variance) * to_come / (observed + to_come)


def _json_table(values: np.ndarray) -> list:
    return [[[None if not np.isfinite(v) else float(v) for v in row] for row in plane] for plane in values]


def _lightgbm_version() -> str:
    import lightgbm as lgb

    return str(lgb.__version__)
