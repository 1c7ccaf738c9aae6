"""Specification of the synthetic data generator (ltvcore.sample)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcore.sample import SampleError, Simulation, campaign_names, cut, simulate, truth, write_sample

INSTALL_COLUMNS = ["user_id", "install_date", "campaign", "os", "channel", "is_emulator"]
EVENT_COLUMNS = ["user_id", "event_date", "revenue"]


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(seed=7)


@pytest.fixture(scope="module")
def purchase() -> Simulation:
    return simulate(seed=11, kind="purchase", install_days=20, users_per_day=30.0)


def _days(events: pd.DataFrame, installs: pd.DataFrame) -> np.ndarray:
    start = installs.set_index("user_id")["install_date"]
    return (events["event_date"].to_numpy() - start.loc[events["user_id"]].to_numpy()
            ).astype("timedelta64[D]").astype(np.int64)


def _activity(sim: Simulation, day: int) -> pd.Series:
    """Share of each campaign's users active on ``day``."""
    d = _days(sim.events, sim.installs)
    users = sim.installs.set_index("user_id")["campaign"]
    active = users.loc[sim.events["user_id"].to_numpy()[d == day]].value_counts()
    return active.reindex(users.unique(), fill_value=0) / users.value_counts()


# ----------------------------------------------------------------------------- determinism, shape


def test_same_seed_same_data_other_seed_other_data():
    a = simulate(seed=3, install_days=5, n_campaigns=4, users_per_day=20.0, horizon_days=60)
    b = simulate(seed=3, install_days=5, n_campaigns=4, users_per_day=20.0, horizon_days=60)
    c = simulate(seed=4, install_days=5, n_campaigns=4, users_per_day=20.0, horizon_days=60)
    pd.testing.assert_frame_equal(a.installs, b.installs)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.spend, b.spend)
    assert a.promotions == b.promotions
    assert not (len(a.events) == len(c.events) and a.events.equals(c.events))


def test_columns_and_types_follow_the_contract(sim):
    ins, ev = sim.installs, sim.events
    assert list(ins.columns) == INSTALL_COLUMNS
    assert list(ev.columns) == EVENT_COLUMNS
    assert list(sim.spend.columns) == ["campaign", "spend"]
    assert ins["install_date"].dtype == "datetime64[ns]"
    assert ev["event_date"].dtype == "datetime64[ns]"
    assert (ins["install_date"] == ins["install_date"].dt.normalize()).all()
    assert (ev["event_date"] == ev["event_date"].dt.normalize()).all()
    for col in ["user_id", "campaign", "os", "channel", "is_emulator"]:
        assert pd.api.types.is_string_dtype(ins[col]), col
    assert pd.api.types.is_string_dtype(ev["user_id"])
    assert ev["revenue"].dtype == np.float64
    assert ins["user_id"].is_unique
    assert ins["user_id"].str.fullmatch(r"u\d{6}").all()
    assert ins["user_id"].iloc[0] == "u000001"
    assert set(ins["os"]) == {"ios", "android"}
    assert set(ins["channel"]) == {"paid", "organic"}
    assert set(ins["is_emulator"]) == {"true", "false"}
    assert (ins.loc[ins["is_emulator"] == "true", "os"] == "android").all()
    assert (ins.loc[ins["campaign"].str.startswith("organic"), "channel"] == "organic").all()
    assert ev["revenue"].notna().all() and (ev["revenue"] >= 0).all()
    # revenue in cents
    assert np.allclose(ev["revenue"], np.round(ev["revenue"], 2), rtol=0, atol=1e-9)
    assert sim.first_install == ins["install_date"].min() == pd.Timestamp("2026-01-01")
    assert sim.last_install == ins["install_date"].max() == pd.Timestamp("2026-01-30")
    assert 15_000 < len(ins) < 30_000


def test_events_one_row_per_active_user_day_within_the_horizon(sim):
    ev = sim.events
    assert not ev.duplicated(["user_id", "event_date"]).any()
    d = _days(ev, sim.installs)
    assert d.min() == 0, "no event before install"
    assert d.max() <= sim.horizon_days - 1
    assert set(ev["user_id"]) <= set(sim.installs["user_id"])


def test_every_user_is_active_on_the_install_day(sim):
    d = _days(sim.events, sim.installs)
    day0 = set(sim.events["user_id"].to_numpy()[d == 0])
    assert day0 == set(sim.installs["user_id"])


def test_campaign_names_are_deterministic_and_unique():
    names = campaign_names(40)
    assert names[:4] == ["fb_us_q1", "google_uac_kr", "tiktok_jp", "organic"]
    assert len(set(names)) == 40
    assert names[16] == "fb_us_q1_2" and names[32] == "fb_us_q1_3"
    assert campaign_names(3) == names[:3]


# ----------------------------------------------------------------------------- cut and truth


def test_cut_removes_everything_after_as_of(sim):
    as_of = pd.Timestamp("2026-01-20")
    ev, ins = cut(sim, "2026-01-20")
    assert ev["event_date"].max() == as_of and ins["install_date"].max() == as_of
    assert len(ev) == int((sim.events["event_date"] <= as_of).sum())
    assert len(ins) == int((sim.installs["install_date"] <= as_of).sum())
    assert set(ev["user_id"]) <= set(ins["user_id"])
    assert list(ev.columns) == EVENT_COLUMNS and list(ins.columns) == INSTALL_COLUMNS
    ev2, _ = cut(sim, pd.Timestamp("2026-01-20 13:00"))  # a time of day means that whole date
    assert len(ev2) == len(ev)


def test_truth_is_realised_ltv_and_non_decreasing_in_horizon(sim):
    tr = truth(sim)
    assert list(tr.columns) == ["campaign", "horizon_days", "users", "ltv"]
    assert len(tr) == 4 * sim.installs["campaign"].nunique()
    for _, g in tr.groupby("campaign"):
        assert list(g["horizon_days"]) == [30, 90, 180, 365]
        assert (np.diff(g["ltv"].to_numpy()) >= -1e-12).all()
    assert tr.groupby("horizon_days")["users"].sum().eq(len(sim.installs)).all()
    # direct recomputation at 90 days
    d = _days(sim.events, sim.installs)
    camp = sim.installs.set_index("user_id")["campaign"].loc[sim.events["user_id"]].to_numpy()
    rev = pd.Series(sim.events["revenue"].to_numpy()[d < 90]).groupby(camp[d < 90]).sum()
    n = sim.installs["campaign"].value_counts()
    got = tr[tr["horizon_days"] == 90].set_index("campaign")["ltv"]
    np.testing.assert_allclose(got.sort_index(), (rev / n).sort_index(), rtol=1e-12)


def test_truth_by_several_columns(sim):
    tr = truth(sim, by=["campaign", "os"], horizons=(7, 30))
    assert list(tr.columns) == ["campaign", "os", "horizon_days", "users", "ltv"]
    assert tr["users"].sum() == 2 * len(sim.installs)
    overall = truth(sim, by="channel", horizons=[30])
    assert set(overall["channel"]) == {"paid", "organic"}
    with pytest.raises(SampleError):
        truth(sim, by=["country"])
    with pytest.raises(ValueError):
        truth(simulate(install_days=3, n_campaigns=2, horizon_days=60), horizons=(30, 90))


# ----------------------------------------------------------------------------- realism


def test_retention_is_in_realistic_ranges_and_campaigns_differ(sim):
    big = sim.installs["campaign"].value_counts()
    big = big[big >= 400].index
    d1, d30, d180 = (_activity(sim, t).loc[big] for t in (1, 30, 180))
    assert d1.between(0.20, 0.60).all(), d1
    assert d30.between(0.02, 0.18).all(), d30
    assert d180.between(0.0005, 0.08).all(), d180
    assert d30.max() > 2 * d30.min()
    assert (d1 > d30).all() and (d30 > d180).all()
    assert set(sim.campaigns["law"]) == {"sbg", "weibull_lt1", "exp_mix", "weibull_gt1"}
    sizes = sim.installs["campaign"].value_counts()
    assert sizes.max() > 5 * sizes.min()


def test_weekends_are_busier(sim):
    d = _days(sim.events, sim.installs)
    later = sim.events[d >= 1]
    per_day = later.groupby("event_date").size()
    # compare weekends with the weekdays next to them inside a window where cohorts are full
    window = per_day.loc["2026-02-02":"2026-03-01"]
    weekend = window[window.index.day_of_week >= 5].mean()
    weekday = window[window.index.day_of_week.isin([3, 4])].mean()  # Thu/Fri, before the weekend
    assert weekend > 1.03 * weekday


def test_payer_share_in_range_and_payers_retain_better(sim):
    paying = set(sim.events.loc[sim.events["revenue"] > 0, "user_id"])
    share = len(paying) / len(sim.installs)
    assert 0.01 <= share <= 0.08
    assert sim.campaigns["payer_share"].between(0.01, 0.08).all()
    per_campaign = sim.installs.assign(p=sim.installs["user_id"].isin(paying)) \
        .groupby("campaign")["p"].mean()
    assert per_campaign.max() <= 0.12
    users = sim.users.merge(sim.installs, on="user_id")
    alive30 = (users["last_day"] >= 30).groupby(users["payer"]).mean()
    assert alive30[True] > 1.5 * alive30[False]  # payers are more retentive
    # iOS users pay more often; emulators almost never pay
    ios = (sim.installs["os"] == "ios").to_numpy()
    pays = sim.installs["user_id"].isin(paying).to_numpy()
    assert pays[ios].mean() > 1.2 * pays[~ios].mean()
    rev = sim.events.groupby("user_id")["revenue"].sum().reindex(sim.installs["user_id"])
    emu = (sim.installs["is_emulator"] == "true").to_numpy()
    assert rev[emu].mean() < 0.2 * rev[~emu].mean()


def test_revenue_is_heavy_tailed_and_promotions_spike(sim):
    rev = sim.events.loc[sim.events["revenue"] > 0, "revenue"]
    assert rev.max() > 20 * rev.median()
    by_user = sim.events.groupby("user_id")["revenue"].sum()
    top = by_user.sort_values(ascending=False)
    assert top.iloc[: max(1, len(top) // 1000)].sum() > 0.1 * top.sum()  # whales: top 0.1%
    promo = set()
    for first in sim.promotions:
        promo |= {first + pd.Timedelta(days=i) for i in range(3)}
    assert 2 <= len(sim.promotions) <= 3
    daily = sim.events.groupby("event_date")["revenue"].sum()
    active = sim.events.groupby("event_date").size()
    arpdau = (daily / active).loc["2026-01-01":"2026-12-31"]
    in_promo = arpdau.index.isin(list(promo))
    assert in_promo.any()
    assert arpdau[in_promo].mean() > 1.5 * arpdau[~in_promo].median()


def test_spend_has_roas_on_both_sides_of_one(sim):
    assert not sim.spend["campaign"].str.startswith("organic").any()
    assert (sim.spend["spend"] > 0).all()
    tr = truth(sim, horizons=[365]).set_index("campaign")
    sp = sim.spend.set_index("campaign")["spend"]
    roas = tr.loc[sp.index, "ltv"] * tr.loc[sp.index, "users"] / sp
    assert roas.max() > 1.5 and roas.min() < 0.6


# ----------------------------------------------------------------------------- purchase kind


def test_purchase_kind_every_event_is_a_purchase(purchase):
    ev, ins = purchase.events, purchase.installs
    assert list(ev.columns) == EVENT_COLUMNS and list(ins.columns) == INSTALL_COLUMNS
    assert (ev["revenue"] > 0).all()
    d = _days(ev, ins)
    assert set(ev["user_id"].to_numpy()[d == 0]) == set(ins["user_id"])
    assert d.min() == 0
    # mostly empty days: purchases per customer-year well below daily
    assert len(ev) / len(ins) < 20
    # long lifetimes (months) and repeat buyers
    assert (purchase.users["last_day"] >= 90).mean() > 0.2
    repeat = ev.loc[d > 0, "user_id"].nunique() / len(ins)
    assert 0.3 < repeat < 0.95
    tr = truth(purchase)
    for _, g in tr.groupby("campaign"):
        assert (np.diff(g["ltv"].to_numpy()) > 0).all()


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_sample_round_trip(tmp_path, fmt):
    info = write_sample(tmp_path, seed=5, install_days=10, observed_days=14, n_campaigns=6,
                        users_per_day=40.0, fmt=fmt)
    sim = simulate(seed=5, install_days=10, n_campaigns=6, users_per_day=40.0)
    as_of = sim.last_install + pd.Timedelta(days=13)
    assert info["as_of"] == as_of.strftime("%Y-%m-%d") == "2026-01-23"
    ext = "csv" if fmt == "csv" else "parquet"
    assert set(info["files"]) == {"events", "installs", "spend", "truth"}
    for name in ("events", "installs", "spend"):
        assert info["files"][name].endswith(f"{name}.{ext}")
    assert info["files"]["truth"].endswith("truth.csv")

    if fmt == "csv":
        ev = pd.read_csv(info["files"]["events"], dtype={"user_id": str, "event_date": str})
        ins = pd.read_csv(info["files"]["installs"], dtype=str)
        spend = pd.read_csv(info["files"]["spend"])
        assert ev["event_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
        assert ins["install_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
        ev["event_date"] = pd.to_datetime(ev["event_date"]).astype("datetime64[ns]")
        ins["install_date"] = pd.to_datetime(ins["install_date"]).astype("datetime64[ns]")
    else:
        ev = pd.read_parquet(info["files"]["events"])
        ins = pd.read_parquet(info["files"]["installs"])
        spend = pd.read_parquet(info["files"]["spend"])
        ev["event_date"] = pd.to_datetime(ev["event_date"]).astype("datetime64[ns]")
        ins["install_date"] = pd.to_datetime(ins["install_date"]).astype("datetime64[ns]")
    assert info["users"] == len(ins) and info["events"] == len(ev)
    assert list(ev.columns) == EVENT_COLUMNS and list(ins.columns) == INSTALL_COLUMNS

    want_ev, want_ins = cut(sim, as_of)
    assert ev["event_date"].max() == as_of
    np.testing.assert_array_equal(ev["user_id"].astype(str), want_ev["user_id"].astype(str))
    np.testing.assert_array_equal(ev["event_date"], want_ev["event_date"])
    np.testing.assert_array_equal(ev["revenue"].to_numpy(), want_ev["revenue"].to_numpy())
    for col in INSTALL_COLUMNS:
        np.testing.assert_array_equal(ins[col].astype(str) if col != "install_date" else ins[col],
                                      want_ins[col].astype(str) if col != "install_date"
                                      else want_ins[col])
    np.testing.assert_array_equal(spend["campaign"].astype(str), sim.spend["campaign"].astype(str))
    np.testing.assert_allclose(spend["spend"], sim.spend["spend"])

    tr = pd.read_csv(info["files"]["truth"])
    assert list(tr.columns) == ["campaign", "horizon_days", "users", "ltv"]
    want = truth(sim)
    np.testing.assert_array_equal(tr["campaign"].astype(str), want["campaign"].astype(str))
    np.testing.assert_allclose(tr["ltv"], want["ltv"], rtol=1e-12)

    # the truth at 7 and 14 days is fully observed in the written files: recompute it from them
    start = ins.set_index("user_id")["install_date"]
    day = (ev["event_date"].to_numpy() - start.loc[ev["user_id"]].to_numpy()
           ).astype("timedelta64[D]").astype(np.int64)
    camp = ins.set_index("user_id")["campaign"].loc[ev["user_id"]].to_numpy()
    users = ins["campaign"].value_counts()
    observed = truth(sim, horizons=(7, 14)).set_index(["campaign", "horizon_days"])["ltv"]
    for h in (7, 14):
        keep = day < h
        rev = pd.Series(ev["revenue"].to_numpy()[keep]).groupby(camp[keep]).sum()
        direct = (rev.reindex(users.index, fill_value=0.0) / users).sort_index()
        np.testing.assert_allclose(observed.xs(h, level="horizon_days").sort_index(), direct,
                                   rtol=1e-9)
    # the 30-day truth is not fully observed for late cohorts
    assert (tr.loc[tr["horizon_days"] == 30, "ltv"].to_numpy()
            >= observed.xs(14, level="horizon_days").sort_index().to_numpy() - 1e-12).all()


def test_write_sample_default_truth_at_30_days_matches_files(tmp_path):
    info = write_sample(tmp_path, seed=2, install_days=7, observed_days=30, n_campaigns=4)
    assert info["as_of"] == "2026-02-05"
    ev = pd.read_csv(info["files"]["events"], dtype={"user_id": str})
    ins = pd.read_csv(info["files"]["installs"], dtype=str)
    tr = pd.read_csv(info["files"]["truth"])
    day = (pd.to_datetime(ev["event_date"]).to_numpy()
           - pd.to_datetime(ins.set_index("user_id")["install_date"].loc[ev["user_id"]]).to_numpy()
           ).astype("timedelta64[D]").astype(np.int64)
    camp = ins.set_index("user_id")["campaign"].loc[ev["user_id"]].to_numpy()
    rev = pd.Series(ev["revenue"].to_numpy()[day < 30]).groupby(camp[day < 30]).sum()
    direct = rev / ins["campaign"].value_counts()
    got = tr[tr["horizon_days"] == 30].set_index("campaign")["ltv"]
    np.testing.assert_allclose(got.sort_index(), direct.sort_index(), rtol=1e-9)


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(SampleError, match="kind"):
        simulate(kind="shop")
    with pytest.raises(ValueError, match="n_campaigns"):
        simulate(n_campaigns=0)
    with pytest.raises(SampleError, match="start"):
        simulate(start="not a date")
    with pytest.raises(SampleError, match="fmt"):
        write_sample(tmp_path, fmt="xlsx")
    with pytest.raises(SampleError, match="observed_days"):
        write_sample(tmp_path, observed_days=0)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- size
# (How fast the generator is belongs to `make bench`, not to a timed test a loaded machine flips.)


def test_many_small_campaigns_stay_within_their_horizon():
    sim = simulate(seed=1, n_campaigns=300, install_days=10, users_per_day=10.0, horizon_days=60)
    assert sim.installs["campaign"].nunique() > 250
    assert _days(sim.events, sim.installs).max() <= 59
