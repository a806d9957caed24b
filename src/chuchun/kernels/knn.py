"""Neighbourhood aggregation for explicit-rating kNN (Herlocker et al. 1999; Koren 2010).

For a pair (x, y) — (user, item) in user-based kNN, (item, user) in item-based kNN — the
neighbours are the rows ``x'`` that rated ``y`` and have a *positive* similarity to ``x``; the
``k`` most similar of them, :math:`N^k_y(x)`, give

.. math:: \\text{agg}_{xy} = \\frac{\\sum_{x' \\in N^k_y(x)} s_{xx'} \\,
          (r_{x'y} - c_{x'} - o_y) / d_{x'}}{\\sum_{x' \\in N^k_y(x)} s_{xx'}}

the count :math:`|N^k_y(x)|` and the similarity sum
:math:`\\sum_{x' \\in N^k_y(x)} s_{xx'}`. The caller turns it into a prediction
:math:`c_x + o_y + d_x \\, \\text{agg}_{xy}` (``c`` a per-row centre: 0, the row mean or the row
baseline; ``o`` a per-column offset: 0 or the column bias; ``d`` a per-row scale: 1 or the row's
standard deviation). This is Surprise's ``KNNBasic``/``KNNWithMeans``/``KNNWithZScore``/
``KNNBaseline`` rule, ties among equal similarities going to the lower row index.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def kth_largest(values, m, k, work):  # pragma: no cover - compiled
    """The ``k``-th largest of ``values[:m]`` (1-based ``k <= m``), by in-place quickselect on
    the scratch buffer ``work`` (Hoare partition, median-of-three pivot); no allocation."""
    for j in range(m):
        work[j] = values[j]
    target = k - 1
    lo = 0
    hi = m - 1
    while lo < hi:
        mid = (lo + hi) // 2
        a, b, c = work[lo], work[mid], work[hi]
        if a < b:
            a, b = b, a
        if b < c:
            b, c = c, b
            if a < b:
                a, b = b, a
        pivot = b
        i = lo
        j = hi
        while i <= j:
            while work[i] > pivot:
                i += 1
            while work[j] < pivot:
                j -= 1
            if i <= j:
                tmp = work[i]
                work[i] = work[j]
                work[j] = tmp
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return work[target]
    return work[target]


@numba.njit(cache=True, parallel=True)
def knn_aggregate(s_indptr, s_indices, s_data, c_indptr, c_indices, c_data,
                  pair_x, pair_y, group_bounds, n_blocks, k, nb_center, nb_scale, col_offset,
                  out_agg, out_count, out_weight):  # pragma: no cover
    """Fill ``out_agg``/``out_count``/``out_weight`` (the similarity sum) for pairs sorted by
    ``pair_x``.

    ``s_*``: similarity CSR (rows x rows); ``c_*``: for each column ``y`` the rows that rated it
    and their ratings (CSR of the transposed rating matrix, rows sorted); ``group_bounds``: the
    start of each run of equal ``pair_x`` plus the end.
    """
    n_groups = group_bounds.shape[0] - 1
    if n_groups <= 0:
        return
    max_col = 0
    for y in range(c_indptr.shape[0] - 1):
        max_col = max(max_col, c_indptr[y + 1] - c_indptr[y])
    n_blocks = max(1, min(n_blocks, n_groups))
    # the parallel loop only hands out blocks: its body is a call, so numba's parallel
    # passes see a few statements, not the whole aggregation (seconds less to compile)
    for blk in numba.prange(n_blocks):
        lo = (blk * n_groups) // n_blocks
        hi = ((blk + 1) * n_groups) // n_blocks
        _aggregate_groups(s_indptr, s_indices, s_data, c_indptr, c_indices, c_data, pair_x,
                          pair_y, group_bounds, lo, hi, max_col, k, nb_center, nb_scale,
                          col_offset, out_agg, out_count, out_weight)


@numba.njit(cache=True)
def _aggregate_groups(s_indptr, s_indices, s_data, c_indptr, c_indices, c_data, pair_x, pair_y,
                      group_bounds, lo, hi, max_col, k, nb_center, nb_scale, col_offset,
                      out_agg, out_count, out_weight):  # pragma: no cover - compiled
    # the groups lo..hi of knn_aggregate, serially, with their own scratch
    n_x = nb_center.shape[0]  # neighbours are indexed like nb_center (s may be rectangular)
    dense = np.zeros(n_x)
    cand_sim = np.empty(max_col)
    cand_dev = np.empty(max_col)
    work = np.empty(max_col)
    for g in range(lo, hi):
        x = pair_x[group_bounds[g]]
        for p in range(s_indptr[x], s_indptr[x + 1]):
            if s_data[p] > 0:
                dense[s_indices[p]] = s_data[p]
        for q in range(group_bounds[g], group_bounds[g + 1]):
            y = pair_y[q]
            m = 0
            for t in range(c_indptr[y], c_indptr[y + 1]):
                nb = c_indices[t]
                s = dense[nb]
                if s > 0:
                    cand_sim[m] = s
                    cand_dev[m] = (c_data[t] - nb_center[nb] - col_offset[y]) / nb_scale[nb]
                    m += 1
            num = 0.0
            den = 0.0
            if m > k:
                # k-th largest similarity; take everything above it, then ties in order
                thr = kth_largest(cand_sim, m, k, work)
                taken = 0
                for j in range(m):
                    if cand_sim[j] > thr:
                        num += cand_sim[j] * cand_dev[j]
                        den += cand_sim[j]
                        taken += 1
                for j in range(m):
                    if taken < k and cand_sim[j] == thr:
                        num += cand_sim[j] * cand_dev[j]
                        den += cand_sim[j]
                        taken += 1
                m = k
            else:
                for j in range(m):
                    num += cand_sim[j] * cand_dev[j]
                    den += cand_sim[j]
            out_agg[q] = num / den if den > 0 else 0.0
            out_count[q] = m
            out_weight[q] = den
        for p in range(s_indptr[x], s_indptr[x + 1]):
            dense[s_indices[p]] = 0.0


def kth_largest_numpy(values, m, k, work):
    """NumPy twin of :func:`kth_largest`."""
    return float(np.sort(np.asarray(values[:m]))[::-1][k - 1])


def knn_aggregate_numpy(s_indptr, s_indices, s_data, c_indptr, c_indices, c_data,
                        pair_x, pair_y, group_bounds, n_blocks, k, nb_center, nb_scale,
                        col_offset, out_agg, out_count, out_weight):
    """Plain-Python twin of :func:`knn_aggregate` (one pair at a time, dictionary lookups)."""
    for q in range(len(pair_x)):
        x, y = int(pair_x[q]), int(pair_y[q])
        sims = {
            int(j): float(v)
            for j, v in zip(s_indices[s_indptr[x]:s_indptr[x + 1]],
                            s_data[s_indptr[x]:s_indptr[x + 1]], strict=True)
            if v > 0
        }
        cands = []
        for t in range(c_indptr[y], c_indptr[y + 1]):
            nb = int(c_indices[t])
            if nb in sims:
                dev = (c_data[t] - nb_center[nb] - col_offset[y]) / nb_scale[nb]
                cands.append((-sims[nb], nb, sims[nb], dev))
        cands.sort()
        cands = cands[:k]
        den = sum(c[2] for c in cands)
        num = sum(c[2] * c[3] for c in cands)
        out_agg[q] = num / den if den > 0 else 0.0
        out_count[q] = len(cands)
        out_weight[q] = den


@numba.njit(cache=True, parallel=True)
def rows_times_sparse(x_indptr, x_indices, x_data, rows, s_indptr, s_indices, s_data,
                      n_cols, out):  # pragma: no cover
    """``out[j] = X[rows[j]] @ S`` for CSR ``X`` and CSR ``S`` (dense output rows)."""
    for j in numba.prange(rows.shape[0]):
        r = rows[j]
        for p in range(x_indptr[r], x_indptr[r + 1]):
            c = x_indices[p]
            w = x_data[p]
            for q in range(s_indptr[c], s_indptr[c + 1]):
                out[j, s_indices[q]] += w * s_data[q]


def rows_times_sparse_numpy(x_indptr, x_indices, x_data, rows, s_indptr, s_indices, s_data,
                            n_cols, out):
    """NumPy/SciPy twin of :func:`rows_times_sparse`."""
    import scipy.sparse as sp

    n_x = len(x_indptr) - 1
    x = sp.csr_matrix((x_data, x_indices, x_indptr), shape=(n_x, len(s_indptr) - 1))
    s = sp.csr_matrix((s_data, s_indices, s_indptr), shape=(len(s_indptr) - 1, n_cols))
    out += (x[rows] @ s).toarray()
