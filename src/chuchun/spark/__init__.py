"""chuchun on Apache Spark: the same data handling, models, hyperparameters and metrics on
Spark DataFrames, with results that come back as ordinary chuchun models.

``pyspark`` is imported here only, on first use (install the ``spark`` extra). Typical use::

    from chuchun.spark import ALS, SparkInteractions, get_session
    from chuchun.spark.evaluation import evaluate, user_holdout

    spark = get_session("local[4]")          # or the session spark-submit created
    data = SparkInteractions.from_parquet("ratings.parquet", spark=spark)
    print(evaluate(ALS(n_factors=64), user_holdout(data, order="time")))
    local = ALS(n_factors=64).fit(data).to_local()   # a chuchun.models.ALS
    chuchun.io.save_model(local, "als-model")       # serve it with `chuchun serve`
"""

from __future__ import annotations

from chuchun._lazy import lazy_exports

_EXPORTS = {
    "ALS": "chuchun.spark.models",
    "AssociationRules": "chuchun.spark.models",
    "BaselineOnly": "chuchun.spark.models",
    "FPGrowth": "chuchun.spark.rules",
    "ImplicitALS": "chuchun.spark.models",
    "ImplicitItemKNN": "chuchun.spark.models",
    "ItemKNN": "chuchun.spark.knn",
    "Popularity": "chuchun.spark.models",
    "SparkInteractions": "chuchun.spark.data",
    "SparkRecommender": "chuchun.spark.models",
    "SparkSplit": "chuchun.spark.evaluation",
    "evaluate": "chuchun.spark.evaluation",
    "get_session": "chuchun.spark._session",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
