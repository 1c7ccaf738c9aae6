"""Campaigns: names, stratified traits, iOS and emulator shares, and the churn-law fits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, ndtri

__all__ = ["campaign_names"]

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
