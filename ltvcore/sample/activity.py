"""Activity and revenue: weekday effects, promotions and the user-day events."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # users.py imports the weekday effects from here
    from ltvcore.sample.users import Installs, Traits

#: Install volume by weekday (Monday first), normalised to mean 1.
_INSTALL_WEEKDAY = np.array([0.95, 0.92, 0.93, 0.96, 1.04, 1.13, 1.07])
_INSTALL_WEEKDAY = _INSTALL_WEEKDAY / _INSTALL_WEEKDAY.mean()
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
#: User-days materialised at once (bounds memory: ~50 bytes per cell at peak).
_CHUNK_CELLS = 2_000_000
_MAX_DAILY_SPEND = 500.0  # a game payer's purchases on one day are capped (store limits)


class Events(NamedTuple):
    """The active user-days: user positions, calendar days (since epoch) and revenue."""

    user: np.ndarray
    day: np.ndarray
    revenue: np.ndarray


def _weekday(days: np.ndarray) -> np.ndarray:
    """Weekday (Monday = 0) of days since the epoch."""
    return (days + _EPOCH_WEEKDAY) % 7


def _promotion_days(rng: np.random.Generator, day0: int, span: int) -> np.ndarray:
    """First days (days since epoch) of the 3-day promotions over ``span`` calendar days."""
    per_year = int(rng.integers(2, 4))
    n = max(1, int(round(per_year * span / 365.0)))
    n = min(n, max(1, span // 6))
    width = span / n
    starts = [int(i * width + rng.uniform(0, max(width - 3, 0))) for i in range(n)]
    return day0 + np.array(sorted(set(starts)), dtype=np.int64)


def _draw_promotions(rng: np.random.Generator, day0: int, span: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Promotion start days and a flag per calendar day ``day0 .. day0 + span``."""
    promos = _promotion_days(rng, day0, span)
    promo_flag = np.zeros(span + 1, dtype=bool)
    for p in promos:
        promo_flag[p - day0:p - day0 + 3] = True
    return promos, promo_flag


def _chunk_bounds(cells: np.ndarray) -> list[int]:
    """User positions splitting users into chunks of about ``_CHUNK_CELLS`` user-days each."""
    n_users = cells.size
    ends = np.cumsum(cells)
    bounds = [0]
    while bounds[-1] < n_users:
        done = int(ends[bounds[-1] - 1]) if bounds[-1] else 0
        nxt = int(np.searchsorted(ends, done + _CHUNK_CELLS, side="right"))
        bounds.append(max(nxt, bounds[-1] + 1))
    return bounds


def _draw_events(rng: np.random.Generator, camp: pd.DataFrame, installs: Installs,
                 traits: Traits, promo_flag: np.ndarray, day0: int, kind: str) -> Events:
    """Activity and revenue over user-days ``0 .. last``, in bounded chunks of users."""
    amount_user = traits.scale * np.where(traits.ios, 1.25 if kind == "game" else 1.15, 1.0)
    cells = traits.last + 1
    bounds = _chunk_bounds(cells)
    out_u: list[np.ndarray] = []
    out_d: list[np.ndarray] = []
    out_r: list[np.ndarray] = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        uid, day, date, cu, promo = _active_days(rng, camp, installs, traits, promo_flag, day0,
                                                 cells, lo, hi, kind)
        if kind == "game":
            rev = _game_revenue(rng, camp, traits.payer, amount_user, uid, day, cu, promo)
        else:
            rev = _purchase_revenue(rng, camp, amount_user, uid, cu, promo)
        out_u.append(uid)
        out_d.append(date)
        out_r.append(rev)
    return Events(np.concatenate(out_u), np.concatenate(out_d), np.concatenate(out_r))


def _active_days(rng: np.random.Generator, camp: pd.DataFrame, installs: Installs,
                 traits: Traits, promo_flag: np.ndarray, day0: int, cells: np.ndarray,
                 lo: int, hi: int, kind: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The active days of users ``lo .. hi-1``: user, day since install, date, campaign, promo."""
    cnt = cells[lo:hi]
    tot = int(cnt.sum())
    uid = np.repeat(np.arange(lo, hi, dtype=np.int64), cnt)
    first = np.repeat(np.cumsum(cnt) - cnt, cnt)
    day = np.arange(tot, dtype=np.int64) - first
    date = installs.day[uid] + day
    cu = installs.campaign[uid]
    weekend = _weekday(date) >= 5
    promo = promo_flag[date - day0]
    pr = traits.propensity[uid] * np.where(weekend, camp["weekend_boost"].to_numpy()[cu], 1.0)
    if kind == "game":
        pr = pr * np.where(promo, 1.1, 1.0)
    else:
        pr = pr * np.where(promo, 2.5, 1.0)
    active = (day == 0) | (rng.random(tot) < pr)
    return uid[active], day[active], date[active], cu[active], promo[active]


def _game_revenue(rng: np.random.Generator, camp: pd.DataFrame, payer: np.ndarray,
                  amount_user: np.ndarray, uid: np.ndarray, day: np.ndarray, cu: np.ndarray,
                  promo: np.ndarray) -> np.ndarray:
    """Revenue of active game user-days: payers buy with probability ``q`` (``q0`` on day 0)."""
    q0 = camp["buy_prob_day0"].to_numpy()
    q = camp["buy_prob"].to_numpy()
    mu = np.log(camp["amount_median"].to_numpy())
    sig = camp["amount_sigma"].to_numpy()
    rev = np.zeros(uid.size)
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
    return rev


def _purchase_revenue(rng: np.random.Generator, camp: pd.DataFrame, amount_user: np.ndarray,
                      uid: np.ndarray, cu: np.ndarray, promo: np.ndarray) -> np.ndarray:
    """Basket values of active purchase user-days (every active day is a purchase)."""
    mu = np.log(camp["amount_median"].to_numpy())
    sig = camp["amount_sigma"].to_numpy()
    amt = (np.exp(mu[cu] + sig[cu] * rng.standard_normal(uid.size)) * amount_user[uid]
           * np.where(promo, 0.9, 1.0))
    return np.maximum(np.round(amt, 2), 0.01)
