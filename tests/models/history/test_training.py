"""--model history, training: what it learns, from what, and what it keeps of it."""

import numpy as np
import pytest

from ltvcore.data.cohorts import cut_back
from ltvcore.ltv import observed_ltv
from ltvcore.models.curve import CurveModel
from ltvcore.models.history import HistoryModel, NotEnoughHistory, TrainedHistory
from tests.models.history.conftest import HORIZONS
from tests.models.history.simulated import combine, known_ratio_groups, subset, with_user_revenue

pytest.importorskip("lightgbm")


def test_it_recovers_a_known_ratio_whatever_the_price_level():
    # 40 matured groups teach how the later LTV follows from the retention decay; 10 new groups
    # 14 days old, at price levels spanning 50x, are forecast from their first days alone.
    old, _ = known_ratio_groups(40, seed=1, oldest_age=400, prefix="old")
    new, expected = known_ratio_groups(10, seed=2, oldest_age=400, prefix="new")
    model = HistoryModel().fit(combine(old, cut_back(new, 13, 7)))
    assert model.name == "history"
    forecast = model.predict(365).ltv[40:]
    for h in (30, 90, 180, 365):
        error = np.abs(forecast[:, h - 1] / expected[:, h - 1] - 1)
        assert np.median(error) < 0.05 and error.max() < 0.12, h


def test_training_reads_no_data_after_the_cut(generated):
    # Training examples are matured groups cut back in calendar time. Reshuffling their revenue
    # between users after the latest cut (the day totals, hence the realised LTV the targets
    # are, unchanged) and inflating it beyond the last learned horizon change nothing; the same
    # reshuffle before the cut does. Revenue in whole cents, so every sum is exact in any order.
    data = with_user_revenue(generated, np.round(generated.user_revenue * 100))
    model = HistoryModel(horizons=HORIZONS)
    trained = model.train(data)
    latest_cut = max(trained.header["ages"])
    matured = data.last_day > latest_cut
    group = data.user_group[data.user_index]
    rng = np.random.default_rng(0)

    def shuffled(days) -> np.ndarray:
        revenue = data.user_revenue.copy()
        for g in np.flatnonzero(matured):
            for day in days:
                at = np.flatnonzero((group == g) & (data.user_day == day))
                revenue[at] = revenue[rng.permutation(at)]
        return revenue

    after = shuffled(range(latest_cut + 1, latest_cut + 40))
    after[(data.user_day >= max(trained.header["grid"])) & matured[group]] *= 10
    changed_after = with_user_revenue(data, after)
    np.testing.assert_array_equal(observed_ltv(changed_after)[:, :180], observed_ltv(data)[:, :180])
    assert model.train(changed_after).to_bytes() == trained.to_bytes()

    changed_before = with_user_revenue(data, shuffled(range(1, 4)))
    assert model.train(changed_before).to_bytes() != trained.to_bytes()


def test_the_same_training_gives_the_same_bytes(generated):
    first = HistoryModel(horizons=HORIZONS).train(generated)
    second = HistoryModel(horizons=HORIZONS).train(generated)
    assert first.to_bytes() == second.to_bytes()
    assert first.digest == second.digest and len(first.digest) == 64


def test_bytes_round_trip_gives_identical_forecasts(generated, fitted):
    restored = TrainedHistory.from_bytes(fitted.trained_.to_bytes())
    assert restored.digest == fitted.trained_.digest
    again = HistoryModel.from_trained(restored, horizons=HORIZONS).fit(generated)
    for a, b in zip(again.predict(365).__dict__.values(), fitted.predict(365).__dict__.values()):
        np.testing.assert_array_equal(a, b)
    assert again.params(0)["history"] == fitted.params(0)["history"]


def test_a_trained_model_forecasts_without_training_again(generated, fitted, monkeypatch):
    import ltvcore.models.history.training as training

    def no_training(*args, **kwargs):
        raise AssertionError("from_trained must not train")

    monkeypatch.setattr(training, "fit_booster", no_training)
    young = generated.last_day < 20
    model = HistoryModel.from_trained(fitted.trained_, confidence=0.9, horizons=HORIZONS).fit(generated)
    assert model.name == "history" and model.used_[young].all()


def test_the_trained_model_records_its_out_of_fold_backtest_and_settings(fitted):
    trained = fitted.trained_
    rows = trained.metrics["by_age"][str(trained.header["young_age"])]
    assert set(rows) >= {"30", "90", "180"}
    for row in rows.values():
        assert 8 <= row["groups"] <= 12  # a group with no revenue after day 0 yet has no target
        assert row["mape"] >= 0 and row["mape_curve"] >= 0 and 0 <= row["coverage"] <= 100
    assert trained.params["rounds"] > 0 and trained.params["min_history"] == 8
    assert fitted.backtest_mape([30, 90, 180]) == {h: rows[str(h)]["mape"] for h in (30, 90, 180)}


def test_with_too_little_history_it_is_the_curve_model_and_says_why(generated):
    few = generated.last_day < 20
    few[np.flatnonzero(~few)[:3]] = True  # the young groups and three matured ones
    data = subset(generated, few)
    model = HistoryModel(horizons=HORIZONS).fit(data)
    assert model.name == "curve"
    assert any(w.startswith("history: only 3 group(s)") for w in model.warnings)
    curve = CurveModel().fit(data).predict(180)
    np.testing.assert_array_equal(model.predict(180).ltv, curve.ltv)
    assert model.params(0)["history"]["used"] is False
    assert model.selection["trained"] is False
    with pytest.raises(NotEnoughHistory):
        HistoryModel(horizons=HORIZONS).train(data)


def test_intervals_cover_held_out_groups_near_the_nominal_rate():
    # 60 groups teach the model; 80 others, whose spending after day 30 moves by an
    # unforeseeable factor (sd 0.25 on the log scale), are forecast from 14 days at 90%.
    old, _ = known_ratio_groups(60, seed=3, oldest_age=200, lift_sd=0.25, users_per_cohort=30, prefix="old")
    new, _ = known_ratio_groups(80, seed=4, oldest_age=200, lift_sd=0.25, users_per_cohort=30, prefix="new")
    now = cut_back(new, 13, 7)
    trained = HistoryModel(horizons=(30, 90, 180), confidence=0.9).train(combine(old, now))
    forecast = HistoryModel.from_trained(trained, confidence=0.9, horizons=(30, 90, 180)).fit(now).predict(180)
    truth = observed_ltv(new)
    for h in (90, 180):
        covered = (forecast.lower[:, h - 1] <= truth[:, h - 1]) & (truth[:, h - 1] <= forecast.upper[:, h - 1])
        assert 0.8 <= covered.mean() <= 0.98, h
