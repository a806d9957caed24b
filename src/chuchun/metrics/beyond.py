"""Beyond-accuracy metrics of top-k lists: novelty, diversity, serendipity, popularity bias,
exposure concentration and personalisation (arrays in, floats out).

Lists are given as in :mod:`chuchun.metrics.ranking`: ``recommended_idx`` is an int array
``(n_users, L)`` of item indices, best first, ``-1`` marking padding; only the first ``k``
positions count and padding is ignored, so :math:`L_u` below is the set of real items among a
user's first ``k``. Per-user functions return one float64 value per user (``NaN`` where the
metric is undefined for that user, e.g. an empty list); the catalogue-level ones return a float.

Popularity is the training interaction count :math:`c_i` of each item (as in
``Recommender.item_popularity_``); :math:`|U|` is the number of training users.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun.metrics.ranking import _as_recommended, _as_relevant, _check_k, catalog_coverage_at_k

__all__ = [
    "average_recommendation_popularity_at_k",
    "beyond_accuracy_metrics",
    "beyond_accuracy_per_user",
    "catalog_coverage_at_k",
    "gini_index_at_k",
    "intra_list_diversity_at_k",
    "item_vectors_from_interactions",
    "novelty_at_k",
    "personalisation_at_k",
    "popularity_lift_at_k",
    "serendipity_at_k",
]


def _lists(recommended_idx: Any, k: Any, n_items: int | None = None) -> tuple[np.ndarray, int]:
    k = _check_k(k)
    rec = _as_recommended(recommended_idx)[:, :k]
    if n_items is not None and rec.size and rec.max() >= n_items:
        raise DataError(
            f"recommended_idx holds item index {int(rec.max())}, but the catalogue has only "
            f"{n_items} items"
        )
    return rec, k


def _popularity(item_popularity: Any) -> np.ndarray:
    pop = np.asarray(item_popularity, dtype=np.float64).reshape(-1)
    if pop.size == 0:
        raise DataError("item_popularity is empty; expected one training count per item")
    if not np.isfinite(pop).all() or (pop < 0).any():
        raise DataError("item_popularity must hold finite, non-negative training counts")
    return pop


def _row_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over the ``valid`` positions of each row; NaN for an empty row."""
    n = valid.sum(axis=1)
    total = np.where(valid, values, 0.0).sum(axis=1)
    return np.divide(total, n, out=np.full(len(n), np.nan), where=n > 0)


def novelty_at_k(
    recommended_idx: Any, item_popularity: Any, n_users: int, k: int = 10
) -> np.ndarray:
    """Novelty@k per user: the mean self-information of the recommended items.

    .. math:: \\mathrm{Nov}_u@k = \\frac{1}{|L_u|} \\sum_{i \\in L_u} -\\log_2 \\frac{c_i}{|U|}

    :math:`c_i / |U|` is the share of training users who interacted with item :math:`i`
    (``item_popularity`` holds :math:`c_i`, ``n_users`` is :math:`|U|`), so recommending an item
    every user knows scores 0 bits and an item one user knows :math:`\\log_2 |U|` bits. Items
    with :math:`c_i = 0` count as :math:`c_i = 1`. (Zhou et al., "Solving the apparent
    diversity-accuracy dilemma of recommender systems", PNAS 107(10), 2010; Vargas & Castells,
    "Rank and relevance in novelty and diversity metrics for recommender systems",
    RecSys 2011.)
    """
    pop = _popularity(item_popularity)
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ConfigError(f"n_users must be a positive int; got {n_users!r}")
    rec, k = _lists(recommended_idx, k, len(pop))
    valid = rec >= 0
    info = -np.log2(np.maximum(pop, 1.0) / float(n_users))
    return _row_mean(info[np.where(valid, rec, 0)], valid)


def average_recommendation_popularity_at_k(
    recommended_idx: Any, item_popularity: Any, k: int = 10
) -> np.ndarray:
    """Average recommendation popularity (ARP@k) per user: the mean training count of the
    recommended items.

    .. math:: \\mathrm{ARP}_u@k = \\frac{1}{|L_u|} \\sum_{i \\in L_u} c_i

    Its mean over users is the ARP of Abdollahpouri, Burke & Mobasher, "Managing popularity bias
    in recommender systems with personalized re-ranking", FLAIRS 2019.
    """
    pop = _popularity(item_popularity)
    rec, k = _lists(recommended_idx, k, len(pop))
    valid = rec >= 0
    return _row_mean(pop[np.where(valid, rec, 0)], valid)


def popularity_lift_at_k(
    recommended_idx: Any, item_popularity: Any, history: Any, k: int = 10
) -> np.ndarray:
    """Popularity lift@k per user: how much more popular the list is than the user's history.

    .. math:: \\mathrm{PL}_u@k = \\frac{\\mathrm{ARP}_u@k - P_u}{P_u},
              \\qquad P_u = \\frac{1}{|H_u|} \\sum_{i \\in H_u} c_i

    with :math:`H_u` the user's training items (row ``u`` of ``history``, a sparse matrix or a
    list of index arrays). Positive values mean the recommender amplifies popularity for this
    user; ``NaN`` for an empty history or list. The per-user form of the group popularity lift
    of Abdollahpouri et al., "User-centered evaluation of popularity bias in recommender
    systems", UMAP 2021.
    """
    pop = _popularity(item_popularity)
    rec, k = _lists(recommended_idx, k, len(pop))
    hist = _as_relevant(history, rec.shape[0])
    if hist.shape[1] > len(pop):
        raise DataError(
            f"history has {hist.shape[1]} item columns but item_popularity has {len(pop)} items"
        )
    n_hist = np.diff(hist.indptr)
    rows = np.repeat(np.arange(len(n_hist)), n_hist)
    profile_sum = np.bincount(rows, weights=pop[hist.indices], minlength=len(n_hist))
    profile = np.divide(profile_sum, n_hist, out=np.full(len(n_hist), np.nan), where=n_hist > 0)
    arp = average_recommendation_popularity_at_k(rec, pop, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (arp - profile) / profile
    out[~(profile > 0)] = np.nan
    return out


def item_vectors_from_interactions(interactions: Any) -> sp.csr_matrix:
    """Item representation for :func:`intra_list_diversity_at_k` when items have no features:
    each item's column of the binary users x items matrix (so the cosine of two items is their
    co-occurrence cosine, :math:`|U_i \\cap U_j| / \\sqrt{|U_i|\\,|U_j|}`).

    ``interactions`` is a users x items sparse matrix or a chuchun ``Interactions``.
    """
    csr: Any = getattr(interactions, "csr", interactions)
    if not sp.issparse(csr):
        raise DataError(
            "item_vectors_from_interactions expects a users x items sparse matrix or an "
            f"Interactions; got {type(interactions).__name__}"
        )
    binary = sp.csr_matrix(cast(Any, csr), dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    return sp.csr_matrix(binary.T)


def _unit_rows(vectors: Any) -> Any:
    """Rows scaled to unit length (all-zero rows stay zero), dense or CSR as given."""
    if sp.issparse(vectors):
        m = sp.csr_matrix(cast(Any, vectors), dtype=np.float64, copy=True)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(scale) @ m)
    dense = np.asarray(vectors, dtype=np.float64)
    if dense.ndim != 2:
        raise DataError(f"item_vectors must be 2-D (n_items, n_dims); got {dense.ndim} dims")
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)


def intra_list_diversity_at_k(
    recommended_idx: Any, item_vectors: Any, k: int = 10
) -> np.ndarray:
    """Intra-list diversity@k per user: the mean pairwise cosine distance of the list's items.

    .. math:: \\mathrm{ILD}_u@k = \\frac{2}{|L_u|(|L_u| - 1)} \\sum_{i, j \\in L_u,\\, i < j}
              \\bigl(1 - \\cos(x_i, x_j)\\bigr)

    over the list positions (a repeated item is a pair at distance 0). ``item_vectors`` is one
    row per item, dense or sparse: item features (genres, tags), item factors, or
    :func:`item_vectors_from_interactions` when there are none. An all-zero vector has cosine 0
    with everything. ``NaN`` for lists with fewer than two items. (Smyth & McClave, "Similarity
    vs. diversity", ICCBR 2001; Ziegler et al., "Improving recommendation lists through topic
    diversification", WWW 2005.)
    """
    unit: Any = _unit_rows(item_vectors)
    rec, k = _lists(recommended_idx, k, unit.shape[0])
    out = np.full(rec.shape[0], np.nan)
    if rec.size == 0:
        return out
    n_items, width = unit.shape[0], rec.shape[1]
    # one all-zero row stands in for padding, which the pair mask leaves out anyway
    padded: Any
    if isinstance(unit, np.ndarray):
        padded = np.vstack([unit, np.zeros((1, unit.shape[1]))])
    else:
        zero = sp.csr_matrix(np.zeros((1, unit.shape[1])))
        padded = sp.vstack([unit, zero]).tocsr()
    upper = np.triu(np.ones((width, width), dtype=bool), 1)
    step = max(1, 2048 // width)  # users per block: Gram blocks of at most ~2048^2
    for start in range(0, rec.shape[0], step):
        block = rec[start : start + step]
        b = len(block)
        rows = np.where(block >= 0, block, n_items).ravel()
        x: Any = padded[rows]
        full = x @ x.T if isinstance(x, np.ndarray) else (x @ x.T).toarray()
        # the diagonal (b, width, width) blocks: each user's list against itself
        gram = full.reshape(b, width, b, width)[np.arange(b), :, np.arange(b), :]
        mask = (block >= 0)[:, :, None] & (block >= 0)[:, None, :] & upper[None]
        dist = np.where(mask, 1.0 - gram, 0.0).sum(axis=(1, 2))
        n_pairs = mask.sum(axis=(1, 2))
        out[start : start + b] = np.divide(dist, n_pairs, out=np.full(b, np.nan),
                                           where=n_pairs > 0)
    return np.clip(out, 0.0, 2.0)


def serendipity_at_k(
    recommended_idx: Any, relevant: Any, baseline_idx: Any, k: int = 10
) -> np.ndarray:
    """Serendipity@k per user: the share of the list that is relevant *and* unexpected, i.e.
    absent from a primitive baseline's list for the same user (typically popularity).

    .. math:: \\mathrm{Ser}_u@k = \\frac{|\\{i \\in L_u : i \\in T_u,\\ i \\notin B_u\\}|}{k}

    with :math:`T_u` the relevant test items and :math:`B_u` the baseline's first :math:`k`
    items for user :math:`u` (``baseline_idx`` row for row with ``recommended_idx``). ``NaN``
    for users with no relevant item. (Murakami, Mori & Orihara, "Metrics for evaluating the
    serendipity of recommendation lists", JSAI 2007; Ge, Delgado-Battenfeld & Jannach, "Beyond
    accuracy: evaluating recommender systems by coverage and serendipity", RecSys 2010.)
    """
    rec, k = _lists(recommended_idx, k)
    base, _ = _lists(baseline_idx, k)
    if base.shape[0] != rec.shape[0]:
        raise DataError(
            f"length mismatch: recommended_idx has {rec.shape[0]} users but baseline_idx has "
            f"{base.shape[0]}"
        )
    rel = _as_relevant(relevant, rec.shape[0])
    out = np.full(rec.shape[0], np.nan)
    for u in range(rec.shape[0]):
        truth = rel.indices[rel.indptr[u] : rel.indptr[u + 1]]
        if len(truth) == 0:
            continue
        items = np.unique(rec[u][rec[u] >= 0])
        unexpected = np.setdiff1d(items, base[u][base[u] >= 0])
        out[u] = len(np.intersect1d(unexpected, truth)) / k
    return out


def personalisation_at_k(recommended_idx: Any, k: int = 10) -> np.ndarray:
    """Personalisation@k per user: one minus the mean overlap of the user's list with every
    other user's list.

    .. math:: \\mathrm{Pers}_u@k = 1 - \\frac{1}{|U| - 1} \\sum_{v \\ne u}
              \\frac{|L_u \\cap L_v|}{|L_u|}

    For full lists (:math:`|L_u| = k`) the mean over users is the mean pairwise list
    dissimilarity :math:`1 - \\overline{q_{uv}}/k` of Zhou et al. (PNAS 2010): 0 when everyone
    gets the same list, 1 when no two lists share an item. Computed in :math:`O(|U|\\,k)` from
    the item exposure counts :math:`e_i`:
    :math:`\\sum_{v \\ne u} |L_u \\cap L_v| = \\sum_{i \\in L_u} (e_i - 1)`. ``NaN`` for an
    empty list and with fewer than two users.
    """
    rec, k = _lists(recommended_idx, k)
    n = rec.shape[0]
    if n < 2:
        return np.full(n, np.nan)
    lists = [np.unique(row[row >= 0]) for row in rec]
    flat = np.concatenate(lists) if lists else np.empty(0, np.int64)
    exposure = np.bincount(flat) if len(flat) else np.zeros(0, np.int64)
    shared = np.array([float((exposure[items] - 1).sum()) for items in lists])
    length = np.array([len(items) for items in lists], dtype=np.float64)
    overlap = np.divide(shared, (n - 1) * length, out=np.full(n, np.nan), where=length > 0)
    return 1.0 - overlap


def gini_index_at_k(recommended_idx: Any, n_items: int, k: int = 10) -> float:
    """Gini index of item exposure in the top-k lists, over the whole catalogue.

    With :math:`e_{(1)} \\le \\dots \\le e_{(n)}` the sorted exposure counts (the number of
    lists each of the :math:`n` catalogue items appears in, zeros included),

    .. math:: G@k = \\frac{\\sum_{j=1}^{n} (2j - n - 1)\\, e_{(j)}}{n \\sum_j e_{(j)}}

    0 when every item is recommended equally often, :math:`(n-1)/n` when one item takes all
    the exposure. (Fleder & Hosanagar, "Blockbuster culture's next rise or fall", Management
    Science 55(5), 2009; Shani & Gunawardana, "Evaluating recommendation systems", Recommender
    Systems Handbook, 2011.) ``NaN`` when no list has an item.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ConfigError(f"n_items (catalogue size) must be a positive int; got {n_items!r}")
    rec, k = _lists(recommended_idx, k, int(n_items))
    flat = rec[rec >= 0]
    exposure = np.sort(np.bincount(flat, minlength=int(n_items)).astype(np.float64))
    total = exposure.sum()
    if total == 0:
        return float("nan")
    n = len(exposure)
    j = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * j - n - 1) * exposure).sum() / (n * total))


def beyond_accuracy_metrics(
    recommended_idx: Any,
    k: int = 10,
    *,
    item_popularity: Any,
    n_users: int,
    item_vectors: Any = None,
    history: Any = None,
    relevant: Any = None,
    baseline_idx: Any = None,
) -> dict[str, float]:
    """Every beyond-accuracy metric the inputs allow, averaged over users where per user.

    Always: ``novelty``, ``arp``, ``personalisation``, ``gini``, ``coverage`` (catalogue size
    ``len(item_popularity)``); with ``item_vectors``: ``diversity`` (intra-list); with
    ``history``: ``popularity_lift``; with ``relevant`` and ``baseline_idx``: ``serendipity``.
    Keys are ``f"{name}@{k}"``; per-user means skip users where the value is ``NaN``.
    """
    pop = _popularity(item_popularity)
    per_user = beyond_accuracy_per_user(
        recommended_idx, k, item_popularity=pop, n_users=n_users, item_vectors=item_vectors,
        history=history, relevant=relevant, baseline_idx=baseline_idx,
    )
    out = {
        f"{name}@{k}": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        for name, v in per_user.items()
    }
    out[f"gini@{k}"] = gini_index_at_k(recommended_idx, len(pop), k)
    out[f"coverage@{k}"] = catalog_coverage_at_k(recommended_idx, len(pop), k)
    return out


def beyond_accuracy_per_user(
    recommended_idx: Any,
    k: int = 10,
    *,
    item_popularity: Any,
    n_users: int,
    item_vectors: Any = None,
    history: Any = None,
    relevant: Any = None,
    baseline_idx: Any = None,
) -> dict[str, np.ndarray]:
    """The per-user beyond-accuracy metrics of :func:`beyond_accuracy_metrics`, unaveraged
    (keys without ``@k``)."""
    out = {
        "novelty": novelty_at_k(recommended_idx, item_popularity, n_users, k),
        "arp": average_recommendation_popularity_at_k(recommended_idx, item_popularity, k),
        "personalisation": personalisation_at_k(recommended_idx, k),
    }
    if item_vectors is not None:
        out["diversity"] = intra_list_diversity_at_k(recommended_idx, item_vectors, k)
    if history is not None:
        out["popularity_lift"] = popularity_lift_at_k(recommended_idx, item_popularity,
                                                      history, k)
    if relevant is not None and baseline_idx is not None:
        out["serendipity"] = serendipity_at_k(recommended_idx, relevant, baseline_idx, k)
    return out
