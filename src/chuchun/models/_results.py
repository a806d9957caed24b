"""Result containers returned by models: top-k recommendations and explanations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from chuchun._lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use (to_pandas)

__all__ = ["REASON_KINDS", "Explanation", "Explanations", "Reason", "Recommendations", "SimilarItems"]


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


#: what a reason can be: an item the user interacted with, a neighbour user, a side feature,
#: a pairwise feature interaction (FMs), an association rule, a bias or intercept term, item
#: popularity, or chance (the Random model)
REASON_KINDS = ("item", "user", "feature", "interaction", "rule", "bias", "popularity", "random")


@dataclass(frozen=True)
class Reason:
    """One piece of evidence behind a score.

    Attributes
    ----------
    kind : str
        One of :data:`REASON_KINDS`.
    id : Any
        External id of the evidence: an item id (``"item"``), a user id (``"user"``), a feature
        name such as ``"genres=Drama"`` (``"feature"``, ``"interaction"``), a rule such as
        ``"{a, b} -> c"``; the name of the term (``"global mean"``, ``"item bias"``) otherwise.
    contribution : float
        This reason's share of the score. For models whose explanations are additive
        (``Explanation.additive``) the contributions of all reasons sum to the score.
    label : str
        Human-readable name (a title) when labels are known; ``""`` otherwise.
    detail : dict
        Extra numbers a reader may want (the user's rating, a similarity, a confidence).
    """

    kind: str
    id: Any
    contribution: float
    label: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def weight(self) -> float:
        """Alias of :attr:`contribution`."""
        return self.contribution

    @property
    def name(self) -> str:
        """The label when known, else the id as text."""
        return self.label or str(self.id)

    def __str__(self) -> str:
        extras = ", ".join(f"{k} {_fmt(v)}" for k, v in self.detail.items())
        inner = f"{extras}; " if extras else ""
        return f"{self.name} ({inner}contribution {self.contribution:.3g})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready record: kind, id, label, contribution, detail."""
        return {
            "kind": self.kind,
            "id": _plain(self.id),
            "label": self.label,
            "contribution": float(self.contribution),
            "detail": {k: _plain(v) for k, v in self.detail.items()},
        }


@dataclass(frozen=True)
class Explanation:
    """Why ``item`` is scored as it is for ``user``: the strongest reasons first.

    Attributes
    ----------
    user, item : Any
        External ids.
    score : float
        The model's score of the pair, the same number ``recommend`` ranks by.
    reasons : tuple of Reason
        The ``n_reasons`` reasons with the largest absolute contribution, bias terms last.
    additive : bool
        Whether the contributions of all reasons add up to ``score``; then ``remainder`` is the
        part of the score carried by the reasons not shown.
    remainder : float
        ``score - sum(contributions shown)`` for additive explanations, ``NaN`` otherwise.
    method : str
        How the reasons were derived, in one line.
    label : str
        The item's label when labels are known.
    summary : str
        One sentence a person reads (built by the model; optional).
    """

    user: Any
    item: Any
    score: float
    reasons: tuple[Reason, ...]
    additive: bool = False
    remainder: float = float("nan")
    method: str = ""
    label: str = ""
    summary: str = ""

    def __str__(self) -> str:
        name = self.label or str(self.item)
        head = self.summary or f"{name} for user {self.user} (score {self.score:.4g})"
        # "because of" names what raises the score: reasons that lower it are listed below
        # but never given as a cause (a NaN contribution has no known sign and is kept)
        shown = [r for r in self.reasons if r.kind not in ("bias", "random")
                 and not r.contribution <= 0]
        if shown and not self.summary:
            head += ": because of " + "; ".join(r.name for r in shown[:3])
        lines = [head] + [f"  - {r}" for r in self.reasons]
        if self.additive and self.remainder == self.remainder and abs(self.remainder) > 1e-9:
            lines.append(f"  - (other reasons: contribution {self.remainder:.3g})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready record of the explanation and its reasons."""
        return {
            "user": _plain(self.user),
            "item": _plain(self.item),
            "label": self.label,
            "score": float(self.score),
            "additive": self.additive,
            "remainder": None if self.remainder != self.remainder else float(self.remainder),
            "method": self.method,
            "reasons": [r.to_dict() for r in self.reasons],
        }

    def to_pandas(self) -> pd.DataFrame:
        """One row per reason: kind, id, label, contribution and the detail fields."""
        rows = [
            {"kind": r.kind, "id": r.id, "label": r.label, "contribution": r.contribution,
             **r.detail}
            for r in self.reasons
        ]
        return pd.DataFrame(rows, columns=None if rows else
                            ["kind", "id", "label", "contribution"])


@dataclass(frozen=True)
class Explanations:
    """Explanations of a batch of (user, item) pairs, in the order asked.

    Indexing and iteration give :class:`Explanation` records.
    """

    explanations: tuple[Explanation, ...]

    def __len__(self) -> int:
        return len(self.explanations)

    def __getitem__(self, i: int) -> Explanation:
        return self.explanations[i]

    def __iter__(self) -> Iterator[Explanation]:
        return iter(self.explanations)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.explanations)

    def to_records(self) -> list[dict[str, Any]]:
        """A JSON-ready list with one dict per explanation (see :meth:`Explanation.to_dict`)."""
        return [e.to_dict() for e in self.explanations]

    def to_pandas(self) -> pd.DataFrame:
        """Long table: user, item, score, rank of the reason, kind, id, label, contribution."""
        rows = [
            {"user": e.user, "item": e.item, "score": e.score, "rank": r + 1, "kind": x.kind,
             "id": x.id, "label": x.label, "contribution": x.contribution}
            for e in self.explanations
            for r, x in enumerate(e.reasons)
        ]
        cols = ["user", "item", "score", "rank", "kind", "id", "label", "contribution"]
        return pd.DataFrame(rows, columns=cols)


@dataclass(frozen=True)
class SimilarItems:
    """The most similar items (or users) of each query, best first.

    Attributes
    ----------
    query_ids : ndarray, shape (n_queries,)
        The items (or users) asked about, in the order asked.
    item_ids : ndarray, shape (n_queries, k)
        Their neighbours, best first; ``None`` at padded positions (``object`` dtype then).
    scores : ndarray of float32, shape (n_queries, k); ``NaN`` at padded positions
    item_idx : ndarray of int32, shape (n_queries, k); ``-1`` at padded positions
    """

    query_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray
    item_idx: np.ndarray

    def __len__(self) -> int:
        return int(self.query_ids.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Number of real (unpadded) neighbours per query."""
        return (self.item_idx >= 0).sum(axis=1)

    def to_lists(self) -> list[list[Any]]:
        """Neighbour ids per query, padding dropped."""
        return [
            [_plain(x) for x in row[row_idx >= 0]]
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


def _plain(v: Any) -> Any:
    """NumPy scalars as Python scalars (JSON-ready)."""
    return v.item() if isinstance(v, np.generic) else v


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
