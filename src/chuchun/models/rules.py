"""Association-rule recommender: "users who have A also have B", with the rule as explanation."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from chuchun._exceptions import DataError
from chuchun._params import Param
from chuchun.data.interactions import Interactions
from chuchun.kernels.rules import score_baskets
from chuchun.models._base import Recommender
from chuchun.models._results import Reason
from chuchun.rules.baskets import Transactions
from chuchun.rules.mining import FPGrowth
from chuchun.rules.rules import RuleSet, format_items

__all__ = ["AssociationRules"]


class AssociationRules(Recommender):
    """Recommend the consequents of association rules whose antecedent a user's basket contains.

    Each user's items (only those rated at least ``min_rating`` when it is set) form one
    transaction. FP-growth finds the itemsets with support :math:`\\ge` ``min_support`` and at
    most ``max_len`` items, and the rules :math:`A \\Rightarrow \\{i\\}` with a single-item
    consequent, confidence :math:`\\ge` ``min_confidence`` and lift :math:`\\ge` ``min_lift`` are
    kept. A user with basket :math:`B_u` scores item :math:`i` by the best confidence of a rule
    that applies:

    .. math::

        s_{ui} = \\max\\Big(\\pi_i,\\; \\max_{A \\subseteq B_u,\\; (A \\Rightarrow i) \\in \\mathcal{R}}
                 \\frac{\\sigma(A \\cup \\{i\\})}{\\sigma(A)}\\Big), \\qquad \\pi_i = \\frac{\\sigma(\\{i\\})}{n}

    where :math:`\\pi_i` is the confidence of the rule with an empty antecedent, which every
    basket contains; items no rule reaches are therefore ranked by popularity, below any rule
    that beats their base rate (lift > 1). Exact ties keep the lower item index first.
    ``predict`` returns :math:`s_{ui}`, an estimate of :math:`P(i \\mid B_u)`.

    Users unseen in training are scored from a given history (fold-in) by the same formula.

    Parameters
    ----------
    min_support : float or int
        Itemset support threshold: a fraction of users in (0, 1] (float) or a count (int).
    min_confidence : float
        Smallest confidence of a kept rule.
    min_lift : float or None
        Smallest lift of a kept rule; ``None`` keeps all.
    max_len : int or None
        Longest itemset mined (antecedent plus the consequent).
    min_rating : float or None
        Only interactions rated at least this form the baskets; ``None`` uses them all.
    max_itemsets : int
        Mining guard (see :class:`chuchun.rules.FPGrowth`).

    Attributes
    ----------
    n_transactions_ : int
        Number of non-empty baskets mined.
    item_prior_ : ndarray of float64, shape (n_items,)
        :math:`\\pi_i`.
    rule_antecedent_indptr_, rule_antecedent_indices_ : ndarray
        Rule antecedents, CSR over item indices (ascending).
    rule_consequent_ : ndarray of int32
    rule_confidence_, rule_lift_, rule_support_ : ndarray of float64
    rule_count_, rule_antecedent_count_ : ndarray of int64
        :math:`\\sigma(A \\cup \\{i\\})` and :math:`\\sigma(A)`.
    rule_first_indptr_, rule_first_order_ : ndarray of int64
        The rules grouped by the smallest item of their antecedent (the scoring index).

    References
    ----------
    R. Agrawal, T. Imieliński, A. Swami. Mining association rules between sets of items in large
    databases. SIGMOD 1993. B. Sarwar, G. Karypis, J. Konstan, J. Riedl. Analysis of
    recommendation algorithms for e-commerce. EC 2000 (rule-based top-N recommendation).
    """

    # int first, so that "5" on the command line parses as a count and "0.05" as a fraction
    min_support = Param(
        (int, float),
        0.01,
        "Itemset support: fraction of users in (0, 1] or an int count.",
        low=0,
        low_open=True,
    )
    min_confidence = Param(float, 0.1, "Smallest confidence of a rule.", low=0, high=1)
    min_lift = Param(float, None, "Smallest lift of a rule (None: no limit).", low=0, nullable=True)
    max_len = Param(
        int, 3, "Longest itemset (antecedent + consequent); None: no limit.", low=2, nullable=True
    )
    min_rating = Param(
        float, None, "Only ratings >= this form the baskets (None: all).", nullable=True
    )
    max_itemsets = Param(int, 5_000_000, "Stop mining after this many itemsets.", low=1)

    supports_fold_in = True
    explain_method = ("the rules whose antecedent the user's basket contains, by confidence, "
                      "and the item's base rate; the score is the largest (not a sum)")
    _test_params: ClassVar[dict[str, Any]] = {"min_support": 0.1, "min_confidence": 0.2}

    # -- fitting ------------------------------------------------------------------------------
    def _fit(self, data: Interactions) -> None:
        tx = self._transactions(data)
        itemsets = FPGrowth(
            min_support=self.min_support, max_len=self.max_len, max_itemsets=self.max_itemsets
        ).mine(tx)
        rules = itemsets.rules(
            min_confidence=self.min_confidence, min_lift=self.min_lift, max_consequent_len=1
        )
        self.n_transactions_ = tx.n_transactions
        self.item_prior_ = tx.item_counts() / tx.n_transactions
        self.rule_antecedent_indptr_ = rules.antecedent_indptr
        self.rule_antecedent_indices_ = rules.antecedent_indices.astype(np.int32)
        self.rule_consequent_ = rules.consequent_indices.astype(np.int32)
        self.rule_confidence_ = rules.confidence
        self.rule_lift_ = rules.lift
        self.rule_support_ = rules.support
        self.rule_count_ = rules.counts
        self.rule_antecedent_count_ = rules.antecedent_counts
        first = self.rule_antecedent_indices_[self.rule_antecedent_indptr_[:-1]]
        order = np.argsort(first, kind="stable").astype(np.int64)
        self.rule_first_order_ = order
        self.rule_first_indptr_ = np.zeros(len(self.items_) + 1, dtype=np.int64)
        np.cumsum(np.bincount(first, minlength=len(self.items_)), out=self.rule_first_indptr_[1:])

    def _transactions(self, data: Interactions) -> Transactions:
        csr = data.csr
        if self.min_rating is not None:
            if not data.has_ratings:
                raise DataError("min_rating is set but the interaction log has no ratings")
            csr = csr.copy()
            csr.data = np.where(csr.data >= self.min_rating, 1.0, 0.0).astype(np.float32)
            csr.eliminate_zeros()
        lengths = np.diff(csr.indptr)
        rows = np.flatnonzero(lengths > 0)
        if rows.shape[0] == 0:
            raise DataError(
                f"no user has an interaction rated >= min_rating={self.min_rating}; "
                "lower min_rating or set it to None"
            )
        csr = csr[rows]
        csr.sort_indices()
        return Transactions(
            items=np.arange(data.n_items),
            indptr=csr.indptr.astype(np.int64),
            indices=csr.indices.astype(np.int32),
        )

    # -- scoring ------------------------------------------------------------------------------
    def _score_csr(self, baskets: sp.csr_matrix) -> np.ndarray:
        out = np.empty((baskets.shape[0], len(self.items_)), dtype=np.float32)
        score_baskets(
            baskets.indptr.astype(np.int64),
            baskets.indices.astype(np.int32),
            self.rule_first_indptr_,
            self.rule_first_order_,
            self.rule_antecedent_indptr_,
            self.rule_antecedent_indices_,
            self.rule_consequent_,
            self.rule_confidence_,
            self.item_prior_.astype(np.float64),
            out,
        )
        return out

    def _baskets_of(self, user_idx: np.ndarray) -> sp.csr_matrix:
        seen = self.seen_[user_idx]
        if self.min_rating is not None:
            seen = seen.copy()
            seen.data = np.where(seen.data >= self.min_rating, 1.0, 0.0).astype(np.float32)
            seen.eliminate_zeros()
        seen.sort_indices()
        return seen

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._score_csr(self._baskets_of(np.asarray(user_idx)))

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        if self.min_rating is not None:
            history = history.copy()
            history.data = np.where(history.data >= self.min_rating, 1.0, 0.0).astype(np.float32)
            history.eliminate_zeros()
        history = history.tocsr()
        history.sort_indices()
        return self._score_csr(history)

    # -- rules as results ---------------------------------------------------------------------
    @property
    def rules_(self) -> RuleSet:
        """The kept rules as a :class:`~chuchun.rules.RuleSet` labelled with item ids."""
        self._check_fitted()
        n = self.n_transactions_
        cons_counts = np.rint(self.item_prior_[self.rule_consequent_] * n).astype(np.int64)
        return RuleSet(
            self.items_.ids,
            self.rule_antecedent_indptr_,
            self.rule_antecedent_indices_,
            np.arange(len(self.rule_consequent_) + 1, dtype=np.int64),
            self.rule_consequent_,
            self.rule_count_,
            self.rule_antecedent_count_,
            cons_counts,
            n,
        )

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        """The applicable rules ``A -> item`` (``kind="rule"``, contribution = confidence) and
        the item's base rate (``kind="popularity"``); the score is the largest of them, so the
        reasons are not additive."""
        basket = set(self._baskets_of(np.array([user_idx])).indices.tolist())
        candidates = np.flatnonzero(self.rule_consequent_ == item_idx)
        applicable = [
            r for r in candidates.tolist() if basket.issuperset(self._antecedent(r).tolist())
        ]
        applicable.sort(key=lambda r: (-self.rule_confidence_[r], -self.rule_lift_[r], r))
        consequent = _plain(self.items_.ids[item_idx])
        reasons = []
        for r in applicable:
            antecedent = [_plain(x) for x in self.items_.ids[self._antecedent(r)]]
            reasons.append(Reason(
                kind="rule",
                id=f"{format_items(antecedent)} \u2192 {consequent}",
                contribution=float(self.rule_confidence_[r]),
                detail={
                    "antecedent": antecedent,
                    "consequent": consequent,
                    "confidence": float(self.rule_confidence_[r]),
                    "lift": float(self.rule_lift_[r]),
                    "support": float(self.rule_support_[r]),
                },
            ))
        prior = float(self.item_prior_[item_idx])
        reasons.append(Reason(kind="popularity", id="base rate", contribution=prior,
                              detail={"share_of_users": prior}))
        score = float(self._score(np.array([user_idx]))[0, item_idx])
        return score, reasons

    def bought_together(self, item: Any, k: int = 10) -> pd.DataFrame:
        """Items most often found with ``item``: the rules ``{item} → j``, best first.

        Returns
        -------
        pandas.DataFrame
            Columns ``item``, ``confidence``, ``lift``, ``support``; at most ``k`` rows, ordered
            by confidence, then lift. Empty when no single-item rule starts from ``item``.
        """
        self._check_fitted()
        from chuchun.models._base import _check_k

        _check_k(k)
        i = int(self._map(self.items_, [item], "item", "error")[0])
        lengths = np.diff(self.rule_antecedent_indptr_)
        starts = self.rule_antecedent_indptr_[:-1]
        single = np.flatnonzero((lengths == 1) & (self.rule_antecedent_indices_[starts] == i))
        order = single[np.lexsort((-self.rule_lift_[single], -self.rule_confidence_[single]))][:k]
        return pd.DataFrame(
            {
                "item": self.items_.ids[self.rule_consequent_[order]],
                "confidence": self.rule_confidence_[order],
                "lift": self.rule_lift_[order],
                "support": self.rule_support_[order],
            }
        )

    def _antecedent(self, rule: int) -> np.ndarray:
        a, b = self.rule_antecedent_indptr_[rule], self.rule_antecedent_indptr_[rule + 1]
        return self.rule_antecedent_indices_[a:b]


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
