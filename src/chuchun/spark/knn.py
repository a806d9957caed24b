"""Explicit-rating item-based kNN on Spark: chuchun's :class:`~chuchun.models.ItemKNN` with the
item-item similarity computed by a distributed self-join.

Every similarity measure of :mod:`chuchun.similarity` that compares two items over the users
who rated both is a function of per-pair sums (co-support :math:`n`, :math:`\\sum a b`,
:math:`\\sum a^2`, :math:`\\sum b^2`, :math:`\\sum a`, :math:`\\sum b`) and per-item totals, so
one join of the (transformed) ratings with themselves on the user, grouped by item pair, gives
the exact local similarity; a window keeps each item's ``max_stored`` best neighbours. The
prediction rule, the neighbour selection and the fallbacks are those of the local model, as
joins and windows over the stored neighbours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import DataError
from chuchun.data.interactions import Interactions
from chuchun.models.knn import _RANK_EPS
from chuchun.models.knn import ItemKNN as _LocalItemKNN
from chuchun.spark.data import SparkInteractions, _f
from chuchun.spark.models import SparkRecommender, als_biases

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["ItemKNN"]


class ItemKNN(SparkRecommender):
    """Item-based neighbourhood model for explicit ratings, fitted on Spark; ``to_local()``
    returns the equivalent :class:`chuchun.models.ItemKNN`.

    .. math:: \\hat r_{ui} = c_i + o_u + d_i \\frac{\\sum_{j \\in N^k_u(i)} s_{ij}
              (r_{uj} - c_j - o_u) / d_j}{\\delta + \\sum_{j \\in N^k_u(i)} s_{ij}}

    with the definitions of the local model: :math:`N^k_u(i)` the ``n_neighbors`` items most
    similar to ``i`` among those ``u`` rated (positive similarities among the ``max_stored``
    kept per item, ties to the lower item index), ``prediction`` choosing the centre
    :math:`c`, offset :math:`o` and scale :math:`d` (``"baseline"``: :math:`c_i = \\mu + b_i,
    o_u = b_u` with ALS biases; ``"mean_centered"``, ``"zscore"``, ``"plain"``), damping
    :math:`\\delta`, similarity shrinkage :math:`n / (n + \\lambda)` over the co-support
    :math:`n` (:math:`n - 1` for ``pearson_baseline``), ``min_support`` and the fallback to
    :math:`c_i + o_u` (the global mean for ``"plain"``) when fewer than ``min_neighbors``
    neighbours qualify. Every measure of the local model is available (``similarity``): each is
    computed exactly from per-pair sums of a self-join of the ratings on the user, whose cost
    is :math:`\\sum_u n_u^2` rows before aggregation.

    ``predict`` clips to the rating scale; ``recommend`` ranks, as the local model does, by
    the unclipped estimate discounted by its neighbour support, :math:`(\hat r_{ui} - r_{\min})
    (w_{ui} + \epsilon) / (w_{ui} + \lambda_r)` with :math:`w_{ui}` the similarity mass of
    the neighbours used (0 for the fallback) and :math:`\lambda_r` = ``ranking_damping`` (the
    estimate itself when 0), over the items reached through a user's neighbours plus, for the
    rest, the best fallback estimates (:math:`c_i + o_u` orders items the same way for every
    user, so only the ``k + |reached|`` best need scoring).

    Parameters
    ----------
    n_neighbors, min_neighbors, similarity, prediction, shrinkage, min_support, damping,
    max_stored, ranking_damping, user_regularization, item_regularization, bias_epochs, clip
        The declarations of :class:`chuchun.models.ItemKNN` (same names, defaults, meaning).

    Attributes
    ----------
    similarity_frame_ : DataFrame ``(i, j, s)``
        The kept neighbours ``j`` of each item ``i`` (indices) and their similarity.
    item_terms_frame_ : DataFrame ``(item_idx, bi, mean, std)``
        Item bias, mean rating and rating standard deviation (the global one where an item's
        is zero).
    user_bias_frame_ : DataFrame ``(user_idx, bu)``
    rating_std_ : float

    References
    ----------
    B. Sarwar, G. Karypis, J. Konstan, J. Riedl. Item-based collaborative filtering
    recommendation algorithms. WWW 2001. Y. Koren. Factor in the neighbors. TKDD 2010.
    """

    local_class = _LocalItemKNN
    n_neighbors = _LocalItemKNN.n_neighbors
    min_neighbors = _LocalItemKNN.min_neighbors
    similarity = _LocalItemKNN.similarity
    prediction = _LocalItemKNN.prediction
    shrinkage = _LocalItemKNN.shrinkage
    min_support = _LocalItemKNN.min_support
    damping = _LocalItemKNN.damping
    max_stored = _LocalItemKNN.max_stored
    ranking_damping = _LocalItemKNN.ranking_damping
    user_regularization = _LocalItemKNN.user_regularization
    item_regularization = _LocalItemKNN.item_regularization
    bias_epochs = _LocalItemKNN.bias_epochs
    clip = _LocalItemKNN.clip

    predicts_ratings: ClassVar[bool] = True

    # -- fit ----------------------------------------------------------------------------------
    def _fit(self, data: SparkInteractions) -> None:
        F = _f()
        if not data.has_ratings:
            raise DataError(
                "ItemKNN needs explicit ratings; the interaction log has no rating column "
                "(use ImplicitItemKNN for implicit feedback)"
            )
        mu = self.global_mean_
        bu, bi = als_biases(data, mu, int(self.bias_epochs), float(self.user_regularization),
                            float(self.item_regularization))
        ratings = data.frame.select("user_idx", "item_idx", "rating")
        self.rating_std_ = float(ratings.agg(F.stddev_pop("rating")).collect()[0][0] or 0.0)
        stats = ratings.groupBy("item_idx").agg(F.avg("rating").alias("mean"),
                                                F.stddev_pop("rating").alias("sigma"))
        self.item_terms_frame_ = (
            stats.join(bi, "item_idx", "left")
            .select("item_idx", F.coalesce(F.col("bi"), F.lit(0.0)).alias("bi"), "mean",
                    F.when(F.col("sigma") > 0, F.col("sigma"))
                    .otherwise(F.lit(self.rating_std_)).alias("std"))
            .localCheckpoint()
        )
        self.user_bias_frame_ = bu
        self.similarity_frame_ = self._similarities(ratings, mu, bu, bi).localCheckpoint()

    def _similarities(self, ratings: DataFrame, mu: float, bu: DataFrame,
                      bi: DataFrame) -> DataFrame:
        """``(i, j, s)``: each item's ``max_stored`` best neighbours, as
        :func:`chuchun.similarity.similarity` over the items x users rating matrix."""
        F = _f()
        measure = self.similarity
        value = F.col("rating")
        offset = 0
        if measure == "adjusted_cosine":
            means = ratings.groupBy("user_idx").agg(F.avg("rating").alias("_m"))
            ratings = ratings.join(means, "user_idx")
            value = F.col("rating") - F.col("_m")
        elif measure == "pearson_baseline":
            ratings = ratings.join(bu, "user_idx").join(bi, "item_idx")
            value = F.col("rating") - (F.lit(float(mu)) + F.col("bi") + F.col("bu"))
            offset = 1
        elif measure == "jaccard":
            value = F.lit(1.0)
        v = ratings.select("user_idx", "item_idx", value.cast("double").alias("v")).persist()
        totals = v.groupBy("item_idx").agg(F.sqrt(F.sum(F.col("v") * F.col("v"))).alias("norm"),
                                           F.count(F.lit(1)).cast("double").alias("nnz"))
        a = v.select("user_idx", F.col("item_idx").alias("i"), F.col("v").alias("a"))
        b = v.select("user_idx", F.col("item_idx").alias("j"), F.col("v").alias("b"))
        pairs = (a.join(b, "user_idx").filter(F.col("i") < F.col("j")).groupBy("i", "j")
                 .agg(F.count(F.lit(1)).cast("double").alias("n"),
                      F.sum(F.col("a") * F.col("b")).alias("sab"),
                      F.sum(F.col("a") * F.col("a")).alias("saa"),
                      F.sum(F.col("b") * F.col("b")).alias("sbb"),
                      F.sum("a").alias("sa"), F.sum("b").alias("sb")))
        min_support = int(self.min_support)
        if measure == "pearson_baseline":
            min_support = max(2, min_support)
        pairs = pairs.filter(F.col("n") >= F.lit(float(min_support)))
        ti = totals.select(F.col("item_idx").alias("i"), F.col("norm").alias("norm_i"),
                           F.col("nnz").alias("nnz_i"))
        tj = totals.select(F.col("item_idx").alias("j"), F.col("norm").alias("norm_j"),
                           F.col("nnz").alias("nnz_j"))
        pairs = pairs.join(ti, "i").join(tj, "j")
        s = _measure_column(measure)
        if self.shrinkage > 0:
            nn = F.col("n") - F.lit(float(offset))
            s = F.when(nn > 0, s * nn / (nn + F.lit(float(self.shrinkage)))).otherwise(0.0)
        upper = pairs.select("i", "j", s.alias("s")).filter(
            (F.col("s") != 0) & ~F.isnan("s") & (F.abs(F.col("s")) != float("inf")))
        both = upper.unionByName(upper.select(F.col("j").alias("i"), F.col("i").alias("j"), "s"))
        if self.max_stored is None:
            return both
        from pyspark.sql import Window

        # "auto": what the local model keeps, twice the neighbours prediction uses
        keep = 2 * int(self.n_neighbors) if self.max_stored == "auto" else int(self.max_stored)
        w = Window.partitionBy("i").orderBy(F.col("s").desc(), F.col("j").asc())
        return both.withColumn("_r", F.row_number().over(w)).filter(
            F.col("_r") <= keep).drop("_r")

    # -- the prediction rule ------------------------------------------------------------------
    def _terms(self) -> tuple[DataFrame, DataFrame]:
        """``(item_idx, c, d)`` and ``(user_idx, o)``: centre and scale of every item, offset
        of every user, for the configured ``prediction``."""
        F = _f()
        items = self.item_terms_frame_
        zero, one = F.lit(0.0), F.lit(1.0)
        center, scale, offset = {
            "plain": (zero, one, zero),
            "mean_centered": (F.col("mean"), one, zero),
            "zscore": (F.col("mean"), F.col("std"), zero),
            "baseline": (F.lit(self.global_mean_) + F.col("bi"), one, F.col("bu")),
        }[self.prediction]
        return (items.select("item_idx", center.alias("c"), scale.alias("d")),
                self.user_bias_frame_.select("user_idx", offset.alias("o")))

    def _estimates(self, neighbours: DataFrame) -> DataFrame:
        """``(user_idx, item_idx, est)`` (unclipped) from candidate neighbour rows
        ``(user_idx, item_idx, j, r, s)`` (``s > 0``: item ``j``, rated ``r`` by the user, is
        a stored neighbour of ``item_idx``)."""
        F = _f()
        from pyspark.sql import Window

        item_terms, user_terms = self._terms()
        nb_terms = item_terms.select(F.col("item_idx").alias("j"), F.col("c").alias("cj"),
                                     F.col("d").alias("dj"))
        rows = neighbours.join(nb_terms, "j").join(user_terms, "user_idx")
        w = Window.partitionBy("user_idx", "item_idx").orderBy(F.col("s").desc(),
                                                               F.col("j").asc())
        top = rows.withColumn("_r", F.row_number().over(w)).filter(
            F.col("_r") <= int(self.n_neighbors))
        dev = (F.col("r") - F.col("cj") - F.col("o")) / F.col("dj")
        agg = top.groupBy("user_idx", "item_idx").agg(
            F.sum(F.col("s") * dev).alias("_num"), F.sum("s").alias("_den"),
            F.count(F.lit(1)).alias("_cnt"))
        return self._finish(agg, item_terms, user_terms)

    def _finish(self, agg: DataFrame, item_terms: DataFrame, user_terms: DataFrame) -> DataFrame:
        """The estimate from the aggregates ``(user_idx, item_idx, _num, _den, _cnt)`` (null
        aggregates: no neighbour, the fallback)."""
        F = _f()
        ratio = F.when(F.col("_den") > 0, F.col("_num") / F.col("_den")).otherwise(0.0)
        if self.damping > 0:
            ratio = ratio * (F.col("_den") / (F.col("_den") + F.lit(float(self.damping))))
        base = F.col("c") + F.col("o")
        est = base + F.col("d") * ratio
        fallback = F.lit(self.global_mean_) if self.prediction == "plain" else base
        enough = F.coalesce(F.col("_cnt"), F.lit(0)) >= max(int(self.min_neighbors), 1)
        return (agg.join(item_terms, "item_idx").join(user_terms, "user_idx")
                .select("user_idx", "item_idx",
                        F.when(enough, est).otherwise(fallback).alias("est"),
                        F.when(enough, F.col("_den")).otherwise(0.0).alias("_mass")))

    def _user_ratings(self) -> DataFrame:
        F = _f()
        return self.data_.frame.select("user_idx", F.col("item_idx").alias("j"),
                                       F.col("rating").alias("r"))

    def _positive_similarities(self) -> DataFrame:
        F = _f()
        return self.similarity_frame_.filter(F.col("s") > 0).select(
            F.col("i").alias("item_idx"), "j", "s")

    def _predict_idx(self, pairs: DataFrame) -> DataFrame:
        F = _f()
        keys = pairs.select("user_idx", "item_idx").distinct()
        neighbours = (keys.join(self._user_ratings(), "user_idx")
                      .join(self._positive_similarities(), ["item_idx", "j"]))
        reached = self._estimates(neighbours)
        unreached = keys.join(reached.select("user_idx", "item_idx"),
                              ["user_idx", "item_idx"], "left_anti")
        item_terms, user_terms = self._terms()
        empty = unreached.select("user_idx", "item_idx", F.lit(None).cast("double").alias("_num"),
                                 F.lit(None).cast("double").alias("_den"),
                                 F.lit(None).cast("long").alias("_cnt"))
        est = reached.unionByName(self._finish(empty, item_terms, user_terms))
        return pairs.join(est.drop("_mass"), ["user_idx", "item_idx"], "left").withColumn(
            "prediction", self._clip_column(F.col("est"))).drop("est")

    def _fallback_idx(self, pairs: DataFrame) -> DataFrame:
        # an unknown user or item: the global mean, or with "baseline" the biases known
        F = _f()
        if self.prediction != "baseline":
            return pairs.withColumn("prediction", F.lit(self.global_mean_).cast("double"))
        est = (F.lit(self.global_mean_) + F.coalesce(F.col("bu"), F.lit(0.0))
               + F.coalesce(F.col("bi"), F.lit(0.0)))
        return (pairs.join(self.user_bias_frame_, "user_idx", "left")
                .join(self.item_terms_frame_.select("item_idx", "bi"), "item_idx", "left")
                .withColumn("prediction", self._clip_column(est)).drop("bu", "bi"))

    def _candidates(self, user_idx: DataFrame, n: int) -> DataFrame:
        """The reached items with their estimate, and each user's ``n + |reached|`` items of
        highest fallback estimate (the fallback orders items identically for every user, so
        the ``n`` best unreached items are among them)."""
        F = _f()
        from pyspark.sql import Window

        neighbours = (user_idx.join(self._user_ratings(), "user_idx")
                      .join(self._positive_similarities(), "j"))
        reached = self._estimates(neighbours).persist()
        sizes = user_idx.join(reached.groupBy("user_idx").agg(F.count(F.lit(1)).alias("_R")),
                              "user_idx", "left").fillna(0, ["_R"])
        item_terms, user_terms = self._terms()
        order = [F.col("item_idx").asc()]
        if self.prediction != "plain":
            order.insert(0, F.col("c").desc())
        ranked = item_terms.select("item_idx", "c").withColumn(
            "_g", F.row_number().over(Window.orderBy(*order))).select("item_idx", "_g")
        best = (sizes.crossJoin(F.broadcast(ranked))
                .filter(F.col("_g") <= F.col("_R") + F.lit(int(n)))
                .select("user_idx", "item_idx")
                .join(reached.select("user_idx", "item_idx"), ["user_idx", "item_idx"],
                      "left_anti"))
        empty = best.select("user_idx", "item_idx", F.lit(None).cast("double").alias("_num"),
                            F.lit(None).cast("double").alias("_den"),
                            F.lit(None).cast("long").alias("_cnt"))
        fallback = self._finish(empty, item_terms, user_terms)
        both = reached.unionByName(fallback)
        if self.ranking_damping == 0:
            score = F.col("est")
        else:  # the local model's ranking score (chuchun.models.knn, _ranking)
            floor = float(self.rating_scale_[0]) if self.rating_scale_ is not None else 0.0
            score = ((F.col("est") - F.lit(floor)) * (F.col("_mass") + F.lit(_RANK_EPS))
                     / (F.col("_mass") + F.lit(float(self.ranking_damping))))
        return both.select("user_idx", "item_idx", score.alias("score"))

    # -- to and from local ----------------------------------------------------------------------
    def similarity_matrix(self) -> sp.csr_matrix:
        """The kept neighbours as the local items x items CSR (float64, sorted indices)."""
        self._check_fitted()
        table = self.similarity_frame_.toPandas()
        n = self.n_items_
        m = sp.csr_matrix((table["s"].to_numpy(np.float64),
                           (table["i"].to_numpy(np.int64), table["j"].to_numpy(np.int64))),
                          shape=(n, n), dtype=np.float64)
        m.sort_indices()
        return m

    def _export(self, model: Any, data: Interactions) -> None:
        terms = self.item_terms_frame_.toPandas()
        users = self.user_bias_frame_.toPandas()
        n_items, n_users = data.n_items, data.n_users
        rows = terms["item_idx"].to_numpy(np.int64)
        mean = np.full(n_items, float(self.global_mean_))
        std = np.full(n_items, float(self.rating_std_))
        bi = np.zeros(n_items)
        mean[rows] = terms["mean"].to_numpy(np.float64)
        std[rows] = terms["std"].to_numpy(np.float64)
        bi[rows] = terms["bi"].to_numpy(np.float64)
        bu = np.zeros(n_users)
        bu[users["user_idx"].to_numpy(np.int64)] = users["bu"].to_numpy(np.float64)
        raters = data.csr.astype(np.float32)
        raters.sort_indices()
        model.similarity_ = self.similarity_matrix()
        model.raters_ = raters
        model.row_mean_, model.row_std_ = mean, std
        model.rating_std_ = float(self.rating_std_)
        model.user_bias_, model.item_bias_ = bu, bi
        model.global_mean_ = float(self.global_mean_)

    def _import(self, model: Any, spark: Any) -> None:
        import pandas as pd

        s = model.similarity_.tocoo()
        self.similarity_frame_ = spark.createDataFrame(pd.DataFrame(
            {"i": s.row.astype(np.int32), "j": s.col.astype(np.int32),
             "s": s.data.astype(np.float64)}))
        n_items = len(model.item_bias_)
        self.item_terms_frame_ = spark.createDataFrame(pd.DataFrame(
            {"item_idx": np.arange(n_items, dtype=np.int32),
             "bi": np.asarray(model.item_bias_, dtype=np.float64),
             "mean": np.asarray(model.row_mean_, dtype=np.float64),
             "std": np.asarray(model.row_std_, dtype=np.float64)}))
        self.user_bias_frame_ = spark.createDataFrame(pd.DataFrame(
            {"user_idx": np.arange(len(model.user_bias_), dtype=np.int32),
             "bu": np.asarray(model.user_bias_, dtype=np.float64)}))
        self.rating_std_ = float(model.rating_std_)


def _measure_column(measure: str) -> Any:
    """The similarity of an item pair from its sums (columns ``n, sab, saa, sbb, sa, sb``) and
    the items' full norms and counts, as the local kernel computes it."""
    F = _f()
    n, sab, saa, sbb = F.col("n"), F.col("sab"), F.col("saa"), F.col("sbb")
    if measure == "cosine":
        den = F.col("norm_i") * F.col("norm_j")
        return F.when(den > 0, sab / den).otherwise(0.0)
    if measure in ("corated_cosine", "adjusted_cosine", "pearson_baseline"):
        den = saa * sbb
        return F.when(den > 0, sab / F.sqrt(den)).otherwise(0.0)
    if measure == "pearson":
        sa, sb = F.col("sa"), F.col("sb")
        den = (n * saa - sa * sa) * (n * sbb - sb * sb)
        return F.when(den > 0, (n * sab - sa * sb) / F.sqrt(den)).otherwise(0.0)
    if measure == "jaccard":
        return n / (F.col("nnz_i") + F.col("nnz_j") - n)
    d2 = F.greatest(saa + sbb - F.lit(2.0) * sab, F.lit(0.0))
    if measure == "euclidean":
        return F.lit(1.0) / (F.lit(1.0) + F.sqrt(d2))
    if measure == "msd":
        return F.lit(1.0) / (F.lit(1.0) + d2 / n)
    raise DataError(f"similarity {measure!r} has no Spark implementation")
