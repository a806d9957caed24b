"""Spark results against MLlib called directly and against chuchun's local models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun.evaluation import evaluate as local_evaluate
from chuchun.models import ALS as LocalALS
from chuchun.models import ImplicitItemKNN as LocalItemKNN
from chuchun.rules import FPGrowth as LocalFPGrowth
from chuchun.rules import read_baskets
from chuchun.spark import ALS, FPGrowth, ImplicitItemKNN, SparkInteractions
from chuchun.spark.evaluation import SparkSplit, evaluate

PARAMS = {"n_factors": 10, "n_epochs": 10, "regularization": 0.1, "random_state": 7}


def test_als_matches_mllib_direct_and_local_on_ml100k_u1(spark, ml100k_u1):
    from pyspark.ml.recommendation import ALS as MLlibALS

    split = ml100k_u1
    train = SparkInteractions.from_local(split.train, spark=spark)
    test = spark.createDataFrame(split.test.to_pandas().rename(
        columns={"user": "user_id", "item": "item_id"})[["user_id", "item_id", "rating"]])
    ours = evaluate(ALS(**PARAMS, clip=False), SparkSplit(train, test), metrics=["rmse"],
                    unknown="skip")["rmse"]

    # MLlib called directly with the mapped parameters, on the raw ids
    raw_train = spark.createDataFrame(split.train.to_pandas()[["user", "item", "rating"]])
    mapped = {ALS.spark_names[name]: value for name, value in PARAMS.items()}
    direct_model = MLlibALS(userCol="user", itemCol="item", ratingCol="rating",
                            coldStartStrategy="drop", **mapped).fit(raw_train)
    raw_test = spark.createDataFrame(split.test.to_pandas()[["user", "item", "rating"]])
    pred = direct_model.transform(raw_test).toPandas()
    direct = float(np.sqrt(np.mean((pred["prediction"] - pred["rating"]) ** 2)))

    local = local_evaluate(LocalALS(**PARAMS, biased=False, weighted=True, clip=False), split,
                           metrics=["rmse"], unknown="skip")["rmse"]
    assert 0.85 < ours < 1.1
    assert abs(ours - direct) <= 0.005, (ours, direct)
    assert abs(ours - local) <= 0.01, (ours, local)


def test_distributed_item_cosine_equals_local_top_k(spark, ml100k_u1):
    train = ml100k_u1.train
    data = SparkInteractions.from_local(train, spark=spark)
    k = 20
    ours = ImplicitItemKNN(n_neighbors=k).fit(data).similarity_matrix()
    ref = LocalItemKNN(n_neighbors=k).fit(train).similarity_
    assert ours.shape == ref.shape
    assert np.array_equal(np.diff(ours.indptr), np.diff(ref.indptr))
    diff = abs(ours - ref)
    assert diff.max() <= 1e-6
    # the same neighbours, except where a tie at the k-th value was broken on rounding noise
    same = (ours != 0).multiply(ref != 0)
    assert same.nnz >= 0.999 * ref.nnz


def test_fpgrowth_itemsets_and_rules_equal_local_on_groceries(spark, datasets_dir):
    tx = read_baskets(datasets_dir / "groceries" / "groceries.csv")
    ref_sets = LocalFPGrowth(min_support=0.005).mine(tx)
    ref_rules = ref_sets.rules(min_confidence=0.1).to_pandas()

    baskets = spark.createDataFrame(pd.DataFrame({"items": [sorted(map(str, b))
                                                            for b in tx.baskets()]}))
    miner = FPGrowth(min_support=0.005)
    frame = miner.mine_frame(baskets).persist()
    ours_sets = miner.mine(baskets)
    assert ours_sets.to_dict() == ref_sets.to_dict()
    assert miner.min_count_ == ref_sets.min_count
    ours_rules = miner.rules(frame, min_confidence=0.1).to_pandas()
    assert (ref_rules["consequent"].map(len) > 1).any()  # multi-item consequents are covered
    key = ["antecedent", "consequent"]
    merged = ref_rules.merge(ours_rules, on=key, how="outer", suffixes=("_ref", "_spark"),
                             indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts()
    for col in ("support", "confidence", "lift", "leverage", "conviction", "count"):
        assert np.array_equal(merged[f"{col}_ref"].to_numpy(), merged[f"{col}_spark"].to_numpy()), col
