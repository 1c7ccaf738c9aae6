"""The hierarchical BTYD model: numerics, parameter recovery, forecasts, cache and determinism.

Data are simulated from the model itself (BG/BB activity and dropout, beta-binomial paying,
lognormal–normal amounts) with known parameters, so recovery can be checked against the truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltvcore.models import btyd
from ltvcore.models.btyd import BTYDModel, _expected_curves, estimator, group_params
from tests.data.pandas_reference import attach_installs, build_cohorts
from tests.models.btyd_reference import bgbb_loglik_reference

# Per group: p ~ Beta(alpha, beta) daily activity while alive, theta ~ Beta(gamma, delta) daily
# death; paying day among active days: Beta(pay_a, pay_b) per (no day-0 purchase, day-0
# purchase); log amount ~ N(user mean ~ N(m, tau), sigma). As the model assumes, groups share
# theta's concentration (gamma + delta = 5), the paying Betas' concentrations, sigma and tau.
TRUTH = [
    dict(alpha=1.2, beta=0.8, gamma=0.65, delta=4.35, m=1.5),
    dict(alpha=2.0, beta=2.0, gamma=0.3, delta=4.7, m=1.2),
    dict(alpha=0.8, beta=1.5, gamma=1.05, delta=3.95, m=1.8),
]
SHARED: dict[str, Any] = dict(pay_a=(0.05, 0.5), pay_b=(5.0, 2.0), day0_share=0.05, day0_amount=2.0,
              sigma=0.8, tau=0.6)


def simulate(truth=TRUTH, users: int = 2000, days: int = 60, seed: int = 1,
             install_days: int = 1, campaign_prefix: str = "g"):
    """Events and installs of ``users`` per group observed for ``days`` days after the last install."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-01")
    ev_user, ev_day, ev_rev, inst_user, inst_day, inst_group = [], [], [], [], [], []
    first_id = 0
    for g, t in enumerate(truth):
        offset = rng.integers(0, install_days, users)
        age = (days - 1) + (install_days - 1 - offset)
        p = rng.beta(t["alpha"], t["beta"], users)
        theta = rng.beta(t["gamma"], t["delta"], users)
        day0_pay = rng.random(users) < SHARED["day0_share"]
        status = day0_pay.astype(int)
        pi = rng.beta(np.take(SHARED["pay_a"], status), np.take(SHARED["pay_b"], status))
        user_mean = rng.normal(t["m"], SHARED["tau"], users)
        death = rng.geometric(np.clip(theta, 1e-12, 1.0))        # first day dead, >= 1
        day = np.arange(1, int(age.max()) + 1)[None, :]
        alive = (day < death[:, None]) & (day <= age[:, None])
        active = alive & (rng.random(alive.shape) < p[:, None])
        paying = active & (rng.random(alive.shape) < pi[:, None])
        amount = np.exp(user_mean[:, None] + SHARED["sigma"] * rng.standard_normal(alive.shape))
        u, d = np.nonzero(active)
        ids = first_id + np.arange(users)
        ev_user += [ids, ids[u]]
        ev_day += [offset, offset[u] + d + 1]
        ev_rev += [np.where(day0_pay, SHARED["day0_amount"], 0.0),
                   np.where(paying[u, d], np.maximum(np.round(amount[u, d], 2), 0.01), 0.0)]
        inst_user.append(ids)
        inst_day.append(offset)
        inst_group += [f"{campaign_prefix}{g}"] * users
        first_id += users
    ids = np.concatenate(inst_user)
    installs = pd.DataFrame({"user_id": [f"u{i}" for i in ids],
                             "install_date": start + np.concatenate(inst_day).astype("timedelta64[D]"),
                             "campaign": inst_group})
    events = pd.DataFrame({"user_id": [f"u{i}" for i in np.concatenate(ev_user)],
                           "event_date": start + np.concatenate(ev_day).astype("timedelta64[D]"),
                           "revenue": np.concatenate(ev_rev)})
    as_of = start + np.timedelta64(install_days - 1 + days - 1, "D")
    return events, installs, as_of


def cohorts(events, installs, as_of, observe_days: int = 1):
    installs, user, age = attach_installs(events, installs)
    return build_cohorts(events, installs, user, age, by=["campaign"], as_of=as_of,
                         observe_days=observe_days, window_days=None)


@pytest.fixture(scope="module")
def data():
    return cohorts(*simulate())


@pytest.fixture(scope="module")
def map_model(data, tmp_path_factory):
    return BTYDModel(method="map", cache_dir=tmp_path_factory.mktemp("cache")).fit(data)


# ----------------------------------------------------------------------------- numerics


def test_bgbb_likelihood_matches_the_papers_sum_term_by_term(data):
    stats = btyd.collapse(data)
    params = [np.array([[1.2, 2.0, 0.8]]), np.array([[0.8, 2.0, 1.5]]),
              np.array([[0.6, 0.4, 0.8]]), np.array([[4.0, 6.0, 3.0]])]
    rows = btyd.bgbb_rows(*params, stats.act_group, stats.act_x, stats.act_tx, stats.act_n)
    pick = np.linspace(0, stats.act_group.size - 1, 200).astype(int)
    reference = [bgbb_loglik_reference(*(p[0, stats.act_group[i]] for p in params),
                                       stats.act_x[i], stats.act_tx[i], stats.act_n[i])
                 for i in pick]
    np.testing.assert_allclose(rows["log_lik"][0, pick], reference, rtol=1e-10, atol=1e-10)


def test_gradient_of_the_likelihood_matches_finite_differences(data):
    stats = btyd.collapse(data)
    rng = np.random.default_rng(0)
    latent = np.tile([0.3, 1.0, -2.0, 1.5, -4.5, 1.5, -1.3, 1.0, 0.1, -0.2, -0.5], (3, 1))
    latent = latent + 0.1 * rng.standard_normal(latent.shape)
    _, grad = btyd.latent_loglik(stats, latent, grad=True)
    step = 1e-5
    numeric = np.zeros_like(latent)
    for idx in np.ndindex(latent.shape):
        bump = np.zeros_like(latent)
        bump[idx] = step
        numeric[idx] = (btyd.latent_loglik(stats, latent + bump)
                        - btyd.latent_loglik(stats, latent - bump)) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4 * np.abs(numeric).max())


def test_users_collapse_to_few_weighted_rows(data):
    stats = btyd.collapse(data)
    users = len(data.user_group)
    assert stats.act_count.sum() == users == stats.pay_count.sum() == stats.pred_count.sum()
    assert len(stats.act_count) < users / 3
    # x active days after day 0, the last one at t_x, within n observed days
    assert np.all((stats.act_x <= stats.act_tx) & (stats.act_tx <= stats.act_n))
    assert np.all((stats.act_x == 0) == (stats.act_tx == 0))
    active_after_day0 = np.sum(data.user_day >= 1)
    assert np.dot(stats.act_count, stats.act_x) == active_after_day0


def test_fit_days_censors_the_likelihood_but_not_the_forecast_rows(data):
    full, short = btyd.collapse(data), btyd.collapse(data, fit_days=20)
    assert short.act_n.max() == 19 and full.act_n.max() == 59
    np.testing.assert_array_equal(short.pred_n, full.pred_n)


# ----------------------------------------------------------------------------- recovery


def _check_recovery(model: BTYDModel) -> None:
    for g, t in enumerate(TRUTH):
        got = model.params(g)["btyd"]
        # Beta means within 0.03; concentrations (α+β) within 35%.
        assert got["p_mean"] == pytest.approx(t["alpha"] / (t["alpha"] + t["beta"]), abs=0.03)
        assert got["theta_mean"] == pytest.approx(t["gamma"] / (t["gamma"] + t["delta"]),
                                                  abs=0.03)
        assert got["p_alpha"] + got["p_beta"] == pytest.approx(t["alpha"] + t["beta"], rel=0.35)
        assert got["theta_gamma"] + got["theta_delta"] == pytest.approx(t["gamma"] + t["delta"],
                                                                        rel=0.35)
        # Paying: P(pay | active) for users without / with a day-0 purchase.
        for suffix, s in (("", 0), ("_day0_payer", 1)):
            want = SHARED["pay_a"][s] / (SHARED["pay_a"][s] + SHARED["pay_b"][s])
            mean = got[f"pay_a{suffix}"] / (got[f"pay_a{suffix}"] + got[f"pay_b{suffix}"])
            assert mean == pytest.approx(want, rel=0.3)
        assert got["spend_log_mean"] == pytest.approx(t["m"], abs=0.25)
        assert got["spend_log_sd"] == pytest.approx(SHARED["sigma"], rel=0.15)
        assert got["spend_user_log_sd"] == pytest.approx(SHARED["tau"], rel=0.25)


def test_map_recovers_the_simulated_parameters(map_model):
    _check_recovery(map_model)


@pytest.mark.slow
def test_nuts_recovers_the_simulated_parameters_converges_on_the_forecast_and_is_deterministic(
        data, map_model):
    """Convergence is judged where it matters, on the forecast, in its own units.

    R-hat over every latent (hierarchical spreads of three groups included) is a noisy
    statistic at a few hundred draws: 1.02–1.10 across seeds and machines for the same
    well-behaved posterior. The two chains' means of each group's expected LTV are not: they
    agree within 0.1–0.9% (posterior sd about 2%), and NUTS agrees with the MAP fit within 0.5%.
    """
    draws = 300
    first = BTYDModel(method="nuts", draws=draws, tune=draws, chains=2, cache_dir=False).fit(data)
    _check_recovery(first)
    assert np.isfinite(first.params(0)["btyd"]["rhat_max"])
    sampled = group_params(first.posterior_.latent, first.stats_.spend_center)
    curves = _expected_curves(first.stats_, first.data_.revenue, sampled, 365)[..., [89, 179, 364]]
    per_chain = curves.reshape((2, draws) + curves.shape[1:]).mean(axis=1)
    np.testing.assert_allclose(per_chain[0], per_chain[1], rtol=0.03)
    horizons = [89, 179, 364]
    np.testing.assert_allclose(first.predict(365).ltv[:, horizons],
                               map_model.predict(365).ltv[:, horizons], rtol=0.03)
    # Same seed, same data: identical draws (chains run in parallel processes).
    second = BTYDModel(method="nuts", draws=draws, tune=draws, chains=2, cache_dir=False).fit(data)
    np.testing.assert_array_equal(first.posterior_.latent, second.posterior_.latent)
    np.testing.assert_array_equal(first.predict(90).upper, second.predict(90).upper)


# ----------------------------------------------------------------------------- forecast


def test_predict_gives_finite_monotone_curves_inside_their_intervals(map_model, data):
    curve = map_model.predict(365)
    for values in (curve.ltv, curve.lower, curve.upper):
        assert values.shape == (3, 365)
        assert np.isfinite(values).all()
        assert np.all(np.diff(values, axis=1) >= -1e-12)
    assert np.all(curve.lower <= curve.ltv + 1e-12) and np.all(curve.ltv <= curve.upper + 1e-12)
    # Observed days are observed revenue per user; the future adds to it.
    users = np.bincount(data.user_group, minlength=3)
    observed = np.cumsum(data.revenue, axis=1)[:, :60] / users[:, None]
    np.testing.assert_allclose(curve.ltv[:, :60], observed)
    assert np.all(curve.ltv[:, 364] > curve.ltv[:, 59])
    assert np.all(curve.upper[:, 364] > curve.lower[:, 364])


def test_interval_adds_realised_noise_and_extrapolation_to_the_posterior(map_model):
    """The credible band of the expected LTV is inside the forecast band, which widens with the
    extrapolation allowance; the point forecast does not move."""
    import copy

    draws = group_params(map_model.posterior_.latent, map_model.stats_.spend_center)
    curves = _expected_curves(map_model.stats_, map_model.data_.revenue, draws, 365)
    lo, hi = np.quantile(curves, [0.005, 0.995], axis=0)
    band = map_model.predict(365)
    assert np.all(band.lower <= lo + 1e-9) and np.all(band.upper >= hi - 1e-9)
    bare = copy.copy(map_model)
    bare.extrapolation_sd = 0.0
    narrow = bare.predict(365)
    np.testing.assert_array_equal(narrow.ltv, band.ltv)
    assert np.all(band.upper[:, 364] > narrow.upper[:, 364])
    assert map_model.params(0)["btyd"]["extrapolation_sd"] == map_model.extrapolation_sd


def test_forecast_matches_what_the_same_users_realise_later():
    """Fit on 60 of 180 simulated days: the 180-day forecast matches the users' own future."""
    events, installs, _ = simulate(days=180, seed=7)
    as_of = np.datetime64("2026-03-01")                      # day 59 of the single cohort
    seen = events[events["event_date"].to_numpy() <= as_of]
    model = BTYDModel(method="map", cache_dir=False).fit(cohorts(seen, installs, as_of))
    group = installs.set_index("user_id").loc[events["user_id"], "campaign"].to_numpy()
    realised = events.groupby(group)["revenue"].sum().reindex(["g0", "g1", "g2"]) / 2000
    forecast = model.predict(180)
    np.testing.assert_allclose(forecast.ltv[:, 179], realised.to_numpy(), rtol=0.12)
    # and the forecast added something over the 60 observed days
    assert np.all(forecast.ltv[:, 179] > 1.1 * forecast.ltv[:, 59])


def test_the_mode_stays_where_the_likelihood_is_exact_and_forecasts_the_long_horizon():
    """84 days of BG/NBD buyers pull θ's concentration up; past about e^30 float64 rounding
    made the log-likelihood jump to a positive value, L-BFGS followed it there, and the 365-day
    forecast missed by −45% with a 3%-wide interval. The mode search is boxed (``BOUNDS``)."""
    from benchmarks import processes
    from ltvcore.models.btyd.latents import BOUNDS, LATENTS
    from ltvcore.request import ForecastRequest
    from ltvcore.workflow.forecast import run_forecast

    sim = processes.simulate("bg_nbd", seed=2, observed=84, history=0)
    result = run_forecast(sim.inputs, ForecastRequest(as_of=sim.as_of, horizons=(365,)),
                          model="btyd:map", cache=False)
    params = [g["models"]["btyd"] for g in result.params["groups"]]
    assert all(p["map_converged"] for p in params)
    assert all(np.log(p["theta_gamma"] + p["theta_delta"]) <= BOUNDS[LATENTS.index("theta_log_conc")][1] + 1e-9
               for p in params)
    rows = result.forecast.merge(sim.expected, on=["campaign", "horizon_days"], suffixes=("", "_true"))
    error = rows["ltv"] / rows["ltv_true"] - 1
    assert error.abs().mean() < 0.12 and abs(error.mean()) < 0.08
    assert ((rows["ltv_lower"] <= rows["ltv_true"]) & (rows["ltv_true"] <= rows["ltv_upper"])).mean() >= 0.9


def test_an_unconverged_mode_is_a_warning_of_the_run(data, map_model):
    assert map_model.warnings == []
    stopped = BTYDModel(method="map", map_maxiter=2, cache_dir=False).fit(data)
    assert stopped.params(0)["btyd"]["map_converged"] is False
    assert any("stopped before converging" in w for w in stopped.warnings)


def test_a_group_without_eligible_users_gets_a_population_forecast(data):
    events, installs, as_of = simulate(users=300, days=30, seed=5)
    late = pd.DataFrame({"user_id": ["late-1", "late-2"], "install_date": [as_of, as_of],
                         "campaign": ["new", "new"]})
    late_events = pd.DataFrame({"user_id": ["late-1", "late-2"], "event_date": [as_of, as_of],
                                "revenue": [0.0, 1.0]})
    subset = cohorts(pd.concat([events, late_events], ignore_index=True),
                     pd.concat([installs, late], ignore_index=True), as_of, observe_days=7)
    assert subset.groups["fit_users"].tolist()[-1] == 0
    curve = BTYDModel(method="map", cache_dir=False).fit(subset).predict(90)
    assert np.isfinite(curve.ltv).all() and np.all(curve.ltv[-1] > 0)


def test_params_and_assumptions_are_recorded(map_model):
    params = map_model.params(1)
    assert set(params) == {"btyd"}
    entry = params["btyd"]
    assert entry["method"] == "map" and entry["seed"] == 0 and entry["users"] == 2000
    assert entry["map_converged"] is True
    assert "priors" in entry and "posterior_key" in entry
    assert len(map_model.assumptions) >= 4
    assert any("BG/BB" in a for a in map_model.assumptions)


def test_unknown_method_is_a_clear_error(data):
    with pytest.raises(ValueError, match="method must be one of"):
        BTYDModel(method="gibbs").fit(data)


# ----------------------------------------------------------------------------- cache


def test_posterior_is_cached_and_reused_without_sampling_again(data, tmp_path, monkeypatch):
    runs = []   # the inference runs of this test: a cache hit must not add one
    infer = estimator.infer

    def counted(stats, settings):
        runs.append(settings.method)
        return infer(stats, settings)

    monkeypatch.setattr(estimator, "infer", counted)
    first = BTYDModel(method="map", cache_dir=tmp_path).fit(data)
    assert runs == ["map"] and not first.from_cache_
    assert len(list(tmp_path.glob("*.npz"))) == 1

    again = BTYDModel(method="map", cache_dir=tmp_path).fit(data)
    assert runs == ["map"] and again.from_cache_
    assert again.cache_key_ == first.cache_key_
    np.testing.assert_array_equal(again.posterior_.latent, first.posterior_.latent)
    assert again.params(0) == first.params(0)
    np.testing.assert_array_equal(first.predict(120).ltv, again.predict(120).ltv)
    np.testing.assert_array_equal(first.predict(120).upper, again.predict(120).upper)

    # Different data or different settings: a new posterior.
    other = cohorts(*simulate(users=500, seed=2))
    assert not BTYDModel(method="map", cache_dir=tmp_path).fit(other).from_cache_
    assert len(runs) == 2
    assert not BTYDModel(method="map", seed=1, cache_dir=tmp_path).fit(data).from_cache_
    assert len(runs) == 3
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_cache_directory_defaults_to_the_environment(data, tmp_path, monkeypatch):
    from ltvcore.models.posterior_cache import PosteriorCache, default_cache_dir

    monkeypatch.setenv("LTV_CACHE_DIR", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    model = BTYDModel(method="map").fit(data)
    assert PosteriorCache().path(model.cache_key_).exists()


def test_cached_files_are_byte_identical_for_the_same_posterior(tmp_path):
    from ltvcore.models.posterior_cache import PosteriorCache

    arrays = {"latent": np.arange(6.0).reshape(2, 3), "flag": np.array(True)}
    one = PosteriorCache(tmp_path / "a").store("k" * 64, arrays, {"x": 1})
    two = PosteriorCache(tmp_path / "b").store("k" * 64, arrays, {"x": 1})
    assert one.read_bytes() == two.read_bytes()
    loaded, meta = PosteriorCache(tmp_path / "a").load("k" * 64)
    np.testing.assert_array_equal(loaded["latent"], arrays["latent"])
    assert meta["x"] == 1
    (tmp_path / "a" / f"{'k' * 64}.npz").write_bytes(b"not a zip")
    assert PosteriorCache(tmp_path / "a").load("k" * 64) is None


def test_map_is_deterministic_for_a_seed(data):
    one = BTYDModel(method="map", cache_dir=False).fit(data).predict(200)
    two = BTYDModel(method="map", cache_dir=False).fit(data).predict(200)
    for a, b in zip((one.ltv, one.lower, one.upper), (two.ltv, two.lower, two.upper)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_advi_runs_and_brackets_the_map_forecast(data, map_model):
    model = BTYDModel(method="advi", advi_steps=3000, draws=200, cache_dir=False).fit(data)
    curve, point = model.predict(180), map_model.predict(180)
    assert np.isfinite(curve.ltv).all()
    np.testing.assert_allclose(curve.ltv[:, -1], point.ltv[:, -1], rtol=0.15)


def test_gradient_of_the_sampling_density_matches_finite_differences(data):
    stats = btyd.collapse(data)
    settings = BTYDModel()._settings()
    mode = btyd.find_mode(stats, settings.priors, settings.map_maxiter)
    layout = btyd.sampling_layout(mode, mode.hessian)
    rng = np.random.default_rng(1)
    n_vary = layout.centred.shape[1]
    point = [layout.population_mean[btyd._SHARE] + 0.01 * rng.standard_normal(5),
             layout.population_spread * np.exp(0.1 * rng.standard_normal(n_vary)),
             0.5 * rng.standard_normal(n_vary), 0.5 * rng.standard_normal((3, n_vary))]

    def value(p):
        return btyd.sampling_density(stats, layout, settings.priors, *p)[0]

    _, grads = btyd.sampling_density(stats, layout, settings.priors, *point)
    for i, grad in enumerate(grads):
        numeric = np.zeros_like(point[i])
        for idx in np.ndindex(point[i].shape):
            bump = [p.copy() for p in point]
            bump[i][idx] += 1e-6
            up = value(bump)
            bump[i][idx] -= 2e-6
            numeric[idx] = (up - value(bump)) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-3)


def test_settings_record_only_what_the_method_uses():
    shared = ["method", "draws", "seed", "map_maxiter", "fit_days", "priors"]
    assert list(BTYDModel(method="map")._settings().record()) == shared
    assert list(BTYDModel(method="nuts")._settings().record()) == shared + [
        "tune", "chains", "target_accept"]
    assert list(BTYDModel(method="advi")._settings().record()) == shared + ["advi_steps"]
    record = BTYDModel(method="map", priors={"p_logit_mean": {"mean": 1.0}})._settings().record()
    assert record["priors"] == {"p_logit_mean": {"mean": 1.0}}
    assert BTYDModel(method="map")._settings().record()["priors"] == {
        k: dict(v) for k, v in btyd.PRIORS.items()}


def test_posterior_round_trips_through_the_cache_arrays(map_model):
    post = map_model.posterior_
    arrays = post.to_arrays()
    assert set(arrays) == {"latent", "mode_latent", "population_mean", "population_spread",
                           "map_converged", "laplace_clipped_eigenvalues"}
    back = btyd.Posterior.from_arrays(arrays)
    for name in ("latent", "mode_latent", "population_mean", "population_spread"):
        np.testing.assert_array_equal(getattr(back, name), getattr(post, name))
    assert back.diagnostics() == post.diagnostics()
    assert [type(v) for v in back.diagnostics().values()] == [bool, int]
    with pytest.raises(ValueError, match="unknown arrays"):
        btyd.Posterior.from_arrays({**arrays, "other": np.zeros(1)})
