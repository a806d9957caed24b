"""Shared parts of the next-item (sequence) models: each user's ordered training sequence,
scoring from ordered histories, and the per-epoch loop with validation, callbacks and early
stopping.

A sequence model keeps every training user's items in time order (:func:`chuchun.data
.sequences.user_sequences`) as ``sequence_indptr_`` / ``sequence_items_``; ``recommend(users)``
scores from that sequence and ``recommend_for_history(histories)`` from the ordered lists
given (``uses_order = True``), through one hook, ``_score_sequences``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun.data.interactions import Interactions
from chuchun.data.sequences import Sequences, user_sequences
from chuchun.models._base import Recommender, _mask_seen, _top_k

__all__ = ["EpochCallback", "_SequenceRecommender"]

_log = logging.getLogger(__name__)

#: ``callback(model, epoch, logs)``; ``logs`` holds ``loss`` and, with validation data,
#: ``val_ndcg`` and ``val_hit`` (at 10). Returning ``True`` stops training after that epoch.
EpochCallback = Callable[[Recommender, int, dict[str, float]], Any]


class _SequenceRecommender(Recommender):
    """Base of the models that read each user's history as a time-ordered sequence."""

    uses_order: ClassVar[bool] = True
    supports_fold_in: ClassVar[bool] = True

    def _store_sequences(self, data: Interactions) -> Sequences:
        seqs = user_sequences(data)
        self.sequence_indptr_ = seqs.indptr
        self.sequence_items_ = seqs.items
        return seqs

    def _user_sequence(self, user_idx: int) -> np.ndarray:
        return self.sequence_items_[
            self.sequence_indptr_[user_idx] : self.sequence_indptr_[user_idx + 1]
        ]

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._score_sequences([self._user_sequence(int(u)) for u in user_idx])

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        raise ConfigError(
            f"{type(self).__name__} needs ordered histories; pass lists of item ids (oldest "
            "first) or an Interactions with timestamps to recommend_for_history"
        )


def validation_targets(
    data: Interactions, validation: Interactions | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(user_idx, item_idx) of the validation pairs known to ``data`` (one per user: the
    first in time order when a user has several)."""
    if validation is None:
        return None
    if not isinstance(validation, Interactions):
        raise DataError(
            f"validation must be an Interactions; got {type(validation).__name__}"
        )
    u = data.users.index(validation.user_ids)
    i = data.items.index(validation.item_ids)
    keep = (u >= 0) & (i >= 0)
    if not keep.any():
        raise DataError("no validation pair has a user and an item seen in training")
    u, i = u[keep], i[keep]
    stamps = validation.timestamps[keep] if validation.timestamps is not None else None
    order = np.lexsort((stamps, u)) if stamps is not None else np.argsort(u, kind="stable")
    u, i = u[order], i[order]
    first = np.r_[True, u[1:] != u[:-1]]
    return u[first].astype(np.int32), i[first].astype(np.int32)


def next_item_metrics(
    model: _SequenceRecommender, users: np.ndarray, targets: np.ndarray, k: int = 10
) -> tuple[float, float]:
    """HR@k and NDCG@k of one held-out item per user, full ranking, training items excluded."""
    hits = 0.0
    ndcg = 0.0
    step = model._chunk_size()
    for c in range(0, len(users), step):
        rows = users[c : c + step]
        scores = np.array(model._score(rows), dtype=np.float32, copy=True)
        target = targets[c : c + step]
        keep = scores[np.arange(len(rows)), target].copy()
        _mask_seen(scores, model.seen_, rows)
        scores[np.arange(len(rows)), target] = keep
        top, _ = _top_k(scores, k)
        match = top == target[:, None]
        pos = np.argmax(match, axis=1)
        found = match.any(axis=1)
        hits += float(found.sum())
        ndcg += float((found / np.log2(pos + 2.0)).sum())
    n = max(1, len(users))
    return hits / n, ndcg / n


class EpochLoop:
    """Per-epoch bookkeeping: history, callbacks, progress bar and early stopping on the
    validation NDCG@10 (higher is better)."""

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
        self.history: dict[str, list[float]] = {"loss": [], "val_ndcg": [], "val_hit": []}
        self.best = -math.inf
        self.best_epoch = -1
        self.bad = 0
        self.improved = False
        self.bar: Any = None
        if _progress._ENABLED or getattr(model, "verbose", False):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n_epochs, desc=desc, leave=False, dynamic_ncols=True,
                            disable=None)

    def end_epoch(self, epoch: int, loss: float, val: tuple[float, float] | None) -> bool:
        """Record one epoch; True when training should stop. Sets ``improved``."""
        hit, ndcg = val if val is not None else (float("nan"), float("nan"))
        logs = {"loss": float(loss), "val_ndcg": float(ndcg), "val_hit": float(hit)}
        for key, value in logs.items():
            self.history[key].append(value)
        _log.debug("%s epoch %d: %s", type(self.model).__name__, epoch, logs)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", val_ndcg=f"{ndcg:.4f}")
        stop = False
        for cb in self.callbacks:
            stop = bool(cb(self.model, epoch, logs)) or stop
        self.improved = False
        if val is not None:
            if ndcg > self.best:
                self.best, self.best_epoch, self.bad, self.improved = ndcg, epoch, 0, True
            else:
                self.bad += 1
                if self.patience and self.bad >= self.patience:
                    stop = True
        return stop

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def recency_weights(n: int, decay: float) -> np.ndarray:
    """Weights ``decay ** age`` (age 0 = the latest of ``n`` items), normalised to sum 1."""
    w = decay ** np.arange(n - 1, -1, -1, dtype=np.float64)
    return w / w.sum() if n else w
