"""Small dense solves used inside the compiled row solvers (ALS half-steps)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def cholesky_solve(A, rhs, n, min_pivot, floor):  # pragma: no cover - compiled
    """Solve ``A x = rhs`` for a symmetric positive-definite ``A`` in place.

    Only the lower triangle of ``A[:n, :n]`` is read; it is overwritten with the Cholesky factor
    ``L`` (``A = L L^T``) and ``rhs[:n]`` with the solution. A pivot not above ``min_pivot``
    (a numerically singular system) is replaced by ``floor`` instead of failing.
    """
    for j in range(n):
        s = A[j, j]
        for c in range(j):
            s -= A[j, c] * A[j, c]
        s = np.sqrt(s) if s > min_pivot else floor
        A[j, j] = s
        for a in range(j + 1, n):
            t = A[a, j]
            for c in range(j):
                t -= A[a, c] * A[j, c]
            A[a, j] = t / s
    for a in range(n):  # forward substitution: L y = rhs
        t = rhs[a]
        for c in range(a):
            t -= A[a, c] * rhs[c]
        rhs[a] = t / A[a, a]
    for a in range(n - 1, -1, -1):  # backward substitution: L^T x = y
        t = rhs[a]
        for c in range(a + 1, n):
            t -= A[c, a] * rhs[c]
        rhs[a] = t / A[a, a]
