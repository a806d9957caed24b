"""Shared helpers of the neighbourhood and content models: similar-item lists and labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, UnknownIdError
from chuchun.data.vocabulary import Vocabulary
from chuchun.models._labels import Labels, label_of
from chuchun.models._results import SimilarItems

__all__ = ["Labels", "SimilarItems", "label_of"]


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


def fmt_rating(r: float) -> str:
    """5.0 -> '5', 3.5 -> '3.5'."""
    return f"{r:g}"
