"""Training examples from matured groups cut back in calendar time, and the booster they train.

Each group that has reached a horizon ``H`` is a training example at several *ages* ``a``: its
data are cut back (:func:`~ltvcore.data.cohorts.cut_back`) to the date its oldest cohort was
``a`` days old, with the cohort mix a group of that age has, and the target is what it then
went on to earn, as the revenue still to come over the revenue earned after the install day so
far::

    y = ln((LTV_H − LTV_a) / (LTV_a − LTV_0))

Revenue already earned is known, so only what is still to come is predicted: a non-negative
increment by construction, whatever ``y``. Its scale leaves out the install day, whose
purchases (starter packs, one whale's first spree) are one-offs: a group is not expected to
keep earning at the rate of its install day. Several ages per group give the booster the age
dependence to learn (and more rows than a few dozen groups), and make one trained model usable
for requests of other ages.

Why LightGBM
------------
Few examples (a few dozen campaigns) and a need for structure over flexibility:

* native **monotone constraints** (``monotone_constraints_method="advanced"``): the ratio rises
  with the horizon for every group, so the curve is non-decreasing by construction;
* **TreeSHAP built in** (``predict(pred_contrib=True)``): exact per-forecast contributions
  without the ``shap`` package and its dependencies;
* a deterministic mode (``deterministic=True``, one thread, fixed seeds, forced column-wise
  histograms, so no timing-based choice) and a plain-text model (``model_to_string``): the same
  training on the same data gives the same bytes, and the artifact is auditable text, not a pickle;
* a small wheel (a few MB, no runtime dependency beyond numpy and scipy) for the Lambda and
  SageMaker images; XGBoost has monotone constraints and TreeSHAP too, but its default Linux
  wheel is GPU-enabled and pulls ``nvidia-nccl`` (hundreds of MB).

Uncertainty: split-conformal on out-of-fold residuals
-----------------------------------------------------
Groups are split into folds (all ages of a group in the same fold: its rows are not
independent); each fold's groups are predicted by a booster trained without them. The absolute
residuals ``|y − ŷ|`` per (age, horizon), divided by each group's noise scale
(:func:`noise_scale`: small groups are noisier) and multiplied back by the forecast group's,
give the interval half-width on the log scale: the
``⌈(n+1)c⌉``-th smallest of ``n`` residuals (split-conformal, distribution-free) when ``n`` is
large enough for confidence ``c``; otherwise (99% needs ``n ≥ 99`` groups) a Student-t
quantile times their root mean square, as few groups cannot show a 1-in-100 tail. Coverage in
:attr:`TrainedHistory.metrics` is itself held out: each group's residual against the
half-width the *other* groups' residuals give.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import stdtrit

from ltvcore.data.cohorts import CohortData, cut_back
from ltvcore.ltv import observed_ltv

__all__ = ["Examples", "NotEnoughHistory", "Settings", "booster_params", "examples", "fit_booster",
           "half_width", "noise_scale", "out_of_fold", "size_weight"]

#: Horizons the booster learns (the request's are added); days between them are interpolated
#: in log-day, which is how cumulative LTV curves bend.
GRID = (14, 21, 30, 45, 60, 90, 120, 180, 270, 365)
#: Cut-back ages relative to the young groups' age: the age itself, and around it.
AGE_FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0)
#: Without young groups (training for the model registry): ages covering the usual requests.
DEFAULT_AGES = (3, 6, 9, 13, 20, 29, 45)
DEFAULT_YOUNGEST = 6  # the youngest eligible cohort with the default 7 observed days
MIN_AGE = 2  # three observed days: the retention fits need them
MIN_TO_COME = 0.01


class NotEnoughHistory(ValueError):
    """Too few matured groups to learn from (the model falls back to its base curve)."""


@dataclass(frozen=True)
class Settings:
    """The booster's hyper-parameters and the training design (recorded with every model).

    Chosen for a few dozen groups, not tuned to a data set: shallow trees, slow learning, a
    robust loss, and leaves that must hold at least as many rows as ``min_groups_per_leaf``
    groups give one horizon, so no leaf can memorise one campaign.
    """

    retention: str = "ensemble"
    num_leaves: int = 6
    max_depth: int = 3
    learning_rate: float = 0.04
    rounds: int = 300
    min_groups_per_leaf: float = 3.0
    lambda_l2: float = 1.0
    feature_fraction: float = 0.8
    huber_delta: float = 0.5  # log units: a whale-driven miss counts linearly beyond ±65%
    folds: int = 8
    seed: int = 0
    weight_by_size: bool = True
    # "mape": the point forecast minimises the expected absolute percentage error (the method's
    # yardstick) under the out-of-fold log-normal spread σ: exp(median − σ²). "median": the
    # booster's own estimate. The interval is the same either way.
    point: str = "mape"


@dataclass(frozen=True)
class Examples:
    """Training rows: features ``x``, target ``y``, weight, and for each row its group (index
    into the data), age and horizon (indices into the ages and the grid); ``curve`` is the
    retention-curve forecast on the target's scale (the baseline the metrics compare with);
    ``observed`` and ``after_day0`` the LTV at the cut and its part after the install day (to
    turn ``y`` back into an LTV)."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    group: np.ndarray
    age: np.ndarray
    horizon: np.ndarray
    curve: np.ndarray
    observed: np.ndarray
    after_day0: np.ndarray

    def rows(self, keep: np.ndarray) -> Examples:
        return Examples(**{name: values[keep] for name, values in self.__dict__.items()})


def cut_ages(young_age: int | None, grid: tuple[int, ...]) -> tuple[int, ...]:
    """The ages the matured groups are cut back to."""
    if young_age is None:
        return DEFAULT_AGES
    ages = {max(MIN_AGE, int(round(young_age * f))) for f in AGE_FACTORS}
    return tuple(sorted(a for a in ages if a + 1 < max(grid)))


def examples(data: CohortData, ages: tuple[int, ...], youngest: int, grid: tuple[int, ...],
             settings: Settings, vocabulary: dict[str, list[str]], candidates: np.ndarray) -> Examples:
    """Rows of every ``candidates`` group at every age and every horizon it has reached."""
    from ltvcore.models.history.features import design, signals

    realised = observed_ltv(data)
    grid_arr = np.asarray(grid)
    parts = []
    for i, age in enumerate(ages):
        cut = cut_back(data, age, min(youngest, age))
        curve, rate = _base_curve(cut, settings.retention, max(grid))
        sig = signals(cut, curve, rate, vocabulary)
        x, g, k = design(sig, grid_arr, rows=candidates)
        h = grid_arr[k]
        matured = data.last_day[g] >= h - 1
        actual = realised[g, np.minimum(h, realised.shape[1]) - 1]
        scale = sig.after_day0[g]
        ok = matured & (actual > 0) & (scale > 0)
        # The realised LTV of all the group's cohorts can fall short of what the older ones had
        # shown by the cut: floor what came after at 1% of the scale, so that row still counts.
        to_come = np.maximum(actual - sig.observed[g], MIN_TO_COME * scale)
        y = np.log(np.where(ok, to_come, 1.0) / np.where(ok, scale, 1.0))
        own = x[:, -2]  # the retention curve's own forecast on the target's scale
        parts.append((x[ok], y[ok], g[ok], np.full(int(ok.sum()), i), k[ok], own[ok],
                      sig.observed[g][ok], scale[ok]))
    x, y, g, a, k, c, o, d = (np.concatenate(p) for p in zip(*parts))
    users = data.groups["fit_users"].to_numpy(dtype=float)
    w = size_weight(users, float(np.median(users[candidates])))[g] if settings.weight_by_size else np.ones(len(g))
    return Examples(x=x, y=y, weight=w, group=g, age=a, horizon=k, curve=c, observed=o, after_day0=d)


def size_weight(users: np.ndarray, median_users: float) -> np.ndarray:
    """Weight of a group's example, ``2n / (n + n_median)`` (1 at the median size).

    A small campaign's realised LTV is mostly the noise of a few heavy spenders. With the
    target's variance split evenly between signal and sampling noise at the median size (noise
    ∝ 1/n), this is the inverse of its relative variance; its inverse square root scales the
    residuals of the intervals (:func:`noise_scale`), so small groups also get wider intervals.
    """
    return 2 * users / (users + median_users)


def noise_scale(users: np.ndarray, median_users: float) -> np.ndarray:
    """Relative spread of a group's log ratio around the model's (1 at the median size)."""
    return 1 / np.sqrt(np.maximum(size_weight(np.maximum(users, 1.0), median_users), 1e-12))


def _base_curve(data: CohortData, retention: str, n_days: int):
    from ltvcore.models.curve import CurveModel

    # The curve's point forecast is a feature; its interval is not used here.
    model = CurveModel(retention=retention, extrapolation_sd=0.0).fit(data)
    return model.predict(n_days), model.activity_.rate


def booster_params(settings: Settings, names: list[str], monotone: dict[str, int],
                   rows_per_group_horizon: float) -> dict:
    """LightGBM parameters: the settings, the monotone constraints, and determinism."""
    return {
        "objective": "huber", "alpha": settings.huber_delta,
        "num_leaves": settings.num_leaves, "max_depth": settings.max_depth,
        "learning_rate": settings.learning_rate,
        "min_data_in_leaf": max(5, int(math.ceil(settings.min_groups_per_leaf * rows_per_group_horizon))),
        "min_sum_hessian_in_leaf": 0.0, "lambda_l2": settings.lambda_l2,
        "feature_fraction": settings.feature_fraction, "feature_fraction_bynode": 1.0,
        "monotone_constraints": [monotone.get(n, 0) for n in names],
        "monotone_constraints_method": "advanced",
        "min_data_in_bin": 1, "max_bin": 63, "feature_pre_filter": False,
        "deterministic": True, "force_col_wise": True, "num_threads": 1, "seed": settings.seed,
        "verbosity": -1,
    }


def fit_booster(x: np.ndarray, y: np.ndarray, weight: np.ndarray, params: dict, names: list[str],
                rounds: int) -> str:
    """A trained booster as LightGBM's model text (what is stored and what predicts)."""
    import lightgbm as lgb

    dataset = lgb.Dataset(x, y, weight=weight, feature_name=names, params={k: params[k] for k in (
        "min_data_in_bin", "max_bin", "feature_pre_filter", "verbosity")}, free_raw_data=True)
    return lgb.train(params, dataset, num_boost_round=rounds).model_to_string()


def out_of_fold(ex: Examples, params: dict, names: list[str], settings: Settings) -> np.ndarray:
    """``ŷ`` for every row from a booster trained without the row's group."""
    import lightgbm as lgb

    members = np.unique(ex.group)
    folds = min(settings.folds, len(members))
    order = np.random.default_rng(settings.seed).permutation(len(members))
    fold_of = dict(zip(members[order].tolist(), (np.arange(len(members)) % folds).tolist()))
    row_fold = np.array([fold_of[g] for g in ex.group.tolist()])
    predicted = np.empty(len(ex.y))
    for f in range(folds):
        held = row_fold == f
        text = fit_booster(ex.x[~held], ex.y[~held], ex.weight[~held], params, names, settings.rounds)
        predicted[held] = lgb.Booster(model_str=text).predict(ex.x[held])
    return predicted


def half_width(residuals: np.ndarray, confidence: float) -> float:
    """Log-scale interval half-width at ``confidence`` from held-out residuals (NaN: none)."""
    r = np.abs(residuals[np.isfinite(residuals)])
    n = len(r)
    if n < 3:
        return float("nan")
    rank = math.ceil((n + 1) * confidence)
    if rank <= n:
        return float(np.sort(r)[rank - 1])
    # Too few residuals to see this tail: a Student-t prediction interval from their scale,
    # never narrower than the largest residual seen.
    t = float(stdtrit(n - 1, 0.5 + confidence / 2))
    return float(max(t * np.sqrt(np.mean(r**2)) * np.sqrt(1 + 1 / n), r.max()))


def settings_dict(settings: Settings) -> dict:
    return asdict(settings)
