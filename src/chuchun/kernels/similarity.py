"""Top-k row similarities of a sparse matrix, never materialising the dense n x n matrix.

For every row ``x`` the kernel walks the rows ``y`` that share a column with ``x`` (through the
transposed matrix) and accumulates, over the co-occurring columns ``c``, the sufficient
statistics

.. math:: n_{xy} = |C_{xy}|,\\; S_{ab} = \\sum_c a_c b_c,\\; S_{aa} = \\sum_c a_c^2,\\;
          S_{bb} = \\sum_c b_c^2,\\; S_a = \\sum_c a_c,\\; S_b = \\sum_c b_c

with ``a = X[x]`` and ``b = X[y]``. Every measure is a function of them (``MEASURE_*`` codes):

- ``COSINE``: :math:`S_{ab} / (\\lVert a \\rVert \\lVert b \\rVert)` with full-row norms;
- ``CORATED_COSINE``: :math:`S_{ab} / \\sqrt{S_{aa} S_{bb}}` (norms over co-rated entries only;
  also adjusted cosine and Pearson-baseline once the caller has centred the data);
- ``PEARSON``: :math:`(n S_{ab} - S_a S_b) / \\sqrt{(n S_{aa} - S_a^2)(n S_{bb} - S_b^2)}`;
- ``JACCARD``: :math:`n / (|a| + |b| - n)` on the sparsity pattern;
- ``EUCLIDEAN``: :math:`1 / (1 + \\sqrt{S_{aa} + S_{bb} - 2 S_{ab}})`;
- ``MSD``: :math:`1 / (1 + (S_{aa} + S_{bb} - 2 S_{ab}) / n)`;
- ``DOT``: :math:`S_{ab}`;
- ``BINARY_COSINE``: ``COSINE`` for 0/1 rows, where :math:`S_{ab} = n`.

Pairs with :math:`n < ` ``min_support`` get no similarity; with ``shrinkage`` :math:`\\lambda > 0`
the similarity is multiplied by :math:`(n - o) / (n - o + \\lambda)` (``o`` = ``shrink_offset``).
Zero and non-finite similarities and ``y == x`` are dropped; the ``k`` largest remain, ties
broken by the lower row index, stored best first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba
import numpy as np

from chuchun.kernels.knn import kth_largest

MEASURE_COSINE = 0
MEASURE_CORATED_COSINE = 1
MEASURE_PEARSON = 2
MEASURE_JACCARD = 3
MEASURE_EUCLIDEAN = 4
MEASURE_MSD = 5
MEASURE_DOT = 6
MEASURE_BINARY_COSINE = 7  # cosine of 0/1 rows: S_ab = n, so only counts are accumulated


def default_blocks() -> int:
    """Parallel blocks per kernel call: a few per thread, for load balance."""
    return 8 * numba.get_num_threads()


@contextlib.contextmanager
def thread_limit(n_threads: int | None) -> Iterator[None]:
    """Run the enclosed parallel kernels on ``n_threads`` threads (``None``: numba's default)."""
    if n_threads is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@numba.njit(cache=True, inline="always")
def _measure(measure, n, sab, saa, sbb, sa, sb, norm_x, norm_y, nnz_x, nnz_y):  # pragma: no cover
    if measure == 0:
        den = norm_x * norm_y
        return sab / den if den > 0 else 0.0
    if measure == 1:
        den = saa * sbb
        return sab / np.sqrt(den) if den > 0 else 0.0
    if measure == 2:
        den = (n * saa - sa * sa) * (n * sbb - sb * sb)
        return (n * sab - sa * sb) / np.sqrt(den) if den > 0 else 0.0
    if measure == 3:
        return n / (nnz_x + nnz_y - n)
    if measure == 4:
        d2 = saa + sbb - 2.0 * sab
        return 1.0 / (1.0 + np.sqrt(d2 if d2 > 0 else 0.0))
    if measure == 5:
        d2 = saa + sbb - 2.0 * sab
        return 1.0 / (1.0 + (d2 if d2 > 0 else 0.0) / n)
    if measure == 7:
        den = norm_x * norm_y
        return n / den if den > 0 else 0.0
    return sab


@numba.njit(cache=True, parallel=True)
def similarity_topk(indptr, indices, data, t_indptr, t_indices, t_data, norms, nnz,
                    measure, k, min_support, shrinkage, shrink_offset, upper_only,
                    row_start, row_end, n_blocks, out_idx, out_val, out_cnt):  # pragma: no cover
    """Fill ``out_idx/out_val[r - row_start, :out_cnt[...]]`` for rows ``row_start..row_end``.

    ``indptr/indices/data`` is the CSR of X, ``t_*`` the CSR of X.T with sorted indices;
    ``norms`` the full-row L2 norms, ``nnz`` the row lengths; ``k`` the capacity of each output
    row. With ``upper_only`` only neighbours ``y > x`` are considered (half the work; the caller
    mirrors the result). Rows are processed in ``n_blocks`` parallel blocks, each with its own
    O(n_rows) scratch.
    """
    n_work = row_end - row_start
    if n_work <= 0:
        return
    n_blocks = max(1, min(n_work, n_blocks))
    # the parallel loop only hands out blocks: its body is a call, so numba's parallel
    # passes see a few statements, not the whole row loop (seconds less to compile)
    for blk in numba.prange(n_blocks):
        lo = row_start + (blk * n_work) // n_blocks
        hi = row_start + ((blk + 1) * n_work) // n_blocks
        _topk_rows(indptr, indices, data, t_indptr, t_indices, t_data, norms, nnz, measure, k,
                   min_support, shrinkage, shrink_offset, upper_only, row_start, lo, hi,
                   out_idx, out_val, out_cnt)


@numba.njit(cache=True)
def _topk_rows(indptr, indices, data, t_indptr, t_indices, t_data, norms, nnz, measure, k,
               min_support, shrinkage, shrink_offset, upper_only, row_start, lo, hi,
               out_idx, out_val, out_cnt):  # pragma: no cover - compiled
    # rows lo..hi of similarity_topk, serially, with their own O(n_rows) scratch
    n_rows = indptr.shape[0] - 1
    need_sq = measure == 1 or measure == 2 or measure == 4 or measure == 5
    need_s = measure == 2
    count_only = measure == 3 or measure == 7
    width = 6 if need_s else (4 if need_sq else (1 if count_only else 2))
    acc = np.zeros((n_rows, width))
    touched = np.empty(n_rows, np.int64)
    cand_idx = np.empty(n_rows, np.int64)
    cand_val = np.empty(n_rows)
    sel_idx = np.empty(k, np.int64)
    sel_val = np.empty(k)
    tie_idx = np.empty(n_rows, np.int64)
    work = np.empty(n_rows)
    tie_key = np.empty(n_rows)
    for x in range(lo, hi):
        nt = 0
        for p in range(indptr[x], indptr[x + 1]):
            c = indices[p]
            a = data[p]
            q0 = t_indptr[c]
            q1 = t_indptr[c + 1]
            if upper_only:
                q0 = q0 + np.searchsorted(t_indices[q0:q1], x, side="right")
            for q in range(q0, q1):
                y = t_indices[q]
                b = t_data[q]
                if acc[y, 0] == 0.0:
                    touched[nt] = y
                    nt += 1
                acc[y, 0] += 1.0
                if not count_only:
                    acc[y, 1] += a * b
                if need_sq:
                    acc[y, 2] += a * a
                    acc[y, 3] += b * b
                if need_s:
                    acc[y, 4] += a
                    acc[y, 5] += b
        order = touched[:nt]
        m = 0
        for t in range(nt):
            y = order[t]
            n = acc[y, 0]
            if y != x and n >= min_support:
                if need_s:
                    s = _measure(measure, n, acc[y, 1], acc[y, 2], acc[y, 3], acc[y, 4],
                                 acc[y, 5], norms[x], norms[y], nnz[x], nnz[y])
                elif need_sq:
                    s = _measure(measure, n, acc[y, 1], acc[y, 2], acc[y, 3], 0.0, 0.0,
                                 norms[x], norms[y], nnz[x], nnz[y])
                else:
                    s = _measure(measure, n, n if count_only else acc[y, 1], 0.0, 0.0,
                                 0.0, 0.0,
                                 norms[x], norms[y], nnz[x], nnz[y])
                if shrinkage > 0.0:
                    nn = n - shrink_offset
                    s = s * nn / (nn + shrinkage) if nn > 0 else 0.0
                if s != 0.0 and np.isfinite(s):
                    cand_idx[m] = y
                    cand_val[m] = s
                    m += 1
            for w in range(width):
                acc[y, w] = 0.0
        r = x - row_start
        if m > k:
            # the k-th largest value; everything above it, then the lowest-index ties
            thr = kth_largest(cand_val, m, k, work)
            kept = 0
            n_ties = 0
            for j in range(m):
                if cand_val[j] > thr:
                    sel_idx[kept] = cand_idx[j]
                    sel_val[kept] = cand_val[j]
                    kept += 1
                elif cand_val[j] == thr:
                    tie_idx[n_ties] = cand_idx[j]
                    n_ties += 1
            need = k - kept
            if n_ties > need:  # keep the ``need`` lowest indices among the ties
                for j in range(n_ties):
                    tie_key[j] = -float(tie_idx[j])
                cut = -kth_largest(tie_key, n_ties, need, work)
                for j in range(n_ties):
                    if tie_idx[j] <= cut:
                        sel_idx[kept] = tie_idx[j]
                        sel_val[kept] = thr
                        kept += 1
            else:
                for j in range(n_ties):
                    sel_idx[kept] = tie_idx[j]
                    sel_val[kept] = thr
                    kept += 1
            by_idx = np.argsort(sel_idx)
            by_val = np.argsort(-sel_val[by_idx], kind="mergesort")
            for j in range(k):
                out_idx[r, j] = sel_idx[by_idx[by_val[j]]]
                out_val[r, j] = sel_val[by_idx[by_val[j]]]
            out_cnt[r] = k
        elif upper_only:
            for j in range(m):
                out_idx[r, j] = cand_idx[j]
                out_val[r, j] = cand_val[j]
            out_cnt[r] = m
        else:
            by_idx = np.argsort(cand_idx[:m])
            by_val = np.argsort(-cand_val[:m][by_idx], kind="mergesort")
            for j in range(m):
                out_idx[r, j] = cand_idx[by_idx[by_val[j]]]
                out_val[r, j] = cand_val[by_idx[by_val[j]]]
            out_cnt[r] = m


@numba.njit(cache=True)
def mirror_upper(indptr, indices, data, out_indptr, out_indices, out_data):  # pragma: no cover
    """Full symmetric CSR from its strict upper triangle (``out_*`` sized 2 x nnz, n + 1)."""
    n = indptr.shape[0] - 1
    counts = np.zeros(n, np.int64)
    for r in range(n):
        counts[r] += indptr[r + 1] - indptr[r]
        for p in range(indptr[r], indptr[r + 1]):
            counts[indices[p]] += 1
    out_indptr[0] = 0
    for r in range(n):
        out_indptr[r + 1] = out_indptr[r] + counts[r]
    fill = out_indptr[:-1].copy()
    for r in range(n):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            v = data[p]
            out_indices[fill[r]] = c
            out_data[fill[r]] = v
            fill[r] += 1
            out_indices[fill[c]] = r
            out_data[fill[c]] = v
            fill[c] += 1


def mirror_upper_numpy(indptr, indices, data, out_indptr, out_indices, out_data):
    """SciPy twin of :func:`mirror_upper` (rows come out sorted)."""
    import scipy.sparse as sp

    n = len(indptr) - 1
    u = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    full = (u + u.T).tocsr()
    full.sort_indices()
    out_indptr[:] = full.indptr
    out_indices[:] = full.indices
    out_data[:] = full.data


def similarity_topk_numpy(indptr, indices, data, t_indptr, t_indices, t_data, norms, nnz,
                          measure, k, min_support, shrinkage, shrink_offset, upper_only,
                          row_start, row_end, n_blocks, out_idx, out_val, out_cnt):
    """NumPy twin of :func:`similarity_topk`: the statistics come from sparse matrix products."""
    import scipy.sparse as sp

    n_rows = len(indptr) - 1
    n_cols = int(indices.max()) + 1 if len(indices) else 0
    n_cols = max(n_cols, len(t_indptr) - 1)
    x = sp.csr_matrix((data.astype(np.float64), indices, indptr), shape=(n_rows, n_cols))
    b = x.copy()
    b.data = np.ones_like(b.data)
    x2 = x.multiply(x).tocsr()
    rows = slice(row_start, row_end)
    cnt = (b[rows] @ b.T).toarray()
    sab = (x[rows] @ x.T).toarray()
    saa = (x2[rows] @ b.T).toarray()
    sbb = (b[rows] @ x2.T).toarray()
    sa = (x[rows] @ b.T).toarray()
    sb = (b[rows] @ x.T).toarray()
    with np.errstate(divide="ignore", invalid="ignore"):
        nx = norms[rows][:, None]
        ny = norms[None, :]
        if measure == MEASURE_COSINE or measure == MEASURE_BINARY_COSINE:
            s = np.where(nx * ny > 0, sab / (nx * ny), 0.0)
        elif measure == MEASURE_CORATED_COSINE:
            s = np.where(saa * sbb > 0, sab / np.sqrt(saa * sbb), 0.0)
        elif measure == MEASURE_PEARSON:
            den = (cnt * saa - sa**2) * (cnt * sbb - sb**2)
            s = np.where(den > 0, (cnt * sab - sa * sb) / np.sqrt(den), 0.0)
        elif measure == MEASURE_JACCARD:
            s = cnt / (nnz[rows][:, None] + nnz[None, :] - cnt)
        elif measure == MEASURE_EUCLIDEAN:
            s = 1.0 / (1.0 + np.sqrt(np.maximum(saa + sbb - 2 * sab, 0.0)))
        elif measure == MEASURE_MSD:
            s = 1.0 / (1.0 + np.maximum(saa + sbb - 2 * sab, 0.0) / cnt)
        else:
            s = sab
        if shrinkage > 0:
            nn = cnt - shrink_offset
            s = np.where(nn > 0, s * nn / (nn + shrinkage), 0.0)
    s = np.where((cnt >= max(min_support, 1)) & np.isfinite(s), s, 0.0)
    for r, xr in enumerate(range(row_start, row_end)):
        s[r, xr] = 0.0
        if upper_only:
            s[r, : xr + 1] = 0.0
        cand = np.flatnonzero(s[r] != 0)
        if upper_only and len(cand) <= k:
            order = cand
        else:
            order = cand[np.lexsort((cand, -s[r, cand]))][:k]
        out_idx[r, : len(order)] = order
        out_val[r, : len(order)] = s[r, order]
        out_cnt[r] = len(order)
