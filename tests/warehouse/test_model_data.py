"""The SQL data path gives the models exactly what the pandas path gave, on the same data."""

import numpy as np
import pandas as pd
import pytest

from ltvcore.sample import write_sample
from ltvcore.warehouse.inputs import load_inputs
from ltvcore.warehouse.model_data import cohort_data, cohort_table
from tests.data.pandas_reference import attach_installs, build_cohorts, read_frames
from tests.data.pandas_reference import cohort_table as pandas_cohort_table

ARRAYS = ("at_risk", "active", "payers", "revenue", "last_day")


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, install_days=12, observed_days=20, n_campaigns=4, users_per_day=40, seed=5)
    return folder


def _both(folder, *, installs=True, by=("campaign",), as_of="2026-01-25", observe_days=7,
          window_days=None):
    files = [folder / "events.csv", folder / "installs.csv" if installs else None]
    sql = cohort_data(load_inputs(*files), by=list(by), as_of=as_of, observe_days=observe_days,
                      window_days=window_days)
    events, inst = read_frames(*files, as_of=as_of)
    inst, user, age = attach_installs(events, inst)
    reference = build_cohorts(events, inst, user, age, by=list(by), as_of=np.datetime64(as_of),
                              observe_days=observe_days, window_days=window_days)
    return sql, reference


@pytest.mark.parametrize("settings", [
    {}, {"by": ("campaign", "os")}, {"installs": False}, {"observe_days": 3},
    {"window_days": 9}, {"as_of": "2026-01-14"},
])
def test_cohort_arrays_equal_the_pandas_path(sample_dir, settings):
    sql, reference = _both(sample_dir, **settings)
    for name in ARRAYS:
        np.testing.assert_allclose(getattr(sql, name), getattr(reference, name), rtol=1e-12,
                                   err_msg=name)
    pd.testing.assert_frame_equal(sql.groups.reset_index(drop=True),
                                  reference.groups.reset_index(drop=True), check_dtype=False)
    # the same users and user-days, up to the order users are numbered in
    assert sorted(zip(sql.user_group, sql.user_age)) == sorted(zip(reference.user_group,
                                                                   reference.user_age))
    key = lambda d: sorted(zip(d.user_group[d.user_index], d.user_day, np.round(d.user_revenue, 9)))  # noqa: E731
    assert key(sql) == key(reference)


def test_the_cohort_table_equals_the_pandas_path(sample_dir):
    as_of = "2026-01-25"
    inputs = load_inputs(sample_dir / "events.csv", sample_dir / "installs.csv")
    sql = cohort_table(inputs, as_of)
    events, inst = read_frames(sample_dir / "events.csv", sample_dir / "installs.csv", as_of=as_of)
    inst, user, age = attach_installs(events, inst)
    reference = pandas_cohort_table(events, inst, user, age, by=["campaign"], as_of=np.datetime64(as_of))
    columns = ["campaign", "install_date", "day", "active_users", "payers", "revenue", "cohort_users"]
    left = sql[columns].assign(install_date=pd.to_datetime(sql["install_date"]))
    right = reference[columns].assign(install_date=pd.to_datetime(reference["install_date"]))
    pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True),
                                  check_dtype=False, rtol=1e-12)


def test_users_and_days_come_in_the_same_order_every_time(sample_dir):
    a, _ = _both(sample_dir)
    b, _ = _both(sample_dir)
    for name in ("user_group", "user_age", "user_index", "user_day", "user_revenue"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_large_inputs_spill_through_a_scratch_database_with_the_same_result(sample_dir, monkeypatch):
    from ltvcore.warehouse import engine

    small, _ = _both(sample_dir)
    monkeypatch.setattr(engine, "IN_MEMORY_ROWS", 10)  # every input counts as large
    large, _ = _both(sample_dir)
    for name in (*ARRAYS, "user_group", "user_age", "user_index", "user_day", "user_revenue"):
        np.testing.assert_array_equal(getattr(large, name), getattr(small, name), err_msg=name)


def test_the_population_spread_is_every_groups_users_and_the_same_in_every_shard(sample_dir):
    files = (sample_dir / "events.csv", sample_dir / "installs.csv")
    inputs = load_inputs(*files)
    whole = cohort_data(inputs, by=["campaign"], as_of="2026-01-25", observe_days=7,
                        window_days=None)
    # revenue per eligible user, zero for those who never paid
    total = np.bincount(whole.user_index, weights=whole.user_revenue,
                        minlength=len(whole.user_group))
    assert whole.population_user_sd == pytest.approx(np.std(total, ddof=1), rel=1e-12)
    spreads = {cohort_data(inputs, by=["campaign"], as_of="2026-01-25", observe_days=7,
                           window_days=None, shard=(i, 2)).population_user_sd for i in range(2)}
    assert spreads == {whole.population_user_sd}
