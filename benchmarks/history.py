"""``--model history`` against the models it competes with, where it can learn: 24 matured
campaigns of the year before in the data.

Cases: the sample generator's campaigns bought over 14 install days and observed 7, 14 and 28
days after the last install (:func:`benchmarks.scenarios.build`, 12 campaigns of ~8,400
installs each, plus 24 of last year fully matured). Scored against each campaign's realised
LTV (this year's campaigns only) with :func:`benchmarks.accuracy.summarise`: MAPE at 180 and
365 days, bias, 99% interval coverage and the fit time of each model (``run_forecast``'s
``fit_s``: training included, for history its out-of-fold folds too). The noise floor row is a
forecast that knew each campaign's expected LTV (see :mod:`benchmarks.accuracy`).
"""

from __future__ import annotations

import importlib.util
import time
from unittest.mock import patch

import pandas as pd

from benchmarks import scenarios
from benchmarks.accuracy import summarise
from ltvcore.request import ForecastRequest
from ltvcore.workflow.forecast import run_forecast

HAVE_PYMC = importlib.util.find_spec("pymc") is not None
INSTALL_DAYS = 14
OBSERVED = (7, 14, 28)
MODELS = ("history", "calibrated", "btyd:map", "curve")


def _scenario(observed: int) -> str:
    return f"{INSTALL_DAYS} install days + {observed} observed"


def evaluate(seeds, kinds, observed=OBSERVED, models=MODELS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast rows merged with the truth, and fit seconds per case and model."""
    frames, timings = [], []
    for kind in kinds:
        for days in observed:
            name = _scenario(days)
            # Scenarios beyond benchmarks.scenarios' own, for this suite only.
            with patch.dict(scenarios.SCENARIOS, {name: (INSTALL_DAYS, days)}):
                for seed in seeds:
                    case = scenarios.build(name, kind=kind, seed=seed, history_campaigns=24)
                    request = ForecastRequest(as_of=case.as_of, horizons=scenarios.HORIZONS)
                    parts = [case.floor]
                    for model in models:
                        if model.startswith("btyd") and not HAVE_PYMC:
                            continue
                        result = run_forecast(case.inputs, request, model=model, cache=False)
                        parts.append(result.forecast[["campaign", "horizon_days", "ltv", "ltv_lower",
                                                      "ltv_upper"]].assign(model=model))
                        timings.append({"kind": kind, "scenario": name, "model": model, "seed": seed,
                                        "fit_s": result.timings["fit_s"], "label": result.forecast["model"].iat[0]})
                    for part in parts:
                        merged = part.merge(case.truth[["campaign", "horizon_days", "ltv"]],
                                            on=["campaign", "horizon_days"], suffixes=("", "_true"))
                        frames.append(merged.assign(scenario=name, kind=kind, seed=seed))
    return pd.concat(frames, ignore_index=True), pd.DataFrame(timings)


def _markdown(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(frame.columns))) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def tables(rows: pd.DataFrame, timings: pd.DataFrame) -> dict[str, pd.DataFrame]:
    summary = summarise(rows)
    order = [m for m in (*MODELS, "noise floor") if m in set(summary["model"])]
    out = {}
    for value, title in (("mape", "MAPE"), ("bias", "bias"), ("coverage", "99% coverage")):
        for h in (180, 365):
            part = summary[summary["horizon_days"] == h]
            table = (part.pivot_table(index=["kind", "scenario"], columns="model", values=value, sort=False)
                     .reindex(columns=order))
            if value != "mape":  # the noise floor is an error level, not a forecast with a bias
                table = table.drop(columns=["noise floor"], errors="ignore")
            out[f"{title} at {h} days"] = table.map(lambda v: "-" if pd.isna(v) else f"{v:.1f}").reset_index()
    seconds = (timings.groupby(["kind", "scenario", "model"], sort=False)["fit_s"].mean()
               .unstack("model").reindex(columns=[m for m in MODELS if m in set(timings["model"])]))
    out["fit seconds (mean per case, training included)"] = seconds.map(lambda v: f"{v:.1f}").reset_index()
    # Which name each model ran under (history falls back to curve without enough history).
    labels = timings.groupby(["model"])["label"].agg(lambda s: ", ".join(sorted(set(s)))).reset_index()
    out["forecast labelled as"] = labels
    return out


def main(quick: bool = False) -> dict[str, pd.DataFrame]:
    started = time.perf_counter()
    seeds = (11,) if quick else (11, 12, 13)
    kinds = ("game",) if quick else ("game", "purchase")
    rows, timings = evaluate(seeds, kinds)
    out = tables(rows, timings)
    print(f"\n## history vs calibrated, btyd:map and curve ({len(seeds)} seed(s) x 12 campaigns, "
          f"24 matured campaigns of last year in the data, {INSTALL_DAYS} install days)\n")
    for title, table in out.items():
        print(f"### {title}\n\n{_markdown(table)}\n")
    print(f"(history benchmark took {time.perf_counter() - started:.0f} s)")
    return out


if __name__ == "__main__":
    main()
