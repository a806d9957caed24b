"""Interaction logs on Spark: external ids mapped to contiguous indices by Spark's own operations.

:class:`SparkInteractions` is the distributed twin of :class:`chuchun.data.Interactions`: the
same column roles, duplicate policies, validation and error messages, and the same vocabularies
(index ``i`` is the ``i``-th smallest id, integers as ``int64`` and everything else as strings),
so a model trained on Spark and brought back with ``to_local()`` answers with the original ids.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from chuchun._exceptions import DataError
from chuchun.data.interactions import AUTO, _DUPLICATE_POLICIES, DuplicatePolicy, Interactions
from chuchun.data.vocabulary import Vocabulary
from chuchun.spark._session import get_session, require_pyspark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkInteractions"]

_ROW_BITS = 33  # monotonically_increasing_id keeps the row number in its lower 33 bits


def _f() -> Any:
    require_pyspark()
    from pyspark.sql import functions

    return functions


class SparkInteractions:
    """An interaction log on Spark, mapped to contiguous indices.

    Attributes
    ----------
    frame : pyspark.sql.DataFrame
        One row per (user, item) pair: ``user_idx`` (int), ``item_idx`` (int), ``rating``
        (double; 1.0 for logs without ratings) and, when present, ``timestamp`` (long, seconds).
    users, items : pyspark.sql.DataFrame
        The vocabularies: ``(user_idx, user_id)`` and ``(item_idx, item_id)``.
    n_users, n_items : int
    has_ratings, has_timestamps : bool
    rating_scale : (float, float) or None

    Build one with :meth:`from_frame`, :meth:`from_parquet`, :meth:`from_csv` or
    :meth:`from_local`.
    """

    def __init__(
        self,
        frame: DataFrame,
        users: DataFrame,
        items: DataFrame,
        n_users: int,
        n_items: int,
        *,
        has_ratings: bool,
        has_timestamps: bool,
        rating_scale: tuple[float, float] | None = None,
    ) -> None:
        self.frame = frame
        self.users = users
        self.items = items
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.has_ratings = bool(has_ratings)
        self.has_timestamps = bool(has_timestamps)
        self.rating_scale = rating_scale
        self._count: int | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        frame: DataFrame,
        *,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = AUTO,
        timestamp_col: str | None = AUTO,
        duplicates: DuplicatePolicy = "error",
        rating_scale: tuple[float, float] | None = None,
    ) -> SparkInteractions:
        """Validate a Spark DataFrame of interactions and map its ids to indices.

        Column roles, defaults (``rating`` and ``timestamp`` when present), the duplicate
        policies and the rating scale mean what they mean in
        :meth:`chuchun.data.Interactions.from_arrays`; "first" and "last" order repeated pairs
        by timestamp and then by row position in the DataFrame.
        """
        F = _f()
        if duplicates not in _DUPLICATE_POLICIES:
            raise DataError(
                f"duplicates must be one of {_DUPLICATE_POLICIES}; got {duplicates!r}"
            )
        columns = list(frame.columns)

        def need(col: str, role: str) -> str:
            if col not in columns:
                raise DataError(f"{role} column {col!r} not found; columns are {columns}")
            return col

        need(user_col, "user")
        need(item_col, "item")
        if rating_col is AUTO:
            rating_col = "rating" if "rating" in columns else None
        if timestamp_col is AUTO:
            timestamp_col = "timestamp" if "timestamp" in columns else None
        if rating_col is not None:
            need(rating_col, "rating")
        if timestamp_col is not None:
            need(timestamp_col, "timestamp")
        if rating_scale is not None and not rating_scale[0] < rating_scale[1]:
            raise DataError(f"rating_scale must be (min, max) with min < max; got {rating_scale}")

        types = dict(frame.dtypes)
        user = _id_column(F.col(user_col), types[user_col])
        item = _id_column(F.col(item_col), types[item_col])
        exprs = [user.alias("user_id"), item.alias("item_id")]
        if rating_col is not None:
            exprs.append(_try_cast(F.col(rating_col), "double").alias("rating"))
        if timestamp_col is not None:
            exprs.append(_timestamp_column(F.col(timestamp_col), types[timestamp_col]))
        exprs.append(F.monotonically_increasing_id().alias("_row"))
        typed = frame.select(
            *exprs, F.col(user_col).alias("_u_raw"), F.col(item_col).alias("_i_raw"),
            *( [F.col(rating_col).alias("_r_raw")] if rating_col is not None else []),
            *( [F.col(timestamp_col).alias("_t_raw")] if timestamp_col is not None else []),
        )
        _validate(typed, types[user_col], types[item_col], rating_col, timestamp_col,
                  rating_scale)
        clean = typed.drop("_u_raw", "_i_raw", "_r_raw", "_t_raw")
        clean = _resolve_duplicates(clean, duplicates, rating_col is not None,
                                    timestamp_col is not None)
        has_ratings = rating_col is not None
        if not has_ratings and duplicates == "sum":
            # as in from_arrays: summed duplicates of an implicit log become counts
            has_ratings = bool(clean.agg(F.max("rating")).collect()[0][0] > 1)
        return cls._index(clean, has_ratings=has_ratings,
                          has_timestamps=timestamp_col is not None, rating_scale=rating_scale)

    @classmethod
    def _index(
        cls, clean: DataFrame, *, has_ratings: bool, has_timestamps: bool,
        rating_scale: tuple[float, float] | None,
    ) -> SparkInteractions:
        """Map ``user_id``/``item_id`` to contiguous indices in sorted id order."""
        F = _f()
        users, n_users = _dense_index(clean.select("user_id").distinct(), "user_id", "user_idx")
        items, n_items = _dense_index(clean.select("item_id").distinct(), "item_id", "item_idx")
        cols = [F.col("user_idx"), F.col("item_idx")]
        cols.append(F.col("rating") if has_ratings else F.lit(1.0).alias("rating"))
        if has_timestamps:
            cols.append(F.col("timestamp"))
        mapped = clean.join(users, "user_id").join(items, "item_id").select(*cols)
        return cls(mapped, users, items, n_users, n_items, has_ratings=has_ratings,
                   has_timestamps=has_timestamps, rating_scale=rating_scale)

    @classmethod
    def from_parquet(
        cls, path: str | os.PathLike[str], *, spark: SparkSession | None = None, **kwargs: Any
    ) -> SparkInteractions:
        """Read Parquet (a file or a directory of parts); ``kwargs`` go to :meth:`from_frame`."""
        spark = spark or get_session()
        path = os.fspath(path)
        _check_exists(path, spark)
        try:
            frame = spark.read.parquet(path)
        except Exception as exc:  # Spark raises AnalysisException and Py4J errors alike
            raise DataError(f"cannot read Parquet {path!r}: {_first_line(exc)}") from None
        return cls.from_frame(frame, **kwargs)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        spark: SparkSession | None = None,
        sep: str = ",",
        header: bool = True,
        names: list[str] | None = None,
        **kwargs: Any,
    ) -> SparkInteractions:
        """Read delimited text (types inferred); ``kwargs`` go to :meth:`from_frame`.

        Without a header pass ``header=False`` and ``names``.
        """
        spark = spark or get_session()
        path = os.fspath(path)
        _check_exists(path, spark)
        frame = spark.read.csv(path, sep=sep, header=header, inferSchema=True)
        if names is not None:
            if len(names) != len(frame.columns):
                raise DataError(
                    f"{len(names)} column names given but {path!r} has {len(frame.columns)} "
                    "columns"
                )
            frame = frame.toDF(*names)
        return cls.from_frame(frame, **kwargs)

    @classmethod
    def from_local(
        cls, data: Interactions, *, spark: SparkSession | None = None
    ) -> SparkInteractions:
        """Ship a local :class:`~chuchun.data.Interactions` to Spark, indices and
        vocabularies unchanged."""
        import pandas as pd

        spark = spark or get_session()
        cols: dict[str, Any] = {"user_idx": data.user_idx, "item_idx": data.item_idx,
                                "rating": data.values.astype(np.float64)}
        if data.timestamps is not None:
            cols["timestamp"] = data.timestamps
        frame = spark.createDataFrame(pd.DataFrame(cols))
        users = spark.createDataFrame(pd.DataFrame(
            {"user_idx": np.arange(data.n_users, dtype=np.int32), "user_id": data.users.ids}))
        items = spark.createDataFrame(pd.DataFrame(
            {"item_idx": np.arange(data.n_items, dtype=np.int32), "item_id": data.items.ids}))
        return cls(frame, users, items, data.n_users, data.n_items,
                   has_ratings=data.has_ratings, has_timestamps=data.timestamps is not None,
                   rating_scale=data.rating_scale)

    # -- views --------------------------------------------------------------------------------
    def count(self) -> int:
        """Number of interactions (computed once)."""
        if self._count is None:
            self._count = int(self.frame.count())
        return self._count

    def __len__(self) -> int:
        return self.count()

    def user_vocabulary(self) -> Vocabulary:
        """The user vocabulary, collected to the driver."""
        return _collect_vocabulary(self.users, "user")

    def item_vocabulary(self) -> Vocabulary:
        """The item vocabulary, collected to the driver."""
        return _collect_vocabulary(self.items, "item")

    def to_local(self) -> Interactions:
        """Collect the log to the driver as :class:`~chuchun.data.Interactions` (same indices)."""
        table = self.frame.toPandas()
        return Interactions(
            self.user_vocabulary(), self.item_vocabulary(),
            table["user_idx"].to_numpy(np.int32), table["item_idx"].to_numpy(np.int32),
            table["rating"].to_numpy(np.float32) if self.has_ratings else None,
            table["timestamp"].to_numpy(np.int64) if self.has_timestamps else None,
            rating_scale=self.rating_scale,
        )

    def with_ids(self, frame: DataFrame) -> DataFrame:
        """Replace ``user_idx`` / ``item_idx`` columns of ``frame`` by ``user_id`` / ``item_id``."""
        out = frame
        if "user_idx" in out.columns:
            out = out.join(self.users, "user_idx").drop("user_idx")
        if "item_idx" in out.columns:
            out = out.join(self.items, "item_idx").drop("item_idx")
        return out

    def subset(self, frame: DataFrame) -> SparkInteractions:
        """A log of some rows of :attr:`frame`, vocabularies compacted to what remains (as
        :meth:`chuchun.data.Interactions.subset`)."""
        F = _f()
        old_users = frame.select(F.col("user_idx").alias("old")).distinct()
        old_items = frame.select(F.col("item_idx").alias("old")).distinct()
        users, n_users = _dense_index(old_users, "old", "user_idx")
        items, n_items = _dense_index(old_items, "old", "item_idx")
        rest = [c for c in frame.columns if c not in ("user_idx", "item_idx")]
        mapped = (
            frame.join(users.withColumnRenamed("old", "_ou"), frame.user_idx == F.col("_ou"))
            .drop(frame.user_idx).drop("_ou")
            .join(items.withColumnRenamed("old", "_oi").withColumnRenamed("item_idx", "_ni"),
                  F.col("item_idx") == F.col("_oi"))
            .drop("item_idx", "_oi").withColumnRenamed("_ni", "item_idx")
            .select("user_idx", "item_idx", *rest)
        )
        user_ids = users.join(self.users.withColumnRenamed("user_idx", "old"), "old").drop("old")
        item_ids = items.join(self.items.withColumnRenamed("item_idx", "old"), "old").drop("old")
        return SparkInteractions(mapped, user_ids, item_ids, n_users, n_items,
                                 has_ratings=self.has_ratings, has_timestamps=self.has_timestamps,
                                 rating_scale=self.rating_scale)

    def persist(self) -> SparkInteractions:
        """Cache the rows and vocabularies (call before fitting several models)."""
        self.frame = self.frame.persist()
        self.users = self.users.persist()
        self.items = self.items.persist()
        return self

    def __repr__(self) -> str:
        kind = "ratings" if self.has_ratings else "implicit"
        stamps = ", timestamps" if self.has_timestamps else ""
        return (f"SparkInteractions({self.n_users} users, {self.n_items} items, {kind}{stamps})")


# -- helpers ------------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_exists(path: str, spark: SparkSession) -> None:
    """A clear error for a missing local file; a path without a scheme on a cluster whose
    default file system is not local (HDFS, S3) is left to Spark."""
    if "://" in path:
        return
    jsc: Any = spark.sparkContext._jsc
    default_fs = str(jsc.hadoopConfiguration().get("fs.defaultFS") or "file:///")
    if default_fs.startswith("file:") and not os.path.exists(path):
        raise DataError(f"file not found: {path!r}")


def _id_column(col: Any, dtype: str) -> Any:
    """Integer ids as long, everything else as string (booleans and fractions are refused in
    :func:`_validate`)."""
    if dtype in ("tinyint", "smallint", "int", "bigint", "float", "double"):
        return col.cast("long")
    return col.cast("string")


def _try_cast(col: Any, dtype: str) -> Any:
    """Cast giving NULL for malformed values (Spark 4 runs in ANSI mode, where a plain cast
    raises); the NULLs are then counted and reported by :func:`_validate`."""
    return col.try_cast(dtype) if hasattr(col, "try_cast") else col.cast(dtype)


def _timestamp_column(col: Any, dtype: str) -> Any:
    F = _f()
    if dtype in ("timestamp", "timestamp_ntz", "date"):
        return F.unix_timestamp(col.cast("timestamp")).cast("long").alias("timestamp")
    if dtype in ("float", "double") or dtype.startswith("decimal("):
        return F.floor(col).cast("long").alias("timestamp")
    if dtype in ("tinyint", "smallint", "int", "bigint"):
        return col.cast("long").alias("timestamp")
    parse = getattr(F, "try_to_timestamp", F.to_timestamp)  # ANSI mode: NULL, not an error
    return F.unix_timestamp(parse(col)).cast("long").alias("timestamp")


def _validate(
    typed: DataFrame,
    user_type: str,
    item_type: str,
    rating_col: str | None,
    timestamp_col: str | None,
    rating_scale: tuple[float, float] | None,
) -> None:
    """One pass over the rows checking everything :meth:`Interactions.from_arrays` checks."""
    F = _f()

    def n(cond: Any) -> Any:
        return F.sum(F.when(cond, 1).otherwise(0))

    aggs = [F.count(F.lit(1)).alias("rows"),
            n(F.col("_u_raw").isNull()).alias("user_null"),
            n(F.col("_i_raw").isNull()).alias("item_null")]
    for role, dtype in (("user", user_type), ("item", item_type)):
        raw = F.col(f"_{role[0]}_raw")
        if dtype in ("float", "double"):
            aggs.append(n(raw.isNotNull() & (F.isnan(raw) | (raw != F.floor(raw))
                                             | (F.abs(raw) == float("inf")))).alias(f"{role}_frac"))
    if rating_col is not None:
        r = F.col("rating")
        aggs += [
            n(r.isNull() & F.col("_r_raw").isNotNull()).alias("rating_text"),
            n(r.isNull() & F.col("_r_raw").isNull() | F.isnan(r)
              | (F.abs(r) == float("inf"))).alias("rating_bad"),
            F.first(F.when(r.isNull() & F.col("_r_raw").isNotNull(), F.col("_r_raw")),
                    ignorenulls=True).alias("rating_example"),
            F.min(r).alias("rating_min"), F.max(r).alias("rating_max"),
        ]
        if rating_scale is not None:
            aggs.append(n((r < rating_scale[0]) | (r > rating_scale[1])).alias("rating_off"))
    if timestamp_col is not None:
        aggs += [n(F.col("_t_raw").isNull()).alias("ts_null"),
                 n(F.col("timestamp").isNull() & F.col("_t_raw").isNotNull()).alias("ts_bad"),
                 F.first(F.when(F.col("timestamp").isNull() & F.col("_t_raw").isNotNull(),
                                F.col("_t_raw").cast("string")), ignorenulls=True)
                 .alias("ts_example")]
    row = typed.agg(*aggs).collect()[0].asDict()
    if row["rows"] == 0:
        raise DataError("empty input: the interaction log has no rows")
    for role, dtype in (("user", user_type), ("item", item_type)):
        if row[f"{role}_null"]:
            raise DataError(f"{role} column has {row[f'{role}_null']} missing (NaN/None) ids; "
                            "every row needs an id")
        if dtype == "boolean":
            raise DataError(f"{role} ids must be integers or strings; got booleans")
        if row.get(f"{role}_frac"):
            raise DataError(f"{role} ids must be integers or strings; got non-integral floats")
    if rating_col is not None:
        if row["rating_text"]:
            raise DataError(
                f"ratings must be numeric; got {row['rating_text']} non-numeric values "
                f"such as {row['rating_example']!r}"
            )
        if row["rating_bad"]:
            raise DataError(
                f"ratings must be finite numbers; got {row['rating_bad']} NaN or infinite values"
            )
        if rating_scale is not None and row["rating_off"]:
            low, high = rating_scale
            raise DataError(
                f"ratings must lie in the declared scale [{low}, {high}]; "
                f"got {row['rating_off']} outside it (min {row['rating_min']}, "
                f"max {row['rating_max']})"
            )
    if timestamp_col is not None:
        if row["ts_null"]:
            raise DataError(f"timestamps must not be missing; got {row['ts_null']} NaN")
        if row["ts_bad"]:
            raise DataError(
                f"timestamps must be numbers or dates; got values such as {row['ts_example']!r}"
            )


def _resolve_duplicates(
    clean: DataFrame, policy: str, has_rating: bool, has_time: bool
) -> DataFrame:
    """Collapse repeated (user, item) pairs by ``policy`` (see ``Interactions.from_arrays``)."""
    F = _f()
    keys = ["user_id", "item_id"]
    if policy == "error":
        dup = (clean.groupBy(*keys).count().filter(F.col("count") > 1)
               .agg(F.count(F.lit(1)).alias("pairs"), F.sum(F.col("count") - 1).alias("extra"),
                    F.min(F.struct(*keys)).alias("example"))  # the first pair in id order, as locally
               .collect()[0])
        if dup["pairs"]:
            ex = dup["example"]
            raise DataError(
                f"{dup['extra']} duplicate (user, item) pairs, e.g. user {ex['user_id']!r} "
                f"item {ex['item_id']!r}; "
                "pass duplicates='last', 'first', 'mean' or 'sum' to combine them"
            )
        return clean.drop("_row")
    order = F.struct(*([F.col("timestamp")] if has_time else []), F.col("_row"))
    values = [c for c in clean.columns if c not in (*keys, "_row")]
    if policy in ("first", "last"):
        if not values:
            return clean.select(*keys).distinct()
        pick = F.min_by if policy == "first" else F.max_by
        grouped = clean.groupBy(*keys).agg(pick(F.struct(*values), order).alias("_v"))
        return grouped.select(*keys, *[F.col(f"_v.{c}").alias(c) for c in values])
    aggs = []
    if has_rating:
        fn = F.avg if policy == "mean" else F.sum
        aggs.append(fn("rating").alias("rating"))
    elif policy == "sum":
        aggs.append(F.count(F.lit(1)).cast("double").alias("rating"))
    if has_time:
        aggs.append(F.max("timestamp").alias("timestamp"))
    if not aggs:  # "mean" of an implicit log without timestamps
        return clean.select(*keys).distinct()
    return clean.groupBy(*keys).agg(*aggs)


def _dense_index(values: DataFrame, col: str, name: str) -> tuple[DataFrame, int]:
    """Number the distinct values of ``col`` 0..n-1 in sorted order, distributedly.

    A range-partitioned sort puts the values in order across partitions; each row's position
    is its row number inside its partition plus the sizes of the partitions before it (a list
    as long as the number of partitions is all that reaches the driver).
    """
    F = _f()
    tagged = values.orderBy(col).select(
        col, F.spark_partition_id().alias("_p"), F.monotonically_increasing_id().alias("_m")
    ).persist()
    sizes: dict[int, int] = dict(tagged.groupBy("_p").count().collect())  # type: ignore[arg-type]
    n_parts = max(sizes) + 1 if sizes else 0
    offsets = np.zeros(n_parts, dtype=np.int64)
    if n_parts:
        counts = np.array([sizes.get(p, 0) for p in range(n_parts)], dtype=np.int64)
        offsets[1:] = np.cumsum(counts)[:-1]
    offset = F.element_at(F.array(*[F.lit(int(o)) for o in offsets]), F.col("_p") + 1) if (
        n_parts) else F.lit(0)
    row = F.col("_m").bitwiseAND(F.lit((1 << _ROW_BITS) - 1))
    out = tagged.select((row + offset).cast("int").alias(name), F.col(col))
    return out, int(sum(sizes.values()))


def _collect_vocabulary(frame: DataFrame, role: str) -> Vocabulary:
    table = frame.orderBy(f"{role}_idx").toPandas()
    ids = table[f"{role}_id"].to_numpy()
    if ids.dtype.kind not in "iu":
        ids = ids.astype(str)
    else:
        ids = ids.astype(np.int64)
    return Vocabulary(ids)
