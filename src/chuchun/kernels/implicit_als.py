"""Alternating least squares for implicit feedback (Hu, Koren & Volinsky 2008), with the
frequency-scaled regularisation and the subspace solver of revisited iALS (Rendle et al. 2021,
2022): one family of row solvers.

One half-step updates every row ``u`` of ``X`` (users, or items when called with the transposed
matrix) with the other side ``Y`` fixed, minimising

.. math::

    x^\\top G x + \\sum_{i \\in I_u} \\big[(c_{ui} - 1) (x^\\top y_i)^2
    - 2 c_{ui}\\, x^\\top y_i\\big] + \\lambda_u \\lVert x \\rVert^2,
    \\qquad c_{ui} = 1 + \\alpha r_{ui},\\quad G = Y^\\top Y,

where :math:`I_u` holds the entries with :math:`r_{ui} > 0` (entries with ``r <= 0`` have
:math:`c_{ui} = 1, p_{ui} = 0` and contribute nothing beyond ``G``). This is Hu et al.'s
objective for one row, :math:`\\sum_i c_{ui} (p_{ui} - x^\\top y_i)^2 + \\lambda \\lVert x
\\rVert^2` up to a constant, with ``reg[u]`` :math:`= \\lambda`; revisited iALS divides its
objective by the unobserved weight :math:`\\alpha_0` (the caller passes :math:`\\alpha /
\\alpha_0` and ``reg[u]`` :math:`= \\lambda_u / \\alpha_0`). The minimiser solves
(Hu et al. 2008, eq. 4)

.. math::

    \\Big(G + \\sum_{i \\in I_u} (c_{ui} - 1) y_i y_i^\\top + \\lambda_u I\\Big)\\, x
    = \\sum_{i \\in I_u} c_{ui} y_i .

``G`` is shared by all rows (the "YtY trick"), so a row costs :math:`O(n_u f^2 + f^3)` for
the exact solve and :math:`O(n_u f + f^2)` per conjugate-gradient step.

- :func:`als_cg_update`: ``n_steps`` conjugate-gradient steps per row warm-started from the
  current row (Takács, Pilászy & Tikk 2011), float32 arithmetic (the factors' type).
- :func:`als_cholesky_update`: the exact solve per row (float64 arithmetic).
- :func:`als_block_update`: the iALS++ subspace solver (Rendle et al. 2021). It sweeps the
  factor dimensions in blocks :math:`S` of ``block_size`` and solves exactly for :math:`x_S`
  with the other coordinates fixed,

  .. math::

      \\big(G_{SS} + \\sum_{i} (c_{ui} - 1) y_{iS} y_{iS}^\\top + \\lambda_u I\\big)\\, d
      = \\sum_i \\big(c_{ui} - (c_{ui} - 1) \\hat y_{ui}\\big) y_{iS} - (G x)_S
      - \\lambda_u x_S, \\qquad x_S \\leftarrow x_S + d,

  keeping the predictions :math:`\\hat y_{ui}` and :math:`G x` up to date, so a row costs
  :math:`O(|I_u| f b + f^2 + f b^2)`; with ``block_size >= f`` it is the exact solve.

Every pass over a row gathers the rows ``Y[i]`` of its entries, a random access into a table
that does not fit the core's cache; the kernels prefetch the row ``_AHEAD`` entries ahead so
the loads overlap the arithmetic. Rows are processed in parallel in blocks
``bounds[b]:bounds[b+1]`` (one scratch buffer each) handed to threads dynamically (see
:func:`parallel_rows`); each row's arithmetic does not depend on the block or the thread, so
a fit does not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np
from numba import prange

from chuchun.kernels.linalg import cholesky_solve, prefetch_row

__all__ = [
    "als_block_update",
    "als_block_update_numpy",
    "als_cg_update",
    "als_cg_update_numpy",
    "als_cholesky_update",
    "als_cholesky_update_numpy",
    "parallel_rows",
    "row_blocks",
    "set_threads",
]

_EPS = 1e-20
_AHEAD = 8  # entries between a row gather's prefetch and its use


def set_threads(n_threads: int) -> int:
    """Set numba's thread count (``0``: all cores); returns the previous count."""
    previous = numba.get_num_threads()
    n = numba.config.NUMBA_NUM_THREADS if n_threads <= 0 else min(
        n_threads, numba.config.NUMBA_NUM_THREADS
    )
    numba.set_num_threads(n)
    return previous


@contextmanager
def parallel_rows(n_threads: int) -> Iterator[None]:
    """Run the row kernels on ``n_threads`` threads (``0``: all cores), blocks handed out one
    at a time to whichever thread is free (dynamic scheduling: on a shared machine a thread
    that loses its core no longer holds up the others at the end of a half-step)."""
    previous = set_threads(n_threads)
    chunk = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(chunk)
        numba.set_num_threads(previous)


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


@numba.njit(inline="always", cache=True)
def _prefetch_start(indices, Y, lo, hi):  # pragma: no cover - compiled
    for k in range(lo, min(hi, lo + _AHEAD)):
        prefetch_row(Y, indices[k])


# -- conjugate gradient ----------------------------------------------------------------------
@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def als_cg_update(indptr, indices, data, X, Y, G, alpha, reg, n_steps,
                  bounds):  # pragma: no cover - compiled
    """Conjugate-gradient half-step (float32), in place on ``X`` (see module docstring)."""
    f = X.shape[1]
    for b in prange(bounds.shape[0] - 1):
        x = np.empty(f, dtype=np.float32)
        r = np.empty(f, dtype=np.float32)
        p = np.empty(f, dtype=np.float32)
        ap = np.empty(f, dtype=np.float32)
        for u in range(bounds[b], bounds[b + 1]):
            lo, hi = indptr[u], indptr[u + 1]
            _prefetch_start(indices, Y, lo, hi)
            lam = np.float32(reg[u])
            for a in range(f):
                x[a] = X[u, a]
            # r = rhs - A x, A = G + sum_i w_i y_i y_i' + lam I, rhs = sum_i (1 + w_i) y_i
            for a in range(f):
                s = lam * x[a]
                for c in range(f):
                    s += G[a, c] * x[c]
                r[a] = -s
            for k in range(lo, hi):
                if k + _AHEAD < hi:
                    prefetch_row(Y, indices[k + _AHEAD])
                v = data[k]
                if v <= 0:
                    continue
                i = indices[k]
                w = alpha * v
                yx = np.float32(0.0)
                for a in range(f):
                    yx += Y[i, a] * x[a]
                coef = (np.float32(1.0) + w) - w * yx
                for a in range(f):
                    r[a] += coef * Y[i, a]
            rs_old = np.float32(0.0)
            for a in range(f):
                p[a] = r[a]
                rs_old += r[a] * r[a]
            for _ in range(n_steps):
                if rs_old < _EPS:
                    break
                _prefetch_start(indices, Y, lo, hi)
                for a in range(f):
                    s = lam * p[a]
                    for c in range(f):
                        s += G[a, c] * p[c]
                    ap[a] = s
                for k in range(lo, hi):
                    if k + _AHEAD < hi:
                        prefetch_row(Y, indices[k + _AHEAD])
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
            for a in range(f):
                X[u, a] = x[a]


def als_cg_update_numpy(indptr, indices, data, X, Y, G, alpha, reg, n_steps, bounds):
    """Plain-NumPy twin of :func:`als_cg_update` (same algorithm, float32, for tests)."""
    alpha = np.float32(alpha)
    G = np.asarray(G, dtype=np.float32)
    for u in range(X.shape[0]):
        sl = slice(indptr[u], indptr[u + 1])
        v = data[sl]
        keep = v > 0
        w = alpha * v[keep]
        Yu = Y[indices[sl][keep]]
        lam = np.float32(reg[u])
        x = X[u].copy()
        r = -(G @ x + lam * x) + ((1 + w) - w * (Yu @ x)) @ Yu
        p = r.copy()
        rs_old = np.float32(r @ r)
        for _ in range(n_steps):
            if rs_old < _EPS:
                break
            ap = G @ p + lam * p + (w * (Yu @ p)) @ Yu
            pap = np.float32(p @ ap)
            if pap <= 0:
                break
            step = rs_old / pap
            x += step * p
            r = r - step * ap
            rs_new = np.float32(r @ r)
            p = r + (rs_new / rs_old) * p
            rs_old = rs_new
        X[u] = x


# -- exact solve -----------------------------------------------------------------------------
@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def als_cholesky_update(indptr, indices, data, X, Y, G, alpha, reg,
                        bounds):  # pragma: no cover - compiled
    """Exact half-step by a Cholesky solve per row (float64 arithmetic), in place on ``X``."""
    f = X.shape[1]
    for b in prange(bounds.shape[0] - 1):
        A = np.empty((f, f), dtype=np.float64)
        rhs = np.empty(f, dtype=np.float64)
        for u in range(bounds[b], bounds[b + 1]):
            lo, hi = indptr[u], indptr[u + 1]
            _prefetch_start(indices, Y, lo, hi)
            for a in range(f):
                rhs[a] = 0.0
                for c in range(a + 1):
                    A[a, c] = G[a, c]
                A[a, a] += reg[u]
            for k in range(lo, hi):
                if k + _AHEAD < hi:
                    prefetch_row(Y, indices[k + _AHEAD])
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


def als_cholesky_update_numpy(indptr, indices, data, X, Y, G, alpha, reg, bounds):
    """Plain-NumPy twin of :func:`als_cholesky_update` (``numpy.linalg.solve``, for tests)."""
    base = np.asarray(G, dtype=np.float64)
    for u in range(X.shape[0]):
        sl = slice(indptr[u], indptr[u + 1])
        v = data[sl].astype(np.float64)
        keep = v > 0
        Yu = Y[indices[sl][keep]].astype(np.float64)
        w = float(alpha) * v[keep]
        A = base + (Yu * w[:, None]).T @ Yu + float(reg[u]) * np.eye(X.shape[1])
        X[u] = np.linalg.solve(A, (1.0 + w) @ Yu).astype(X.dtype)


# -- iALS++ subspace solver ------------------------------------------------------------------
@numba.njit(parallel=True, cache=True, nogil=True)
def als_block_update(indptr, indices, data, X, Y, G, alpha, reg, block_size,
                     bounds):  # pragma: no cover - compiled
    """iALS++ half-step: one sweep of exact subspace solves per row (float64), in place."""
    f = X.shape[1]
    max_nnz = 0
    for u in range(X.shape[0]):
        max_nnz = max(max_nnz, indptr[u + 1] - indptr[u])
    for b in prange(bounds.shape[0] - 1):
        A = np.empty((block_size, block_size), dtype=np.float64)
        rhs = np.empty(block_size, dtype=np.float64)
        x = np.empty(f, dtype=np.float64)
        gx = np.empty(f, dtype=np.float64)
        pred = np.empty(max_nnz, dtype=np.float64)
        for u in range(bounds[b], bounds[b + 1]):
            lo, hi = indptr[u], indptr[u + 1]
            _prefetch_start(indices, Y, lo, hi)
            lam = np.float64(reg[u])
            for a in range(f):
                x[a] = X[u, a]
            for a in range(f):
                s = 0.0
                for c in range(f):
                    s += G[a, c] * x[c]
                gx[a] = s
            for k in range(lo, hi):
                if k + _AHEAD < hi:
                    prefetch_row(Y, indices[k + _AHEAD])
                s = 0.0
                i = indices[k]
                for a in range(f):
                    s += Y[i, a] * x[a]
                pred[k - lo] = s
            for start in range(0, f, block_size):
                nb = min(block_size, f - start)
                for a in range(nb):
                    rhs[a] = -gx[start + a] - lam * x[start + a]
                    for c in range(a + 1):
                        A[a, c] = G[start + a, start + c]
                    A[a, a] += lam
                for k in range(lo, hi):
                    v = data[k]
                    if v <= 0:
                        continue
                    i = indices[k]
                    w = alpha * v
                    coef = (1.0 + w) - w * pred[k - lo]
                    for a in range(nb):
                        ya = np.float64(Y[i, start + a])
                        rhs[a] += coef * ya
                        wa = w * ya
                        for c in range(a + 1):
                            A[a, c] += wa * Y[i, start + c]
                cholesky_solve(A, rhs, nb, 0.0, 1e-12)
                for a in range(nb):
                    x[start + a] += rhs[a]
                for a in range(f):
                    s = 0.0
                    for c in range(nb):
                        s += G[a, start + c] * rhs[c]
                    gx[a] += s
                for k in range(lo, hi):
                    i = indices[k]
                    s = 0.0
                    for c in range(nb):
                        s += Y[i, start + c] * rhs[c]
                    pred[k - lo] += s
            for a in range(f):
                X[u, a] = x[a]


def als_block_update_numpy(indptr, indices, data, X, Y, G, alpha, reg, block_size, bounds):
    """Plain-NumPy twin of :func:`als_block_update`."""
    G = np.asarray(G, dtype=np.float64)
    f = X.shape[1]
    for u in range(X.shape[0]):
        sl = slice(indptr[u], indptr[u + 1])
        v = data[sl].astype(np.float64)
        keep = v > 0
        Yu = Y[indices[sl][keep]].astype(np.float64)
        w = alpha * v[keep]
        x = X[u].astype(np.float64)
        lam = float(reg[u])
        for start in range(0, f, block_size):
            s = slice(start, min(f, start + block_size))
            pred = Yu @ x
            A = G[s, s] + (Yu[:, s] * w[:, None]).T @ Yu[:, s] + lam * np.eye(s.stop - start)
            rhs = ((1.0 + w) - w * pred) @ Yu[:, s] - (G @ x)[s] - lam * x[s]
            x[s] += np.linalg.solve(A, rhs)
        X[u] = x.astype(X.dtype)
