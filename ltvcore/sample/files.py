"""Sample files: simulate, cut on the as-of date and write events, installs, spend and truth."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ltvcore.sample.errors import SampleError
from ltvcore.sample.ground_truth import cut, truth
from ltvcore.sample.simulation import simulate

__all__ = ["MAX_CAMPAIGNS", "MAX_INSTALL_DAYS", "MAX_OBSERVED_DAYS", "MAX_USERS", "write_sample"]


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


#: Bounds of a sample: a few million users at most, simulated in seconds to a minute.
MAX_INSTALL_DAYS = 730
MAX_OBSERVED_DAYS = 730
MAX_CAMPAIGNS = 500
MAX_USERS = 5_000_000


def _check_size(*, install_days, observed_days, n_campaigns, users_per_day) -> None:
    for name, value, high in (("install_days", install_days, MAX_INSTALL_DAYS),
                              ("observed_days", observed_days, MAX_OBSERVED_DAYS),
                              ("campaigns", n_campaigns, MAX_CAMPAIGNS)):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
                and not 1 <= value <= high:
            raise SampleError(f"{value} is out of range [1, {high}]", column=name)
    if isinstance(users_per_day, (int, float)) and not isinstance(users_per_day, bool):
        if not np.isfinite(users_per_day) or users_per_day <= 0:
            raise SampleError(f"{users_per_day} must be a positive number", column="users_per_day")
        if isinstance(install_days, (int, np.integer)) and isinstance(n_campaigns, (int, np.integer)) \
                and users_per_day * install_days * n_campaigns > MAX_USERS:
            raise SampleError(f"{users_per_day:g} users a day × {install_days} days × "
                              f"{n_campaigns} campaigns is over {MAX_USERS:,} users",
                              column="users_per_day")


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
    _check_size(install_days=install_days, observed_days=observed_days, n_campaigns=n_campaigns,
                users_per_day=users_per_day)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SampleError(f"{out} exists and is not a directory", column="out")
    sim = simulate(seed=seed, install_days=install_days, n_campaigns=n_campaigns,
                   users_per_day=users_per_day, horizon_days=365, kind=kind)
    as_of = sim.last_install + pd.Timedelta(days=int(observed_days) - 1)
    events, installs = cut(sim, as_of)
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
