"""chuchun's models on Spark: MLlib where it has the algorithm, Spark's primitives where not.

Each class keeps the hyperparameter names (and, where it can, the very declarations) of the
chuchun model of the same name, maps them to MLlib's in one table (``spark_names``), fits on a
:class:`~chuchun.spark.SparkInteractions`, scores at scale (``recommend``, ``predict`` return
Spark DataFrames) and comes back with :meth:`SparkRecommender.to_local` as the ordinary chuchun
model, which saves as a normal artifact and serves. ``from_local`` goes the other way, to score
with a locally trained model at scale.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError, NotFittedError
from chuchun._params import HasParams, Param
from chuchun.data.interactions import Interactions
from chuchun.models.baseline import BaselineOnly as _LocalBaselineOnly
from chuchun.models.knn import ImplicitItemKNN as _LocalItemKNN
from chuchun.models.mf import ALS as _LocalALS
from chuchun.models.rules import AssociationRules as _LocalRules
from chuchun.spark._session import get_session
from chuchun.spark.data import SparkInteractions, _f

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from chuchun.models._base import Recommender

__all__ = [
    "ALS",
    "AssociationRules",
    "BaselineOnly",
    "ImplicitALS",
    "ImplicitItemKNN",
    "Popularity",
    "SparkRecommender",
]


def _local_param_names(cls: type[HasParams]) -> set[str]:
    return set(cls.param_specs())


class SparkRecommender(HasParams, abc.ABC):
    """Base of the Spark models: fit on :class:`SparkInteractions`, score into DataFrames,
    come back with :meth:`to_local`.

    Fitted attributes shared by every model: ``data_`` (the training log), ``n_users_``,
    ``n_items_``, ``global_mean_``, ``rating_scale_``.
    """

    #: chuchun hyperparameter name -> MLlib parameter name (empty where no MLlib estimator runs)
    spark_names: ClassVar[dict[str, str]] = {}
    #: whether ``predict`` estimates ratings
    predicts_ratings: ClassVar[bool] = False

    def fit(self, data: SparkInteractions) -> Self:
        """Learn from ``data``; a refit starts from scratch. Returns ``self``."""
        F = _f()
        if not isinstance(data, SparkInteractions):
            raise DataError(
                f"fit expects a chuchun.spark.SparkInteractions; got {type(data).__name__}. "
                "Build one with SparkInteractions.from_frame(...) or from_parquet(...)"
            )
        self._validate_params()
        stats = data.frame.agg(F.count(F.lit(1)), F.avg("rating"), F.min("rating"),
                               F.max("rating")).collect()[0]
        if stats[0] == 0:
            raise DataError("cannot fit on an empty interaction log")
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)
        self.data_ = data
        self.n_users_ = data.n_users
        self.n_items_ = data.n_items
        self.global_mean_ = float(stats[1]) if data.has_ratings else 1.0
        self.rating_scale_ = (
            list(data.rating_scale) if data.rating_scale is not None
            else ([float(stats[2]), float(stats[3])] if data.has_ratings else None)
        )
        self._fit(data)
        return self

    @abc.abstractmethod
    def _fit(self, data: SparkInteractions) -> None:
        """Learn from ``data`` (``data_`` and the shared attributes are set already)."""

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "data_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(spark_interactions) first"
            )

    # -- scoring at scale -----------------------------------------------------------------------
    def recommend(
        self, users: Any = None, k: int = 10, *, exclude_seen: bool = True
    ) -> DataFrame:
        """Top-``k`` items of each user as a DataFrame ``(user_id, rank, item_id, score)``.

        ``users``: ``None`` for every training user, a DataFrame with a ``user_id`` column, or
        a list of ids. Users unseen in training get no rows. Ties keep the lower item index
        first, as locally.
        """
        self._check_fitted()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive int; got {k!r}")
        user_idx = self._user_index(users)
        recs = self._recommend_idx(user_idx, k, exclude_seen)
        return self.data_.with_ids(recs).select("user_id", "rank", "item_id", "score")

    def _user_index(self, users: Any) -> DataFrame:
        F = _f()
        data = self.data_
        if users is None:
            return data.users.select("user_idx")
        if not hasattr(users, "columns"):
            ids = list(np.asarray(users).reshape(-1).tolist())
            kind = data.users.schema["user_id"].dataType.simpleString()
            users = data.users.sparkSession.createDataFrame([(x,) for x in ids],
                                                            f"user_id {kind}")
        if "user_id" not in users.columns:
            raise DataError(f"users needs a 'user_id' column; columns are {users.columns}")
        key = users.select(F.col("user_id").cast(data.users.schema["user_id"].dataType))
        return key.distinct().join(data.users, "user_id").select("user_idx")

    def _recommend_idx(self, user_idx: DataFrame, k: int, exclude_seen: bool) -> DataFrame:
        """``(user_idx, item_idx, score, rank)``: the default scores candidate pairs from
        :meth:`_candidates` and keeps the top ``k``."""
        F = _f()
        scores = self._candidates(user_idx, k + (self._max_seen() if exclude_seen else 0))
        if exclude_seen:
            seen = self.data_.frame.select("user_idx", "item_idx")
            scores = scores.join(seen, ["user_idx", "item_idx"], "left_anti")
        return _top_k(scores.filter(~F.isnan("score")), k)

    def _candidates(self, user_idx: DataFrame, n: int) -> DataFrame:
        """``(user_idx, item_idx, score)`` holding at least each user's ``n`` best items."""
        raise TypeError(f"{type(self).__name__} overrides neither _candidates nor _recommend_idx")

    def _user_counts(self) -> DataFrame:
        """``(user_idx, _n)``: each training user's number of interactions (cached)."""
        if not hasattr(self, "user_counts_"):
            F = _f()
            self.user_counts_ = self.data_.frame.groupBy("user_idx").agg(
                F.count(F.lit(1)).alias("_n")).persist()
        return self.user_counts_

    def _max_seen(self) -> int:
        if not hasattr(self, "max_seen_"):
            F = _f()
            row = self._user_counts().agg(F.max("_n")).collect()[0]
            self.max_seen_ = int(row[0] or 0)
        return self.max_seen_

    def predict(self, pairs: DataFrame) -> DataFrame:
        """``pairs`` (columns ``user_id``, ``item_id``) with a ``prediction`` column; pairs
        with an unknown user or item get the model's fallback (the global mean for rating
        models, NaN otherwise), as ``Recommender.predict(..., unknown="fallback")``."""
        self._check_fitted()
        F = _f()
        data = self.data_
        for col in ("user_id", "item_id"):
            if col not in pairs.columns:
                raise DataError(f"pairs needs a {col!r} column; columns are {pairs.columns}")
        idx = pairs.join(data.users, "user_id", "left").join(data.items, "item_id", "left")
        is_known = F.col("user_idx").isNotNull() & F.col("item_idx").isNotNull()
        scored = self._predict_idx(idx.filter(is_known))
        fallback = self._fallback_idx(idx.filter(~is_known))
        return scored.unionByName(fallback).drop("user_idx", "item_idx")

    def _fallback_idx(self, pairs: DataFrame) -> DataFrame:
        """``pairs`` whose user or item index is null, with the fallback ``prediction``."""
        F = _f()
        fill = self.global_mean_ if self.predicts_ratings else float("nan")
        return pairs.withColumn("prediction", F.lit(fill).cast("double"))

    def _predict_idx(self, pairs: DataFrame) -> DataFrame:
        """``pairs`` (known ``user_idx``, ``item_idx`` and other columns, all kept) with a
        ``prediction`` column."""
        raise ConfigError(f"{type(self).__name__} has no pairwise prediction on Spark")

    def _clip_column(self, col: Any) -> Any:
        F = _f()
        if getattr(self, "clip", False) and self.rating_scale_ is not None:
            low, high = self.rating_scale_
            return F.least(F.greatest(col, F.lit(float(low))), F.lit(float(high)))
        return col

    # -- to and from local ----------------------------------------------------------------------
    #: the local chuchun class this model comes back as
    local_class: ClassVar[type[Recommender]]

    def to_local(self) -> Recommender:
        """The equivalent fitted chuchun model (collects the learned state and the training
        matrix, which local scoring needs for ``exclude_seen``)."""
        self._check_fitted()
        local_data = self.data_.to_local()
        model = self.local_class(**self._local_params())
        _adopt_training(model, local_data)
        self._export(model, local_data)
        return model

    def _local_params(self) -> dict[str, Any]:
        names = _local_param_names(self.local_class)
        params = {k: v for k, v in self.get_params().items() if k in names}
        if "ranking_damping" in names and "ranking_damping" not in params:
            # the Spark models rank by the undiscounted score; the local model ranks the same
            params["ranking_damping"] = 0.0
        return params

    @abc.abstractmethod
    def _export(self, model: Any, data: Interactions) -> None:
        """Set the fitted attributes of the local ``model`` (base attributes are set)."""

    @classmethod
    def from_local(cls, model: Recommender, *, spark: Any = None) -> Self:
        """A Spark model that scores like the fitted local ``model`` (its training matrix and
        learned state shipped to Spark)."""
        if not isinstance(model, cls.local_class):
            raise ConfigError(
                f"{cls.__name__}.from_local expects a fitted {cls.local_class.__name__}; "
                f"got {type(model).__name__}"
            )
        model._check_fitted()
        spark = spark or get_session()
        names = set(cls.param_specs())
        params = model.get_params()
        if "n_epochs" in names and "n_epochs" not in params and "n_iterations" in params:
            params["n_epochs"] = params["n_iterations"]
        out = cls(**{k: v for k, v in params.items() if k in names})
        seen = model.seen_.tocoo()
        local = Interactions(model.users_, model.items_, seen.row.astype(np.int32),
                             seen.col.astype(np.int32),
                             seen.data if model.predicts_ratings else None,
                             rating_scale=None)
        data = SparkInteractions.from_local(local, spark=spark)
        out.data_ = data
        out.n_users_, out.n_items_ = data.n_users, data.n_items
        out.global_mean_ = float(model.global_mean_)
        out.rating_scale_ = model.rating_scale_
        out._import(model, spark)
        return out

    def _import(self, model: Any, spark: Any) -> None:
        raise ConfigError(f"{type(self).__name__} cannot be built from a local model")


def _adopt_training(model: Recommender, data: Interactions) -> None:
    """The attributes ``Recommender.fit`` sets from the training data, for a model whose
    learned state comes from elsewhere."""
    values = data.values
    model.users_ = data.users
    model.items_ = data.items
    model.seen_ = data.csr
    model.global_mean_ = float(values.mean()) if data.has_ratings else 1.0
    model.item_popularity_ = np.bincount(data.item_idx, minlength=data.n_items).astype(np.float32)
    model.rating_scale_ = (
        list(data.rating_scale) if data.rating_scale is not None
        else ([float(values.min()), float(values.max())] if data.has_ratings else None)
    )
    model.fingerprint_ = data.fingerprint()


@contextlib.contextmanager
def checkpoint_dir(spark: Any) -> Iterator[str]:
    """A checkpoint directory for the duration of the block: the SparkContext's own when it
    has one (kept), else a new temporary directory under Spark's local directory
    (``spark.local.dir``), unset and removed at the end.

    MLlib's ALS checkpoints its factor RDDs every ``checkpointInterval`` sweeps only when the
    context has a checkpoint directory; without one the lineage grows with every sweep and a
    long fit fails with a ``StackOverflowError`` when the JVM serialises it. On a cluster the
    directory must be on storage every executor reaches (HDFS, S3): set it with
    ``spark.sparkContext.setCheckpointDir(...)`` (or ``spark.checkpoint.dir``) before fitting;
    the temporary one is only made for local masters.
    """
    sc = spark.sparkContext
    current = sc.getCheckpointDir()
    if current is not None:
        yield current
        return
    if not str(sc.master).startswith("local"):
        warnings.warn(
            "the SparkContext has no checkpoint directory, so MLlib's ALS cannot cut the "
            "lineage of its factors and a long fit can fail with a StackOverflowError; set one "
            "on storage all executors reach: spark.sparkContext.setCheckpointDir('hdfs://...')",
            RuntimeWarning, stacklevel=4)
        yield ""
        return
    root = Path(sc.getConf().get("spark.local.dir", tempfile.gettempdir()).split(",")[0])
    root.mkdir(parents=True, exist_ok=True)
    path = tempfile.mkdtemp(prefix="chuchun-checkpoint-", dir=root)
    sc.setCheckpointDir(path)
    try:
        yield path
    finally:
        try:
            # back to no checkpoint directory (the field is package-private in Scala, public in
            # the bytecode py4j sees), then remove what the fit wrote
            getattr(sc._jsc.sc(), "checkpointDir_$eq")(sc._jvm.scala.Option.empty())
        except Exception:  # noqa: BLE001 - a JVM without that accessor keeps the directory
            atexit.register(shutil.rmtree, path, True)  # set until the process ends
        else:
            shutil.rmtree(path, ignore_errors=True)


def _top_k(scores: DataFrame, k: int) -> DataFrame:
    """The ``k`` best rows per user (score descending, ties: lower item index first), ranked
    from 1."""
    F = _f()
    from pyspark.sql import Window

    w = Window.partitionBy("user_idx").orderBy(F.col("score").desc(), F.col("item_idx").asc())
    return (scores.withColumn("rank", F.row_number().over(w)).filter(F.col("rank") <= k)
            .select("user_idx", "item_idx", "score", "rank"))


def _factor_matrix(frame: DataFrame, n: int, n_factors: int) -> np.ndarray:
    """MLlib's ``(id, features)`` factor table as an ``(n, n_factors)`` float32 matrix (rows
    without factors stay zero)."""
    table = frame.toPandas()
    out = np.zeros((n, n_factors), dtype=np.float32)
    if len(table):
        out[table["id"].to_numpy(np.int64)] = np.stack(list(table["features"])).astype(
            np.float32
        )
    return out


def _factor_frame(spark: Any, factors: np.ndarray) -> DataFrame:
    import pandas as pd

    frame = spark.createDataFrame(pd.DataFrame(
        {"id": np.arange(len(factors), dtype=np.int32),
         "features": [row.astype(np.float64).tolist() for row in factors]}))
    return frame.select("id", _f().col("features").cast("array<float>").alias("features"))


def _als_model(users: DataFrame, items: DataFrame, rank: int) -> Any:
    """An MLlib ``ALSModel`` over given ``(id, features)`` tables (``features``:
    ``array<float>`` of length ``rank``), to score with MLlib's blocked top-k."""
    from pyspark.ml.recommendation import ALSModel

    jvm: Any = users.sparkSession._jvm
    java = jvm.org.apache.spark.ml.recommendation.ALSModel(
        "chuchun-ranking", int(rank), users._jdf, items._jdf)
    # on the JVM object itself: recommendForUserSubset reads the columns there, and only
    # transform copies the Python-side settings over
    java.setUserCol("user_idx").setItemCol("item_idx").setColdStartStrategy("nan")
    model = ALSModel(java)
    model.setUserCol("user_idx").setItemCol("item_idx").setColdStartStrategy("nan")
    return model


def _support_model(model: SparkRecommender, users: DataFrame, items: DataFrame,
                   rank: int) -> Any:
    """An MLlib model whose inner products are the support-discounted ranking scores of
    chuchun's rating models (``_SupportRanked``),

    .. math:: s_{ui} = (\\hat r_{ui} - r_{\\min}) \\frac{n_i}{n_i + \\lambda_n},

    for an estimate that is an inner product :math:`\\hat r_{ui} = a_u^T b_i` of the ``rank``
    long ``features`` of ``users`` (``id`` = user index) and ``items`` (``id`` = item index).
    The discounted score is again an inner product, :math:`[a_u, 1]^T [w_i b_i,
    -r_{\\min} w_i]` with :math:`w_i = n_i / (n_i + \\lambda_n)`, so MLlib's blocked top-k
    ranks it exactly; :math:`n_i` is a Spark count of the training log."""
    F = _f()
    damping = float(model.ranking_damping)  # type: ignore[attr-defined]
    floor = float(model.rating_scale_[0]) if model.rating_scale_ is not None else 0.0
    counts = model.data_.frame.groupBy(F.col("item_idx").alias("id")).agg(
        (F.count(F.lit(1)).cast("double")).alias("n"))
    w = F.col("n") / (F.col("n") + F.lit(damping))
    scaled = F.transform("features", lambda x: (x.cast("double") * w).cast("float"))
    aug_items = items.join(counts, "id").select(
        "id", F.concat(scaled, F.array((F.lit(-floor) * w).cast("float"))).alias("features"))
    aug_users = users.select(
        "id", F.concat(F.col("features"), F.array(F.lit(1.0).cast("float"))).alias("features"))
    return _als_model(aug_users, aug_items, rank + 1)


def _mllib_lists(mllib: Any, user_idx: DataFrame, n: int) -> DataFrame:
    """``(user_idx, recs)``: MLlib's top ``n`` of each user as an array of ``(item_idx,
    score)`` structs."""
    F = _f()
    recs = mllib.recommendForUserSubset(user_idx, n)
    return recs.select("user_idx", F.transform(
        "recommendations", lambda r: F.struct(r["item_idx"].alias("item_idx"),
                                              r["rating"].cast("double").alias("score"))
    ).alias("recs"))


def _top_k_lists(lists: DataFrame, seen: DataFrame | None, k: int) -> DataFrame:
    """``(user_idx, item_idx, score, rank)`` from per-user candidate arrays ``(user_idx,
    recs)``: the items of ``seen`` ``(user_idx, item_idx)`` dropped, the rest ordered by score
    descending (ties: lower item index first) and cut at ``k``, all inside each user's row (no
    row per candidate, no shuffle of the candidates)."""
    F = _f()
    if seen is not None:
        history = seen.groupBy("user_idx").agg(F.collect_list("item_idx").alias("_seen"))
        lists = lists.join(history, "user_idx", "left").select(
            "user_idx", F.filter("recs", lambda r: ~F.coalesce(
                F.array_contains("_seen", r["item_idx"]), F.lit(False))).alias("recs"))

    def order(a: Any, b: Any) -> Any:
        return (F.when(a["score"] > b["score"], -1).when(a["score"] < b["score"], 1)
                .when(a["item_idx"] < b["item_idx"], -1)
                .when(a["item_idx"] > b["item_idx"], 1).otherwise(0))

    ordered = F.slice(F.array_sort(F.filter("recs", lambda r: ~F.isnan(r["score"])), order),
                      1, k)
    return lists.select("user_idx", F.posexplode(ordered).alias("pos", "r")).select(
        "user_idx", F.col("r.item_idx").alias("item_idx"), F.col("r.score").alias("score"),
        (F.col("pos") + 1).alias("rank"))


# -- matrix factorisation on MLlib's ALS -------------------------------------------------------
class _MLlibALS(SparkRecommender):
    """Shared MLlib ALS driving (explicit and implicit)."""

    n_blocks = Param(int, None, "MLlib user and item blocks (None: MLlib's default of 10).",
                     low=1, nullable=True)
    nonnegative = Param(bool, False, "Constrain the factors to be non-negative (MLlib only).")
    checkpoint_interval = Param(
        int, 10, "MLlib checkpoints the factors every this many sweeps, which cuts their "
        "lineage (a long one overflows the JVM's stack); a temporary checkpoint directory is "
        "used when the SparkContext has none.", low=1)

    _implicit: ClassVar[bool] = False

    def _estimator(self) -> Any:
        from pyspark.ml.recommendation import ALS as MLlibALS

        kwargs: dict[str, Any] = {
            spark: getattr(self, name) for name, spark in self.spark_names.items()
            if getattr(self, name) is not None
        }
        if self.n_blocks is not None:
            kwargs["numUserBlocks"] = kwargs["numItemBlocks"] = int(self.n_blocks)
        return MLlibALS(userCol="user_idx", itemCol="item_idx", ratingCol="rating",
                        implicitPrefs=self._implicit, coldStartStrategy="nan",
                        checkpointInterval=int(self.checkpoint_interval), **kwargs)

    def _fit(self, data: SparkInteractions) -> None:
        with checkpoint_dir(data.frame.sparkSession):
            self.mllib_model_ = self._estimator().fit(data.frame)

    def _scoring_model(self) -> Any:
        """The MLlib model whose inner products are the ranking scores."""
        return self.mllib_model_

    def _candidate_lists(self, user_idx: DataFrame, n: int) -> DataFrame:
        """``(user_idx, recs)``: each user's ``n`` best items as an array of ``(item_idx,
        score)``."""
        return _mllib_lists(self._scoring_model(), user_idx, min(n, self.n_items_))

    def _candidates(self, user_idx: DataFrame, n: int) -> DataFrame:
        F = _f()
        lists = self._candidate_lists(user_idx, n)
        return lists.select("user_idx", F.explode("recs").alias("r")).select(
            "user_idx", "r.item_idx", "r.score")

    def _recommend_idx(self, user_idx: DataFrame, k: int, exclude_seen: bool) -> DataFrame:
        # MLlib returns each user's candidates as one array: the seen items are dropped and the
        # list cut at k inside it. A user who has seen n items needs k + n candidates; rather
        # than asking k + (the longest history) of everyone, users are grouped by
        # ceil(log2(n + 1)) and each group asks k + 2^b - 1 (MLlib keeps that many per user
        # through its top-k aggregation), so the candidates total at most k + 2n per user.
        if not exclude_seen:
            return _top_k_lists(self._candidate_lists(user_idx, k), None, k)
        F = _f()
        users = user_idx.join(self._user_counts(), "user_idx", "left").select(
            "user_idx", F.ceil(F.log2(F.coalesce("_n", F.lit(0)) + 1)).cast("int").alias("_b"))
        groups = sorted(r[0] for r in users.select("_b").distinct().collect())
        lists = None
        for b in groups:
            part = self._candidate_lists(users.filter(F.col("_b") == b).select("user_idx"),
                                         k + 2**b - 1)
            lists = part if lists is None else lists.unionByName(part)
        if lists is None:  # no users asked for
            lists = self._candidate_lists(users.select("user_idx"), k)
        return _top_k_lists(lists, self.data_.frame.select("user_idx", "item_idx"), k)

    def _predict_idx(self, pairs: DataFrame) -> DataFrame:
        F = _f()
        out = self.mllib_model_.transform(pairs)
        return out.withColumn("prediction",
                              self._clip_column(F.col("prediction").cast("double")))

    def _factors(self) -> tuple[np.ndarray, np.ndarray]:
        k = int(self.mllib_model_.rank)
        return (_factor_matrix(self.mllib_model_.userFactors, self.n_users_, k),
                _factor_matrix(self.mllib_model_.itemFactors, self.n_items_, k))

    def _import(self, model: Any, spark: Any) -> None:
        users = _factor_frame(spark, model.user_factors_)
        items = _factor_frame(spark, model.item_factors_)
        self.mllib_model_ = _als_model(users, items, int(model.item_factors_.shape[1]))


class ALS(_MLlibALS):
    """Explicit-feedback ALS on MLlib (Zhou et al. 2008), returning :class:`chuchun.models.ALS`.

    .. math:: \\min \\sum_{(u,i)} (r_{ui} - p_u^T q_i)^2
              + \\lambda \\Big(\\sum_u n_u \\|p_u\\|^2 + \\sum_i n_i \\|q_i\\|^2\\Big)

    MLlib solves the weighted-λ objective without biases, which is chuchun's ``ALS`` with
    ``biased=False, weighted=True``; ``to_local()`` returns exactly that model, so it saves,
    serves, folds in and explains like a locally trained one.

    Parameters
    ----------
    n_factors, n_epochs, regularization, clip, random_state
        As in :class:`chuchun.models.ALS` (same declarations); mapped to MLlib by
        :attr:`spark_names`.
    n_blocks, nonnegative
        MLlib's blocking and non-negativity (no local counterpart; ``nonnegative=True`` gives a
        local model with the same non-negative factors).

    Attributes
    ----------
    mllib_model_ : pyspark.ml.recommendation.ALSModel

    References
    ----------
    Y. Zhou, D. Wilkinson, R. Schreiber, R. Pan. Large-scale parallel collaborative filtering
    for the Netflix prize. AAIM 2008.
    """

    n_factors = _LocalALS.n_factors
    n_epochs = _LocalALS.n_epochs
    regularization = _LocalALS.regularization
    clip = _LocalALS.clip
    ranking_damping = _LocalALS.ranking_damping
    random_state = _LocalALS.random_state

    spark_names: ClassVar[dict[str, str]] = {
        "n_factors": "rank", "n_epochs": "maxIter", "regularization": "regParam",
        "random_state": "seed",
    }
    predicts_ratings = True
    local_class = _LocalALS

    def _fit(self, data: SparkInteractions) -> None:
        if not data.has_ratings:
            raise DataError("ALS needs explicit ratings; the interaction log has no rating "
                            "column (use ImplicitALS for implicit feedback)")
        super()._fit(data)

    def _scoring_model(self) -> Any:
        damping = float(self.ranking_damping)
        if damping == 0:
            return self.mllib_model_
        cached = getattr(self, "ranking_model_", None)
        if cached is None or cached[0] != damping or cached[1] is not self.mllib_model_:
            mllib = self.mllib_model_
            model = _support_model(self, mllib.userFactors, mllib.itemFactors, int(mllib.rank))
            self.ranking_model_ = (damping, mllib, model)
            cached = self.ranking_model_
        return cached[2]

    def _local_params(self) -> dict[str, Any]:
        return {**super()._local_params(), "biased": False, "weighted": True}

    def _export(self, model: Any, data: Interactions) -> None:
        pu, qi = self._factors()
        model.fit_bias_ = False
        model.weighted_ = True
        model.intercept_ = 0.0
        model.user_factors_, model.item_factors_ = pu, qi
        model.user_bias_ = np.zeros(len(pu), dtype=np.float32)
        model.item_bias_ = np.zeros(len(qi), dtype=np.float32)
        model.history_ = {"train_rmse": [], "val_rmse": []}
        model.best_epoch_ = int(self.n_epochs) - 1

    def _import(self, model: Any, spark: Any) -> None:
        if getattr(model, "fit_bias_", False):
            raise ConfigError("a biased ALS has no MLlib counterpart (MLlib's ALS has no "
                              "biases); train it with biased=False to score it on Spark")
        super()._import(model, spark)


class ImplicitALS(_MLlibALS):
    """Implicit-feedback ALS on MLlib (Hu, Koren & Volinsky 2008), returning
    :class:`chuchun.models.ImplicitALS`.

    .. math:: \\min \\sum_{u,i} c_{ui} (p_{ui} - x_u^T y_i)^2
              + \\lambda \\Big(\\sum_u n_u \\|x_u\\|^2 + \\sum_i n_i \\|y_i\\|^2\\Big),
              \\qquad c_{ui} = 1 + \\alpha r_{ui}

    MLlib scales :math:`\\lambda` by each row's count of observed interactions; chuchun's local
    solver does not, so the same ``regularization`` regularises more strongly on Spark (divide
    it by a typical row count to compare). Scores are :math:`x_u^T y_i`.

    References
    ----------
    Y. Hu, Y. Koren, C. Volinsky. Collaborative filtering for implicit feedback datasets.
    ICDM 2008.
    """

    from chuchun.models.implicit import ImplicitALS as _Local

    n_factors = _Local.n_factors
    n_epochs = Param(int, 15, "ALS sweeps over users and items.", low=1)
    regularization = _Local.regularization
    alpha = _Local.alpha
    random_state = _Local.random_state

    spark_names: ClassVar[dict[str, str]] = {
        "n_factors": "rank", "n_epochs": "maxIter", "regularization": "regParam",
        "alpha": "alpha", "random_state": "seed",
    }
    local_class = _Local
    _implicit = True
    del _Local

    def _fit(self, data: SparkInteractions) -> None:
        F = _f()
        bad = data.frame.filter((F.col("rating") < 0) | F.isnan("rating")).limit(3).collect()
        if bad:
            raise DataError(
                "ImplicitALS reads interaction values as non-negative feedback strengths; "
                f"got values such as {[r['rating'] for r in bad]}"
            )
        super()._fit(data)

    def _local_params(self) -> dict[str, Any]:
        params = super()._local_params()
        names = _local_param_names(self.local_class)
        epochs = "n_epochs" if "n_epochs" in names else "n_iterations"
        params[epochs] = int(self.n_epochs)
        return params

    def _export(self, model: Any, data: Interactions) -> None:
        model.user_factors_, model.item_factors_ = self._factors()


# -- popularity and biases -----------------------------------------------------------------------
class Popularity(SparkRecommender):
    """Items ranked by their number of training users (counted with a Spark aggregation).

    .. math:: s_{ui} = |\\{v : (v, i) \\in \\mathcal{D}\\}|
    """

    from chuchun.models.baseline import Popularity as local_class  # noqa: N813

    def _fit(self, data: SparkInteractions) -> None:
        self.item_counts_ = data.frame.groupBy("item_idx").agg(
            _f().count(_f().lit(1)).cast("double").alias("score")).persist()

    def _candidates(self, user_idx: DataFrame, n: int) -> DataFrame:
        F = _f()
        from pyspark.sql import Window

        w = Window.orderBy(F.col("score").desc(), F.col("item_idx").asc())
        top = self.item_counts_.withColumn("_r", F.row_number().over(w)).filter(
            F.col("_r") <= n).drop("_r")
        return user_idx.crossJoin(F.broadcast(top))

    def _export(self, model: Any, data: Interactions) -> None:
        return None  # item_popularity_ is the whole state

    def _import(self, model: Any, spark: Any) -> None:
        import pandas as pd

        pop = model.item_popularity_
        nz = np.flatnonzero(pop > 0)
        self.item_counts_ = spark.createDataFrame(pd.DataFrame(
            {"item_idx": nz.astype(np.int32), "score": pop[nz].astype(np.float64)}))


def als_biases(data: SparkInteractions, mu: float, n_epochs: int, user_regularization: float,
               item_regularization: float) -> tuple[DataFrame, DataFrame]:
    """``(user_idx, bu)`` and ``(item_idx, bi)`` minimising the regularised squared error of
    :math:`\\mu + b_u + b_i` by ``n_epochs`` exact alternating steps, items first (the steps of
    :func:`chuchun.models.baseline.fit_biases` with ``method="als"``)."""
    F = _f()
    rows = data.frame.select("user_idx", "item_idx",
                             (F.col("rating") - F.lit(float(mu))).alias("r")).persist()
    bu = rows.select("user_idx").distinct().withColumn("bu", F.lit(0.0))
    bi: DataFrame = bu
    for _ in range(n_epochs):
        bi = (rows.join(bu, "user_idx").groupBy("item_idx")
              .agg((F.sum(F.col("r") - F.col("bu")) / (F.count(F.lit(1)) + item_regularization))
                   .alias("bi"))).localCheckpoint()
        bu = (rows.join(bi, "item_idx").groupBy("user_idx")
              .agg((F.sum(F.col("r") - F.col("bi")) / (F.count(F.lit(1)) + user_regularization))
                   .alias("bu"))).localCheckpoint()
    rows.unpersist()
    return bu, bi


class BaselineOnly(SparkRecommender):
    """User and item biases around the global mean, by alternating least squares on Spark.

    .. math:: \\min \\sum_{(u,i)} (r_{ui} - \\mu - b_u - b_i)^2 + \\lambda_u \\sum_u b_u^2
              + \\lambda_i \\sum_i b_i^2

    Each epoch is two exact aggregations, :math:`b_i = \\sum_u (r_{ui} - \\mu - b_u) /
    (\\lambda_i + |U_i|)` and then the same for users (Koren 2010, sec. 2.1), the algorithm of
    :func:`chuchun.models.baseline.fit_biases` with ``method="als"``. SGD is sequential by
    nature and has no Spark counterpart.
    """

    local_class = _LocalBaselineOnly
    method = Param(str, "als", "Solver (Spark: alternating least squares only).",
                   choices=("als",))
    n_epochs = _LocalBaselineOnly.n_epochs
    user_regularization = _LocalBaselineOnly.user_regularization
    item_regularization = _LocalBaselineOnly.item_regularization
    clip = _LocalBaselineOnly.clip
    ranking_damping = _LocalBaselineOnly.ranking_damping

    predicts_ratings = True

    def _fit(self, data: SparkInteractions) -> None:
        F = _f()
        if not data.has_ratings:
            raise DataError("BaselineOnly needs explicit ratings; the interaction log has no "
                            "rating column")
        lam_u = 15.0 if self.user_regularization is None else float(self.user_regularization)
        lam_i = 10.0 if self.item_regularization is None else float(self.item_regularization)
        self.user_bias_frame_, self.item_bias_frame_ = als_biases(
            data, self.global_mean_, int(self.n_epochs or 10), lam_u, lam_i)

    def _predict_idx(self, pairs: DataFrame) -> DataFrame:
        F = _f()
        est = F.lit(self.global_mean_) + F.col("bu") + F.col("bi")
        return (pairs.join(self.user_bias_frame_, "user_idx").join(self.item_bias_frame_,
                                                                   "item_idx")
                .withColumn("prediction", self._clip_column(est)).drop("bu", "bi"))

    def _fallback_idx(self, pairs: DataFrame) -> DataFrame:
        # a known side keeps its bias, an unknown one gets zero (as locally)
        F = _f()
        est = (F.lit(self.global_mean_) + F.coalesce(F.col("bu"), F.lit(0.0))
               + F.coalesce(F.col("bi"), F.lit(0.0)))
        return (pairs.join(self.user_bias_frame_, "user_idx", "left")
                .join(self.item_bias_frame_, "item_idx", "left")
                .withColumn("prediction", self._clip_column(est)).drop("bu", "bi"))

    def _candidates(self, user_idx: DataFrame, n: int) -> DataFrame:
        F = _f()
        if float(self.ranking_damping) != 0:
            # the estimate mu + b_u + b_i is the inner product [mu + b_u, 1]^T [1, b_i]
            users = self.user_bias_frame_.select(
                F.col("user_idx").cast("int").alias("id"),
                F.array((F.lit(self.global_mean_) + F.col("bu")).cast("float"),
                        F.lit(1.0).cast("float")).alias("features"))
            items = self.item_bias_frame_.select(
                F.col("item_idx").cast("int").alias("id"),
                F.array(F.lit(1.0).cast("float"), F.col("bi").cast("float")).alias("features"))
            ranking = _support_model(self, users, items, 2)
            lists = _mllib_lists(ranking, user_idx, min(n, self.n_items_))
            return lists.select("user_idx", F.explode("recs").alias("r")).select(
                "user_idx", "r.item_idx", "r.score")
        # undiscounted, mu + b_u + b_i ranks the same items for everyone: the n largest b_i
        from pyspark.sql import Window

        w = Window.orderBy(F.col("bi").desc(), F.col("item_idx").asc())
        top = self.item_bias_frame_.withColumn("_r", F.row_number().over(w)).filter(
            F.col("_r") <= n).drop("_r")
        est = F.lit(self.global_mean_) + F.col("bu") + F.col("bi")
        return (user_idx.join(self.user_bias_frame_, "user_idx").crossJoin(F.broadcast(top))
                .select("user_idx", "item_idx", self._clip_column(est).alias("score")))

    def _local_params(self) -> dict[str, Any]:
        return {**super()._local_params(), "n_epochs": self.n_epochs}

    def _export(self, model: Any, data: Interactions) -> None:
        bu = self.user_bias_frame_.toPandas()
        bi = self.item_bias_frame_.toPandas()
        model.user_bias_ = np.zeros(data.n_users)
        model.item_bias_ = np.zeros(data.n_items)
        model.user_bias_[bu["user_idx"].to_numpy(np.int64)] = bu["bu"].to_numpy(np.float64)
        model.item_bias_[bi["item_idx"].to_numpy(np.int64)] = bi["bi"].to_numpy(np.float64)

    def _import(self, model: Any, spark: Any) -> None:
        import pandas as pd

        self.user_bias_frame_ = spark.createDataFrame(pd.DataFrame(
            {"user_idx": np.arange(len(model.user_bias_), dtype=np.int32),
             "bu": np.asarray(model.user_bias_, dtype=np.float64)}))
        self.item_bias_frame_ = spark.createDataFrame(pd.DataFrame(
            {"item_idx": np.arange(len(model.item_bias_), dtype=np.int32),
             "bi": np.asarray(model.item_bias_, dtype=np.float64)}))


# -- item-item similarity ------------------------------------------------------------------------
class ImplicitItemKNN(SparkRecommender):
    """Item-based top-N recommendation with a distributed top-k item-item similarity.

    .. math:: s_{ui} = \\sum_{j \\in I_u} x_{uj} \\, \\text{sim}_k(j, i)

    exactly as :class:`chuchun.models.ImplicitItemKNN`. ``mode="exact"`` computes every
    co-occurring pair by a self-join of the (optionally TF-IDF / BM25 weighted) log on the user
    (each pair once, ``i < j``, then mirrored), so the result equals the local top-k; its cost
    is :math:`\\sum_u n_u^2`, fine for moderate user degrees. ``mode="dimsum"`` uses MLlib's
    DIMSUM sampling (Zadeh & Goel 2013; cosine only): pairs whose cosine is above
    ``dimsum_threshold`` are estimated without bias, the rest may be missed.

    References
    ----------
    M. Deshpande, G. Karypis. Item-based top-N recommendation algorithms. ACM TOIS 22(1), 2004.
    R. B. Zadeh, A. Goel. Dimension independent similarity computation. JMLR 14, 2013.
    """

    local_class = _LocalItemKNN
    n_neighbors = _LocalItemKNN.n_neighbors
    similarity = _LocalItemKNN.similarity
    weighting = _LocalItemKNN.weighting
    bm25_k1 = _LocalItemKNN.bm25_k1
    bm25_b = _LocalItemKNN.bm25_b
    shrinkage = _LocalItemKNN.shrinkage
    binary = _LocalItemKNN.binary
    mode = Param(str, "exact", "All co-occurring pairs (exact) or DIMSUM sampling.",
                 choices=("exact", "dimsum"))
    dimsum_threshold = Param(float, 0.1, "DIMSUM: cosines above this are estimated reliably.",
                             low=0, high=1)

    def _values(self, data: SparkInteractions) -> DataFrame:
        F = _f()
        value = F.lit(1.0) if (self.binary or not data.has_ratings) else F.col("rating")
        return data.frame.select("user_idx", "item_idx", value.cast("double").alias("x"))

    def _weighted(self, x: DataFrame) -> DataFrame:
        """TF-IDF or BM25 of the item columns, users acting as terms (as locally)."""
        F = _f()
        if self.weighting == "none":
            return x.withColumn("w", F.col("x"))
        n_docs = self.n_items_
        df = x.groupBy("user_idx").agg(F.count(F.lit(1)).alias("_df"))
        w = x.join(df, "user_idx").withColumn(
            "_idf", F.log(F.lit(float(n_docs)) / F.greatest(F.col("_df"), F.lit(1))))
        if self.weighting == "tfidf":
            return w.select("user_idx", "item_idx", "x", (F.col("x") * F.col("_idf")).alias("w"))
        length = x.groupBy("item_idx").agg(F.count(F.lit(1)).cast("double").alias("_len"))
        mean_len = max(float(length.agg(F.avg("_len")).collect()[0][0]), 1e-12)
        k1, b = float(self.bm25_k1), float(self.bm25_b)
        norm = F.lit(k1) * (F.lit(1.0 - b) + F.lit(b) * F.col("_len") / F.lit(mean_len))
        return w.join(length, "item_idx").select(
            "user_idx", "item_idx", "x",
            (F.col("x") * F.lit(k1 + 1.0) / (norm + F.col("x")) * F.col("_idf")).alias("w"))

    def _fit(self, data: SparkInteractions) -> None:
        if self.mode == "dimsum":
            if self.similarity != "cosine" or self.shrinkage:
                raise ConfigError("mode='dimsum' estimates plain cosine only; use "
                                  "similarity='cosine', shrinkage=0 or mode='exact'")
            pairs = self._dimsum(data)
        else:
            pairs = self._exact(data)
        self.similarity_frame_ = _top_k(
            pairs.withColumnRenamed("i", "user_idx").withColumnRenamed("j", "item_idx")
            .withColumnRenamed("s", "score"), int(self.n_neighbors)
        ).select(_f().col("user_idx").alias("i"), _f().col("item_idx").alias("j"),
                 _f().col("score").alias("s")).persist()

    def _exact(self, data: SparkInteractions) -> DataFrame:
        F = _f()
        w = self._weighted(self._values(data)).select("user_idx", "item_idx", "w").persist()
        stats = w.groupBy("item_idx").agg(F.sqrt(F.sum(F.col("w") * F.col("w"))).alias("norm"),
                                           F.count(F.lit(1)).alias("nnz"))
        a = w.select("user_idx", F.col("item_idx").alias("i"), F.col("w").alias("wi"))
        b = w.select("user_idx", F.col("item_idx").alias("j"), F.col("w").alias("wj"))
        upper = (a.join(b, "user_idx").filter(F.col("i") < F.col("j")).groupBy("i", "j")
                 .agg(F.sum(F.col("wi") * F.col("wj")).alias("dot"),
                      F.count(F.lit(1)).alias("cnt")))
        si = stats.select(F.col("item_idx").alias("i"), F.col("norm").alias("ni"),
                          F.col("nnz").alias("ci"))
        sj = stats.select(F.col("item_idx").alias("j"), F.col("norm").alias("nj"),
                          F.col("nnz").alias("cj"))
        upper = upper.join(si, "i").join(sj, "j")
        if self.similarity == "cosine":
            s = F.when(F.col("ni") * F.col("nj") > 0,
                       F.col("dot") / (F.col("ni") * F.col("nj"))).otherwise(0.0)
        elif self.similarity == "jaccard":
            s = F.col("cnt") / (F.col("ci") + F.col("cj") - F.col("cnt"))
        else:
            s = F.col("dot")
        if self.shrinkage > 0:
            s = s * F.col("cnt") / (F.col("cnt") + F.lit(float(self.shrinkage)))
        upper = upper.select("i", "j", s.alias("s")).filter(
            (F.col("s") != 0) & ~F.isnan("s"))
        return upper.unionByName(upper.select(F.col("j").alias("i"), F.col("i").alias("j"), "s"))

    def _dimsum(self, data: SparkInteractions) -> DataFrame:
        from pyspark.mllib.linalg.distributed import CoordinateMatrix, MatrixEntry

        w = self._weighted(self._values(data)).select("user_idx", "item_idx", "w")
        entries = w.rdd.map(lambda r: MatrixEntry(int(r[0]), int(r[1]), float(r[2])))
        matrix = CoordinateMatrix(entries, self.n_users_, self.n_items_).toRowMatrix()
        sims = matrix.columnSimilarities(float(self.dimsum_threshold)).entries
        upper = sims.map(lambda e: (int(e.i), int(e.j), float(e.value))).toDF(["i", "j", "s"])
        F = _f()
        upper = upper.filter(F.col("s") != 0)
        return upper.unionByName(upper.select(F.col("j").alias("i"), F.col("i").alias("j"), "s"))

    def _candidates(self, user_idx: DataFrame, n: int) -> DataFrame:
        F = _f()
        x = self._values(self.data_).join(user_idx, "user_idx")
        sim = self.similarity_frame_.select(F.col("i").alias("item_idx"), "j", "s")
        return (x.join(sim, "item_idx").groupBy("user_idx", F.col("j").alias("item_idx"))
                .agg(F.sum(F.col("x") * F.col("s")).alias("score")))

    def _predict_idx(self, pairs: DataFrame) -> DataFrame:
        F = _f()
        scores = self._candidates(pairs.select("user_idx").distinct(), 0)
        return pairs.join(scores, ["user_idx", "item_idx"], "left").withColumn(
            "prediction", F.coalesce(F.col("score"), F.lit(0.0))).drop("score")

    def similarity_table(self) -> DataFrame:
        """The kept neighbours ``(item_id, neighbor_id, similarity)``."""
        self._check_fitted()
        F = _f()
        items = self.data_.items
        return (self.similarity_frame_
                .join(items.select(F.col("item_idx").alias("i"), F.col("item_id")), "i")
                .join(items.select(F.col("item_idx").alias("j"),
                                   F.col("item_id").alias("neighbor_id")), "j")
                .select("item_id", "neighbor_id", F.col("s").alias("similarity")))

    def similarity_matrix(self) -> sp.csr_matrix:
        """The kept neighbours as the local items x items CSR (float32, sorted indices)."""
        table = self.similarity_frame_.toPandas()
        n = self.n_items_
        m = sp.csr_matrix((table["s"].to_numpy(np.float32),
                           (table["i"].to_numpy(np.int64), table["j"].to_numpy(np.int64))),
                          shape=(n, n), dtype=np.float32)
        m.sort_indices()
        return m

    def _export(self, model: Any, data: Interactions) -> None:
        x = data.csr.astype(np.float32)
        if self.binary or not data.has_ratings:
            x.data = np.ones_like(x.data)
        model.interactions_ = x
        model.similarity_ = self.similarity_matrix()

    def _import(self, model: Any, spark: Any) -> None:
        import pandas as pd

        s = model.similarity_.tocoo()
        self.similarity_frame_ = spark.createDataFrame(pd.DataFrame(
            {"i": s.row.astype(np.int32), "j": s.col.astype(np.int32),
             "s": s.data.astype(np.float64)}))
        if not self.data_.has_ratings or self.binary:
            return
        x = model.interactions_.tocoo()  # the scored values, which may differ from seen_
        self.data_.frame = spark.createDataFrame(pd.DataFrame(
            {"user_idx": x.row.astype(np.int32), "item_idx": x.col.astype(np.int32),
             "rating": x.data.astype(np.float64)}))


# -- association rules ---------------------------------------------------------------------------
class AssociationRules(SparkRecommender):
    """The rules recommender of :class:`chuchun.models.AssociationRules` mined on Spark.

    .. math:: s_{ui} = \\max\\Big(\\pi_i,\\; \\max_{A \\subseteq B_u,\\;
              (A \\Rightarrow i) \\in \\mathcal{R}} \\frac{\\sigma(A \\cup \\{i\\})}{\\sigma(A)}\\Big)

    Baskets are users' items (rated at least ``min_rating``), itemsets come from MLlib's
    FP-growth (:class:`chuchun.spark.FPGrowth`) and the single-consequent rules from Spark joins
    over them; ``to_local()`` returns the local model with the same rules.
    """

    local_class = _LocalRules
    min_support = _LocalRules.min_support
    min_confidence = _LocalRules.min_confidence
    min_lift = _LocalRules.min_lift
    max_len = _LocalRules.max_len
    min_rating = _LocalRules.min_rating

    def _baskets(self, data: SparkInteractions) -> DataFrame:
        F = _f()
        rows = data.frame
        if self.min_rating is not None:
            if not data.has_ratings:
                raise DataError("min_rating is set but the interaction log has no ratings")
            rows = rows.filter(F.col("rating") >= float(self.min_rating))
        return rows.select("user_idx", "item_idx")

    def _fit(self, data: SparkInteractions) -> None:
        from chuchun.spark.rules import FPGrowth

        F = _f()
        rows = self._baskets(data).persist()
        tx = rows.groupBy("user_idx").agg(F.collect_list("item_idx").alias("items"))
        if tx.limit(1).count() == 0:
            raise DataError(
                f"no user has an interaction rated >= min_rating={self.min_rating}; "
                "lower min_rating or set it to None"
            )
        miner = FPGrowth(min_support=self.min_support, max_len=self.max_len)
        itemsets = miner.mine_frame(tx, "items")
        self.n_transactions_ = miner.n_transactions_
        rules = miner.rules_frame(itemsets, min_confidence=self.min_confidence,
                                  min_lift=self.min_lift, max_consequent_len=1)
        self.rules_frame_ = rules.select(
            "antecedent", F.col("consequent")[0].alias("consequent"), "confidence", "lift",
            "support", "count", "antecedent_count").persist()
        self.item_prior_frame_ = rows.groupBy("item_idx").agg(
            (F.count(F.lit(1)) / F.lit(float(self.n_transactions_))).alias("prior")).persist()

    def _candidates(self, user_idx: DataFrame, n: int) -> DataFrame:
        F = _f()
        from pyspark.sql import Window

        baskets = self._baskets(self.data_).join(user_idx, "user_idx")
        rules = self.rules_frame_.withColumn("_rule", F.monotonically_increasing_id())
        parts = rules.select("_rule", F.size("antecedent").alias("_n"),
                             F.explode("antecedent").alias("item_idx"))
        applies = (baskets.join(parts, "item_idx").groupBy("user_idx", "_rule", "_n")
                   .agg(F.count(F.lit(1)).alias("_m")).filter(F.col("_m") == F.col("_n")))
        by_rule = applies.join(rules.select("_rule", F.col("consequent").alias("item_idx"),
                                            F.col("confidence").alias("score")), "_rule")
        w = Window.orderBy(F.col("prior").desc(), F.col("item_idx").asc())
        top = self.item_prior_frame_.withColumn("_r", F.row_number().over(w)).filter(
            F.col("_r") <= n).select("item_idx", F.col("prior").alias("score"))
        prior_pairs = user_idx.crossJoin(F.broadcast(top))
        rule_pairs = by_rule.join(self.item_prior_frame_, "item_idx").select(
            "user_idx", "item_idx", F.greatest("score", "prior").alias("score"))
        return (rule_pairs.unionByName(prior_pairs).groupBy("user_idx", "item_idx")
                .agg(F.max("score").alias("score")))

    def _export(self, model: Any, data: Interactions) -> None:
        table = self.rules_frame_.toPandas()
        prior = self.item_prior_frame_.toPandas()
        n_items = data.n_items
        model.n_transactions_ = int(self.n_transactions_)
        model.item_prior_ = np.zeros(n_items)
        model.item_prior_[prior["item_idx"].to_numpy(np.int64)] = prior["prior"].to_numpy()
        # the local order: by antecedent (length, then items), then consequent
        ante = [tuple(sorted(a)) for a in table["antecedent"]]
        order = sorted(range(len(table)),
                       key=lambda r: (len(ante[r]), ante[r], int(table["consequent"][r])))
        lengths = np.array([len(ante[r]) for r in order], dtype=np.int64)
        model.rule_antecedent_indptr_ = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        model.rule_antecedent_indices_ = np.array(
            [i for r in order for i in ante[r]], dtype=np.int32)
        model.rule_consequent_ = table["consequent"].to_numpy(np.int32)[order]
        for attr, col, dtype in (("rule_confidence_", "confidence", np.float64),
                                 ("rule_lift_", "lift", np.float64),
                                 ("rule_support_", "support", np.float64),
                                 ("rule_count_", "count", np.int64),
                                 ("rule_antecedent_count_", "antecedent_count", np.int64)):
            setattr(model, attr, table[col].to_numpy(dtype)[order])
        first = model.rule_antecedent_indices_[model.rule_antecedent_indptr_[:-1]]
        model.rule_first_order_ = np.argsort(first, kind="stable").astype(np.int64)
        model.rule_first_indptr_ = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(first, minlength=n_items), out=model.rule_first_indptr_[1:])

