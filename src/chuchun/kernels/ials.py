"""Revisited iALS row solvers: per-row (frequency-scaled) regularisation and the iALS++ subspace
solver (Rendle et al. 2021, 2022).

The objective of one half-step, row :math:`u` of ``X`` with the other side ``Y`` fixed, divided
by the unobserved weight :math:`\\alpha_0` (so the caller passes ``alpha`` :math:`=\\alpha /
\\alpha_0` and ``reg[u]`` :math:`=\\lambda_u / \\alpha_0`), is

.. math::

    x^\\top G x + \\sum_{i \\in I_u} \\big[(c_{ui} - 1) (x^\\top y_i)^2
    - 2 c_{ui}\\, x^\\top y_i\\big] + \\lambda_u \\lVert x \\rVert^2,
    \\qquad c_{ui} = 1 + \\alpha r_{ui},\\quad G = Y^\\top Y,

where :math:`I_u` holds the entries with :math:`r_{ui} > 0`. Its minimiser solves
:math:`(G + \\sum_{i \\in I_u} (c_{ui} - 1) y_i y_i^\\top + \\lambda_u I)\\, x =
\\sum_{i \\in I_u} c_{ui} y_i`.

:func:`ials_cholesky_update` solves each row exactly; :func:`ials_cg_update` runs ``n_steps``
conjugate-gradient steps warm-started from the current row; :func:`ials_block_update` is the
iALS++ subspace solver: it sweeps the factor dimensions in blocks :math:`S` of ``block_size``
and solves exactly for :math:`x_S` with the other coordinates fixed,

.. math::

    \\big(G_{SS} + \\sum_{i} (c_{ui} - 1) y_{iS} y_{iS}^\\top + \\lambda_u I\\big)\\, d
    = \\sum_i \\big(c_{ui} - (c_{ui} - 1) \\hat y_{ui}\\big) y_{iS} - (G x)_S - \\lambda_u x_S,
    \\qquad x_S \\leftarrow x_S + d,

keeping the predictions :math:`\\hat y_{ui}` and :math:`G x` up to date, so a row costs
:math:`O(|I_u| f b + f^2 + f b^2)` instead of :math:`O(|I_u| f^2 + f^3)`. With
``block_size >= f`` it is the exact solve.

Rows are processed in parallel in blocks ``bounds[b]:bounds[b+1]``; each row's arithmetic does
not depend on the thread count.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from chuchun.kernels.linalg import cholesky_solve

__all__ = [
    "ials_block_update",
    "ials_block_update_numpy",
    "ials_cg_update",
    "ials_cg_update_numpy",
    "ials_cholesky_update",
    "ials_cholesky_update_numpy",
]

_EPS = 1e-20


@numba.njit(parallel=True, cache=True, nogil=True)
def ials_cholesky_update(indptr, indices, data, X, Y, G, alpha, reg, bounds):  # pragma: no cover
    """Exact half-step with per-row regularisation ``reg`` (float64 arithmetic), in place."""
    f = X.shape[1]
    for b in prange(bounds.shape[0] - 1):
        A = np.empty((f, f), dtype=np.float64)
        rhs = np.empty(f, dtype=np.float64)
        for u in range(bounds[b], bounds[b + 1]):
            for a in range(f):
                rhs[a] = 0.0
                for c in range(a + 1):
                    A[a, c] = G[a, c]
                A[a, a] += reg[u]
            for k in range(indptr[u], indptr[u + 1]):
                v = data[k]
                if v <= 0:
                    continue
                i = indices[k]
                w = alpha * v
                for a in range(f):
                    ya = np.float64(Y[i, a])
                    rhs[a] += (1.0 + w) * ya
                    wa = w * ya
                    for c in range(a + 1):
                        A[a, c] += wa * Y[i, c]
            cholesky_solve(A, rhs, f, 0.0, 1e-12)
            for a in range(f):
                X[u, a] = rhs[a]


def ials_cholesky_update_numpy(indptr, indices, data, X, Y, G, alpha, reg, bounds):
    """Plain-NumPy twin of :func:`ials_cholesky_update`."""
    for u in range(X.shape[0]):
        sl = slice(indptr[u], indptr[u + 1])
        v = data[sl].astype(np.float64)
        keep = v > 0
        Yu = Y[indices[sl][keep]].astype(np.float64)
        w = alpha * v[keep]
        A = G.astype(np.float64) + (Yu * w[:, None]).T @ Yu + reg[u] * np.eye(X.shape[1])
        X[u] = np.linalg.solve(A, (1.0 + w) @ Yu).astype(X.dtype)


@numba.njit(parallel=True, cache=True, nogil=True)
def ials_cg_update(indptr, indices, data, X, Y, G, alpha, reg, n_steps, bounds):  # pragma: no cover
    """Conjugate-gradient half-step with per-row regularisation (float64), in place."""
    f = X.shape[1]
    for b in prange(bounds.shape[0] - 1):
        x = np.empty(f, dtype=np.float64)
        r = np.empty(f, dtype=np.float64)
        p = np.empty(f, dtype=np.float64)
        ap = np.empty(f, dtype=np.float64)
        for u in range(bounds[b], bounds[b + 1]):
            for a in range(f):
                x[a] = X[u, a]
            for a in range(f):
                s = reg[u] * x[a]
                for c in range(f):
                    s += G[a, c] * x[c]
                r[a] = -s
            for k in range(indptr[u], indptr[u + 1]):
                v = data[k]
                if v <= 0:
                    continue
                i = indices[k]
                w = alpha * v
                yx = 0.0
                for a in range(f):
                    yx += Y[i, a] * x[a]
                coef = (1.0 + w) - w * yx
                for a in range(f):
                    r[a] += coef * Y[i, a]
            rs_old = 0.0
            for a in range(f):
                p[a] = r[a]
                rs_old += r[a] * r[a]
            for _ in range(n_steps):
                if rs_old < _EPS:
                    break
                for a in range(f):
                    s = reg[u] * p[a]
                    for c in range(f):
                        s += G[a, c] * p[c]
                    ap[a] = s
                for k in range(indptr[u], indptr[u + 1]):
                    v = data[k]
                    if v <= 0:
                        continue
                    i = indices[k]
                    yp = 0.0
                    for a in range(f):
                        yp += Y[i, a] * p[a]
                    w = alpha * v * yp
                    for a in range(f):
                        ap[a] += w * Y[i, a]
                pap = 0.0
                for a in range(f):
                    pap += p[a] * ap[a]
                if pap <= 0:
                    break
                step = rs_old / pap
                rs_new = 0.0
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


def ials_cg_update_numpy(indptr, indices, data, X, Y, G, alpha, reg, n_steps, bounds):
    """Plain-NumPy twin of :func:`ials_cg_update`."""
    G = G.astype(np.float64)
    for u in range(X.shape[0]):
        sl = slice(indptr[u], indptr[u + 1])
        v = data[sl].astype(np.float64)
        keep = v > 0
        Yu = Y[indices[sl][keep]].astype(np.float64)
        w = alpha * v[keep]
        x = X[u].astype(np.float64)
        r = -(G @ x + reg[u] * x) + ((1 + w) - w * (Yu @ x)) @ Yu
        p = r.copy()
        rs_old = r @ r
        for _ in range(n_steps):
            if rs_old < _EPS:
                break
            ap = G @ p + reg[u] * p + (w * (Yu @ p)) @ Yu
            pap = p @ ap
            if pap <= 0:
                break
            step = rs_old / pap
            x = x + step * p
            r = r - step * ap
            rs_new = r @ r
            p = r + (rs_new / rs_old) * p
            rs_old = rs_new
        X[u] = x.astype(X.dtype)


@numba.njit(parallel=True, cache=True, nogil=True)
def ials_block_update(indptr, indices, data, X, Y, G, alpha, reg, block_size,
                      bounds):  # pragma: no cover
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
            for a in range(f):
                x[a] = X[u, a]
            for a in range(f):
                s = 0.0
                for c in range(f):
                    s += G[a, c] * x[c]
                gx[a] = s
            for k in range(lo, hi):
                s = 0.0
                i = indices[k]
                for a in range(f):
                    s += Y[i, a] * x[a]
                pred[k - lo] = s
            for start in range(0, f, block_size):
                nb = min(block_size, f - start)
                for a in range(nb):
                    rhs[a] = -gx[start + a] - reg[u] * x[start + a]
                    for c in range(a + 1):
                        A[a, c] = G[start + a, start + c]
                    A[a, a] += reg[u]
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


def ials_block_update_numpy(indptr, indices, data, X, Y, G, alpha, reg, block_size, bounds):
    """Plain-NumPy twin of :func:`ials_block_update`."""
    G = G.astype(np.float64)
    f = X.shape[1]
    for u in range(X.shape[0]):
        sl = slice(indptr[u], indptr[u + 1])
        v = data[sl].astype(np.float64)
        keep = v > 0
        Yu = Y[indices[sl][keep]].astype(np.float64)
        w = alpha * v[keep]
        x = X[u].astype(np.float64)
        for start in range(0, f, block_size):
            s = slice(start, min(f, start + block_size))
            pred = Yu @ x
            A = G[s, s] + (Yu[:, s] * w[:, None]).T @ Yu[:, s] + reg[u] * np.eye(s.stop - start)
            rhs = ((1.0 + w) - w * pred) @ Yu[:, s] - (G @ x)[s] - reg[u] * x[s]
            x[s] += np.linalg.solve(A, rhs)
        X[u] = x.astype(X.dtype)
