from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun import ConfigError, DataError, Interactions, UnknownIdError
from chuchun.kernels.baseline import bias_sgd, bias_sgd_numpy
from chuchun.models import BaselineOnly, GlobalMean, Popularity, Random
from chuchun.testing import block_interactions


def _fold(ml100k_dir, n):
    cols = ["user", "item", "rating", "timestamp"]
    tr = pd.read_csv(ml100k_dir / f"u{n}.base", sep="\t", names=cols)
    te = pd.read_csv(ml100k_dir / f"u{n}.test", sep="\t", names=cols)
    return Interactions.from_pandas(tr), te


def test_baseline_als_matches_closed_form_on_tiny_data():
    # one user, two items; with lambda=0 and one epoch the item step is exact
    x = Interactions.from_arrays([1, 1], ["a", "b"], [5.0, 3.0])
    m = BaselineOnly(n_epochs=1, user_regularization=0.0, item_regularization=0.0).fit(x)
    assert m.global_mean_ == 4.0
    np.testing.assert_allclose(m.item_bias_, [1.0, -1.0])
    np.testing.assert_allclose(m.user_bias_, [0.0], atol=1e-12)
    np.testing.assert_allclose(m.predict([1, 1], ["a", "b"]), [5.0, 3.0])


def test_baseline_matches_surprise_on_ml100k_fold(ml100k_dir):
    """Surprise BaselineOnly (ALS, reg_i=10, reg_u=15, 10 epochs) on u1: RMSE 0.9599
    (scikit-surprise 1.1.5, this repository's benchmarks/bench_baselines.py)."""
    train, test = _fold(ml100k_dir, 1)
    pred = BaselineOnly().fit(train).predict(test.user, test.item)
    rmse = float(np.sqrt(np.mean((pred - test.rating.to_numpy()) ** 2)))
    assert abs(rmse - 0.9599) < 0.001


def test_baseline_sgd_is_close_to_als(ml100k_dir):
    train, test = _fold(ml100k_dir, 1)
    p = BaselineOnly(method="sgd").fit(train).predict(test.user, test.item)
    rmse = float(np.sqrt(np.mean((p - test.rating.to_numpy()) ** 2)))
    assert 0.93 < rmse < 0.98


def test_sgd_kernel_agrees_with_twin():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 5, 50).astype(np.int32)
    i = rng.integers(0, 7, 50).astype(np.int32)
    r = rng.uniform(1, 5, 50)
    outs = []
    for fn in (bias_sgd, bias_sgd_numpy):
        bu, bi = np.zeros(5), np.zeros(7)
        fn(u, i, r, 3.0, bu, bi, 0.01, 0.02, 3)
        outs.append((bu, bi))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-12)


def test_unknown_ids_use_zero_bias_and_policies():
    x = block_interactions()
    m = BaselineOnly().fit(x)
    item = x.items.ids[0]
    got = m.predict(["nobody"], [item])[0]
    assert got == pytest.approx(np.clip(m.global_mean_ + m.item_bias_[0], 1, 5))
    assert np.isnan(m.predict(["nobody"], [item], unknown="empty")[0])
    with pytest.raises(UnknownIdError, match="1 user id"):
        m.predict(["nobody"], [item], unknown="error")
    with pytest.raises(ConfigError, match="unknown must be one of"):
        m.predict(["nobody"], [item], unknown="ignore")


def test_popularity_ranks_by_count_and_excludes_seen():
    x = Interactions.from_arrays(["a", "a", "b", "c", "c", "c"], [1, 2, 1, 1, 2, 3])
    m = Popularity().fit(x)
    assert m.recommend(["b"], k=2).to_lists() == [[2, 3]]
    assert m.recommend(["b"], k=3, exclude_seen=False).to_lists() == [[1, 2, 3]]
    assert m.recommend(["c"], k=2).lengths.tolist() == [0]
    assert m.recommend(["zed"], k=1).to_lists() == [[1]]
    assert m.recommend(["b"], k=2, candidates=[3]).to_lists() == [[3]]


def test_rating_models_need_ratings():
    x = Interactions.from_arrays(["a"], [1])
    with pytest.raises(DataError, match="needs explicit ratings"):
        GlobalMean().fit(x)


def test_random_is_reproducible_per_user_not_per_batch():
    x = block_interactions()
    m = Random(random_state=3).fit(x)
    users = x.users.ids[:4]
    batch = m.recommend(users, k=5)
    assert batch.to_lists()[2] == m.recommend(users[2:3], k=5).to_lists()[0]
    other = Random(random_state=4).fit(x).recommend(users, k=5)
    assert batch.to_lists() != other.to_lists()


def test_recommend_for_history_folds_in_a_new_user():
    x = block_interactions()
    m = BaselineOnly().fit(x)
    recs = m.recommend_for_history([[x.items.ids[0]], ["unknown-item"]], k=3,
                                   ratings=[[5.0], [3.0]])
    assert recs.lengths.tolist() == [3, 3]
    assert x.items.ids[0] not in recs.to_lists()[0]
    with pytest.raises(DataError, match="needs their ratings"):
        GlobalMean().fit(x).recommend_for_history([[x.items.ids[0]]])
    flat = GlobalMean().fit(x).recommend_for_history([[x.items.ids[0]]], ratings=[[1.0]], k=2)
    np.testing.assert_allclose(flat.scores[0], x.values.mean(), rtol=1e-6)


def test_k_must_be_positive():
    m = Popularity().fit(block_interactions())
    with pytest.raises(ConfigError, match="k must be a positive int"):
        m.recommend(["u1"], k=0)


def test_fit_rejects_non_interactions():
    with pytest.raises(DataError, match="fit expects a chuchun.data.Interactions"):
        Popularity().fit(pd.DataFrame({"user": [1], "item": [2]}))
