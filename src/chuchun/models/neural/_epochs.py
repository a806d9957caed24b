"""Per-epoch callbacks of the top-N neural models (MultVAE, LightGCN)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chuchun._exceptions import ConfigError

__all__ = ["EpochCallback", "check_callbacks"]

#: ``callback(model, epoch, logs)`` after each epoch (``epoch`` counts from 0), the model
#: already scoring with that epoch's weights; returning ``True`` stops training there.
EpochCallback = Callable[[Any, int, dict[str, float]], Any]


def check_callbacks(callbacks: Sequence[EpochCallback] | None) -> list[EpochCallback]:
    """``callbacks`` as a list, each checked to be callable."""
    out = list(callbacks or [])
    for cb in out:
        if not callable(cb):
            raise ConfigError(
                f"callbacks must be callables cb(model, epoch, logs); got {type(cb).__name__}"
            )
    return out
