"""Baselines: global mean, random, popularity and user/item biases (BaselineOnly)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import DataError
from chuchun._params import Param, random_state_param
from chuchun._random import check_random_state, kernel_seed
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender
from chuchun.models._explain import bias_reasons
from chuchun.models._results import Reason

__all__ = ["BaselineOnly", "GlobalMean", "Popularity", "Random", "fit_biases", "fold_in_user_bias"]

#: default ``ranking_damping`` of the explicit rating models (chosen on a validation cut of
#: the bundled data's training part; see ``benchmarks/results/contract.md``)
RANKING_DAMPING = 300.0


class _SupportRanked(Recommender):
    """Ranking of the explicit rating models (BaselineOnly, FunkSVD, SVDpp, ALS): the
    unclipped predicted rating discounted by the item's rating support,

    .. math:: s_{ui} = (\\hat r_{ui} - r_{\\min}) \\frac{n_i}{n_i + \\lambda_n}

    with :math:`n_i` the item's number of training ratings, :math:`r_{\\min}` the lowest rating
    of the scale and :math:`\\lambda_n` = ``ranking_damping`` (0: rank by :math:`\\hat r_{ui}`).
    A rating predictor alone ranks first the rarely rated items whose few ratings are high
    (their bias is barely shrunk); the discount keeps the predicted rating's order among
    well-supported items and lets the evidence behind an item count. ``predict`` is unchanged.
    ``explain`` adds one ``"rating support"`` term, the ranking score minus the predicted
    rating, so that additive explanations add up to the ranking score.
    """

    ranking_damping = Param(float, RANKING_DAMPING, "recommend ranks by (prediction - lowest "
                            "rating) x n_i / (n_i + this), n_i the item's training rating "
                            "count (0: by the prediction alone).", low=0)

    def _support(self) -> np.ndarray:
        """The discount :math:`n_i / (n_i + \\lambda_n)` of every item (float64)."""
        n = self.item_popularity_.astype(np.float64)
        return n / (n + float(self.ranking_damping))

    def _rating_floor(self) -> float:
        return float(self.rating_scale_[0]) if self.rating_scale_ is not None else 0.0

    def _rank_scores(self, est: np.ndarray) -> np.ndarray:
        """Ranking scores of unclipped estimates ``(n_rows, n_items)`` (float32)."""
        if float(self.ranking_damping) == 0:
            return np.asarray(est, dtype=np.float32)
        out = (np.asarray(est, dtype=np.float64) - self._rating_floor()) * self._support()
        return out.astype(np.float32)

    def _support_terms(self, est: float, item_idx: int) -> tuple[float, list[Reason]]:
        """The ranking score of one estimate and its ``"rating support"`` reason (none when
        ``ranking_damping`` is 0)."""
        if float(self.ranking_damping) == 0:
            return est, []
        factor = float(self._support()[item_idx])
        score = (est - self._rating_floor()) * factor
        return score, [Reason(
            kind="bias", id="rating support", contribution=score - est,
            detail={"predicted rating": est, "n_ratings": int(self.item_popularity_[item_idx]),
                    "factor": factor})]

    def _fallback_ranking(self) -> np.ndarray:
        # users unseen in training: the fallback estimate (mu + b_i), discounted alike
        if float(self.ranking_damping) == 0:
            return super()._fallback_ranking()
        n = len(self.items_)
        est = self._fallback_pairs(np.full(n, -1, dtype=np.int32), np.arange(n, dtype=np.int32))
        return self._rank_scores(est[None, :])[0]


class GlobalMean(Recommender):
    """Predicts the mean training rating for every pair.

    .. math:: \\hat r_{ui} = \\mu

    Ranking with it is meaningless (all scores tie); it is the floor for rating metrics.
    A user unseen in training gets the same prediction (fold-in is trivial). ``explain``
    returns the single term :math:`\\mu`.

    Attributes
    ----------
    global_mean_ : float
    """

    predicts_ratings = True
    supports_fold_in = True
    explain_is_additive = True
    explain_method = "every prediction is the mean training rating"

    def _fit(self, data: Interactions) -> None:
        _require_ratings(data, type(self).__name__)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.full((len(user_idx), len(self.items_)), self.global_mean_, dtype=np.float32)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._score(np.arange(history.shape[0]))

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        return float(self.global_mean_), bias_reasons(global_mean=self.global_mean_)

    def _predict_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        return np.full(len(user_idx), self.global_mean_, dtype=np.float64)


class Random(Recommender):
    """Ranks items in a random order per user, reproducible for a fixed ``random_state``.

    The order of a user's list depends only on the seed and the user, not on the batch.
    """

    random_state = random_state_param("Seed; a fixed value gives the same lists every call.")

    supports_fold_in = True
    explain_is_additive = True
    explain_method = "the score is a random draw; nothing about the user or item explains it"

    def _fit(self, data: Interactions) -> None:
        self.seed_ = kernel_seed(check_random_state(self.random_state))

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        score = float(self._score(np.array([user_idx]))[0, item_idx])
        return score, [Reason(kind="random", id="random draw", contribution=score,
                              detail={"seed": int(self.seed_)})]

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        n = len(self.items_)
        return np.stack(
            [np.random.default_rng([self.seed_, int(u)]).random(n, dtype=np.float32)
             for u in user_idx]
        ) if len(user_idx) else np.empty((0, n), np.float32)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        n = len(self.items_)
        return np.stack(
            [np.random.default_rng([self.seed_, 2**31 + r]).random(n, dtype=np.float32)
             for r in range(history.shape[0])]
        )


class Popularity(Recommender):
    """Ranks items by how many training users interacted with them.

    .. math:: s_{ui} = |\\{v : (v, i) \\in \\mathcal{D}\\}|

    The same list for everyone, minus what each user has seen. A strong top-N baseline.

    Attributes
    ----------
    item_popularity_ : ndarray of float32, interaction count per item
    """

    supports_fold_in = True
    explain_is_additive = True
    explain_method = "the score is the number of training users who interacted with the item"

    def _fit(self, data: Interactions) -> None:
        return None  # item_popularity_ is set by Recommender.fit

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_popularity_, (len(user_idx), len(self.items_)))

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._score(np.arange(history.shape[0]))

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        count = float(self.item_popularity_[item_idx])
        return count, [Reason(kind="popularity", id="users who chose it", contribution=count,
                              detail={"n_users": int(count), "n_users_total": len(self.users_)})]


def fit_biases(
    data: Interactions,
    *,
    method: str = "als",
    n_epochs: int = 10,
    user_regularization: float = 15.0,
    item_regularization: float = 10.0,
    learning_rate: float = 0.005,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Estimate :math:`\\mu, b_u, b_i` minimising

    .. math:: \\sum_{(u,i)} (r_{ui} - \\mu - b_u - b_i)^2 + \\lambda_u \\sum_u b_u^2
              + \\lambda_i \\sum_i b_i^2

    by alternating least squares (each step is exact: :math:`b_i = \\sum_u (r_{ui} - \\mu - b_u)
    / (\\lambda_i + |U_i|)`, then the same for users, items first) or by SGD over shuffled
    ratings (Koren 2010, sec. 2.1). Returns ``(mu, b_u, b_i)`` (float64).
    """
    _require_ratings(data, "biases")
    r = data.values.astype(np.float64)
    u, i = data.user_idx, data.item_idx
    mu = float(r.mean())
    bu = np.zeros(data.n_users)
    bi = np.zeros(data.n_items)
    if method == "als":
        n_u = np.bincount(u, minlength=data.n_users)
        n_i = np.bincount(i, minlength=data.n_items)
        for _ in range(n_epochs):
            bi = np.bincount(i, weights=r - mu - bu[u], minlength=data.n_items) / (
                item_regularization + n_i
            )
            bu = np.bincount(u, weights=r - mu - bi[i], minlength=data.n_users) / (
                user_regularization + n_u
            )
    else:
        from chuchun.kernels.baseline import bias_sgd

        order = check_random_state(random_state).permutation(len(r))
        # same regularisation for both in SGD (Surprise's convention); use the user term
        bias_sgd(u[order], i[order], r[order], mu, bu, bi, learning_rate,
                 user_regularization, n_epochs)
    return mu, bu, bi


class BaselineOnly(_SupportRanked):
    """User and item biases around the global mean.

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i

    fitted with L2 regularisation by ALS (default) or SGD; see :func:`fit_biases`. These are the
    baseline estimates that neighbourhood and factor models build on (Koren 2010, sec. 2.1).
    Unknown users or items get a zero bias. ``predict`` clips to the rating scale (``clip``);
    ``recommend`` ranks by the unclipped estimate, so items above the top of the scale do not
    tie, discounted by the item's rating support (``ranking_damping``, see
    :class:`_SupportRanked`). ``explain`` returns the three terms :math:`\\mu, b_u, b_i` and the
    ``"rating support"`` term, which add up to the ranking score.

    Parameters
    ----------
    method : {"als", "sgd"}
    n_epochs : int
    user_regularization, item_regularization : float or None
        :math:`\\lambda_u, \\lambda_i`. ``None`` picks the method's default: 15 and 10 for ALS
        (they act like pseudo-counts), 0.02 for SGD (SGD uses ``user_regularization`` for both).
    learning_rate : float
        SGD step size.
    clip : bool
        Clip predictions to the training rating scale.
    ranking_damping : float
        :math:`\\lambda_n` of the ranking score :math:`(\\hat r_{ui} - r_{\\min})\\, n_i /
        (n_i + \\lambda_n)` (0: rank by :math:`\\hat r_{ui}`).
    random_state : int or None
        Seed for the SGD shuffling order.

    Attributes
    ----------
    global_mean_ : float
    user_bias_, item_bias_ : ndarray of float64

    References
    ----------
    Y. Koren. Factor in the neighbors: scalable and accurate collaborative filtering. ACM TKDD
    4(1), 2010.
    """

    method = Param(str, "als", "Solver: alternating least squares or SGD.", choices=("als", "sgd"))
    n_epochs = Param(int, None, "Passes over the data (None: 10 for ALS, 20 for SGD).", low=1,
                     nullable=True)
    user_regularization = Param(float, None, "L2 weight of user biases (None: method default).",
                                low=0, nullable=True)
    item_regularization = Param(float, None, "L2 weight of item biases (None: method default).",
                                low=0, nullable=True)
    learning_rate = Param(float, 0.005, "SGD step size.", low=0, low_open=True)
    clip = Param(bool, True, "Clip predictions to the training rating scale.")
    random_state = random_state_param("Seed for the SGD order.")

    predicts_ratings = True
    supports_fold_in = True
    explain_is_additive = True
    explain_method = "global mean + user bias + item bias (Koren 2010, sec. 2.1)"

    def _fit(self, data: Interactions) -> None:
        als = self.method == "als"
        self.global_mean_, self.user_bias_, self.item_bias_ = fit_biases(
            data,
            method=self.method,
            n_epochs=self.n_epochs or (10 if als else 20),
            user_regularization=_default(self.user_regularization, 15.0 if als else 0.02),
            item_regularization=_default(self.item_regularization, 10.0 if als else 0.02),
            learning_rate=self.learning_rate,
            random_state=self.random_state,
        )

    def _clip(self, est: np.ndarray) -> np.ndarray:
        if self.clip and self.rating_scale_ is not None:
            return np.clip(est, self.rating_scale_[0], self.rating_scale_[1])
        return est

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        base = self.global_mean_ + self.user_bias_[user_idx][:, None] + self.item_bias_[None, :]
        return self._rank_scores(base)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        mu, bu, bi = self.global_mean_, self.user_bias_[user_idx], self.item_bias_[item_idx]
        reasons = bias_reasons(global_mean=mu, user_bias=bu, item_bias=bi)
        score, support = self._support_terms(float(mu + bu + bi), item_idx)
        return score, reasons + support

    def _predict_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        return self._clip(self.global_mean_ + self.user_bias_[user_idx] + self.item_bias_[item_idx])

    def _fallback_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        bu = np.where(user_idx >= 0, self.user_bias_[np.maximum(user_idx, 0)], 0.0)
        bi = np.where(item_idx >= 0, self.item_bias_[np.maximum(item_idx, 0)], 0.0)
        return self._clip(self.global_mean_ + bu + bi)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        lam = _default(self.user_regularization, 15.0 if self.method == "als" else 0.02)
        bu = fold_in_user_bias(history, self.global_mean_, self.item_bias_, lam)
        return self._rank_scores(self.global_mean_ + bu[:, None] + self.item_bias_[None, :])


def fold_in_user_bias(
    history: sp.csr_matrix, mu: float, item_bias: np.ndarray, regularization: float
) -> np.ndarray:
    """Bias of each history row with the item biases fixed: the user step of
    :func:`fit_biases`, :math:`b_u = \\sum_{i} (r_{ui} - \\mu - b_i) / (\\lambda_u + n_u)`."""
    n = np.diff(history.indptr)
    resid = history.astype(np.float64)
    resid.data = resid.data - mu - item_bias[resid.indices]
    return np.asarray(resid.sum(axis=1)).ravel() / (regularization + n)


def _default(value: float | None, fallback: float) -> float:
    return fallback if value is None else float(value)


def _require_ratings(data: Interactions, who: str) -> None:
    if not data.has_ratings:
        raise DataError(
            f"{who} needs explicit ratings; the interaction log has no rating column"
        )
