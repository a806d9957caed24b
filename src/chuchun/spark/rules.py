"""Frequent itemsets and association rules on Spark.

Itemsets come from MLlib's FP-growth (Li et al. 2008, the parallel FP-growth). MLlib's own
``associationRules`` only produces rules with a single-item consequent and no support counts, so
chuchun derives every rule :math:`A \\Rightarrow Z \\setminus A` (all consequent sizes, as
:func:`chuchun.rules.association_rules`) from the itemsets with Spark operations: each frequent
itemset :math:`Z` is expanded into its non-empty proper subsets by a bit-mask in Spark SQL, and
the antecedent and consequent counts are joined from the itemsets themselves (both sides are
frequent by downward closure). The metrics use chuchun's formulas in the same order, so they
equal the local ones exactly.

References
----------
H. Li, Y. Wang, D. Zhang, M. Zhang, E. Y. Chang. PFP: parallel FP-growth for query
recommendation. RecSys 2008.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from chuchun._exceptions import ConfigError, DataError
from chuchun._params import HasParams, Param
from chuchun.rules.mining import FrequentItemsets, resolve_min_count
from chuchun.rules.rules import RuleSet
from chuchun.spark._session import get_session
from chuchun.spark.data import _f

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["FPGrowth"]

#: chuchun name -> MLlib name (max_len has no MLlib counterpart: longer itemsets are dropped)
SPARK_NAMES = {"min_support": "minSupport"}


class FPGrowth(HasParams):
    """Frequent itemsets by MLlib's FP-growth, and rules of every consequent size.

    The support threshold is chuchun's: ``min_support`` is a count (int) or a fraction (float)
    turned into the count :math:`\\lceil s n \\rceil` by
    :func:`chuchun.rules.resolve_min_count`, and MLlib is given a fraction that yields exactly
    that count. MLlib has no length limit, so ``max_len`` filters the mined itemsets.

    Attributes (after mining)
    -------------------------
    n_transactions_ : int
    min_count_ : int
    """

    min_support = Param((int, float), 0.01, "Support: fraction in (0, 1] or an int count.",
                        low=0, low_open=True)
    max_len = Param(int, None, "Longest itemset kept (None: no limit).", low=1, nullable=True)
    n_partitions = Param(int, None, "MLlib's numPartitions (None: the input's).", low=1,
                         nullable=True)

    def mine_frame(self, baskets: DataFrame, items_col: str = "items") -> DataFrame:
        """Frequent itemsets of ``baskets`` (one row per transaction, ``items_col`` an array)
        as a DataFrame ``(items, count)``, ``items`` sorted ascending."""
        from pyspark.ml.fpm import FPGrowth as MLlibFPGrowth

        F = _f()
        self._validate_params()
        if items_col not in baskets.columns:
            raise DataError(f"items column {items_col!r} not found; columns are "
                            f"{baskets.columns}")
        tx = baskets.select(F.array_distinct(F.col(items_col)).alias("items")).filter(
            F.size("items") > 0).persist()
        n = int(tx.count())
        if n == 0:
            raise DataError("no transactions: every basket is empty")
        self.n_transactions_ = n
        self.min_count_ = resolve_min_count(self.min_support, n)
        # MLlib keeps itemsets with freq >= ceil(minSupport * n); this fraction gives min_count
        fraction = (self.min_count_ - 0.5) / n
        kwargs: dict[str, Any] = {}
        if self.n_partitions is not None:
            kwargs["numPartitions"] = int(self.n_partitions)
        model = MLlibFPGrowth(itemsCol="items", minSupport=fraction, minConfidence=0.0,
                     **kwargs).fit(tx)
        sets = model.freqItemsets.select(F.array_sort("items").alias("items"),
                                         F.col("freq").alias("count"))
        if self.max_len is not None:
            sets = sets.filter(F.size("items") <= int(self.max_len))
        return sets

    def rules_frame(
        self,
        itemsets: DataFrame,
        min_confidence: float = 0.0,
        min_lift: float | None = None,
        max_consequent_len: int | None = None,
    ) -> DataFrame:
        """Every rule :math:`A \\Rightarrow Z \\setminus A` of the itemsets (``mine_frame``'s
        output), as ``(antecedent, consequent, count, antecedent_count, consequent_count,
        support, confidence, lift, leverage, conviction)``."""
        F = _f()
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ConfigError(f"min_confidence must lie in [0, 1]; got {min_confidence!r}")
        if min_lift is not None and not float(min_lift) >= 0:
            raise ConfigError(f"min_lift must be >= 0 or None; got {min_lift!r}")
        if max_consequent_len is not None and (
            isinstance(max_consequent_len, bool) or not isinstance(max_consequent_len, int)
            or max_consequent_len < 1
        ):
            raise ConfigError(
                f"max_consequent_len must be an integer >= 1 or None; got {max_consequent_len!r}"
            )
        if not hasattr(self, "n_transactions_"):
            raise ConfigError("call mine_frame first: the rules need the transaction count")
        n = float(self.n_transactions_)
        # every non-empty proper subset of a sorted itemset, by bit-mask, in Spark SQL
        subsets = F.expr(
            "transform(sequence(1, cast(pow(2, size(items)) as int) - 2), "
            "m -> filter(items, (x, i) -> (shiftright(m, i) & 1) = 1))"
        )
        sides = (itemsets.filter(F.size("items") >= 2)
                 .select("items", "count", F.explode(subsets).alias("antecedent"))
                 .withColumn("consequent", F.array_except("items", "antecedent")))
        if max_consequent_len is not None:
            sides = sides.filter(F.size("consequent") <= int(max_consequent_len))
        counts = itemsets.select(F.col("items").alias("_k"), F.col("count").alias("_c"))
        rules = (sides
                 .join(counts.withColumnRenamed("_c", "antecedent_count"),
                       F.col("antecedent") == F.col("_k")).drop("_k")
                 .join(counts.withColumnRenamed("_c", "consequent_count"),
                       F.col("consequent") == F.col("_k")).drop("_k", "items"))
        support = F.col("count") / F.lit(n)
        a_sup = F.col("antecedent_count") / F.lit(n)
        c_sup = F.col("consequent_count") / F.lit(n)
        conf = F.col("count") / F.col("antecedent_count")
        rules = rules.select(
            "antecedent", "consequent", "count", "antecedent_count", "consequent_count",
            support.alias("support"), conf.alias("confidence"),
            (conf / c_sup).alias("lift"), (support - a_sup * c_sup).alias("leverage"),
            F.when(conf < 1.0, (F.lit(1.0) - c_sup) / (F.lit(1.0) - conf))
            .otherwise(F.lit(float("inf"))).alias("conviction"),
        )
        rules = rules.filter(F.col("confidence") >= float(min_confidence))
        if min_lift is not None:
            rules = rules.filter(F.col("lift") >= float(min_lift))
        return rules

    # -- collected results ------------------------------------------------------------------------
    def mine(self, baskets: Any, items_col: str = "items") -> FrequentItemsets:
        """Mine ``baskets`` (a DataFrame as in :meth:`mine_frame`, or a list of baskets) and
        collect the itemsets as chuchun's :class:`~chuchun.rules.FrequentItemsets` (item
        labels sorted; the same itemsets and counts as :class:`chuchun.rules.FPGrowth`)."""
        if not hasattr(baskets, "columns"):
            import pandas as pd

            spark = get_session()
            rows = [sorted({str(x) for x in b}) for b in baskets]
            baskets = spark.createDataFrame(pd.DataFrame({items_col: rows}))
        table = self.mine_frame(baskets, items_col).toPandas()
        labels = np.unique(np.concatenate([np.asarray(x) for x in table["items"]])) if len(
            table) else np.empty(0)
        return _itemsets_from(table, labels, self.n_transactions_, self.min_count_)

    def rules(self, itemsets: DataFrame, **kwargs: Any) -> RuleSet:
        """:meth:`rules_frame` collected as chuchun's :class:`~chuchun.rules.RuleSet`."""
        table = self.rules_frame(itemsets, **kwargs).toPandas()
        labels = np.unique(np.concatenate(
            [np.asarray(x) for x in table["antecedent"]] + [np.asarray(x) for x in
                                                              table["consequent"]]
        )) if len(table) else np.empty(0)

        def csr(col: str) -> tuple[np.ndarray, np.ndarray]:
            parts = [np.searchsorted(labels, np.asarray(x)) for x in table[col]]
            ptr = np.r_[0, np.cumsum([len(p) for p in parts])].astype(np.int64)
            idx = np.concatenate(parts).astype(np.int32) if parts else np.empty(0, np.int32)
            return ptr, idx

        a_ptr, a_idx = csr("antecedent")
        c_ptr, c_idx = csr("consequent")
        return RuleSet(labels, a_ptr, a_idx, c_ptr, c_idx,
                       table["count"].to_numpy(np.int64),
                       table["antecedent_count"].to_numpy(np.int64),
                       table["consequent_count"].to_numpy(np.int64), self.n_transactions_)


def _itemsets_from(table: Any, labels: np.ndarray, n: int, min_count: int) -> FrequentItemsets:
    """Collected ``(items, count)`` rows in chuchun's canonical order (length, then items)."""
    sets = [np.searchsorted(labels, np.asarray(x)) for x in table["items"]]
    counts = table["count"].to_numpy(np.int64)
    order = sorted(range(len(sets)), key=lambda r: (len(sets[r]), sets[r].tolist()))
    ptr = np.r_[0, np.cumsum([len(sets[r]) for r in order])].astype(np.int64)
    idx = (np.concatenate([sets[r] for r in order]).astype(np.int32) if order
           else np.empty(0, np.int32))
    return FrequentItemsets(labels, ptr, idx, counts[order], n, min_count)
