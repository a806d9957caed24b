"""Train/test splits of an interaction log: random, per-user, temporal, k-fold and predefined.

Every split returns :class:`Split` objects whose ``train`` and ``test`` are
:class:`~chuchun.data.Interactions` with their own (compacted) vocabularies, and whose ``info``
records how the split was made and how many test pairs have a user or an item that the training
part never saw. Such pairs are kept in ``test`` and counted; when there are any, a
:class:`~chuchun.DataWarning` says how many, so they are never silently dropped or silently kept.
:func:`chuchun.evaluation.evaluate` scores them with the model's documented fallback (or skips
them on request) and reports the counts again.

All random splits are seeded through ``random_state`` (an ``int``, a NumPy ``Generator`` or
``None`` for fresh entropy); the global NumPy random state is never used.
"""

from __future__ import annotations

import numbers
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from chuchun._exceptions import ConfigError, DataError, DataWarning
from chuchun._random import RandomState, check_random_state
from chuchun.data.interactions import Interactions

__all__ = [
    "Split",
    "holdout",
    "kfold",
    "movielens_100k_folds",
    "predefined_folds",
    "temporal_split",
    "user_holdout",
]

_ML100K_COLUMNS = ["user", "item", "rating", "timestamp"]


@dataclass(frozen=True)
class Split:
    """One train/test partition.

    Attributes
    ----------
    train, test : Interactions
        The two parts, each with vocabularies compacted to the users and items it holds.
    info : dict
        How the split was made (``method`` and its arguments) and counts: ``n_train``,
        ``n_test``, ``n_train_users``, ``n_train_items``, ``n_test_users``, ``n_test_items``,
        ``n_test_unknown_user`` (test pairs whose user is not in ``train``),
        ``n_test_unknown_item`` (pairs whose item is not in ``train``), ``n_test_unknown``
        (pairs with either), ``n_unknown_users`` and ``n_unknown_items`` (distinct ids).
    """

    train: Interactions
    test: Interactions
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_parts(
        cls, train: Interactions, test: Interactions, *, warn: bool = True, **info: Any
    ) -> Split:
        """Build a split from two logs, computing the counts in ``info``.

        A :class:`~chuchun.DataWarning` is issued when test pairs have users or items unknown
        to ``train`` (unless ``warn=False``; the counts are recorded either way).
        """
        for name, part in (("train", train), ("test", test)):
            if not isinstance(part, Interactions):
                raise DataError(
                    f"{name} must be a chuchun.data.Interactions; got {type(part).__name__}"
                )
        counts = unknown_counts(train, test)
        full = {**info, **counts}
        if warn and counts["n_test_unknown"]:
            method = info.get("method", "split")
            warnings.warn(
                f"{method}: {counts['n_test_unknown']} of {counts['n_test']} test pairs have a "
                f"user or item unknown to training ({counts['n_test_unknown_user']} unknown user, "
                f"{counts['n_test_unknown_item']} unknown item; "
                f"{counts['n_unknown_users']} distinct users, {counts['n_unknown_items']} "
                "distinct items). They are kept and counted in Split.info; evaluate() scores "
                "them with the model's fallback unless unknown='skip'",
                DataWarning,
                stacklevel=_caller_stacklevel(),
            )
        return cls(train, test, full)

    def __repr__(self) -> str:
        method = self.info.get("method", "split")
        return (
            f"Split({method}: train {len(self.train)} rows, test {len(self.test)} rows, "
            f"{self.info.get('n_test_unknown', 0)} test pairs unknown to training)"
        )


def unknown_counts(train: Interactions, test: Interactions) -> dict[str, int]:
    """Sizes of both parts and how many test pairs have a user / item absent from ``train``."""
    u_test = train.users.index(test.users.ids)  # test user index -> train index or -1
    i_test = train.items.index(test.items.ids)
    user_unknown = u_test[test.user_idx] < 0
    item_unknown = i_test[test.item_idx] < 0
    return {
        "n_train": len(train),
        "n_test": len(test),
        "n_train_users": train.n_users,
        "n_train_items": train.n_items,
        "n_test_users": test.n_users,
        "n_test_items": test.n_items,
        "n_test_unknown_user": int(user_unknown.sum()),
        "n_test_unknown_item": int(item_unknown.sum()),
        "n_test_unknown": int((user_unknown | item_unknown).sum()),
        "n_unknown_users": int((u_test < 0).sum()),
        "n_unknown_items": int((i_test < 0).sum()),
    }


# -- argument checks ---------------------------------------------------------------------------
def _check_data(data: Any, who: str) -> Interactions:
    if not isinstance(data, Interactions):
        raise DataError(
            f"{who} expects a chuchun.data.Interactions; got {type(data).__name__}. "
            "Build one with Interactions.from_pandas(...) or from_csv(...)"
        )
    return data


def _check_fraction(value: Any, name: str = "test_fraction") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number strictly between 0 and 1; got {value!r}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{name} must be a number strictly between 0 and 1; got {value!r}")
    return value


def _check_count(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)


def _need_timestamps(data: Interactions, who: str) -> np.ndarray:
    if data.timestamps is None:
        raise DataError(
            f"{who} orders rows by time, but the interaction log has no timestamps; "
            "load it with a timestamp column or use a random split"
        )
    return data.timestamps


def _from_mask(data: Interactions, test_mask: np.ndarray, **info: Any) -> Split:
    n_test = int(test_mask.sum())
    method = info.get("method", "split")
    if n_test == 0:
        raise DataError(
            f"{method} put no rows in the test part ({len(data)} rows in the log); "
            "use a larger test_fraction or more data"
        )
    if n_test == len(data):
        raise DataError(
            f"{method} put all {len(data)} rows in the test part, none in training; "
            "use a smaller test_fraction or more data"
        )
    return Split.from_parts(data.subset(~test_mask), data.subset(test_mask), **info)


# -- splits ------------------------------------------------------------------------------------
def holdout(data: Interactions, test_fraction: float = 0.2, random_state: RandomState = 0) -> Split:
    """Random hold-out by interaction.

    ``round(n * test_fraction)`` rows chosen uniformly at random (without replacement) form the
    test part; the rest is training.

    Parameters
    ----------
    data : Interactions
    test_fraction : float in (0, 1)
    random_state : int, Generator or None

    Raises
    ------
    ConfigError
        ``test_fraction`` outside (0, 1).
    DataError
        Too few rows for both parts to be non-empty.
    """
    data = _check_data(data, "holdout")
    frac = _check_fraction(test_fraction)
    n = len(data)
    n_test = int(round(n * frac))
    rng = check_random_state(random_state)
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[:n_test]] = True
    return _from_mask(
        data, mask, method="holdout", test_fraction=frac, random_state=_seed_repr(random_state)
    )


def user_holdout(
    data: Interactions,
    test_fraction: float = 0.2,
    last_k: int | None = None,
    order: Literal["random", "time"] = "random",
    random_state: RandomState = 0,
) -> Split:
    """Per-user hold-out: part of every user's rows go to test.

    Each user with ``n_u`` rows puts ``floor(n_u * test_fraction)`` of them in test (or
    ``min(last_k, n_u - 1)`` when ``last_k`` is given, which then overrides ``test_fraction``),
    so every user keeps at least one training row and users with too few rows stay entirely in
    training. With ``order="time"`` the held-out rows are each user's most recent: rows are
    sorted by (timestamp, item id) and the last ones go to test (this is the "temporal split"
    used throughout chuchun's demo and benchmarks). With ``order="random"`` they are chosen
    uniformly at random per user.

    Parameters
    ----------
    data : Interactions
    test_fraction : float in (0, 1)
    last_k : int >= 1, optional
        Hold out this many rows per user instead of a fraction.
    order : {"random", "time"}
    random_state : int, Generator or None
        Used by ``order="random"`` only.

    Raises
    ------
    ConfigError
        Bad ``test_fraction``, ``last_k`` or ``order``.
    DataError
        ``order="time"`` without timestamps, or no user has enough rows to hold any out.
    """
    data = _check_data(data, "user_holdout")
    frac = _check_fraction(test_fraction)
    if last_k is not None:
        last_k = _check_count(last_k, "last_k", 1)
    if order not in ("random", "time"):
        raise ConfigError(f"order must be 'random' or 'time'; got {order!r}")
    u = data.user_idx
    if order == "time":
        stamps = _need_timestamps(data, "user_holdout(order='time')")
        # item_idx follows the sorted item vocabulary, so it orders like the item ids
        sort = np.lexsort((data.item_idx, stamps, u))
    else:
        keys = check_random_state(random_state).random(len(data))
        sort = np.lexsort((keys, u))
    counts = np.bincount(u, minlength=data.n_users)
    if last_k is None:
        n_test_u = np.floor(counts * frac + 1e-9).astype(np.int64)
    else:
        n_test_u = np.minimum(last_k, np.maximum(counts - 1, 0))
    u_sorted = u[sort]
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank = np.arange(len(data)) - starts[u_sorted]  # position within the user's sorted rows
    test_sorted = rank >= counts[u_sorted] - n_test_u[u_sorted]
    mask = np.zeros(len(data), dtype=bool)
    mask[sort[test_sorted]] = True
    n_users_none = int(((n_test_u == 0) & (counts > 0)).sum())
    return _from_mask(
        data,
        mask,
        method="user_holdout",
        test_fraction=None if last_k is not None else frac,
        last_k=last_k,
        order=order,
        random_state=_seed_repr(random_state) if order == "random" else None,
        n_users_without_test=n_users_none,
    )


def temporal_split(
    data: Interactions, test_fraction: float = 0.2, *, at: Any = None
) -> Split:
    """Global temporal split: the latest interactions (over all users) form the test part.

    With ``at`` (a timestamp in the log's units, or anything :class:`pandas.Timestamp` accepts,
    converted to seconds since the epoch), rows with ``timestamp >= at`` are test and
    ``test_fraction`` is ignored. Otherwise rows are sorted by (timestamp, user id, item id) and
    the last ``round(n * test_fraction)`` go to test.

    Raises
    ------
    ConfigError
        Bad ``test_fraction`` or an ``at`` that is not a time.
    DataError
        No timestamps, or the cut leaves one part empty.
    """
    data = _check_data(data, "temporal_split")
    stamps = _need_timestamps(data, "temporal_split")
    if at is not None:
        cut = _as_seconds(at)
        mask = stamps >= cut
        if not mask.any() or mask.all():
            raise DataError(
                f"temporal_split at={at!r} leaves the {'test' if not mask.any() else 'train'} "
                f"part empty; timestamps run from {stamps.min()} to {stamps.max()}"
            )
        return _from_mask(data, mask, method="temporal_split", at=cut)
    frac = _check_fraction(test_fraction)
    n_test = int(round(len(data) * frac))
    sort = np.lexsort((data.item_idx, data.user_idx, stamps))
    mask = np.zeros(len(data), dtype=bool)
    mask[sort[len(data) - n_test :]] = True
    return _from_mask(data, mask, method="temporal_split", test_fraction=frac)


def kfold(data: Interactions, n_folds: int = 5, random_state: RandomState = 0) -> list[Split]:
    """K-fold cross-validation by interaction.

    Rows are shuffled once and cut into ``n_folds`` parts of sizes differing by at most one;
    fold ``f`` tests on part ``f`` and trains on the others, so every row is tested exactly once.

    Raises
    ------
    ConfigError
        ``n_folds`` not an int >= 2.
    DataError
        Fewer rows than folds.
    """
    data = _check_data(data, "kfold")
    n_folds = _check_count(n_folds, "n_folds", 2)
    n = len(data)
    if n < n_folds:
        raise DataError(f"kfold needs at least n_folds={n_folds} rows; the log has {n}")
    perm = check_random_state(random_state).permutation(n)
    seed = _seed_repr(random_state)
    splits = []
    for f, part in enumerate(np.array_split(perm, n_folds)):
        mask = np.zeros(n, dtype=bool)
        mask[part] = True
        splits.append(
            _from_mask(data, mask, method="kfold", fold=f + 1, n_folds=n_folds, random_state=seed)
        )
    return splits


def predefined_folds(
    pairs_of_paths: Iterable[tuple[Any, Any]], **read_kwargs: Any
) -> list[Split]:
    """Folds given as (train, test) pairs of files (or of ready :class:`Interactions`).

    Files ending in ``.parquet`` / ``.pq`` are read with :meth:`Interactions.from_parquet`,
    others with :meth:`Interactions.from_csv`; ``read_kwargs`` go to the reader (``sep``,
    ``header``, ``names``, column names, ``rating_scale`` ...).

    Raises
    ------
    DataError
        A missing or unreadable file, or an item that is not a (train, test) pair.
    """
    pairs = list(pairs_of_paths)
    if not pairs:
        raise DataError("predefined_folds needs at least one (train, test) pair; got none")
    splits = []
    for f, pair in enumerate(pairs):
        if not isinstance(pair, Sequence) or isinstance(pair, (str, bytes)) or len(pair) != 2:
            raise DataError(f"fold {f + 1}: expected a (train, test) pair; got {pair!r}")
        train, test = (_read(p, read_kwargs) for p in pair)
        splits.append(
            Split.from_parts(
                train,
                test,
                method="predefined",
                fold=f + 1,
                train_path=_path_repr(pair[0]),
                test_path=_path_repr(pair[1]),
            )
        )
    return splits


def movielens_100k_folds(directory: str | os.PathLike[str]) -> list[Split]:
    """The five official MovieLens 100K folds ``u1.base/u1.test`` ... ``u5.base/u5.test``.

    Each file is tab-separated ``user item rating timestamp`` with ratings 1-5. Some test pairs
    in these folds have items that never occur in the matching base file; they are counted in
    ``info`` (and announced by a :class:`~chuchun.DataWarning`).

    Parameters
    ----------
    directory : path
        The ``ml-100k`` folder (e.g. ``../shared/datasets/ml-100k``).
    """
    root = os.fspath(directory)
    if not os.path.isdir(root):
        raise DataError(f"MovieLens 100K directory not found: {root!r}")
    pairs = [
        (os.path.join(root, f"u{f}.base"), os.path.join(root, f"u{f}.test")) for f in range(1, 6)
    ]
    missing = [p for pair in pairs for p in pair if not os.path.exists(p)]
    if missing:
        raise DataError(
            f"MovieLens 100K folds missing in {root!r}: "
            + ", ".join(os.path.basename(p) for p in missing)
        )
    return predefined_folds(
        pairs, sep="\t", header=False, names=_ML100K_COLUMNS, rating_scale=(1.0, 5.0)
    )


# -- helpers -----------------------------------------------------------------------------------
def _caller_stacklevel() -> int:
    """Stack level of the first frame outside this module, so warnings point at user code."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _read(source: Any, read_kwargs: dict[str, Any]) -> Interactions:
    if isinstance(source, Interactions):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(
            f"expected a file path or Interactions for a fold; got {type(source).__name__}"
        )
    path = os.fspath(source)
    if path.endswith((".parquet", ".pq")):
        return Interactions.from_parquet(path, **read_kwargs)
    return Interactions.from_csv(path, **read_kwargs)


def _path_repr(source: Any) -> str | None:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else None


def _seed_repr(random_state: RandomState) -> int | str | None:
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return None if random_state is None else type(random_state).__name__


def _as_seconds(at: Any) -> int:
    if isinstance(at, numbers.Real) and not isinstance(at, bool):
        return int(np.floor(float(at)))
    try:
        stamp = pd.Timestamp(at)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"at must be a timestamp (number, datetime or date string); got {at!r}"
        ) from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.timestamp())
