"""Spark models against the local ones: same state, same lists, artifacts that load."""

from __future__ import annotations

import numpy as np
import pytest

from chuchun.io import load_model, save_model
from chuchun.models import ALS as LocalALS
from chuchun.models import AssociationRules as LocalRules
from chuchun.models import BaselineOnly as LocalBaseline
from chuchun.models import Popularity as LocalPopularity
from chuchun.spark import (
    ALS,
    AssociationRules,
    BaselineOnly,
    ImplicitALS,
    ImplicitItemKNN,
    Popularity,
    SparkInteractions,
)


@pytest.fixture(scope="module")
def data(spark, small_log):
    return SparkInteractions.from_local(small_log, spark=spark).persist()


def _lists(frame, k):
    table = frame.toPandas().sort_values(["user_id", "rank"])
    return {u: list(g["item_id"]) for u, g in table.groupby("user_id")}


def _local_lists(model, users, k):
    recs = model.recommend(users, k)
    return {u: [x for x in row if x is not None] for u, row in zip(users, recs.item_ids.tolist())}


def test_als_to_local_saves_loads_and_scores_like_spark(data, small_log, tmp_path):
    model = ALS(n_factors=4, n_epochs=5, random_state=1).fit(data)
    local = model.to_local()
    assert isinstance(local, LocalALS) and local.get_params()["biased"] is False
    save_model(local, tmp_path / "als")
    loaded = load_model(tmp_path / "als")
    users = small_log.users.ids
    spark_lists = _lists(model.recommend(k=5), 5)
    assert spark_lists == _local_lists(loaded, users, 5)
    pairs = small_log.to_pandas().head(50)
    frame = data.frame.sparkSession.createDataFrame(
        pairs.rename(columns={"user": "user_id", "item": "item_id"})[["user_id", "item_id"]])
    got = model.predict(frame).toPandas().sort_values(["user_id", "item_id"])
    want = loaded.predict(got["user_id"], got["item_id"])
    np.testing.assert_allclose(got["prediction"], want, rtol=1e-5, atol=1e-5)
    # and back: the local model scores on Spark with the same numbers
    again = ALS.from_local(loaded, spark=data.frame.sparkSession)
    back = again.predict(frame).toPandas().sort_values(["user_id", "item_id"])
    np.testing.assert_allclose(back["prediction"], want, rtol=1e-5, atol=1e-5)


def test_popularity_and_baseline_equal_local_fits(data, small_log):
    users = small_log.users.ids
    pop = Popularity().fit(data)
    assert _lists(pop.recommend(k=4), 4) == _local_lists(LocalPopularity().fit(small_log),
                                                         users, 4)
    for damping in (0.0, 30.0, None):  # None: the default discount
        params = {"n_epochs": 5} if damping is None else {"n_epochs": 5,
                                                          "ranking_damping": damping}
        base = BaselineOnly(**params).fit(data)
        local = base.to_local()
        ref = LocalBaseline(**params).fit(small_log)
        assert local.get_params()["ranking_damping"] == ref.get_params()["ranking_damping"]
        np.testing.assert_allclose(local.user_bias_, ref.user_bias_, atol=1e-9)
        np.testing.assert_allclose(local.item_bias_, ref.item_bias_, atol=1e-9)
        # the support discount ranks per user on Spark as locally
        assert _lists(base.recommend(k=4), 4) == _local_lists(ref, users, 4)


def test_als_ranks_with_the_support_discount_like_local(data, small_log):
    users = small_log.users.ids
    model = ALS(n_factors=4, n_epochs=5, random_state=1, ranking_damping=0.0).fit(data)
    lists = {}
    for damping in (0.0, 20.0):  # the same factors, ranked without and with the discount
        model.set_params(ranking_damping=damping)
        local = model.to_local()
        assert local.get_params()["ranking_damping"] == damping
        frame = model.recommend(k=5).toPandas()
        lists[damping] = _lists(model.recommend(k=5), 5)
        assert lists[damping] == _local_lists(local, users, 5)
        want = local.recommend(frame["user_id"].unique().tolist(), 5)
        got = frame.sort_values(["user_id", "rank"]).groupby("user_id")["score"].apply(list)
        for user, scores in zip(want.user_ids, want.scores.tolist()):
            np.testing.assert_allclose(got[user], scores[:len(got[user])], rtol=1e-4,
                                       atol=1e-5)
    assert lists[20.0] != lists[0.0]


def test_als_long_fit_cuts_the_lineage_with_a_checkpoint_directory(spark, data, tmp_path):
    """Many sweeps fit (the checkpoints cut MLlib's lineage); a temporary checkpoint directory
    is set for the fit and removed after it, and a directory the user set is used and kept."""
    import tempfile
    from pathlib import Path

    sc = spark.sparkContext
    assert sc.getCheckpointDir() is None
    root = Path(tempfile.gettempdir())
    before = set(root.glob("chuchun-checkpoint-*"))
    model = ImplicitALS(n_factors=2, n_epochs=40, checkpoint_interval=4, random_state=0)
    model.fit(data)
    assert model.mllib_model_.userFactors.count() == data.n_users
    assert sc.getCheckpointDir() is None
    assert set(root.glob("chuchun-checkpoint-*")) == before
    sc.setCheckpointDir(str(tmp_path))
    try:
        ALS(n_factors=2, n_epochs=4, checkpoint_interval=2, random_state=0).fit(data)
        assert sc.getCheckpointDir().startswith(f"file:{tmp_path}")
        assert list(tmp_path.glob("*/rdd-*"))  # MLlib checkpointed into the user's directory
    finally:
        getattr(sc._jsc.sc(), "checkpointDir_$eq")(sc._jvm.scala.Option.empty())


def test_item_knn_and_implicit_als_recommend_like_their_local_models(data, small_log):
    users = small_log.users.ids
    knn = ImplicitItemKNN(n_neighbors=5, shrinkage=2.0).fit(data)
    assert _lists(knn.recommend(k=3), 3) == _local_lists(knn.to_local(), users, 3)
    ials = ImplicitALS(n_factors=3, n_epochs=3, random_state=0).fit(data)
    local = ials.to_local()
    assert local.user_factors_.shape == (small_log.n_users, 3)
    assert _lists(ials.recommend(k=3), 3) == _local_lists(local, users, 3)


def test_association_rules_equal_local(data, small_log):
    params = {"min_support": 0.15, "min_confidence": 0.2, "max_len": 3}
    ours = AssociationRules(**params).fit(data)
    local = ours.to_local()
    ref = LocalRules(**params).fit(small_log)
    a = local.rules_.to_pandas().sort_values(["confidence", "lift"]).reset_index(drop=True)
    b = ref.rules_.to_pandas().sort_values(["confidence", "lift"]).reset_index(drop=True)
    assert len(b) > 0
    assert set(zip(a["antecedent"], a["consequent"])) == set(zip(b["antecedent"],
                                                                 b["consequent"]))
    users = small_log.users.ids
    assert _lists(ours.recommend(k=3), 3) == _local_lists(ref, users, 3)


def test_als_lists_stay_full_for_users_with_long_histories(spark):
    """A user who has seen most of the catalogue, the popular items first, still gets k
    unseen items from MLlib's candidates, as locally."""
    from chuchun.data import Interactions

    rng = np.random.default_rng(5)
    heavy = [(0, i) for i in range(31)]  # 31 = 2^5 - 1 popular items seen by user 0
    light = [(u, int(i)) for u in range(1, 40)
             for i in {*rng.choice(31, size=3, replace=False).tolist(), 31 + u % 9}]
    users, items = np.array(heavy + light).T
    log = Interactions.from_arrays(users, items)
    data = SparkInteractions.from_local(log, spark=spark)
    model = ImplicitALS(n_factors=3, n_epochs=3, random_state=0).fit(data)
    lists = _lists(model.recommend(k=4), 4)
    assert len(lists[0]) == 4 and not set(lists[0]) & set(range(31))
    assert lists == _local_lists(model.to_local(), log.users.ids, 4)
