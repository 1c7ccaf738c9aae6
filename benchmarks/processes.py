"""Customer processes with known parameters and a closed-form expected LTV, beyond ``ltv sample``.

The product's own generator (:mod:`ltvcore.sample`) scores against each campaign's *realised*
LTV, whose sampling noise (the benchmarks' noise floor, about 15% at 180 days for game data)
hides differences between good forecasts. These processes give each campaign's *expected* LTV
per user exactly, so a forecast is judged against what it estimates, and they come from the
literature's own models, so a model fitted to them can be checked for bias against a known
answer (and the one the peers were built for):

* ``pareto_nbd``: Pareto/NBD (Schmittlein, Morrison & Colombo 1987): purchases at rate
  ``λ ~ Gamma(r, α)`` while alive, lifetime ``~ Exp(μ)``, ``μ ~ Gamma(s, β)``;
  ``E[X(t)] = rβ/(α(s−1))·(1 − (β/(β+t))^(s−1))``.
* ``bg_nbd``: BG/NBD (Fader, Hardie & Lee 2005): the same purchases, death with probability
  ``q ~ Beta(a, b)`` after each repeat purchase;
  ``E[X(t)] = (a+b−1)/(a−1)·(1 − (α/(α+t))^r·₂F₁(r, b; a+b−1; t/(α+t)))``.
* ``bg_bb``: BG/BB on days (Fader, Hardie & Shang 2010): alive each day with ``1 − θ``,
  ``θ ~ Beta(γ, δ)``, active with ``p ~ Beta(α, β)``; ``E[X(n)] = E[p]·Σ_{t=1..n} B(γ, δ+t)/B(γ, δ)``.

  These three spend by Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): each purchase
  ``~ Gamma(p, ν)``, ``ν ~ Gamma(q, γ)``, mean ``pγ/(q−1)``; the first purchase is the install.
* ``game``: free-to-play players: half the campaigns with sBG lifetimes (daily churn
  ``θ ~ Beta(γ, δ)``), half with Weibull lifetimes of shape below 1 (a falling hazard); a login
  propensity ``π ~ Beta`` on each day alive; 2–8% payers, who buy on a login day with
  ``φ ~ Beta`` and spend lognormal amounts around their own mean. Expected LTV is
  ``P(payer)·E[φ]·E[amount]·(1 + E[π]·Σ_{t=1..h−1} S(t))``.

Each campaign draws its parameters from wide ranges (nothing here is fitted to a model), and
``history`` campaigns of the year before, drawn the same way, ride along fully matured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import betaln, hyp2f1

from ltvcore.workflow.forecast import Inputs, from_frames

__all__ = ["PROCESSES", "Simulated", "expected_ltv", "simulate"]

PROCESSES = ("game", "pareto_nbd", "bg_nbd", "bg_bb")
START = np.datetime64("2026-01-05", "D")
HISTORY_START = np.datetime64("2025-01-06", "D")


@dataclass
class Simulated:
    """What a forecast sees (``inputs`` up to ``as_of``) and the expected LTV per campaign."""

    process: str
    inputs: Inputs
    as_of: str
    expected: pd.DataFrame  # campaign, horizon_days, ltv (expected per user)
    params: pd.DataFrame  # each campaign's parameters


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def draw_params(process: str, rng: np.random.Generator) -> dict[str, float | str]:
    """One campaign's parameters (days as the time unit)."""
    if process == "game":
        law = "sbg" if rng.random() < 0.5 else "weibull"
        churn, conc = _uniform(rng, 0.08, 0.3), _uniform(rng, 0.5, 4.0)
        return {"law": law, "gamma": churn * conc, "delta": (1 - churn) * conc,
                "k": _uniform(rng, 0.3, 0.8), "lam": _uniform(rng, 3.0, 40.0),
                "login": _uniform(rng, 0.3, 0.7), "login_conc": _uniform(rng, 1.0, 5.0),
                "payers": _uniform(rng, 0.02, 0.08), "buy": _uniform(rng, 0.05, 0.3),
                "buy_conc": _uniform(rng, 1.0, 4.0), "mu": _uniform(rng, 0.0, 2.5),
                "sigma": _uniform(rng, 0.5, 1.2), "tau": _uniform(rng, 0.3, 1.0)}
    spend = {"gg_p": _uniform(rng, 2.0, 8.0), "gg_q": _uniform(rng, 2.5, 6.0)}
    spend["gg_gamma"] = _uniform(rng, 20.0, 80.0) * (spend["gg_q"] - 1) / spend["gg_p"]
    if process in ("pareto_nbd", "bg_nbd"):
        r = _uniform(rng, 0.3, 1.5)
        out = {"r": r, "alpha": r * _uniform(rng, 20.0, 150.0)}  # mean 1 purchase per 20–150 days
        if process == "pareto_nbd":
            s = _uniform(rng, 0.4, 1.6)
            out |= {"s": s, "beta": s * _uniform(rng, 60.0, 600.0)}  # mean lifetime-ish 60–600 days
        else:
            out |= {"a": _uniform(rng, 0.4, 1.5), "b": _uniform(rng, 1.5, 8.0)}
        return out | spend
    if process == "bg_bb":
        p, pc = _uniform(rng, 0.01, 0.06), _uniform(rng, 1.0, 6.0)
        th, tc = _uniform(rng, 0.002, 0.02), _uniform(rng, 1.0, 20.0) / 0.01
        tc = min(tc, 2000.0)
        return {"p_alpha": p * pc, "p_beta": (1 - p) * pc,
                "theta_gamma": th * tc, "theta_delta": (1 - th) * tc} | spend
    raise ValueError(f"unknown process {process!r} (known: {', '.join(PROCESSES)})")


def _game_survival(par: dict, t: np.ndarray) -> np.ndarray:
    if par["law"] == "sbg":
        return np.exp(betaln(par["gamma"], par["delta"] + t) - betaln(par["gamma"], par["delta"]))
    return np.exp(-((t / par["lam"]) ** par["k"]))


def expected_repeats(process: str, par: dict, t: np.ndarray) -> np.ndarray:
    """Expected repeat purchases (purchase processes) in ``(0, t)`` days."""
    t = np.asarray(t, dtype=float)
    if process == "pareto_nbd":
        r, a, s, b = par["r"], par["alpha"], par["s"], par["beta"]
        if abs(s - 1) < 1e-9:
            return r * b / a * np.log((b + t) / b)
        return r * b / (a * (s - 1)) * (1 - (b / (b + t)) ** (s - 1))
    if process == "bg_nbd":
        r, al, a, b = par["r"], par["alpha"], par["a"], par["b"]
        return (a + b - 1) / (a - 1) * (1 - (al / (al + t)) ** r * hyp2f1(r, b, a + b - 1, t / (al + t)))
    if process == "bg_bb":
        days = np.arange(1, int(t.max()) + 1)
        alive = np.exp(betaln(par["theta_gamma"], par["theta_delta"] + days)
                       - betaln(par["theta_gamma"], par["theta_delta"]))
        cum = np.concatenate([[0.0], np.cumsum(alive)])
        p = par["p_alpha"] / (par["p_alpha"] + par["p_beta"])
        return p * cum[np.minimum(t.astype(int) - 1, days.size)]  # days 1 … t−1
    raise ValueError(process)


def expected_ltv(process: str, par: dict, horizons) -> np.ndarray:
    """Expected revenue per user over days ``0 … h−1`` for each horizon ``h``."""
    h = np.asarray(horizons, dtype=float)
    if process == "game":
        t = np.arange(1, int(h.max()))
        cum = np.concatenate([[0.0], np.cumsum(_game_survival(par, t))])
        per_day = par["payers"] * par["buy"] * np.exp(par["mu"] + par["tau"] ** 2 / 2 + par["sigma"] ** 2 / 2)
        return per_day * (1 + par["login"] * cum[h.astype(int) - 1])
    amount = par["gg_p"] * par["gg_gamma"] / (par["gg_q"] - 1)
    return amount * (1 + expected_repeats(process, par, h))


def _beta(rng, mean: float, conc: float, n: int) -> np.ndarray:
    return rng.beta(mean * conc, (1 - mean) * conc, n)


def _purchase_days(process: str, par: dict, rng, n: int, span: int) -> tuple[np.ndarray, np.ndarray]:
    """(user index, day since install) of each repeat purchase within ``span`` days."""
    if process == "bg_bb":
        theta = rng.beta(par["theta_gamma"], par["theta_delta"], n)
        p = rng.beta(par["p_alpha"], par["p_beta"], n)
        alive = np.minimum(rng.geometric(np.clip(theta, 1e-12, 1)) - 1, span - 1)
        users = np.repeat(np.arange(n), alive)
        day = np.arange(users.size) - np.repeat(np.cumsum(alive) - alive, alive) + 1
        hit = rng.random(users.size) < p[users]
        return users[hit], day[hit]
    lam = rng.gamma(par["r"], 1 / par["alpha"], n)
    if process == "pareto_nbd":
        life = rng.exponential(1 / rng.gamma(par["s"], 1 / par["beta"], n))
        window = np.minimum(life, span)
        count = rng.poisson(lam * window)
        users = np.repeat(np.arange(n), count)
        times = rng.random(users.size) * window[users]
    else:  # bg_nbd: the first min(M, N) of M Poisson arrivals, N ~ Geometric(q) until death
        q = rng.beta(par["a"], par["b"], n)
        arrivals = rng.poisson(lam * span)
        kept = np.minimum(arrivals, rng.geometric(q))
        users = np.repeat(np.arange(n), arrivals)
        times = rng.random(users.size) * span
        order = np.lexsort((times, users))
        users, times = users[order], times[order]
        rank = np.arange(users.size) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
        keep = rank < kept[users]
        users, times = users[keep], times[keep]
    day = np.floor(times).astype(int)
    keep = day < span  # a repeat on the install day adds to that day's revenue
    return users[keep], day[keep]


def _gamma_gamma(par: dict, rng, users: np.ndarray, n: int) -> np.ndarray:
    nu = rng.gamma(par["gg_q"], 1 / par["gg_gamma"], n)
    return rng.gamma(par["gg_p"], 1 / nu[users])


def _game_days(par: dict, rng, n: int, span: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, day, revenue) of each login day after install, and revenue on day 0 per user."""
    if par["law"] == "sbg":
        theta = rng.beta(par["gamma"], par["delta"], n)
        life = rng.geometric(np.clip(theta, 1e-12, 1)) - 1  # days alive after day 0
    else:
        life = np.floor(par["lam"] * rng.weibull(par["k"], n)).astype(int)
    alive = np.minimum(life, span - 1)
    users = np.repeat(np.arange(n), alive)
    day = np.arange(users.size) - np.repeat(np.cumsum(alive) - alive, alive) + 1
    login = _beta(rng, par["login"], par["login_conc"], n)
    active = rng.random(users.size) < login[users]
    users, day = users[active], day[active]
    payer = rng.random(n) < par["payers"]
    buy = np.where(payer, _beta(rng, par["buy"], par["buy_conc"], n), 0.0)
    own_mu = rng.normal(par["mu"], par["tau"], n)

    def spend(who: np.ndarray) -> np.ndarray:
        bought = rng.random(who.size) < buy[who]
        return np.where(bought, np.exp(rng.normal(own_mu[who], par["sigma"])), 0.0)

    return users, day, spend(users), spend(np.arange(n))


def _campaign(process: str, par: dict, rng, name: str, start: np.datetime64, install_days: int,
              users: int, as_of: np.datetime64) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = np.array([f"{name}-{i:06d}" for i in range(users)])
    install = start + rng.integers(0, install_days, users).astype("timedelta64[D]")
    span = int((as_of - install.min()).astype(int)) + 1
    if process == "game":
        who, day, revenue, first = _game_days(par, rng, users, span)
    else:
        who, day = _purchase_days(process, par, rng, users, span)
        revenue, first = _gamma_gamma(par, rng, who, users), _gamma_gamma(par, rng, np.arange(users), users)
    when = install[who] + day.astype("timedelta64[D]")
    seen = when <= as_of
    events = pd.DataFrame({"user_id": np.concatenate([ids, ids[who[seen]]]),
                           "event_date": np.concatenate([install, when[seen]]),
                           "revenue": np.concatenate([first, revenue[seen]]).round(2)})
    installs = pd.DataFrame({"user_id": ids, "install_date": install, "campaign": name})
    return events, installs


def simulate(process: str, *, seed: int, n_campaigns: int = 12, users: int = 8400,
             install_days: int = 14, observed: int = 7, history: int = 0,
             horizons=(30, 90, 180, 365)) -> Simulated:
    """This year's ``n_campaigns`` observed ``observed`` days after their last install day."""
    rng = np.random.default_rng(seed)
    as_of = START + np.timedelta64(install_days - 1 + observed - 1, "D")
    events, installs, rows, params = [], [], [], []
    for c in range(n_campaigns + history):
        par = draw_params(process, rng)
        old = c >= n_campaigns
        name = f"c{c:02d}_2025" if old else f"c{c:02d}"
        ev, inst = _campaign(process, par, rng, name, HISTORY_START if old else START,
                             install_days, users, as_of)
        events.append(ev)
        installs.append(inst)
        params.append({"campaign": name, **par})
        if not old:
            for h, v in zip(horizons, expected_ltv(process, par, horizons)):
                rows.append({"campaign": name, "horizon_days": int(h), "ltv": float(v)})
    inputs = from_frames(pd.concat(events, ignore_index=True), pd.concat(installs, ignore_index=True),
                         None, names={"events": "events", "installs": "installs"})
    return Simulated(process=process, inputs=inputs, as_of=str(as_of), expected=pd.DataFrame(rows),
                     params=pd.DataFrame(params))
