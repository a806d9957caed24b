"""Top-k ranking metrics with binary relevance (arrays in, floats out).

Every per-user function takes

``recommended_idx`` : int array, shape (n_users, L)
    Each user's ranked list of item indices, best first; ``-1`` marks padding (a list shorter
    than ``L``). Only the first ``k`` positions count. An item repeated in a list counts once,
    at its first position.
``relevant`` : scipy sparse matrix (n_users, n_columns), or a sequence of index arrays
    The relevant (test) items of each user, row for row with ``recommended_idx``. Relevance is
    binary: every stored non-zero entry is relevant. Columns may extend past the model's
    catalogue (e.g. test items unknown to training): they count in :math:`|T_u|` but can never be
    hit.
``k`` : int >= 1

and returns a float64 array with one value per user, ``NaN`` for users with no relevant item
(those users are skipped by :func:`ranking_metrics`, which averages the rest).

Notation for user :math:`u`: :math:`L_u` the first :math:`k` recommended items, :math:`T_u` the
relevant items, :math:`\\mathrm{rel}_u(r) = 1` if the item at rank :math:`r` (1-based) is in
:math:`T_u`, :math:`h_u = \\sum_{r \\le k} \\mathrm{rel}_u(r)` the hits. Precision divides by
:math:`k` even when the list is shorter than :math:`k`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError

__all__ = [
    "RANKING_METRICS",
    "average_precision_at_k",
    "catalog_coverage_at_k",
    "f1_at_k",
    "hit_rate_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "reciprocal_rank_at_k",
]

#: names accepted by :func:`ranking_metrics` (keys of the result are ``f"{name}@{k}"``)
RANKING_METRICS = ("precision", "recall", "f1", "hit_rate", "ndcg", "map", "mrr", "coverage")


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive int; got {k!r}")
    return int(k)


def _as_relevant(relevant: Any, n_users: int) -> sp.csr_matrix:
    if sp.issparse(relevant):
        source: Any = relevant
        m = sp.csr_matrix(source, copy=True)
        m.eliminate_zeros()
    elif isinstance(relevant, np.ndarray) and relevant.ndim == 2:
        m = sp.csr_matrix(relevant != 0)
    elif isinstance(relevant, Sequence) and not isinstance(relevant, (str, bytes)):
        rows = [np.asarray(r, dtype=np.int64).reshape(-1) for r in relevant]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        cols = np.concatenate(rows) if rows else np.empty(0, np.int64)
        if len(cols) and cols.min() < 0:
            raise DataError("relevant item indices must be >= 0; got a negative index")
        n_cols = int(cols.max()) + 1 if len(cols) else 0
        m = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32),
             (np.repeat(np.arange(len(rows)), lengths), cols)),
            shape=(len(rows), n_cols),
        )
    else:
        raise DataError(
            "relevant must be a scipy sparse matrix, a 2-D array or a sequence of item-index "
            f"arrays; got {type(relevant).__name__}"
        )
    if m.shape[0] != n_users:
        raise DataError(
            f"length mismatch: recommended_idx has {n_users} users but relevant has {m.shape[0]}"
        )
    m.sum_duplicates()
    m.sort_indices()
    return m


def _as_recommended(recommended_idx: Any) -> np.ndarray:
    rec = np.asarray(recommended_idx)
    if rec.ndim != 2:
        raise DataError(
            f"recommended_idx must be a 2-D (n_users, list length) array; got {rec.ndim} dims"
        )
    if rec.size and rec.dtype.kind not in "iu":
        raise DataError(f"recommended_idx must hold integer item indices; got dtype {rec.dtype}")
    return rec.astype(np.int64, copy=False)


def _hits(recommended_idx: Any, relevant: Any, k: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Boolean hits (n_users, k) (padded with False past the list), |T_u| and k."""
    k = _check_k(k)
    rec = _as_recommended(recommended_idx)
    n = rec.shape[0]
    rel = _as_relevant(relevant, n)
    rec = rec[:, :k]
    n_cols = rel.shape[1]
    valid = (rec >= 0) & (rec < n_cols)
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel.indptr))
    rel_keys = rows * n_cols + rel.indices  # sorted: CSR rows ascending, indices sorted
    query = np.arange(n, dtype=np.int64)[:, None] * n_cols + np.where(valid, rec, 0)
    pos = np.searchsorted(rel_keys, query)
    found: np.ndarray = np.zeros(rec.shape, dtype=bool)
    inside = pos < len(rel_keys)
    found[inside] = rel_keys[pos[inside]] == query[inside]
    found &= valid
    if rec.shape[1] > 1:  # a repeated item counts at its first position only
        order = np.argsort(rec, axis=1, kind="stable")
        s = np.take_along_axis(rec, order, axis=1)
        repeat = np.zeros(rec.shape, dtype=bool)
        np.put_along_axis(repeat, order[:, 1:], s[:, 1:] == s[:, :-1], axis=1)
        found &= ~repeat
    if found.shape[1] < k:
        found = np.hstack([found, np.zeros((n, k - found.shape[1]), dtype=bool)])
    return found, np.diff(rel.indptr).astype(np.int64), k


def _skip_empty(values: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64)
    out[n_relevant == 0] = np.nan
    return out


# each takes (hits (n, k) bool, |T_u| (n,), k) and returns per-user values, before skipping
def _precision(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return hits.sum(axis=1) / k


def _recall(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return hits.sum(axis=1) / np.maximum(n_rel, 1)


def _f1(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    p = _precision(hits, n_rel, k)
    r = _recall(hits, n_rel, k)
    denom = p + r
    out = np.zeros_like(p, dtype=np.float64)
    np.divide(2 * p * r, denom, out=out, where=denom > 0)
    return out


def _hit_rate(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(hits.any(axis=1), dtype=np.float64)


def _ndcg(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = hits @ discount
    idcg = np.r_[0.0, np.cumsum(discount)][np.minimum(n_rel, k)]
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def _average_precision(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    prec_at_r = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return (prec_at_r * hits).sum(axis=1) / np.maximum(np.minimum(n_rel, k), 1)


def _reciprocal_rank(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    first = np.argmax(hits, axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


def precision_at_k(recommended_idx: Any, relevant: Any, k: int = 10) -> np.ndarray:
    """Precision@k per user.

    .. math:: P_u@k = \\frac{h_u}{k}
    """
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    return _skip_empty(_precision(hits, n_rel, k), n_rel)


def recall_at_k(recommended_idx: Any, relevant: Any, k: int = 10) -> np.ndarray:
    """Recall@k per user.

    .. math:: R_u@k = \\frac{h_u}{|T_u|}
    """
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    return _skip_empty(_recall(hits, n_rel, k), n_rel)


def f1_at_k(recommended_idx: Any, relevant: Any, k: int = 10) -> np.ndarray:
    """F1@k per user: the harmonic mean of precision@k and recall@k (0 when both are 0).

    .. math:: F1_u@k = \\frac{2 P_u@k \\, R_u@k}{P_u@k + R_u@k}
    """
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    return _skip_empty(_f1(hits, n_rel, k), n_rel)


def hit_rate_at_k(recommended_idx: Any, relevant: Any, k: int = 10) -> np.ndarray:
    """Hit rate@k per user: 1 if at least one relevant item is in the top k, else 0.

    .. math:: HR_u@k = [h_u > 0]
    """
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    return _skip_empty(_hit_rate(hits, n_rel, k), n_rel)


def ndcg_at_k(recommended_idx: Any, relevant: Any, k: int = 10) -> np.ndarray:
    """Normalised discounted cumulative gain@k per user, binary gains.

    .. math:: \\mathrm{DCG}_u@k = \\sum_{r=1}^{k} \\frac{\\mathrm{rel}_u(r)}{\\log_2(r + 1)},
              \\qquad
              \\mathrm{IDCG}_u@k = \\sum_{r=1}^{\\min(k, |T_u|)} \\frac{1}{\\log_2(r + 1)},
              \\qquad
              \\mathrm{NDCG}_u@k = \\frac{\\mathrm{DCG}_u@k}{\\mathrm{IDCG}_u@k}

    (Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", TOIS 2002.)
    """
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    return _skip_empty(_ndcg(hits, n_rel, k), n_rel)


def average_precision_at_k(recommended_idx: Any, relevant: Any, k: int = 10) -> np.ndarray:
    """Average precision@k per user (its mean over users is MAP@k).

    .. math:: AP_u@k = \\frac{1}{\\min(k, |T_u|)} \\sum_{r=1}^{k} \\mathrm{rel}_u(r) \\, P_u@r,
              \\qquad P_u@r = \\frac{1}{r} \\sum_{s=1}^{r} \\mathrm{rel}_u(s)
    """
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    return _skip_empty(_average_precision(hits, n_rel, k), n_rel)


def reciprocal_rank_at_k(recommended_idx: Any, relevant: Any, k: int = 10) -> np.ndarray:
    """Reciprocal rank of the first relevant item within the top k (0 when none); its mean over
    users is MRR@k.

    .. math:: RR_u@k = \\max_{r \\le k} \\frac{\\mathrm{rel}_u(r)}{r}
    """
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    return _skip_empty(_reciprocal_rank(hits, n_rel, k), n_rel)


def catalog_coverage_at_k(recommended_idx: Any, n_items: int, k: int = 10) -> float:
    """Catalogue coverage@k: the share of the catalogue recommended to at least one user.

    .. math:: \\mathrm{Cov}@k = \\frac{|\\bigcup_u L_u|}{|I|}

    Padding (``-1``) and indices outside ``[0, n_items)`` are ignored.
    """
    k = _check_k(k)
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ConfigError(f"n_items (catalogue size) must be a positive int; got {n_items!r}")
    rec = _as_recommended(recommended_idx)[:, :k].ravel()
    rec = rec[(rec >= 0) & (rec < n_items)]
    return float(len(np.unique(rec)) / n_items)


_FROM_HITS = {
    "precision": _precision,
    "recall": _recall,
    "f1": _f1,
    "hit_rate": _hit_rate,
    "ndcg": _ndcg,
    "map": _average_precision,
    "mrr": _reciprocal_rank,
}


def check_ranking_metrics(metrics: Any) -> list[str]:
    """Validate a list of ranking metric names (``None`` means all of :data:`RANKING_METRICS`)."""
    if metrics is None:
        return list(RANKING_METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    names = [str(m).lower() for m in metrics]
    bad = [m for m in names if m not in RANKING_METRICS]
    if bad:
        raise ConfigError(
            f"unknown ranking metric(s) {bad}; known ranking metrics are {list(RANKING_METRICS)}"
        )
    return names


def ranking_metrics(
    recommended_idx: Any,
    relevant: Any,
    k: int = 10,
    metrics: Sequence[str] | None = None,
    *,
    n_items: int | None = None,
) -> dict[str, float]:
    """Ranking metrics averaged over the users that have at least one relevant item.

    Parameters
    ----------
    recommended_idx, relevant, k
        See the module docstring.
    metrics : sequence of str, optional
        Names from :data:`RANKING_METRICS` (default: all). ``"map"`` is the mean of
        :func:`average_precision_at_k`, ``"mrr"`` the mean of :func:`reciprocal_rank_at_k`.
    n_items : int, optional
        Catalogue size for ``"coverage"`` (default: the number of columns of ``relevant``).
        Coverage counts the lists of the evaluated users only.

    Returns
    -------
    dict
        ``{f"{name}@{k}": value}``; ``NaN`` values when no user has a relevant item.
    """
    names = check_ranking_metrics(metrics)
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    keep = n_rel > 0
    hits, n_rel = hits[keep], n_rel[keep]
    out: dict[str, float] = {}
    for name in names:
        key = f"{name}@{k}"
        if not keep.any():
            out[key] = float("nan")
        elif name == "coverage":
            if n_items is None:
                n_items = _as_relevant(relevant, len(keep)).shape[1]
            out[key] = catalog_coverage_at_k(_as_recommended(recommended_idx)[keep], n_items, k)
        else:
            out[key] = float(np.mean(_FROM_HITS[name](hits, n_rel, k)))
    return out
