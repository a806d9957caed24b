"""Spark ItemKNN against the local ItemKNN (exact mode), and k-fold on Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun.io import load_model, save_model
from chuchun.models import ItemKNN as LocalItemKNN
from chuchun.spark import ItemKNN, SparkInteractions
from chuchun.spark import evaluation as spark_eval

# both sides are built with these explicit values (the local defaults may change)
CONFIGS = [
    {"similarity": "pearson_baseline", "prediction": "baseline", "shrinkage": 100.0,
     "min_support": 1, "damping": 1.0, "n_neighbors": 40, "max_stored": None,
     "min_neighbors": 1, "user_regularization": 15.0, "item_regularization": 10.0,
     "bias_epochs": 3, "clip": True},
    {"similarity": "msd", "prediction": "zscore", "shrinkage": 10.0, "min_support": 3,
     "damping": 0.0, "n_neighbors": 10, "max_stored": 30, "min_neighbors": 2,
     "user_regularization": 15.0, "item_regularization": 10.0, "bias_epochs": 3,
     "clip": True},
]


@pytest.fixture(scope="module")
def knn_slice(ml100k_u1):
    """Every tenth user of MovieLens 100K u1.base and their u1.test pairs on known items."""
    train = ml100k_u1.train
    train = train.subset(np.isin(train.user_idx, np.arange(0, train.n_users, 10)))
    test = ml100k_u1.test.to_pandas()
    test = test[test["user"].isin(train.users.ids) & test["item"].isin(train.items.ids)]
    return train, test.head(600)


@pytest.mark.parametrize("config", CONFIGS, ids=["pearson_baseline", "msd_zscore"])
def test_item_knn_predicts_like_local_item_knn(spark, knn_slice, config, tmp_path):
    train, test = knn_slice
    data = SparkInteractions.from_local(train, spark=spark)
    ours = ItemKNN(**config).fit(data)
    ref = LocalItemKNN(**config).fit(train)
    pairs = spark.createDataFrame(test.rename(columns={"user": "user_id", "item": "item_id"})
                                  [["user_id", "item_id"]])
    got = ours.predict(pairs).toPandas().sort_values(["user_id", "item_id"])
    want = ref.predict(got["user_id"].to_numpy(), got["item_id"].to_numpy())
    np.testing.assert_allclose(got["prediction"].to_numpy(), want, rtol=0, atol=1e-6)
    # the same stored neighbours
    sims = ours.similarity_matrix()
    local_sims = ref.similarity_.tocsr()
    assert sims.nnz == local_sims.nnz
    # the local model stores a bounded neighbour list in float32 (max_stored=None: float64)
    tol = 1e-9 if ref.similarity_.dtype == np.float64 else 1e-6
    assert abs(sims - local_sims).max() <= tol
    # the same top-5 lists (ranked by the unclipped estimate, training items excluded)
    users = list(train.users.ids[:12])
    table = ours.recommend(users, k=5).toPandas().sort_values(["user_id", "rank"])
    lists = {u: list(g["item_id"]) for u, g in table.groupby("user_id")}
    recs = ref.recommend(users, 5)
    assert lists == {u: [x for x in row if x is not None]
                     for u, row in zip(users, recs.item_ids.tolist(), strict=True)}
    # and back as a local artifact that predicts the same
    local = ours.to_local()
    assert isinstance(local, LocalItemKNN)
    save_model(local, tmp_path / "knn")
    loaded = load_model(tmp_path / "knn")
    np.testing.assert_allclose(loaded.predict(got["user_id"].to_numpy(),
                                              got["item_id"].to_numpy()), want, atol=1e-6)


def test_kfold_parts_are_disjoint_cover_every_row_and_have_local_sizes(spark, small_log):
    from chuchun.data import splits as local_splits

    data = SparkInteractions.from_local(small_log, spark=spark)
    folds = spark_eval.kfold(data, n_folds=3, random_state=5)
    local = local_splits.kfold(small_log, n_folds=3, random_state=5)
    tests = [set(zip(*f.test.select("user_id", "item_id").toPandas().to_numpy().T))
             for f in folds]
    everything = set(zip(small_log.user_ids, small_log.item_ids))
    assert [len(t) for t in tests] == [len(s.test) for s in local]
    assert set().union(*tests) == everything
    assert sum(len(t) for t in tests) == len(everything)  # disjoint
    for f, t in zip(folds, tests, strict=True):
        train = f.train.to_local()
        assert set(zip(train.user_ids, train.item_ids)) == everything - t
    again = spark_eval.kfold(data.subset(data.frame.repartition(5)), n_folds=3, random_state=5)
    assert set(zip(*again[0].test.select("user_id", "item_id").toPandas().to_numpy().T)) \
        == tests[0]
    other = spark_eval.kfold(data, n_folds=3, random_state=6)
    assert set(zip(*other[0].test.select("user_id", "item_id").toPandas().to_numpy().T)) \
        != tests[0]


def test_cross_validate_evaluates_every_fold(spark, small_log):
    from chuchun.spark import Popularity

    data = SparkInteractions.from_local(small_log, spark=spark)
    model = Popularity()
    table = spark_eval.cross_validate(model, data, metrics=["recall", "ndcg"], k=5, n_folds=2,
                                      random_state=1)
    assert list(table.index) == ["fold 1", "fold 2", "mean", "std"]
    assert not model.is_fitted
    folds = spark_eval.kfold(data, n_folds=2, random_state=1)
    first = spark_eval.evaluate(Popularity(), folds[0], metrics=["recall", "ndcg"], k=5)
    assert table.loc["fold 1", "ndcg@5"] == pytest.approx(first["ndcg@5"])
    assert table.loc["mean", "recall@5"] == pytest.approx(
        table.loc[["fold 1", "fold 2"], "recall@5"].mean())
    assert table.loc["fold 1", "n_test"] + table.loc["fold 2", "n_test"] == len(small_log)
    assert isinstance(table, pd.DataFrame)
