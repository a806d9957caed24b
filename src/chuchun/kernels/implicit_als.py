"""Alternating least squares for implicit feedback (Hu, Koren & Volinsky 2008).

One half-step updates every row ``u`` of ``X`` (users, or items when called with the transposed
matrix) with the other side ``Y`` fixed, minimising

.. math::

    \\sum_i c_{ui} (p_{ui} - x_u^\\top y_i)^2 + \\lambda \\lVert x_u \\rVert^2,
    \\qquad c_{ui} = 1 + \\alpha r_{ui}, \\quad p_{ui} = [r_{ui} > 0],

whose solution is (Hu et al. 2008, eq. 4)

.. math::

    x_u = (Y^\\top Y + Y^\\top (C^u - I) Y + \\lambda I)^{-1} Y^\\top C^u p(u).

``YtY`` is the caller's precomputed :math:`Y^\\top Y + \\lambda I` (the "YtY trick": the dense
part is shared by all rows, so each row costs :math:`O(n_u f^2)` for Cholesky and
:math:`O(n_u f + f^2)` per conjugate-gradient step). Entries with ``r <= 0`` have
:math:`c_{ui} = 1, p_{ui} = 0` and contribute nothing beyond ``YtY``.

:func:`als_cg_update` runs a few conjugate-gradient steps per row warm-started from the current
``X`` (Takács, Pilászy & Tikk 2011); :func:`als_cholesky_update` solves each row exactly.
Rows are processed in parallel, in blocks ``bounds[b]:bounds[b+1]`` (one scratch buffer each).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from chuchun.kernels.linalg import cholesky_solve

__all__ = [
    "als_cg_update",
    "als_cg_update_numpy",
    "als_cholesky_update",
    "als_cholesky_update_numpy",
    "row_blocks",
    "set_threads",
]

_EPS = 1e-20


def set_threads(n_threads: int) -> int:
    """Set numba's thread count (``0``: all cores); returns the previous count."""
    previous = numba.get_num_threads()
    n = numba.config.NUMBA_NUM_THREADS if n_threads <= 0 else min(
        n_threads, numba.config.NUMBA_NUM_THREADS
    )
    numba.set_num_threads(n)
    return previous


def row_blocks(indptr: np.ndarray, n_blocks: int, row_cost: float) -> np.ndarray:
    """Split rows into ``n_blocks`` contiguous blocks of about equal work.

    The work of a row is its number of entries plus ``row_cost`` (the dense part). Returns int64
    boundaries ``b`` with block ``k`` = rows ``b[k]:b[k+1]``.
    """
    n_rows = len(indptr) - 1
    n_blocks = max(1, min(n_blocks, n_rows))
    cost = indptr.astype(np.float64) + row_cost * np.arange(n_rows + 1)
    targets = np.linspace(0.0, cost[-1], n_blocks + 1)
    bounds = np.searchsorted(cost, targets, side="left").astype(np.int64)
    bounds[0], bounds[-1] = 0, n_rows
    return np.maximum.accumulate(bounds)


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def als_cg_update(indptr, indices, data, X, Y, YtY, alpha, n_steps, bounds):  # pragma: no cover
    """Conjugate-gradient half-step, in place on ``X`` (see module docstring)."""
    f = X.shape[1]
    for b in prange(bounds.shape[0] - 1):
        r = np.empty(f, dtype=np.float32)
        p = np.empty(f, dtype=np.float32)
        ap = np.empty(f, dtype=np.float32)
        for u in range(bounds[b], bounds[b + 1]):
            x = X[u]
            # r = b - A x with A = YtY + Y'(C-I)Y, b = Y'Cp
            for a in range(f):
                s = np.float32(0.0)
                for c in range(f):
                    s += YtY[a, c] * x[c]
                r[a] = -s
            for k in range(indptr[u], indptr[u + 1]):
                v = data[k]
                if v <= 0:
                    continue
                i = indices[k]
                conf = np.float32(1.0) + alpha * v
                yx = np.float32(0.0)
                for a in range(f):
                    yx += Y[i, a] * x[a]
                w = conf - (conf - np.float32(1.0)) * yx
                for a in range(f):
                    r[a] += w * Y[i, a]
            rs_old = np.float32(0.0)
            for a in range(f):
                p[a] = r[a]
                rs_old += r[a] * r[a]
            for _ in range(n_steps):
                if rs_old < _EPS:
                    break
                for a in range(f):
                    s = np.float32(0.0)
                    for c in range(f):
                        s += YtY[a, c] * p[c]
                    ap[a] = s
                for k in range(indptr[u], indptr[u + 1]):
                    v = data[k]
                    if v <= 0:
                        continue
                    i = indices[k]
                    yp = np.float32(0.0)
                    for a in range(f):
                        yp += Y[i, a] * p[a]
                    w = alpha * v * yp
                    for a in range(f):
                        ap[a] += w * Y[i, a]
                pap = np.float32(0.0)
                for a in range(f):
                    pap += p[a] * ap[a]
                if pap <= 0:
                    break
                step = rs_old / pap
                rs_new = np.float32(0.0)
                for a in range(f):
                    x[a] += step * p[a]
                    r[a] -= step * ap[a]
                    rs_new += r[a] * r[a]
                beta = rs_new / rs_old
                for a in range(f):
                    p[a] = r[a] + beta * p[a]
                rs_old = rs_new


def als_cg_update_numpy(indptr, indices, data, X, Y, YtY, alpha, n_steps, bounds):
    """Plain-NumPy twin of :func:`als_cg_update` (same algorithm, for tests)."""
    alpha = np.float32(alpha)
    for u in range(X.shape[0]):
        sl = slice(indptr[u], indptr[u + 1])
        v = data[sl]
        keep = v > 0
        items = indices[sl][keep]
        w = alpha * v[keep]  # c - 1
        Yu = Y[items]
        x = X[u]
        r = -(YtY @ x) + ((1 + w) - w * (Yu @ x)) @ Yu
        p = r.copy()
        rs_old = np.float32(r @ r)
        for _ in range(n_steps):
            if rs_old < _EPS:
                break
            ap = YtY @ p + (w * (Yu @ p)) @ Yu
            pap = np.float32(p @ ap)
            if pap <= 0:
                break
            step = rs_old / pap
            x += step * p
            r = r - step * ap
            rs_new = np.float32(r @ r)
            p = r + (rs_new / rs_old) * p
            rs_old = rs_new


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def als_cholesky_update(indptr, indices, data, X, Y, YtY, alpha, bounds):  # pragma: no cover
    """Exact half-step by a Cholesky solve per row (float64 arithmetic), in place on ``X``."""
    f = X.shape[1]
    for b in prange(bounds.shape[0] - 1):
        A = np.empty((f, f), dtype=np.float64)
        rhs = np.empty(f, dtype=np.float64)
        for u in range(bounds[b], bounds[b + 1]):
            for a in range(f):
                rhs[a] = 0.0
                for c in range(a + 1):
                    A[a, c] = YtY[a, c]
            for k in range(indptr[u], indptr[u + 1]):
                v = data[k]
                if v <= 0:
                    continue
                i = indices[k]
                w = np.float64(alpha) * v  # c - 1
                for a in range(f):
                    ya = np.float64(Y[i, a])
                    rhs[a] += (1.0 + w) * ya
                    wa = w * ya
                    for c in range(a + 1):
                        A[a, c] += wa * Y[i, c]
            cholesky_solve(A, rhs, f, 0.0, 1e-12)
            for a in range(f):
                X[u, a] = rhs[a]


def als_cholesky_update_numpy(indptr, indices, data, X, Y, YtY, alpha, bounds):
    """Plain-NumPy twin of :func:`als_cholesky_update` (``numpy.linalg.solve``, for tests)."""
    base = YtY.astype(np.float64)
    for u in range(X.shape[0]):
        sl = slice(indptr[u], indptr[u + 1])
        v = data[sl].astype(np.float64)
        keep = v > 0
        Yu = Y[indices[sl][keep]].astype(np.float64)
        w = float(alpha) * v[keep]
        A = base + (Yu * w[:, None]).T @ Yu
        rhs = (1.0 + w) @ Yu
        X[u] = np.linalg.solve(A, rhs).astype(X.dtype)
