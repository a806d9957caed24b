"""Neighbourhood collaborative filtering: explicit-rating and implicit-feedback kNN.

Explicit ratings: :class:`UserKNN`, :class:`ItemKNN` predict a rating from the ratings that the
most similar users gave the item (or that the user gave the most similar items). Implicit
feedback: :class:`ImplicitItemKNN`, :class:`ImplicitUserKNN` rank items by summed similarity.
Similarities come from :mod:`chuchun.similarity`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun._params import Param
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender
from chuchun.models._results import Explanation, Reason
from chuchun.models._similar import (
    Labels,
    SimilarItems,
    fmt_rating,
    label_of,
    map_query_items,
    top_from_rows,
)
from chuchun.models.baseline import fit_biases
from chuchun.similarity import MEASURES, similarity

__all__ = ["ImplicitItemKNN", "ImplicitUserKNN", "ItemKNN", "UserKNN"]

_EXPLICIT_MEASURES = tuple(m for m in MEASURES if m != "dot")
_PREDICTIONS = ("plain", "mean_centered", "zscore", "baseline")


class _ExplicitKNN(Recommender):
    """Shared machinery of :class:`UserKNN` and :class:`ItemKNN` (``x`` = the compared side)."""

    n_neighbors = Param(int, 40, "Neighbours k aggregated per prediction.", low=1)
    min_neighbors = Param(int, 1, "Fewer qualifying neighbours than this: use the fallback.",
                          low=0)
    similarity = Param(str, "pearson_baseline", "Similarity measure (chuchun.similarity).",
                       choices=_EXPLICIT_MEASURES)
    prediction = Param(str, "baseline", "Aggregation rule: plain, mean_centered, zscore or "
                       "baseline.", choices=_PREDICTIONS)
    shrinkage = Param(float, 100.0, "Similarity shrinkage lambda (0: none).", low=0)
    min_support = Param(int, 1, "Minimum co-rating count for a similarity.", low=0)
    damping = Param(float, 0.0, "Added to the similarity sum in the denominator (0: none).",
                    low=0)
    max_stored = Param(int, 500, "Most similar rows kept per row after fit; memory is "
                       "O(rows x max_stored) (None: every non-zero similarity, as Surprise).",
                       low=1, nullable=True)
    user_regularization = Param(float, 15.0, "Baseline ALS regularisation of user biases.", low=0)
    item_regularization = Param(float, 10.0, "Baseline ALS regularisation of item biases.", low=0)
    bias_epochs = Param(int, 10, "Baseline ALS epochs.", low=1)
    clip = Param(bool, True, "Clip predictions to the training rating scale.")
    n_threads = Param(int, None, "Threads for the kernels (None: numba's default).", low=1,
                      nullable=True)

    predicts_ratings = True
    _user_based: ClassVar[bool] = True
    _test_params: ClassVar[dict[str, Any]] = {"n_neighbors": 5}

    #: Known (user, item) pairs of the last :meth:`predict` call that had fewer than
    #: ``min_neighbors`` qualifying neighbours and got the fallback estimate.
    last_fallback_count: int = 0

    # -- fit ----------------------------------------------------------------------------------
    def _fit(self, data: Interactions) -> None:
        if not data.has_ratings:
            raise DataError(
                f"{type(self).__name__} needs explicit ratings; the interaction log has no "
                "rating column (use ImplicitItemKNN / ImplicitUserKNN for implicit feedback)"
            )
        ui = data.csr.astype(np.float64)
        ui.sort_indices()
        x_mat = ui if self._user_based else ui.T.tocsr()
        x_mat.sort_indices()
        y_mat = x_mat.T.tocsr()  # for each column y: the rows that rated it
        y_mat.sort_indices()
        mu, bu, bi = fit_biases(
            data,
            n_epochs=self.bias_epochs,
            user_regularization=self.user_regularization,
            item_regularization=self.item_regularization,
        )
        bx, by = (bu, bi) if self._user_based else (bi, bu)
        sims = similarity(
            x_mat,
            self.similarity,
            k=self.max_stored,
            shrinkage=self.shrinkage,
            min_support=self.min_support,
            baselines=(mu, bx, by) if self.similarity == "pearson_baseline" else None,
            n_threads=self.n_threads,
            dtype=np.float64,
        )
        self.similarity_ = sims  # non-positive similarities are skipped by the kernel
        self.raters_ = y_mat.astype(np.float32)
        counts = np.diff(x_mat.indptr)
        sums = np.add.reduceat(x_mat.data, x_mat.indptr[:-1]) if x_mat.nnz else np.zeros(0)
        sums = np.where(counts > 0, sums, 0.0)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), mu)
        sq = x_mat.copy()
        sq.data = (sq.data - np.repeat(means, counts)) ** 2
        var = np.asarray(sq.sum(axis=1)).ravel() / np.maximum(counts, 1)
        sigma = np.sqrt(var)
        self.row_mean_ = means
        self.row_std_ = np.where(sigma > 0, sigma, float(np.std(data.values)))
        self.user_bias_, self.item_bias_ = bu, bi

    # -- prediction ---------------------------------------------------------------------------
    def _terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Row centre, row scale, neighbour centre, neighbour scale, column offset."""
        bx, by = (
            (self.user_bias_, self.item_bias_) if self._user_based
            else (self.item_bias_, self.user_bias_)
        )
        n_x = len(bx)
        zeros, ones = np.zeros(n_x), np.ones(n_x)
        if self.prediction == "plain":
            return zeros, ones, zeros, ones, np.zeros(len(by))
        if self.prediction == "mean_centered":
            return self.row_mean_, ones, self.row_mean_, ones, np.zeros(len(by))
        if self.prediction == "zscore":
            return self.row_mean_, self.row_std_, self.row_mean_, self.row_std_, np.zeros(len(by))
        base = self.global_mean_ + bx
        return base, ones, base, ones, by

    def _estimate(
        self, user_idx: np.ndarray, item_idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Estimates of known pairs and a mask of the pairs that used the fallback."""
        from chuchun.kernels.knn import knn_aggregate
        from chuchun.kernels.similarity import default_blocks, thread_limit

        x, y = (user_idx, item_idx) if self._user_based else (item_idx, user_idx)
        x = np.asarray(x, dtype=np.int64)
        y = np.asarray(y, dtype=np.int64)
        order = np.argsort(x, kind="stable")
        xs, ys = x[order], y[order]
        bounds = np.r_[np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]]), len(xs)].astype(np.int64)
        center, scale, nb_center, nb_scale, offset = self._terms()
        agg = np.zeros(len(xs))
        count = np.zeros(len(xs), dtype=np.int64)
        weight = np.zeros(len(xs))
        s, c = self.similarity_, self.raters_
        with thread_limit(self.n_threads):
            knn_aggregate(
                s.indptr.astype(np.int64), s.indices.astype(np.int64),
                s.data.astype(np.float64), c.indptr.astype(np.int64),
                c.indices.astype(np.int64), c.data.astype(np.float64), xs, ys, bounds,
                default_blocks(), int(self.n_neighbors), nb_center, nb_scale, offset, agg, count,
                weight,
            )
        if self.damping > 0:
            agg *= weight / (weight + self.damping)
        est_sorted = center[xs] + offset[ys] + scale[xs] * agg
        fallback = count < max(self.min_neighbors, 1)
        if self.prediction == "plain":
            est_sorted[fallback] = self.global_mean_
        else:
            est_sorted[fallback] = center[xs[fallback]] + offset[ys[fallback]]
        est = np.empty(len(xs))
        est[order] = est_sorted
        fb = np.empty(len(xs), dtype=bool)
        fb[order] = fallback
        return self._clip(est), fb

    def _clip(self, est: np.ndarray) -> np.ndarray:
        if self.clip and self.rating_scale_ is not None:
            return np.clip(est, self.rating_scale_[0], self.rating_scale_[1])
        return est

    def _predict_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        est, fb = self._estimate(user_idx, item_idx)
        self.last_fallback_count = int(fb.sum())
        return est

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        n_items = len(self.items_)
        users = np.repeat(np.asarray(user_idx, dtype=np.int64), n_items)
        items = np.tile(np.arange(n_items, dtype=np.int64), len(user_idx))
        est, _ = self._estimate(users, items)
        return est.reshape(len(user_idx), n_items).astype(np.float32)

    def _fallback_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        if self.prediction != "baseline":
            return np.full(len(user_idx), self.global_mean_, dtype=np.float64)
        bu = np.where(user_idx >= 0, self.user_bias_[np.maximum(user_idx, 0)], 0.0)
        bi = np.where(item_idx >= 0, self.item_bias_[np.maximum(item_idx, 0)], 0.0)
        return self._clip(self.global_mean_ + bu + bi)

    # -- explanation --------------------------------------------------------------------------
    def _neighbours(self, u: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k neighbours used for (u, i): their indices, similarities and ratings."""
        x, y = (u, i) if self._user_based else (i, u)
        s, c = self.similarity_, self.raters_
        sim_row = dict(zip(s.indices[s.indptr[x]:s.indptr[x + 1]].tolist(),
                           s.data[s.indptr[x]:s.indptr[x + 1]].tolist(), strict=True))
        nbs = c.indices[c.indptr[y]:c.indptr[y + 1]]
        rs = c.data[c.indptr[y]:c.indptr[y + 1]]
        sims = np.array([sim_row.get(int(n), 0.0) for n in nbs])
        keep = sims > 0
        nbs, rs, sims = nbs[keep], rs[keep], sims[keep]
        order = np.lexsort((nbs, -sims))[: self.n_neighbors]
        return nbs[order], sims[order], rs[order]

    def explain(self, user: Any, item: Any, labels: Labels = None) -> Explanation:
        """Why ``item`` gets its predicted rating for ``user``: the neighbours used.

        Parameters
        ----------
        user, item : external ids (must be known to the model)
        labels : mapping, pandas Series or callable, optional
            Item (ItemKNN) or user (UserKNN) names for the reasons, e.g. movie titles;
            without them each reason's ``label`` is empty and the summary shows ids.

        Returns
        -------
        Explanation
            One reason per neighbour, strongest first; ``weight`` is the neighbour's share of
            the total similarity, ``detail`` holds its similarity and rating.
        """
        self._check_fitted()
        u = int(self._map(self.users_, [user], "user", "error")[0])
        i = int(self._map(self.items_, [item], "item", "error")[0])
        nbs, sims, rs = self._neighbours(u, i)
        score = float(self._estimate(np.array([u]), np.array([i]))[0][0])
        total = sims.sum() if len(sims) else 1.0
        vocab = self.users_ if self._user_based else self.items_
        kind = "user" if self._user_based else "item"
        reasons = []
        for nb, s, r in zip(nbs, sims, rs, strict=True):
            nb_id = vocab.ids[nb]
            nb_id = nb_id.item() if hasattr(nb_id, "item") else nb_id
            reasons.append(Reason(kind=kind, id=nb_id, contribution=float(s / total),
                                  label=label_of(labels, nb_id) if labels is not None else "",
                                  detail={"similarity": float(s), "rating": float(r)}))
        if self._user_based:
            parts = [f"user {r.label or r.id} rated it {fmt_rating(r.detail['rating'])}"
                     for r in reasons[:3]]
        else:
            parts = [f"{r.label or r.id}, which you rated {fmt_rating(r.detail['rating'])}"
                     for r in reasons[:3]]
        if not reasons:
            parts = ["no neighbour qualified; the fallback estimate is used"]
        summary = f"predicted {score:.2f}: " + "; ".join(parts)
        return Explanation(user=user, item=item, score=score, reasons=reasons, summary=summary)


class UserKNN(_ExplicitKNN):
    """User-based neighbourhood model for explicit ratings.

    .. math:: \\hat r_{ui} = c_u + o_i + d_u \\frac{\\sum_{v \\in N^k_i(u)} s_{uv}
              (r_{vi} - c_v - o_i) / d_v}{\\delta + \\sum_{v \\in N^k_i(u)} s_{uv}}

    where :math:`N^k_i(u)` are the ``n_neighbors`` users most similar to ``u`` among those who
    rated ``i``, counting only positive similarities, and ``prediction`` picks the terms:

    - ``"plain"``: :math:`c = o = 0, d = 1` (weighted average; Surprise's ``KNNBasic``);
    - ``"mean_centered"``: :math:`c_u = \\bar r_u` (``KNNWithMeans``);
    - ``"zscore"``: :math:`c_u = \\bar r_u, d_u = \\sigma_u` (``KNNWithZScore``; a zero
      :math:`\\sigma` is replaced by the global one);
    - ``"baseline"``: :math:`c_u = \\mu + b_u, o_i = b_i` with biases from
      :func:`~chuchun.models.baseline.fit_biases` (ALS; ``KNNBaseline``).

    :math:`\\delta` (``damping``, default 0 as in Surprise) pulls estimates backed by little
    similarity mass towards :math:`c_u + o_i`.

    **Memory.** Fit keeps the ``max_stored`` most similar users of each user (default 500),
    so memory is O(users x max_stored), and the ``n_neighbors`` used for a pair are the most
    similar among those kept who rated the item. ``max_stored=None`` keeps every non-zero
    similarity, which reproduces Surprise exactly (Surprise holds the dense matrix); see
    ``benchmarks/results/knn.md`` for the effect of the default on MovieLens 100K.

    **Fallback.** When fewer than ``min_neighbors`` (at least 1) neighbours qualify, the
    prediction is :math:`c_u + o_i`: the global mean for ``"plain"``, the user's mean for
    ``"mean_centered"``/``"zscore"``, the baseline :math:`\\mu + b_u + b_i` for ``"baseline"``
    (Surprise's behaviour). :attr:`last_fallback_count` says how many pairs of the last
    ``predict`` fell back. Pairs with an unknown user or item get the global mean (the bias
    baseline for ``"baseline"``). Predictions are clipped to the rating scale.

    Parameters
    ----------
    n_neighbors, min_neighbors, similarity, prediction, shrinkage, min_support, damping,
    max_stored, user_regularization, item_regularization, bias_epochs, clip, n_threads
        See the parameter declarations; ``similarity`` is any measure of
        :mod:`chuchun.similarity` but ``"dot"``.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, user-user similarities (only positive ones are used)
    raters_ : scipy.sparse.csr_matrix, items x users ratings
    row_mean_, row_std_ : ndarray, per-user mean and standard deviation
    user_bias_, item_bias_ : ndarray, ALS baseline biases

    References
    ----------
    J. Herlocker, J. Konstan, A. Borchers, J. Riedl. An algorithmic framework for performing
    collaborative filtering. SIGIR 1999. Y. Koren. Factor in the neighbors. TKDD 2010.
    """

    _user_based = True


class ItemKNN(_ExplicitKNN):
    """Item-based neighbourhood model for explicit ratings.

    .. math:: \\hat r_{ui} = c_i + o_u + d_i \\frac{\\sum_{j \\in N^k_u(i)} s_{ij}
              (r_{uj} - c_j - o_u) / d_j}{\\delta + \\sum_{j \\in N^k_u(i)} s_{ij}}

    where :math:`N^k_u(i)` are the ``n_neighbors`` items most similar to ``i`` among those
    ``u`` rated (positive similarities only); the terms per ``prediction`` and the fallback are
    those of :class:`UserKNN` with users and items swapped (``"mean_centered"`` falls back to
    the item's mean).

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, item-item similarities (only positive ones are used)
    raters_ : scipy.sparse.csr_matrix, users x items ratings
    row_mean_, row_std_ : ndarray, per-item mean and standard deviation
    user_bias_, item_bias_ : ndarray

    References
    ----------
    B. Sarwar, G. Karypis, J. Konstan, J. Riedl. Item-based collaborative filtering
    recommendation algorithms. WWW 2001. Y. Koren. Factor in the neighbors. TKDD 2010.
    """

    _user_based = False

    def similar_items(self, items: Any, k: int = 10) -> SimilarItems:
        """The ``k`` most similar items of each item in ``items`` (positive similarities)."""
        self._check_fitted()
        ids, idx = map_query_items(self.items_, items)
        return top_from_rows(self.items_, ids, self.similarity_[idx], k)


# -- implicit feedback --------------------------------------------------------------------------
_WEIGHTINGS = ("none", "tfidf", "bm25")


class _ImplicitKNN(Recommender):
    n_neighbors = Param(int, 50, "Neighbours kept per row of the similarity.", low=1)
    similarity = Param(str, "cosine", "Similarity of the (weighted) vectors.",
                       choices=("cosine", "jaccard", "dot"))
    weighting = Param(str, "none", "Weighting of the interaction matrix before similarity.",
                      choices=_WEIGHTINGS)
    bm25_k1 = Param(float, 100.0, "BM25 saturation K1.", low=0)
    bm25_b = Param(float, 0.8, "BM25 length normalisation B.", low=0, high=1)
    shrinkage = Param(float, 0.0, "Similarity shrinkage lambda (0: none).", low=0)
    binary = Param(bool, False, "Treat every interaction as 1, ignoring ratings or weights.")
    n_threads = Param(int, None, "Threads for the kernels (None: numba's default).", low=1,
                      nullable=True)

    _test_params: ClassVar[dict[str, Any]] = {"n_neighbors": 10}

    def _interactions(self, data: Interactions) -> sp.csr_matrix:
        x = data.csr.astype(np.float32)
        if self.binary or not data.has_ratings:
            x.data = np.ones_like(x.data)
        self.interactions_ = x
        return x

    def _weighted(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """TF-IDF or BM25 weights of ``rows`` (documents) over its columns (terms)."""
        w = rows.astype(np.float64)
        if self.weighting == "none":
            return w
        n_docs = w.shape[0]
        df = np.bincount(w.indices, minlength=w.shape[1])
        idf = np.log(n_docs / np.maximum(df, 1))
        if self.weighting == "tfidf":
            w.data = w.data * idf[w.indices]
            return w
        length = np.diff(w.indptr).astype(np.float64)
        norm = self.bm25_k1 * (1.0 - self.bm25_b + self.bm25_b * length / max(length.mean(), 1e-12))
        rep = np.repeat(norm, np.diff(w.indptr))
        w.data = w.data * (self.bm25_k1 + 1.0) / (rep + w.data) * idf[w.indices]
        return w

    def _sim(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        s = similarity(self._weighted(rows), self.similarity, k=self.n_neighbors,
                       shrinkage=self.shrinkage, n_threads=self.n_threads)
        s.sort_indices()
        return s


def _times(
    x: sp.csr_matrix, rows: np.ndarray, s: sp.csr_matrix, n_threads: int | None
) -> np.ndarray:
    """Dense ``x[rows] @ s`` (float32) by the compiled kernel."""
    from chuchun.kernels.knn import rows_times_sparse
    from chuchun.kernels.similarity import thread_limit

    out = np.zeros((len(rows), s.shape[1]), dtype=np.float32)
    with thread_limit(n_threads):
        rows_times_sparse(x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data,
                          np.asarray(rows, dtype=np.int64), s.indptr.astype(np.int64),
                          s.indices.astype(np.int64), s.data.astype(np.float32), s.shape[1], out)
    return out


class ImplicitItemKNN(_ImplicitKNN):
    """Item-based top-N recommender for implicit feedback.

    .. math:: s_{ui} = \\sum_{j \\in I_u} x_{uj} \\, \\text{sim}_k(j, i)

    where :math:`I_u` are the user's items, :math:`x_{uj}` the interaction value (1 when
    ``binary``) and :math:`\\text{sim}_k(j, \\cdot)` the ``n_neighbors`` most similar items of
    ``j`` (cosine, Jaccard or dot product of the item columns after optional TF-IDF or BM25
    weighting, users acting as terms: :math:`\\text{idf}_u = \\log(n_\\text{items} / n_u)`; BM25
    :math:`w = x (K_1 + 1) / (K_1 (1 - B + B\\, |i| / \\overline{|i|}) + x) \\cdot \\text{idf}`).
    Users unseen in training are scored from a history (``recommend_for_history``).

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, items x items, top ``n_neighbors`` per row
    interactions_ : scipy.sparse.csr_matrix, the users x items matrix scored with

    References
    ----------
    M. Deshpande, G. Karypis. Item-based top-N recommendation algorithms. ACM TOIS 22(1), 2004.
    """

    supports_fold_in = True

    def _fit(self, data: Interactions) -> None:
        x = self._interactions(data)
        self.similarity_ = self._sim(x.T.tocsr())

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return _times(self.interactions_, user_idx, self.similarity_, self.n_threads)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        h = history.astype(np.float32).tocsr()
        if self.binary:
            h.data = np.ones_like(h.data)
        return _times(h, np.arange(h.shape[0]), self.similarity_, self.n_threads)

    def similar_items(self, items: Any, k: int = 10) -> SimilarItems:
        """The ``k`` most similar items of each item in ``items``."""
        self._check_fitted()
        ids, idx = map_query_items(self.items_, items)
        return top_from_rows(self.items_, ids, self.similarity_[idx], k)

    def explain(
        self, user: Any, item: Any, labels: Labels = None, *, n_reasons: int = 10
    ) -> Explanation:
        """Why ``item`` scores as it does for ``user``: the user's items that have it among
        their nearest neighbours, each with its term :math:`x_{uj} \\text{sim}_k(j, i)` of the
        score (the terms add up to the score).

        Parameters
        ----------
        user, item : external ids (must be known to the model)
        labels : mapping, pandas Series or callable, optional
            Item names (e.g. movie titles) for the reasons and the summary.
        n_reasons : int
            Most reasons listed (the strongest); the score covers all of them.
        """
        self._check_fitted()
        if isinstance(n_reasons, bool) or not isinstance(n_reasons, int) or n_reasons < 1:
            raise ConfigError(f"n_reasons must be a positive int; got {n_reasons!r}")
        u = int(self._map(self.users_, [user], "user", "error")[0])
        i = int(self._map(self.items_, [item], "item", "error")[0])
        x, sim = self.interactions_, self.similarity_
        history = x.indices[x.indptr[u]:x.indptr[u + 1]]
        values = x.data[x.indptr[u]:x.indptr[u + 1]].astype(np.float64)
        column = sim[:, i].toarray().ravel()
        terms = values * column[history]
        keep = np.flatnonzero(terms != 0)
        order = keep[np.lexsort((history[keep], -terms[keep]))]
        score = float(terms.sum())
        reasons = []
        for o in order[:n_reasons]:
            j_id = _plain_id(self.items_.ids[history[o]])
            reasons.append(Reason(kind="item", id=j_id, contribution=float(terms[o]),
                                  label=label_of(labels, j_id) if labels is not None else "",
                                  detail={"similarity": float(column[history[o]]),
                                          "value": float(values[o])}))
        item_id = _plain_id(self.items_.ids[i])
        name = label_of(labels, item_id) if labels is not None else str(item_id)
        if reasons:
            because = "; ".join(r.label or str(r.id) for r in reasons[:3])
            summary = (f"{name} (score {score:.3g}): similar to {because}"
                       f"{f' and {len(order) - 3} more of your items' if len(order) > 3 else ''}")
        else:
            summary = f"{name} (score 0): none of the user's items has it among its neighbours"
        return Explanation(user=_plain_id(user), item=item_id, score=score, reasons=reasons,
                           summary=summary)


def _plain_id(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


class ImplicitUserKNN(_ImplicitKNN):
    """User-based top-N recommender for implicit feedback.

    .. math:: s_{ui} = \\sum_{v \\in N^k(u)} \\text{sim}(u, v) \\, x_{vi}

    with :math:`N^k(u)` the ``n_neighbors`` users most similar to ``u`` (cosine, Jaccard or dot
    product of the user rows, optionally TF-IDF/BM25-weighted with items as terms).

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, users x users, top ``n_neighbors`` per row
    interactions_ : scipy.sparse.csr_matrix, users x items

    References
    ----------
    J. Herlocker, J. Konstan, A. Borchers, J. Riedl. An algorithmic framework for performing
    collaborative filtering. SIGIR 1999.
    """

    def _fit(self, data: Interactions) -> None:
        x = self._interactions(data)
        self.similarity_ = self._sim(x)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return _times(self.similarity_, user_idx, self.interactions_, self.n_threads)
