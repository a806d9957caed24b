"""SGD for user and item biases.

Implements the stochastic gradient steps for :math:`\\hat r_{ui} = \\mu + b_u + b_i` with L2
regularisation (Koren 2010, "Factor in the neighbors", eq. 2)::

    e = r - (mu + b_u[u] + b_i[i])
    b_u[u] += lr * (e - reg * b_u[u])
    b_i[i] += lr * (e - reg * b_i[i])

applied to the rows in the given order, ``n_epochs`` times.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def bias_sgd(u, i, r, mu, bu, bi, lr, reg, n_epochs):  # pragma: no cover - compiled
    for _ in range(n_epochs):
        for k in range(u.shape[0]):
            uu = u[k]
            ii = i[k]
            e = r[k] - (mu + bu[uu] + bi[ii])
            bu[uu] += lr * (e - reg * bu[uu])
            bi[ii] += lr * (e - reg * bi[ii])


def bias_sgd_numpy(u, i, r, mu, bu, bi, lr, reg, n_epochs):
    """Plain-Python twin of :func:`bias_sgd` (same arithmetic, for tests)."""
    for _ in range(n_epochs):
        for k in range(u.shape[0]):
            uu = u[k]
            ii = i[k]
            e = r[k] - (mu + bu[uu] + bi[ii])
            bu[uu] += lr * (e - reg * bu[uu])
            bi[ii] += lr * (e - reg * bi[ii])
