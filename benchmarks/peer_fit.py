"""Peer forecast: pymc-marketing's BG/NBD + Gamma-Gamma, applied as its documentation does.

Runs inside the peer venv only (``.bench/peer-venv``, see ``benchmarks/peer.py``): it imports
the peer library, pandas and numpy, never ``ltvcore``, so the peer owes nothing to our code.

    python benchmarks/peer_fit.py CASE_DIR

reads ``CASE_DIR/events.parquet`` (user_id, event_date, revenue; one row per active user-day,
cut at as-of), ``installs.parquet`` (user_id, install_date, campaign) and ``request.json``
(``as_of``, ``horizons``), and writes ``forecast.csv`` (campaign, horizon_days, ltv) and
``fit.json`` (fitted parameters, user counts, timings).

What a library user would do with this data:

1. The transaction log is the purchases: the days with revenue > 0 (for purchase-style data,
   every active day; for a game, the paying days: a login without revenue is no transaction,
   and the Gamma-Gamma model cannot take a zero spend: with login days as transactions its
   conditional mean hands non-payers a payer's spend, about +700% at 180 days).
   ``clv.rfm_summary`` with daily periods gives ``frequency`` (repeat purchase days),
   ``recency``, ``T`` (age at as-of from the first purchase, which is the install day for
   purchase-style data) and ``monetary_value`` (mean revenue of the repeat purchase days).
2. One ``BetaGeoModel`` and one ``GammaGammaModel`` fitted by MAP on ALL customers pooled
   (every campaign, including last year's matured ones: the library has no campaign level, and
   a user fits one model to the customer base). Gamma-Gamma is fitted, as documented, on the
   customers with at least one repeat purchase.
3. Per customer and horizon ``H``, with ``A`` the age at as-of counted from the install (``T``
   for purchase-style data): observed revenue on days ``0 .. min(A, H-1)`` plus
   ``expected_purchases(future_t = H-1-A)`` (purchase days in ``(A, H-1]``; none once the user
   is older than ``H-1``) times ``expected_customer_spend``
   (the Gamma-Gamma conditional mean, applied to every customer as the documentation does).
   A user without any purchase is not a customer yet and adds nothing beyond observed revenue
   (zero). LTV_H of a campaign is the mean over its installed users.

Assumptions of the peer (where it can break on our data): stationary purchase rate while alive,
geometric dropout at transactions, spend independent of frequency and Gamma-distributed, no
weekly or promotion effects, no campaign differences beyond what a user's own history shows.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, rfm_summary


def _mean_over_draws(values) -> np.ndarray:
    """A MAP fit is one draw; average chain and draw away and keep the customer order."""
    return values.mean(dim=[d for d in ("chain", "draw") if d in values.dims]).to_numpy()


def forecast(events: pd.DataFrame, installs: pd.DataFrame, as_of: str,
             horizons: list[int]) -> tuple[pd.DataFrame, dict]:
    """Per-campaign LTV per installed user at each horizon, and what was fitted."""
    timings = {}
    started = time.perf_counter()
    purchases = events[events["revenue"] > 0]
    rfm = rfm_summary(purchases, "user_id", "event_date", "revenue",
                      observation_period_end=as_of, time_unit="D")
    timings["rfm_s"] = time.perf_counter() - started

    started = time.perf_counter()
    bgm = BetaGeoModel()
    bgm.fit(data=rfm[["customer_id", "frequency", "recency", "T"]], method="map",
            progressbar=False)
    timings["bgnbd_s"] = time.perf_counter() - started

    started = time.perf_counter()
    spenders = rfm[rfm["frequency"] > 0]
    ggm = GammaGammaModel()
    ggm.fit(data=spenders[["customer_id", "frequency", "monetary_value"]], method="map",
            progressbar=False)
    spend = _mean_over_draws(ggm.expected_customer_spend(data=rfm))
    timings["gamma_gamma_s"] = time.perf_counter() - started

    started = time.perf_counter()
    install_date = installs.set_index("user_id")["install_date"].astype("datetime64[s]")
    age = ((purchases["event_date"].astype("datetime64[s]").to_numpy()
            - install_date.reindex(purchases["user_id"]).to_numpy()) // np.timedelta64(1, "D"))
    users = pd.Index(rfm["customer_id"])
    campaign = installs.set_index("user_id")["campaign"].reindex(users).to_numpy()
    age_at_as_of = ((pd.Timestamp(as_of) - install_date.reindex(users)).dt.days).to_numpy()
    per_user = {}
    for h in horizons:
        observed = (purchases.loc[age < h].groupby("user_id")["revenue"].sum()
                    .reindex(users, fill_value=0.0).to_numpy())
        future_t = np.clip(h - 1 - age_at_as_of, 0.0, None)
        expected = _mean_over_draws(bgm.expected_purchases(
            data=rfm[["customer_id", "frequency", "recency", "T"]], future_t=future_t))
        per_user[h] = observed + expected * spend
    timings["predict_s"] = time.perf_counter() - started

    frame = pd.DataFrame({"campaign": campaign, **{h: per_user[h] for h in horizons}})
    # Users without a purchase are not in the RFM table; they count with zero revenue.
    n_users = installs.groupby("campaign").size()
    totals = frame.groupby("campaign")[list(horizons)].sum().reindex(n_users.index, fill_value=0)
    ltv = totals.div(n_users, axis=0)
    out = (ltv.rename_axis(columns="horizon_days").stack().rename("ltv").reset_index()
           [["campaign", "horizon_days", "ltv"]])

    fitted = {name: float(_mean_over_draws(model.fit_result[name]))
              for model, names in ((bgm, ("r", "alpha", "a", "b")), (ggm, ("p", "q", "v")))
              for name in names}
    # MAP reports no convergence flag: refuse what would be silently wrong.
    if fitted["q"] <= 1 or not np.isfinite(out["ltv"]).all() or (out["ltv"] < 0).any():
        raise SystemExit(f"peer fit unusable: Gamma-Gamma q={fitted['q']:.3g} (needs > 1 for a "
                         f"finite mean spend) or a non-finite / negative LTV; params {fitted}")
    info = {"library": "pymc-marketing", "method": "map", "params": fitted,
            "customers": int(len(rfm)), "installs": int(len(installs)),
            "gamma_gamma_customers": int(len(spenders)),
            "timings_s": {k: round(v, 2) for k, v in timings.items()}}
    return out, info


def main(case_dir: str) -> None:
    started = time.perf_counter()
    case = Path(case_dir)
    request = json.loads((case / "request.json").read_text())
    events = pd.read_parquet(case / "events.parquet")
    installs = pd.read_parquet(case / "installs.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out, info = forecast(events, installs, request["as_of"], list(request["horizons"]))
    info["total_s"] = round(time.perf_counter() - started, 2)
    out.to_csv(case / "forecast.csv", index=False)
    (case / "fit.json").write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
