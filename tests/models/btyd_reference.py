"""A brute-force BG/BB likelihood for tests: Fader, Hardie & Shang (2010), eq. 5, term by term.

Slow (a Python loop over the possible death days) and independent of the closed-form kernels of
:mod:`ltvcore.models.btyd.likelihood`, which the tests check against it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln

__all__ = ["bgbb_loglik_reference"]


def bgbb_loglik_reference(alpha: float, beta: float, gamma: float, delta: float, x: int,
                          t_x: int, n: int) -> float:
    """FHS (2010) eq. 5 summed term by term: one user's log-likelihood of ``(x, t_x, n)``."""
    first = (betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
             + betaln(gamma, delta + n) - betaln(gamma, delta))
    total = np.exp(first)
    for i in range(n - t_x):
        total += np.exp(betaln(alpha + x, beta + t_x - x + i) - betaln(alpha, beta)
                        + betaln(gamma + 1, delta + t_x + i) - betaln(gamma, delta))
    return float(np.log(total))
