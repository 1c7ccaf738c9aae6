"""Benchmark scenarios on the sample generator: simulate once, cut at as-of, keep the truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcore import sample
from ltvcore.data.cohorts import CohortData
from ltvcore.request import ForecastRequest
from ltvcore.warehouse.model_data import cohort_data
from ltvcore.workflow.forecast import Inputs, from_frames, resolve_as_of

HORIZONS = (30, 90, 180, 365)

# name → (install days, observed days after the last install day)
SCENARIOS = {
    "1 install day + 7 observed": (1, 7),
    "14 install days + 7 observed": (14, 7),
    "30 install days + 30 observed": (30, 30),
}


@dataclass
class Case:
    scenario: str
    kind: str
    seed: int
    inputs: Inputs
    truth: pd.DataFrame
    as_of: str
    floor: pd.DataFrame
    events: pd.DataFrame
    installs: pd.DataFrame


def build(scenario: str, *, kind: str = "game", seed: int = 1, n_campaigns: int = 12,
          installs_per_campaign: float = 8400.0, history_campaigns: int = 24) -> Case:
    """Simulate a scenario; each campaign gets about the same installs whatever the install span.

    Real campaigns buy thousands of installs; a few hundred users with heavy-tailed spending make
    the realised LTV itself too noisy to judge a forecast by. ``history_campaigns`` campaigns
    of the year before (other draws of the same generator, fully matured by as-of) ride along
    in the data, as they would in a real warehouse: the calibrated model learns from them, the
    others ignore them, and only this year's campaigns are scored.
    """
    install_days, observed = SCENARIOS[scenario]
    sim = sample.simulate(seed=seed, install_days=install_days, n_campaigns=n_campaigns,
                          users_per_day=installs_per_campaign / install_days, kind=kind)
    as_of = sim.last_install + pd.Timedelta(days=observed - 1)
    events, installs = sample.cut(sim, as_of)
    if history_campaigns:
        past = sample.simulate(seed=seed + 1000, start="2024-12-01", install_days=install_days,
                               n_campaigns=history_campaigns,
                               users_per_day=installs_per_campaign / install_days, kind=kind)
        old_events, old_installs = sample.cut(past, as_of)
        old_installs = old_installs.assign(user_id="h" + old_installs["user_id"],
                                           campaign=old_installs["campaign"] + "_2025")
        old_events = old_events.assign(user_id="h" + old_events["user_id"])
        events = pd.concat([old_events, events], ignore_index=True)
        installs = pd.concat([old_installs, installs], ignore_index=True)
    events = events.assign(event_date=events["event_date"].to_numpy().astype("datetime64[D]"))
    installs = installs.assign(install_date=installs["install_date"].to_numpy().astype("datetime64[D]"))
    inputs = from_frames(events, installs, sim.spend, names={"events": "events", "installs": "installs"})
    truth = sample.truth(sim, horizons=HORIZONS)  # this year's campaigns only
    return Case(scenario=scenario, kind=kind, seed=seed, inputs=inputs, truth=truth,
                as_of=str(as_of.date()), floor=noise_floor(sim, truth), events=events,
                installs=installs)


def cohorts(inputs: Inputs, request: ForecastRequest) -> CohortData:
    """Per-campaign cohort data of the inputs cut at the request's as-of (every group kept)."""
    return cohort_data(inputs, by=["campaign"], as_of=resolve_as_of(inputs, request),
                         observe_days=request.observe_days, window_days=request.window_days)


def noise_floor(sim, truth: pd.DataFrame) -> pd.DataFrame:
    """Rows whose |ltv − truth| is the expected error of a perfect expected-value forecast."""
    installs = sim.installs.set_index("user_id")
    events = sim.events
    age = (events["event_date"].to_numpy() - installs.loc[events["user_id"], "install_date"].to_numpy())
    age = age.astype("timedelta64[D]").astype(int)
    rows = []
    users = installs.index
    for h in HORIZONS:
        keep = age < h
        per_user = (events.loc[keep].groupby("user_id")["revenue"].sum()
                    .reindex(users, fill_value=0.0))
        stats = per_user.groupby(installs["campaign"]).agg(["std", "size"])
        for campaign, row in stats.iterrows():
            rows.append({"campaign": campaign, "horizon_days": h,
                         "error": np.sqrt(2 / np.pi) * row["std"] / np.sqrt(row["size"])})
    floor = pd.DataFrame(rows).merge(truth[["campaign", "horizon_days", "ltv"]],
                                     on=["campaign", "horizon_days"])
    return pd.DataFrame({"campaign": floor["campaign"], "horizon_days": floor["horizon_days"],
                         "ltv": floor["ltv"] + floor["error"], "ltv_lower": np.nan,
                         "ltv_upper": np.nan, "model": "noise floor"})
