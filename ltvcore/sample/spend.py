"""Spend: each paid campaign's cost per install from its realised LTV and target ROAS."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltvcore.sample.activity import Events


def _draw_spend(rng: np.random.Generator, camp: pd.DataFrame, c: np.ndarray, events: Events,
                kind: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CPI from realised LTV at ``min(365, horizon)`` and the campaign's target ROAS.

    Returns
    -------
    campaigns : pandas.DataFrame
        A copy of ``camp`` with ``installs``, ``realised_ltv``, ``cpi`` and ``spend`` added.
    spend : pandas.DataFrame
        ``campaign``, ``spend`` for paid campaigns with at least one install.
    """
    n_c = len(camp)
    camp = camp.copy()
    names = camp["campaign"].to_numpy().astype(str)
    users_c = np.bincount(c, minlength=n_c)
    rev_c = np.bincount(c[events.user], weights=events.revenue, minlength=n_c)
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
    return camp, spend
