"""Pooled cohort arrays, and cutting matured groups back in time for backtests."""

import numpy as np
import pandas as pd
import pytest

from ltvcore import sample
from ltvcore.data.cohorts import cut_back, truncate
from tests.data.pandas_reference import attach_installs, build_cohorts


def _cohorts(sim, as_of, observe_days=7):
    events, installs = sample.cut(sim, as_of)
    events = events.assign(event_date=events["event_date"].to_numpy().astype("datetime64[D]"))
    installs = installs.assign(install_date=installs["install_date"].to_numpy().astype("datetime64[D]"))
    installs, user, age = attach_installs(events, installs)
    return build_cohorts(events, installs, user, age, by=["campaign"],
                         as_of=np.datetime64(as_of.date()), observe_days=observe_days,
                         window_days=None)


@pytest.fixture(scope="module")
def sim():
    return sample.simulate(seed=4, install_days=10, n_campaigns=3, users_per_day=40,
                           horizon_days=60)


def test_cut_back_is_the_data_as_of_the_earlier_date(sim):
    first = sim.installs["install_date"].min()
    late = _cohorts(sim, first + pd.Timedelta(days=50))
    early = _cohorts(sim, first + pd.Timedelta(days=15))      # oldest cohort 15 days old
    cut = cut_back(late, 15, 6)
    for name in ("at_risk", "active", "payers", "revenue", "last_day"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(early, name), err_msg=name)
    pd.testing.assert_frame_equal(cut.groups, early.groups)
    np.testing.assert_array_equal(np.sort(cut.user_age), np.sort(early.user_age))
    assert len(cut.user_revenue) == len(early.user_revenue)
    assert cut.user_revenue.sum() == pytest.approx(early.user_revenue.sum())


def test_cut_back_differs_from_truncate_by_mixing_cohort_ages(sim):
    first = sim.installs["install_date"].min()
    late = _cohorts(sim, first + pd.Timedelta(days=50))
    cut, flat = cut_back(late, 15, 6), truncate(late, 15)
    # truncate keeps every cohort for 16 days; cut_back keeps the calendar: later cohorts are
    # younger, so fewer users are at risk on the last days.
    assert (flat.at_risk[:, 15] > cut.at_risk[:, 15]).all()
    np.testing.assert_array_equal(flat.at_risk[:, 0], cut.at_risk[:, 0])


def test_groups_no_older_than_the_cut_are_unchanged(sim):
    first = sim.installs["install_date"].min()
    young = _cohorts(sim, first + pd.Timedelta(days=12))
    cut = cut_back(young, 15, 6)
    np.testing.assert_array_equal(cut.last_day, young.last_day)
    for name in ("at_risk", "active", "revenue"):
        np.testing.assert_array_equal(getattr(cut, name)[:, :13], getattr(young, name))
