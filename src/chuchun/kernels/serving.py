r"""One user's ranking in one pass: finish the scores, mask, keep the top ``k``.

The service's known-user path (:mod:`chuchun.serve._view`) hands this kernel the raw product
:math:`d_i` of the user's vector with every item vector (computed by the same BLAS call as the
model's own ``_score``, so the bits agree) and finishes each item's score in the order and
precision the model uses:

.. math::

    s_i = \Big(\operatorname{f32}\big(\operatorname{f32}(d_i + a_i) + c_u\big)
          - r_{\min}\Big)\, w_i

where :math:`a_i` is an item term (the item bias), :math:`c_u` a user term (intercept + user
bias), both added in float32 as NumPy adds them, and the optional discount
:math:`(\cdot - r_{\min})\, w_i` is taken in float64 and rounded to float32 (the rating
models' support-discounted ranking, :class:`chuchun.models.baseline._SupportRanked`). ``mode``
says which terms apply: bit 1 the item term, bit 2 the user term, bit 4 the discount; with
``mode = 0`` the input already holds the final scores.

In the same call it sets the scores of the items of ``seen`` and ``exclude`` to
:math:`-\infty` and scans the scores once, keeping the ``k`` best finite ones by insertion into
a sorted buffer: higher score first, ties broken by the lower item index. That is the order of
:func:`chuchun.models._base._top_k` after the route drops excluded items, so the lists agree
item for item.

``finish_scores`` writes the finished scores of every item (no masking, no top-k), for the
service's check that the view reproduces the model. ``rank_top_k_numpy`` and
``finish_scores_numpy`` are the plain NumPy twins with the same inputs and outputs (used by the
property tests).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["MODE_ITEM", "MODE_SUPPORT", "MODE_USER", "finish_scores", "finish_scores_numpy",
           "rank_top_k", "rank_top_k_numpy"]

MODE_ITEM = 1
MODE_USER = 2
MODE_SUPPORT = 4


@numba.njit(cache=True, nogil=True)
def finish_scores(dot, item_add, user_add, floor, support, mode, out):  # pragma: no cover
    """``out[i]`` = the finished score :math:`s_i` of every item (float32; ``out`` may be
    ``dot`` itself)."""
    n_items = dot.shape[0]
    if (mode & 1) != 0:
        for j in range(n_items):
            out[j] = np.float32(dot[j] + item_add[j])
    else:
        for j in range(n_items):
            out[j] = dot[j]
    if (mode & 2) != 0:
        for j in range(n_items):
            out[j] = np.float32(out[j] + user_add)
    if (mode & 4) != 0:
        for j in range(n_items):
            out[j] = np.float32((np.float64(out[j]) - floor) * support[j])


@numba.njit(cache=True, nogil=True)
def rank_top_k(dot, item_add, user_add, floor, support, mode, seen, exclude, k, out_idx,
               out_val):  # pragma: no cover - compiled
    """Fill ``out_idx[:n]`` / ``out_val[:n]`` with the top ``n <= k`` items; return ``n``,
    or ``-1`` when an item that is not seen scores ``+inf`` (the general path lets such an item
    take a place in the list and then drops it; the caller answers that user the general way).

    ``dot`` float32 (n_items,), overwritten with the finished scores (masked items ``-inf``);
    ``item_add`` float32 (n_items,) (read when ``mode & 1``); ``user_add`` float32 scalar
    (``mode & 2``); ``floor`` float64 and ``support`` float64 (n_items,) (``mode & 4``);
    ``seen``, ``exclude`` int32 item indices; ``out_idx`` int32, ``out_val`` float32, each of
    length at least ``k``.
    """
    # the terms in vectorised loops, the masks by scatter, then one scan that keeps the best
    finish_scores(dot, item_add, user_add, floor, support, mode, dot)
    for p in range(exclude.shape[0]):
        if dot[exclude[p]] == np.inf:
            return -1
    for p in range(seen.shape[0]):
        dot[seen[p]] = -np.inf
    for p in range(exclude.shape[0]):
        dot[exclude[p]] = -np.inf
    n = 0
    for j in range(dot.shape[0]):
        s = dot[j]
        if n == k:
            if not s > out_val[k - 1]:
                continue  # ties with the last kept item lose: it has the lower index
            if s == np.inf:
                return -1
            pos = k - 1
        else:
            if not math.isfinite(s):
                if s == np.inf:
                    return -1
                continue  # NaN and -inf are never kept
            pos = n
            n += 1
        # shift the worse items down; an equal score stays ahead (lower index first)
        while pos > 0 and out_val[pos - 1] < s:
            out_val[pos] = out_val[pos - 1]
            out_idx[pos] = out_idx[pos - 1]
            pos -= 1
        out_val[pos] = s
        out_idx[pos] = j
    return n


def finish_scores_numpy(dot, item_add, user_add, floor, support, mode, out):
    """NumPy twin of :func:`finish_scores`."""
    out[:] = _finish_numpy(dot, item_add, user_add, floor, support, mode)


def rank_top_k_numpy(dot, item_add, user_add, floor, support, mode, seen, exclude, k, out_idx,
                     out_val):
    """NumPy twin of :func:`rank_top_k` (same arguments, same result)."""
    s = _finish_numpy(dot, item_add, user_add, floor, support, mode)
    if (s[np.asarray(exclude, np.int64)] == np.inf).any():
        return -1
    s[np.asarray(seen, np.int64)] = -np.inf
    if (s == np.inf).any():
        dot[:] = s
        return -1
    s[np.asarray(exclude, np.int64)] = -np.inf
    dot[:] = s
    cand = np.flatnonzero(np.isfinite(s))
    order = np.lexsort((cand, -s[cand]))[:k]
    n = len(order)
    out_idx[:n] = cand[order]
    out_val[:n] = s[cand[order]]
    return n


def _finish_numpy(dot, item_add, user_add, floor, support, mode):
    s = np.asarray(dot, dtype=np.float32).copy()
    if mode & MODE_ITEM:
        s = (s + np.asarray(item_add, np.float32)).astype(np.float32)
    if mode & MODE_USER:
        s = (s + np.float32(user_add)).astype(np.float32)
    if mode & MODE_SUPPORT:
        with np.errstate(invalid="ignore"):  # inf x 0 is NaN, as in the compiled loop
            s = ((s.astype(np.float64) - float(floor)) * np.asarray(support, np.float64)).astype(
                np.float32)
    return s
