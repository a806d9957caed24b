"""Bayesian personalised ranking by stochastic gradient ascent (Rendle et al. 2009, LearnBPR).

For a sampled triple :math:`(u, i, j)` — an observed interaction :math:`(u, i)` drawn uniformly
from the training matrix and an item :math:`j` drawn uniformly from the catalogue among those
``u`` did not interact with — with :math:`\\hat x_{uij} = p_u^\\top (q_i - q_j) + b_i - b_j` and
:math:`z = \\sigma(-\\hat x_{uij})` (Rendle et al. 2009, fig. 4 / eq. for
:math:`\\partial \\ln\\sigma(\\hat x_{uij})`)::

    p_u += lr * ( z * (q_i - q_j) - reg * p_u)
    q_i += lr * ( z * p_u         - reg * q_i)
    q_j += lr * (-z * p_u         - reg * q_j)
    b_i += lr * ( z               - reg * b_i)
    b_j += lr * (-z               - reg * b_j)

(the right-hand sides use the values before the step).

Positive pairs come in runs: a uniform draw picks an interaction of the thread's block, and
the next ``_RUN - 1`` samples take the interactions that follow it in CSR order (wrapping at
the end of the block). Every interaction is still the positive of a sample with the same
probability, so the expected gradient is that of LearnBPR's uniform draw; consecutive samples
mostly share a user, so the user's factor row and item list are read from memory once per run
instead of once per sample (at 10M interactions this halves the time per sample). The
negative item is drawn independently for every sample.

Parallelism (:func:`bpr_round`): thread ``t`` owns the users ``user_bounds[t]:user_bounds[t+1]``
(balanced by interactions) and draws its samples from their interactions only, so user vectors
are never shared. Item vectors are updated lock-free as in Hogwild, but each thread writes to a
private copy of the item table; the copies are merged between rounds as
``Q + sum_t (Q_t - Q)`` in a fixed order (the merge is folded into the next round, so a round is
one parallel region). That keeps a fit bit-identical for a given seed and thread count, which
plain Hogwild cannot. With one thread (:func:`bpr_serial`) there is no copy: plain sequential
SGD.

Random numbers: two xorshift64* streams per thread, ``states[2t]`` for the positive pairs
and ``states[2t + 1]`` for the negative candidates; an integer below ``n`` is the high 64 bits
of ``n`` times a 64-bit draw (no division).

Speed: a step touches rows of tables far larger than the core's cache (the interaction
indices, the user factors, the user's row for the negative check), each a cache miss whose
address depends on the random draw. The kernels keep ``_DEPTH`` samples in flight: the
positive pair of sample ``s + _DEPTH`` is drawn and its rows prefetched while sample ``s`` is
updated, its item row half-way, and the negative candidates ``_NEG_AHEAD`` draws ahead. The
updates still happen one sample after another in draw order, so the result equals the plain
sequential loop (the NumPy twins), bit for bit up to floating-point summation order. The row
of a sampled interaction is found by binary search within the rows that cover its bucket of
``2**_SHIFT`` interactions (:func:`row_index`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from chuchun.kernels.linalg import prefetch1, prefetch_row

__all__ = [
    "bpr_fold_in",
    "bpr_fold_in_numpy",
    "bpr_round",
    "bpr_round_numpy",
    "bpr_serial",
    "bpr_serial_numpy",
    "merge_rounds",
    "row_index",
    "seed_states",
]

_MASK = (1 << 64) - 1
_MULT = 0x2545F4914F6CDD1D
_GOLDEN = 0x9E3779B97F4A7C15
_LOW32 = 0xFFFFFFFF
_DEPTH = 8  # samples in flight (a power of two)
_NEG_AHEAD = 8  # negative candidates drawn ahead (a power of two)
_RUN = 8  # consecutive interactions per positive draw (a power of two)
_SHIFT = 7  # interactions per bucket of the row index: 2**_SHIFT


def seed_states(seed: int, n: int) -> np.ndarray:
    """``n`` non-zero xorshift64* states derived from ``seed`` by splitmix64."""
    out = np.empty(n, dtype=np.uint64)
    s = seed & _MASK
    for t in range(n):
        s = (s + _GOLDEN) & _MASK
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        out[t] = z or 1
    return out


def row_index(indptr: np.ndarray) -> np.ndarray:
    """``index[b]``: the row holding interaction ``b * 2**_SHIFT`` (int32; one entry past the
    last bucket), which narrows the search for the row of a sampled interaction."""
    nnz = int(indptr[-1])
    starts = np.arange(0, (nnz >> _SHIFT) + 2, dtype=np.int64) << _SHIFT
    rows = np.searchsorted(indptr, np.minimum(starts, max(nnz - 1, 0)), side="right") - 1
    return np.clip(rows, 0, max(len(indptr) - 2, 0)).astype(np.int32)


@numba.njit(inline="always", cache=True)
def _xorshift(x):  # pragma: no cover - compiled
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    return x


@numba.njit(inline="always", cache=True)
def _contains(indices, lo, hi, j):  # pragma: no cover - compiled
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo < end and indices[lo] == j


@numba.njit(inline="always", cache=True)
def _row_of(indptr, lo, hi, k):  # pragma: no cover - compiled
    # the row r in [lo, hi) with indptr[r] <= k < indptr[r + 1]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if indptr[mid] <= k:
            lo = mid
        else:
            hi = mid
    return lo


@numba.njit(inline="always", cache=True)
def _step(P, Q, bias, u, i, j, lr, reg):  # pragma: no cover - compiled
    f = P.shape[1]
    x = bias[i] - bias[j]
    for a in range(f):
        x += P[u, a] * (Q[i, a] - Q[j, a])
    z = np.float32(1.0) / (np.float32(1.0) + np.exp(x))
    for a in range(f):
        pu = P[u, a]
        qi = Q[i, a]
        qj = Q[j, a]
        P[u, a] = pu + lr * (z * (qi - qj) - reg * pu)
        Q[i, a] = qi + lr * (z * pu - reg * qi)
        Q[j, a] = qj + lr * (-z * pu - reg * qj)
    bias[i] += lr * (z - reg * bias[i])
    bias[j] += lr * (-z - reg * bias[j])
    return z


@numba.njit(inline="always", cache=True)
def _below(x, n):  # pragma: no cover - compiled
    # advance state x; return (x, floor(n * r / 2**64)) for r = x * _MULT (n < 2**32)
    x = _xorshift(x)
    r = x * np.uint64(_MULT)
    lo = r & np.uint64(_LOW32)
    hi = r >> np.uint64(32)
    return x, np.int64((hi * n + ((lo * n) >> np.uint64(32))) >> np.uint64(32))


@numba.njit(inline="always", cache=True)
def _advance(xs, r, d, span, last):  # pragma: no cover - compiled
    # offset of the positive of sample d: a fresh draw starts each run of _RUN samples, the
    # others take the next interaction (wrapping at the end of the span)
    if d & (_RUN - 1) == 0:
        return _below(xs, span)
    return xs, (r + 1) if r < last else np.int64(0)


@numba.njit(inline="always", cache=True)
def _locate(indptr, index, u_lo, u_hi, k):  # pragma: no cover - compiled
    b = k >> _SHIFT
    lo = max(u_lo, np.int64(index[b]))
    hi = min(u_hi, np.int64(index[b + 1]) + 1)
    return _row_of(indptr, lo, hi, k)


@numba.njit(inline="always", cache=True)
def _fetch_user(indptr, indices, P, u, k):  # pragma: no cover - compiled
    prefetch1(indices, k)
    prefetch_row(P, u)
    lo = indptr[u]
    n = indptr[u + 1] - lo
    for q in range(4):  # lines the negative check's binary search will read first
        prefetch1(indices, lo + (n * q >> 2))


@numba.njit(cache=True, fastmath=True, nogil=True)
def _run(indptr, indices, index, P, Q, bias, xs, xn, u_lo, u_hi, n_samples, lr, reg, n_items,
         max_tries):  # pragma: no cover - compiled
    # n_samples steps for the users u_lo:u_hi from the positive stream xs and the negative
    # stream xn; returns (xs, xn, n_updates). The states live in locals (registers), not in a
    # shared array: threads writing neighbouring words would fight over one cache line.
    # Compiled once as a function of its own (not inlined into its callers): a call per round
    # costs nothing, and numba's parallel passes over bpr_round no longer see the sampler.
    k_lo = indptr[u_lo]
    span = np.uint64(indptr[u_hi] - k_lo)
    done = 0
    if span == 0 or n_samples <= 0:
        return xs, xn, done
    items = np.uint64(n_items)
    ks = np.empty(_DEPTH, dtype=np.int64)
    us = np.empty(_DEPTH, dtype=np.int64)
    pos = np.empty(_DEPTH, dtype=np.int64)
    neg = np.empty(_NEG_AHEAD, dtype=np.int64)
    half = _DEPTH // 2
    r = np.int64(0)
    last = np.int64(span) - 1
    for d in range(min(_DEPTH, n_samples)):
        xs, r = _advance(xs, r, d, span, last)
        k = k_lo + r
        u = _locate(indptr, index, u_lo, u_hi, k)
        ks[d] = k
        us[d] = u
        _fetch_user(indptr, indices, P, u, k)
    for d in range(min(half, n_samples)):
        pos[d] = indices[ks[d]]
        prefetch_row(Q, pos[d])
    for d in range(_NEG_AHEAD):
        xn, j = _below(xn, items)
        neg[d] = j
        prefetch_row(Q, j)
    head = 0
    for s in range(n_samples):
        slot = s & (_DEPTH - 1)
        if s + half < n_samples:  # the positive item of sample s + half
            mid = (s + half) & (_DEPTH - 1)
            pos[mid] = indices[ks[mid]]
            prefetch_row(Q, pos[mid])
        u = us[slot]
        i = pos[slot]
        row_lo = indptr[u]
        row_hi = indptr[u + 1]
        for _t in range(max_tries):
            j = neg[head & (_NEG_AHEAD - 1)]
            xn, nxt = _below(xn, items)
            neg[head & (_NEG_AHEAD - 1)] = nxt
            prefetch_row(Q, nxt)
            head += 1
            if not _contains(indices, row_lo, row_hi, j):
                _step(P, Q, bias, u, i, j, lr, reg)
                done += 1
                break
        if s + _DEPTH < n_samples:  # the positive pair of sample s + _DEPTH
            xs, r = _advance(xs, r, s + _DEPTH, span, last)
            k = k_lo + r
            u = _locate(indptr, index, u_lo, u_hi, k)
            ks[slot] = k
            us[slot] = u
            _fetch_user(indptr, indices, P, u, k)
    return xs, xn, done


@numba.njit(cache=True, fastmath=True, nogil=True)
def bpr_serial(indptr, indices, index, P, Q, bias, states, n_samples, lr, reg,
               max_tries):  # pragma: no cover - compiled
    """``n_samples`` sequential steps over all users (one thread, streams ``states[0:2]``), in
    place on ``P``, ``Q``, ``bias``; returns the number of updates made."""
    xs, xn, done = _run(indptr, indices, index, P, Q, bias, states[0], states[1], 0,
                        indptr.shape[0] - 1, n_samples, lr, reg, Q.shape[0], max_tries)
    states[0] = xs
    states[1] = xn
    return done


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def bpr_round(indptr, indices, index, P, S, bS, S_next, bS_next, L_prev, bL_prev, L_next,
              bL_next, states, user_bounds, n_samples, lr, reg, max_tries):  # pragma: no cover
    """One parallel round: thread ``t`` first merges the previous round,
    ``M = S + sum_s (L_prev[s] - S)`` (every thread computes the same ``M``; thread ``t`` also
    stores its share of the items into ``S_next``), copies ``M`` into ``L_next[t]``, then takes
    ``n_samples[t]`` steps for its users on ``L_next[t]`` (streams ``states[2t:2t+2]``). The
    caller swaps ``S <-> S_next`` and ``L_prev <-> L_next`` after each round and merges once
    more at the end (:func:`merge_rounds`). Returns the number of updates made."""
    n_threads = user_bounds.shape[0] - 1
    n_items = S.shape[0]
    f = S.shape[1]
    done = np.zeros(n_threads, dtype=np.int64)
    for t in prange(n_threads):
        lo_i = t * n_items // n_threads
        hi_i = (t + 1) * n_items // n_threads
        for a in range(n_items):
            own = lo_i <= a and a < hi_i
            for c in range(f):
                base = S[a, c]
                d = np.float32(0.0)
                for s in range(n_threads):
                    d += L_prev[s, a, c] - base
                L_next[t, a, c] = base + d
                if own:
                    S_next[a, c] = base + d
            base = bS[a]
            d = np.float32(0.0)
            for s in range(n_threads):
                d += bL_prev[s, a] - base
            bL_next[t, a] = base + d
            if own:
                bS_next[a] = base + d
        xs, xn, k = _run(indptr, indices, index, P, L_next[t], bL_next[t], states[2 * t],
                         states[2 * t + 1], user_bounds[t], user_bounds[t + 1], n_samples[t],
                         lr, reg, n_items, max_tries)
        states[2 * t] = xs
        states[2 * t + 1] = xn
        done[t] = k
    return done.sum()


def merge_rounds(S, bS, L_prev, bL_prev):
    """The final merge ``S + sum_s (L_prev[s] - S)`` (same summation order as the kernel)."""
    d = np.zeros_like(S)
    db = np.zeros_like(bS)
    for s in range(L_prev.shape[0]):
        d += L_prev[s] - S
        db += bL_prev[s] - bS
    return S + d, bS + db


def _next_py(states: np.ndarray, t: int) -> int:
    x = int(states[t])
    x ^= x >> 12
    x ^= (x << 25) & _MASK
    x ^= x >> 27
    states[t] = np.uint64(x)
    return (x * _MULT) & _MASK


def _below_py(states: np.ndarray, t: int, n: int) -> int:
    return (_next_py(states, t) * n) >> 64


def _run_py(indptr, indices, P, Q, bias, states, t, u_lo, u_hi, n_samples, lr, reg, n_items,
            max_tries):
    """The sequential loop the compiled ``_run`` pipelines: positives from stream ``2t`` (one
    draw per run of ``_RUN`` consecutive interactions), negatives from stream ``2t + 1``,
    which ``_run`` draws ``_NEG_AHEAD`` candidates ahead."""
    k_lo = int(indptr[u_lo])
    span = int(indptr[u_hi]) - k_lo
    if span == 0 or n_samples <= 0:
        return 0
    done = 0
    r = 0
    for s in range(n_samples):
        if s % _RUN == 0:
            r = _below_py(states, 2 * t, span)
        else:
            r = r + 1 if r < span - 1 else 0
        k = k_lo + r
        u = int(np.searchsorted(indptr[u_lo:u_hi + 1], k, side="right")) - 1 + u_lo
        i = int(indices[k])
        row = indices[indptr[u]:indptr[u + 1]]
        for _t in range(max_tries):
            j = _below_py(states, 2 * t + 1, n_items)
            if j not in row:
                x = bias[i] - bias[j] + np.float32(P[u] @ (Q[i] - Q[j]))
                z = np.float32(1.0) / (np.float32(1.0) + np.exp(np.float32(x)))
                pu, qi, qj = P[u].copy(), Q[i].copy(), Q[j].copy()
                P[u] = pu + lr * (z * (qi - qj) - reg * pu)
                Q[i] = qi + lr * (z * pu - reg * qi)
                Q[j] = qj + lr * (-z * pu - reg * qj)
                bias[i] += lr * (z - reg * bias[i])
                bias[j] += lr * (-z - reg * bias[j])
                done += 1
                break
    for _ in range(_NEG_AHEAD):  # the candidates drawn ahead and left unused
        _next_py(states, 2 * t + 1)
    return done


def bpr_serial_numpy(indptr, indices, index, P, Q, bias, states, n_samples, lr, reg,
                     max_tries):
    """Plain-NumPy twin of :func:`bpr_serial` (same random streams and update order)."""
    lr, reg = np.float32(lr), np.float32(reg)
    return _run_py(indptr, indices, P, Q, bias, states, 0, 0, len(indptr) - 1, n_samples, lr,
                   reg, Q.shape[0], max_tries)


def bpr_round_numpy(indptr, indices, index, P, S, bS, S_next, bS_next, L_prev, bL_prev, L_next,
                    bL_next, states, user_bounds, n_samples, lr, reg, max_tries):
    """Plain-NumPy twin of :func:`bpr_round` (threads run one after another)."""
    lr, reg = np.float32(lr), np.float32(reg)
    n_threads = len(user_bounds) - 1
    merged, merged_b = merge_rounds(S, bS, L_prev, bL_prev)
    S_next[:] = merged
    bS_next[:] = merged_b
    done = 0
    for t in range(n_threads):
        L_next[t] = merged
        bL_next[t] = merged_b
        done += _run_py(indptr, indices, P, L_next[t], bL_next[t], states, t, user_bounds[t],
                        user_bounds[t + 1], n_samples[t], lr, reg, S.shape[0], max_tries)
    return done


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def bpr_fold_in(indptr, indices, P, Q, bias, n_epochs, lr, reg, seed_states_,
                max_tries):  # pragma: no cover - compiled
    """Fit rows of ``P`` (new users, start from their current values) by BPR steps on the user
    vector only, items fixed: ``n_epochs * n_u`` samples for a user with ``n_u`` items. Row
    ``u`` uses the random stream ``seed_states_[u]``, so results do not depend on threads."""
    f = P.shape[1]
    n_items = Q.shape[0]
    for u in prange(P.shape[0]):
        lo = indptr[u]
        hi = indptr[u + 1]
        n = hi - lo
        if n == 0 or n >= n_items:
            continue
        x = seed_states_[u]
        for _ in range(n_epochs * n):
            x = _xorshift(x)
            k = lo + np.int64((x * np.uint64(_MULT)) % np.uint64(n))
            i = indices[k]
            for _t in range(max_tries):
                x = _xorshift(x)
                j = np.int32((x * np.uint64(_MULT)) % np.uint64(n_items))
                if _contains(indices, lo, hi, j):
                    continue
                score = bias[i] - bias[j]
                for a in range(f):
                    score += P[u, a] * (Q[i, a] - Q[j, a])
                z = np.float32(1.0) / (np.float32(1.0) + np.exp(score))
                for a in range(f):
                    P[u, a] += lr * (z * (Q[i, a] - Q[j, a]) - reg * P[u, a])
                break
        seed_states_[u] = x


def bpr_fold_in_numpy(indptr, indices, P, Q, bias, n_epochs, lr, reg, seed_states_, max_tries):
    """Plain-NumPy twin of :func:`bpr_fold_in`."""
    lr, reg = np.float32(lr), np.float32(reg)
    n_items = Q.shape[0]
    for u in range(P.shape[0]):
        lo, hi = int(indptr[u]), int(indptr[u + 1])
        n = hi - lo
        if n == 0 or n >= n_items:
            continue
        row = indices[lo:hi]
        for _ in range(n_epochs * n):
            i = int(indices[lo + _next_py(seed_states_, u) % n])
            for _t in range(max_tries):
                j = _next_py(seed_states_, u) % n_items
                if j in row:
                    continue
                x = bias[i] - bias[j] + np.float32(P[u] @ (Q[i] - Q[j]))
                z = np.float32(1.0) / (np.float32(1.0) + np.exp(np.float32(x)))
                P[u] = P[u] + lr * (z * (Q[i] - Q[j]) - reg * P[u])
                break
