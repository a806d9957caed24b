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
from chuchun._params import Param, n_threads_param
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender
from chuchun.models._explain import bias_reasons, plain
from chuchun.models._results import Reason
from chuchun.models.baseline import fit_biases, fold_in_user_bias
from chuchun.similarity import MEASURES, similarity

__all__ = ["ImplicitItemKNN", "ImplicitUserKNN", "ItemKNN", "UserKNN"]

_EXPLICIT_MEASURES = tuple(m for m in MEASURES if m != "dot")
_PREDICTIONS = ("plain", "mean_centered", "zscore", "baseline")
# keeps the ranking order among pairs without neighbour evidence (w = 0): by the estimate
_RANK_EPS = 1e-6
_PAIR_BUDGET = 2_000_000  # (user, item) pairs scored per chunk: about 100 MB of work arrays


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
    damping = Param(float, 1.0, "Added to the similarity sum in the denominator: shrinks "
                    "estimates backed by little similarity towards the baseline (0: Surprise).",
                    low=0)
    max_stored = Param((int, str), "auto", "Most similar rows kept per row after fit; memory is "
                       "O(rows x max_stored). 'auto': 2 x n_neighbors; None: every non-zero "
                       "similarity, as Surprise.", low=1, nullable=True)
    ranking_damping = Param(float, 10.0, "recommend ranks by (prediction - lowest rating) x "
                            "w / (w + this), w the similarity mass of the neighbours used "
                            "(0: by the prediction alone).", low=0)
    user_regularization = Param(float, 15.0, "Baseline ALS regularisation of user biases.", low=0)
    item_regularization = Param(float, 10.0, "Baseline ALS regularisation of item biases.", low=0)
    bias_epochs = Param(int, 10, "Baseline ALS epochs.", low=1)
    clip = Param(bool, True, "Clip predictions to the training rating scale.")
    n_threads = n_threads_param("Threads for the kernels.")

    predicts_ratings = True
    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("baseline terms plus one term per neighbour used: "
                      "similarity x normalised rating deviation / (damping + similarity sum), "
                      "adding up to the predicted rating; with ranking_damping > 0 one more "
                      "'neighbour support' term turns it into the ranking score")
    _user_based: ClassVar[bool] = True
    _test_params: ClassVar[dict[str, Any]] = {"n_neighbors": 5}

    #: Known (user, item) pairs of the last :meth:`predict` call that had fewer than
    #: ``min_neighbors`` qualifying neighbours and got the fallback estimate.
    last_fallback_count: int = 0

    # -- fit ----------------------------------------------------------------------------------
    def _stored(self) -> int | None:
        """Neighbours kept per row: ``max_stored`` resolved (``"auto"``: 2 x ``n_neighbors``)."""
        if isinstance(self.max_stored, str):
            if self.max_stored != "auto":
                raise ConfigError(
                    f"max_stored must be a positive int, 'auto' or None; got {self.max_stored!r}"
                )
            return 2 * int(self.n_neighbors)
        return None if self.max_stored is None else int(self.max_stored)

    def _fit(self, data: Interactions) -> None:
        if not data.has_ratings:
            raise DataError(
                f"{type(self).__name__} needs explicit ratings; the interaction log has no "
                "rating column (use ImplicitItemKNN / ImplicitUserKNN for implicit feedback)"
            )
        stored = self._stored()
        ui = data.csr  # users x items; the similarity makes its own float64 working copy
        x_mat = ui if self._user_based else ui.T.tocsr()
        x_mat.sort_indices()
        mu, bu, bi = fit_biases(
            data,
            n_epochs=self.bias_epochs,
            user_regularization=self.user_regularization,
            item_regularization=self.item_regularization,
        )
        bx, by = (bu, bi) if self._user_based else (bi, bu)
        # float32 halves the stored similarities; the unbounded (Surprise-identical)
        # configuration keeps float64 so that equal similarities tie exactly as there
        sims = similarity(
            x_mat,
            self.similarity,
            k=stored,
            shrinkage=self.shrinkage,
            min_support=self.min_support,
            baselines=(mu, bx, by) if self.similarity == "pearson_baseline" else None,
            n_threads=self.n_threads,
            dtype=np.float64 if stored is None else np.float32,
        )
        self.similarity_ = sims  # non-positive similarities are skipped by the kernel
        # for each column y: the rows that rated it (ItemKNN: the users x items matrix itself)
        y_mat = x_mat.T.tocsr() if self._user_based else ui
        self.raters_ = sp.csr_matrix(y_mat, dtype=np.float32)
        self.raters_.sort_indices()
        counts = np.diff(x_mat.indptr)
        values = x_mat.data.astype(np.float64)
        sums = np.add.reduceat(values, x_mat.indptr[:-1]) if x_mat.nnz else np.zeros(0)
        sums = np.where(counts > 0, sums, 0.0)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), mu)
        sq = (values - np.repeat(means, counts)) ** 2
        var = (np.add.reduceat(sq, x_mat.indptr[:-1]) if x_mat.nnz else np.zeros(0))
        var = np.where(counts > 0, var, 0.0) / np.maximum(counts, 1)
        sigma = np.sqrt(var)
        self.row_mean_ = means
        self.rating_std_ = float(np.std(data.values))
        self.row_std_ = np.where(sigma > 0, sigma, self.rating_std_)
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
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unclipped estimates of known pairs, a mask of the pairs that used the fallback and
        the similarity mass of the neighbours each estimate used."""
        x, y = (user_idx, item_idx) if self._user_based else (item_idx, user_idx)
        center, scale, nb_center, nb_scale, offset = self._terms()
        return self._aggregate(x, y, self.similarity_, self.raters_, center, scale, nb_center,
                               nb_scale, offset)

    def _aggregate(
        self, x: np.ndarray, y: np.ndarray, sims: sp.csr_matrix, raters: sp.csr_matrix,
        center: np.ndarray, scale: np.ndarray, nb_center: np.ndarray, nb_scale: np.ndarray,
        offset: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The prediction rule for pairs (row ``x`` of ``sims``, row ``y`` of ``raters``):
        estimates, fallback mask and similarity mass (0 where the fallback was used)."""
        from chuchun.kernels.knn import knn_aggregate
        from chuchun.kernels.similarity import default_blocks, thread_limit

        x = np.asarray(x, dtype=np.int64)
        y = np.asarray(y, dtype=np.int64)
        order = np.argsort(x, kind="stable")
        xs, ys = x[order], y[order]
        bounds = np.r_[np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]]), len(xs)].astype(np.int64)
        agg = np.zeros(len(xs))
        count = np.zeros(len(xs), dtype=np.int64)
        weight = np.zeros(len(xs))
        s, c = sims, raters
        # the big arrays go in as stored (int32 indices, float32 values): no per-call copies
        with thread_limit(self.n_threads):
            knn_aggregate(
                s.indptr.astype(np.int64), s.indices, s.data, c.indptr.astype(np.int64),
                c.indices, c.data, xs, ys, bounds,
                default_blocks(), int(self.n_neighbors), np.asarray(nb_center, np.float64),
                np.asarray(nb_scale, np.float64), np.asarray(offset, np.float64), agg, count,
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
        weight[fallback] = 0.0
        est = np.empty(len(xs))
        est[order] = est_sorted
        fb = np.empty(len(xs), dtype=bool)
        fb[order] = fallback
        mass = np.empty(len(xs))
        mass[order] = weight
        return est, fb, mass

    def _clip(self, est: np.ndarray) -> np.ndarray:
        if self.clip and self.rating_scale_ is not None:
            return np.clip(est, self.rating_scale_[0], self.rating_scale_[1])
        return est

    def _rank_factor(self, mass: np.ndarray) -> np.ndarray:
        """The support factor :math:`(w + \\epsilon) / (w + \\lambda_r)` of the ranking score."""
        return (mass + _RANK_EPS) / (mass + self.ranking_damping)

    def _ranking(self, est: np.ndarray, mass: np.ndarray) -> np.ndarray:
        """Ranking score of unclipped estimates: ``est`` itself when ``ranking_damping`` is 0,
        else (est - lowest rating) x the support factor."""
        if self.ranking_damping == 0:
            return est
        return (est - self._rating_floor()) * self._rank_factor(mass)

    def _rating_floor(self) -> float:
        return float(self.rating_scale_[0]) if self.rating_scale_ is not None else 0.0

    def _predict_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        est, fb, _ = self._estimate(user_idx, item_idx)
        self.last_fallback_count = int(fb.sum())
        return self._clip(est)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        # ranking uses the unclipped estimate: clipping would tie everything above the scale
        n_items = len(self.items_)
        users = np.repeat(np.asarray(user_idx, dtype=np.int64), n_items)
        items = np.tile(np.arange(n_items, dtype=np.int64), len(user_idx))
        est, _, mass = self._estimate(users, items)
        return self._ranking(est, mass).reshape(len(user_idx), n_items).astype(np.float32)

    def _chunk_size(self) -> int:
        # scoring materialises about ten arrays per (user, item) pair: bound the pairs per
        # chunk, not the floats of the output, so a large catalogue does not blow up memory
        return max(1, min(4096, _PAIR_BUDGET // max(1, len(self.items_))))

    def _fallback_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        if self.prediction != "baseline":
            return np.full(len(user_idx), self.global_mean_, dtype=np.float64)
        bu = np.where(user_idx >= 0, self.user_bias_[np.maximum(user_idx, 0)], 0.0)
        bi = np.where(item_idx >= 0, self.item_bias_[np.maximum(item_idx, 0)], 0.0)
        return self._clip(self.global_mean_ + bu + bi)

    # -- fold-in ------------------------------------------------------------------------------
    def _history_terms(
        self, history: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centre, scale and user bias of each history row (as the fit computes them)."""
        counts = np.diff(history.indptr)
        h = history.astype(np.float64)
        sums = np.asarray(h.sum(axis=1)).ravel()
        means = np.where(counts > 0, sums / np.maximum(counts, 1), self.global_mean_)
        sq = h.copy()
        sq.data = (sq.data - np.repeat(means, counts)) ** 2
        sigma = np.sqrt(np.asarray(sq.sum(axis=1)).ravel() / np.maximum(counts, 1))
        std = np.where(sigma > 0, sigma, getattr(self, "rating_std_", 1.0))
        bu = fold_in_user_bias(h, self.global_mean_, self.item_bias_,
                               float(self.user_regularization))
        return means, std, bu

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        n_new, n_items = history.shape
        h = sp.csr_matrix(history, dtype=np.float64)
        h.sort_indices()
        means, std, bu = self._history_terms(h)
        center, scale, nb_center, nb_scale, offset = self._terms()
        rows = np.repeat(np.arange(n_new, dtype=np.int64), n_items)
        items = np.tile(np.arange(n_items, dtype=np.int64), n_new)
        if self._user_based:
            # the new users' similarities to the training users, by the fitted measure
            stacked = sp.vstack([self.raters_.T.tocsr().astype(np.float64), h]).tocsr()
            n_train = len(self.users_)
            baselines = None
            if self.similarity == "pearson_baseline":
                baselines = (self.global_mean_, np.r_[self.user_bias_, bu], self.item_bias_)
            sims = similarity(stacked, self.similarity, k=self._stored(),
                              shrinkage=self.shrinkage, min_support=self.min_support,
                              baselines=baselines, n_threads=self.n_threads, dtype=np.float64,
                              rows=(n_train, n_train + n_new), exclude_from=n_train)
            if self.prediction == "baseline":
                c_new, s_new = self.global_mean_ + bu, np.ones(n_new)
            elif self.prediction == "plain":
                c_new, s_new = np.zeros(n_new), np.ones(n_new)
            elif self.prediction == "mean_centered":
                c_new, s_new = means, np.ones(n_new)
            else:
                c_new, s_new = means, std
            est, _, mass = self._aggregate(rows, items, sims, self.raters_, c_new, s_new,
                                           nb_center, nb_scale, offset)
        else:
            off_new = bu if self.prediction == "baseline" else np.zeros(n_new)
            est, _, mass = self._aggregate(items, rows, self.similarity_, h, center, scale,
                                           nb_center, nb_scale, off_new)
        return self._ranking(est, mass).reshape(n_new, n_items).astype(np.float32)

    # -- explanation --------------------------------------------------------------------------
    def _neighbours(self, u: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k neighbours used for (u, i): their indices, similarities and ratings."""
        x, y = (u, i) if self._user_based else (i, u)
        s, c = self.similarity_, self.raters_
        sim_row = dict(zip(s.indices[s.indptr[x]:s.indptr[x + 1]].tolist(),
                           s.data[s.indptr[x]:s.indptr[x + 1]].tolist(), strict=True))
        nbs = c.indices[c.indptr[y]:c.indptr[y + 1]]
        rs = c.data[c.indptr[y]:c.indptr[y + 1]]
        sims = np.array([sim_row.get(int(n), 0.0) for n in nbs], dtype=np.float64)
        keep = sims > 0
        nbs, rs, sims = nbs[keep], rs[keep], sims[keep]
        order = np.lexsort((nbs, -sims))[: self.n_neighbors]
        return nbs[order], sims[order], rs[order]

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        u, i = user_idx, item_idx
        x, y = (u, i) if self._user_based else (i, u)
        center, scale, nb_center, nb_scale, offset = self._terms()
        nbs, sims, rs = self._neighbours(u, i)
        side = "user" if self._user_based else "item"
        other = "item" if self._user_based else "user"
        if self.prediction == "baseline":
            reasons = bias_reasons(global_mean=self.global_mean_)
            reasons += bias_reasons(**{f"{side}_bias": center[x] - self.global_mean_,
                                       f"{other}_bias": offset[y]})
        elif self.prediction == "plain":
            reasons = []
        else:
            reasons = bias_reasons(**{f"{side}_mean": center[x]})
        if len(nbs) < max(self.min_neighbors, 1):
            if self.prediction == "plain":
                reasons = bias_reasons(global_mean=self.global_mean_)
            return self._explain_ranking(reasons, 0.0)
        dev = (rs - nb_center[nbs] - offset[y]) / nb_scale[nbs]
        terms = scale[x] * sims * dev / (self.damping + sims.sum())
        vocab = self.users_ if self._user_based else self.items_
        for nb, sim, r, t in zip(nbs, sims, rs, terms, strict=True):
            reasons.append(Reason(kind=side, id=plain(vocab.ids[nb]), contribution=float(t),
                                  detail={"similarity": float(sim), "rating": float(r)}))
        return self._explain_ranking(reasons, float(sims.sum()))

    def _explain_ranking(
        self, reasons: list[Reason], mass: float
    ) -> tuple[float, list[Reason]]:
        """The ranking score: the predicted rating's terms plus, with ``ranking_damping``, one
        ``"neighbour support"`` term (ranking score minus predicted rating)."""
        est = float(sum(r.contribution for r in reasons))
        if self.ranking_damping == 0:
            return est, reasons
        factor = float(self._rank_factor(np.array([mass]))[0])
        score = (est - self._rating_floor()) * factor
        reasons = [*reasons, Reason(
            kind="bias", id="neighbour support", contribution=score - est,
            detail={"predicted rating": est, "similarity mass": mass, "factor": factor})]
        return score, reasons


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

    :math:`\\delta` (``damping``, default 1) pulls estimates backed by little similarity mass
    towards :math:`c_u + o_i` (support-weighted shrinkage, Koren 2010, sec. 2.2): one weak
    neighbour can no longer carry a prediction to the top of the scale. ``predict`` clips.

    **Ranking.** ``recommend`` ranks by the unclipped estimate discounted by its support,

    .. math:: \\text{score}_{ui} = (\\hat r_{ui} - r_{\\min}) \\frac{w_{ui} + \\epsilon}
              {w_{ui} + \\lambda_r}

    with :math:`w_{ui} = \\sum_{v \\in N^k_i(u)} s_{uv}` (0 when the fallback is used),
    :math:`r_{\\min}` the lowest rating of the scale, :math:`\\lambda_r` = ``ranking_damping``
    (default 10; 0 ranks by :math:`\\hat r_{ui}`) and :math:`\\epsilon = 10^{-6}` (pairs
    without support keep the order of their estimates, below every supported pair). A rating
    predictor alone ranks rarely rated items first; the support factor makes the ranking
    follow what the neighbourhood backs. ``explain`` adds one ``"neighbour support"`` term to
    the prediction's terms, so the contributions add up to the ranking score. Chosen on a
    validation cut of the bundled data's training part (each user's latest 20% of training
    ratings): see ``benchmarks/results/contract.md``. The Surprise-identical configuration
    is ``damping=0, ranking_damping=0, max_stored=None`` (cross-checked against Surprise in
    ``tests/unit/test_knn.py`` and ``benchmarks/bench_knn.py``).

    **Memory.** Fit keeps the ``max_stored`` most similar users of each user as float32; the
    default ``"auto"`` keeps 2 x ``n_neighbors``, so memory is O(users x n_neighbors), and the
    ``n_neighbors`` used for a pair are the most similar among those kept who rated the item.
    ``max_stored=None`` keeps every non-zero similarity (float64), which reproduces Surprise
    exactly (Surprise holds the dense matrix).

    **Fallback.** When fewer than ``min_neighbors`` (at least 1) neighbours qualify, the
    prediction is :math:`c_u + o_i`: the global mean for ``"plain"``, the user's mean for
    ``"mean_centered"``/``"zscore"``, the baseline :math:`\\mu + b_u + b_i` for ``"baseline"``
    (Surprise's behaviour). :attr:`last_fallback_count` says how many pairs of the last
    ``predict`` fell back. Pairs with an unknown user or item get the global mean (the bias
    baseline for ``"baseline"``). Predictions are clipped to the rating scale.

    Parameters
    ----------
    n_neighbors, min_neighbors, similarity, prediction, shrinkage, min_support, damping,
    max_stored, ranking_damping, user_regularization, item_regularization, bias_epochs, clip,
    n_threads
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

    def _user_similarities(self, user_idx: np.ndarray) -> sp.csr_matrix:
        return self.similarity_[user_idx]


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

    def _item_similarities(self, item_idx: np.ndarray) -> sp.csr_matrix:
        return self.similarity_[item_idx]


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
    n_threads = n_threads_param("Threads for the kernels.")

    _test_params: ClassVar[dict[str, Any]] = {"n_neighbors": 10}

    def _interactions(self, data: Interactions) -> sp.csr_matrix:
        x = data.csr.astype(np.float32)
        if self.binary or not data.has_ratings:
            x.data = np.ones_like(x.data)
        self.interactions_ = x
        return x

    def _weighted(
        self, rows: sp.csr_matrix, reference: sp.csr_matrix | None = None
    ) -> sp.csr_matrix:
        """TF-IDF or BM25 weights of ``rows`` (documents) over its columns (terms); document
        frequencies and the mean length come from ``reference`` (default: ``rows``)."""
        w = rows.astype(np.float64)
        if self.weighting == "none":
            return w
        ref = rows if reference is None else reference
        n_docs = ref.shape[0]
        df = np.bincount(ref.indices, minlength=ref.shape[1])
        idf = np.log(n_docs / np.maximum(df, 1))
        if self.weighting == "tfidf":
            w.data = w.data * idf[w.indices]
            return w
        length = np.diff(w.indptr).astype(np.float64)
        mean_length = float(np.diff(ref.indptr).mean()) if ref.shape[0] else 1.0
        norm = self.bm25_k1 * (1.0 - self.bm25_b + self.bm25_b * length / max(mean_length, 1e-12))
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
    explain_is_additive = True
    explain_method = ("the user's items that have the item among their nearest neighbours, each "
                      "contributing interaction value x similarity; the terms add up to the score")

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

    def _item_similarities(self, item_idx: np.ndarray) -> sp.csr_matrix:
        return self.similarity_[item_idx]

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        x, sim = self.interactions_, self.similarity_
        lo, hi = x.indptr[user_idx], x.indptr[user_idx + 1]
        history = x.indices[lo:hi]
        values = x.data[lo:hi].astype(np.float64)
        column = sim[:, item_idx].toarray().ravel().astype(np.float64)
        terms = values * column[history]
        keep = np.flatnonzero(terms != 0)
        reasons = [
            Reason(kind="item", id=plain(self.items_.ids[history[o]]),
                   contribution=float(terms[o]),
                   detail={"similarity": float(column[history[o]]), "value": float(values[o])})
            for o in keep
        ]
        return float(terms[keep].sum()), reasons


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

    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("neighbour users who interacted with the item, each contributing "
                      "similarity x interaction value; the terms add up to the score")

    def _fit(self, data: Interactions) -> None:
        x = self._interactions(data)
        self.similarity_ = self._sim(x)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return _times(self.similarity_, user_idx, self.interactions_, self.n_threads)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        # the new users' neighbours among the training users, by the fitted measure and
        # weighting (document frequencies and lengths from the training matrix)
        h = history.astype(np.float32).tocsr()
        if self.binary:
            h.data = np.ones_like(h.data)
        train = self.interactions_
        stacked = sp.vstack([self._weighted(train, train), self._weighted(h, train)]).tocsr()
        n_train = train.shape[0]
        sims = similarity(stacked, self.similarity, k=self.n_neighbors,
                          shrinkage=self.shrinkage, n_threads=self.n_threads,
                          rows=(n_train, n_train + h.shape[0]), exclude_from=n_train)
        sims.sort_indices()
        return _times(sims, np.arange(h.shape[0]), train, self.n_threads)

    def _user_similarities(self, user_idx: np.ndarray) -> sp.csr_matrix:
        return self.similarity_[user_idx]

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        s, x = self.similarity_, self.interactions_
        nbs = s.indices[s.indptr[user_idx]:s.indptr[user_idx + 1]]
        sims = s.data[s.indptr[user_idx]:s.indptr[user_idx + 1]].astype(np.float64)
        values = np.asarray(x[nbs, item_idx].toarray()).ravel().astype(np.float64)
        terms = sims * values
        keep = np.flatnonzero(terms != 0)
        reasons = [
            Reason(kind="user", id=plain(self.users_.ids[nbs[o]]), contribution=float(terms[o]),
                   detail={"similarity": float(sims[o]), "value": float(values[o])})
            for o in keep
        ]
        return float(terms[keep].sum()), reasons
