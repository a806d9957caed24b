"""Similarity rows of models with a vector representation (the ``_item_similarities`` hook)."""

from __future__ import annotations

import numpy as np

__all__ = ["cosine_rows"]


def cosine_rows(factors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Cosine similarity of the rows ``idx`` of ``factors`` to every row (zero rows give 0)."""
    norms = np.linalg.norm(factors, axis=1)
    unit = factors / np.where(norms > 0, norms, 1.0)[:, None]
    return np.asarray(unit[idx] @ unit.T, dtype=np.float32)
