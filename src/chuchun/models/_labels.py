"""Readable names (labels, e.g. titles) for ids in explanations and lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Labels", "label_of"]

#: id -> name: a mapping, a pandas Series indexed by id, or a callable; ``None`` for no labels
Labels: TypeAlias = "Mapping[Any, str] | pd.Series | Callable[[Any], str] | None"


def label_of(labels: Labels, item_id: Any) -> str:
    """Human-readable name of an id from a mapping, a Series or a callable; the id otherwise."""
    key = item_id.item() if hasattr(item_id, "item") else item_id
    if labels is None:
        return str(key)
    if callable(labels) and not hasattr(labels, "__getitem__"):
        return str(labels(key))
    try:
        return str(labels[key])  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return str(key)
