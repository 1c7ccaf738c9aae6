"""Shared data: generated campaigns, twelve of last year (matured to 200 days) and four young."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcore import sample
from ltvcore.warehouse.model_data import cohort_data
from ltvcore.workflow.forecast import from_frames

HORIZONS = (30, 90, 180)


def generated_inputs(history_campaigns: int):
    now = sample.simulate(seed=31, install_days=5, n_campaigns=4, users_per_day=120)
    as_of = now.last_install + pd.Timedelta(days=6)
    events, installs = sample.cut(now, as_of)
    if history_campaigns:
        past = sample.simulate(seed=32, start="2025-05-01", install_days=5, n_campaigns=history_campaigns,
                               users_per_day=120, horizon_days=200)
        old_events, old_installs = sample.cut(past, as_of)
        events = pd.concat([old_events.assign(user_id="h" + old_events["user_id"]), events])
        installs = pd.concat([old_installs.assign(user_id="h" + old_installs["user_id"],
                                                  campaign=old_installs["campaign"] + "_old"), installs])
    days = events["event_date"].to_numpy().astype("datetime64[D]")
    inputs = from_frames(events.assign(event_date=days).reset_index(drop=True),
                         installs.assign(install_date=installs["install_date"].to_numpy()
                                         .astype("datetime64[D]")).reset_index(drop=True),
                         None, names={"events": "events.csv", "installs": "installs.csv"})
    return inputs, str(as_of.date())


@pytest.fixture(scope="session")
def generated():
    """Cohort data of 12 matured and 4 young campaigns (the young ones 6–10 days old)."""
    inputs, as_of = generated_inputs(12)
    data = cohort_data(inputs, by=["campaign"], as_of=as_of, observe_days=7, window_days=None)
    assert (data.last_day >= 199).sum() == 12 and (data.last_day < 20).sum() == 4
    return data


@pytest.fixture(scope="session")
def fitted(generated):
    from ltvcore.models.history import HistoryModel

    return HistoryModel(horizons=HORIZONS).fit(generated)


@pytest.fixture
def young(generated):
    return np.flatnonzero(generated.last_day < 20)
