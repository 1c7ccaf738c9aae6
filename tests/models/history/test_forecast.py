"""--model history, forecasting: curves, intervals, explanations, and its place among the models."""

import json

import numpy as np
import pytest

from ltvcore.ltv import observed_ltv
from ltvcore.models import MODELS, build_model
from ltvcore.models.auto import AutoModel
from ltvcore.models.history import HistoryModel
from ltvcore.models.history.features import LABELS, design, signals
from ltvcore.models.registry import AUTO_LEARNERS, ModelOptions
from tests.models.history.conftest import HORIZONS

pytest.importorskip("lightgbm")


def test_every_curve_is_non_decreasing_and_inside_its_interval(fitted, young):
    curve = fitted.predict(365)
    assert fitted.used_[young].all()
    for values in (curve.ltv, curve.lower, curve.upper):
        assert np.isfinite(values).all() and (np.diff(values, axis=1) >= 0).all()
    assert (curve.lower <= curve.ltv).all() and (curve.ltv <= curve.upper).all()


def test_past_the_learned_horizons_it_grows_as_the_curve_model_and_says_so(generated, fitted, young):
    model = HistoryModel.from_trained(fitted.trained_, horizons=(30, 365)).fit(generated)
    assert any("learned up to day 180" in w for w in model.warnings)
    ours, curve = model.predict(365).ltv, model.base_.predict(365).ltv
    for g in young:
        np.testing.assert_allclose(ours[g, 180:] / ours[g, 179], curve[g, 180:] / curve[g, 179])


def test_observed_days_stay_as_observed(generated, fitted, young):
    curve = fitted.predict(180).ltv
    observed = observed_ltv(generated)
    for g in young:
        last = generated.last_day[g]
        np.testing.assert_allclose(curve[g, : last + 1], observed[g, : last + 1])
        assert curve[g, last + 1] >= observed[g, last]


def test_forecast_is_the_observed_ltv_times_the_learned_ratio(fitted, young):
    curve = fitted.predict(180).ltv
    for g in young:
        ratio = fitted.params(g)["history"]["ratio_to_observed"]
        assert curve[g, 179] == pytest.approx(fitted.observed_[g] * ratio["180"], rel=1e-12)
        assert list(ratio.values()) == sorted(ratio.values()) and min(ratio.values()) >= 1.0


def test_shap_contributions_sum_to_the_booster_output(generated, fitted):
    trained = fitted.trained_
    base = fitted.base_
    sig = signals(generated, base.predict(180), base.activity_.rate, trained.header["vocabulary"])
    x, _, _ = design(sig, trained.grid, rows=fitted.used_)
    contributions = trained.contributions(x)
    assert contributions.shape == (len(x), len(trained.features) + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), trained.log_ratio(x), rtol=1e-9, atol=1e-12)


def test_each_forecast_names_the_signals_that_moved_it(fitted, young):
    for g in young:
        info = fitted.params(g)["history"]
        assert info["explanation_horizon"] == 180
        assert 1 <= len(info["explanation"]) <= 4
        for item in info["explanation"]:
            assert set(item) == {"feature", "label", "effect_pct", "value"}
            assert item["label"] == LABELS[item["feature"]] and item["feature"] != "reach"
        # Ordered by how far each moved the forecast (on the log scale: -50% and +100% are equal).
        moves = [abs(np.log1p(item["effect_pct"] / 100)) for item in info["explanation"]]
        assert moves == sorted(moves, reverse=True)
        assert info["point_vs_median_pct"] < 0  # the MAPE-optimal point lies below the median
        assert info["explanation_text"] == ", ".join(
            f"{item['label']} {item['effect_pct']:+.0f}%" for item in info["explanation"])
        json.dumps(info)  # params.json must hold it


def test_selection_records_what_was_learned_and_how_well_it_held_out(fitted):
    selection = fitted.selection
    assert selection["trained"] and selection["training_groups"] == 12
    assert selection["model_digest"] == fitted.trained_.digest
    assert "out-of-fold error" in selection["why"] and "180" in selection["why"]
    json.dumps(selection)


def test_groups_without_revenue_keep_the_curve_forecast(generated):
    from tests.models.history.simulated import with_user_revenue

    g = int(np.flatnonzero(generated.last_day < 20)[0])
    revenue = generated.user_revenue.copy()
    revenue[generated.user_group[generated.user_index] == g] = 0.0
    data = with_user_revenue(generated, revenue)
    model = HistoryModel(horizons=HORIZONS).fit(data)
    assert not model.used_[g] and "no revenue" in model.params(g)["history"]["reason"]
    assert (model.predict(180).ltv[g] == 0).all()


def test_history_is_a_public_model_and_a_learner_auto_consults():
    assert "history" in MODELS and AUTO_LEARNERS == ("history",)
    model = build_model("history", ModelOptions(horizons=(30, 180), confidence=0.9, seed=3))
    assert isinstance(model, HistoryModel)
    assert (model.horizons, model.confidence, model.settings.seed) == ((30, 180), 0.9, 3)


def test_auto_scores_history_by_its_out_of_fold_backtest(generated):
    options = ModelOptions(horizons=HORIZONS)
    auto = AutoModel(candidates=("curve",), options=options, learners=("history",)).fit(generated)
    backtest = auto.backtest_
    assert set(backtest["mape"]) == {"curve", "calibrated", "history"}
    history = HistoryModel(horizons=HORIZONS).fit(generated)
    assert backtest["mape_by_horizon"]["history"] == [history.backtest_mape(list(HORIZONS))[h] for h in HORIZONS]
    assert auto.choice_ == min(backtest["mape"], key=backtest["mape"].get)
    if auto.choice_ == "history":
        assert auto.name == "history"
