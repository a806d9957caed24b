"""Coordinate descent for SLIM (Ning & Karypis 2011): one non-negative ElasticNet per item.

For every target item :math:`j` the kernel solves

.. math::

    \\min_{w \\ge 0,\\; w_j = 0} \\tfrac12 \\lVert x_j - X w \\rVert^2
    + l_1 \\lVert w \\rVert_1 + \\tfrac{l_2}{2} \\lVert w \\rVert^2

by cyclic coordinate descent on the Gram matrix :math:`G = X^\\top X` (CSC/CSR, symmetric).
With :math:`q = G w` kept up to date, the update of coordinate :math:`k` is

.. math::

    w_k \\leftarrow \\frac{\\max(0,\\; G_{kj} - q_k + G_{kk} w_k - l_1)}{G_{kk} + l_2}.

Because :math:`X \\ge 0` implies :math:`G \\ge 0` and :math:`q \\ge 0`, a coordinate with
:math:`G_{kj} = 0` can never become positive, so only the items that co-occur with
:math:`j` (the non-zeros of column :math:`j` of :math:`G`) are visited. Sweeps stop when the
largest change of a sweep falls below ``tol`` times the largest weight, or after
``max_sweeps``. The ``top_k`` largest weights of each column are written to
``out_idx[j]`` / ``out_val[j]`` (best first, ties by lower index; ``out_cnt[j]`` of them).

Items are independent, so the parallel loop over items gives the same weights for any thread
count.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = ["slim_columns", "slim_columns_numpy"]


@numba.njit(cache=True, nogil=True)
def _solve_column(j, g_indptr, g_indices, g_data, diag, l1, l2, max_sweeps, tol,
                  q, w, cand, cand_g):  # pragma: no cover - compiled
    n_cand = 0
    for p in range(g_indptr[j], g_indptr[j + 1]):
        k = g_indices[p]
        if k != j and g_data[p] > 0:
            cand[n_cand] = k
            cand_g[n_cand] = g_data[p]
            n_cand += 1
    for _ in range(max_sweeps):
        max_delta = 0.0
        max_w = 0.0
        for c in range(n_cand):
            k = cand[c]
            old = w[k]
            rho = cand_g[c] - q[k] + diag[k] * old - l1
            new = rho / (diag[k] + l2) if rho > 0 else 0.0
            if new != old:
                delta = new - old
                w[k] = new
                for p in range(g_indptr[k], g_indptr[k + 1]):
                    q[g_indices[p]] += delta * g_data[p]
                if abs(delta) > max_delta:
                    max_delta = abs(delta)
            if new > max_w:
                max_w = new
        if max_delta <= tol * max_w:
            break
    return n_cand


@numba.njit(parallel=True, cache=True, nogil=True)
def slim_columns(g_indptr, g_indices, g_data, l1, l2, max_sweeps, tol, top_k, bounds,
                 out_idx, out_val, out_cnt):  # pragma: no cover - compiled
    """SLIM weights of every item column (see module docstring); blocks ``bounds[b]:b+1``."""
    n = g_indptr.shape[0] - 1
    diag = np.zeros(n, dtype=np.float64)
    for r in range(n):
        for p in range(g_indptr[r], g_indptr[r + 1]):
            if g_indices[p] == r:
                diag[r] = g_data[p]
    for b in prange(bounds.shape[0] - 1):
        q = np.zeros(n, dtype=np.float64)
        w = np.zeros(n, dtype=np.float64)
        cand = np.empty(n, dtype=np.int64)
        cand_g = np.empty(n, dtype=np.float64)
        for j in range(bounds[b], bounds[b + 1]):
            n_cand = _solve_column(j, g_indptr, g_indices, g_data, diag, l1, l2, max_sweeps,
                                   tol, q, w, cand, cand_g)
            # collect positive weights, keep the top_k (stable: lower index wins ties)
            m = 0
            for c in range(n_cand):
                k = cand[c]
                if w[k] > 0:
                    cand[m] = k
                    m += 1
            vals = np.empty(m, dtype=np.float64)
            keys = np.empty(m, dtype=np.int64)
            for c in range(m):
                keys[c] = cand[c]
            keys.sort()
            for c in range(m):
                vals[c] = -w[keys[c]]
            order = np.argsort(vals, kind="mergesort")
            cnt = min(m, top_k)
            for c in range(cnt):
                out_idx[j, c] = keys[order[c]]
                out_val[j, c] = -vals[order[c]]
            out_cnt[j] = cnt
            # reset the scratch vectors on the entries touched
            for c in range(m):
                k = keys[c]
                for p in range(g_indptr[k], g_indptr[k + 1]):
                    q[g_indices[p]] = 0.0
                w[k] = 0.0


def slim_columns_numpy(g_indptr, g_indices, g_data, l1, l2, max_sweeps, tol, top_k, bounds,
                       out_idx, out_val, out_cnt):
    """Plain-NumPy twin of :func:`slim_columns` (dense Gram; for tests on small matrices)."""
    n = len(g_indptr) - 1
    G = np.zeros((n, n))
    for r in range(n):
        for p in range(g_indptr[r], g_indptr[r + 1]):
            G[r, g_indices[p]] = g_data[p]
    diag = np.diag(G).copy()
    for j in range(n):
        cand = [k for k in range(n) if k != j and G[k, j] > 0]
        # the compiled kernel visits candidates in the stored order of column j
        order = {int(g_indices[p]): p for p in range(g_indptr[j], g_indptr[j + 1])}
        cand.sort(key=lambda k: order[k])
        w = np.zeros(n)
        for _ in range(max_sweeps):
            max_delta, max_w = 0.0, 0.0
            for k in cand:
                old = w[k]
                rho = G[k, j] - G[k] @ w + diag[k] * old - l1
                new = rho / (diag[k] + l2) if rho > 0 else 0.0
                max_delta = max(max_delta, abs(new - old))
                w[k] = new
                max_w = max(max_w, new)
            if max_delta <= tol * max_w:
                break
        pos = np.flatnonzero(w > 0)
        top = pos[np.lexsort((pos, -w[pos]))][:top_k]
        out_idx[j, : len(top)] = top
        out_val[j, : len(top)] = w[top]
        out_cnt[j] = len(top)
