"""btyd's activity part is BG/BB: its likelihood reproduces the published donations estimates."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from ltvcore.models.btyd.likelihood import bgbb_rows
from tests.models.support import DATA


def test_bgbb_likelihood_reproduces_the_published_donations_estimates():
    donors = pd.read_csv(DATA / "donations.csv").sort_values(["frequency", "recency"])
    rows = [donors[c].to_numpy() for c in ("frequency", "recency", "periods")]
    group = np.zeros(len(donors), dtype=int)

    def negative_loglik(log_params):
        alpha, beta, gamma, delta = np.exp(log_params)
        log_lik = bgbb_rows([alpha], [beta], [gamma], [delta], group, *rows)["log_lik"][0]
        return -float(log_lik @ donors["weights"])

    fit = minimize(negative_loglik, np.zeros(4), method="Nelder-Mead",
                   options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 5000})
    # Fader, Hardie & Shang 2010, Table 2: α = 1.204, β = 0.750, γ = 0.657, δ = 2.783, LL = −33,225.6.
    assert np.exp(fit.x) == pytest.approx([1.204, 0.750, 0.657, 2.783], abs=6e-4)
    assert -fit.fun == pytest.approx(-33225.6, abs=0.05)
