"""Combining candidates: a dominant one takes all the weight, indistinguishable ones share it."""

import numpy as np
import pytest

from ltvcore.ltv import CurveLTV
from ltvcore.models.stacking import MIN_WEIGHT, StackedModel, selection_weights


def test_a_candidate_best_on_every_group_takes_all_the_weight():
    rng = np.random.default_rng(0)
    better = rng.uniform(0.01, 0.05, 30)
    errors = np.column_stack([better + 0.1, better, better + 0.02])
    assert selection_weights(errors, np.ones(30)).tolist() == [0.0, 1.0, 0.0]


def test_exchangeable_candidates_share_the_weight_about_equally():
    rng = np.random.default_rng(1)
    errors = rng.uniform(0, 1, (400, 2))  # the same error law: neither is better
    w = selection_weights(errors, np.ones(400))
    assert w.sum() == pytest.approx(1.0)
    assert 0.2 < w[0] < 0.8  # the sample's own difference sets the split, not a corner
    # the weight follows the evidence: a small edge on every group shifts it
    shifted = selection_weights(errors - np.array([0.0, 0.01]), np.ones(400))
    assert shifted[1] > w[1]


def test_weights_are_deterministic_drop_rare_winners_and_skip_unscorable_groups():
    errors = np.array([[0.10, 0.11, 0.90], [0.12, 0.10, 0.95], [np.nan, 0.0, 0.0], [0.2, 0.21, 1.0]])
    users = np.array([100.0, 100.0, 100.0, 100.0])
    first = selection_weights(errors, users)
    assert first.tolist() == selection_weights(errors, users).tolist()
    assert first[2] == 0.0  # never best on the scorable groups (the NaN row is left out)
    assert ((first == 0) | (first >= MIN_WEIGHT)).all()
    assert np.isnan(selection_weights(np.full((2, 2), np.nan), np.ones(2))).all()
    assert selection_weights(np.ones((3, 1)), np.ones(3)).tolist() == [1.0]


def test_users_weight_the_groups():
    # candidate 0 is better on the big group, 1 on the small ones
    errors = np.array([[0.0, 0.5], [0.5, 0.0], [0.5, 0.0]])
    assert selection_weights(errors, np.array([1000.0, 1.0, 1.0]))[0] > 0.9
    assert selection_weights(errors, np.array([1.0, 1000.0, 1000.0]))[1] > 0.9


class _Fixed:
    def __init__(self, name, level, params):
        self.name, self.level, self._params = name, level, params
        self.assumptions, self.warnings = [f"{name} assumes"], []

    def predict(self, n_days):
        ltv = np.full((2, n_days), self.level)
        return CurveLTV(ltv=ltv, lower=ltv / 2, upper=ltv * 2)

    def params(self, g):
        return self._params


def test_the_stack_averages_curves_and_bounds_and_reports_its_weights():
    stack = StackedModel({"curve:sbg": _Fixed("curve", 1.0, {"sbg": {"alpha": 1}}),
                          "btyd:map": _Fixed("btyd", 3.0, {"btyd": {}})},
                         {"curve:sbg": 0.75, "btyd:map": 0.25})
    out = stack.predict(5)
    assert np.allclose(out.ltv, 1.5) and np.allclose(out.lower, 0.75) and np.allclose(out.upper, 3.0)
    assert stack.name == "curve+btyd"
    params = stack.params(0)
    assert params["sbg"] == {"alpha": 1}  # the heaviest component's fit, as a single model's
    assert params["stack"] == {"curve:sbg": 0.75, "btyd:map": 0.25}
    assert stack.assumptions == ["curve assumes", "btyd assumes"]
