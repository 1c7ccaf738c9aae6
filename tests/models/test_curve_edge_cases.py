"""Degenerate groups get a clear result or a clear error, never NaN."""

import numpy as np
import pandas as pd
import pytest

from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.workflow.forecast import from_frames, run_forecast


def _inputs(rows, installs):
    events = pd.DataFrame(rows, columns=["user_id", "event_date", "revenue"])
    events["event_date"] = pd.to_datetime(events["event_date"]).to_numpy().astype("datetime64[D]")
    inst = pd.DataFrame(installs, columns=["user_id", "install_date", "campaign"])
    inst["install_date"] = pd.to_datetime(inst["install_date"]).to_numpy().astype("datetime64[D]")
    return from_frames(events, inst, None, names={"events": "events.csv", "installs": "installs.csv"})


def _cohort(campaign, users, days, *, active_after_day0=True, pay=1.0, start="2026-01-01"):
    rows, installs = [], []
    for i in range(users):
        uid = f"{campaign}-{i}"
        installs.append((uid, start, campaign))
        rows.append((uid, start, pay if i % 10 == 0 else 0.0))
        if active_after_day0:
            for d in range(1, days):
                if (i + d) % (d + 1) == 0:
                    day = str((pd.Timestamp(start) + pd.Timedelta(days=d)).date())
                    rows.append((uid, day, pay if i % 10 == 0 else 0.0))
    return rows, installs


def _assert_clean(result):
    for frame in (result.forecast, result.curve):
        numeric = frame.select_dtypes("number").to_numpy()
        assert np.isfinite(numeric).all()


def test_zero_revenue_gives_zero_ltv_and_a_warning():
    rows, installs = _cohort("free", 200, 10, pay=0.0)
    result = run_forecast(_inputs(rows, installs), ForecastRequest(observe_days=7))
    _assert_clean(result)
    assert (result.forecast["ltv"] == 0).all() and (result.forecast["ltv_upper"] == 0).all()
    assert any("no revenue" in w for w in result.warnings)


def test_zero_retention_after_day_zero_gives_day0_ltv_only():
    # Another campaign's users are active up to as-of, so the data reach it (an as-of after
    # the data's last event is refused); nobody of "gone" came back after the install day.
    rows, installs = _cohort("gone", 200, 10, active_after_day0=False)
    kept_rows, kept_installs = _cohort("kept", 200, 10)
    result = run_forecast(_inputs(rows + kept_rows, installs + kept_installs),
                          ForecastRequest(observe_days=7, as_of="2026-01-10"))
    _assert_clean(result)
    assert any("no activity after day 0" in w for w in result.warnings)
    day0 = 20 * 1.0 / 200
    gone = result.forecast[result.forecast["campaign"] == "gone"]
    assert gone["ltv"].iloc[-1] == pytest.approx(day0, rel=0.05)


def test_a_single_observed_day_is_a_clear_error():
    rows, installs = _cohort("new", 100, 1)
    with pytest.raises(InputError, match="observed days"):
        run_forecast(_inputs(rows, installs), ForecastRequest(observe_days=1))


def test_a_group_too_young_to_fit_is_left_out_with_a_warning():
    old_rows, old_installs = _cohort("old", 300, 10)
    new_rows, new_installs = _cohort("new", 50, 1, start="2026-01-10")
    result = run_forecast(_inputs(old_rows + new_rows, old_installs + new_installs),
                          ForecastRequest(observe_days=1))
    _assert_clean(result)
    assert set(result.forecast["campaign"]) == {"old"}
    assert any("new" in w and "not forecast" in w for w in result.warnings)
