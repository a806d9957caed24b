"""Compiled loops for explicit-feedback matrix factorization, each with a plain NumPy twin.

Notation follows the papers: :math:`\\mu` global mean, ``bu``/``bi`` user and item biases,
``P`` user factors :math:`p_u`, ``Q`` item factors :math:`q_i`, ``Y`` SVD++ implicit factors
:math:`y_j`. Factors are ``float32`` (``n x k``, C order), indices ``int32``, offsets ``int64``.
Every kernel writes into the arrays it is given and allocates no output.

``sgd_epoch``
    One epoch of biased-MF SGD (Funk 2006; Koren, Bell & Volinsky 2009, eq. 5) over rows grouped
    into ``n_strata x n_strata`` blocks (Gemulla et al. 2011, DSGD): in sub-epoch ``s`` the
    blocks ``(t, (t + s) mod n_strata)`` share no user and no item, so they run in parallel
    without races and the result depends on the seed and ``n_strata`` only, never on thread
    timing. With one stratum it is plain sequential SGD in the given order.
``svdpp_epoch``
    One epoch of SVD++ SGD (Koren 2008, eq. 15 and the updates below it) in the exact order of
    Surprise's ``SVDpp``: ratings grouped by user. The :math:`y_j` updates of one user are applied
    lazily (see the function) so an epoch costs :math:`O(\\sum_u |N(u)| k)` instead of
    :math:`O(\\sum_u |N(u)|^2 k)`, with the same result.
``als_half_step``
    One half-step of explicit ALS with biases: for each row solve the regularised least
    squares of its ratings against the fixed other side (Zhou et al. 2008, weighted-λ), by a
    Cholesky factorisation in place of the :math:`(k+1)^2` normal equations, or of the
    :math:`n \times n` dual system for a row with fewer ratings ``n`` than unknowns.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic


__all__ = [
    "max_threads",
    "numba_threads",
    "als_half_step",
    "als_half_step_numpy",
    "als_row_bounds",
    "sgd_epoch",
    "sgd_epoch_numpy",
    "svdpp_epoch",
    "svdpp_epoch_numpy",
]


# -- biased MF by SGD -------------------------------------------------------------------------
@intrinsic
def _prefetch(typingctx, arr, row, col):  # pragma: no cover - compiled
    """Hint the CPU to fetch the cache line holding ``arr[row, col]`` (LLVM ``prefetch``,
    read, keep in all cache levels); no effect on results, a no-op where unsupported."""

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [context.cast(builder, args[1], sig.args[1], types.intp),
               context.cast(builder, args[2], sig.args[2], types.intp)]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, row, col), codegen


_AHEAD = 4  # SGD: ratings ahead whose factor rows are prefetched


@numba.njit(cache=True, nogil=True, fastmath=True)
def _sgd_rows(u, i, r, rows, start, end, mu, bu, bi, P, Q, lr_bias, lr_factor, reg_bias,
              reg_factor, update_bias):  # pragma: no cover - compiled
    # factor arithmetic in float32 so the two loops over f vectorise; the factor rows of the
    # rating _AHEAD places on are prefetched (a 16-float step is one 64-byte cache line), so
    # an item row that is not in cache arrives while the current rating is computed
    k = P.shape[1]
    lrf = np.float32(lr_factor)
    # p + lr (e q - reg p) = shrink p + (lr e) q: one multiply and one fused multiply-add
    shrink = np.float32(1.0 - lr_factor * reg_factor)
    acc = 0.0
    for pos in range(start, end):
        if pos + _AHEAD < end:
            nxt = rows[pos + _AHEAD]
            nu = u[nxt]
            ni = i[nxt]
            for c in range(0, k, 16):
                _prefetch(Q, ni, c)
                _prefetch(P, nu, c)
            _prefetch(Q, ni, k - 1)  # a row need not start on a cache line
            _prefetch(P, nu, k - 1)
        row = rows[pos]
        uu = u[row]
        ii = i[row]
        p = P[uu]
        q = Q[ii]
        dot = np.float32(0.0)
        for f in range(k):
            dot += p[f] * q[f]
        if update_bias:
            e = r[row] - (mu + bu[uu] + bi[ii] + dot)
            bu[uu] += lr_bias * (e - reg_bias * bu[uu])
            bi[ii] += lr_bias * (e - reg_bias * bi[ii])
        else:
            e = r[row] - dot
        acc += e * e
        step = lrf * np.float32(e)
        for f in range(k):
            puf = p[f]
            qif = q[f]
            p[f] = shrink * puf + step * qif
            q[f] = shrink * qif + step * puf
    return acc


@numba.njit(cache=True, nogil=True)
def _sgd_epoch_serial(u, i, r, rows, mu, bu, bi, P, Q, lr_bias, lr_factor, reg_bias,
                      reg_factor, update_bias):  # pragma: no cover - compiled
    return _sgd_rows(u, i, r, rows, 0, rows.shape[0], mu, bu, bi, P, Q, lr_bias, lr_factor,
                     reg_bias, reg_factor, update_bias)


@numba.njit(cache=True, nogil=True, parallel=True)
def _sgd_epoch_strata(u, i, r, rows, block_ptr, n_strata, mu, bu, bi, P, Q, lr_bias,
                      lr_factor, reg_bias, reg_factor, update_bias,
                      sse_out):  # pragma: no cover - compiled
    for t in range(n_strata):
        sse_out[t] = 0.0
    for s in range(n_strata):
        for t in prange(n_strata):
            blk = t * n_strata + (t + s) % n_strata
            sse_out[t] += _sgd_rows(u, i, r, rows, block_ptr[blk], block_ptr[blk + 1], mu, bu,
                                    bi, P, Q, lr_bias, lr_factor, reg_bias, reg_factor,
                                    update_bias)


def sgd_epoch(u, i, r, rows, block_ptr, n_strata, mu, bu, bi, P, Q, lr_bias, lr_factor,
              reg_bias, reg_factor, update_bias, sse_out):
    """One SGD epoch; ``rows`` lists row ids block by block, block ``a * n_strata + b`` (user
    stratum ``a``, item stratum ``b``) spanning ``rows[block_ptr[ab]:block_ptr[ab + 1]]``.

    For each rating, with :math:`e = r - \\mu - b_u - b_i - p_u^T q_i` (``update_bias``
    false: :math:`e = r - p_u^T q_i` and the biases stay untouched)::

        b_u += lr_bias * (e - reg_bias * b_u);  b_i += lr_bias * (e - reg_bias * b_i)
        p_u += lr_factor * (e q_i - reg_factor p_u);  q_i += lr_factor * (e p_u - reg_factor q_i)

    ``sse_out[t]`` receives the sum of squared errors (before each update) of stratum ``t``.
    One stratum runs a plain sequential loop (no thread pool); more run the blocks of each
    sub-epoch in parallel. The factor arithmetic is float32 (vectorised).
    """
    if n_strata == 1:
        sse_out[0] = _sgd_epoch_serial(u, i, r, rows, mu, bu, bi, P, Q, lr_bias, lr_factor,
                                       reg_bias, reg_factor, update_bias)
    else:
        _sgd_epoch_strata(u, i, r, rows, block_ptr, n_strata, mu, bu, bi, P, Q, lr_bias,
                          lr_factor, reg_bias, reg_factor, update_bias, sse_out)


def sgd_epoch_numpy(u, i, r, rows, block_ptr, n_strata, mu, bu, bi, P, Q, lr_bias, lr_factor,
                    reg_bias, reg_factor, update_bias, sse_out):
    """Plain NumPy twin of :func:`sgd_epoch` (blocks run one after another)."""
    sse_out[:] = 0.0
    for s in range(n_strata):
        for t in range(n_strata):
            blk = t * n_strata + (t + s) % n_strata
            for row in rows[block_ptr[blk]:block_ptr[blk + 1]]:
                uu, ii = u[row], i[row]
                dot = float(np.dot(P[uu].astype(np.float64), Q[ii].astype(np.float64)))
                if update_bias:
                    e = r[row] - (mu + bu[uu] + bi[ii] + dot)
                    bu[uu] += lr_bias * (e - reg_bias * bu[uu])
                    bi[ii] += lr_bias * (e - reg_bias * bi[ii])
                else:
                    e = r[row] - dot
                sse_out[t] += e * e
                pu = P[uu].copy()
                qi = Q[ii].copy()
                P[uu] = pu + lr_factor * (e * qi - reg_factor * pu)
                Q[ii] = qi + lr_factor * (e * pu - reg_factor * qi)


# -- SVD++ -------------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def svdpp_epoch(indptr, indices, data, user_order, mu, bu, bi, P, Q, Y, lr_bias, lr_factor,
                reg_bias, reg_factor, lr_implicit, reg_implicit):  # pragma: no cover - compiled
    """One SVD++ epoch over users in ``user_order``, each user's ratings in CSR order.

    Prediction :math:`\\hat r_{ui} = \\mu + b_u + b_i + q_i^T (p_u + |N(u)|^{-1/2}
    \\sum_{j \\in N(u)} y_j)` with :math:`N(u)` the items of row ``u``. Per rating the updates
    are those of Koren (2008) / Surprise (``lr_bias``/``reg_bias`` for the biases,
    ``lr_factor``/``reg_factor`` for :math:`p_u, q_i`), every :math:`y_j, j \\in N(u)` moving by
    ``lr_implicit * (e |N(u)|^{-1/2} q_i - reg_implicit * y_j)`` (Surprise: the factor values).
    That update is the same affine map for every ``j`` of the user, so the ``n`` maps compose to
    ``y_j <- c y_j + g``: the kernel keeps ``c``, ``g`` and the implicit sum ``z`` (which moves by
    ``a z + lr_implicit e q_i``, ``a = 1 - lr_implicit reg_implicit``) and writes the ``y_j``
    once per user. Returns the sum of squared errors before each update.
    """
    k = P.shape[1]
    z = np.zeros(k)
    g = np.zeros(k)
    a = 1.0 - lr_implicit * reg_implicit
    sse = 0.0
    for uu in user_order:
        start = indptr[uu]
        end = indptr[uu + 1]
        n = end - start
        if n == 0:
            continue
        norm = 1.0 / math.sqrt(n)
        for f in range(k):
            z[f] = 0.0
            g[f] = 0.0
        for pos in range(start, end):
            j = indices[pos]
            for f in range(k):
                z[f] += Y[j, f]
        for f in range(k):
            z[f] *= norm
        c = 1.0
        for pos in range(start, end):
            ii = indices[pos]
            dot = 0.0
            for f in range(k):
                dot += Q[ii, f] * (P[uu, f] + z[f])
            e = data[pos] - (mu + bu[uu] + bi[ii] + dot)
            sse += e * e
            bu[uu] += lr_bias * (e - reg_bias * bu[uu])
            bi[ii] += lr_bias * (e - reg_bias * bi[ii])
            for f in range(k):
                puf = P[uu, f]
                qif = Q[ii, f]
                P[uu, f] = puf + lr_factor * (e * qif - reg_factor * puf)
                Q[ii, f] = qif + lr_factor * (e * (puf + z[f]) - reg_factor * qif)
                g[f] = a * g[f] + lr_implicit * e * qif * norm
                z[f] = a * z[f] + lr_implicit * e * qif
            c *= a
        for pos in range(start, end):
            j = indices[pos]
            for f in range(k):
                Y[j, f] = c * Y[j, f] + g[f]
    return sse


def svdpp_epoch_numpy(indptr, indices, data, user_order, mu, bu, bi, P, Q, Y, lr_bias,
                      lr_factor, reg_bias, reg_factor, lr_implicit, reg_implicit):
    """Literal per-rating SVD++ (as in Surprise's ``SVDpp.sgd``): twin of :func:`svdpp_epoch`."""
    sse = 0.0
    for uu in user_order:
        items = indices[indptr[uu]:indptr[uu + 1]]
        if len(items) == 0:
            continue
        norm = 1.0 / np.sqrt(len(items))
        for pos in range(indptr[uu], indptr[uu + 1]):
            ii = indices[pos]
            z = Y[items].astype(np.float64).sum(axis=0) * norm
            e = data[pos] - (mu + bu[uu] + bi[ii] + float(Q[ii] @ (P[uu] + z)))
            sse += e * e
            bu[uu] += lr_bias * (e - reg_bias * bu[uu])
            bi[ii] += lr_bias * (e - reg_bias * bi[ii])
            pu = P[uu].copy()
            qi = Q[ii].copy()
            P[uu] = pu + lr_factor * (e * qi - reg_factor * pu)
            Q[ii] = qi + lr_factor * (e * (pu + z) - reg_factor * qi)
            Y[items] = Y[items] + lr_implicit * (e * norm * qi[None, :]
                                                 - reg_implicit * Y[items])
    return sse


# -- explicit ALS ------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True, fastmath=True)
def _chol_solve(A, rhs, n):  # pragma: no cover - compiled
    # in-place Cholesky of the lower triangle of A[:n, :n], then the two triangular solves;
    # a non-positive pivot (numerically singular system) is floored instead of failing
    for j in range(n):
        s = A[j, j]
        for c in range(j):
            s -= A[j, c] * A[j, c]
        s = math.sqrt(s) if s > 1e-300 else 1e-150
        A[j, j] = s
        inv = 1.0 / s
        for a in range(j + 1, n):
            t = A[a, j]
            for c in range(j):
                t -= A[a, c] * A[j, c]
            A[a, j] = t * inv
    for a in range(n):
        t = rhs[a]
        for c in range(a):
            t -= A[a, c] * rhs[c]
        rhs[a] = t / A[a, a]
    for a in range(n - 1, -1, -1):
        t = rhs[a]
        for c in range(a + 1, n):
            t -= A[c, a] * rhs[c]
        rhs[a] = t / A[a, a]


_DUAL_RATIO = 1e-3  # the dual form is used when 1e-3 <= reg_bias / reg_factor <= 1e3
_N_BLOCKS = 64  # row blocks of a half-step, shared out among the threads
_CHUNK = 8  # ratings per Gram update in _als_rows (the update is unrolled for exactly 8)


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def _als_rows(indptr, indices, data, Y, b_other, mu, reg_factor, reg_bias, weighted, fit_bias,
              bounds, X_out, b_out, sse_out):  # pragma: no cover - compiled
    # the dual (kernel) form needs D^-1, and penalties of similar scale: a bias penalty far
    # below the factor one adds a huge constant to every dual entry and cancels their digits
    dual_ok = reg_factor > 0.0 and (not fit_bias or (
        reg_bias >= _DUAL_RATIO * reg_factor and reg_factor >= _DUAL_RATIO * reg_bias))
    # the parallel loop only hands out blocks: its body is a call, so numba's parallel
    # passes see a few statements, not the whole row solver (seconds less to compile)
    for blk in prange(bounds.shape[0] - 1):
        sse_out[blk] = _als_block(indptr, indices, data, Y, b_other, mu, reg_factor, reg_bias,
                                  weighted, fit_bias, dual_ok, bounds[blk], bounds[blk + 1],
                                  X_out, b_out)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _als_block(indptr, indices, data, Y, b_other, mu, reg_factor, reg_bias, weighted, fit_bias,
               dual_ok, lo, hi, X_out, b_out):  # pragma: no cover - compiled
    # rows lo..hi of _als_rows, serially; returns their squared error
    k = Y.shape[1]
    off = 1 if fit_bias else 0
    d = k + off
    # scratch of this block, reused for all its rows
    A = np.empty((d, d))
    rhs = np.empty(d)
    x = np.empty(d)
    Z = np.empty((_CHUNK, d))
    tq = np.empty(_CHUNK)
    sse = 0.0
    for uu in range(lo, hi):
        start = indptr[uu]
        end = indptr[uu + 1]
        n = end - start
        if n == 0:
            for f in range(k):
                X_out[uu, f] = 0.0
            if fit_bias:
                b_out[uu] = 0.0
            continue
        w = float(n) if weighted else 1.0
        bias = 0.0
        if dual_ok and n < d:
            # (Z^T Z + D)^-1 Z^T t = D^-1 Z^T (Z D^-1 Z^T + I)^-1 t: an n x n system
            inv_f = 1.0 / (w * reg_factor)
            inv_b = 1.0 / (w * reg_bias) if fit_bias else 0.0
            for a in range(n):
                ja = indices[start + a]
                rhs[a] = data[start + a] - mu - b_other[ja]
                for b in range(a + 1):
                    jb = indices[start + b]
                    s = 0.0
                    for f in range(k):
                        s += np.float64(Y[ja, f]) * np.float64(Y[jb, f])
                    A[a, b] = s * inv_f + inv_b
                A[a, a] += 1.0
            _chol_solve(A, rhs, n)
            for f in range(k):
                x[f] = 0.0
            for a in range(n):
                ja = indices[start + a]
                alpha = rhs[a]
                bias += alpha
                for f in range(k):
                    x[f] += alpha * Y[ja, f]
            bias *= inv_b
            for f in range(k):
                x[f] *= inv_f
        else:
            for a in range(d):
                rhs[a] = 0.0
                for b in range(a + 1):
                    A[a, b] = 0.0
            # Gram matrix Z^T Z by chunks of _CHUNK ratings (rank-_CHUNK updates of the
            # lower triangle: fewer passes over A than one rank-1 update per rating)
            for c0 in range(start, end, _CHUNK):
                m = min(_CHUNK, end - c0)
                for q in range(m):
                    j = indices[c0 + q]
                    tq[q] = data[c0 + q] - mu - b_other[j]
                    if fit_bias:
                        Z[q, 0] = 1.0
                    for f in range(k):
                        Z[q, off + f] = Y[j, f]
                for q in range(m, _CHUNK):
                    tq[q] = 0.0
                    for f in range(d):
                        Z[q, f] = 0.0
                for a in range(d):
                    z0, z1, z2, z3 = Z[0, a], Z[1, a], Z[2, a], Z[3, a]
                    z4, z5, z6, z7 = Z[4, a], Z[5, a], Z[6, a], Z[7, a]
                    rhs[a] += ((z0 * tq[0] + z1 * tq[1] + z2 * tq[2] + z3 * tq[3])
                               + (z4 * tq[4] + z5 * tq[5] + z6 * tq[6] + z7 * tq[7]))
                    for b in range(a + 1):
                        A[a, b] += ((z0 * Z[0, b] + z1 * Z[1, b] + z2 * Z[2, b]
                                     + z3 * Z[3, b]) + (z4 * Z[4, b] + z5 * Z[5, b]
                                                        + z6 * Z[6, b] + z7 * Z[7, b]))
            if fit_bias:
                A[0, 0] += w * reg_bias
            for f in range(k):
                A[off + f, off + f] += w * reg_factor
            _chol_solve(A, rhs, d)
            if fit_bias:
                bias = rhs[0]
            for f in range(k):
                x[f] = rhs[off + f]
        if fit_bias:
            b_out[uu] = bias
        for f in range(k):
            X_out[uu, f] = x[f]
        # squared error of the row's ratings under the new solution
        for pos in range(start, end):
            j = indices[pos]
            e = data[pos] - mu - b_other[j] - bias
            for f in range(k):
                e -= x[f] * Y[j, f]
            sse += e * e
    return sse


def als_row_bounds(indptr: np.ndarray, n_blocks: int, k: int) -> np.ndarray:
    """Cut the rows into ``n_blocks`` contiguous blocks of about equal solver work.

    A row of ``n`` ratings costs about ``n * min(n, k)`` (building its system) plus
    ``min(n, k + 1) ** 3 / 6`` (the Cholesky factorisation). Returns int64 boundaries
    ``b`` with block ``t`` = rows ``b[t]:b[t + 1]``.
    """
    n_rows = len(indptr) - 1
    n_blocks = max(1, min(int(n_blocks), n_rows))
    counts = np.diff(indptr).astype(np.float64)
    m = np.minimum(counts, k + 1.0)
    cost = np.zeros(n_rows + 1)
    np.cumsum(counts * (m + 1.0) + m**3 / 6.0 + 1.0, out=cost[1:])
    bounds = np.searchsorted(cost, np.linspace(0.0, cost[-1], n_blocks + 1)).astype(np.int64)
    bounds[0], bounds[-1] = 0, n_rows
    return np.maximum.accumulate(bounds)


def als_half_step(indptr, indices, data, Y, b_other, mu, reg_factor, reg_bias, weighted,
                  fit_bias, X_out, b_out):
    """Solve every row's factors (and bias) with the other side fixed; returns the sum of
    squared errors of all ratings under the new rows.

    Row ``u`` with ratings :math:`r_{uj}, j \\in N(u)` gets

    .. math:: (b_u, x_u) = \\arg\\min \\sum_{j \\in N(u)} (r_{uj} - \\mu - b_j - b_u - x_u^T y_j)^2
              + w_u (\\lambda_b b_u^2 + \\lambda \\|x_u\\|^2)

    with :math:`w_u = |N(u)|` when ``weighted`` (weighted-λ, Zhou et al. 2008) else 1. With
    :math:`Z` the row's design matrix (rows :math:`(1, y_j)`, just :math:`y_j` without
    ``fit_bias``), :math:`t_j = r_{uj} - \\mu - b_j` and :math:`D = w_u\\,\\mathrm{diag}(\\lambda_b,
    \\lambda, \\dots)`, the solution is :math:`(Z^T Z + D)^{-1} Z^T t`. A row with at least
    :math:`d = k + 1` ratings accumulates the lower triangle of the :math:`d \\times d` Gram matrix
    from its factor rows and solves it by Cholesky in place; a shorter row (most items of a
    sparse catalogue) uses the identity :math:`(Z^T Z + D)^{-1} Z^T = D^{-1} Z^T (Z D^{-1} Z^T +
    I)^{-1}` and factorises an :math:`n \\times n` system instead (when the penalties are
    positive and within a factor 1000 of each other, so the dual system keeps its precision).
    Arithmetic is float64. Without ``fit_bias`` the bias column is dropped (``b_out``
    untouched). Rows without ratings get zeros. Rows are split into 64 contiguous blocks of
    about equal work that run in parallel, each with its own scratch (nothing is allocated per
    row); rows are independent and the block split is fixed, so the result (and the returned
    error) does not depend on the thread count.
    """
    # a fixed number of blocks (not one per thread): the summed error, too, is then
    # independent of the thread count
    bounds = als_row_bounds(indptr, _N_BLOCKS, Y.shape[1])
    sse = np.zeros(len(bounds) - 1)
    _als_rows(indptr, indices, data, Y, b_other, float(mu), float(reg_factor), float(reg_bias),
              bool(weighted), bool(fit_bias), bounds, X_out, b_out, sse)
    return float(sse.sum())


def als_half_step_numpy(indptr, indices, data, Y, b_other, mu, reg_factor, reg_bias, weighted,
                        fit_bias, X_out, b_out):
    """Plain NumPy twin of :func:`als_half_step` (``numpy.linalg.solve`` on the primal
    normal equations of every row)."""
    k = Y.shape[1]
    sse = 0.0
    for uu in range(len(indptr) - 1):
        items = indices[indptr[uu]:indptr[uu + 1]]
        if len(items) == 0:
            X_out[uu] = 0.0
            if fit_bias:
                b_out[uu] = 0.0
            continue
        t = data[indptr[uu]:indptr[uu + 1]].astype(np.float64) - mu - b_other[items]
        design = Y[items].astype(np.float64)
        if fit_bias:
            design = np.hstack([np.ones((len(items), 1)), design])
        w = len(items) if weighted else 1.0
        reg = np.full(design.shape[1], w * reg_factor)
        if fit_bias:
            reg[0] = w * reg_bias
        sol = np.linalg.solve(design.T @ design + np.diag(reg), design.T @ t)
        if fit_bias:
            b_out[uu] = sol[0]
        X_out[uu] = sol[-k:] if k else X_out[uu]
        sse += float(np.sum((t - design @ sol) ** 2))
    return sse


class numba_threads:  # noqa: N801 - used as a context manager
    """Run the enclosed kernels on ``n`` numba threads (at most the pool size), then restore."""

    def __init__(self, n: int) -> None:
        self.n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
        self.previous = 1

    def __enter__(self) -> numba_threads:
        self.previous = numba.get_num_threads()
        numba.set_num_threads(self.n)
        return self

    def __exit__(self, *exc: object) -> None:
        numba.set_num_threads(self.previous)


def max_threads() -> int:
    """Size of the numba thread pool (``n_threads=0`` means this many)."""
    return int(numba.config.NUMBA_NUM_THREADS)
