"""The benchmark processes' closed-form expected LTV is what simulating them gives."""

import numpy as np
import pytest

from benchmarks import processes

USERS = 40_000


@pytest.mark.parametrize("kind", processes.PROCESSES)
def test_simulated_revenue_matches_the_closed_form_expected_ltv(kind):
    rng = np.random.default_rng(7)
    start = np.datetime64("2025-01-01")
    for law in ("sbg", "weibull"):
        par = processes.draw_params(kind, rng) | ({"law": law} if kind == "game" else {})
        events, installs = processes._campaign(kind, par, np.random.default_rng(1), "c", start, 1, USERS,
                                               start + np.timedelta64(400, "D"))
        day = (events["event_date"].to_numpy().astype("datetime64[D]") - start).astype(int)
        user = installs["user_id"].searchsorted(events["user_id"])
        for h, expected in zip((30, 365), processes.expected_ltv(kind, par, (30, 365))):
            per_user = np.bincount(user[day < h], events["revenue"].to_numpy()[day < h], USERS)
            # Within four standard errors of the simulated mean (heavy-tailed spending is noisy).
            assert abs(per_user.mean() - expected) < 4 * per_user.std() / np.sqrt(USERS)


def test_simulate_gives_inputs_up_to_as_of_and_the_expected_ltv_of_this_years_campaigns():
    sim = processes.simulate("pareto_nbd", seed=1, n_campaigns=2, users=500, observed=7, history=1)
    assert set(sim.expected["campaign"]) == {"c00", "c01"}
    assert sim.inputs.last_event <= sim.as_of
    assert len(sim.params) == 3
