"""Synthetic mobile-game (or retail) data with a known truth, for the demo, tests and benchmarks.

The generative story
--------------------
Everything is drawn from one ``np.random.default_rng(seed)``, vectorised over users (the only
Python loops run over campaigns or over chunks of user-days), so a seed fixes the whole data set.

1. **Campaigns.** Names come from a fixed list (``fb_us_q1``, ``google_uac_kr``, ``tiktok_jp``,
   ``organic``, ...), cycled with a suffix ``_2``, ``_3``, ... past its end. Key traits are
   *stratified* across campaigns (each campaign gets its own slice of the range, shuffled), so
   campaigns always differ: size (a lognormal multiplier of ``users_per_day``, mean 1, roughly a
   10x spread), retention quality, login propensity, payer share and target ROAS.
2. **Installs.** Per campaign and calendar day, ``Poisson(users_per_day x size x weekday effect x
   Gamma noise)``; weekends bring more installs. Users are numbered ``u000001``, ... in install
   order. Segments: ``os`` (iOS share depends on the network: ``apple_search`` is all iOS,
   Google UAC mostly Android), ``channel`` (``organic`` for organic campaigns, else ``paid``),
   ``is_emulator`` (``"true"``/``"false"``; Android only, a few percent on some ad networks).
3. **Lifetimes.** Each user has a continuous lifetime ``T``; the last day alive is
   ``L = floor(T)``, so ``P(L >= t) = S(t)``. The churn *law* differs by campaign (cycled):
   ``sbg`` (churn probability theta ~ Beta(a, b), geometric lifetime, Fader-Hardie),
   ``weibull_lt1`` (Weibull, shape < 1: decreasing hazard), ``exp_mix`` (quick churners +
   loyal core, two exponentials) and ``weibull_gt1`` (quick churners + a core whose lifetime is
   Weibull with shape > 1: wear-out). Each law is fitted to the campaign's targets
   ``S(1)`` in 0.40-0.66 and ``S(30)`` in 0.05-0.17 (games), so day-1 activity is about
   25-55%, day-30 3-15% and day-180 0.5-5%, with different tails. A payer lives the longer
   of two draws, stretched 1.5-2.5x (payers retain better); emulators live 10x shorter.
4. **Activity.** Every user is active on day 0 (the install day). On days ``1..L`` a user is
   active with probability ``p x weekend boost`` where ``p ~ Beta`` is the user's login
   propensity (campaign mean 0.55-0.82, higher in better-retaining campaigns) and the weekend
   boost is 1.10-1.20 (x1.1 more on promotion days).
5. **Revenue (kind="game").** Payers are a user trait (campaign share 1.5-6.5%, x1.3 on iOS,
   x0.85 on Android, x0.05 for emulators). On an active day a payer buys with probability ``q``
   (0.08-0.22; ``q0`` 0.35-0.6 on day 0: starter packs); an amount is lognormal (campaign
   median 2.5-6, sigma 0.7-1.0) x a per-payer whale factor ``lognormal(0, 0.6-1.1)`` (heavy
   tail) x1.25 on iOS, capped at 500 a day; starter packs cost half the median. Non-payers never
   pay. A few global **promotions** (about 2-3 per year, 3 days each, the same calendar dates
   for everyone) multiply the purchase probability by 2.5 and amounts by 1.4.
6. **kind="purchase"** (retail / subscription-like): the laws are fitted to higher targets
   (``S(1)`` 0.55-0.85, ``S(30)`` 0.15-0.35) and lifetimes stretched 8-15x (months; many
   one-time buyers and a loyal core), every active day is a purchase (revenue > 0), the install
   day is the first purchase, and a customer buys on a later alive day with probability ``r``
   where ``r ~ Gamma`` (mean one purchase per 20-40 days, x weekend boost, x2.5 in promotions);
   basket values are lognormal (median 15-60, a per-customer factor, x1.15 on iOS).
7. **Spend.** Each paid campaign's cost per install is its realised LTV at ``min(365, horizon)``
   divided by a stratified target ROAS in 0.25-3.0 (x lognormal noise), so some campaigns pay
   back well and others far from it. Organic campaigns have no spend row (ROAS is undefined).

Revenue is rounded to cents inside the simulation, so :func:`truth` is exact for written files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import betaln, ndtri

from ltvcore.errors import InputError

__all__ = [
    "SampleError",
    "Simulation",
    "campaign_names",
    "cut",
    "simulate",
    "truth",
    "write_sample",
]

#: Base campaign names, cycled with ``_2``, ``_3``, ... when more campaigns are asked for.
_BASE_NAMES: tuple[str, ...] = (
    "fb_us_q1", "google_uac_kr", "tiktok_jp", "organic", "fb_kr_retarget", "apple_search_us",
    "unity_ads_global", "applovin_us", "google_uac_jp", "tiktok_us", "ironsource_tier2",
    "fb_jp_q1", "moloco_kr", "mintegral_sea", "snap_us", "google_uac_us",
)
#: Churn laws, cycled over campaigns (from a seed-dependent offset).
_LAWS: tuple[str, ...] = ("sbg", "weibull_lt1", "exp_mix", "weibull_gt1")
#: Ad networks with a visible share of emulator (fraud-ish) installs.
_EMULATOR_NETWORKS: tuple[str, ...] = ("unity", "ironsource", "mintegral", "applovin", "moloco")
#: Install volume by weekday (Monday first), normalised to mean 1.
_INSTALL_WEEKDAY = np.array([0.95, 0.92, 0.93, 0.96, 1.04, 1.13, 1.07])
_INSTALL_WEEKDAY = _INSTALL_WEEKDAY / _INSTALL_WEEKDAY.mean()
#: User-days materialised at once (bounds memory: ~50 bytes per cell at peak).
_CHUNK_CELLS = 2_000_000
_KINDS = ("game", "purchase")
_MAX_DAILY_SPEND = 500.0  # a game payer's purchases on one day are capped (store limits)
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


class SampleError(InputError, ValueError):
    """A bad argument to the sample generator (an :class:`InputError` and a ``ValueError``)."""


@dataclass(frozen=True)
class Simulation:
    """One simulated data set with its full, uncut future.

    Attributes
    ----------
    installs : pandas.DataFrame
        One row per user: ``user_id`` (str, ``u000001``...), ``install_date``
        (datetime64[ns], midnight), ``campaign``, ``os`` (``ios``/``android``), ``channel``
        (``paid``/``organic``), ``is_emulator`` (str ``"true"``/``"false"``).
    events : pandas.DataFrame
        The FULL simulated horizon after each install (not cut): ``user_id``, ``event_date``
        (datetime64[ns]), ``revenue`` (float >= 0, cents); one row per active user-day.
    spend : pandas.DataFrame
        ``campaign``, ``spend`` (float) for paid campaigns with at least one install.
    first_install, last_install : pandas.Timestamp
        The first and last install dates present in ``installs``.
    horizon_days : int
        Days simulated after each install (events cover days ``0 .. horizon_days - 1``).
    kind : str
        ``"game"`` or ``"purchase"``.
    campaigns : pandas.DataFrame
        The generative parameters of each campaign (churn law and its parameters, sizes,
        payer share, CPI, target ROAS, ...): the hidden truth, for benchmarks and tests.
    users : pandas.DataFrame
        Hidden per-user traits: ``user_id``, ``payer`` (bool), ``propensity`` (daily activity
        or purchase probability), ``last_day`` (last day alive, capped at ``horizon_days - 1``).
    promotions : tuple of pandas.Timestamp
        First days of the 3-day promotions.
    seed : int
        The seed the data was drawn with.
    """

    installs: pd.DataFrame
    events: pd.DataFrame
    spend: pd.DataFrame
    first_install: pd.Timestamp
    last_install: pd.Timestamp
    horizon_days: int = 365
    kind: str = "game"
    campaigns: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    users: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    promotions: tuple = ()
    seed: int | None = None


# ----------------------------------------------------------------------------- campaigns


def campaign_names(n: int) -> list[str]:
    """The deterministic list of ``n`` campaign names.

    Parameters
    ----------
    n : int
        Number of campaigns.

    Returns
    -------
    list of str
        ``fb_us_q1``, ``google_uac_kr``, ``tiktok_jp``, ``organic``, ...; past the end of the
        base list the names repeat with a suffix ``_2``, ``_3``, ...
    """
    base = len(_BASE_NAMES)
    return [_BASE_NAMES[i % base] + ("" if i < base else f"_{i // base + 1}") for i in range(n)]


def _strata(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniforms in (0, 1), one per stratum ``[i/n, (i+1)/n)``, in shuffled order."""
    return (rng.permutation(n) + rng.uniform(0.02, 0.98, n)) / n


def _ios_share(name: str) -> float:
    if "apple" in name:
        return 1.0
    if "uac" in name:
        return 0.12
    if "_kr" in name:
        return 0.30
    if "_jp" in name:
        return 0.62
    if "_us" in name:
        return 0.55
    return 0.35


def _fit_sbg(s1: np.ndarray, s30: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) of the sBG with ``S(1) = s1`` and ``S(30) = s30`` (vectorised bisection).

    With ``b = a s1 / (1 - s1)``, ``S(30) = B(a, b + 30) / B(a, b)`` decreases in ``a``.
    """
    lo = np.full(s1.shape, math.log(1e-3))
    hi = np.full(s1.shape, math.log(50.0))
    ratio = s1 / (1.0 - s1)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        a = np.exp(mid)
        b = a * ratio
        s = np.exp(betaln(a, b + 30.0) - betaln(a, b))
        too_high = s > s30  # survival too high -> heterogeneity too large -> raise a
        lo = np.where(too_high, mid, lo)
        hi = np.where(too_high, hi, mid)
    a = np.exp(0.5 * (lo + hi))
    return a, a * ratio


def _campaign_table(rng: np.random.Generator, n: int, users_per_day: float, kind: str
                    ) -> pd.DataFrame:
    """Draw the per-campaign generative parameters."""
    names = campaign_names(n)
    organic = np.array([nm.startswith("organic") for nm in names])
    quality = _strata(rng, n)
    quality = np.where(organic, np.maximum(quality, 0.6), quality)  # organic users retain well
    size = np.exp(0.75 * ndtri(_strata(rng, n)))
    size = size / size.mean()
    offset = int(rng.integers(len(_LAWS)))
    law = np.array([_LAWS[(i + offset) % len(_LAWS)] for i in range(n)], dtype=object)

    if kind == "game":
        s1 = np.clip(0.40 + 0.26 * quality + rng.normal(0, 0.02, n), 0.38, 0.68)
        s30 = np.clip(0.05 + 0.12 * quality + rng.normal(0, 0.01, n), 0.045, 0.18)
    else:
        s1 = np.clip(0.55 + 0.30 * quality + rng.normal(0, 0.02, n), 0.50, 0.88)
        s30 = np.clip(0.15 + 0.20 * quality + rng.normal(0, 0.01, n), 0.12, 0.40)

    # Law parameters, each fitted to (s1, s30); unused ones are NaN.
    nan = np.full(n, np.nan)
    a, b, k, lam, w, m1, m2 = (nan.copy() for _ in range(7))
    sb = law == "sbg"
    if sb.any():
        a[sb], b[sb] = _fit_sbg(s1[sb], s30[sb])
    wl = law == "weibull_lt1"
    k[wl] = np.log(np.log(s30[wl]) / np.log(s1[wl])) / math.log(30.0)
    lam[wl] = (-np.log(s1[wl])) ** (-1.0 / k[wl])
    mx = (law == "exp_mix") | (law == "weibull_gt1")
    em = law == "exp_mix"
    m2[em] = 80.0 + 20.0 * quality[em]
    wg = law == "weibull_gt1"
    k[wg] = rng.uniform(1.1, 1.5, n)[wg]
    lam[wg] = 90.0 + 50.0 * quality[wg]
    core30 = np.where(em, np.exp(-30.0 / np.where(em, m2, 1.0)),
                      np.exp(-(30.0 / np.where(wg, lam, 1.0)) ** np.where(wg, k, 1.0)))
    core1 = np.where(em, np.exp(-1.0 / np.where(em, m2, 1.0)),
                     np.exp(-(1.0 / np.where(wg, lam, 1.0)) ** np.where(wg, k, 1.0)))
    loyal = np.clip(s30 / core30, 0.01, 0.6)  # share of the loyal core
    quick1 = np.clip((s1 - loyal * core1) / (1.0 - loyal), 0.05, 0.95)  # quick churners' S(1)
    w[mx] = (1.0 - loyal)[mx]
    m1[mx] = (-1.0 / np.log(quick1))[mx]

    ios = np.clip(np.array([_ios_share(nm) for nm in names]) + rng.normal(0, 0.04, n), 0.0, 1.0)
    ios[[("apple" in nm) for nm in names]] = 1.0
    noisy = np.array([any(net in nm for net in _EMULATOR_NETWORKS) for nm in names])
    emulator = np.where(noisy, rng.uniform(0.03, 0.08, n), rng.uniform(0.003, 0.015, n))
    emulator = np.where(organic, 0.002, emulator)  # share among Android users

    table: dict[str, Any] = {
        "campaign": names,
        "channel": np.where(organic, "organic", "paid"),
        "size": size,
        "expected_users_per_day": users_per_day * size,
        "ios_share": ios,
        "emulator_share_android": emulator,
        "law": law,
        "quality": quality,
        "s1_target": s1,
        "s30_target": s30,
        "sbg_a": a, "sbg_b": b,
        "weibull_k": k, "weibull_lambda": lam,
        "quick_share": w, "quick_mean": m1, "loyal_mean": m2,
        "weekend_boost": rng.uniform(1.10, 1.20, n),
    }
    if kind == "game":
        table.update({
            "time_scale": np.ones(n),
            "propensity_mean": 0.55 + 0.27 * (0.5 * quality + 0.5 * _strata(rng, n)),
            "propensity_concentration": rng.uniform(4.0, 10.0, n),
            "payer_share": 0.015 + 0.05 * _strata(rng, n),
            "payer_boost": rng.uniform(1.5, 2.5, n),
            "buy_prob_day0": rng.uniform(0.35, 0.60, n),
            "buy_prob": rng.uniform(0.08, 0.22, n),
            "amount_median": rng.uniform(2.5, 6.0, n),
            "amount_sigma": rng.uniform(0.7, 1.0, n),
            "whale_sigma": rng.uniform(0.6, 1.1, n),
        })
    else:
        rate_mean = 1.0 / rng.uniform(20.0, 40.0, n)
        table.update({
            "time_scale": rng.uniform(8.0, 15.0, n),
            "propensity_mean": rate_mean,
            "propensity_concentration": rng.uniform(1.0, 3.0, n),  # Gamma shape of the rate
            "payer_share": np.ones(n),
            "payer_boost": np.ones(n),
            "buy_prob_day0": np.ones(n),
            "buy_prob": np.ones(n),
            "amount_median": rng.uniform(15.0, 60.0, n),
            "amount_sigma": rng.uniform(0.4, 0.8, n),
            "whale_sigma": rng.uniform(0.2, 0.4, n),
        })
    roas = np.exp(math.log(0.25) + _strata(rng, n) * (math.log(3.0) - math.log(0.25)))
    table["roas_target"] = np.where(organic, np.nan, roas)
    return pd.DataFrame(table)


# ----------------------------------------------------------------------------- users


def _lifetimes(rng: np.random.Generator, camp: pd.DataFrame, c: np.ndarray) -> np.ndarray:
    """Continuous lifetimes ``T`` (before payer/emulator/time-scale stretches) for users ``c``."""
    n = c.size
    law = camp["law"].to_numpy()[c]
    e = rng.standard_exponential(n)
    u = rng.random(n)
    t = np.empty(n)

    sb = law == "sbg"
    if sb.any():
        theta = rng.beta(camp["sbg_a"].to_numpy()[c[sb]], camp["sbg_b"].to_numpy()[c[sb]])
        with np.errstate(divide="ignore"):
            hazard = -np.log1p(-np.minimum(theta, 1.0 - 1e-15))
            t[sb] = np.where(hazard > 0, e[sb] / np.maximum(hazard, 1e-300), np.inf)

    k = camp["weibull_k"].to_numpy()[c]
    lam = camp["weibull_lambda"].to_numpy()[c]
    wl = law == "weibull_lt1"
    t[wl] = lam[wl] * e[wl] ** (1.0 / k[wl])

    mx = (law == "exp_mix") | (law == "weibull_gt1")
    quick = mx & (u < camp["quick_share"].to_numpy()[c])
    t[quick] = camp["quick_mean"].to_numpy()[c[quick]] * e[quick]
    core_exp = (law == "exp_mix") & ~quick
    t[core_exp] = camp["loyal_mean"].to_numpy()[c[core_exp]] * e[core_exp]
    core_wb = (law == "weibull_gt1") & ~quick
    t[core_wb] = lam[core_wb] * e[core_wb] ** (1.0 / k[core_wb])
    return t


def _promotion_days(rng: np.random.Generator, day0: int, span: int) -> np.ndarray:
    """First days (days since epoch) of the 3-day promotions over ``span`` calendar days."""
    per_year = int(rng.integers(2, 4))
    n = max(1, int(round(per_year * span / 365.0)))
    n = min(n, max(1, span // 6))
    width = span / n
    starts = [int(i * width + rng.uniform(0, max(width - 3, 0))) for i in range(n)]
    return day0 + np.array(sorted(set(starts)), dtype=np.int64)


def _to_ns(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[ns]")


def _validate(seed: Any, start: Any, install_days: Any, n_campaigns: Any, users_per_day: Any,
              horizon_days: Any, kind: Any) -> pd.Timestamp:
    def positive_int(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SampleError(f"{name} must be a positive integer, got {value!r}")

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SampleError(f"seed must be a non-negative integer, got {seed!r}")
    positive_int("install_days", install_days)
    positive_int("n_campaigns", n_campaigns)
    positive_int("horizon_days", horizon_days)
    if (isinstance(users_per_day, bool) or not isinstance(users_per_day, (int, float, np.number))
            or not np.isfinite(users_per_day) or users_per_day <= 0):
        raise SampleError(f"users_per_day must be a positive number, got {users_per_day!r}")
    if kind not in _KINDS:
        raise SampleError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    try:
        stamp = pd.Timestamp(start)
    except (ValueError, TypeError) as exc:
        raise SampleError(f"start must be a date YYYY-MM-DD, got {start!r}") from exc
    if pd.isna(stamp):
        raise SampleError(f"start must be a date YYYY-MM-DD, got {start!r}")
    return stamp.normalize()


def simulate(*, seed: int = 7, start: str = "2026-01-01", install_days: int = 30,
             n_campaigns: int = 12, users_per_day: float = 60.0, horizon_days: int = 365,
             kind: str = "game") -> Simulation:
    """Simulate installs, the full activity/revenue future and spend of ``n_campaigns`` campaigns.

    Parameters
    ----------
    seed : int, default 7
        Seed of ``np.random.default_rng``; the same arguments give identical data.
    start : str, default "2026-01-01"
        First install date.
    install_days : int, default 30
        Number of consecutive install dates (cohorts).
    n_campaigns : int, default 12
        Number of campaigns (names from :func:`campaign_names`).
    users_per_day : float, default 60.0
        Mean installs per campaign and day (campaign sizes vary around it, mean 1x).
    horizon_days : int, default 365
        Days simulated after each install: events cover days ``0 .. horizon_days - 1``.
    kind : {"game", "purchase"}, default "game"
        ``"game"``: daily logins, few payers. ``"purchase"``: retail/subscription-like, every
        event is a purchase.

    Returns
    -------
    Simulation
        Installs, uncut events, spend and the hidden generative parameters.

    Raises
    ------
    SampleError
        An argument is out of range, or the draw produced no installs.
    """
    start_ts = _validate(seed, start, install_days, n_campaigns, users_per_day, horizon_days, kind)
    rng = np.random.default_rng(int(seed))
    camp = _campaign_table(rng, n_campaigns, float(users_per_day), kind)
    n_c = n_campaigns
    day0 = int(np.datetime64(start_ts.date(), "D").astype(np.int64))
    span = install_days + horizon_days - 1
    promos = _promotion_days(rng, day0, span)
    promo_flag = np.zeros(span + 1, dtype=bool)
    for p in promos:
        promo_flag[p - day0:p - day0 + 3] = True

    # --- installs: Poisson per (install day, campaign), users numbered in install order
    cal = day0 + np.arange(install_days, dtype=np.int64)
    weekday = (cal + _EPOCH_WEEKDAY) % 7
    rate = (_INSTALL_WEEKDAY[weekday][:, None] * camp["expected_users_per_day"].to_numpy()[None, :]
            * rng.gamma(30.0, 1.0 / 30.0, (install_days, n_c)))
    counts = rng.poisson(rate)
    n_users = int(counts.sum())
    if n_users == 0:
        raise SampleError("the simulation drew no installs; raise users_per_day or install_days")
    flat = counts.ravel()
    c = np.repeat(np.tile(np.arange(n_c), install_days), flat)
    inst = np.repeat(np.repeat(cal, n_c), flat)
    width = max(6, len(str(n_users)))
    ids = np.char.add("u", np.char.zfill(np.arange(1, n_users + 1).astype(str), width))

    # --- user traits
    ios = rng.random(n_users) < camp["ios_share"].to_numpy()[c]
    emu = ~ios & (rng.random(n_users) < camp["emulator_share_android"].to_numpy()[c])
    if kind == "game":
        share = camp["payer_share"].to_numpy()[c] * np.where(ios, 1.3, 0.85)
        payer = rng.random(n_users) < share * np.where(emu, 0.05, 1.0)
        pm = camp["propensity_mean"].to_numpy()[c]
        kappa = camp["propensity_concentration"].to_numpy()[c]
        prop = rng.beta(pm * kappa, (1.0 - pm) * kappa)
    else:
        payer = np.ones(n_users, dtype=bool)
        shape = camp["propensity_concentration"].to_numpy()[c]
        prop = np.minimum(rng.gamma(shape, camp["propensity_mean"].to_numpy()[c] / shape), 1.0)
    scale = np.exp(camp["whale_sigma"].to_numpy()[c] * rng.standard_normal(n_users))
    t = _lifetimes(rng, camp, c)
    if kind == "game":
        # payers are more retentive: the longer of two lifetimes, then stretched
        t[payer] = np.maximum(t[payer], _lifetimes(rng, camp, c[payer]))
        t = t * np.where(payer, camp["payer_boost"].to_numpy()[c], 1.0)
    t = t * camp["time_scale"].to_numpy()[c] * np.where(emu, 0.1, 1.0)
    last = np.floor(np.minimum(t, horizon_days - 1)).astype(np.int64)

    # --- activity and revenue over user-days 0..last, in bounded chunks of users
    wk_boost = camp["weekend_boost"].to_numpy()
    q0 = camp["buy_prob_day0"].to_numpy()
    q = camp["buy_prob"].to_numpy()
    mu = np.log(camp["amount_median"].to_numpy())
    sig = camp["amount_sigma"].to_numpy()
    amount_user = scale * np.where(ios, 1.25 if kind == "game" else 1.15, 1.0)
    cells = last + 1
    ends = np.cumsum(cells)
    bounds = [0]
    while bounds[-1] < n_users:
        done = int(ends[bounds[-1] - 1]) if bounds[-1] else 0
        nxt = int(np.searchsorted(ends, done + _CHUNK_CELLS, side="right"))
        bounds.append(max(nxt, bounds[-1] + 1))
    out_u: list[np.ndarray] = []
    out_d: list[np.ndarray] = []
    out_r: list[np.ndarray] = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        cnt = cells[lo:hi]
        tot = int(cnt.sum())
        uid = np.repeat(np.arange(lo, hi, dtype=np.int64), cnt)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        day = np.arange(tot, dtype=np.int64) - first
        date = inst[uid] + day
        cu = c[uid]
        weekend = (date + _EPOCH_WEEKDAY) % 7 >= 5
        promo = promo_flag[date - day0]
        pr = prop[uid] * np.where(weekend, wk_boost[cu], 1.0)
        if kind == "game":
            pr = pr * np.where(promo, 1.1, 1.0)
        else:
            pr = pr * np.where(promo, 2.5, 1.0)
        active = (day == 0) | (rng.random(tot) < pr)
        uid, day, date = uid[active], day[active], date[active]
        cu, promo = cu[active], promo[active]
        rev = np.zeros(uid.size)
        if kind == "game":
            payer_cell = np.flatnonzero(payer[uid])
            d0 = day[payer_cell] == 0
            buy_p = np.where(d0, q0[cu[payer_cell]], q[cu[payer_cell]])
            buy_p = np.minimum(buy_p * np.where(promo[payer_cell], 2.5, 1.0), 1.0)
            buys = payer_cell[rng.random(payer_cell.size) < buy_p]
            cb = cu[buys]
            med = mu[cb] + np.where(day[buys] == 0, math.log(0.5), 0.0)
            s = np.where(day[buys] == 0, 0.5, sig[cb])
            amt = (np.exp(med + s * rng.standard_normal(buys.size)) * amount_user[uid[buys]]
                   * np.where(promo[buys], 1.4, 1.0))
            rev[buys] = np.clip(np.round(amt, 2), 0.01, _MAX_DAILY_SPEND)
        else:
            amt = (np.exp(mu[cu] + sig[cu] * rng.standard_normal(uid.size)) * amount_user[uid]
                   * np.where(promo, 0.9, 1.0))
            rev = np.maximum(np.round(amt, 2), 0.01)
        out_u.append(uid)
        out_d.append(date)
        out_r.append(rev)
    ev_u = np.concatenate(out_u)
    ev_d = np.concatenate(out_d)
    ev_r = np.concatenate(out_r)

    names = camp["campaign"].to_numpy().astype(str)
    user_ids = pd.array(ids, dtype="str")
    del ids
    installs = pd.DataFrame({
        "user_id": user_ids,
        "install_date": _to_ns(inst),
        "campaign": pd.array(names[c], dtype="str"),
        "os": pd.array(np.where(ios, "ios", "android"), dtype="str"),
        "channel": pd.array(camp["channel"].to_numpy().astype(str)[c], dtype="str"),
        "is_emulator": pd.array(np.where(emu, "true", "false"), dtype="str"),
    })
    events = pd.DataFrame({
        "user_id": user_ids.take(ev_u),
        "event_date": _to_ns(ev_d),
        "revenue": ev_r,
    })

    # --- spend: CPI from realised LTV at min(365, horizon) and the campaign's target ROAS
    users_c = np.bincount(c, minlength=n_c)
    rev_c = np.bincount(c[ev_u], weights=ev_r, minlength=n_c)
    ltv_c = np.divide(rev_c, users_c, out=np.zeros(n_c), where=users_c > 0)
    floor = 0.10 if kind == "game" else 2.0
    noise = np.exp(rng.normal(0, 0.15, n_c))
    cpi = np.round(np.maximum(ltv_c / camp["roas_target"].to_numpy() * noise, floor), 2)
    camp["installs"] = users_c
    camp["realised_ltv"] = ltv_c
    camp["cpi"] = np.where(camp["channel"] == "organic", 0.0, cpi)
    camp["spend"] = np.round(camp["cpi"].to_numpy() * users_c, 2)
    paid = (camp["channel"] == "paid").to_numpy() & (users_c > 0)
    spend = pd.DataFrame({
        "campaign": pd.array(names[paid], dtype="str"),
        "spend": camp["spend"].to_numpy()[paid].astype(float),
    })

    users = pd.DataFrame({
        "user_id": user_ids,
        "payer": payer,
        "propensity": prop,
        "last_day": last,
    })
    return Simulation(
        installs=installs,
        events=events,
        spend=spend,
        first_install=pd.Timestamp(_to_ns(inst.min(keepdims=True))[0]),
        last_install=pd.Timestamp(_to_ns(inst.max(keepdims=True))[0]),
        horizon_days=int(horizon_days),
        kind=kind,
        campaigns=camp,
        users=users,
        promotions=tuple(pd.Timestamp(x) for x in _to_ns(promos)),
        seed=int(seed),
    )


# ----------------------------------------------------------------------------- truth and cut


def truth(sim: Simulation, by: list[str] = ["campaign"],  # noqa: B006 (never mutated)
          horizons: Iterable[int] = (30, 90, 180, 365)) -> pd.DataFrame:
    """Realised LTV per group and horizon, from the full (uncut) simulation.

    Parameters
    ----------
    sim : Simulation
        The simulation.
    by : list of str, default ["campaign"]
        Installs columns defining the groups (a single name is accepted too).
    horizons : iterable of int, default (30, 90, 180, 365)
        Horizons ``H``; each must be ``<= sim.horizon_days``.

    Returns
    -------
    pandas.DataFrame
        One row per group x horizon: the ``by`` columns, ``horizon_days``, ``users`` and
        ``ltv`` = total revenue of the group's users on their days ``0 .. H-1`` divided by the
        number of users in the group. Sorted by group, then horizon.

    Raises
    ------
    SampleError
        Unknown ``by`` column, or a horizon outside ``1 .. sim.horizon_days``.
    """
    cols = [by] if isinstance(by, str) else list(by)
    if not cols:
        raise SampleError("by must name at least one installs column")
    missing = [col for col in cols if col not in sim.installs.columns]
    if missing:
        raise SampleError(f"unknown by column(s) {', '.join(missing)}; installs has "
                          f"{', '.join(sim.installs.columns)}")
    hs = [int(h) for h in horizons]
    bad = [h for h in hs if h < 1 or h > sim.horizon_days]
    if bad:
        raise SampleError(f"horizon(s) {bad} outside 1..{sim.horizon_days} (the simulated days)")
    if not hs:
        raise SampleError("horizons must not be empty")

    inst = sim.installs
    pos = pd.Index(inst["user_id"]).get_indexer(sim.events["user_id"])
    if (pos < 0).any():
        raise SampleError("events hold users without an install row")
    inst_day = inst["install_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    ev_day = sim.events["event_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    day = ev_day - inst_day[pos]
    rev = sim.events["revenue"].to_numpy(dtype=float)
    codes, uniques = pd.MultiIndex.from_frame(inst[cols]).factorize() if len(cols) > 1 else \
        pd.factorize(inst[cols[0]], sort=False)
    codes = np.asarray(codes)
    order = np.arange(len(uniques))
    n_groups = len(uniques)
    users = np.bincount(codes, minlength=n_groups)
    frames = []
    for h in hs:
        keep = day < h
        total = np.bincount(codes[pos[keep]], weights=rev[keep], minlength=n_groups)
        part = pd.DataFrame({"_g": order, "horizon_days": h, "users": users,
                             "ltv": total / users})
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    if len(cols) > 1:
        keys = pd.DataFrame(list(uniques), columns=cols)
    else:
        keys = pd.DataFrame({cols[0]: np.asarray(uniques, dtype=object)})
    for col in cols:
        keys[col] = keys[col].astype(inst[col].dtype)
    out = keys.iloc[out["_g"].to_numpy()].reset_index(drop=True).join(out.drop(columns="_g"))
    out = out.sort_values(cols + ["horizon_days"], kind="stable").reset_index(drop=True)
    out["users"] = out["users"].astype(np.int64)
    return out


def _as_of(as_of: Any) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(as_of)
    except (ValueError, TypeError) as exc:
        raise SampleError(f"as_of must be a date YYYY-MM-DD, got {as_of!r}") from exc
    if pd.isna(stamp):
        raise SampleError(f"as_of must be a date YYYY-MM-DD, got {as_of!r}")
    return stamp.normalize()


def cut(sim: Simulation, as_of: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What an analyst could see on ``as_of``.

    Parameters
    ----------
    sim : Simulation
        The simulation.
    as_of : str or datetime-like
        The last date whose data is visible.

    Returns
    -------
    events : pandas.DataFrame
        Events with ``event_date <= as_of``.
    installs : pandas.DataFrame
        Installs with ``install_date <= as_of``.
    """
    stamp = _as_of(as_of)
    events = sim.events.loc[sim.events["event_date"] <= stamp].reset_index(drop=True)
    installs = sim.installs.loc[sim.installs["install_date"] <= stamp].reset_index(drop=True)
    return events, installs


# ----------------------------------------------------------------------------- files


def _date_text(values: pd.Series) -> np.ndarray:
    return values.to_numpy().astype("datetime64[D]").astype(str)


def _write(frame: pd.DataFrame, path: Path, fmt: str, date_cols: Sequence[str]) -> None:
    if fmt == "csv":
        out = frame.copy()
        for col in date_cols:
            out[col] = _date_text(out[col])
        out.to_csv(path, index=False, float_format="%.2f", lineterminator="\n")
        return
    arrays = {}
    for col in frame.columns:
        if col in date_cols:
            arrays[col] = pa.array(frame[col].to_numpy().astype("datetime64[D]"), type=pa.date32())
        elif frame[col].dtype.kind == "f":
            arrays[col] = pa.array(frame[col].to_numpy(dtype=float), type=pa.float64())
        else:
            arrays[col] = pa.array(frame[col].astype(object).to_numpy(), type=pa.string())
    pq.write_table(pa.table(arrays), path)


def write_sample(out_dir: str | Path, *, seed: int = 7, install_days: int = 30,
                 observed_days: int = 30, n_campaigns: int = 12, users_per_day: float = 60.0,
                 kind: str = "game", fmt: str = "csv") -> dict:
    """Simulate a year and write what an analyst would have on the as-of date, plus the truth.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Directory to write into (created if missing; files of the same names are replaced).
    seed, install_days, n_campaigns, users_per_day, kind
        As for :func:`simulate` (365 days are simulated after each install).
    observed_days : int, default 30
        Days observed after the last install date: ``as_of = last install + observed_days - 1``.
    fmt : {"csv", "parquet"}, default "csv"
        Format of ``events``, ``installs`` and ``spend``; ``truth.csv`` is always CSV.

    Returns
    -------
    dict
        ``{"as_of": "YYYY-MM-DD", "files": {"events", "installs", "spend", "truth": path},
        "users": installs rows written, "events": event rows written}``.

    Notes
    -----
    CSV dates are ``YYYY-MM-DD`` and revenue has two decimals; Parquet dates are ``date32``.
    ``truth.csv`` holds :func:`truth` by campaign at 30, 90, 180 and 365 days, computed from the
    same cent-rounded revenue as ``events``, so it is exact for the written data.
    """
    if fmt not in ("csv", "parquet"):
        raise SampleError(f"fmt must be csv or parquet, got {fmt!r}")
    if (isinstance(observed_days, bool) or not isinstance(observed_days, (int, np.integer))
            or observed_days < 1):
        raise SampleError(f"observed_days must be a positive integer, got {observed_days!r}")
    sim = simulate(seed=seed, install_days=install_days, n_campaigns=n_campaigns,
                   users_per_day=users_per_day, horizon_days=365, kind=kind)
    as_of = sim.last_install + pd.Timedelta(days=int(observed_days) - 1)
    events, installs = cut(sim, as_of)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ext = "csv" if fmt == "csv" else "parquet"
    files = {name: out / f"{name}.{ext}" for name in ("events", "installs", "spend")}
    files["truth"] = out / "truth.csv"
    _write(events, files["events"], fmt, ["event_date"])
    _write(installs, files["installs"], fmt, ["install_date"])
    _write(sim.spend, files["spend"], fmt, [])
    truth(sim, ["campaign"], (30, 90, 180, 365)).to_csv(files["truth"], index=False,
                                                         lineterminator="\n")
    return {
        "as_of": as_of.strftime("%Y-%m-%d"),
        "files": {name: str(path) for name, path in files.items()},
        "users": int(len(installs)),
        "events": int(len(events)),
    }
