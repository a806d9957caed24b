"""Content-based filtering: rank items by the similarity of their features to a user profile."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun._params import Param
from chuchun.data.features import ItemFeatures
from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary
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

    Fitting needs the features: ``ContentBased().fit(interactions, item_features=features)``.
    The model's catalogue ``items_`` is the union of the features' ids and the training items
    (this model overrides what the base class sets from the interactions, so cold-start items
    present only in the features are included); ``seen_`` and ``item_popularity_`` are remapped
    to it. Training items without features get an all-zero row and a score of 0.

    Parameters
    ----------
    centering : bool
        Centre each user's ratings on their mean before weighting.

    Attributes
    ----------
    item_features_ : scipy.sparse.csr_matrix, items x features, unit rows
    user_profiles_ : scipy.sparse.csr_matrix, users x features, unit rows (zero when empty)
    user_weights_ : scipy.sparse.csr_matrix, users x items, the weights :math:`w_{uj}`
    feature_names_ : list of str
    feature_columns_ : list of str

    References
    ----------
    M. Pazzani, D. Billsus. Content-based recommendation systems. In: The Adaptive Web, LNCS
    4321, 2007.
    """

    centering = Param(bool, True, "Centre each user's ratings on their mean.")

    supports_fold_in = True
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
            raise DataError(
                f"item ids of the features ({feat_ids.dtype}) and of the interactions "
                f"({data_ids.dtype}) are of different kinds"
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
        self.item_features_ = _unit_rows(f).astype(np.float32)
        self.feature_names_ = item_features.feature_names.tolist()
        self.feature_columns_ = item_features.feature_columns.tolist()
        self.user_weights_ = self._weights(x, data.has_ratings)
        self.user_profiles_ = self._profiles(self.user_weights_)

    def _weights(self, x: sp.csr_matrix, has_ratings: bool) -> sp.csr_matrix:
        w = x.astype(np.float64).tocsr()
        if not has_ratings or not self.centering:
            return w.astype(np.float32)
        counts = np.diff(w.indptr)
        sums = np.asarray(w.sum(axis=1)).ravel()
        means = sums / np.maximum(counts, 1)
        centred = w.data - np.repeat(means, counts)
        flat = np.add.reduceat(np.abs(centred), w.indptr[:-1]) if w.nnz else np.zeros(0)
        flat = np.where(counts > 0, flat, 0.0) < 1e-9
        w.data = np.where(np.repeat(flat, counts), w.data, centred)
        return w.astype(np.float32)

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

    def similar_items(self, items: Any, k: int = 10) -> SimilarItems:
        """The ``k`` items whose features are most similar (cosine) to each item in ``items``."""
        self._check_fitted()
        ids, idx = map_query_items(self.items_, items)
        sims = (self.item_features_[idx] @ self.item_features_.T).toarray()
        sims[np.arange(len(idx)), idx] = 0.0
        return top_from_rows(self.items_, ids, sims, k)

    def explain(self, user: Any, item: Any, labels: Labels = None, *,
                n_items: int = 3, n_features: int = 5) -> Explanation:
        """Why ``item`` scores as it does for ``user``.

        The score decomposes exactly over the user's rated items,
        :math:`s_{ui} = \\sum_j w_{uj} (f_j \\cdot f_i) / \\lVert p_u \\rVert`, and over features,
        :math:`s_{ui} = \\sum_f \\hat p_{uf} f_{if}`. The reasons are the rated items with the
        largest positive contributions (``kind="item"``, with the user's rating) and the shared
        features with the largest contributions (``kind="feature"``); ``weight`` is the
        contribution to the score.

        Parameters
        ----------
        user, item : external ids (the item may be a cold-start item)
        labels : mapping, pandas Series or callable, optional
            Item names, e.g. movie titles; without them item reasons have an empty ``label``.
        n_items, n_features : int
            How many of each kind of reason to keep.
        """
        self._check_fitted()
        u = int(self._map(self.users_, [user], "user", "error")[0])
        i = int(self._map(self.items_, [item], "item", "error")[0])
        fi = self.item_features_[i]
        score = float(self._score(np.array([u]))[0, i])
        w = self.user_weights_
        rated = w.indices[w.indptr[u]:w.indptr[u + 1]]
        weights = w.data[w.indptr[u]:w.indptr[u + 1]]
        ratings = self.seen_.data[self.seen_.indptr[u]:self.seen_.indptr[u + 1]]
        raw = (w.astype(np.float64) @ self.item_features_.astype(np.float64))[u]
        norm = float(np.sqrt(raw.multiply(raw).sum())) or 1.0
        sims = np.asarray((self.item_features_[rated] @ fi.T).toarray()).ravel()
        contrib = weights * sims / norm
        reasons: list[Reason] = []
        for j in np.argsort(-contrib, kind="stable")[:n_items]:
            if contrib[j] <= 0:
                break
            item_id = _plain(self.items_.ids[rated[j]])
            reasons.append(Reason(kind="item", id=item_id, contribution=float(contrib[j]),
                                  label=label_of(labels, item_id) if labels is not None else "",
                                  detail={"rating": float(ratings[j]),
                                          "similarity": float(sims[j])}))
        prof = self.user_profiles_[u]
        shared = fi.multiply(prof).tocoo()
        order = np.argsort(-shared.data, kind="stable")[:n_features]
        by_column: dict[str, list[str]] = {}
        for o in order:
            if shared.data[o] <= 0:
                break
            name = self.feature_names_[shared.col[o]]
            column = self.feature_columns_[shared.col[o]]
            value = name[len(column) + 1:] if len(name) > len(column) else name
            reasons.append(Reason(kind="feature", id=name, contribution=float(shared.data[o]),
                                  label=name, detail={"column": column, "value": value}))
            by_column.setdefault(column, []).append(value)
        parts = [
            f"{r.label or r.id}, which you rated {fmt_rating(r.detail['rating'])}"
            for r in reasons if r.kind == "item"
        ]
        parts += [f"{col} {', '.join(vals)}" for col, vals in by_column.items()]
        summary = (
            f"{label_of(labels, _plain(item))} (score {score:.3f}): because of "
            + ("; ".join(parts) if parts else "no shared content")
        )
        return Explanation(user=user, item=item, score=score, reasons=reasons, summary=summary)


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def _unit_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    m = m.tocsr()
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    return (sp.diags(scale) @ m).tocsr()
