"""Explicit and implicit kNN: hand-computed predictions, kernel twins, Surprise, explanations."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun import ConfigError, DataError, Interactions, UnknownIdError
from chuchun.kernels.knn import (
    knn_aggregate,
    knn_aggregate_numpy,
    rows_times_sparse,
    rows_times_sparse_numpy,
)
from chuchun.models import ImplicitItemKNN, ImplicitUserKNN, ItemKNN, UserKNN

ML100K = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "datasets", "ml-100k")


@pytest.fixture(scope="module")
def tiny() -> Interactions:
    # users a, b, c; items x, y, z
    rows = [("a", "x", 5), ("a", "y", 3), ("b", "x", 4), ("b", "y", 2), ("b", "z", 5),
            ("c", "x", 1), ("c", "z", 2)]
    u, i, r = zip(*rows, strict=True)
    return Interactions.from_arrays(list(u), list(i), list(r), rating_scale=(1, 5))


def test_user_knn_plain_by_hand(tiny: Interactions) -> None:
    m = UserKNN(similarity="corated_cosine", prediction="plain", shrinkage=0.0,
                damping=0.0).fit(tiny)
    # a and b co-rate x, y: (5*4 + 3*2) / sqrt(34 * 20); a and c co-rate x: 5/sqrt(25)/1 = 1
    s_ab = 26 / np.sqrt(34 * 20)
    pred = m.predict(["a"], ["z"])[0]
    assert pred == pytest.approx((s_ab * 5 + 1.0 * 2) / (s_ab + 1.0), rel=1e-6)
    # the default damping adds 1 to the similarity sum
    damped = UserKNN(similarity="corated_cosine", prediction="plain", shrinkage=0.0).fit(tiny)
    assert damped.predict(["a"], ["z"])[0] == pytest.approx(
        max((s_ab * 5 + 1.0 * 2) / (1.0 + s_ab + 1.0), 1.0), rel=1e-6)
    m1 = UserKNN(similarity="corated_cosine", prediction="plain", shrinkage=0.0, damping=0.0,
                 n_neighbors=1).fit(tiny)
    assert m1.predict(["a"], ["z"])[0] == pytest.approx(2.0)  # c is the nearest (sim 1)


def test_mean_centered_and_baseline_by_hand(tiny: Interactions) -> None:
    m = UserKNN(similarity="corated_cosine", prediction="mean_centered", shrinkage=0.0,
                damping=0.0, n_neighbors=1).fit(tiny)
    # mean(a) = 4, nearest rater of z is c (mean 1.5, rated 2): 4 + (2 - 1.5)
    assert m.predict(["a"], ["z"])[0] == pytest.approx(4.5)
    b = UserKNN(similarity="corated_cosine", prediction="baseline", shrinkage=0.0,
                damping=0.0, n_neighbors=1).fit(tiny)
    mu, bu, bi = b.global_mean_, b.user_bias_, b.item_bias_
    ua, uc, iz = tiny.users.index(["a", "c"]).tolist() + tiny.items.index(["z"]).tolist()
    expect = mu + bu[ua] + bi[iz] + (2 - (mu + bu[uc] + bi[iz]))
    assert b.predict(["a"], ["z"])[0] == pytest.approx(min(max(expect, 1), 5))


def test_fallback_is_counted_and_documented(tiny: Interactions) -> None:
    m = ItemKNN(similarity="pearson", prediction="mean_centered", shrinkage=0.0, damping=0.0,
                min_neighbors=2).fit(tiny)
    pred = m.predict(["a", "a"], ["z", "x"])
    assert m.last_fallback_count >= 1
    iz = tiny.items.index(["z"])[0]
    assert pred[0] == pytest.approx(m.row_mean_[iz])  # item mean fallback
    plain = UserKNN(similarity="corated_cosine", prediction="plain", min_neighbors=5,
                    shrinkage=0.0).fit(tiny)
    assert plain.predict(["a"], ["z"])[0] == pytest.approx(plain.global_mean_)
    assert plain.last_fallback_count == 1
    # unknown ids follow the base policy
    assert plain.predict(["nobody"], ["z"])[0] == pytest.approx(plain.global_mean_)
    with pytest.raises(UnknownIdError):
        plain.predict(["nobody"], ["z"], unknown="error")


def test_zscore_prediction_runs(tiny: Interactions) -> None:
    raw = ItemKNN(similarity="msd", prediction="zscore", shrinkage=0.0, clip=False,
                  ranking_damping=0.0).fit(tiny)
    users, items = ["a", "b", "c"], ["z", "x", "y"]
    p = raw.predict(users, items)
    # the z-score rule term by term: item mean + item std x weighted neighbour z-scores
    for e, value in zip(raw.explain(users, items, n_reasons=None), p, strict=True):
        assert sum(r.contribution for r in e.reasons) == pytest.approx(value, rel=1e-9)
        assert "item mean" in {r.id for r in e.reasons}
    clipped = ItemKNN(similarity="msd", prediction="zscore", shrinkage=0.0).fit(tiny)
    np.testing.assert_allclose(clipped.predict(users, items), np.clip(p, 1, 5))


def test_explain_item_knn(tiny: Interactions) -> None:
    m = ItemKNN(similarity="corated_cosine", prediction="plain", shrinkage=0.0,
                damping=0.0, ranking_damping=0.0).fit(tiny)
    ex = m.explain("a", "z", labels={"x": "Toy Story", "y": "Heat"})[0]
    assert ex.score == pytest.approx(m.predict(["a"], ["z"])[0])
    assert {r.id for r in ex.reasons} <= {"x", "y"}
    assert all(r.kind == "item" for r in ex.reasons)
    toy = next(r for r in ex.reasons if r.id == "x")
    assert toy.detail["rating"] == 5.0 and toy.label == "Toy Story"
    # plain prediction: each term is similarity x rating / similarity sum
    total = sum(r.detail["similarity"] for r in ex.reasons)
    for r in ex.reasons:
        assert r.contribution == pytest.approx(r.detail["similarity"] * r.detail["rating"] / total)
    assert sum(r.contribution for r in ex.reasons) == pytest.approx(ex.score, rel=1e-9)


def test_explain_user_knn_and_unknown(tiny: Interactions) -> None:
    m = UserKNN(similarity="corated_cosine", prediction="plain", shrinkage=0.0).fit(tiny)
    ex = m.explain("a", "z")[0]
    users = [r for r in ex.reasons if r.kind == "user"]
    assert {r.id for r in users} == {"b", "c"}
    support = [r for r in ex.reasons if r.id == "neighbour support"]
    assert len(support) == 1 and len(ex.reasons) == 3
    with pytest.raises(UnknownIdError):
        m.explain("a", "nope")


def test_max_stored_bounds_memory(tiny: Interactions) -> None:
    m = ItemKNN(similarity="corated_cosine", shrinkage=0.0, max_stored=1).fit(tiny)
    assert np.diff(m.similarity_.indptr).max() <= 1
    full = ItemKNN(similarity="corated_cosine", shrinkage=0.0, max_stored=None).fit(tiny)
    assert full.similarity_.nnz > m.similarity_.nnz


def test_similar_items(tiny: Interactions) -> None:
    m = ItemKNN(similarity="corated_cosine", shrinkage=0.0).fit(tiny)
    sim = m.similar_items(["x"], k=5)
    assert sim.item_ids.shape == (1, 5)
    assert "x" not in sim.to_lists()[0]
    assert np.all(np.diff(sim.scores[0][~np.isnan(sim.scores[0])]) <= 0)
    assert set(sim.to_pandas().columns) == {"query", "rank", "item", "score"}


def test_bad_inputs(tiny: Interactions) -> None:
    implicit = Interactions.from_arrays(["a", "b"], ["x", "y"])
    with pytest.raises(DataError, match="explicit ratings"):
        ItemKNN().fit(implicit)
    with pytest.raises(ConfigError, match="similarity"):
        ItemKNN(similarity="dot").fit(tiny)
    with pytest.raises(ConfigError):
        UserKNN(n_neighbors=0).fit(tiny)
    with pytest.raises(ConfigError, match="prediction"):
        UserKNN(prediction="median").fit(tiny)


@st.composite
def knn_cases(draw: st.DrawFn):
    n_x = draw(st.integers(1, 8))
    n_y = draw(st.integers(1, 6))
    rated = np.array(draw(st.lists(st.booleans(), min_size=n_x * n_y, max_size=n_x * n_y)))
    ratings = np.array(draw(st.lists(st.integers(1, 5), min_size=n_x * n_y,
                                     max_size=n_x * n_y)), dtype=float)
    sims = np.array(draw(st.lists(st.sampled_from([-0.5, 0.0, 0.2, 0.5, 0.5, 0.9]),
                                  min_size=n_x * n_x, max_size=n_x * n_x)))
    k = draw(st.integers(1, 4))
    return n_x, n_y, rated.reshape(n_x, n_y), ratings.reshape(n_x, n_y), sims.reshape(n_x, n_x), k


@settings(max_examples=50, deadline=None)
@given(case=knn_cases())
def test_aggregate_kernel_agrees_with_twin(case) -> None:
    n_x, n_y, rated, ratings, sims, k = case
    np.fill_diagonal(sims, 0.0)
    s = sp.csr_matrix(sims)
    c = sp.csr_matrix(np.where(rated, ratings, 0.0).T)
    c.sort_indices()
    px, py = np.meshgrid(np.arange(n_x), np.arange(n_y), indexing="ij")
    px, py = px.ravel().astype(np.int64), py.ravel().astype(np.int64)
    bounds = np.r_[np.arange(0, len(px), n_y), len(px)].astype(np.int64)
    center = np.linspace(2, 3, n_x)
    scale = np.linspace(0.5, 1.5, n_x)
    offset = np.linspace(-0.2, 0.2, n_y)
    outs = []
    for fn in (knn_aggregate, knn_aggregate_numpy):
        agg, cnt = np.zeros(len(px)), np.zeros(len(px), dtype=np.int64)
        wsum = np.zeros(len(px))
        fn(s.indptr.astype(np.int64), s.indices.astype(np.int64), s.data.astype(float),
           c.indptr.astype(np.int64), c.indices.astype(np.int64), c.data.astype(float),
           px, py, bounds, 3, k, center, scale, offset, agg, cnt, wsum)
        outs.append((agg, cnt, wsum))
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(outs[0][2], outs[1][2], rtol=1e-9, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 9), m=st.integers(1, 7))
def test_rows_times_sparse_agrees_with_twin(seed: int, n: int, m: int) -> None:
    x = sp.random(n, m, density=0.4, random_state=seed, format="csr", dtype=np.float32)
    s = sp.random(m, m, density=0.4, random_state=seed + 1, format="csr", dtype=np.float32)
    rows = np.arange(n, dtype=np.int64)[::-1].copy()
    out1 = np.zeros((n, m), np.float32)
    out2 = np.zeros((n, m), np.float32)
    args = (x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data, rows,
            s.indptr.astype(np.int64), s.indices.astype(np.int64), s.data, m)
    rows_times_sparse(*args, out1)
    rows_times_sparse_numpy(*args, out2)
    np.testing.assert_allclose(out1, out2, rtol=1e-5, atol=1e-6)


def _subset(path: str, n_users: int) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "ts"])
    return df[df.user <= n_users]


def test_matches_surprise_on_a_subset() -> None:
    from surprise import Dataset, KNNBaseline, KNNBasic, KNNWithMeans, Reader

    train = _subset(os.path.join(ML100K, "u1.base"), 150)
    test = _subset(os.path.join(ML100K, "u1.test"), 150).iloc[:1500]
    data = Interactions.from_pandas(train, timestamp_col="ts", rating_scale=(1, 5))
    ts = Dataset.load_from_df(train[["user", "item", "rating"]],
                              Reader(rating_scale=(1, 5))).build_full_trainset()
    cases = [
        (UserKNN(similarity="corated_cosine", prediction="plain", shrinkage=0.0, damping=0.0,
                 max_stored=None),
         KNNBasic(k=40, min_k=1, sim_options={"name": "cosine", "user_based": True},
                  verbose=False)),
        (ItemKNN(similarity="pearson", prediction="mean_centered", shrinkage=0.0, damping=0.0,
                 max_stored=None),
         KNNWithMeans(k=40, min_k=1, sim_options={"name": "pearson", "user_based": False},
                      verbose=False)),
        (ItemKNN(similarity="pearson_baseline", prediction="baseline", shrinkage=100.0,
                 damping=0.0,
                 max_stored=None),
         KNNBaseline(k=40, min_k=1, sim_options={"name": "pearson_baseline",
                                                 "user_based": False}, verbose=False)),
    ]
    for ours, theirs in cases:
        ours.fit(data)
        theirs.fit(ts)
        p = ours.predict(test.user.to_numpy(), test.item.to_numpy())
        known = data.items.index(test.item.to_numpy()) >= 0
        q = np.array([theirs.predict(u, i).est for u, i in
                      zip(test.user.to_numpy(), test.item.to_numpy(), strict=True)])
        np.testing.assert_allclose(p[known], q[known], atol=1e-4)


# -- implicit ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clicks() -> Interactions:
    rng = np.random.default_rng(3)
    u = rng.integers(0, 30, 300)
    i = rng.integers(0, 25, 300)
    frame = pd.DataFrame({"user": u, "item": i}).drop_duplicates()
    return Interactions.from_pandas(frame, rating_col=None, timestamp_col=None)


def test_implicit_item_knn_scores_sum_similarities(clicks: Interactions) -> None:
    m = ImplicitItemKNN(n_neighbors=5).fit(clicks)
    assert np.diff(m.similarity_.indptr).max() <= 5
    scores = m._score(np.arange(4))
    expect = (clicks.csr[:4] @ m.similarity_).toarray()
    np.testing.assert_allclose(scores, expect, rtol=1e-5, atol=1e-6)
    # fold-in of an existing user's history gives that user's scores
    row = clicks.csr[0]
    hist = m.recommend_for_history([list(clicks.items.ids[row.indices])], k=5)
    assert np.array_equal(hist.item_idx[0], m.recommend([clicks.users.ids[0]], k=5).item_idx[0])


def test_implicit_item_knn_explain_terms_add_up(clicks: Interactions) -> None:
    m = ImplicitItemKNN(n_neighbors=5).fit(clicks)
    user = clicks.users.ids[0]
    top = m.recommend([user], k=1)
    item = top.item_ids[0, 0]
    exp = m.explain(user, item, labels=lambda x: f"item-{x}", n_reasons=None)[0]
    assert exp.score == pytest.approx(float(top.scores[0, 0]), rel=1e-5)
    assert sum(r.weight for r in exp.reasons) == pytest.approx(exp.score, rel=1e-5)
    weights = [r.weight for r in exp.reasons]
    assert weights == sorted(weights, reverse=True)
    seen = set(clicks.items.ids[clicks.csr[0].indices].tolist())
    assert {r.id for r in exp.reasons} <= seen
    assert exp.reasons[0].label == f"item-{exp.reasons[0].id}"
    assert "item-" in str(exp)
    with pytest.raises(ConfigError, match="n_reasons"):
        m.explain(user, item, n_reasons=-1)


@pytest.mark.parametrize("weighting", ["tfidf", "bm25"])
@pytest.mark.parametrize("sim", ["cosine", "jaccard", "dot"])
def test_implicit_weightings(clicks: Interactions, weighting: str, sim: str) -> None:
    m = ImplicitItemKNN(n_neighbors=5, weighting=weighting, similarity=sim).fit(clicks)
    recs = m.recommend(clicks.users.ids[:3], k=4)
    assert recs.item_idx.shape == (3, 4)
    assert m.similar_items(clicks.items.ids[:2], k=3).item_idx.shape == (2, 3)


def test_tfidf_weights_by_hand() -> None:
    m = ImplicitItemKNN(weighting="tfidf")
    w = m._weighted(sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0]])))
    # 2 documents; term 0 in both (idf log 1 = 0), term 1 in one (idf log 2)
    np.testing.assert_allclose(w.toarray(), [[0.0, np.log(2)], [0.0, 0.0]])


def test_implicit_user_knn(clicks: Interactions) -> None:
    m = ImplicitUserKNN(n_neighbors=4).fit(clicks)
    scores = m._score(np.arange(3))
    expect = (m.similarity_[:3] @ clicks.csr).toarray()
    np.testing.assert_allclose(scores, expect, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError):
        ImplicitUserKNN(similarity="pearson").fit(clicks)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([0.1, 0.2, 0.2, 0.5, 0.7, 0.9, 1.0]), min_size=1,
                       max_size=40), data=st.data())
def test_kth_largest_agrees_with_twin(values, data) -> None:
    from chuchun.kernels.knn import kth_largest, kth_largest_numpy

    arr = np.array(values)
    k = data.draw(st.integers(1, len(arr)))
    work = np.empty(len(arr))
    assert kth_largest(arr, len(arr), k, work) == kth_largest_numpy(arr, len(arr), k, work)


# -- memory bounded by n_neighbors, ranking by supported predictions ----------------------------
@pytest.fixture(scope="module")
def ratings_log() -> Interactions:
    rng = np.random.default_rng(11)
    u = rng.integers(0, 40, 900)
    i = (rng.zipf(1.6, 900) - 1) % 60
    frame = pd.DataFrame({"user": u, "item": i}).drop_duplicates()
    frame["rating"] = rng.integers(1, 6, len(frame)).astype(float)
    return Interactions.from_pandas(frame, timestamp_col=None, rating_scale=(1, 5))


def test_stored_similarities_scale_with_n_neighbors(ratings_log: Interactions) -> None:
    sizes = {}
    for k in (2, 4):
        m = ItemKNN(n_neighbors=k, similarity="cosine", shrinkage=0.0).fit(ratings_log)
        per_row = np.diff(m.similarity_.indptr)
        assert per_row.max() == 2 * k  # 'auto' keeps 2 x n_neighbors
        assert m.similarity_.dtype == np.float32
        sizes[k] = m.similarity_.nnz
    assert sizes[4] > sizes[2]
    full = ItemKNN(n_neighbors=2, similarity="cosine", shrinkage=0.0,
                   max_stored=None).fit(ratings_log)
    assert full.similarity_.dtype == np.float64 and full.similarity_.nnz > sizes[4]
    # what is stored serves prediction: the top-2 of the kept 4 are the top-2 of all
    m2 = ItemKNN(n_neighbors=2, similarity="cosine", shrinkage=0.0, damping=0.0,
                 ranking_damping=0.0).fit(ratings_log)
    users, items = ratings_log.users.ids[:5], ratings_log.items.ids[:5]
    np.testing.assert_allclose(m2.predict(np.repeat(users, 5), np.tile(items, 5)),
                               full.set_params(damping=0.0).predict(np.repeat(users, 5),
                                                                    np.tile(items, 5)),
                               rtol=1e-5)
    with pytest.raises(ConfigError, match="max_stored"):
        ItemKNN(max_stored="many").fit(ratings_log)


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_ranking_discounts_predictions_with_thin_support(ratings_log: Interactions, cls) -> None:
    m = cls(n_neighbors=5, ranking_damping=3.0).fit(ratings_log)
    users = np.arange(6)
    n_items = len(m.items_)
    uu, ii = np.repeat(users, n_items), np.tile(np.arange(n_items), len(users))
    est, fb, mass = m._estimate(uu, ii)
    assert (mass[fb] == 0).all() and (mass[~fb] > 0).all()
    # (unclipped prediction - lowest rating) x (w + eps) / (w + ranking_damping)
    expect = (est - 1.0) * (mass + 1e-6) / (mass + 3.0)
    np.testing.assert_allclose(m._score(users).ravel(), expect, rtol=1e-5, atol=1e-7)
    # more neighbour support, higher score; without it, the rank follows the prediction
    same = cls(n_neighbors=5, ranking_damping=0.0).fit(ratings_log)
    np.testing.assert_allclose(same._score(users).ravel(), est, rtol=1e-6)
    recs = m.recommend(m.users_.ids[users], k=3, exclude_seen=False)
    top_mass = mass.reshape(len(users), n_items)[np.arange(len(users))[:, None], recs.item_idx]
    assert (top_mass > 0).all(), "items without neighbour evidence never lead the list"
    # the explanation adds up to the ranking score through a 'neighbour support' term
    u, i = m.users_.ids[0], m.items_.ids[recs.item_idx[0, 0]]
    ex = m.explain(u, i, n_reasons=None)[0]
    support = [r for r in ex.reasons if r.id == "neighbour support"]
    assert len(support) == 1
    assert ex.score == pytest.approx(float(recs.scores[0, 0]), rel=1e-5)
    rating = support[0].detail["predicted rating"]
    assert rating == pytest.approx(float(same.explain(u, i)[0].score), rel=1e-9)
