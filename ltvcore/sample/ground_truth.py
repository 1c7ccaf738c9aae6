"""The known truth (realised LTV) of a simulation, and what an analyst sees on a date (cut).

Named ``ground_truth`` rather than ``truth`` so that the module does not shadow, or is not
shadowed by, the :func:`truth` function re-exported by the package.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from ltvcore.sample.errors import SampleError
from ltvcore.sample.simulation import Simulation

__all__ = ["cut", "truth"]


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
