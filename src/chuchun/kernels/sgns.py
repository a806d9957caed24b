"""Skip-gram with negative sampling over item sequences (Mikolov et al. 2013; Barkan &
Koenigstein 2016, item2vec).

Every sequence is first subsampled: item :math:`w` is kept with probability ``keep_prob[w]``
(the caller computes :math:`\\min(1, (\\sqrt{f_w / t} + 1)\\, t / f_w)` from the item
frequencies :math:`f_w` and the threshold :math:`t`, as word2vec does). Then, for each kept
position ``p`` holding the centre item :math:`w` and each context position ``q`` — within a
window of ``b`` positions drawn uniformly from ``1..window`` (word2vec's shrunk window), or
the whole sequence when ``basket`` is true (a basket has no order, so every other item is
context) — with context item :math:`c`, input vector :math:`v_c = W[c]` and output vectors
:math:`u = C[\\cdot]`, the loss

.. math:: -\\log\\sigma(v_c^\\top u_w) - \\sum_{k=1}^{K} \\log\\sigma(-v_c^\\top u_{n_k}),

with :math:`n_k` drawn from the noise distribution given by ``noise_cdf`` (unigram
:math:`^{0.75}`), takes one SGD step (``lr``)::

    g_k = lr * (label_k - sigmoid(v_c . u_k))     (label 1 for w, 0 for noise)
    e  += g_k * u_k;   u_k += g_k * v_c           (for w and each noise item != w)
    v_c += e

Parallelism (:func:`sgns_round`): thread ``t`` takes the sequences
``seq_ids[bounds[t]:bounds[t+1]]`` and trains on private copies of ``W`` and ``C``; after the
round the copies are merged as ``W + sum_t (W_t - W)`` row by row, in thread order. A fit is
therefore bit-identical for a given seed and thread count (lock-free Hogwild is not). With one
thread (:func:`sgns_serial`) there is no copy: plain sequential SGD.

Random numbers: one xorshift64* stream per thread (``states[t]``), shared with
:mod:`chuchun.kernels.bpr`.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from chuchun.kernels.bpr import _MASK, _MULT, _xorshift, seed_states

__all__ = [
    "keep_probabilities",
    "noise_cdf",
    "seed_states",
    "sgns_round",
    "sgns_round_numpy",
    "sgns_serial",
    "sgns_serial_numpy",
]

_INV53 = 1.0 / 9007199254740992.0  # 2**-53


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: keep item ``w`` with probability
    ``min(1, (sqrt(f_w / t) + 1) * t / f_w)``, ``t = sample * total``; ``sample <= 0`` keeps all."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones(len(counts), dtype=np.float32)
    t = sample * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.sqrt(counts / t) + 1.0) * t / counts
    p[counts == 0] = 1.0
    return np.minimum(p, 1.0).astype(np.float32)


def noise_cdf(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """Cumulative noise distribution :math:`f_w^{power} / \\sum f^{power}` (float64, last 1)."""
    w = np.asarray(counts, dtype=np.float64) ** power
    w[np.asarray(counts) == 0] = 0.0
    cdf = np.cumsum(w)
    return (cdf / cdf[-1]).astype(np.float64)


@numba.njit(inline="always", cache=True)
def _uniform(x):  # pragma: no cover - compiled
    return np.float64((x * np.uint64(_MULT)) >> np.uint64(11)) * _INV53


@numba.njit(inline="always", cache=True)
def _below(x, n):  # pragma: no cover - compiled
    return np.int64((x * np.uint64(_MULT)) % np.uint64(n))


@numba.njit(inline="always", cache=True)
def _draw_noise(cdf, u):  # pragma: no cover - compiled
    j = np.searchsorted(cdf, u, side="right")
    return min(j, cdf.shape[0] - 1)


@numba.njit(inline="always", cache=True)
def _pair(W, C, ctx, centre, cdf, negative, lr, x, e):  # pragma: no cover - compiled
    d = W.shape[1]
    for a in range(d):
        e[a] = 0.0
    for k in range(negative + 1):
        if k == 0:
            target = centre
            label = 1.0
        else:
            x = _xorshift(x)
            target = _draw_noise(cdf, _uniform(x))
            if target == centre:
                continue
            label = 0.0
        f = 0.0
        for a in range(d):
            f += np.float64(W[ctx, a]) * np.float64(C[target, a])
        g = np.float32(lr * (label - 1.0 / (1.0 + np.exp(-f))))
        for a in range(d):
            e[a] += g * C[target, a]
            C[target, a] += g * W[ctx, a]
    for a in range(d):
        W[ctx, a] += e[a]
    return x


@numba.njit(cache=True)
def _run(indptr, items, seq_ids, lo, hi, keep_prob, cdf, W, C, window, basket, negative, lr,
         x):  # pragma: no cover - compiled
    longest = 0
    for s_pos in range(lo, hi):
        s = seq_ids[s_pos]
        longest = max(longest, indptr[s + 1] - indptr[s])
    buf = np.empty(longest, dtype=np.int32)
    e = np.empty(W.shape[1], dtype=np.float32)
    for s_pos in range(lo, hi):
        s = seq_ids[s_pos]
        n = 0
        for p in range(indptr[s], indptr[s + 1]):
            it = items[p]
            if keep_prob[it] < 1.0:
                x = _xorshift(x)
                if _uniform(x) > keep_prob[it]:
                    continue
            buf[n] = it
            n += 1
        for p in range(n):
            if basket:
                c_lo = 0
                c_hi = n
            else:
                x = _xorshift(x)
                b = window - _below(x, window)
                c_lo = max(0, p - b)
                c_hi = min(n, p + b + 1)
            for q in range(c_lo, c_hi):
                if q != p:
                    x = _pair(W, C, buf[q], buf[p], cdf, negative, lr, x, e)
    return x


@numba.njit(cache=True, fastmath=True, nogil=True)
def sgns_serial(indptr, items, seq_ids, keep_prob, cdf, W, C, window, basket, negative, lr,
                states):  # pragma: no cover - compiled
    """Train on the sequences ``seq_ids`` in order, in place on ``W`` and ``C`` (stream
    ``states[0]``)."""
    states[0] = _run(indptr, items, seq_ids, 0, seq_ids.shape[0], keep_prob, cdf, W, C, window,
                     basket, negative, lr, states[0])


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def sgns_round(indptr, items, seq_ids, bounds, keep_prob, cdf, W, C, W_loc, C_loc, window,
               basket, negative, lr, states):  # pragma: no cover - compiled
    """One parallel round (see the module docstring); ``W_loc``/``C_loc`` are
    ``(n_threads, n_items, dim)`` scratch tables; ``W``/``C`` hold the merged result."""
    n_threads = bounds.shape[0] - 1
    n, d = W.shape
    for t in prange(n_threads):
        W_loc[t, :, :] = W
        C_loc[t, :, :] = C
        states[t] = _run(indptr, items, seq_ids, bounds[t], bounds[t + 1], keep_prob, cdf,
                         W_loc[t], C_loc[t], window, basket, negative, lr, states[t])
    for a in prange(n):
        for c in range(d):
            base_w = W[a, c]
            base_c = C[a, c]
            dw = np.float32(0.0)
            dc = np.float32(0.0)
            for t in range(n_threads):
                dw += W_loc[t, a, c] - base_w
                dc += C_loc[t, a, c] - base_c
            W[a, c] = base_w + dw
            C[a, c] = base_c + dc


# -- plain NumPy twins (tests) ------------------------------------------------------------------
def _next_py(x: int) -> int:
    x ^= x >> 12
    x ^= (x << 25) & _MASK
    x ^= x >> 27
    return x


def _uniform_py(x: int) -> float:
    return float(((x * _MULT) & _MASK) >> 11) * _INV53


def _run_py(indptr, items, seq_ids, keep_prob, cdf, W, C, window, basket, negative, lr,
            x: int) -> int:
    for s in seq_ids:
        kept = []
        for it in items[indptr[s] : indptr[s + 1]]:
            if keep_prob[it] < 1.0:
                x = _next_py(x)
                if _uniform_py(x) > keep_prob[it]:
                    continue
            kept.append(int(it))
        n = len(kept)
        for p in range(n):
            if basket:
                c_lo, c_hi = 0, n
            else:
                x = _next_py(x)
                b = window - ((x * _MULT) & _MASK) % window
                c_lo, c_hi = max(0, p - b), min(n, p + b + 1)
            for q in range(c_lo, c_hi):
                if q == p:
                    continue
                ctx, centre = kept[q], kept[p]
                e = np.zeros(W.shape[1], dtype=np.float32)
                for k in range(negative + 1):
                    if k == 0:
                        target, label = centre, 1.0
                    else:
                        x = _next_py(x)
                        target = min(int(np.searchsorted(cdf, _uniform_py(x), side="right")),
                                     len(cdf) - 1)
                        if target == centre:
                            continue
                        label = 0.0
                    f = float(np.dot(W[ctx].astype(np.float64), C[target].astype(np.float64)))
                    g = np.float32(lr * (label - 1.0 / (1.0 + np.exp(-f))))
                    e += g * C[target]
                    C[target] += g * W[ctx]
                W[ctx] += e
    return x


def sgns_serial_numpy(indptr, items, seq_ids, keep_prob, cdf, W, C, window, basket, negative,
                      lr, states):
    """Plain-Python twin of :func:`sgns_serial`."""
    states[0] = np.uint64(_run_py(indptr, items, seq_ids, keep_prob, cdf, W, C, window, basket,
                                  negative, lr, int(states[0])))


def sgns_round_numpy(indptr, items, seq_ids, bounds, keep_prob, cdf, W, C, window, basket,
                     negative, lr, states):
    """Plain-Python twin of :func:`sgns_round` (no scratch tables needed)."""
    locals_ = []
    for t in range(len(bounds) - 1):
        Wt, Ct = W.copy(), C.copy()
        states[t] = np.uint64(_run_py(indptr, items, seq_ids[bounds[t] : bounds[t + 1]],
                                      keep_prob, cdf, Wt, Ct, window, basket, negative, lr,
                                      int(states[t])))
        locals_.append((Wt, Ct))
    dw = np.zeros_like(W)
    dc = np.zeros_like(C)
    for Wt, Ct in locals_:
        dw += Wt - W
        dc += Ct - C
    W += dw
    C += dc
