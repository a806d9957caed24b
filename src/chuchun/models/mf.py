"""Latent-factor models for explicit ratings: TruncatedSVD, FunkSVD, SVDpp and ALS.

All four predict :math:`\\hat r_{ui} = \\mu + b_u + b_i + p_u^T q_i` (SVD++ adds an implicit term
to :math:`p_u`; unbiased variants drop :math:`\\mu, b_u, b_i`). They share fold-in (users unseen
in training are scored from the ratings passed at call time, item side fixed),
``similar_items`` / ``similar_users`` by factor cosine, and the fitted attributes
``user_factors_``, ``item_factors_`` (float32), ``user_bias_``, ``item_bias_`` (float32) and
``intercept_``. The compiled loops live in :mod:`chuchun.kernels.mf`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun._params import Param, n_threads_param, random_state_param
from chuchun._random import check_random_state
from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary
from chuchun.kernels.mf import (
    als_half_step,
    max_threads,
    numba_threads,
    sgd_epoch,
    svdpp_epoch,
)
from chuchun.models._base import Recommender
from chuchun.models._explain import (
    bias_reasons,
    history_reasons,
    ridge_history_weights,
)
from chuchun.models._results import Reason
from chuchun.models._similar import cosine_rows
from chuchun.models.baseline import _SupportRanked, fit_biases

__all__ = ["ALS", "FunkSVD", "SVDpp", "TruncatedSVD"]

_log = logging.getLogger(__name__)

#: ``callback(model, epoch, logs)`` with ``logs`` holding ``train_rmse``, ``val_rmse`` (or NaN)
#: and ``learning_rate``; returning ``True`` stops training after that epoch.
EpochCallback = Callable[[Recommender, int, dict[str, float]], Any]


class _FactorModel(Recommender):
    """Shared scoring, fold-in and similarity for the models of this module."""

    # fitted state, set by each model's _fit
    user_factors_: np.ndarray
    item_factors_: np.ndarray
    user_bias_: np.ndarray
    item_bias_: np.ndarray
    intercept_: float
    fit_bias_: bool
    # hyperparameters every model of this module declares
    regularization: Any
    bias_regularization: Any
    init_std: Any

    predicts_ratings = True
    supports_fold_in = True
    explain_method = ("bias terms plus the user's rated items, weighted by a ridge fit of the "
                      "user's factor vector on theirs (not additive)")

    # -- scoring ------------------------------------------------------------------------------
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._rank_scores(
            self._scores_from(self.user_bias_[user_idx], self._user_vectors(user_idx)))

    def _rank_scores(self, est: np.ndarray) -> np.ndarray:
        """Ranking scores of unclipped estimates (the estimates themselves here; the rating
        models that discount by support override this)."""
        return est

    def _support_terms(self, est: float, item_idx: int) -> tuple[float, list[Reason]]:
        """The ranking score of one estimate and the reasons that turn the estimate into it."""
        return est, []

    def _estimate(self, user_idx: int, item_idx: int) -> float:
        """Unclipped predicted rating of one known pair (float64)."""
        pu = self._user_vectors(np.array([user_idx]))[0].astype(np.float64)
        return float(pu @ self.item_factors_[item_idx].astype(np.float64) + self.intercept_
                     + float(self.user_bias_[user_idx]) + float(self.item_bias_[item_idx]))

    def _user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_factors_[user_idx]

    def _scores_from(self, bu: np.ndarray, pu: np.ndarray) -> np.ndarray:
        scores = pu @ self.item_factors_.T
        scores += self.item_bias_[None, :]
        scores += (bu.astype(np.float32) + float(self.intercept_))[:, None]
        return scores.astype(np.float32, copy=False)

    def _predict_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        pu = self._user_vectors(user_idx).astype(np.float64)
        est = (pu * self.item_factors_[item_idx].astype(np.float64)).sum(axis=1)
        est += self.intercept_ + self.user_bias_[user_idx] + self.item_bias_[item_idx]
        return self._clip(est)

    def _fallback_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        bu = np.where(user_idx >= 0, self.user_bias_[np.maximum(user_idx, 0)], 0.0)
        bi = np.where(item_idx >= 0, self.item_bias_[np.maximum(item_idx, 0)], 0.0)
        return self._clip(self.global_mean_ + bu + bi)

    def _clip(self, est: np.ndarray) -> np.ndarray:
        if getattr(self, "clip", False) and self._clips() and self.rating_scale_ is not None:
            return np.clip(est, self.rating_scale_[0], self.rating_scale_[1])
        return est

    def _clips(self) -> bool:
        return True

    # -- fold-in ------------------------------------------------------------------------------
    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        bu, pu = self._fold_in(history)
        return self._rank_scores(self._scores_from(bu, pu))

    def _fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Bias and factors of each history row, item side fixed (regularised least squares)."""
        return self._solve_users(history, self.item_factors_)

    def _fold_in_regularization(self) -> tuple[float, float, bool]:
        """(factor λ, bias λ, weighted-λ) of the fold-in least squares."""
        reg = float(self.regularization)
        breg = reg if self.bias_regularization is None else float(self.bias_regularization)
        return reg, breg, True

    def _solve_users(
        self, history: sp.csr_matrix, item_vectors: np.ndarray, data: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        reg, breg, weighted = self._fold_in_regularization()
        n = history.shape[0]
        pu = np.zeros((n, item_vectors.shape[1]), dtype=np.float32)
        bu = np.zeros(n, dtype=np.float32)
        values = history.data if data is None else data
        als_half_step(
            history.indptr.astype(np.int64), history.indices.astype(np.int32),
            np.ascontiguousarray(values, dtype=np.float32),
            np.ascontiguousarray(item_vectors, dtype=np.float32),
            self.item_bias_.astype(np.float64), float(self.intercept_), reg, breg, weighted,
            bool(self.fit_bias_), pu, bu,
        )
        return bu, pu

    # -- similarity ---------------------------------------------------------------------------
    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        return cosine_rows(self.item_factors_, item_idx)

    def _user_similarities(self, user_idx: np.ndarray) -> np.ndarray:
        return cosine_rows(self.user_factors_, user_idx)

    # -- explanations -------------------------------------------------------------------------
    def _bias_terms(self, user_idx: int, item_idx: int) -> list[Reason]:
        if not self.fit_bias_:
            return [] if self.intercept_ == 0 else bias_reasons(global_mean=self.intercept_)
        return bias_reasons(global_mean=self.intercept_,
                            user_bias=self.user_bias_[user_idx],
                            item_bias=self.item_bias_[item_idx])

    def _history(self, user_idx: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.seen_.indptr[user_idx], self.seen_.indptr[user_idx + 1]
        return self.seen_.indices[lo:hi], self.seen_.data[lo:hi].astype(np.float64)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        """Bias terms plus the user's rated items, weighted by
        :func:`~chuchun.models._explain.ridge_history_weights` (not additive)."""
        js, ratings = self._history(user_idx)
        contrib, weights = ridge_history_weights(
            self.item_factors_[js], self._user_vectors(np.array([user_idx]))[0],
            self.item_factors_[item_idx])
        score = float(self._score(np.array([user_idx]))[0, item_idx])
        _, support = self._support_terms(self._estimate(user_idx, item_idx), item_idx)
        reasons = self._bias_terms(user_idx, item_idx) + history_reasons(
            self.items_.ids[js], contrib, rating=ratings, weight=weights) + support
        return score, reasons

    # -- helpers ------------------------------------------------------------------------------
    def _init_factors(self, rng: np.random.Generator, n: int, k: int) -> np.ndarray:
        out = rng.standard_normal((n, k), dtype=np.float32)
        out *= np.float32(self.init_std)
        return out


def _require_ratings(data: Interactions, who: str) -> None:
    if not data.has_ratings:
        raise DataError(
            f"{who} needs explicit ratings; the interaction log has no rating column "
            "(use ImplicitALS or BPR for implicit feedback)"
        )


def _resolve_threads(n_threads: int | None) -> int:
    return max_threads() if not n_threads else int(n_threads)


def _rmse(err_sq_sum: float, n: int) -> float:
    return math.sqrt(err_sq_sum / n) if n else float("nan")


class _EpochLoop:
    """Per-epoch bookkeeping: history, callbacks, progress bar and early stopping."""

    def __init__(
        self, model: Recommender, n_epochs: int, callbacks: Iterable[EpochCallback] | None,
        patience: int, desc: str,
    ) -> None:
        from chuchun import _progress

        self.model = model
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not callable(cb):
                raise ConfigError(
                    f"callbacks must be callables cb(model, epoch, logs); got {type(cb).__name__}"
                )
        self.patience = patience
        self.history: dict[str, list[float]] = {"train_rmse": [], "val_rmse": []}
        self.best = math.inf
        self.best_epoch = -1
        self.bad = 0
        self.bar = _progress.bar(n_epochs, desc, verbose=getattr(model, "verbose", False))

    def end_epoch(self, epoch: int, train_rmse: float, val_rmse: float, lr: float) -> bool:
        """Record one epoch; return True when training should stop. Sets ``improved``."""
        self.history["train_rmse"].append(float(train_rmse))
        self.history["val_rmse"].append(float(val_rmse))
        logs = {"train_rmse": float(train_rmse), "val_rmse": float(val_rmse),
                "learning_rate": float(lr)}
        _log.debug("%s epoch %d: %s", type(self.model).__name__, epoch, logs)
        if self.bar is not None:
            self.bar.set_postfix(train=f"{train_rmse:.4f}", val=f"{val_rmse:.4f}")
            self.bar.update(1)
        stop = False
        for cb in self.callbacks:
            stop = bool(cb(self.model, epoch, logs)) or stop
        self.improved = False
        if not math.isnan(val_rmse):
            if val_rmse < self.best:
                self.best, self.best_epoch, self.bad, self.improved = val_rmse, epoch, 0, True
            else:
                self.bad += 1
                if self.patience and self.bad >= self.patience:
                    stop = True
        return stop

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _validation_rows(
    model: Any, data: Interactions, validation: Interactions | None, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Training row indices and (user_idx, item_idx, rating) of the validation pairs."""
    n = len(data)
    if validation is not None:
        if not isinstance(validation, Interactions) or not validation.has_ratings:
            raise DataError(
                "validation must be an Interactions with ratings; got "
                f"{type(validation).__name__}"
            )
        vu = data.users.index(validation.user_ids)
        vi = data.items.index(validation.item_ids)
        keep = (vu >= 0) & (vi >= 0)
        if not keep.any():
            raise DataError("validation shares no (user, item) ids with the training data")
        return np.arange(n), (vu[keep], vi[keep], validation.values[keep])
    frac = float(model.validation_fraction)
    if frac <= 0:
        return np.arange(n), None
    n_val = int(round(n * frac))
    if n_val < 1 or n_val >= n:
        raise ConfigError(
            f"validation_fraction={frac} leaves {n_val} of {n} ratings for validation; "
            "need at least one on each side"
        )
    perm = rng.permutation(n)
    val = np.sort(perm[:n_val])
    return np.sort(perm[n_val:]), (data.user_idx[val], data.item_idx[val], data.values[val])


def _strata(
    rng: np.random.Generator, u: np.ndarray, i: np.ndarray, n_users: int, n_items: int, t: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row visiting order grouped into t x t (user stratum, item stratum) blocks.

    Inside a block the users come in a random order, each with all its ratings of the block in
    a random order (Surprise, too, visits the ratings user by user): the user's factor row then
    stays in cache while its ratings are visited. Returns the rows, the block offsets and the
    stratum of every user and item (:func:`_balanced_groups`; all zeros for ``t == 1``).
    """
    perm = rng.permutation(len(u))
    user_rank = rng.permutation(n_users)
    if t == 1:
        rows = perm[_stable_order(user_rank[u[perm]], n_users)]
        return (rows, np.array([0, len(u)], dtype=np.int64), np.zeros(n_users, dtype=np.int64),
                np.zeros(n_items, dtype=np.int64))
    ug = _balanced_groups(rng, np.bincount(u, minlength=n_users), t)
    ig = _balanced_groups(rng, np.bincount(i, minlength=n_items), t)
    block = ug[u[perm]] * t + ig[i[perm]]
    key = block * n_users + user_rank[u[perm]]
    rows = perm[_stable_order(key, t * t * n_users)]
    ptr = np.zeros(t * t + 1, dtype=np.int64)
    np.cumsum(np.bincount(block, minlength=t * t), out=ptr[1:])
    return rows, ptr, ug, ig


def _balanced_groups(rng: np.random.Generator, counts: np.ndarray, t: int) -> np.ndarray:
    """A random partition of ``len(counts)`` rows into ``t`` groups of about equal total count.

    Rows are dealt out in decreasing order of count (ties in random order) to the groups
    ``0, 1, ..., t-1, t-1, ..., 1, 0, 0, 1, ...``: the totals then differ by at most the largest
    count, where a uniform random partition of MovieLens 100K's users leaves DSGD blocks
    10-20% apart (the slowest block of each sub-epoch sets its time).
    """
    n = len(counts)
    order = rng.permutation(n)
    order = order[np.argsort(-counts[order], kind="stable")]
    turn = np.arange(n) % (2 * t)
    groups = np.empty(n, dtype=np.int64)
    groups[order] = np.where(turn < t, turn, 2 * t - 1 - turn)
    return groups


def _stable_order(key: np.ndarray, n_keys: int) -> np.ndarray:
    """``argsort(key, kind="stable")`` as int64; keys below 2**16 go through NumPy's radix
    sort (linear time) instead of a merge sort."""
    small = key.astype(np.uint16) if n_keys <= 1 << 16 else key
    return np.argsort(small, kind="stable").astype(np.int64)


# ---------------------------------------------------------------------------------------------
class TruncatedSVD(_FactorModel):
    """PureSVD: the truncated SVD of the (optionally centred) sparse rating matrix.

    With :math:`R'` the rating matrix whose stored entries are :math:`r_{ui} - o_{ui}` (missing
    entries are zero, never materialised) and :math:`R' \\approx U_k \\Sigma_k V_k^T`,

    .. math:: \\hat r_{ui} = o_{ui} + (U_k \\Sigma_k)_u^T (V_k)_i

    where the offset :math:`o_{ui}` is 0 (``center="none"``, Cremonesi et al.'s PureSVD, a
    top-N ranker whose scores are reconstructions, not ratings), :math:`\\mu` (``"mean"``) or
    the baseline :math:`\\mu + b_u + b_i` (``"baseline"``; biases by regularised ALS,
    :func:`~chuchun.models.baseline.fit_biases`). The solver is ARPACK
    (:func:`scipy.sparse.linalg.svds`) on the sparse matrix. Fold-in projects a new user's
    centred rating row onto :math:`V_k`: :math:`p_u = r'_u V_k` (exactly the fitted
    :math:`(U_k\\Sigma_k)_u` for a training row).

    Parameters
    ----------
    n_factors : int
        Rank :math:`k` (less than both matrix dimensions).
    center : {"none", "mean", "baseline"}
        Default ``"baseline"``, so that ``predict`` estimates ratings; ``"none"`` is PureSVD
        proper, the better top-N ranker, whose scores are not ratings.
    clip : bool
        Clip predicted ratings to the training scale (ignored for ``center="none"``).
    random_state : int or None
        Seed of the ARPACK starting vector.

    Attributes
    ----------
    user_factors_ : ndarray (n_users, k) float32, :math:`U_k \\Sigma_k`
    item_factors_ : ndarray (n_items, k) float32, :math:`V_k`
    singular_values_ : ndarray (k,) float64, descending
    user_bias_, item_bias_ : ndarray float32 (zeros unless ``center="baseline"``)
    intercept_ : float

    References
    ----------
    P. Cremonesi, Y. Koren, R. Turrin. Performance of recommender algorithms on top-N
    recommendation tasks. RecSys 2010.
    """

    n_factors = Param(int, 50, "Number of singular triplets kept (rank).", low=1)
    center = Param(str, "baseline", "Offset removed before the SVD (\"none\" = PureSVD ranking).",
                   choices=("none", "mean", "baseline"))
    clip = Param(bool, True, "Clip predict() to the rating scale; recommend() ranks unclipped.")
    random_state = random_state_param("Seed of the solver's starting vector.")

    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 2}
    explain_is_additive = True
    explain_method = ("offset terms plus one term per rated item: centred rating x "
                      "(V_k V_k^T) entry; the terms add up to the score")

    def _clips(self) -> bool:
        return self.center_ != "none"

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        """Exact decomposition over the user's rated items: the fitted user factors are
        :math:`U_k \\Sigma_k = R' V_k`, so :math:`\\hat r_{ui} = o_{ui} + \\sum_{j \\in N(u)}
        r'_{uj}\\, v_j^T v_i`; item ``j`` contributes :math:`r'_{uj} v_j^T v_i`."""
        js, ratings = self._history(user_idx)
        resid = (ratings - self.intercept_ - float(self.user_bias_[user_idx])
                 - self.item_bias_[js].astype(np.float64))
        v = self.item_factors_.astype(np.float64)
        sims = v[js] @ v[item_idx]
        reasons = self._bias_terms(user_idx, item_idx) if self.center_ != "none" else []
        reasons += history_reasons(self.items_.ids[js], resid * sims, rating=ratings,
                                   similarity=sims)
        return float(sum(r.contribution for r in reasons)), reasons

    def _fit(self, data: Interactions) -> None:
        from scipy.sparse.linalg import svds

        k = int(self.n_factors)
        if k >= min(data.n_users, data.n_items):
            raise ConfigError(
                f"n_factors must be less than min(n_users, n_items) = "
                f"{min(data.n_users, data.n_items)} for a truncated SVD; got {k}"
            )
        if self.center != "none":
            _require_ratings(data, f"TruncatedSVD(center={self.center!r})")
        self.center_ = str(self.center)
        self.fit_bias_ = self.center == "baseline"
        self.intercept_ = 0.0 if self.center == "none" else float(self.global_mean_)
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        if self.center == "baseline":
            mu, bu, bi = fit_biases(data)
            self.intercept_ = float(mu)
            self.user_bias_, self.item_bias_ = bu.astype(np.float32), bi.astype(np.float32)
        csr = data.csr.astype(np.float64)
        rows = np.repeat(np.arange(data.n_users), np.diff(csr.indptr))
        csr.data = csr.data - self.intercept_ - self.user_bias_[rows] - self.item_bias_[csr.indices]
        rng = check_random_state(self.random_state)
        v0 = rng.uniform(-1.0, 1.0, min(csr.shape))
        u, s, vt = svds(csr, k=k, v0=v0)
        order = np.argsort(-s)
        u, s, vt = u[:, order], s[order], vt[order]
        # make the sign deterministic: the largest |component| of each item vector is positive
        flip = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])
        flip[flip == 0] = 1.0
        u, vt = u * flip, vt * flip[:, None]
        self.singular_values_ = s.astype(np.float64)
        self.user_factors_ = (u * s).astype(np.float32)
        self.item_factors_ = np.ascontiguousarray(vt.T, dtype=np.float32)

    def _fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        n = history.shape[0]
        counts = np.diff(history.indptr)
        rows = np.repeat(np.arange(n), counts)
        resid = history.astype(np.float64)
        resid.data = resid.data - self.intercept_ - self.item_bias_[resid.indices]
        bu = np.zeros(n)
        if self.fit_bias_:  # the user step of fit_biases' ALS (lambda_u = 15)
            bu = np.asarray(resid.sum(axis=1)).ravel() / (15.0 + counts)
            resid.data = resid.data - bu[rows]
        pu = np.asarray(resid @ self.item_factors_.astype(np.float64))
        return bu.astype(np.float32), pu.astype(np.float32)


# ---------------------------------------------------------------------------------------------
class _SGDFactorModel(_FactorModel):
    """What FunkSVD and SVD++ share: the SGD hyperparameters and the epoch loop (step-size
    decay, per-epoch RMSE, callbacks, early stopping with restore of the best epoch)."""

    n_epochs = Param(int, 20, "Maximum passes over the ratings.", low=1)
    learning_rate_decay = Param(float, 1.0, "Step size multiplier per epoch (1: constant).",
                                low=0, high=1, low_open=True)
    regularization = Param(float, 0.02, "L2 weight of the factors.", low=0)
    bias_regularization = Param(float, None, "L2 weight of the biases (None: regularization).",
                                low=0, nullable=True)
    init_std = Param(float, 0.1, "Std of the normal factor initialisation.", low=0)
    validation_fraction = Param(float, 0.0, "Ratings held out for early stopping (0: none).",
                                low=0, high=1, high_open=True)
    patience = Param(int, 1, "Epochs without validation improvement before stopping.", low=1)
    clip = Param(bool, True, "Clip predict() to the rating scale; recommend() ranks unclipped.")
    random_state = random_state_param("Seed for initialisation and the visiting order.")
    verbose = Param(bool, False, "Show a progress bar with the per-epoch losses.")

    learning_rate: Any  # declared by each subclass (the defaults differ)

    #: the learned arrays, saved at the best validation epoch and restored after training
    _STATE: ClassVar[tuple[str, ...]] = ("user_factors_", "item_factors_", "user_bias_",
                                         "item_bias_")

    def _train(
        self,
        epoch_step: Callable[[int, float], float],
        n_ratings: int,
        val: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        callbacks: Sequence[EpochCallback] | None,
    ) -> None:
        """Run up to ``n_epochs`` epochs; ``epoch_step(epoch, decay)`` runs one and returns
        the squared error of the ratings it visited."""
        loop = _EpochLoop(self, self.n_epochs, callbacks, self.patience if val else 0,
                          type(self).__name__)
        best: dict[str, np.ndarray] | None = None
        try:
            for epoch in range(self.n_epochs):
                decay = float(self.learning_rate_decay) ** epoch
                sse = epoch_step(epoch, decay)
                val_rmse = self._pairs_rmse(*val) if val else float("nan")
                stop = loop.end_epoch(epoch, _rmse(sse, n_ratings), val_rmse,
                                      float(self.learning_rate) * decay)
                if loop.improved:
                    best = {name: getattr(self, name).copy() for name in self._STATE}
                if stop:
                    break
        finally:
            loop.close()
        if val and best is not None:
            for name, value in best.items():
                setattr(self, name, value)
        self.history_ = loop.history
        self.best_epoch_ = loop.best_epoch if val else len(loop.history["train_rmse"]) - 1

    def _pairs_rmse(self, u: np.ndarray, i: np.ndarray, r: np.ndarray) -> float:
        est = self._predict_pairs(u, i)
        return float(np.sqrt(np.mean((est - r) ** 2)))


# ---------------------------------------------------------------------------------------------
class FunkSVD(_SupportRanked, _SGDFactorModel):
    """Biased matrix factorization by stochastic gradient descent ("Funk SVD").

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i + p_u^T q_i

    minimising over the observed ratings

    .. math:: \\sum_{(u,i)} (r_{ui} - \\hat r_{ui})^2 + \\lambda_b (b_u^2 + b_i^2)
              + \\lambda (\\|p_u\\|^2 + \\|q_i\\|^2)

    by SGD over the ratings in one order drawn per fit — users in a random order, each user's
    ratings together in a random order (Surprise, too, visits them user by user in a fixed
    order; the regularisation is applied at every visit, as in Surprise),
    learning rate :math:`\\eta_t = \\eta\\,\\gamma^t` in epoch :math:`t`. ``biased=False`` gives
    plain probabilistic MF, :math:`\\hat r_{ui} = p_u^T q_i`. With ``n_threads > 1`` each epoch
    runs as DSGD (Gemulla et al. 2011): the ratings are cut once per fit, by a random
    partition of the users and of the items into groups of about equal rating count, into
    ``n_threads x n_threads`` user/item blocks,
    and in each epoch the blocks sharing no user or item run in parallel (the stratum schedule
    of the paper) — race-free, so a fit is reproducible for a fixed seed and thread count (the
    result differs between counts).

    Early stopping: with ``validation_fraction > 0`` (or ``fit(data, validation=...)``) the
    validation RMSE is measured after each epoch; training stops after ``patience`` epochs
    without improvement and the factors of the best epoch are restored.

    Per-epoch training RMSE (errors seen during the epoch) and validation RMSE go to
    ``history_``, to ``fit(data, callbacks=[cb])`` as ``cb(model, epoch, logs)`` (return
    ``True`` to stop) and to the progress bar.

    ``explain`` lists the bias terms :math:`\\mu, b_u, b_i` and the user's rated items: the
    user vector is written as a ridge combination :math:`p_u \\approx \\sum_{j \\in N(u)} a_j
    q_j` of their factor vectors and item ``j`` contributes :math:`a_j q_j^T q_i` (see
    :func:`~chuchun.models._explain.ridge_history_weights`; the representer view of Hu, Koren
    & Volinsky 2008, sec. 5). The part of :math:`p_u` outside the span of the history is not
    attributed, so the reasons do not add up to the score exactly.

    **Ranking.** ``recommend`` ranks by the unclipped prediction discounted by the item's
    rating support, :math:`(\\hat r_{ui} - r_{\\min})\\, n_i / (n_i + \\lambda_n)`
    (``ranking_damping``; 0 ranks by the prediction; see
    :class:`~chuchun.models.baseline._SupportRanked`); ``predict`` is unchanged and ``explain``
    adds the ``"rating support"`` term.

    Parameters
    ----------
    n_factors, n_epochs, learning_rate, learning_rate_decay, regularization,
    bias_regularization, biased, init_std, validation_fraction, patience, clip,
    ranking_damping, n_threads, random_state, verbose
        See the declarations below.

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray float32, :math:`p_u, q_i`
    user_bias_, item_bias_ : ndarray float32 (zeros when not biased)
    intercept_ : float, :math:`\\mu` (0 when not biased)
    history_ : dict of lists, ``train_rmse`` and ``val_rmse`` per epoch
    best_epoch_ : int, the epoch kept (0-based)

    References
    ----------
    S. Funk. Netflix update: try this at home. 2006. Y. Koren, R. Bell, C. Volinsky. Matrix
    factorization techniques for recommender systems. IEEE Computer 42(8), 2009.
    R. Gemulla et al. Large-scale matrix factorization with distributed stochastic gradient
    descent. KDD 2011.
    """

    n_factors = Param(int, 100, "Number of latent factors.", low=1)
    learning_rate = Param(float, 0.005, "SGD step size.", low=0, low_open=True)
    biased = Param(bool, True, "Learn mu, b_u, b_i (False: plain probabilistic MF).")
    n_threads = n_threads_param("DSGD threads; the result depends on this count.", 1)

    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 4, "n_epochs": 3}

    def _fit(
        self,
        data: Interactions,
        *,
        callbacks: Sequence[EpochCallback] | None = None,
        validation: Interactions | None = None,
    ) -> None:
        _require_ratings(data, "FunkSVD")
        rng = check_random_state(self.random_state)
        train, val = _validation_rows(self, data, validation, rng)
        u, i = data.user_idx[train], data.item_idx[train]
        r = data.values[train]
        k = int(self.n_factors)
        self.fit_bias_ = bool(self.biased)
        self.intercept_ = float(r.mean()) if self.biased else 0.0
        self.user_factors_ = self._init_factors(rng, data.n_users, k)
        self.item_factors_ = self._init_factors(rng, data.n_items, k)
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        t = _resolve_threads(self.n_threads)
        reg = float(self.regularization)
        breg = reg if self.bias_regularization is None else float(self.bias_regularization)
        sse = np.zeros(t, dtype=np.float64)
        identity = np.arange(len(r), dtype=np.int64)
        order: list[np.ndarray] = []
        # with several strata the kernel works on copies whose rows are renumbered stratum by
        # stratum, so two threads never write the same cache line (a bias array interleaving
        # the strata had every update of one thread invalidate a line the other was writing)
        work = [self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_]
        back: list[np.ndarray] = []  # new -> original row, users then items
        # validation, early stopping and callbacks read the model's arrays after every epoch
        sync_each_epoch = val is not None or bool(callbacks)

        def sync() -> None:
            if back:
                self.user_factors_[back[0]] = work[0]
                self.item_factors_[back[1]] = work[1]
                self.user_bias_[back[0]] = work[2]
                self.item_bias_[back[1]] = work[3]

        def epoch_step(epoch: int, decay: float) -> float:
            lr = float(self.learning_rate) * decay
            if epoch == 0:  # one visiting order (and blocking) per fit, as for one thread
                rows, ptr, ug, ig = _strata(rng, u, i, data.n_users, data.n_items, t)
                uo, io = u[rows], i[rows]
                if t > 1:
                    back[:] = [np.argsort(ug, kind="stable"), np.argsort(ig, kind="stable")]
                    work[:] = [self.user_factors_[back[0]], self.item_factors_[back[1]],
                               self.user_bias_[back[0]], self.item_bias_[back[1]]]
                    uo = _inverse(back[0])[uo]
                    io = _inverse(back[1])[io]
                # gathered in visiting order: the kernel then streams through memory
                order[:] = [uo, io, r[rows], ptr]
            uo, io, ro, ptr = order
            sgd_epoch(uo, io, ro, identity, ptr, t, self.intercept_, work[2], work[3], work[0],
                      work[1], lr, lr, breg, reg, self.fit_bias_, sse)
            if sync_each_epoch:
                sync()
            return float(sse.sum())

        with numba_threads(t):
            self._train(epoch_step, len(r), val, callbacks)
        if not sync_each_epoch:
            sync()


def _inverse(perm: np.ndarray) -> np.ndarray:
    """The inverse permutation, int32 (kernel index arrays are int32)."""
    out = np.empty(len(perm), dtype=np.int32)
    out[perm] = np.arange(len(perm), dtype=np.int32)
    return out


# ---------------------------------------------------------------------------------------------
class SVDpp(_SupportRanked, _SGDFactorModel):
    """SVD++: biased MF plus the implicit feedback of *which* items each user rated.

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i + q_i^T \\Big(p_u + |N(u)|^{-1/2}
              \\sum_{j \\in N(u)} y_j\\Big)

    with :math:`N(u)` the items the user rated in training, fitted by SGD over the ratings
    grouped by user (Koren 2008, eq. 15; the same update order and defaults as Surprise's
    ``SVDpp``). The :math:`y_j` updates are applied lazily per user with the exact same result
    (see :func:`chuchun.kernels.mf.svdpp_epoch`), which makes an epoch linear in the number of
    ratings. Single-threaded. Fold-in computes the implicit term from the new user's items and
    solves :math:`b_u, p_u` by regularised least squares.

    ``explain`` lists :math:`\\mu, b_u, b_i` and the user's rated items; item ``j``
    contributes its implicit-feedback term :math:`|N(u)|^{-1/2} q_i^T y_j` exactly plus its
    share :math:`a_j q_j^T q_i` of :math:`p_u^T q_i` by the ridge decomposition used for
    :class:`FunkSVD` (not additive: the part of :math:`p_u` outside the span of the history's
    :math:`q_j` is not attributed).

    The step sizes and L2 weights of the three parameter groups can differ (Koren 2008 already
    weights the bias and factor penalties differently): per rating, with
    :math:`e = r_{ui} - \\hat r_{ui}`,

    .. math:: b_u \\mathrel{+}= \\gamma_b (e - \\lambda_b b_u), \\quad
              p_u \\mathrel{+}= \\gamma (e q_i - \\lambda p_u), \\quad
              y_j \\mathrel{+}= \\gamma_y (e |N(u)|^{-1/2} q_i - \\lambda_y y_j)
              \\;\\; (j \\in N(u))

    (:math:`b_i, q_i` alike), every step size multiplied by ``learning_rate_decay ** epoch``.
    By default :math:`\\gamma_b = \\gamma_y = \\gamma` (``learning_rate``) and
    :math:`\\lambda_b = \\lambda_y = \\lambda` (``regularization``), as in Surprise.

    **Ranking.** ``recommend`` ranks by the unclipped prediction discounted by the item's
    rating support, :math:`(\\hat r_{ui} - r_{\\min})\\, n_i / (n_i + \\lambda_n)`
    (``ranking_damping``; 0 ranks by the prediction; see
    :class:`~chuchun.models.baseline._SupportRanked`); ``predict`` is unchanged and ``explain``
    adds the ``"rating support"`` term.

    Parameters
    ----------
    n_factors, n_epochs, learning_rate, learning_rate_decay, regularization,
    bias_regularization, init_std, validation_fraction, patience, clip, ranking_damping,
    random_state, verbose
        As for :class:`FunkSVD` (``learning_rate`` and ``regularization`` also apply to
        :math:`y_j` and the biases unless set separately).
    bias_learning_rate, implicit_learning_rate, implicit_regularization
        :math:`\\gamma_b`, :math:`\\gamma_y`, :math:`\\lambda_y` above (None: shared with the
        factors).

    Attributes
    ----------
    user_factors_ : ndarray float32, :math:`p_u` (without the implicit term)
    item_factors_ : ndarray float32, :math:`q_i`
    implicit_factors_ : ndarray float32, :math:`y_j`
    user_bias_, item_bias_, intercept_, history_, best_epoch_

    References
    ----------
    Y. Koren. Factorization meets the neighborhood: a multifaceted collaborative filtering
    model. KDD 2008.
    """

    n_factors = Param(int, 20, "Number of latent factors.", low=1)
    learning_rate = Param(float, 0.007, "SGD step size.", low=0, low_open=True)
    bias_learning_rate = Param(float, None, "SGD step size of the biases (None: learning_rate).",
                               low=0, low_open=True, nullable=True)
    implicit_regularization = Param(
        float, None, "L2 weight of the implicit factors y_j (None: regularization).", low=0,
        nullable=True,
    )
    implicit_learning_rate = Param(
        float, None, "SGD step size of the implicit factors y_j (None: learning_rate).", low=0,
        low_open=True, nullable=True,
    )

    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 4, "n_epochs": 3}
    _STATE = ("user_factors_", "item_factors_", "implicit_factors_", "user_bias_",
              "item_bias_")

    def _fit(
        self,
        data: Interactions,
        *,
        callbacks: Sequence[EpochCallback] | None = None,
        validation: Interactions | None = None,
    ) -> None:
        _require_ratings(data, "SVDpp")
        rng = check_random_state(self.random_state)
        train, val = _validation_rows(self, data, validation, rng)
        csr = sp.csr_matrix(
            (data.values[train], (data.user_idx[train], data.item_idx[train])),
            shape=(data.n_users, data.n_items), dtype=np.float32,
        )
        csr.sort_indices()
        indptr, indices = csr.indptr.astype(np.int64), csr.indices.astype(np.int32)
        values = csr.data.astype(np.float32)
        k = int(self.n_factors)
        self.fit_bias_ = True
        self.intercept_ = float(values.mean())
        self.user_factors_ = self._init_factors(rng, data.n_users, k)
        self.item_factors_ = self._init_factors(rng, data.n_items, k)
        self.implicit_factors_ = self._init_factors(rng, data.n_items, k)
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self._implicit_matrix = csr  # N(u) of the training users, for _user_vectors
        reg = float(self.regularization)
        breg = reg if self.bias_regularization is None else float(self.bias_regularization)
        yreg = reg if self.implicit_regularization is None else float(
            self.implicit_regularization)
        lr0 = float(self.learning_rate)
        blr0 = lr0 if self.bias_learning_rate is None else float(self.bias_learning_rate)
        ylr0 = lr0 if self.implicit_learning_rate is None else float(self.implicit_learning_rate)

        def epoch_step(epoch: int, decay: float) -> float:
            order = rng.permutation(data.n_users).astype(np.int32)
            return float(svdpp_epoch(indptr, indices, values, order, self.intercept_,
                                     self.user_bias_, self.item_bias_, self.user_factors_,
                                     self.item_factors_, self.implicit_factors_, blr0 * decay,
                                     lr0 * decay, breg, reg, ylr0 * decay, yreg))

        self._train(epoch_step, len(values), val, callbacks)
        self.implicit_sum_ = self._implicit_sums(csr)
        del self._implicit_matrix

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        js, ratings = self._history(user_idx)
        qi = self.item_factors_[item_idx].astype(np.float64)
        implicit = (self.implicit_factors_[js].astype(np.float64) @ qi) / np.sqrt(
            max(len(js), 1))
        share, weights = ridge_history_weights(
            self.item_factors_[js], self.user_factors_[user_idx], qi)
        score = float(self._score(np.array([user_idx]))[0, item_idx])
        _, support = self._support_terms(self._estimate(user_idx, item_idx), item_idx)
        reasons = self._bias_terms(user_idx, item_idx) + history_reasons(
            self.items_.ids[js], implicit + share, rating=ratings, implicit=implicit,
            weight=weights) + support
        return score, reasons

    def _implicit_sums(self, history: sp.csr_matrix) -> np.ndarray:
        """:math:`|N(u)|^{-1/2} \\sum_{j \\in N(u)} y_j` for each row of ``history``."""
        pattern = history.copy()
        pattern.data = np.ones_like(pattern.data, dtype=np.float32)
        counts = np.diff(pattern.indptr)
        z = np.asarray(pattern @ self.implicit_factors_, dtype=np.float32)
        return (z / np.sqrt(np.maximum(counts, 1))[:, None]).astype(np.float32)

    def _user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        if hasattr(self, "implicit_sum_"):
            return self.user_factors_[user_idx] + self.implicit_sum_[user_idx]
        # during fit (validation): recompute from the current y_j
        return self.user_factors_[user_idx] + self._implicit_sums(
            self._implicit_matrix[user_idx]
        )

    def _fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        z = self._implicit_sums(history)
        rows = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))
        # target minus the fixed implicit part q_i^T z_u, then solve b_u, p_u
        shifted = history.data - np.einsum(
            "nk,nk->n", self.item_factors_[history.indices], z[rows]
        )
        bu, pu = self._solve_users(history, self.item_factors_, shifted)
        return bu, pu + z


# ---------------------------------------------------------------------------------------------
class ALS(_SupportRanked, _FactorModel):
    """Explicit-feedback alternating least squares with biases and weighted-λ regularisation.

    .. math:: \\min \\sum_{(u,i)} (r_{ui} - \\mu - b_u - b_i - p_u^T q_i)^2
              + \\sum_u n_u (\\lambda_b b_u^2 + \\lambda \\|p_u\\|^2)
              + \\sum_i n_i (\\lambda_b b_i^2 + \\lambda \\|q_i\\|^2)

    (:math:`n_u, n_i` rating counts; ``weighted=False`` drops them). Each iteration solves all
    items (bias and factors jointly, users fixed) and then all users exactly, in parallel; the
    last half-step is the user one, so fold-in of a training user's own ratings reproduces its
    fitted factors. ``partial_fit`` continues from the current factors (new users or items get
    fresh ones). ``explain`` decomposes a prediction over the user's rated items through the
    user's regularised Gram matrix (Hu, Koren & Volinsky 2008, sec. 5).

    **Ranking.** ``recommend`` ranks by the unclipped prediction discounted by the item's
    rating support, :math:`(\\hat r_{ui} - r_{\\min})\\, n_i / (n_i + \\lambda_n)`
    (``ranking_damping``; 0 ranks by the prediction; see
    :class:`~chuchun.models.baseline._SupportRanked`); ``predict`` is unchanged and ``explain``
    adds the ``"rating support"`` term.

    Parameters
    ----------
    n_factors, n_epochs, regularization, bias_regularization, weighted, biased, init_std,
    clip, ranking_damping, n_threads, random_state, verbose
        See the declarations below. ``n_epochs`` counts ALS iterations.

    Attributes
    ----------
    user_factors_, item_factors_, user_bias_, item_bias_, intercept_
    history_ : dict of lists, ``train_rmse`` (and ``val_rmse`` with ``fit(..., validation=)``)
    best_epoch_ : int, iteration with the lowest validation RMSE (the last one without
        validation; ALS does not stop early or restore)

    References
    ----------
    Y. Zhou, D. Wilkinson, R. Schreiber, R. Pan. Large-scale parallel collaborative filtering
    for the Netflix prize. AAIM 2008. Y. Hu, Y. Koren, C. Volinsky. Collaborative filtering for
    implicit feedback datasets. ICDM 2008.
    """

    n_factors = Param(int, 50, "Number of latent factors.", low=1)
    n_epochs = Param(int, 15, "ALS iterations (one item and one user half-step each).", low=1)
    regularization = Param(float, 0.1, "L2 weight of the factors (times n_u when weighted).",
                           low=0)
    bias_regularization = Param(float, None, "L2 weight of the biases (None: regularization).",
                                low=0, nullable=True)
    weighted = Param(bool, True, "Weighted-λ: scale each row's penalty by its rating count.")
    biased = Param(bool, True, "Learn mu, b_u, b_i.")
    init_std = Param(float, 0.1, "Std of the normal factor initialisation.", low=0)
    clip = Param(bool, True, "Clip predict() to the rating scale; recommend() ranks unclipped.")
    n_threads = n_threads_param("Threads for the half-steps; results do not depend on it.")
    random_state = random_state_param("Seed for initialisation.")
    verbose = Param(bool, False, "Show a progress bar with the per-epoch losses.")

    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 4, "n_epochs": 3}
    explain_is_additive = True
    explain_method = ("mean and item bias plus one term per rated item through the user's "
                      "regularised Gram matrix (Hu, Koren & Volinsky 2008, sec. 5); additive")

    def _fold_in_regularization(self) -> tuple[float, float, bool]:
        reg, breg, _ = super()._fold_in_regularization()
        return reg, breg, bool(self.weighted_)

    def _fit(
        self,
        data: Interactions,
        *,
        callbacks: Sequence[EpochCallback] | None = None,
        validation: Interactions | None = None,
    ) -> None:
        _require_ratings(data, "ALS")
        rng = check_random_state(self.random_state)
        k = int(self.n_factors)
        self.fit_bias_ = bool(self.biased)
        self.weighted_ = bool(self.weighted)
        self.intercept_ = float(self.global_mean_) if self.biased else 0.0
        # the first half-step solves items against these random user factors
        self.user_factors_ = self._init_factors(rng, data.n_users, k)
        self.item_factors_ = self._init_factors(rng, data.n_items, k)
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self.history_: dict[str, list[float]] = {"train_rmse": [], "val_rmse": []}
        best = self._iterate(data, int(self.n_epochs), callbacks, validation)
        self.best_epoch_ = best if validation is not None else int(self.n_epochs) - 1

    def _iterate(
        self, data: Interactions, n_epochs: int, callbacks: Sequence[EpochCallback] | None,
        validation: Interactions | None,
    ) -> int:
        """Run ``n_epochs`` iterations; returns the iteration with the lowest validation RMSE
        (counted from the first fit, -1 without validation)."""
        _, val = _validation_rows(self, data, validation, np.random.default_rng(0)) if (
            validation is not None) else (None, None)
        csr, csc = data.csr, data.csc
        reg = float(self.regularization)
        breg = reg if self.bias_regularization is None else float(self.bias_regularization)
        loop = _EpochLoop(self, n_epochs, callbacks, 0, "ALS")
        loop.history = self.history_
        mu = float(self.intercept_)
        try:
            with numba_threads(_resolve_threads(self.n_threads)):
                for epoch in range(n_epochs):
                    als_half_step(csc.indptr, csc.indices, csc.data, self.user_factors_,
                                  self.user_bias_.astype(np.float64), mu, reg, breg,
                                  self.weighted_, self.fit_bias_, self.item_factors_,
                                  self.item_bias_)
                    # the user step returns the squared error of all ratings under the new
                    # factors: the training loss of this iteration
                    sse = als_half_step(csr.indptr, csr.indices, csr.data, self.item_factors_,
                                        self.item_bias_.astype(np.float64), mu, reg, breg,
                                        self.weighted_, self.fit_bias_, self.user_factors_,
                                        self.user_bias_)
                    train = _rmse(sse, len(data))
                    val_rmse = float("nan")
                    if val is not None:
                        val_rmse = float(np.sqrt(np.mean(
                            (self._predict_pairs(val[0], val[1]) - val[2]) ** 2)))
                    if loop.end_epoch(len(self.history_["train_rmse"]), train, val_rmse, 0.0):
                        break
        finally:
            loop.close()
        return loop.best_epoch

    def partial_fit(
        self,
        data: Interactions,
        *,
        n_epochs: int | None = None,
        callbacks: Sequence[EpochCallback] | None = None,
    ) -> ALS:
        """Continue training from the current factors on ``data`` (warm start).

        ``data`` is the interaction log to fit now (typically the old log plus new ratings). Users
        and items already known keep their factors and biases as the starting point; new ones are
        added to the vocabularies with fresh factors. ``intercept_`` stays as fitted. Runs
        ``n_epochs`` iterations (default: the ``n_epochs`` parameter). An unfitted model is
        simply fitted. Returns ``self``.
        """
        if not self.is_fitted:
            return self.fit(data, callbacks=callbacks)
        if not isinstance(data, Interactions):
            raise DataError(
                f"partial_fit expects a chuchun.data.Interactions; got {type(data).__name__}"
            )
        _require_ratings(data, "ALS.partial_fit")
        self._validate_params()
        if n_epochs is not None and (
            isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 1
        ):
            raise ConfigError(f"n_epochs must be a positive int; got {n_epochs!r}")
        users = _merge_vocab(self.users_, data.users, "user")
        items = _merge_vocab(self.items_, data.items, "item")
        rng = check_random_state(self.random_state)
        k = self.item_factors_.shape[1]
        old_u = users.index(self.users_.ids)
        old_i = items.index(self.items_.ids)
        pu = np.zeros((len(users), k), dtype=np.float32)
        pu[old_u] = self.user_factors_
        qi = self._init_factors(rng, len(items), k)
        qi[old_i] = self.item_factors_
        bu = np.zeros(len(users), dtype=np.float32)
        bu[old_u] = self.user_bias_
        bi = np.zeros(len(items), dtype=np.float32)
        bi[old_i] = self.item_bias_
        mapped = Interactions(
            users, items, users.index(data.user_ids), items.index(data.item_ids),
            data.ratings, data.timestamps, rating_scale=data.rating_scale,
        )
        # the iterations work on the new arrays and append to history_: a failure (a kernel
        # error, an interrupt, a raising callback) restores the model as it was
        before = dict(vars(self))
        history = {name: list(values) for name, values in self.history_.items()}
        try:
            self.users_, self.items_ = users, items
            self.user_factors_, self.item_factors_ = pu, qi
            self.user_bias_, self.item_bias_ = bu, bi
            self.seen_ = mapped.csr
            self.item_popularity_ = np.bincount(mapped.item_idx, minlength=len(items)).astype(
                np.float32
            )
            self.fingerprint_ = mapped.fingerprint()
            self.history_ = {name: list(values) for name, values in history.items()}
            self._iterate(mapped, int(n_epochs or self.n_epochs), callbacks, None)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            self.history_ = history
            raise
        return self

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        """The user's rated items behind the prediction, exactly (Hu et al. 2008, sec. 5).

        With :math:`\\tilde y_j = (1, q_j)` (just :math:`q_j` when unbiased), the user's
        regularised Gram matrix :math:`A_u = \\sum_{j \\in N(u)} \\tilde y_j \\tilde y_j^T +
        \\mathrm{diag}(w_u\\lambda_b, w_u\\lambda, \\dots)` and targets :math:`t_j = r_{uj} - \\mu
        - b_j`, the user step gives :math:`(b_u, p_u) = A_u^{-1} \\sum_j \\tilde y_j t_j`, so

        .. math:: \\hat r_{ui} = \\mu + b_i + \\sum_{j \\in N(u)} s_{ij}\\, t_j, \\qquad
                  s_{ij} = \\tilde y_i^T A_u^{-1} \\tilde y_j

        Each rated item ``j`` contributes :math:`s_{ij} t_j`; with the terms :math:`\\mu` and
        :math:`b_i` they add up to the unclipped prediction (the fit ends with the user step).
        """
        js, ratings = self._history(user_idx)
        targets = ratings - self.intercept_ - self.item_bias_[js]
        reg, breg, weighted = self._fold_in_regularization()
        w = float(len(js)) if weighted else 1.0
        design = self.item_factors_[js].astype(np.float64)
        yi = self.item_factors_[item_idx].astype(np.float64)
        penalty = np.full(design.shape[1], w * reg)
        if self.fit_bias_:
            design = np.hstack([np.ones((len(js), 1)), design])
            yi = np.r_[1.0, yi]
            penalty = np.r_[w * breg, penalty]
        gram = design.T @ design + np.diag(penalty)
        sims = design @ np.linalg.solve(gram, yi) if len(js) else np.zeros(0)
        contrib = sims * targets
        reasons = bias_reasons(global_mean=self.intercept_) if self.intercept_ else []
        if self.fit_bias_:
            reasons += bias_reasons(item_bias=self.item_bias_[item_idx])
        reasons += history_reasons(self.items_.ids[js], contrib, rating=ratings, similarity=sims)
        score, support = self._support_terms(float(sum(r.contribution for r in reasons)),
                                             item_idx)
        return score, reasons + support


def _merge_vocab(old: Vocabulary, new: Vocabulary, what: str) -> Vocabulary:
    if old.numeric != new.numeric:
        raise DataError(
            f"partial_fit {what} ids are {'integers' if new.numeric else 'strings'} but the model "
            f"was fitted on {'integers' if old.numeric else 'strings'}"
        )
    return Vocabulary(np.union1d(old.ids, new.ids))
