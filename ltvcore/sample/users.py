"""Users: installs per campaign and day, segments, payer status, propensities and lifetimes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ltvcore.sample.activity import _INSTALL_WEEKDAY, _weekday
from ltvcore.sample.errors import SampleError


class Installs(NamedTuple):
    """Users in install order: campaign position and install day (days since epoch)."""

    campaign: np.ndarray
    day: np.ndarray


class Traits(NamedTuple):
    """Hidden per-user traits (arrays over users in install order)."""

    ios: np.ndarray
    emulator: np.ndarray
    payer: np.ndarray
    propensity: np.ndarray
    scale: np.ndarray  # per-user amount factor (the whale factor)
    last: np.ndarray  # last day alive, capped at horizon_days - 1


def _draw_installs(rng: np.random.Generator, camp: pd.DataFrame, day0: int, install_days: int
                   ) -> Installs:
    """Poisson installs per (install day, campaign); users are numbered in install order.

    Raises
    ------
    SampleError
        The draw produced no installs.
    """
    n_c = len(camp)
    cal = day0 + np.arange(install_days, dtype=np.int64)
    weekday = _weekday(cal)
    rate = (_INSTALL_WEEKDAY[weekday][:, None] * camp["expected_users_per_day"].to_numpy()[None, :]
            * rng.gamma(30.0, 1.0 / 30.0, (install_days, n_c)))
    counts = rng.poisson(rate)
    n_users = int(counts.sum())
    if n_users == 0:
        raise SampleError("the simulation drew no installs; raise users_per_day or install_days")
    flat = counts.ravel()
    c = np.repeat(np.tile(np.arange(n_c), install_days), flat)
    inst = np.repeat(np.repeat(cal, n_c), flat)
    return Installs(c, inst)


def _user_ids(n_users: int) -> pd.api.extensions.ExtensionArray:
    """``u000001``, ``u000002``, ... (zero-padded to at least six digits), as a str array."""
    width = max(6, len(str(n_users)))
    # the numpy strings are a temporary: only the pandas array outlives this call
    return pd.array(np.char.add("u", np.char.zfill(np.arange(1, n_users + 1).astype(str), width)),
                    dtype="str")


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


def _draw_traits(rng: np.random.Generator, camp: pd.DataFrame, c: np.ndarray, kind: str,
                 horizon_days: int) -> Traits:
    """Segments (os, emulator), payer status, propensity, amount factor and last day alive."""
    n_users = c.size
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
    return Traits(ios, emu, payer, prop, scale, last)
