"""The simulation: the :class:`Simulation` result and :func:`simulate`, a sequence of stages.

Every stage takes the one generator and what earlier stages produced; the stages run in a
fixed order, so the generator is called in the same order and a seed fixes the whole data set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ltvcore.sample.activity import Events, _draw_events, _draw_promotions
from ltvcore.sample.campaigns import _campaign_table
from ltvcore.sample.errors import SampleError
from ltvcore.sample.spend import _draw_spend
from ltvcore.sample.users import Installs, Traits, _draw_installs, _draw_traits, _user_ids

__all__ = ["Simulation", "simulate"]

_KINDS = ("game", "purchase")


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


def _frames(camp: pd.DataFrame, installs: Installs, traits: Traits, events: Events
            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The ``installs``, ``events`` and hidden ``users`` frames (no random draws)."""
    c = installs.campaign
    names = camp["campaign"].to_numpy().astype(str)
    user_ids = _user_ids(c.size)
    installs_df = pd.DataFrame({
        "user_id": user_ids,
        "install_date": _to_ns(installs.day),
        "campaign": pd.array(names[c], dtype="str"),
        "os": pd.array(np.where(traits.ios, "ios", "android"), dtype="str"),
        "channel": pd.array(camp["channel"].to_numpy().astype(str)[c], dtype="str"),
        "is_emulator": pd.array(np.where(traits.emulator, "true", "false"), dtype="str"),
    })
    events_df = pd.DataFrame({
        "user_id": user_ids.take(events.user),
        "event_date": _to_ns(events.day),
        "revenue": events.revenue,
    })
    users_df = pd.DataFrame({
        "user_id": user_ids,
        "payer": traits.payer,
        "propensity": traits.propensity,
        "last_day": traits.last,
    })
    return installs_df, events_df, users_df


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
    # The stages draw from rng in this order; reordering them changes every generated byte.
    camp = _campaign_table(rng, n_campaigns, float(users_per_day), kind)
    day0 = int(np.datetime64(start_ts.date(), "D").astype(np.int64))
    promos, promo_flag = _draw_promotions(rng, day0, install_days + horizon_days - 1)
    installs = _draw_installs(rng, camp, day0, install_days)
    traits = _draw_traits(rng, camp, installs.campaign, kind, horizon_days)
    events = _draw_events(rng, camp, installs, traits, promo_flag, day0, kind)
    camp, spend = _draw_spend(rng, camp, installs.campaign, events, kind)
    installs_df, events_df, users_df = _frames(camp, installs, traits, events)
    return Simulation(
        installs=installs_df,
        events=events_df,
        spend=spend,
        first_install=pd.Timestamp(_to_ns(installs.day.min(keepdims=True))[0]),
        last_install=pd.Timestamp(_to_ns(installs.day.max(keepdims=True))[0]),
        horizon_days=int(horizon_days),
        kind=kind,
        campaigns=camp,
        users=users_df,
        promotions=tuple(pd.Timestamp(x) for x in _to_ns(promos)),
        seed=int(seed),
    )
