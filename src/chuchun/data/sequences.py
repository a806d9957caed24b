"""Ordered views of an interaction log: per-user sequences, sessions, baskets, and the
leave-last-out and session splits used to evaluate next-item recommenders.

A :class:`Sequences` holds many ordered item lists in one CSR-like layout (``indptr`` /
``items``), the items as indices into an item :class:`~chuchun.data.Vocabulary`. Sequences are
built once, here, with the ordering rule stated in one place:

* rows of one user are ordered by timestamp; rows with the same timestamp are ordered by item
  id (the position in the sorted item vocabulary), so the same log in any row order gives the
  same sequences;
* a log without timestamps keeps its row order (a :class:`~chuchun.DataWarning` says so).

Truncation keeps the most recent ``max_len`` items; padding fills on the left (older side)
with ``-1`` so that the last column is always the latest item.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from chuchun._exceptions import ConfigError, DataError, DataWarning
from chuchun._random import RandomState, check_random_state
from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary

__all__ = [
    "LeaveLastOut",
    "SessionSplit",
    "Sequences",
    "baskets",
    "leave_last_out",
    "pad_sequences",
    "session_split",
    "sessions",
    "user_sequences",
]

PAD = -1


@dataclass(frozen=True, eq=False)
class Sequences:
    """Ordered item sequences in CSR layout.

    Sequence ``s`` is ``items[indptr[s]:indptr[s + 1]]``, oldest first.

    Attributes
    ----------
    indptr : ndarray of int64, shape (n_sequences + 1,)
    items : ndarray of int32
        Item indices into ``item_vocab``.
    item_vocab : Vocabulary
    owners : ndarray
        External id of the user (or basket) each sequence belongs to.
    timestamps : ndarray of int64 or None
        Time of each entry of ``items`` when known.
    """

    indptr: np.ndarray
    items: np.ndarray
    item_vocab: Vocabulary
    owners: np.ndarray
    timestamps: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.indptr) != len(self.owners) + 1:
            raise DataError(
                f"indptr must have one entry more than owners; got {len(self.indptr)} and "
                f"{len(self.owners)}"
            )
        if self.indptr[0] != 0 or self.indptr[-1] != len(self.items) or (
            np.diff(self.indptr) < 0
        ).any():
            raise DataError("indptr must start at 0, end at len(items) and never decrease")

    def __len__(self) -> int:
        return len(self.owners)

    def __getitem__(self, s: int) -> np.ndarray:
        return self.items[self.indptr[s] : self.indptr[s + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """Length of each sequence."""
        return np.diff(self.indptr)

    def item_ids(self, s: int) -> np.ndarray:
        """Sequence ``s`` as external item ids."""
        return self.item_vocab.ids[self[s]]

    def to_lists(self) -> list[list[Any]]:
        """All sequences as lists of external item ids (e.g. to feed gensim)."""
        ids = self.item_vocab.ids
        return [ids[self[s]].tolist() for s in range(len(self))]

    def truncated(self, max_len: int) -> Sequences:
        """The same sequences keeping only each one's ``max_len`` most recent items."""
        max_len = _check_int(max_len, "max_len", 1)
        lengths = np.minimum(self.lengths, max_len)
        ends = self.indptr[1:]
        keep = np.zeros(len(self.items), dtype=bool)
        for s in np.flatnonzero(lengths):  # cheap: one slice per sequence
            keep[ends[s] - lengths[s] : ends[s]] = True
        indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        stamps = None if self.timestamps is None else self.timestamps[keep]
        return Sequences(indptr, self.items[keep], self.item_vocab, self.owners, stamps)

    def padded(self, max_len: int) -> np.ndarray:
        """``(n_sequences, max_len)`` int32 matrix of the ``max_len`` most recent items of each
        sequence, right-aligned (latest item in the last column), ``-1`` on the left."""
        return pad_sequences([self[s] for s in range(len(self))], max_len)

    def __repr__(self) -> str:
        lengths = self.lengths
        mean = float(lengths.mean()) if len(lengths) else 0.0
        return (
            f"Sequences(n_sequences={len(self)}, n_items={len(self.item_vocab)}, "
            f"n_entries={len(self.items)}, mean_length={mean:.1f})"
        )


def pad_sequences(sequences: Sequence[np.ndarray], max_len: int, pad: int = PAD) -> np.ndarray:
    """Right-align index sequences into an ``(n, max_len)`` int32 matrix.

    Each row keeps the ``max_len`` most recent (last) entries of its sequence; shorter ones are
    filled with ``pad`` on the left, so column ``max_len - 1`` is always the latest item.
    """
    max_len = _check_int(max_len, "max_len", 1)
    out = np.full((len(sequences), max_len), pad, dtype=np.int32)
    for r, seq in enumerate(sequences):
        tail = np.asarray(seq)[-max_len:]
        if len(tail):
            out[r, max_len - len(tail) :] = tail
    return out


def _order(data: Interactions, who: str) -> np.ndarray:
    """Row order: by user, then timestamp, then item index (or row order without timestamps)."""
    if data.timestamps is None:
        warnings.warn(
            f"{who}: the interaction log has no timestamps; each user's rows are kept in the "
            "order they appear in the log", DataWarning, stacklevel=3,
        )
        return np.argsort(data.user_idx, kind="stable")
    return np.lexsort((data.item_idx, data.timestamps, data.user_idx))


def user_sequences(data: Interactions) -> Sequences:
    """One sequence per user of ``data``, ordered by time (see the module docstring).

    ``owners`` holds the user ids in the order of ``data.users``, so sequence ``u`` belongs to
    user index ``u``.
    """
    data = _check_data(data, "user_sequences")
    order = _order(data, "user_sequences")
    counts = np.bincount(data.user_idx, minlength=data.n_users)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    stamps = None if data.timestamps is None else data.timestamps[order]
    return Sequences(indptr, data.item_idx[order], data.items, data.users.ids, stamps)


def sessions(data: Interactions, gap: float = 1800.0) -> tuple[Sequences, np.ndarray]:
    """Cut each user's sequence into sessions wherever ``gap`` seconds pass without activity.

    Returns
    -------
    sequences : Sequences
        One sequence per session, sessions of a user consecutive and in time order;
        ``owners`` holds the user id of each session.
    session_of_row : ndarray of int64, shape (len(data),)
        The session index of every row of ``data``.
    """
    data = _check_data(data, "sessions")
    if data.timestamps is None:
        raise DataError(
            "sessions are cut by time gaps, but the interaction log has no timestamps; load it "
            "with a timestamp column"
        )
    if isinstance(gap, bool) or not isinstance(gap, numbers.Real) or not gap > 0:
        raise ConfigError(f"gap must be a positive number of seconds; got {gap!r}")
    order = _order(data, "sessions")
    u = data.user_idx[order]
    t = data.timestamps[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (np.diff(t) > gap)
    session = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    indptr = np.r_[starts, len(order)].astype(np.int64)
    session_of_row = np.empty(len(order), dtype=np.int64)
    session_of_row[order] = session
    seqs = Sequences(indptr, data.item_idx[order], data.items, data.users.ids[u[starts]], t)
    return seqs, session_of_row


def baskets(source: Any) -> Sequences:
    """Baskets as (unordered) sequences, for models that use the whole basket as context.

    ``source`` is a :class:`chuchun.rules.Transactions`, an :class:`Interactions` whose
    *users* are basket ids (a table with a basket-id column loaded as the user column), or an
    iterable of baskets (each an iterable of item ids). Items repeated within a basket count
    once; basket order carries no meaning.
    """
    from chuchun.rules.baskets import Transactions

    if isinstance(source, Interactions):
        csr = source.csr
        return Sequences(
            csr.indptr.astype(np.int64), csr.indices.astype(np.int32), source.items,
            source.users.ids,
        )
    if not isinstance(source, Transactions):
        if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
            raise DataError(
                "baskets expects Transactions, Interactions (basket id as the user) or an "
                f"iterable of baskets; got {type(source).__name__}"
            )
        source = Transactions.from_baskets(source)
    vocab = Vocabulary(np.unique(source.items))
    remap = vocab.index(source.items)
    items = remap[source.indices].astype(np.int32)
    indptr = source.indptr.astype(np.int64)
    # sort within each basket so the layout does not depend on first-appearance order
    for b in range(len(indptr) - 1):
        items[indptr[b] : indptr[b + 1]].sort()
    owners = (
        source.transaction_ids if source.transaction_ids is not None
        else np.arange(source.n_transactions)
    )
    return Sequences(indptr, items, vocab, np.asarray(owners))


@dataclass(frozen=True)
class LeaveLastOut:
    """A leave-last-out split: each user's last item for test, the one before for validation.

    Attributes
    ----------
    train : Interactions
        Everything but the held-out items (fit and tune on this).
    validation : Interactions
        The second-to-last item of each eligible user (choose hyperparameters / stop early).
    test : Interactions
        The last item of each eligible user.
    train_validation : Interactions
        ``train`` plus ``validation``: refit on this before scoring ``test``.
    info : dict
        ``method``, ``min_length`` and the counts of users and rows in each part.

    All parts share the item and user vocabularies of the whole log, so indices agree.
    """

    train: Interactions
    validation: Interactions
    test: Interactions
    train_validation: Interactions
    info: dict[str, Any] = field(default_factory=dict)


def _same_vocab_subset(data: Interactions, mask: np.ndarray) -> Interactions:
    return Interactions(
        data.users, data.items, data.user_idx[mask], data.item_idx[mask],
        None if data.ratings is None else data.ratings[mask],
        None if data.timestamps is None else data.timestamps[mask],
        rating_scale=data.rating_scale,
    )


def leave_last_out(data: Interactions, min_length: int = 3) -> LeaveLastOut:
    """Hold out each user's last item (test) and the one before it (validation).

    Users with fewer than ``min_length`` items stay entirely in training (they still shape the
    model but are not evaluated). The order is the one of :func:`user_sequences`; the split is
    deterministic (no seed: the timestamps decide).
    """
    data = _check_data(data, "leave_last_out")
    min_length = _check_int(min_length, "min_length", 3)
    order = _order(data, "leave_last_out")
    counts = np.bincount(data.user_idx, minlength=data.n_users)
    ends = np.cumsum(counts)
    eligible = np.flatnonzero(counts >= min_length)
    if len(eligible) == 0:
        raise DataError(
            f"leave_last_out needs users with at least {min_length} items; the longest history "
            f"has {int(counts.max())}"
        )
    role = np.zeros(len(data), dtype=np.int8)  # 0 train, 1 validation, 2 test
    role[order[ends[eligible] - 1]] = 2
    role[order[ends[eligible] - 2]] = 1
    info = {
        "method": "leave_last_out",
        "min_length": min_length,
        "n_users_evaluated": int(len(eligible)),
        "n_users_train_only": int(data.n_users - len(eligible)),
        "n_train": int((role == 0).sum()),
        "n_validation": int((role == 1).sum()),
        "n_test": int((role == 2).sum()),
    }
    return LeaveLastOut(
        _same_vocab_subset(data, role == 0),
        _same_vocab_subset(data, role == 1),
        _same_vocab_subset(data, role == 2),
        _same_vocab_subset(data, role != 2),
        info,
    )


@dataclass(frozen=True)
class SessionSplit:
    """Sessions assigned wholly to training or test (see :func:`session_split`).

    ``test_sessions`` are ordered item-id lists of new sessions: feed each prefix to
    ``recommend_for_history`` and score the next item.
    """

    train: Interactions
    test_sessions: list[list[Hashable]]
    info: dict[str, Any] = field(default_factory=dict)


def session_split(
    data: Interactions,
    gap: float = 1800.0,
    test_fraction: float = 0.2,
    *,
    by: Literal["time", "random"] = "time",
    min_length: int = 2,
    random_state: RandomState = 0,
) -> SessionSplit:
    """Split a log by sessions (cut by ``gap`` seconds of inactivity).

    ``by="time"`` puts the latest ``test_fraction`` of sessions (by start time) in test, the
    setting of Hidasi et al. (2016); ``by="random"`` draws them with ``random_state``. Test
    sessions shorter than ``min_length`` are dropped (nothing to predict); items of test
    sessions not seen in training are removed from them, as a model cannot rank them.
    """
    seqs, session_of_row = sessions(data, gap)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not (
        0 < test_fraction < 1
    ):
        raise ConfigError(f"test_fraction must be strictly between 0 and 1; got {test_fraction!r}")
    if by not in ("time", "random"):
        raise ConfigError(f"by must be 'time' or 'random'; got {by!r}")
    min_length = _check_int(min_length, "min_length", 2)
    n = len(seqs)
    n_test = max(1, int(round(test_fraction * n)))
    if n_test >= n:
        raise DataError(f"session_split needs at least 2 sessions; the log has {n}")
    if by == "time":
        assert seqs.timestamps is not None
        start = seqs.timestamps[seqs.indptr[:-1]]
        chosen = np.argsort(start, kind="stable")[n - n_test :]
    else:
        chosen = check_random_state(random_state).choice(n, size=n_test, replace=False)
    is_test = np.zeros(n, dtype=bool)
    is_test[chosen] = True
    train_rows = ~is_test[session_of_row]
    train = data.subset(train_rows)
    known = np.zeros(len(data.items), dtype=bool)
    known[data.item_idx[train_rows]] = True
    test_sessions = []
    for s in np.flatnonzero(is_test):
        seq = seqs[s]
        seq = seq[known[seq]]
        if len(seq) >= min_length:
            test_sessions.append(data.items.ids[seq].tolist())
    info = {
        "method": "session_split", "gap": float(gap), "by": by, "test_fraction": test_fraction,
        "n_sessions": n, "n_test_sessions": len(test_sessions), "n_train": len(train),
        "random_state": random_state if by == "random" and isinstance(random_state, int)
        else None,
    }
    return SessionSplit(train, test_sessions, info)


def _check_data(data: Any, who: str) -> Interactions:
    if not isinstance(data, Interactions):
        raise DataError(
            f"{who} expects a chuchun.data.Interactions; got {type(data).__name__}"
        )
    return data


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)
