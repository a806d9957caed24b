"""Frequent-itemset mining: :class:`FPGrowth` and :class:`Apriori`.

Both miners find every itemset :math:`X` whose support count

.. math::

    \\sigma(X) = |\\{t \\in T : X \\subseteq t\\}|

reaches ``min_count``, where ``min_support`` is either that count (an ``int``) or a fraction of
the :math:`n = |T|` transactions (a ``float``; ``min_count`` :math:`= \\lceil`
``min_support`` :math:`\\cdot n \\rceil`). They return the same :class:`FrequentItemsets`, in the
same canonical order; only their speed profile differs (FP-growth is the default choice).
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import warnings
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from chuchun._exceptions import ConfigError, SearchSpaceWarning
from chuchun.kernels import rules as _kernels
from chuchun.rules.baskets import Transactions, as_transactions

if TYPE_CHECKING:
    from chuchun.rules.rules import RuleSet

__all__ = ["Apriori", "FPGrowth", "FrequentItemsets", "resolve_min_count"]

logger = logging.getLogger(__name__)

_Kernel = Callable[
    [np.ndarray, np.ndarray, int, int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray, int]
]


def resolve_min_count(min_support: Any, n_transactions: int) -> int:
    """Turn ``min_support`` (a fraction in (0, 1] or a count >= 1) into a support count.

    A fraction :math:`s` gives :math:`\\lceil s \\cdot n \\rceil` (with a relative tolerance of
    1e-9, so that ``0.07 * 100`` means 7 transactions and not 8). Integers are counts, floats
    are fractions: ``1`` means one transaction, ``1.0`` means all of them.

    Raises
    ------
    ConfigError
        For a bool, a non-number, a fraction outside (0, 1], a count below 1 or a count above
        ``n_transactions``.
    """
    if isinstance(min_support, bool) or not isinstance(min_support, numbers.Real):
        raise ConfigError(
            "min_support must be a fraction in (0, 1] or an integer count >= 1; "
            f"got {min_support!r} ({type(min_support).__name__})"
        )
    if isinstance(min_support, numbers.Integral):
        count = int(min_support)
        if count < 1:
            raise ConfigError(
                f"min_support={count} is read as a transaction count and must be >= 1; "
                "pass a float such as 0.01 for a fraction of the transactions"
            )
        if count > n_transactions:
            raise ConfigError(
                f"min_support={count} transactions is above the number of transactions "
                f"({n_transactions}); pass a count <= {n_transactions} or a fraction in (0, 1]"
            )
        return count
    value = float(min_support)
    if not (0.0 < value <= 1.0):  # also rejects NaN
        hint = (
            f"; for a count of transactions pass the int {int(value)}"
            if value > 1 and value.is_integer()
            else ""
        )
        raise ConfigError(
            f"min_support must be a fraction in (0, 1] or an integer count >= 1; got {value!r}{hint}"
        )
    product = value * n_transactions
    return max(1, math.ceil(product - 1e-9 * product))


def _check_int(name: str, value: Any, minimum: int, nullable: bool) -> int:
    """``value`` as an int >= ``minimum`` (``nullable`` only changes the message)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if nullable else "")
        raise ConfigError(f"{name} must be {expected}; got {value!r}")
    return int(value)


class FrequentItemsets:
    """The frequent itemsets of a set of transactions, with support counts.

    Itemsets are stored as CSR over item indices: itemset ``s`` is
    ``items[indices[indptr[s]:indptr[s + 1]]]``, item indices ascending. Rows are ordered by
    length, then lexicographically by item index, whichever miner produced them.

    Attributes
    ----------
    items : numpy.ndarray
        Item labels (the vocabulary of the mined :class:`Transactions`).
    indptr : numpy.ndarray of int64
    indices : numpy.ndarray of int32
    counts : numpy.ndarray of int64
        Support counts :math:`\\sigma(X)`.
    n_transactions : int
    min_count : int
        The support count threshold that was applied.
    complete : bool
        ``False`` when mining stopped at ``max_itemsets``; the collection is then a subset.
    """

    def __init__(
        self,
        items: np.ndarray,
        indptr: np.ndarray,
        indices: np.ndarray,
        counts: np.ndarray,
        n_transactions: int,
        min_count: int,
        complete: bool = True,
    ) -> None:
        self.items = items
        self.indptr = indptr
        self.indices = indices
        self.counts = counts
        self.n_transactions = int(n_transactions)
        self.min_count = int(min_count)
        self.complete = bool(complete)

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def __repr__(self) -> str:
        return (
            f"FrequentItemsets(n_itemsets={len(self)}, max_length={int(self.lengths.max(initial=0))}, "
            f"min_count={self.min_count}, n_transactions={self.n_transactions}, complete={self.complete})"
        )

    @property
    def lengths(self) -> np.ndarray:
        """Number of items in each itemset."""
        return np.diff(self.indptr)

    @property
    def support(self) -> np.ndarray:
        """Support :math:`\\sigma(X) / n` of each itemset."""
        return self.counts / self.n_transactions

    def itemset(self, row: int) -> frozenset[Hashable]:
        """The item labels of itemset ``row``."""
        return frozenset(self.items[self.indices[self.indptr[row] : self.indptr[row + 1]]].tolist())

    def to_dict(self) -> dict[frozenset[Hashable], int]:
        """``{frozenset(items): support count}`` for every itemset."""
        return dict(zip(self._frozensets(), self.counts.tolist()))

    def to_pandas(self) -> pd.DataFrame:
        """One row per itemset: ``itemset`` (frozenset of labels), ``support``, ``count``, ``length``."""
        return pd.DataFrame(
            {
                "itemset": self._frozensets(),
                "support": self.support,
                "count": self.counts,
                "length": self.lengths,
            }
        )

    def rules(
        self,
        min_confidence: float = 0.0,
        min_lift: float | None = None,
        max_consequent_len: int | None = None,
        max_rules: int = 10_000_000,
    ) -> RuleSet:
        """Association rules from these itemsets; see :func:`chuchun.rules.association_rules`."""
        from chuchun.rules.rules import association_rules

        return association_rules(
            self,
            min_confidence=min_confidence,
            min_lift=min_lift,
            max_consequent_len=max_consequent_len,
            max_rules=max_rules,
        )

    def _frozensets(self) -> list[frozenset[Hashable]]:
        labels = self.items[self.indices].tolist()
        bounds = self.indptr.tolist()
        return [frozenset(labels[a:b]) for a, b in itertools.pairwise(bounds)]


class _ItemsetMiner:
    """Shared front-end: validation, frequency ranking, the explosion guard, canonical output."""

    _kernel: _Kernel

    def __init__(
        self, *, min_support: float, max_len: int | None = None, max_itemsets: int = 5_000_000
    ) -> None:
        self.min_support = min_support
        self.max_len = max_len
        self.max_itemsets = max_itemsets

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_support={self.min_support!r}, max_len={self.max_len!r}, "
            f"max_itemsets={self.max_itemsets!r})"
        )

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, unchanged."""
        return {
            "min_support": self.min_support,
            "max_len": self.max_len,
            "max_itemsets": self.max_itemsets,
        }

    def mine(
        self, data: Transactions | pd.DataFrame | Iterable[Iterable[Hashable]]
    ) -> FrequentItemsets:
        """Find every itemset with support count >= the ``min_support`` threshold.

        Parameters
        ----------
        data : Transactions, pandas.DataFrame or iterable of baskets
            See :func:`chuchun.rules.as_transactions`.

        Returns
        -------
        FrequentItemsets

        Raises
        ------
        ConfigError
            On an invalid ``min_support``, ``max_len`` or ``max_itemsets``.
        DataError
            On empty input or empty baskets.

        Warns
        -----
        SearchSpaceWarning
            When the answer is certain to exceed ``max_itemsets`` (warned before mining), and when
            mining stopped at ``max_itemsets`` (the result is then marked ``complete=False``).
        """
        tx = as_transactions(data)
        n = tx.n_transactions
        min_count = resolve_min_count(self.min_support, n)
        max_len = None if self.max_len is None else _check_int("max_len", self.max_len, 1, True)
        max_itemsets = _check_int("max_itemsets", self.max_itemsets, 1, False)
        limit_len = max_len if max_len is not None else np.iinfo(np.int32).max

        order, r_indptr, r_items = _rank_encode(tx, min_count)
        self._warn_if_explosive(r_indptr, r_items, min_count, n, max_len, max_itemsets)
        out_indptr, out_items, out_counts, stopped = type(self)._kernel(
            r_indptr,
            r_items,
            int(order.shape[0]),
            int(min_count),
            int(limit_len),
            int(max_itemsets),
        )
        if stopped:
            warnings.warn(
                f"mining stopped after max_itemsets={max_itemsets:,} frequent itemsets at "
                f"min_support={self.min_support!r} ({min_count} of {n} transactions); the result is "
                "incomplete. Raise min_support, set max_len, or raise max_itemsets.",
                SearchSpaceWarning,
                stacklevel=2,
            )
        indptr, indices, counts = _canonical(order[out_items], out_indptr, out_counts, tx.n_items)
        logger.debug(
            "%s found %d itemsets (min_count=%d)", type(self).__name__, counts.shape[0], min_count
        )
        return FrequentItemsets(
            tx.items, indptr, indices, counts, n, min_count, complete=not stopped
        )

    def _warn_if_explosive(
        self,
        indptr: np.ndarray,
        items: np.ndarray,
        min_count: int,
        n: int,
        max_len: int | None,
        max_itemsets: int,
    ) -> None:
        longest, times = _longest_repeated_basket(indptr, items, min_count)
        if longest == 0:
            return
        top = longest if max_len is None else min(longest, max_len)
        lower_bound = sum(math.comb(longest, k) for k in range(1, top + 1))
        if lower_bound > max_itemsets:
            warnings.warn(
                f"at least {lower_bound:,} itemsets are frequent at min_support={self.min_support!r} "
                f"({min_count} of {n} transactions): a basket of {longest} frequent items occurs "
                f"{times} time(s), so every subset of it qualifies. Mining will stop at "
                f"max_itemsets={max_itemsets:,}. Raise min_support above {times / n:.4g} "
                "or set max_len (e.g. max_len=3).",
                SearchSpaceWarning,
                stacklevel=3,
            )


class FPGrowth(_ItemsetMiner):
    """Frequent-itemset mining by FP-growth (Han, Pei & Yin 2000).

    Transactions are reduced to their frequent items, ordered by decreasing frequency and
    inserted into a prefix tree (the FP-tree); for each item, the prefix paths above its nodes
    form a conditional database that is mined recursively. No candidate itemsets are generated.

    Parameters
    ----------
    min_support : float or int
        Support threshold: a fraction of transactions in (0, 1] (``float``), or a number of
        transactions >= 1 (``int``). An itemset :math:`X` is frequent when
        :math:`\\sigma(X) \\ge \\lceil s \\cdot n \\rceil` (fraction) or :math:`\\sigma(X) \\ge c` (count).
    max_len : int, optional
        Longest itemset to report; ``None`` for no limit.
    max_itemsets : int, default 5_000_000
        Guard against a combinatorial explosion: mining stops (with a
        :class:`~chuchun.SearchSpaceWarning`) after this many itemsets.

    Examples
    --------
    >>> from chuchun.rules import FPGrowth
    >>> found = FPGrowth(min_support=2).mine([["milk", "bread"], ["milk"], ["milk", "bread", "eggs"]])
    >>> found.to_dict()[frozenset({"milk", "bread"})]
    2
    """

    _kernel = staticmethod(_kernels.fpgrowth_itemsets)


class Apriori(_ItemsetMiner):
    """Frequent-itemset mining by Apriori (Agrawal & Srikant 1994).

    Level-wise search: the candidates of size :math:`k + 1` join two frequent :math:`k`-itemsets
    that share their first :math:`k - 1` items, are pruned unless all their :math:`k`-subsets are
    frequent (downward closure), and are counted with per-item bitsets. Same parameters and
    results as :class:`FPGrowth`; usually slower on long baskets, competitive on short ones.

    Parameters
    ----------
    min_support : float or int
        Fraction of transactions in (0, 1] or a count >= 1; see :class:`FPGrowth`.
    max_len : int, optional
        Longest itemset to report; ``None`` for no limit.
    max_itemsets : int, default 5_000_000
        Mining stops (with a :class:`~chuchun.SearchSpaceWarning`) after this many itemsets.
    """

    _kernel = staticmethod(_kernels.apriori_itemsets)


def _rank_encode(tx: Transactions, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep frequent items, renumber them by decreasing count (ties: item index), sort rows.

    Returns ``order`` (rank -> item index) and the transactions as CSR over ranks.
    """
    counts = tx.item_counts()
    frequent = np.flatnonzero(counts >= min_count)
    order = frequent[np.lexsort((frequent, -counts[frequent]))].astype(np.int32)
    n_freq = order.shape[0]
    rank_of = np.full(max(tx.n_items, 1), -1, dtype=np.int64)
    rank_of[order] = np.arange(n_freq)
    ranks = rank_of[tx.indices]
    keep = ranks >= 0
    rows = np.repeat(np.arange(tx.n_transactions, dtype=np.int64), np.diff(tx.indptr))[keep]
    keys = np.sort(rows * max(n_freq, 1) + ranks[keep], kind="stable")  # nearly sorted already
    rows = keys // max(n_freq, 1)
    items = (keys - rows * max(n_freq, 1)).astype(np.int32)
    indptr = np.zeros(tx.n_transactions + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=tx.n_transactions), out=indptr[1:])
    return order, indptr, items


def _longest_repeated_basket(
    indptr: np.ndarray, items: np.ndarray, min_count: int
) -> tuple[int, int]:
    """Length (and multiplicity) of the longest basket that occurs at least ``min_count`` times.

    Every subset of such a basket is frequent, which gives a cheap lower bound on the answer.
    """
    lengths = np.diff(indptr)
    if min_count <= 1:
        return int(lengths.max(initial=0)), 1
    if lengths.shape[0] == 0 or lengths.max() < 20:  # below 2**20 subsets: nothing to warn about
        return 0, 0
    long_rows = np.flatnonzero(lengths >= 20)
    seen: dict[bytes, int] = {}
    for r in long_rows.tolist():
        key = items[indptr[r] : indptr[r + 1]].tobytes()
        seen[key] = seen.get(key, 0) + 1
    best, times = 0, 0
    for key, c in seen.items():
        length = len(key) // 4
        if c >= min_count and length > best:
            best, times = length, c
    return best, times


def _canonical(
    items: np.ndarray, indptr: np.ndarray, counts: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort items within each itemset, then itemsets by (length, items)."""
    n_sets = counts.shape[0]
    if n_sets == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)
    lengths = np.diff(indptr)
    items = np.array(items, dtype=np.int32)  # a copy: sorted in place below
    # several (item + 1) values per uint64 key make the lexicographic sort need few keys
    bits = max(1, int(n_items + 1).bit_length())
    per_key = max(1, 63 // bits)
    n_keys = -(-int(lengths.max()) // per_key)
    keys = np.empty((n_keys, n_sets), dtype=np.uint64)
    _kernels.sort_rows_and_pack(indptr, items, bits, per_key, keys)
    perm = np.lexsort([*keys[::-1], lengths])
    new_indptr, new_items = _kernels.take_rows(indptr, items, perm)
    return new_indptr, new_items, counts[perm].astype(np.int64)
