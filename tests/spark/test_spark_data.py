from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from chuchun._exceptions import DataError
from chuchun.data import Interactions
from chuchun.spark import SparkInteractions


def _frame(spark, table: pd.DataFrame):
    return spark.createDataFrame(table)


RAW = pd.DataFrame({
    "user": ["b", "a", "a", "c", "b", "zz", "a"],
    "item": [30, 10, 20, 10, 30, 5, 10],
    "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 2.5, 4.5],
    "timestamp": [5, 1, 2, 3, 4, 9, 0],
})


@pytest.mark.parametrize("policy", ["last", "sum"])
def test_duplicate_policies_and_vocabularies_match_local(spark, policy):
    ours = SparkInteractions.from_frame(_frame(spark, RAW), duplicates=policy).to_local()
    ref = Interactions.from_pandas(RAW, duplicates=policy)
    assert ours.users == ref.users and ours.items == ref.items
    assert ours.fingerprint() == ref.fingerprint()  # same indices and values
    got = ours.to_pandas().sort_values(["user", "item"]).reset_index(drop=True)
    want = ref.to_pandas().sort_values(["user", "item"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_distributed_index_is_the_sorted_order_over_many_partitions(spark):
    ids = [f"id{i:04d}" for i in np.random.default_rng(0).permutation(300)]
    frame = spark.createDataFrame(pd.DataFrame({"user": ids, "item": np.arange(300)})).repartition(7)
    data = SparkInteractions.from_frame(frame)
    vocab = data.user_vocabulary()
    assert list(vocab.ids) == sorted(ids)
    idx = data.frame.toPandas()
    assert sorted(idx["user_idx"]) == list(range(300))
    local = data.to_local()
    assert list(local.user_ids[np.argsort(local.item_idx)]) == ids


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [
        (RAW, {}, "duplicate (user, item) pairs, e.g. user 'a' item 10"),
        (RAW, {"user_col": "who", "duplicates": "last"}, "user column 'who' not found"),
        (RAW.assign(rating=["x", "1", "2", "3", "4", "5", "6"]), {"duplicates": "last"},
         "non-numeric values such as 'x'"),
        (RAW.assign(user=[None, "a", "a", "c", "b", "zz", "a"]), {"duplicates": "last"},
         "user column has 1 missing"),
        (RAW, {"duplicates": "last", "rating_scale": (1, 4)}, "outside it"),
    ],
)
def test_bad_input_gets_the_local_messages(spark, table, kwargs, message):
    with pytest.raises(DataError, match=re.escape(message)):
        SparkInteractions.from_frame(_frame(spark, table), **kwargs)


def test_parquet_and_csv(spark, tmp_path):
    RAW.to_parquet(tmp_path / "log.parquet")
    RAW.to_csv(tmp_path / "log.csv", index=False)
    a = SparkInteractions.from_parquet(tmp_path / "log.parquet", spark=spark, duplicates="mean")
    b = SparkInteractions.from_csv(tmp_path / "log.csv", spark=spark, duplicates="mean")
    assert a.to_local().fingerprint() == b.to_local().fingerprint()
    with pytest.raises(DataError, match="file not found"):
        SparkInteractions.from_parquet(tmp_path / "missing.parquet", spark=spark)
