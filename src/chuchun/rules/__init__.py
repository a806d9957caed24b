"""Market-basket analysis: frequent itemsets and association rules.

>>> from chuchun.rules import FPGrowth, read_baskets
>>> tx = read_baskets("groceries.csv")                        # doctest: +SKIP
>>> itemsets = FPGrowth(min_support=0.01).mine(tx)             # doctest: +SKIP
>>> itemsets.rules(min_confidence=0.2).sort("lift").to_pandas()  # doctest: +SKIP

The rule-based recommender built on these is :class:`chuchun.models.AssociationRules`.
"""

from chuchun.rules.baskets import Transactions, as_transactions, read_baskets
from chuchun.rules.mining import Apriori, FPGrowth, FrequentItemsets, resolve_min_count
from chuchun.rules.rules import METRICS, RuleSet, association_rules, format_items

__all__ = [
    "METRICS",
    "Apriori",
    "FPGrowth",
    "FrequentItemsets",
    "RuleSet",
    "Transactions",
    "as_transactions",
    "association_rules",
    "format_items",
    "read_baskets",
    "resolve_min_count",
]
