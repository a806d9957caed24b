"""Content-based filtering: rank items by the similarity of their features to a user profile."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError, DataWarning
from chuchun._params import Param
from chuchun.data.features import ItemFeatures
from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary
from chuchun.models._base import Recommender
from chuchun.models._results import Reason

__all__ = ["ContentBased"]


class ContentBased(Recommender):
    """Content-based recommender over item side features.

    Each item :math:`i` is its feature row :math:`f_i` (from :class:`~chuchun.data.ItemFeatures`,
    scaled to unit length). A user's profile is the rating-weighted, mean-centred combination of
    the items they rated, and items are ranked by cosine to it:

    .. math:: p_u = \\sum_{j \\in I_u} w_{uj} f_j, \\qquad w_{uj} = r_{uj} - \\bar r_u,
              \\qquad s_{ui} = \\frac{p_u \\cdot f_i}{\\lVert p_u \\rVert}

    (Pazzani & Billsus 2007). Without ratings (implicit feedback), or with ``centering=False``,
    :math:`w_{uj} = r_{uj}` (1 for implicit data); a user whose centred weights are all zero
    (every rating equal) also gets the uncentred weights. Because only features are needed to
    score an item, items that nobody rated (cold-start items) are recommendable.

    ``popularity_discount`` :math:`\\beta > 0` divides each weight by the item's number of
    training interactions :math:`n_j` raised to :math:`\\beta`,
    :math:`w_{uj} \\leftarrow w_{uj} / n_j^{\\beta}` (an inverse-frequency weighting on the user
    side, as IDF is on the feature side): a user's rarely chosen items then shape the profile
    more than the blockbusters everyone rates. New and rarely rated items are the ones a
    content model exists for, and a user's tail choices describe that part of their taste;
    on the per-user cold-start benchmark of ml-latest-small (``benchmarks/bench_fm.py
    --sections coldstart_ceiling``) :math:`\\beta = 1` and :math:`2` raise NDCG@10 over the
    cold items by 28 % and 32 %. Choose it on a validation split; 0 (the default) is the
    plain profile.

    ``explain`` splits a score over the item's features (:math:`s_{ui} = \\sum_f \\hat p_{uf}
    f_{if}`, :math:`\\hat p_u = p_u / \\lVert p_u \\rVert`), which add up to it; ``similar_items``
    ranks items by the cosine of their feature rows.

    Fitting needs the features: ``ContentBased().fit(interactions, item_features=features)``.
    The model's catalogue ``items_`` is the union of the features' ids and the training items
    (this model overrides what the base class sets from the interactions, so cold-start items
    present only in the features are included); ``seen_`` and ``item_popularity_`` are remapped
    to it. Training items without features get an all-zero row and a score of 0.

    Parameters
    ----------
    centering : bool
        Centre each user's ratings on their mean before weighting.
    popularity_discount : float
        Exponent :math:`\\beta` of the inverse item-popularity weight (0: none).

    Attributes
    ----------
    item_features_ : scipy.sparse.csr_matrix, items x features, unit rows
    user_profiles_ : scipy.sparse.csr_matrix, users x features, unit rows (zero when empty)
    user_weights_ : scipy.sparse.csr_matrix, users x items, the weights :math:`w_{uj}` (with
        ``popularity_discount``, each user's row scaled so that their least popular item's
        factor is 1)
    feature_names_ : list of str
    feature_columns_ : list of str

    References
    ----------
    M. Pazzani, D. Billsus. Content-based recommendation systems. In: The Adaptive Web, LNCS
    4321, 2007.
    """

    centering = Param(bool, True, "Centre each user's ratings on their mean.")
    popularity_discount = Param(float, 0.0, "Divide each rated item's weight by its number of "
                                "training interactions to this power.", low=0)

    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("the item's features, each contributing profile weight x feature value; "
                      "the terms add up to the score")
    _test_params: ClassVar[dict[str, Any]] = {}

    @classmethod
    def _test_fit_kwargs(cls, data: Interactions) -> dict[str, Any]:
        """Synthetic features for the conformance suite: a category per item index mod 4."""
        import pandas as pd

        ids = data.items.ids
        frame = pd.DataFrame({"item": ids, "group": [f"g{j % 4}" for j in range(len(ids))]})
        return {"item_features": ItemFeatures.from_pandas(frame, categorical=["group"])}

    def _fit(self, data: Interactions, item_features: ItemFeatures | None = None) -> None:
        if item_features is None:
            raise ConfigError(
                "ContentBased needs item features at fit time: "
                "fit(interactions, item_features=ItemFeatures.from_pandas(...))"
            )
        if not isinstance(item_features, ItemFeatures):
            raise DataError(
                f"item_features must be chuchun.data.ItemFeatures; got "
                f"{type(item_features).__name__}"
            )
        if item_features.n_features == 0:
            raise DataError("item_features has no features")
        feat_ids, data_ids = item_features.ids.ids, data.items.ids
        if (feat_ids.dtype.kind in "iu") != (data_ids.dtype.kind in "iu"):
            def kind(ids: np.ndarray) -> str:
                return "integers" if ids.dtype.kind in "iu" else "strings"

            raise DataError(
                f"the item ids of the features are {kind(feat_ids)} (such as "
                f"{feat_ids[:3].tolist()}) and those of the interactions are {kind(data_ids)} "
                f"(such as {data_ids[:3].tolist()}); read both with the same id type (the "
                "command line's --id-type, or the same dtype in pandas)"
            )
        items = Vocabulary(np.union1d(feat_ids, data_ids))
        remap = items.index(data_ids).astype(np.int32)
        self.items_ = items
        x = sp.csr_matrix(
            (data.values.astype(np.float32), (data.user_idx, remap[data.item_idx])),
            shape=(data.n_users, len(items)),
        )
        x.sort_indices()
        self.seen_ = x
        self.item_popularity_ = np.bincount(remap[data.item_idx], minlength=len(items)).astype(
            np.float32
        )
        f = item_features.align(items).matrix.astype(np.float64)
        described = np.diff(f.tocsr().indptr)[remap] > 0
        if not described.any():
            raise DataError(
                f"none of the {len(data_ids):,} rated items has a row in item_features: its "
                f"ids (such as {feat_ids[:3].tolist()}) do not match the interactions' item "
                f"ids (such as {data_ids[:3].tolist()})"
            )
        if described.mean() < 0.5:
            warnings.warn(
                f"only {int(described.sum()):,} of the {len(data_ids):,} rated items have "
                "features; the others do not shape any user's profile (check that the ids of "
                "item_features match the interactions')", DataWarning, stacklevel=3)
        self.item_features_ = _unit_rows(f).astype(np.float32)
        self.feature_names_ = item_features.feature_names.tolist()
        self.feature_columns_ = item_features.feature_columns.tolist()
        self.user_weights_ = self._weights(x, data.has_ratings)
        self.user_profiles_ = self._profiles(self.user_weights_)

    def _weights(self, x: sp.csr_matrix, has_ratings: bool) -> sp.csr_matrix:
        w = x.astype(np.float64).tocsr()
        if not has_ratings or not self.centering:
            return self._discount(w).astype(np.float32)
        counts = np.diff(w.indptr)
        sums = np.asarray(w.sum(axis=1)).ravel()
        means = sums / np.maximum(counts, 1)
        centred = w.data - np.repeat(means, counts)
        flat = np.add.reduceat(np.abs(centred), w.indptr[:-1]) if w.nnz else np.zeros(0)
        flat = np.where(counts > 0, flat, 0.0) < 1e-9
        w.data = np.where(np.repeat(flat, counts), w.data, centred)
        return self._discount(w).astype(np.float32)

    def _discount(self, w: sp.csr_matrix) -> sp.csr_matrix:
        """Weights divided by :math:`n_j^\\beta` (items unseen in training count as one).

        Each user's factors are taken relative to their least popular item (factor 1), which
        scales the row and leaves the profile's direction, all that scoring uses, unchanged;
        a large :math:`\\beta` then cannot underflow every weight of a user to zero."""
        beta = float(self.popularity_discount)
        if beta == 0.0 or w.nnz == 0:
            return w
        w = w.tocsr(copy=True)
        log_n = np.log(np.maximum(self.item_popularity_.astype(np.float64), 1.0))[w.indices]
        counts = np.diff(w.indptr)
        rows = np.flatnonzero(counts)
        least = np.zeros(w.shape[0])
        least[rows] = np.minimum.reduceat(log_n, w.indptr[rows])
        w.data = w.data * np.exp(-beta * (log_n - np.repeat(least, counts)))
        return w

    def _profiles(self, weights: sp.csr_matrix) -> sp.csr_matrix:
        return _unit_rows((weights.astype(np.float64) @ self.item_features_.astype(np.float64))
                          .tocsr()).astype(np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        p = self.user_profiles_[np.asarray(user_idx)]
        return np.asarray((p @ self.item_features_.T).toarray(), dtype=np.float32)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        h = history.tocsr()
        has_ratings = h.nnz > 0 and not np.all(h.data == 1.0)
        p = self._profiles(self._weights(h, has_ratings))
        return np.asarray((p @ self.item_features_.T).toarray(), dtype=np.float32)

    def _item_similarities(self, item_idx: np.ndarray) -> sp.csr_matrix:
        return (self.item_features_[item_idx] @ self.item_features_.T).tocsr()

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        """The score split over features: :math:`s_{ui} = \\sum_f \\hat p_{uf} f_{if}` with
        :math:`\\hat p_u` the unit profile; feature ``f`` contributes :math:`\\hat p_{uf}
        f_{if}` (the terms add up to the score)."""
        fi = self.item_features_[item_idx].tocoo()
        prof = self.user_profiles_[user_idx].toarray().ravel().astype(np.float64)
        terms = prof[fi.col] * fi.data.astype(np.float64)
        reasons = []
        for col, term in zip(fi.col.tolist(), terms.tolist(), strict=True):
            if term == 0:
                continue
            name = self.feature_names_[col]
            column = self.feature_columns_[col]
            value = name[len(column) + 1:] if len(name) > len(column) else name
            reasons.append(Reason(kind="feature", id=name, contribution=float(term), label=name,
                                  detail={"column": column, "value": value}))
        return float(sum(r.contribution for r in reasons)), reasons


def _unit_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    m = m.tocsr()
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    return (sp.diags(scale) @ m).tocsr()
