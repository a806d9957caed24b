"""Splits and metrics on Spark, with chuchun's exact definitions, computed where the data is.

The splits are those of :mod:`chuchun.data.splits`: ``holdout`` (exactly
``round(n * test_fraction)`` rows, uniformly at random), ``user_holdout`` (per user, the last
rows by (timestamp, item) or random ones, at least one kept in training) and
``temporal_split`` (the globally latest rows, ordered by (timestamp, user, item)). The
deterministic ones (``user_holdout(order="time")``, ``temporal_split``) select exactly the rows
the local functions select; the random ones draw with Spark's generator instead of NumPy's.
``kfold`` cuts a seeded shuffle of the rows into ``n_folds`` parts of the local sizes (see its
docstring for why the rows in each part differ from the local folds), and
:func:`cross_validate` evaluates a model on every fold.

:func:`evaluate` computes RMSE/MAE/MSE and the ranking metrics of
:mod:`chuchun.metrics.ranking` (precision, recall, F1, hit rate, NDCG, MAP, MRR, coverage at
``k``, training items excluded from the lists, users without relevant items skipped) with
aggregations over the test rows and the recommendation lists; only the final numbers reach the
driver.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from chuchun._exceptions import ConfigError, DataError
from chuchun.metrics.ranking import RANKING_METRICS
from chuchun.spark.data import SparkInteractions, _f
from chuchun.spark.models import SparkRecommender, _top_k

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

__all__ = ["SparkSplit", "cross_validate", "evaluate", "holdout", "kfold", "temporal_split",
           "user_holdout"]

_RATING = ("rmse", "mae", "mse")


@dataclass
class SparkSplit:
    """A train/test split on Spark: ``train`` is a :class:`SparkInteractions` (vocabularies
    compacted to the training rows), ``test`` a DataFrame ``(user_id, item_id, rating[,
    timestamp])`` in external ids."""

    train: SparkInteractions
    test: DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def _check_fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"test_fraction must be a float in (0, 1); got {value!r}")
    return float(value)


def _positions(frame: DataFrame, order: list[Any]) -> DataFrame:
    """``frame`` with ``_pos``, each row's 0-based position in ``order``, computed by a range
    sort and per-partition offsets (no single-partition window)."""
    F = _f()
    tagged = frame.orderBy(*order).withColumn("_p", F.spark_partition_id()).withColumn(
        "_m", F.monotonically_increasing_id()).persist()
    sizes: dict[int, int] = dict(tagged.groupBy("_p").count().collect())  # type: ignore[arg-type]
    n_parts = max(sizes) + 1 if sizes else 1
    counts = np.array([sizes.get(p, 0) for p in range(n_parts)], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(counts)[:-1]]
    offset = F.element_at(F.array(*[F.lit(int(o)) for o in offsets]), F.col("_p") + 1)
    row = F.col("_m").bitwiseAND(F.lit((1 << 33) - 1))
    return tagged.withColumn("_pos", row + offset).drop("_p", "_m")


def _split(data: SparkInteractions, is_test: Any, **info: Any) -> SparkSplit:
    F = _f()
    marked = data.frame.withColumn("_test", is_test).persist()
    counts: dict[bool, int] = dict(marked.groupBy("_test").count().collect())  # type: ignore[arg-type]
    n_test, n_train = int(counts.get(True, 0)), int(counts.get(False, 0))
    method = info.get("method", "split")
    if n_test == 0:
        raise DataError(f"{method} put no rows in the test part ({n_train} rows in the log); "
                        "use a larger test_fraction or more data")
    if n_train == 0:
        raise DataError(f"{method} put all {n_test} rows in the test part, none in training; "
                        "use a smaller test_fraction or more data")
    train = data.subset(marked.filter(~F.col("_test")).drop("_test", "_pos"))
    test = data.with_ids(marked.filter(F.col("_test")).drop("_test", "_pos"))
    return SparkSplit(train, test, {**info, "n_train": n_train, "n_test": n_test})


def holdout(data: SparkInteractions, test_fraction: float = 0.2,
            random_state: int = 0) -> SparkSplit:
    """Random hold-out of exactly ``round(n * test_fraction)`` rows."""
    F = _f()
    frac = _check_fraction(test_fraction)
    n_test = int(round(data.count() * frac))
    keyed = _positions(data.frame.withColumn("_key", F.rand(int(random_state))),
                       [F.col("_key")]).drop("_key")
    return _split(SparkInteractions(keyed, data.users, data.items, data.n_users, data.n_items,
                                    has_ratings=data.has_ratings,
                                    has_timestamps=data.has_timestamps,
                                    rating_scale=data.rating_scale),
                  F.col("_pos") < n_test, method="holdout", test_fraction=frac,
                  random_state=random_state)


def user_holdout(
    data: SparkInteractions,
    test_fraction: float = 0.2,
    last_k: int | None = None,
    order: str = "random",
    random_state: int = 0,
) -> SparkSplit:
    """Per-user hold-out, as :func:`chuchun.data.splits.user_holdout`: each user puts
    ``floor(n_u * test_fraction)`` rows (or ``min(last_k, n_u - 1)``) in test, the latest by
    (timestamp, item) with ``order="time"``."""
    F = _f()
    from pyspark.sql import Window

    frac = _check_fraction(test_fraction)
    if last_k is not None and (isinstance(last_k, bool) or not isinstance(last_k, int)
                               or last_k < 1):
        raise ConfigError(f"last_k must be an int >= 1; got {last_k!r}")
    if order not in ("random", "time"):
        raise ConfigError(f"order must be 'random' or 'time'; got {order!r}")
    if order == "time":
        if not data.has_timestamps:
            raise DataError("user_holdout(order='time') needs timestamps; the log has none")
        frame = data.frame.withColumn("_key", F.col("timestamp"))
    else:
        frame = data.frame.withColumn("_key", F.rand(int(random_state)))
    by_user = Window.partitionBy("user_idx")
    ranked = frame.withColumn("_n", F.count(F.lit(1)).over(by_user)).withColumn(
        "_r", F.row_number().over(by_user.orderBy("_key", "item_idx"))).drop("_key")
    if last_k is None:
        n_test = F.floor(F.col("_n") * F.lit(frac) + F.lit(1e-9))
    else:
        n_test = F.least(F.lit(last_k), F.greatest(F.col("_n") - 1, F.lit(0)))
    marked = ranked.withColumn("_is", F.col("_r") > F.col("_n") - n_test).drop("_n", "_r")
    base = SparkInteractions(marked, data.users, data.items, data.n_users, data.n_items,
                             has_ratings=data.has_ratings, has_timestamps=data.has_timestamps,
                             rating_scale=data.rating_scale)
    split = _split(base, F.col("_is"), method="user_holdout", order=order, last_k=last_k,
                   test_fraction=None if last_k is not None else frac)
    split.train.frame = split.train.frame.drop("_is")
    split.test = split.test.drop("_is")
    return split


def temporal_split(data: SparkInteractions, test_fraction: float = 0.2, *,
                   at: int | None = None) -> SparkSplit:
    """The globally latest rows form the test part, as
    :func:`chuchun.data.splits.temporal_split` (``at``: rows with ``timestamp >= at``)."""
    F = _f()
    if not data.has_timestamps:
        raise DataError("temporal_split needs timestamps; the log has none")
    if at is not None:
        return _split(data, F.col("timestamp") >= int(at), method="temporal_split", at=int(at))
    frac = _check_fraction(test_fraction)
    n = data.count()
    n_test = int(round(n * frac))
    keyed = _positions(data.frame, [F.col("timestamp"), F.col("user_idx"), F.col("item_idx")])
    base = SparkInteractions(keyed, data.users, data.items, data.n_users, data.n_items,
                             has_ratings=data.has_ratings, has_timestamps=True,
                             rating_scale=data.rating_scale)
    return _split(base, F.col("_pos") >= n - n_test, method="temporal_split",
                  test_fraction=frac)


def kfold(data: SparkInteractions, n_folds: int = 5,
          random_state: int | None = 0) -> list[SparkSplit]:
    """K-fold cross-validation by interaction, as :func:`chuchun.data.splits.kfold`.

    The rows are shuffled once and cut into ``n_folds`` parts whose sizes are those of the local
    function (``numpy.array_split``: sizes differ by at most one, the larger parts first); fold
    ``f`` tests on part ``f`` and trains on the others, so the parts are disjoint and every row
    is tested exactly once. The shuffle orders rows by a 64-bit hash of ``(random_state, user,
    item)`` (ties by user, then item), so the folds depend on the seed and the log only, not on
    how Spark partitions it, and no row order is collected to the driver.

    The rows of each fold differ from those of the local ``kfold`` with the same seed: the local
    function permutes row *positions* in the log's stored order with NumPy's sequential
    generator, and a distributed log has neither a stored row order nor that generator. Fold
    sizes, the disjoint cover and the estimator (k-fold means of the same metrics) are the same;
    to evaluate on folds identical to a local run, cut them locally and ship them with
    ``SparkSplit(SparkInteractions.from_local(split.train), test_frame)``.
    """
    F = _f()
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"n_folds must be an int >= 2; got {n_folds!r}")
    if random_state is None:
        random_state = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise ConfigError("random_state must be an int or None on Spark (a NumPy Generator "
                          f"cannot seed a distributed shuffle); got {type(random_state).__name__}")
    n_folds, seed = int(n_folds), int(random_state)
    n = data.count()
    if n < n_folds:
        raise DataError(f"kfold needs at least n_folds={n_folds} rows; the log has {n}")
    key = F.xxhash64(F.lit(seed), F.col("user_idx"), F.col("item_idx"))
    keyed = _positions(data.frame.withColumn("_key", key),
                       [F.col("_key"), F.col("user_idx"), F.col("item_idx")]).drop("_key")
    size, extra = divmod(n, n_folds)  # the first `extra` parts hold size + 1 rows
    cut = extra * (size + 1)
    pos = F.col("_pos")
    fold = F.when(pos < cut, F.floor(pos / (size + 1))).otherwise(
        F.lit(extra) + F.floor((pos - cut) / size)).cast("int")
    marked = keyed.withColumn("_fold", fold).drop("_pos").persist()
    base = SparkInteractions(marked, data.users, data.items, data.n_users, data.n_items,
                             has_ratings=data.has_ratings, has_timestamps=data.has_timestamps,
                             rating_scale=data.rating_scale)
    folds = []
    for f in range(n_folds):
        split = _split(base, F.col("_fold") == f, method="kfold", fold=f + 1,
                       n_folds=n_folds, random_state=seed)
        split.train.frame = split.train.frame.drop("_fold")
        split.test = split.test.drop("_fold")
        folds.append(split)
    return folds


def cross_validate(
    model: SparkRecommender,
    splits: list[SparkSplit] | SparkInteractions,
    metrics: list[str] | None = None,
    k: int = 10,
    relevance_threshold: float | None = None,
    *,
    unknown: str = "fallback",
    n_folds: int = 5,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Evaluate a fresh copy of ``model`` on every fold, as
    :func:`chuchun.evaluation.cross_validate`.

    ``splits``: the folds, or a :class:`SparkInteractions` cut with ``kfold(splits, n_folds,
    random_state)``. ``model`` is left untouched (each fold fits a new instance with the same
    hyperparameters). Returns one row per fold (``"fold 1"``, ...) then ``"mean"`` and
    ``"std"`` (sample standard deviation, ``ddof=1``), one column per metric, count and timing
    of :func:`evaluate`.
    """
    import pandas as pd

    if not isinstance(model, SparkRecommender):
        raise ConfigError(f"cross_validate expects a chuchun.spark model; got "
                          f"{type(model).__name__}")
    if isinstance(splits, SparkInteractions):
        splits = kfold(splits, n_folds=n_folds, random_state=random_state)
    if isinstance(splits, SparkSplit):
        splits = [splits]
    folds = list(splits)
    if not folds:
        raise DataError("cross_validate needs at least one split; got none")
    for f, s in enumerate(folds):
        if not isinstance(s, SparkSplit):
            raise DataError(f"split {f + 1} is a {type(s).__name__}, not a SparkSplit")
    rows = [evaluate(type(model)(**model.get_params()), split, metrics, k,
                     relevance_threshold=relevance_threshold, unknown=unknown)
            for split in folds]
    table = pd.DataFrame(rows, index=[f"fold {f + 1}" for f in range(len(rows))], dtype=float)
    summary = pd.DataFrame([table.mean(), table.std(ddof=1)], index=["mean", "std"])
    return pd.concat([table, summary])


# -- metrics -------------------------------------------------------------------------------------
def evaluate(
    model: SparkRecommender,
    split: SparkSplit,
    metrics: list[str] | None = None,
    k: int = 10,
    fit: bool = True,
    relevance_threshold: float | None = None,
    *,
    unknown: str = "fallback",
) -> dict[str, float]:
    """Fit ``model`` on ``split.train`` and score it on ``split.test``, distributedly.

    The arguments and the returned keys mean what they mean in
    :func:`chuchun.evaluation.evaluate`: rating metrics over the test pairs (unknown pairs get
    the fallback estimate, or are skipped with ``unknown="skip"``); ranking metrics over each
    test user's top-``k`` list with training items excluded, unknown test users getting the
    fallback list (most popular training items; the best :math:`\\mu + b_i` for BaselineOnly)
    and unknown test items staying relevant without ever being hit.
    """
    if not isinstance(model, SparkRecommender):
        raise ConfigError(f"evaluate expects a chuchun.spark model; got {type(model).__name__}")
    if not isinstance(split, SparkSplit):
        raise DataError(f"evaluate expects a SparkSplit; got {type(split).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive int; got {k!r}")
    if unknown not in ("fallback", "skip"):
        raise ConfigError(f"unknown must be 'fallback' or 'skip'; got {unknown!r}")
    if metrics is None:
        names = ([*("rmse", "mae")] if model.predicts_ratings and split.train.has_ratings
                 else []) + list(RANKING_METRICS)
    else:
        names = list(metrics)
    bad = [m for m in names if m not in _RATING and m not in RANKING_METRICS]
    if bad:
        raise ConfigError(f"unknown metric(s) {bad}; choose from "
                          f"{list(_RATING) + list(RANKING_METRICS)}")
    rating_names = [m for m in names if m in _RATING]
    ranking_names = [m for m in names if m in RANKING_METRICS]
    if rating_names and not model.predicts_ratings:
        raise ConfigError(f"{type(model).__name__} does not predict ratings; drop "
                          f"{rating_names} from metrics")
    timings: dict[str, float] = {}
    if fit:
        start = time.perf_counter()
        model.fit(split.train)
        timings["fit_seconds"] = time.perf_counter() - start
    else:
        model._check_fitted()
    start = time.perf_counter()
    F = _f()
    data = model.data_
    test = (split.test.join(data.users, "user_id", "left").join(data.items, "item_id", "left")
            .persist())
    row = test.agg(
        F.count(F.lit(1)).alias("n_test"),
        F.sum(F.col("user_idx").isNull().cast("int")).alias("n_test_unknown_user"),
        F.sum(F.col("item_idx").isNull().cast("int")).alias("n_test_unknown_item"),
        F.sum((F.col("user_idx").isNull() | F.col("item_idx").isNull()).cast("int"))
        .alias("n_test_unknown"),
    ).collect()[0].asDict()
    result: dict[str, float] = {}
    counts: dict[str, float] = {"n_train": float(split.info.get("n_train", data.count())),
                                **{key: float(v or 0) for key, v in row.items()}}
    known = F.col("user_idx").isNotNull() & F.col("item_idx").isNotNull()
    if rating_names:
        pairs = split.test if unknown == "fallback" else test.filter(known).select(
            "user_id", "item_id", "rating")
        pred = model.predict(pairs.select("user_id", "item_id", "rating"))
        err = F.col("prediction") - F.col("rating")
        agg = pred.agg(F.count(F.lit(1)), F.avg(err * err), F.avg(F.abs(err))).collect()[0]
        counts["n_rating_pairs"] = float(agg[0])
        mse = float(agg[1]) if agg[0] else math.nan
        values = {"mse": mse, "rmse": math.sqrt(mse), "mae": float(agg[2]) if agg[0] else
                  math.nan}
        result.update({m: values[m] for m in rating_names})
    if ranking_names:
        relevant = test
        if relevance_threshold is not None:
            relevant = relevant.filter(F.col("rating") >= float(relevance_threshold))
        if unknown == "skip":
            relevant = relevant.filter(known)
        ranking, n_eval, n_unknown = _ranking(model, relevant, k, ranking_names)
        counts["n_users_evaluated"], counts["n_users_unknown"] = n_eval, n_unknown
        result.update(ranking)
    test.unpersist()
    timings["eval_seconds"] = time.perf_counter() - start
    return {**result, **counts, **timings}


def _fallback_list(model: SparkRecommender, k: int) -> DataFrame:
    """``(item_idx, score, rank)``: the list an unknown user gets."""
    F = _f()
    from chuchun.spark.models import BaselineOnly

    scores: DataFrame | None = None
    if isinstance(model, BaselineOnly):
        est = model._clip_column(F.lit(model.global_mean_) + F.col("bi"))
        scores = model.item_bias_frame_.select("item_idx", est.alias("score"))
        if scores.agg(F.max("score") - F.min("score")).collect()[0][0] == 0:
            scores = None
    if scores is None:
        scores = model.data_.frame.groupBy("item_idx").agg(
            F.count(F.lit(1)).cast("double").alias("score"))
    return _top_k(scores.withColumn("user_idx", F.lit(0)), k).drop("user_idx")


def _ranking(
    model: SparkRecommender, relevant: DataFrame, k: int, names: list[str]
) -> tuple[dict[str, float], float, float]:
    F = _f()
    from pyspark.sql import Window

    users = relevant.groupBy("user_id").agg(F.count(F.lit(1)).alias("n_rel"),
                                            F.first("user_idx", ignorenulls=True)
                                            .alias("user_idx")).persist()
    known = users.filter(F.col("user_idx").isNotNull()).select("user_idx")
    recs = model._recommend_idx(known, k, True).select("user_idx", "item_idx", "rank")
    recs = users.filter(F.col("user_idx").isNotNull()).join(recs, "user_idx").select(
        "user_id", "item_idx", "rank")
    cold = users.filter(F.col("user_idx").isNull()).select("user_id")
    recs = recs.unionByName(cold.crossJoin(F.broadcast(
        _fallback_list(model, k).select("item_idx", "rank"))))
    hits = recs.join(relevant.filter(F.col("item_idx").isNotNull()).select(
        "user_id", "item_idx").distinct(), ["user_id", "item_idx"])
    w = Window.partitionBy("user_id").orderBy("rank")
    hits = hits.withColumn("_h", F.row_number().over(w))
    per_hit = hits.groupBy("user_id").agg(
        F.count(F.lit(1)).alias("hits"),
        F.sum(F.lit(1.0) / F.log2(F.col("rank") + F.lit(1.0))).alias("dcg"),
        F.sum(F.col("_h") / F.col("rank")).alias("ap_sum"),
        F.min("rank").alias("first"),
    )
    ideal = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64)))]
    idcg = F.element_at(F.array(*[F.lit(float(v)) for v in ideal]),
                        F.least(F.col("n_rel"), F.lit(k)).cast("int") + 1)
    per_user = users.join(per_hit, "user_id", "left").fillna(0, ["hits", "dcg", "ap_sum"])
    hits_c, n_rel = F.col("hits").cast("double"), F.col("n_rel").cast("double")
    precision = hits_c / F.lit(float(k))
    recall = hits_c / F.greatest(n_rel, F.lit(1.0))
    exprs = {
        "precision": precision,
        "recall": recall,
        "f1": F.when(precision + recall > 0, 2 * precision * recall / (precision + recall))
        .otherwise(0.0),
        "hit_rate": (F.col("hits") > 0).cast("double"),
        "ndcg": F.when(idcg > 0, F.col("dcg") / idcg).otherwise(0.0),
        "map": F.col("ap_sum") / F.greatest(F.least(n_rel, F.lit(float(k))), F.lit(1.0)),
        "mrr": F.when(F.col("hits") > 0, F.lit(1.0) / F.col("first")).otherwise(0.0),
    }
    chosen = [m for m in names if m != "coverage"]
    aggs = [F.avg(exprs[m]).alias(m) for m in chosen]
    aggs += [F.count(F.lit(1)).alias("_n"),
             F.sum(F.col("user_idx").isNull().cast("int")).alias("_cold")]
    row = per_user.agg(*aggs).collect()[0].asDict()
    out = {f"{m}@{k}": float(row[m]) if row[m] is not None else math.nan for m in chosen}
    if "coverage" in names:
        n_items = model.n_items_
        covered = recs.filter(F.col("item_idx") < n_items).select("item_idx").distinct().count()
        out[f"coverage@{k}"] = covered / n_items
    users.unpersist()
    ordered = {f"{m}@{k}": out[f"{m}@{k}"] for m in names}
    return ordered, float(row["_n"]), float(row["_cold"] or 0)
