"""Calibration of ``p_payback`` against the generator's truth: Brier score and reliability.

For each sample seed the forecast (curve model, by campaign, with spend) gives every paid
campaign a probability that its ROAS at each horizon reaches the target; the truth says whether
the realised ROAS (the simulated year's LTV × users / spend) did. A calibrated probability has
a reliability table whose observed share tracks the predicted one, bin by bin.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ltvcore.request import ForecastRequest
from ltvcore.sample import write_sample
from ltvcore.workflow.forecast import load_inputs, run_forecast

BINS = (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0)
TARGETS = (0.5, 1.0, 2.0)  # break-even alone leaves most campaigns far from the threshold


def _cases(seeds: list[int]) -> pd.DataFrame:
    frames = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_sample(folder, seed=seed)
            inputs = load_inputs(folder / "events.csv", folder / "installs.csv",
                                 folder / "spend.csv")
            truth = pd.read_csv(folder / "truth.csv", dtype={"campaign": str})
        for target in TARGETS:
            result = run_forecast(inputs, ForecastRequest(target_roas=target), cache=False)
            frame = result.forecast.dropna(subset=["p_payback"]).merge(
                truth.rename(columns={"ltv": "true_ltv", "users": "true_users"}),
                on=["campaign", "horizon_days"])
            frame["paid_back"] = (frame["true_ltv"] * frame["true_users"]
                                  >= target * frame["spend"]).astype(float)
            frame["seed"], frame["target"] = seed, target
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main(*, quick: bool = False) -> None:
    seeds = [1, 2, 3] if quick else list(range(1, 13))
    start = time.perf_counter()
    cases = _cases(seeds)
    elapsed = time.perf_counter() - start
    print(f"\n## p_payback calibration ({len(seeds)} seeds x targets {', '.join(map(str, TARGETS))}"
          f", curve model, 99% intervals; {len(cases)} campaign-horizons, {elapsed:.0f} s)\n")
    print("| horizon | n | Brier | Brier of base rate | mean p | observed share |")
    print("|---:|---:|---:|---:|---:|---:|")
    for h, part in cases.groupby("horizon_days"):
        p, y = part["p_payback"].to_numpy(), part["paid_back"].to_numpy()
        base = np.mean((y.mean() - y) ** 2)
        print(f"| {h} | {len(part)} | {np.mean((p - y) ** 2):.3f} | {base:.3f} | "
              f"{p.mean():.2f} | {y.mean():.2f} |")
    print("\nReliability (all horizons and targets):\n")
    print("| predicted p | n | mean p | observed payback share |")
    print("|---|---:|---:|---:|")
    bins = pd.cut(cases["p_payback"], BINS, include_lowest=True)
    for interval, part in cases.groupby(bins, observed=False):
        if part.empty:
            print(f"| {interval} | 0 | — | — |")
            continue
        print(f"| {interval} | {len(part)} | {part['p_payback'].mean():.2f} | "
              f"{part['paid_back'].mean():.2f} |")


if __name__ == "__main__":
    main()
