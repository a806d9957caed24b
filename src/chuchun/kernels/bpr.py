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

Parallelism: thread ``t`` owns the users ``user_bounds[t]:user_bounds[t+1]`` (balanced by
interactions) and draws its samples from their interactions only, so user vectors are never
shared. Item vectors are shared Hogwild-style but written through a private copy per thread that
is merged every ``round_size`` samples as ``Q += sum_t (Q_t - Q)`` in a fixed order. That keeps
the result bit-identical for a given seed and thread count, which plain Hogwild cannot. With one
thread the copy is skipped and the updates are plain sequential SGD.

Random numbers: one xorshift64* stream per thread, its state in ``states[t]``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = [
    "bpr_epoch",
    "bpr_epoch_numpy",
    "bpr_fold_in",
    "bpr_fold_in_numpy",
    "seed_states",
]

_MASK = (1 << 64) - 1
_MULT = 0x2545F4914F6CDD1D
_GOLDEN = 0x9E3779B97F4A7C15


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


@numba.njit(inline="always", cache=True)
def _next(states, t):  # pragma: no cover - compiled
    x = states[t]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    states[t] = x
    return x * np.uint64(_MULT)


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
def _sample_and_step(indptr, indices, P, Q, bias, states, t, u_lo, u_hi, lr, reg, n_items,
                     max_tries):  # pragma: no cover - compiled
    k_lo = indptr[u_lo]
    span = np.uint64(indptr[u_hi] - k_lo)
    k = k_lo + np.int64(_next(states, t) % span)
    u = _row_of(indptr, u_lo, u_hi, k)
    i = indices[k]
    row_lo = indptr[u]
    row_hi = indptr[u + 1]
    for _ in range(max_tries):
        j = np.int32(_next(states, t) % np.uint64(n_items))
        if not _contains(indices, row_lo, row_hi, j):
            _step(P, Q, bias, u, i, j, lr, reg)
            return 1
    return 0


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def bpr_epoch(indptr, indices, P, Q, bias, Q_local, bias_local, states, user_bounds,
              round_size, lr, reg, max_tries):  # pragma: no cover - compiled
    """One epoch (``indptr[-1]`` samples in all); returns the number of updates made."""
    n_threads = user_bounds.shape[0] - 1
    n_items = Q.shape[0]
    f = Q.shape[1]
    done = np.zeros(n_threads, dtype=np.int64)
    todo = np.empty(n_threads, dtype=np.int64)
    for t in range(n_threads):
        todo[t] = indptr[user_bounds[t + 1]] - indptr[user_bounds[t]]
    if n_threads == 1:
        if todo[0] > 0:
            for _ in range(todo[0]):
                done[0] += _sample_and_step(indptr, indices, P, Q, bias, states, 0,
                                            user_bounds[0], user_bounds[1], lr, reg, n_items,
                                            max_tries)
        return done.sum()
    longest = todo.max()
    n_rounds = (longest + round_size - 1) // round_size
    for rnd in range(n_rounds):
        for t in prange(n_threads):
            start = rnd * round_size
            stop = min(todo[t], start + round_size)
            if stop > start:
                Ql = Q_local[t]
                bl = bias_local[t]
                for a in range(n_items):
                    bl[a] = bias[a]
                    for c in range(f):
                        Ql[a, c] = Q[a, c]
                for _ in range(stop - start):
                    done[t] += _sample_and_step(indptr, indices, P, Ql, bl, states, t,
                                                user_bounds[t], user_bounds[t + 1], lr, reg,
                                                n_items, max_tries)
        for a in prange(n_items):
            db = np.float32(0.0)
            for t in range(n_threads):
                if rnd * round_size < todo[t]:
                    db += bias_local[t, a] - bias[a]
            for c in range(f):
                d = np.float32(0.0)
                for t in range(n_threads):
                    if rnd * round_size < todo[t]:
                        d += Q_local[t, a, c] - Q[a, c]
                Q[a, c] += d
            bias[a] += db
    return done.sum()


def _next_py(states: np.ndarray, t: int) -> int:
    x = int(states[t])
    x ^= x >> 12
    x ^= (x << 25) & _MASK
    x ^= x >> 27
    states[t] = np.uint64(x)
    return (x * _MULT) & _MASK


def _sample_and_step_py(indptr, indices, P, Q, bias, states, t, u_lo, u_hi, lr, reg, n_items,
                        max_tries):
    k_lo = int(indptr[u_lo])
    k = k_lo + _next_py(states, t) % int(indptr[u_hi] - k_lo)
    u = int(np.searchsorted(indptr[u_lo:u_hi + 1], k, side="right")) - 1 + u_lo
    i = int(indices[k])
    row = indices[indptr[u]:indptr[u + 1]]
    for _ in range(max_tries):
        j = _next_py(states, t) % n_items
        if j not in row:
            x = bias[i] - bias[j] + np.float32(P[u] @ (Q[i] - Q[j]))
            z = np.float32(1.0) / (np.float32(1.0) + np.exp(np.float32(x)))
            pu, qi, qj = P[u].copy(), Q[i].copy(), Q[j].copy()
            P[u] = pu + lr * (z * (qi - qj) - reg * pu)
            Q[i] = qi + lr * (z * pu - reg * qi)
            Q[j] = qj + lr * (-z * pu - reg * qj)
            bias[i] += lr * (z - reg * bias[i])
            bias[j] += lr * (-z - reg * bias[j])
            return 1
    return 0


def bpr_epoch_numpy(indptr, indices, P, Q, bias, Q_local, bias_local, states, user_bounds,
                    round_size, lr, reg, max_tries):
    """Plain-NumPy twin of :func:`bpr_epoch` (same random stream and update order)."""
    lr, reg = np.float32(lr), np.float32(reg)
    n_threads = len(user_bounds) - 1
    n_items = Q.shape[0]
    todo = [int(indptr[user_bounds[t + 1]] - indptr[user_bounds[t]]) for t in range(n_threads)]
    done = 0
    if n_threads == 1:
        for _ in range(todo[0]):
            done += _sample_and_step_py(indptr, indices, P, Q, bias, states, 0, user_bounds[0],
                                        user_bounds[1], lr, reg, n_items, max_tries)
        return done
    n_rounds = -(-max(todo) // round_size)
    for rnd in range(n_rounds):
        active = [t for t in range(n_threads) if rnd * round_size < todo[t]]
        for t in active:
            Q_local[t] = Q
            bias_local[t] = bias
            for _ in range(min(todo[t], (rnd + 1) * round_size) - rnd * round_size):
                done += _sample_and_step_py(indptr, indices, P, Q_local[t], bias_local[t],
                                            states, t, user_bounds[t], user_bounds[t + 1], lr,
                                            reg, n_items, max_tries)
        dq = sum((Q_local[t] - Q for t in active), np.zeros_like(Q))
        db = sum((bias_local[t] - bias for t in active), np.zeros_like(bias))
        Q += dq
        bias += db
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
        for _ in range(n_epochs * n):
            k = lo + np.int64(_next(seed_states_, u) % np.uint64(n))
            i = indices[k]
            for _t in range(max_tries):
                j = np.int32(_next(seed_states_, u) % np.uint64(n_items))
                if _contains(indices, lo, hi, j):
                    continue
                x = bias[i] - bias[j]
                for a in range(f):
                    x += P[u, a] * (Q[i, a] - Q[j, a])
                z = np.float32(1.0) / (np.float32(1.0) + np.exp(x))
                for a in range(f):
                    P[u, a] += lr * (z * (Q[i, a] - Q[j, a]) - reg * P[u, a])
                break


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
