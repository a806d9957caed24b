"""Result containers returned by models: top-k recommendations and explanations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chuchun._lazy import LazyModule

pd = LazyModule("pandas")  # imported on first use (to_pandas)

__all__ = ["Explanation", "Reason", "Recommendations"]


@dataclass(frozen=True)
class Recommendations:
    """Top-k lists for a batch of users.

    Attributes
    ----------
    user_ids : ndarray, shape (n_users,)
        The users asked for, in the order asked.
    item_ids : ndarray, shape (n_users, k)
        Recommended items, best first. Rows shorter than ``k`` (small catalogue, everything
        already seen, unknown user under the ``"empty"`` policy) are padded with ``None`` and
        the array then has ``object`` dtype.
    scores : ndarray of float32, shape (n_users, k)
        The model's score of each recommendation; ``NaN`` at padded positions.
    item_idx : ndarray of int32, shape (n_users, k)
        Internal item indices, ``-1`` at padded positions.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray
    item_idx: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """Number of real (unpadded) recommendations per user."""
        return (self.item_idx >= 0).sum(axis=1)

    def __len__(self) -> int:
        return int(self.user_ids.shape[0])

    def to_lists(self) -> list[list[Any]]:
        """Recommended item ids per user as plain lists, padding dropped."""
        return [
            [x.item() if hasattr(x, "item") else x for x in row[: n]]
            for row, n in zip(self.item_ids, self.lengths, strict=True)
        ]

    def to_pandas(self) -> pd.DataFrame:
        """Long table with columns user, rank (1-based), item, score; padding dropped."""
        n, k = self.item_idx.shape
        mask = self.item_idx >= 0
        return pd.DataFrame(
            {
                "user": np.repeat(self.user_ids, k).reshape(n, k)[mask],
                "rank": np.tile(np.arange(1, k + 1), n).reshape(n, k)[mask],
                "item": self.item_ids[mask],
                "score": self.scores[mask],
            }
        )


@dataclass(frozen=True)
class Reason:
    """One piece of evidence behind a score.

    ``kind`` says what the evidence is: ``"item"`` (a neighbour item the user interacted with),
    ``"user"`` (a neighbour user), ``"feature"`` (a shared side feature), ``"rule"`` (an
    association rule) or ``"factor"`` (a history item's contribution in a latent-factor model).
    """

    kind: str
    id: Any
    weight: float
    label: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        name = self.label or str(self.id)
        extras = ", ".join(f"{k} {_fmt(v)}" for k, v in self.detail.items())
        return f"{name} ({extras}; weight {self.weight:.3g})" if extras else (
            f"{name} (weight {self.weight:.3g})"
        )


@dataclass(frozen=True)
class Explanation:
    """Why ``item`` is scored as it is for ``user``: the reasons, strongest first."""

    user: Any
    item: Any
    score: float
    reasons: list[Reason]
    summary: str = ""

    def __str__(self) -> str:
        head = self.summary or f"item {self.item!r} for user {self.user!r}: score {self.score:.4g}"
        lines = [head] + [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)

    def to_pandas(self) -> pd.DataFrame:
        """One row per reason: kind, id, label, weight and the detail fields."""
        rows = [
            {"kind": r.kind, "id": r.id, "label": r.label, "weight": r.weight, **r.detail}
            for r in self.reasons
        ]
        return pd.DataFrame(rows)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
