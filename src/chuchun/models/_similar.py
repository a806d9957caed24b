"""Shared helpers of the neighbourhood and content models: similar-item lists and labels."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, UnknownIdError
from chuchun.data.vocabulary import Vocabulary

__all__ = ["SimilarItems"]

Labels = Mapping[Any, str] | pd.Series | Callable[[Any], str] | None


@dataclass(frozen=True)
class SimilarItems:
    """The most similar items of each query item, best first.

    Attributes
    ----------
    query_ids : ndarray, shape (n_queries,)
    item_ids : ndarray, shape (n_queries, k); ``None`` at padded positions (``object`` dtype)
    scores : ndarray of float32, shape (n_queries, k); ``NaN`` at padded positions
    item_idx : ndarray of int32, shape (n_queries, k); ``-1`` at padded positions
    """

    query_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray
    item_idx: np.ndarray

    def __len__(self) -> int:
        return int(self.query_ids.shape[0])

    def to_lists(self) -> list[list[Any]]:
        """Similar item ids per query, padding dropped."""
        return [
            [x.item() if hasattr(x, "item") else x for x in row[row_idx >= 0]]
            for row, row_idx in zip(self.item_ids, self.item_idx, strict=True)
        ]

    def to_pandas(self) -> pd.DataFrame:
        """Long table with columns query, rank (1-based), item, score; padding dropped."""
        n, k = self.item_idx.shape
        mask = self.item_idx >= 0
        return pd.DataFrame(
            {
                "query": np.repeat(self.query_ids, k).reshape(n, k)[mask],
                "rank": np.tile(np.arange(1, k + 1), n).reshape(n, k)[mask],
                "item": self.item_ids[mask],
                "score": self.scores[mask],
            }
        )


def map_query_items(vocab: Vocabulary, items: Any) -> tuple[np.ndarray, np.ndarray]:
    """External query ids and their indices; unknown ids are an :class:`UnknownIdError`."""
    ids = np.asarray(items).reshape(-1)
    idx = vocab.index(ids)
    if (idx < 0).any():
        bad = ids[idx < 0][:5].tolist()
        raise UnknownIdError(f"{int((idx < 0).sum())} item id(s) not known to the model: {bad}")
    return ids, idx


def top_from_rows(
    vocab: Vocabulary, query_ids: np.ndarray, rows: sp.csr_matrix | np.ndarray, k: int
) -> SimilarItems:
    """Package the ``k`` largest positive entries of each row (a CSR or a dense array)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive int; got {k!r}")
    n = len(query_ids)
    idx = np.full((n, k), -1, dtype=np.int32)
    vals = np.full((n, k), np.nan, dtype=np.float32)
    for r in range(n):
        if sp.issparse(rows):
            lo, hi = rows.indptr[r], rows.indptr[r + 1]
            cols, v = rows.indices[lo:hi], rows.data[lo:hi]
        else:
            cols = np.flatnonzero(rows[r] > 0)
            v = rows[r][cols]
        keep = v > 0
        cols, v = cols[keep], v[keep]
        order = np.lexsort((cols, -v))[:k]
        idx[r, : len(order)] = cols[order]
        vals[r, : len(order)] = v[order]
    items = np.empty(idx.shape, dtype=object)
    ok = idx >= 0
    items[ok] = vocab.ids[idx[ok]]
    if ok.all():
        items = vocab.ids[idx]
    return SimilarItems(query_ids=query_ids, item_ids=items, scores=vals, item_idx=idx)


def label_of(labels: Labels, item_id: Any) -> str:
    """Human-readable name of an item from a mapping, a Series or a callable; the id otherwise."""
    key = item_id.item() if hasattr(item_id, "item") else item_id
    if labels is None:
        return str(key)
    if callable(labels) and not isinstance(labels, (Mapping, pd.Series)):
        return str(labels(key))
    try:
        return str(labels[key])
    except (KeyError, IndexError):
        return str(key)


def fmt_rating(r: float) -> str:
    """5.0 -> '5', 3.5 -> '3.5'."""
    return f"{r:g}"
