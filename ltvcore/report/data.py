"""Read a run's artifacts (docs/interface.md, a run's files) into the shape the report needs.

The report is written while the run is being staged, before ``manifest.json``; everything here
therefore treats the manifest as optional.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ltvcore import decision
from ltvcore.report.observed import Observed, read_observed

__all__ = ["RunView", "load_run", "MAIN_HORIZON", "DOWNLOADS"]

MAIN_HORIZON = decision.MAIN_HORIZON

FORECAST_FILE = "forecast.csv"
CURVE_FILE = "curve.csv"
PARAMS_FILE = "params.json"
MANIFEST_FILE = "manifest.json"
#: The files a report links to: they sit next to it in every run (docs/interface.md, section 4).
DOWNLOADS = (FORECAST_FILE, CURVE_FILE, PARAMS_FILE)

_FORECAST_REQUIRED = ("horizon_days", "users", "ltv", "ltv_lower", "ltv_upper", "model")
_FORECAST_NUMERIC = ("horizon_days", "users", "ltv", "ltv_lower", "ltv_upper",
                     "spend", "roas", "roas_lower", "roas_upper", "p_payback")
_ROAS_COLUMNS = ("spend", "roas", "roas_lower", "roas_upper")
_CURVE_REQUIRED = ("day", "ltv", "ltv_lower", "ltv_upper")


@dataclass(frozen=True)
class RunView:
    """A run's artifacts, parsed; group keys are tuples of strings in ``by`` order."""

    run_dir: Path
    by: list[str]
    forecast: pd.DataFrame
    curve: pd.DataFrame
    params: dict[str, Any]
    manifest: dict[str, Any] | None
    run_id: str | None
    request: dict[str, Any]
    as_of: str | None
    warnings: list[str]
    assumptions: list[str]
    horizons: list[int] = field(default_factory=list)

    @cached_property  # asked once per table row
    def has_spend(self) -> bool:
        return all(c in self.forecast.columns for c in _ROAS_COLUMNS) and bool(
            self.forecast["spend"].notna().any())

    @property
    def main_horizon(self) -> int:
        return decision.main_horizon(self.horizons)

    @property
    def target_roas(self) -> float:
        value = self.request.get("target_roas")
        return float(value) if isinstance(value, (int, float)) and value > 0 else 1.0

    @cached_property
    def decisions(self) -> list[decision.Decision]:
        """:func:`ltvcore.decision.decide` on this run's rows: ranked, labelled groups."""
        if "p_payback" not in self.forecast.columns:
            return []
        return decision.decide(self.forecast.to_dict("records"), self.by,
                               horizon=self.main_horizon, limits=self.thresholds,
                               payback=decision.payback_days(self.params, self.by))

    @cached_property
    def thresholds(self) -> decision.Thresholds:
        return decision.recorded(self.params)

    @cached_property
    def _labels(self) -> dict[tuple[str, ...], str]:
        return {d.group: d.label for d in self.decisions}

    @cached_property
    def observed(self) -> Observed | None:
        """The groups' activity before as-of, from the run's input snapshot (None without one)."""
        request = dict(self.request)
        request.setdefault("as_of", self.as_of)
        return read_observed(self.run_dir, request, self.by)

    @cached_property
    def _models(self) -> dict[tuple[str, ...], dict[str, Any]]:
        found = {}
        for group in self.params.get("groups") or []:
            if isinstance(group, dict) and isinstance(group.get("key"), dict) \
                    and isinstance(group.get("models"), dict):
                key = tuple("" if group["key"].get(c) is None else str(group["key"][c])
                            for c in self.by)
                found[key] = group["models"]
        return found

    def models_of(self, key: tuple[str, ...]) -> dict[str, Any]:
        """The fitted parameters params.json records for one group ({} when none)."""
        return self._models.get(key, {})

    def last_observed_day(self, key: tuple[str, ...]) -> int | None:
        """The group's oldest cohort's age at as-of: days after it are projected, not seen."""
        recorded = (self.models_of(key).get("curve") or {}).get("last_observed_day")
        if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 0:
            return recorded
        observed = self.observed
        return None if observed is None else observed.last_day.get(key)

    @property
    def max_horizon(self) -> int:
        return max(self.horizons)

    @property
    def models(self) -> list[str]:
        return sorted({str(m) for m in self.forecast["model"] if str(m)})

    def key(self, row: pd.Series) -> tuple[str, ...]:
        return tuple(str(row[c]) for c in self.by)

    def rows_at(self, horizon: int) -> pd.DataFrame:
        return self.forecast[self.forecast["horizon_days"] == horizon]

    def label(self, row: pd.Series) -> str | None:
        """The group's decision label, on its main-horizon row only (None elsewhere)."""
        if int(row["horizon_days"]) != self.main_horizon:
            return None
        return self._labels.get(self.key(row))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _read_csv(path: Path, required: tuple[str, ...], numeric: tuple[str, ...],
              key_end: str) -> tuple[pd.DataFrame, list[str]]:
    # Everything as text first: group values such as "007" or "NA" must stay what the user wrote.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    by = list(frame.columns[: list(frame.columns).index(key_end)])
    for column in numeric:
        if column in frame.columns:
            text = frame[column]
            try:
                frame[column] = pd.to_numeric(text.mask(text.str.strip() == ""),
                                              errors="raise").astype("float64")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}: column {column} is not numeric ({exc})") from exc
    for column in frame.columns:
        if column not in numeric:
            frame[column] = frame[column].astype(object)
    return frame, by


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as handle:
        value = json.load(handle)
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return value


def _text_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def load_run(run_dir: Path, run_id: str | None = None, observed: Observed | None = None) -> RunView:
    """Parse ``forecast.csv``, ``curve.csv``, ``params.json`` and, if present, ``manifest.json``;
    ``observed``: the groups' activity when the caller has it already (else read on demand from
    the run's snapshot)."""
    run_dir = Path(run_dir)
    forecast, by = _read_csv(run_dir / FORECAST_FILE, _FORECAST_REQUIRED, _FORECAST_NUMERIC,
                             "horizon_days")
    if forecast.empty:
        raise ValueError(f"{run_dir / FORECAST_FILE}: no rows")
    curve, curve_by = _read_csv(run_dir / CURVE_FILE, _CURVE_REQUIRED, _CURVE_REQUIRED, "day")
    if curve_by != by:
        raise ValueError(f"{run_dir / CURVE_FILE}: group columns {curve_by} differ from "
                         f"{FORECAST_FILE}'s {by}")
    params = _read_json(run_dir / PARAMS_FILE) or {}
    manifest = _read_json(run_dir / MANIFEST_FILE)
    meta = manifest or {}

    request = params.get("request") or meta.get("request") or {}
    if not isinstance(request, dict):
        request = {}
    as_of = params.get("as_of") or meta.get("as_of") or request.get("as_of")
    horizons = sorted({int(h) for h in forecast["horizon_days"].dropna()})
    if not horizons:
        raise ValueError(f"{run_dir / FORECAST_FILE}: no horizon_days values")
    view = RunView(
        run_dir=run_dir,
        by=by,
        forecast=forecast,
        curve=curve,
        params=params,
        manifest=manifest,
        run_id=run_id or meta.get("run_id") or params.get("run_id"),
        request=request,
        as_of=None if as_of is None else str(as_of),
        warnings=_text_list(params.get("warnings")),
        assumptions=_text_list(params.get("assumptions")),
        horizons=horizons,
    )
    if observed is not None:
        view.__dict__["observed"] = observed  # the cached property, already known
    return view
