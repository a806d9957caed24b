"""Similarity between the rows of a sparse matrix, kept as the top-k neighbours of each row.

Rows are users (pass the users x items matrix) or items (pass its transpose). The result is a
sparse CSR matrix ``S`` (rows x rows) holding at most ``k`` entries per row, best first, so memory
is O(rows x k); the dense rows x rows matrix is never built.

Measures (``a``, ``b`` two rows; :math:`C` the columns both rows have an entry in, "co-rated"):

``"cosine"``
    :math:`\\frac{a \\cdot b}{\\lVert a \\rVert \\lVert b \\rVert}` over full rows (an absent entry
    counts as 0), e.g. cosine([1, 1, 1], [2, 0, 1]) = 3 / sqrt(15) = 0.77459667.
``"corated_cosine"``
    :math:`\\frac{\\sum_{c \\in C} a_c b_c}{\\sqrt{\\sum_{c \\in C} a_c^2 \\sum_{c \\in C} b_c^2}}`,
    the norms restricted to co-rated columns (Surprise's ``cosine``).
``"adjusted_cosine"``
    corated cosine after subtracting each column's mean from its entries: for item-item
    similarity (rows = items, columns = users) the ratings are centred on each user's mean
    (Sarwar et al. 2001).
``"pearson"``
    Pearson correlation over co-rated columns (means over :math:`C` too), as Surprise's
    ``pearson``.
``"pearson_baseline"``
    corated cosine of the baseline residuals :math:`a_c - (\\mu + b_a + b_c)` (Koren 2010;
    Surprise's ``pearson_baseline``); needs ``baselines=(mu, row_bias, col_bias)``, e.g. from
    :func:`chuchun.models.baseline.fit_biases`. Shrinkage counts :math:`n - 1`, see below.
``"jaccard"``
    :math:`|A \\cap B| / |A \\cup B|` on the sparsity pattern.
``"euclidean"``
    :math:`1 / (1 + \\sqrt{\\sum_{c \\in C} (a_c - b_c)^2})`.
``"msd"``
    :math:`1 / (1 + \\frac{1}{|C|} \\sum_{c \\in C} (a_c - b_c)^2)` (mean squared difference).
``"dot"``
    :math:`a \\cdot b` (for pre-weighted matrices such as TF-IDF or BM25).

Shrinkage :math:`\\lambda` multiplies a similarity by :math:`n / (n + \\lambda)` with
:math:`n = |C|` the co-support (Koren 2010, eq. 5); for ``pearson_baseline``
:math:`n - 1` is used instead of :math:`n` (the correlation's degrees of freedom), as Surprise
does. Pairs with :math:`|C| <` ``min_support`` get no similarity (``pearson_baseline``: at least
2). Zero similarities are not stored.

References
----------
B. Sarwar, G. Karypis, J. Konstan, J. Riedl. Item-based collaborative filtering recommendation
algorithms. WWW 2001.
Y. Koren. Factor in the neighbors: scalable and accurate collaborative filtering. ACM TKDD 4(1),
2010.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError

__all__ = [
    "MEASURES",
    "adjusted_cosine",
    "corated_cosine",
    "cosine",
    "euclidean",
    "jaccard",
    "msd",
    "pearson",
    "pearson_baseline",
    "similarity",
]

MEASURES = (
    "cosine",
    "corated_cosine",
    "adjusted_cosine",
    "pearson",
    "pearson_baseline",
    "jaccard",
    "euclidean",
    "msd",
    "dot",
)

_BUFFER = 16_000_000  # output slots per kernel call when k is None (about 200 MB)
_BUFFER_TOPK = 2_000_000  # output slots per kernel call when k is given (about 24 MB)


def similarity(
    matrix: Any,
    measure: str = "cosine",
    *,
    k: int | None = 50,
    shrinkage: float = 0.0,
    min_support: int = 1,
    baselines: tuple[float, np.ndarray, np.ndarray] | None = None,
    n_threads: int | None = None,
    engine: str = "numba",
    dtype: Any = np.float32,
    rows: tuple[int, int] | None = None,
    exclude_from: int | None = None,
) -> sp.csr_matrix:
    """Top-``k`` most similar rows of every row of ``matrix``.

    Parameters
    ----------
    matrix : scipy sparse matrix, shape (n_rows, n_cols)
        Rows are the entities compared (users, or items via the transpose). Stored entries are
        the observed values (explicit zeros count as observed).
    measure : str
        One of :data:`MEASURES` (see the module docstring for the formulas).
    k : int or None
        Neighbours kept per row; ``None`` keeps every non-zero similarity (memory then grows
        with the number of co-occurring pairs, still never a dense n x n array).
    shrinkage : float
        :math:`\\lambda \\ge 0`; 0 disables shrinkage.
    min_support : int
        Minimum number of co-occurring columns for a pair to get a similarity.
    baselines : (mu, row_bias, col_bias), optional
        Required by ``"pearson_baseline"``.
    n_threads : int, optional
        Threads for the kernel (default: numba's setting).
    engine : {"numba", "numpy"}
        The compiled kernel, or its NumPy twin (slow; for testing).
    dtype : numpy float dtype
        Type of the stored similarities (float32 halves the memory; float64 keeps exact ties).
    rows : (start, stop), optional
        Compute only the neighbours of rows ``start .. stop - 1`` (the result then has
        ``stop - start`` rows); used to compare rows appended to a training matrix (fold-in).
    exclude_from : int, optional
        Only rows with an index below this count as neighbours (the result then has this many
        columns); with ``rows`` it compares appended rows to the original ones only.

    Returns
    -------
    scipy.sparse.csr_matrix of ``dtype``, shape (n_rows, n_rows)
        Row ``x`` holds its neighbours: best first when ``k`` is given; in no particular order
        when ``k`` is None (the matrix is then exactly symmetric: the upper triangle is computed
        and mirrored, half the work). Column indices are therefore not sorted; call
        ``sort_indices()`` where sorted rows are needed.
    """
    from chuchun.kernels import similarity as kern

    x = _as_csr(matrix)
    if measure not in MEASURES:
        raise ConfigError(f"measure must be one of {MEASURES}; got {measure!r}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ConfigError(f"k must be a positive int or None; got {k!r}")
    if not np.isfinite(shrinkage) or shrinkage < 0:
        raise ConfigError(f"shrinkage must be a float >= 0; got {shrinkage!r}")
    if isinstance(min_support, bool) or not isinstance(min_support, (int, np.integer)) or (
        min_support < 0
    ):
        raise ConfigError(f"min_support must be an int >= 0; got {min_support!r}")
    if engine not in ("numba", "numpy"):
        raise ConfigError(f"engine must be 'numba' or 'numpy'; got {engine!r}")
    n_rows = x.shape[0]
    first, last = (0, n_rows) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= first <= last <= n_rows:
        raise ConfigError(f"rows must be (start, stop) within 0..{n_rows}; got {rows!r}")
    n_cols = n_rows if exclude_from is None else int(exclude_from)
    code, shrink_offset = _prepare(x, measure, baselines)
    if measure == "pearson_baseline":
        min_support = max(2, int(min_support))
    xt = x.T.tocsr()
    xt.sort_indices()
    data = x.data.astype(np.float64)
    tdata = xt.data.astype(np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()).astype(np.float64)
    nnz = np.diff(x.indptr).astype(np.float64)
    cap = n_rows if k is None else min(int(k), max(n_rows - 1, 1))
    keep = cap
    if exclude_from is not None and k is not None:
        cap = min(cap + (n_rows - n_cols), max(n_rows - 1, 1))  # room for dropped neighbours
    # rows per kernel call: a bounded scratch buffer (smaller when k bounds the result, so the
    # scratch stays well below the result it fills)
    step = max(1, (_BUFFER if k is None else _BUFFER_TOPK) // max(cap, 1))
    # every measure is symmetric: with k=None compute the upper triangle and mirror it
    upper_only = k is None and rows is None and exclude_from is None
    x_indptr, x_indices = x.indptr.astype(np.int64), x.indices.astype(np.int64)
    t_indptr, t_indices = xt.indptr.astype(np.int64), xt.indices.astype(np.int64)
    fn = kern.similarity_topk if engine == "numba" else kern.similarity_topk_numpy
    indptr = np.zeros(last - first + 1, np.int64)
    if k is not None:
        # the result has at most `keep` entries per row: fill it in place chunk by chunk and
        # shrink it once at the end (no list of parts, no concatenated copy)
        indices = np.empty((last - first) * keep, np.int32)
        values = np.empty((last - first) * keep, dtype)
    idx_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    total = 0
    with kern.thread_limit(n_threads):
        for start in range(first, last, step):
            stop = min(last, start + step)
            out_idx = np.empty((stop - start, cap), dtype=np.int32)
            out_val = np.empty((stop - start, cap), dtype=dtype)
            out_cnt = np.zeros(stop - start, dtype=np.int64)
            fn(x_indptr, x_indices, data, t_indptr, t_indices, tdata, norms, nnz,
               code, cap, int(min_support), float(shrinkage), shrink_offset, upper_only,
               start, stop, kern.default_blocks(), out_idx, out_val, out_cnt)
            mask = np.arange(cap)[None, :] < out_cnt[:, None]
            if exclude_from is not None:
                mask &= out_idx < n_cols
                if k is not None:  # the rows are best first: keep the first `keep` left
                    mask &= np.cumsum(mask, axis=1) <= keep
                out_cnt = mask.sum(axis=1)
            n_new = int(out_cnt.sum())
            if k is not None:
                indices[total:total + n_new] = out_idx[mask]
                values[total:total + n_new] = out_val[mask]
            else:
                idx_parts.append(out_idx[mask])
                val_parts.append(out_val[mask])
            indptr[start - first + 1:stop - first + 1] = total + np.cumsum(out_cnt)
            total += n_new
            del out_idx, out_val, mask
    if k is not None:
        if total < len(indices):  # give the unused tail back (in place, no copy)
            indices.resize(total, refcheck=False)
            values.resize(total, refcheck=False)
    else:
        indices = np.concatenate(idx_parts) if idx_parts else np.empty(0, np.int32)
        values = np.concatenate(val_parts) if val_parts else np.empty(0, dtype)
        del idx_parts, val_parts
    if upper_only:
        mirror = kern.mirror_upper if engine == "numba" else kern.mirror_upper_numpy
        full_indptr = np.empty(n_rows + 1, dtype=np.int64)
        full_indices = np.empty(2 * len(indices), dtype=np.int32)
        full_values = np.empty(2 * len(values), dtype=values.dtype)
        mirror(indptr, indices, values, full_indptr, full_indices, full_values)
        indptr, indices, values = full_indptr, full_indices, full_values
    out = sp.csr_matrix((values, indices, indptr), shape=(last - first, n_cols))
    out.has_sorted_indices = False
    return out


def _as_csr(matrix: Any) -> sp.csr_matrix:
    if not sp.issparse(matrix):
        arr = np.asarray(matrix)
        if arr.ndim != 2 or arr.dtype.kind not in "biuf":
            raise DataError(
                f"similarity expects a 2-d numeric (sparse) matrix; got an array of shape "
                f"{arr.shape} and dtype {arr.dtype}"
            )
        matrix = sp.csr_matrix(arr)
    x = sp.csr_matrix(matrix, copy=True)
    if x.dtype.kind not in "biuf":
        raise DataError(f"similarity expects numeric values; got dtype {x.dtype}")
    if x.nnz and not np.all(np.isfinite(x.data)):
        raise DataError("similarity input holds NaN or infinite values")
    x.sum_duplicates()
    x.sort_indices()
    return x


def _prepare(
    x: sp.csr_matrix, measure: str, baselines: tuple[float, np.ndarray, np.ndarray] | None
) -> tuple[int, int]:
    """Transform ``x.data`` in place for the measure; return the kernel code and shrink offset."""
    from chuchun.kernels import similarity as kern

    if measure == "adjusted_cosine":
        col_sum = np.bincount(x.indices, weights=x.data, minlength=x.shape[1])
        col_cnt = np.bincount(x.indices, minlength=x.shape[1])
        col_mean = col_sum / np.maximum(col_cnt, 1)
        x.data = x.data - col_mean[x.indices]
        return kern.MEASURE_CORATED_COSINE, 0
    if measure == "pearson_baseline":
        if baselines is None:
            raise ConfigError(
                "measure 'pearson_baseline' needs baselines=(mu, row_bias, col_bias); "
                "get them from chuchun.models.baseline.fit_biases"
            )
        mu, row_bias, col_bias = baselines
        row_bias = np.asarray(row_bias, dtype=np.float64)
        col_bias = np.asarray(col_bias, dtype=np.float64)
        if row_bias.shape != (x.shape[0],) or col_bias.shape != (x.shape[1],):
            raise DataError(
                f"baselines must have shapes ({x.shape[0]},) and ({x.shape[1]},) for a "
                f"{x.shape} matrix; got {row_bias.shape} and {col_bias.shape}"
            )
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        x.data = x.data - (float(mu) + row_bias[rows] + col_bias[x.indices])
        return kern.MEASURE_CORATED_COSINE, 1
    if measure == "jaccard":
        x.data = np.ones_like(x.data)
    if measure == "cosine" and x.nnz and np.all(x.data == 1):
        return kern.MEASURE_BINARY_COSINE, 0
    codes = {
        "cosine": (kern.MEASURE_COSINE, 0),
        "corated_cosine": (kern.MEASURE_CORATED_COSINE, 0),
        "pearson": (kern.MEASURE_PEARSON, 0),
        "jaccard": (kern.MEASURE_JACCARD, 0),
        "euclidean": (kern.MEASURE_EUCLIDEAN, 0),
        "msd": (kern.MEASURE_MSD, 0),
        "dot": (kern.MEASURE_DOT, 0),
    }
    return codes[measure]


def _named(measure: str) -> Any:
    def fn(matrix: Any, **kwargs: Any) -> sp.csr_matrix:
        return similarity(matrix, measure, **kwargs)

    fn.__name__ = measure
    fn.__qualname__ = measure
    fn.__doc__ = f"``similarity(matrix, {measure!r}, **kwargs)``; see :func:`similarity`."
    return fn


cosine = _named("cosine")
corated_cosine = _named("corated_cosine")
adjusted_cosine = _named("adjusted_cosine")
pearson = _named("pearson")
pearson_baseline = _named("pearson_baseline")
jaccard = _named("jaccard")
euclidean = _named("euclidean")
msd = _named("msd")
