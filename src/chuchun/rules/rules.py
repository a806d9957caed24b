"""Association rules and their interest measures.

For a rule :math:`A \\Rightarrow C` (disjoint, non-empty itemsets) over :math:`n` transactions,
with :math:`s(X) = \\sigma(X) / n` the support of :math:`X`:

.. math::

    \\mathrm{support} &= s(A \\cup C) \\\\
    \\mathrm{confidence} &= s(A \\cup C) / s(A) \\\\
    \\mathrm{lift} &= \\mathrm{confidence} / s(C) \\\\
    \\mathrm{leverage} &= s(A \\cup C) - s(A)\\, s(C) \\\\
    \\mathrm{conviction} &= \\frac{1 - s(C)}{1 - \\mathrm{confidence}}
        \\quad (+\\infty \\text{ when confidence} = 1)

(Agrawal, Imieliński & Swami 1993 for support and confidence; Brin, Motwani, Ullman & Tsur 1997
for lift, there called interest, and conviction; Piatetsky-Shapiro 1991 for leverage.)
"""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from chuchun._exceptions import ConfigError, DataError, SearchSpaceWarning
from chuchun.kernels import rules as _kernels
from chuchun.rules.mining import FrequentItemsets

__all__ = ["METRICS", "RuleSet", "association_rules", "format_items"]

METRICS = ("support", "confidence", "lift", "leverage", "conviction")


def format_items(labels: list[Hashable]) -> str:
    """``{a, b}`` for several labels, the bare label for one."""
    if len(labels) == 1:
        return str(labels[0])
    return "{" + ", ".join(str(x) for x in labels) + "}"


class RuleSet:
    """Association rules with their support counts, as arrays.

    Rule ``r`` is ``A => C`` with ``A = items[antecedent_indices[antecedent_indptr[r]:antecedent_indptr[r+1]]]``
    and ``C`` likewise from the ``consequent_*`` arrays (item indices ascending).

    Attributes
    ----------
    items : numpy.ndarray
        Item labels.
    antecedent_indptr, antecedent_indices, consequent_indptr, consequent_indices : numpy.ndarray
        The two sides of each rule, CSR over item indices.
    counts, antecedent_counts, consequent_counts : numpy.ndarray of int64
        :math:`\\sigma(A \\cup C)`, :math:`\\sigma(A)`, :math:`\\sigma(C)`.
    n_transactions : int
    complete : bool
        ``False`` when the itemsets were incomplete or enumeration stopped at ``max_rules``.
    """

    def __init__(
        self,
        items: np.ndarray,
        antecedent_indptr: np.ndarray,
        antecedent_indices: np.ndarray,
        consequent_indptr: np.ndarray,
        consequent_indices: np.ndarray,
        counts: np.ndarray,
        antecedent_counts: np.ndarray,
        consequent_counts: np.ndarray,
        n_transactions: int,
        complete: bool = True,
    ) -> None:
        self.items = items
        self.antecedent_indptr = antecedent_indptr
        self.antecedent_indices = antecedent_indices
        self.consequent_indptr = consequent_indptr
        self.consequent_indices = consequent_indices
        self.counts = counts
        self.antecedent_counts = antecedent_counts
        self.consequent_counts = consequent_counts
        self.n_transactions = int(n_transactions)
        self.complete = bool(complete)

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def __repr__(self) -> str:
        return f"RuleSet(n_rules={len(self)}, n_transactions={self.n_transactions}, complete={self.complete})"

    # ---- metrics -------------------------------------------------------------------------

    @property
    def support(self) -> np.ndarray:
        """:math:`s(A \\cup C)`."""
        return self.counts / self.n_transactions

    @property
    def antecedent_support(self) -> np.ndarray:
        """:math:`s(A)`."""
        return self.antecedent_counts / self.n_transactions

    @property
    def consequent_support(self) -> np.ndarray:
        """:math:`s(C)`."""
        return self.consequent_counts / self.n_transactions

    @property
    def confidence(self) -> np.ndarray:
        """:math:`s(A \\cup C) / s(A)`, the estimated :math:`P(C \\mid A)`."""
        return self.counts / self.antecedent_counts

    @property
    def lift(self) -> np.ndarray:
        """:math:`\\mathrm{confidence} / s(C)`; 1 means independence."""
        return self.confidence / self.consequent_support

    @property
    def leverage(self) -> np.ndarray:
        """:math:`s(A \\cup C) - s(A) s(C)`; 0 means independence."""
        return self.support - self.antecedent_support * self.consequent_support

    @property
    def conviction(self) -> np.ndarray:
        """:math:`(1 - s(C)) / (1 - \\mathrm{confidence})`, :math:`+\\infty` for exact rules."""
        conf = self.confidence
        out = np.full(conf.shape, np.inf)
        inexact = conf < 1.0
        out[inexact] = (1.0 - self.consequent_support[inexact]) / (1.0 - conf[inexact])
        return out

    def metric(self, name: str) -> np.ndarray:
        """One of :data:`METRICS` by name."""
        if name not in METRICS:
            raise ConfigError(f"unknown rule metric {name!r}; expected one of {list(METRICS)}")
        return np.asarray(getattr(self, name))

    # ---- selection -------------------------------------------------------------------------

    def take(self, rows: np.ndarray) -> RuleSet:
        """The rules at positions ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        a_ptr, a_idx = _take_csr(self.antecedent_indptr, self.antecedent_indices, rows)
        c_ptr, c_idx = _take_csr(self.consequent_indptr, self.consequent_indices, rows)
        return RuleSet(
            self.items,
            a_ptr,
            a_idx,
            c_ptr,
            c_idx,
            self.counts[rows],
            self.antecedent_counts[rows],
            self.consequent_counts[rows],
            self.n_transactions,
            self.complete,
        )

    def sort(self, by: str = "lift", top: int | None = None) -> RuleSet:
        """Rules in decreasing order of metric ``by`` (ties: confidence, then support), first ``top``."""
        primary = self.metric(by)
        order = np.lexsort((-self.support, -self.confidence, -primary))
        if top is not None:
            if isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 0:
                raise ConfigError(f"top must be an integer >= 0 or None; got {top!r}")
            order = order[: int(top)]
        return self.take(order)

    # ---- views -----------------------------------------------------------------------------

    def antecedent(self, row: int) -> list[Hashable]:
        """Item labels of the antecedent of rule ``row``."""
        a, b = self.antecedent_indptr[row], self.antecedent_indptr[row + 1]
        return list(self.items[self.antecedent_indices[a:b]].tolist())

    def consequent(self, row: int) -> list[Hashable]:
        """Item labels of the consequent of rule ``row``."""
        a, b = self.consequent_indptr[row], self.consequent_indptr[row + 1]
        return list(self.items[self.consequent_indices[a:b]].tolist())

    def describe(self, row: int) -> str:
        """A readable line: ``{yogurt, whole milk} → butter, confidence 0.25, lift 2.1``."""
        return (
            f"{format_items(self.antecedent(row))} → {format_items(self.consequent(row))}, "
            f"confidence {self.confidence[row]:.3g}, lift {self.lift[row]:.3g}"
        )

    def to_pandas(self) -> pd.DataFrame:
        """One row per rule: ``antecedent`` and ``consequent`` (frozensets of labels), the
        supports, ``confidence``, ``lift``, ``leverage``, ``conviction`` and ``count``."""
        return pd.DataFrame(
            {
                "antecedent": _frozensets(
                    self.items, self.antecedent_indptr, self.antecedent_indices
                ),
                "consequent": _frozensets(
                    self.items, self.consequent_indptr, self.consequent_indices
                ),
                "antecedent_support": self.antecedent_support,
                "consequent_support": self.consequent_support,
                "support": self.support,
                "confidence": self.confidence,
                "lift": self.lift,
                "leverage": self.leverage,
                "conviction": self.conviction,
                "count": self.counts,
            }
        )


def association_rules(
    itemsets: FrequentItemsets,
    min_confidence: float = 0.0,
    min_lift: float | None = None,
    max_consequent_len: int | None = None,
    max_rules: int = 10_000_000,
) -> RuleSet:
    """Every rule :math:`A \\Rightarrow Z \\setminus A` from the frequent itemsets :math:`Z`.

    For each frequent itemset :math:`Z` with at least two items and each non-empty proper subset
    :math:`A \\subset Z`, the rule is kept when confidence :math:`\\ge` ``min_confidence`` and
    lift :math:`\\ge` ``min_lift``. Both sides of a rule are frequent (downward closure), so all
    supports are known exactly.

    Parameters
    ----------
    itemsets : FrequentItemsets
        Output of :meth:`FPGrowth.mine` or :meth:`Apriori.mine`.
    min_confidence : float, default 0.0
        In [0, 1].
    min_lift : float, optional
        Non-negative; ``None`` keeps every lift.
    max_consequent_len : int, optional
        Keep only rules with at most this many items in the consequent (``1`` for the
        "A → one item" rules a recommender uses; far fewer to enumerate). ``None``: no limit.
    max_rules : int, default 10_000_000
        Enumeration stops (with a :class:`~chuchun.SearchSpaceWarning`) after this many rules.

    Returns
    -------
    RuleSet
    """
    if not isinstance(itemsets, FrequentItemsets):
        raise DataError(
            f"expected FrequentItemsets (from FPGrowth(...).mine(data)); got {type(itemsets).__name__}"
        )
    min_confidence = _check_float("min_confidence", min_confidence, 0.0, 1.0)
    lift_floor = 0.0 if min_lift is None else _check_float("min_lift", min_lift, 0.0, math.inf)
    if isinstance(max_rules, bool) or not isinstance(max_rules, numbers.Integral) or max_rules < 1:
        raise ConfigError(f"max_rules must be an integer >= 1; got {max_rules!r}")
    if max_consequent_len is None:
        max_consequent = np.iinfo(np.int32).max
    elif (
        isinstance(max_consequent_len, bool)
        or not isinstance(max_consequent_len, numbers.Integral)
        or max_consequent_len < 1
    ):
        raise ConfigError(
            f"max_consequent_len must be an integer >= 1 or None; got {max_consequent_len!r}"
        )
    else:
        max_consequent = int(max_consequent_len)
    r_set, r_mask, a_counts, c_counts, stopped = _kernels.rule_candidates(
        itemsets.indptr,
        itemsets.indices,
        itemsets.counts,
        itemsets.n_transactions,
        float(min_confidence),
        float(lift_floor),
        int(max_consequent),
        int(max_rules),
    )
    if stopped:
        warnings.warn(
            f"rule enumeration stopped after max_rules={max_rules:,}; the result is incomplete. "
            "Raise min_confidence or min_lift, mine with a larger min_support or a smaller max_len, "
            "or raise max_rules.",
            SearchSpaceWarning,
            stacklevel=2,
        )
    a_ptr, a_idx, c_ptr, c_idx = _split_sides(itemsets.indptr, itemsets.indices, r_set, r_mask)
    return RuleSet(
        itemsets.items,
        a_ptr,
        a_idx,
        c_ptr,
        c_idx,
        itemsets.counts[r_set],
        a_counts,
        c_counts,
        itemsets.n_transactions,
        complete=itemsets.complete and not stopped,
    )


def _check_float(name: str, value: Any, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (low <= float(value) <= high)
    ):
        raise ConfigError(f"{name} must be a number in [{low:g}, {high:g}]; got {value!r}")
    return float(value)


def _split_sides(
    indptr: np.ndarray, indices: np.ndarray, r_set: np.ndarray, r_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expand (itemset row, antecedent bit mask) pairs into antecedent and consequent CSR."""
    lengths = (indptr[r_set + 1] - indptr[r_set]).astype(np.int64)
    rule_of = np.repeat(np.arange(r_set.shape[0], dtype=np.int64), lengths)
    starts = np.zeros(r_set.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    pos = np.arange(rule_of.shape[0], dtype=np.int64) - starts[rule_of]
    flat = indices[indptr[r_set][rule_of] + pos]
    in_antecedent = ((r_mask[rule_of] >> pos) & 1).astype(bool)
    a_idx = flat[in_antecedent]
    c_idx = flat[~in_antecedent]
    n = r_set.shape[0]
    a_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rule_of[in_antecedent], minlength=n), out=a_ptr[1:])
    c_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rule_of[~in_antecedent], minlength=n), out=c_ptr[1:])
    return a_ptr, a_idx.astype(np.int32), c_ptr, c_idx.astype(np.int32)


def _take_csr(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    out_indptr, out_indices = _kernels.take_rows(indptr, indices, rows)
    return out_indptr, out_indices


def _frozensets(
    items: np.ndarray, indptr: np.ndarray, indices: np.ndarray
) -> list[frozenset[Hashable]]:
    labels = items[indices].tolist()
    bounds = indptr.tolist()
    return [frozenset(labels[a:b]) for a, b in itertools.pairwise(bounds)]
