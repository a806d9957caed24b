"""Hybrid (LightFM-style) ranking model: one epoch of BPR or WARP with AdaGrad (Kula 2015).

A user is the feature-weighted sum of its feature embeddings, :math:`p_u = \\sum_f x_{uf} e_f`
and :math:`\\beta_u = \\sum_f x_{uf} b_f`; an item likewise (:math:`q_i`, :math:`\\beta_i`);
the score is :math:`s_{ui} = p_u^\\top q_i + \\beta_u + \\beta_i`.

BPR (``loss=0``): for the positive :math:`(u, i)` and the sampled :math:`j`, gradient ascent
on :math:`\\ln\\sigma(s_{ui} - s_{uj})`. WARP (``loss=1``, Weston et al. 2011): draw items
until one violates :math:`s_{uj} > s_{ui} - 1` (at most ``negs.shape[1]`` draws); with the
violation found after :math:`t` draws, descend on
:math:`L \\cdot (1 - s_{ui} + s_{uj})` with :math:`L = \\ln\\lfloor (n - 1) / t \\rfloor`
(the rank estimate). Items the user interacted with are never used as negatives.

Item-id dropout: where ``drop[t]`` is set, step ``t`` represents its positive and its negative
items by the second item matrix (``fa_*``, the attribute rows without the id feature) instead
of the first, so the attribute embeddings learn to score items on their own, as they must for
items without interactions. With ``drop`` all zero the two matrices are never mixed.

Every parameter takes AdaGrad steps :math:`\\theta \\mathrel{-}= \\eta g / \\sqrt{G}`,
:math:`G \\mathrel{+}= g^2` (accumulators start at 1), with L2 weight ``reg`` in :math:`g`.
Random draws come in as ``order``, ``negs`` and ``drop`` (drawn by the caller), so the twin
sees them.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["hybrid_epoch", "hybrid_epoch_numpy"]


@numba.njit(cache=True)
def _rep(indptr, indices, data, r, E, b, out):  # pragma: no cover - compiled
    K = E.shape[1]
    for k in range(K):
        out[k] = 0.0
    beta = 0.0
    for t in range(indptr[r], indptr[r + 1]):
        f = indices[t]
        x = data[t]
        beta += x * b[f]
        for k in range(K):
            out[k] += x * E[f, k]
    return beta


@numba.njit(cache=True)
def _step(indptr, indices, data, r, E, b, gE, gb, grad, gbias, lr, reg):  # pragma: no cover
    K = E.shape[1]
    for t in range(indptr[r], indptr[r + 1]):
        f = indices[t]
        x = data[t]
        g = x * gbias + reg * b[f]
        gb[f] += g * g
        b[f] -= lr * g / np.sqrt(gb[f])
        for k in range(K):
            g = x * grad[k] + reg * E[f, k]
            gE[f, k] += g * g
            E[f, k] -= lr * g / np.sqrt(gE[f, k])


@numba.njit(cache=True)
def _is_seen(seen_indptr, seen_indices, u, j):  # pragma: no cover - compiled
    lo = seen_indptr[u]
    hi = seen_indptr[u + 1]
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if seen_indices[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo < end and seen_indices[lo] == j


@numba.njit(cache=True)
def hybrid_epoch(order, uidx, iidx, negs, loss, n_items,
                 fu_indptr, fu_indices, fu_data, fi_indptr0, fi_indices0, fi_data0,
                 Eu, bu, Ei, bi, gEu, gbu, gEi, gbi, lr, reg,
                 seen_indptr, seen_indices, drop, fa_indptr, fa_indices,
                 fa_data):  # pragma: no cover - compiled
    """One pass over the positives ``order`` (row numbers); returns (summed loss, updates)."""
    K = Eu.shape[1]
    p = np.empty(K)
    qi = np.empty(K)
    qj = np.empty(K)
    gu = np.empty(K)
    gi = np.empty(K)
    gj = np.empty(K)
    total = 0.0
    updates = 0
    for t in range(len(order)):
        n = order[t]
        u = uidx[n]
        i = iidx[n]
        if drop[t]:
            fi_indptr, fi_indices, fi_data = fa_indptr, fa_indices, fa_data
        else:
            fi_indptr, fi_indices, fi_data = fi_indptr0, fi_indices0, fi_data0
        _rep(fu_indptr, fu_indices, fu_data, u, Eu, bu, p)
        beta_i = _rep(fi_indptr, fi_indices, fi_data, i, Ei, bi, qi)
        s_i = beta_i
        for k in range(K):
            s_i += p[k] * qi[k]
        j = -1
        weight = 0.0
        margin = 0.0
        for d in range(negs.shape[1]):
            cand = negs[t, d]
            if cand == i or _is_seen(seen_indptr, seen_indices, u, cand):
                continue
            beta_j = _rep(fi_indptr, fi_indices, fi_data, cand, Ei, bi, qj)
            s_j = beta_j
            for k in range(K):
                s_j += p[k] * qj[k]
            if loss == 0:
                j = cand
                diff = s_i - s_j
                if diff > 0:
                    ez = np.exp(-diff)
                    weight = ez / (1.0 + ez)
                    total += np.log1p(ez)
                else:
                    weight = 1.0 / (1.0 + np.exp(diff))
                    total += -diff + np.log1p(np.exp(diff))
                break
            if s_j > s_i - 1.0:
                j = cand
                rank = np.floor((n_items - 1) / (d + 1))
                weight = np.log(max(rank, 1.0))
                margin = 1.0 - s_i + s_j
                total += weight * margin
                break
        if j < 0 or weight == 0.0:
            continue
        updates += 1
        # descent gradients of  -weight * (s_i - s_j)  (BPR: weight = sigma(-(s_i - s_j)))
        for k in range(K):
            gu[k] = -weight * (qi[k] - qj[k])
            gi[k] = -weight * p[k]
            gj[k] = weight * p[k]
        _step(fu_indptr, fu_indices, fu_data, u, Eu, bu, gEu, gbu, gu, 0.0, lr, reg)
        _step(fi_indptr, fi_indices, fi_data, i, Ei, bi, gEi, gbi, gi, -weight, lr, reg)
        _step(fi_indptr, fi_indices, fi_data, j, Ei, bi, gEi, gbi, gj, weight, lr, reg)
    return total, updates


def hybrid_epoch_numpy(order, uidx, iidx, negs, loss, n_items,
                       fu_indptr, fu_indices, fu_data, fi_indptr0, fi_indices0, fi_data0,
                       Eu, bu, Ei, bi, gEu, gbu, gEi, gbi, lr, reg,
                       seen_indptr, seen_indices, drop, fa_indptr, fa_indices, fa_data):
    """Plain twin of :func:`hybrid_epoch` (same draws, vectorised per triple)."""
    total = 0.0
    updates = 0

    def rows(indptr, indices, data, r):
        return indices[indptr[r]:indptr[r + 1]], data[indptr[r]:indptr[r + 1]].astype(float)

    def step(f, x, E, b, gE, gb, grad, gbias):
        for ff, xx in zip(f, x, strict=True):
            g = xx * gbias + reg * b[ff]
            gb[ff] += g * g
            b[ff] -= lr * g / np.sqrt(gb[ff])
            g = xx * grad + reg * E[ff]
            gE[ff] += g * g
            E[ff] -= lr * g / np.sqrt(gE[ff])

    for t, n in enumerate(order):
        u, i = uidx[n], iidx[n]
        fi_indptr, fi_indices, fi_data = ((fa_indptr, fa_indices, fa_data) if drop[t]
                                          else (fi_indptr0, fi_indices0, fi_data0))
        fu, xu = rows(fu_indptr, fu_indices, fu_data, u)
        fi, xi = rows(fi_indptr, fi_indices, fi_data, i)
        p = xu @ Eu[fu]
        qi = xi @ Ei[fi]
        s_i = xi @ bi[fi] + p @ qi
        j, weight, qj = -1, 0.0, None
        seen = seen_indices[seen_indptr[u]:seen_indptr[u + 1]]
        for d, cand in enumerate(negs[t]):
            if cand == i or cand in seen:
                continue
            fj, xj = rows(fi_indptr, fi_indices, fi_data, cand)
            qj = xj @ Ei[fj]
            s_j = xj @ bi[fj] + p @ qj
            if loss == 0:
                j = cand
                weight = 1.0 / (1.0 + np.exp(s_i - s_j))
                total += np.logaddexp(0.0, -(s_i - s_j))
                break
            if s_j > s_i - 1.0:
                j = cand
                weight = np.log(max(np.floor((n_items - 1) / (d + 1)), 1.0))
                total += weight * (1.0 - s_i + s_j)
                break
        if j < 0 or weight == 0.0:
            continue
        updates += 1
        fj, xj = rows(fi_indptr, fi_indices, fi_data, j)
        gu, gi, gj = -weight * (qi - qj), -weight * p, weight * p
        step(fu, xu, Eu, bu, gEu, gbu, gu, 0.0)
        step(fi, xi, Ei, bi, gEi, gbi, gi, -weight)
        step(fj, xj, Ei, bi, gEi, gbi, gj, weight)
    return total, updates
