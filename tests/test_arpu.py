"""ARPU and its standard error, against a hand-computed answer.

The standard error is the clustered (by user) delta-method error of the ratio estimator
``ARPU = Σ revenue / Σ active user-days``:
``Var ≈ Σ_users (r_i − ARPU·a_i)² / (Σ a_i)²``, users, not user-days, being independent.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ltvcore.arpu import estimate_arpu
from tests.data.pandas_reference import attach_installs, build_cohorts


def cohort(rows: list[tuple[str, int, float]], users: list[str]):
    """One group installed on 2026-01-01; rows are (user, day, revenue); observed through day 3."""
    start = np.datetime64("2026-01-01")
    events = pd.DataFrame({
        "user_id": [u for u in users] + [u for u, _, _ in rows],
        "event_date": [start] * len(users) + [start + np.timedelta64(d, "D") for _, d, _ in rows],
        "revenue": [0.0] * len(users) + [r for _, _, r in rows],
    })
    installs = pd.DataFrame({"user_id": users, "install_date": [start] * len(users),
                             "campaign": ["c"] * len(users)})
    installs, user, age = attach_installs(events, installs)
    return build_cohorts(events, installs, user, age, by=["campaign"],
                         as_of=start + np.timedelta64(3, "D"), observe_days=1, window_days=None)


# a whale (10 on day 1), a free user, and a steady payer (1 a day)
ROWS = [("a", 1, 10.0), ("a", 2, 0.0), ("b", 1, 0.0), ("c", 1, 1.0), ("c", 2, 1.0), ("c", 3, 1.0)]


def test_arpu_is_revenue_per_active_user_day_after_day_zero():
    estimate = estimate_arpu(cohort(ROWS, ["a", "b", "c"]))
    assert estimate.arpu[0] == pytest.approx(13 / 6)
    assert (estimate.first_day[0], estimate.last_day[0]) == (1, 3)


def test_standard_error_is_clustered_by_user():
    estimate = estimate_arpu(cohort(ROWS, ["a", "b", "c"]))
    arpu = 13 / 6
    by_user = {"a": (10.0, 2), "b": (0.0, 1), "c": (3.0, 3)}
    expected = math.sqrt(sum((r - arpu * a) ** 2 for r, a in by_user.values()) / 6 ** 2)
    assert estimate.se[0] == pytest.approx(expected, rel=1e-12)


def test_one_users_days_are_one_source_of_variance_not_several():
    """The same user-days and revenue, split across more users, is a different error."""
    pooled = estimate_arpu(cohort([("a", 1, 6.0), ("a", 2, 6.0), ("b", 1, 0.0), ("b", 2, 0.0)],
                                  ["a", "b"]))
    spread = estimate_arpu(cohort([("a", 1, 6.0), ("c", 2, 6.0), ("b", 1, 0.0), ("d", 2, 0.0)],
                                  ["a", "b", "c", "d"]))
    assert pooled.arpu[0] == spread.arpu[0] == pytest.approx(3.0)
    # a: 12 − 3·2 = 6, b: −6 → 72/16; spread: 3, −3, 3, −3 → 36/16
    assert pooled.se[0] == pytest.approx(math.sqrt(72 / 16))
    assert spread.se[0] == pytest.approx(math.sqrt(36 / 16))


def test_a_window_uses_only_the_last_observed_days():
    estimate = estimate_arpu(cohort(ROWS, ["a", "b", "c"]), window=2)
    assert (estimate.first_day[0], estimate.last_day[0]) == (2, 3)
    assert estimate.arpu[0] == pytest.approx(2 / 3)  # day 2: a 0 + c 1; day 3: c 1


def test_day_zero_revenue_is_kept_apart():
    rows = [("a", 0, 4.0), ("a", 1, 1.0), ("b", 1, 1.0)]
    estimate = estimate_arpu(cohort(rows, ["a", "b"]))
    assert estimate.day0[0] == pytest.approx(2.0)
    assert estimate.arpu[0] == pytest.approx(1.0)


def test_a_group_with_few_payers_takes_at_least_the_population_spread():
    from dataclasses import replace

    data = cohort(ROWS, ["a", "b", "c"])                      # 2 payers: too few to measure
    own = estimate_arpu(data).user_sd[0]
    assert estimate_arpu(replace(data, population_user_sd=own * 3)).user_sd[0] == \
        pytest.approx(own * 3)
    # a smaller population spread never narrows the group's own
    assert estimate_arpu(replace(data, population_user_sd=own / 3)).user_sd[0] == \
        pytest.approx(own)
    # unknown population (NaN, the default): the group's own
    assert estimate_arpu(data).user_sd[0] == pytest.approx(own)
