"""Transactions (baskets) for itemset mining: encoding, validation and the basket-file loader."""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from chuchun._exceptions import DataError

__all__ = ["Transactions", "as_transactions", "read_baskets"]


@dataclass(frozen=True, eq=False)
class Transactions:
    """A set of transactions (baskets) encoded as a sparse 0/1 matrix.

    Row ``t`` holds the distinct items of transaction ``t`` as indices into :attr:`items`,
    sorted ascending: ``indices[indptr[t]:indptr[t + 1]]``. An item listed twice in one basket
    counts once. Build one with :meth:`from_baskets`, :meth:`from_frame` or
    :func:`read_baskets`; the miners also accept those inputs directly.

    Attributes
    ----------
    items : numpy.ndarray
        The item labels (any hashable values), in order of first appearance; an item's index
        is its position here.
    indptr : numpy.ndarray of int64, shape (n_transactions + 1,)
    indices : numpy.ndarray of int32, shape (n_occurrences,)
    transaction_ids : numpy.ndarray or None
        The transaction labels when built from a table, else ``None`` (rows are numbered).
    """

    items: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    transaction_ids: np.ndarray | None = None

    @property
    def n_transactions(self) -> int:
        """Number of transactions (rows)."""
        return int(self.indptr.shape[0] - 1)

    @property
    def n_items(self) -> int:
        """Number of distinct items."""
        return int(self.items.shape[0])

    def __len__(self) -> int:
        return self.n_transactions

    def __repr__(self) -> str:
        return (
            f"Transactions(n_transactions={self.n_transactions}, n_items={self.n_items}, "
            f"n_occurrences={self.indices.shape[0]})"
        )

    def item_counts(self) -> np.ndarray:
        """Number of transactions that contain each item, aligned with :attr:`items`."""
        return np.bincount(self.indices, minlength=self.n_items).astype(np.int64)

    def baskets(self) -> list[list[Hashable]]:
        """The transactions as lists of item labels (deduplicated, in index order)."""
        return [
            list(self.items[self.indices[a:b]]) for a, b in zip(self.indptr[:-1], self.indptr[1:])
        ]

    @classmethod
    def from_baskets(cls, baskets: Iterable[Iterable[Hashable]]) -> Transactions:
        """Encode an iterable of baskets, each an iterable of hashable items.

        Raises
        ------
        DataError
            If there are no baskets, a basket is empty, a basket is a string (a string would be
            split into characters), or an item is missing (``None``/NaN).
        """
        if isinstance(baskets, (str, bytes, pd.DataFrame)):
            raise DataError(
                f"expected an iterable of baskets (e.g. [['milk', 'bread'], ['milk']]); "
                f"got a {type(baskets).__name__}"
            )
        lists: list[Any] = list(baskets)
        try:
            lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        except TypeError:  # a basket without len(): a generator, or not iterable at all
            lists = [
                b if hasattr(b, "__len__") else _materialise(b, pos) for pos, b in enumerate(lists)
            ]
            lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        kinds = set(map(type, lists))
        if any(issubclass(kind, (str, bytes)) for kind in kinds):
            pos = next(p for p, b in enumerate(lists) if isinstance(b, (str, bytes)))
            basket = lists[pos]
            raise DataError(
                f"basket {pos} is a {type(basket).__name__} ({basket!r:.40}); expected an iterable "
                "of items such as ['milk', 'bread'] (use read_baskets for delimited text)"
            )
        _check_not_empty(lengths)
        try:
            flat = np.fromiter(chain.from_iterable(lists), dtype=object, count=int(lengths.sum()))
        except TypeError:
            bad = next(pos for pos, b in enumerate(lists) if not _iterable(b))
            raise DataError(
                f"basket {bad} is a {type(lists[bad]).__name__}; expected an iterable of items"
            ) from None
        codes, uniques = pd.factorize(flat, use_na_sentinel=True)
        if (codes < 0).any():
            bad = int(np.flatnonzero(codes < 0)[0])
            row = int(np.searchsorted(np.cumsum(lengths), bad, side="right"))
            raise DataError(
                f"basket {row} holds a missing item (None or NaN); items must be actual values"
            )
        rows = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
        return cls._encode(
            rows, codes.astype(np.int64), lengths.shape[0], _as_label_array(uniques), None
        )

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, transaction_col: str | None = None, item_col: str | None = None
    ) -> Transactions:
        """Encode a long table with one ``(transaction, item)`` pair per row.

        Parameters
        ----------
        frame : pandas.DataFrame
        transaction_col, item_col : str, optional
            Column names. Both may be left out when the table has exactly two columns, taken as
            ``(transaction, item)`` in that order.

        Raises
        ------
        DataError
            On a missing column, an empty table, or missing values in either column.
        """
        columns = list(frame.columns)
        if transaction_col is None and item_col is None:
            if len(columns) != 2:
                raise DataError(
                    f"pass transaction_col and item_col: the table has {len(columns)} columns "
                    f"{columns}, and only a two-column table is read as (transaction, item)"
                )
            transaction_col, item_col = columns
        for role, name in (("transaction", transaction_col), ("item", item_col)):
            if name is None:
                raise DataError(f"{role}_col is missing; columns are {columns}")
            if name not in frame.columns:
                raise DataError(f"{role} column {name!r} not found; columns are {columns}")
        if len(frame) == 0:
            raise DataError("no transactions: the table has no rows")
        t_codes, t_uniques = pd.factorize(frame[transaction_col], sort=False)
        i_codes, i_uniques = pd.factorize(frame[item_col], sort=False)
        for name, codes in ((transaction_col, t_codes), (item_col, i_codes)):
            if (codes < 0).any():
                n_bad = int((codes < 0).sum())
                raise DataError(
                    f"column {name!r} has {n_bad} missing value(s); every row needs a value"
                )
        return cls._encode(
            t_codes.astype(np.int64),
            i_codes.astype(np.int64),
            len(t_uniques),
            _as_label_array(i_uniques),
            _as_label_array(t_uniques),
        )

    @classmethod
    def _encode(
        cls,
        rows: np.ndarray,
        codes: np.ndarray,
        n_rows: int,
        items: np.ndarray,
        transaction_ids: np.ndarray | None,
    ) -> Transactions:
        n_items = max(int(items.shape[0]), 1)
        # one sort orders each row by item index and puts duplicates inside a basket side by side
        keys = np.sort(rows * n_items + codes, kind="stable")  # rows come grouped: nearly sorted
        if keys.shape[0] > 1:
            distinct = np.empty(keys.shape[0], dtype=bool)
            distinct[0] = True
            np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
            if not distinct.all():
                keys = keys[distinct]
        rows_u = keys // n_items
        indices = (keys - rows_u * n_items).astype(np.int32)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows_u, minlength=n_rows), out=indptr[1:])
        return cls(items=items, indptr=indptr, indices=indices, transaction_ids=transaction_ids)


def _materialise(basket: Any, pos: int) -> list[Hashable]:
    try:
        return list(basket)
    except TypeError:
        raise DataError(
            f"basket {pos} is a {type(basket).__name__}; expected an iterable of items"
        ) from None


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _as_label_array(uniques: Any) -> np.ndarray:
    arr = np.asarray(uniques)
    if arr.ndim != 1:  # tuples as items: keep them whole
        arr = np.fromiter(uniques, dtype=object, count=len(uniques))
    return arr


def _check_not_empty(lengths: np.ndarray) -> None:
    if lengths.shape[0] == 0:
        raise DataError("no transactions: expected at least one basket, got none")
    empty = np.flatnonzero(lengths == 0)
    if empty.shape[0]:
        raise DataError(
            f"basket {int(empty[0])} is empty ({empty.shape[0]} empty basket(s) of {lengths.shape[0]}); "
            "every transaction needs at least one item - drop empty baskets first"
        )


def read_baskets(
    path: str | os.PathLike[str], sep: str = ",", encoding: str = "utf-8"
) -> Transactions:
    """Read a basket-per-line text file, e.g. the Groceries data set.

    Each non-blank line is one transaction; items are separated by ``sep``. Whitespace around
    each item is stripped (``"whole milk , yogurt"`` gives ``"whole milk"`` and ``"yogurt"``),
    empty fields (``"a,,b"`` or a trailing separator) are dropped, blank lines are skipped, and
    an item repeated on a line counts once. Items are kept as strings; there is no quoting.

    Parameters
    ----------
    path : str or os.PathLike
    sep : str, default ","
        The item separator; must be non-empty.
    encoding : str, default "utf-8"

    Returns
    -------
    Transactions

    Raises
    ------
    DataError
        If ``sep`` is empty, the file is missing or unreadable, or it holds no items.
    """
    from chuchun.datasets.files import load_baskets

    if not sep:
        raise DataError("sep must be a non-empty string, e.g. ',' or '\\t'; got ''")
    baskets = load_baskets(path, sep, encoding=encoding)  # same parsing rules, .gz, clear errors
    return Transactions.from_baskets(baskets)


def as_transactions(
    data: Transactions | pd.DataFrame | Iterable[Iterable[Hashable]],
) -> Transactions:
    """Turn any accepted input into :class:`Transactions`.

    Accepts :class:`Transactions` (returned as is), a two-column ``(transaction, item)``
    :class:`pandas.DataFrame`, or an iterable of baskets. For a file use :func:`read_baskets`;
    for a table with more columns use :meth:`Transactions.from_frame` with column names.
    """
    if isinstance(data, Transactions):
        return data
    if isinstance(data, pd.DataFrame):
        return Transactions.from_frame(data)
    if isinstance(data, (str, bytes, os.PathLike)):
        raise DataError(
            f"got a path or string {data!r:.60}; to mine a basket file, pass read_baskets(path) instead"
        )
    if not isinstance(data, (Iterable, Sequence)):
        raise DataError(
            "expected a list of baskets, a (transaction, item) DataFrame or Transactions; "
            f"got {type(data).__name__}"
        )
    return Transactions.from_baskets(data)
