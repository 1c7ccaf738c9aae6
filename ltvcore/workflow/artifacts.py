"""A run's files: ``forecast.csv``, ``curve.csv``, ``params.json`` and the input snapshot.

Every output of a successful run is finite and every JSON file strict JSON; a forecast that is
not (revenue or spend too extreme to compute with) is an input error, and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ltvcore.errors import InputError
from ltvcore.request import OUTPUT_COLUMNS

if TYPE_CHECKING:
    from ltvcore.workflow.forecast import ForecastResult

__all__ = ["RUN_INFO", "read_output_csv", "write_csv", "write_outputs", "write_snapshot"]

RUN_INFO = "run.json"  # staging-only bookkeeping, removed before the manifest is built
#: Only what needs spend may be absent (no spend for a campaign); nothing may be infinite.
_MAY_BE_EMPTY = ("spend", "roas", "roas_lower", "roas_upper", "p_payback")


def write_outputs(result: ForecastResult, staging: Path) -> list[Path]:
    """``forecast.csv``, ``curve.csv`` and ``params.json`` into a staging directory."""
    staging.mkdir(parents=True, exist_ok=True)
    for name, frame in (("forecast.csv", result.forecast), ("curve.csv", result.curve)):
        numbers = frame.select_dtypes("number")
        required = numbers.drop(columns=[c for c in _MAY_BE_EMPTY if c in numbers.columns])
        if np.isinf(numbers.to_numpy(dtype=float)).any() \
                or not np.isfinite(required.to_numpy(dtype=float)).all():
            raise InputError(f"the forecast in {name} is not finite: revenue or spend values "
                             "are too extreme to compute with")
    write_csv(result.forecast, staging / "forecast.csv")
    write_csv(result.curve, staging / "curve.csv")
    try:
        text = json.dumps(_strict(result.params), indent=2, default=_json_default, allow_nan=False)
    except ValueError:
        raise InputError("the fitted parameters are not finite: revenue or spend values are "
                         "too extreme to compute with") from None
    (staging / "params.json").write_text(text + "\n")
    return [staging / "forecast.csv", staging / "curve.csv", staging / "params.json"]


def _strict(value):
    """NaN (a value that does not exist, e.g. no ROAS without spend) as JSON null; infinities
    are left for ``allow_nan=False`` to refuse."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return None
    if isinstance(value, np.ndarray):
        return _strict(value.tolist())
    return value


def read_output_csv(source) -> pd.DataFrame:
    """``forecast.csv`` or ``curve.csv`` back as a frame: group columns stay text as written
    (``001`` is not ``1``), the product's numeric columns are numbers."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    numeric = OUTPUT_COLUMNS - {"model"}
    for column in frame.columns:
        if column in numeric:
            frame[column] = pd.to_numeric(frame[column].replace("", np.nan))
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV with money rounded to 1e-6 (rounding keeps cumulative columns non-decreasing).

    pyarrow's writer is an order of magnitude faster than pandas' for the daily curve.
    """
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = np.round(out[column].to_numpy(), 6)
        elif not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype(str)
    table = pa.Table.from_pandas(out, preserve_index=False)
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def write_snapshot(frames: dict[str, pd.DataFrame], staging: Path) -> dict[str, Path]:
    """The exact data a forecast uses, as Parquet under ``inputs/``."""
    folder = staging / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in frames.items():
        path = folder / f"{name}.parquet"
        out = frame.copy()
        for column in out.columns:
            if out[column].dtype == object:
                out[column] = out[column].astype(str)
        out.to_parquet(path, index=False, compression="zstd")
        paths[name] = path
    return paths












def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

