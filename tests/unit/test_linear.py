"""EASE, SLIM and RP3beta: closed forms and references, kernels, fold-in, explanations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun import ConfigError
from chuchun.data import Interactions
from chuchun.models import EASE, SLIM, RP3beta
from chuchun.models.graph import rp3beta_weights
from chuchun.models.linear import slim_weights
from chuchun.testing import block_interactions


@pytest.fixture(scope="module")
def data() -> Interactions:
    return block_interactions(n_users=60, n_items=30, random_state=3)


def _dense(x: Interactions) -> np.ndarray:
    d = x.csr.toarray().astype(np.float64)
    return (d > 0).astype(np.float64)


# -- EASE ---------------------------------------------------------------------------------------
def test_ease_equals_direct_closed_form(data):
    lam = 7.5
    m = EASE(regularization=lam).fit(data)
    X = _dense(data)
    P = np.linalg.inv(X.T @ X + lam * np.eye(X.shape[1]))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    assert m.weights_.dtype == np.float32
    np.testing.assert_allclose(m.weights_, B, atol=1e-5)
    users = data.users.ids[:7]
    scores = m._score(data.users.index(users))
    np.testing.assert_allclose(scores, X[data.users.index(users)] @ B, atol=1e-5)


def test_ease_refuses_large_catalogue(data):
    with pytest.raises(ConfigError, match=r"30 items.*max_items=29"):
        EASE(max_items=29).fit(data)


def test_ease_uses_values_when_not_binary():
    x = sp.csr_matrix(np.array([[1, 3, 0], [0, 2, 1], [4, 0, 1], [1, 1, 1]], dtype=np.float32))
    inter = Interactions.from_sparse(x)
    m = EASE(regularization=2.0, binary=False).fit(inter)
    X = x.toarray().astype(np.float64)
    P = np.linalg.inv(X.T @ X + 2.0 * np.eye(3))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(m.weights_, B, atol=1e-5)


# -- RP3beta ------------------------------------------------------------------------------------
def _rp3_dense(X: np.ndarray, alpha: float, beta: float, k: int) -> np.ndarray:
    p_ui = (X / X.sum(axis=1, keepdims=True)) ** alpha
    p_iu = (X.T / X.sum(axis=0)[:, None]) ** alpha
    W = p_iu @ p_ui / (X > 0).sum(axis=0)[None, :] ** beta
    np.fill_diagonal(W, 0.0)
    out = np.zeros_like(W)
    for i in range(W.shape[0]):
        order = np.lexsort((np.arange(W.shape[1]), -W[i]))[:k]
        order = order[W[i, order] > 0]
        out[i, order] = W[i, order]
    return out


@pytest.mark.parametrize(("alpha", "beta", "k"), [(1.0, 0.0, 30), (0.7, 0.4, 5), (1.3, 1.0, 8)])
def test_rp3beta_equals_dense_reference(data, alpha, beta, k):
    X = _dense(data)
    got = rp3beta_weights(sp.csr_matrix(X), alpha, beta, k).toarray()
    np.testing.assert_allclose(got, _rp3_dense(X, alpha, beta, k), rtol=1e-5, atol=1e-7)
    m = RP3beta(alpha=alpha, beta=beta, n_neighbors=k).fit(data)
    np.testing.assert_allclose(m.weights_.toarray(), got, rtol=1e-6)
    assert (np.diff(m.weights_.indptr) <= k).all()


def test_rp3beta_normalize_rows_sum_to_one(data):
    m = RP3beta(n_neighbors=6, normalize=True).fit(data)
    sums = np.asarray(m.weights_.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums[sums > 0], 1.0, rtol=1e-5)


# -- SLIM ---------------------------------------------------------------------------------------
def _kkt_violation(X: np.ndarray, W: np.ndarray, l1: float, l2: float) -> float:
    """Largest violation of the optimality conditions of the non-negative ElasticNet."""
    worst = 0.0
    for j in range(X.shape[1]):
        w = W[:, j]
        grad = X.T @ (X @ w - X[:, j]) + l2 * w + l1  # subgradient for w >= 0
        for k in range(X.shape[1]):
            if k == j:
                continue
            worst = max(worst, abs(grad[k]) if w[k] > 0 else max(0.0, -grad[k]))
    return worst


def test_slim_solves_the_elastic_net(data):
    X = _dense(data)
    m = SLIM(l1_regularization=0.5, l2_regularization=2.0, n_neighbors=30, tol=1e-9,
             max_sweeps=500).fit(data)
    W = m.weights_.toarray().astype(np.float64)
    assert (W >= 0).all() and np.all(np.diag(W) == 0)
    assert _kkt_violation(X, W, 0.5, 2.0) < 1e-3
    # a stronger L1 penalty makes the weights sparser
    sparse = SLIM(l1_regularization=5.0, l2_regularization=2.0, n_neighbors=30).fit(data)
    assert sparse.weights_.nnz < m.weights_.nnz


def test_slim_matches_scikit_learn_positive_elastic_net(data):
    from sklearn.linear_model import ElasticNet

    X = _dense(data)
    n = X.shape[0]
    l1, l2 = 0.6, 3.0
    m = SLIM(l1_regularization=l1, l2_regularization=l2, n_neighbors=30, tol=1e-10,
             max_sweeps=1000).fit(data)
    W = m.weights_.toarray()
    alpha = (l1 + l2) / n
    for j in (0, 7, 19):
        Xj = X.copy()
        Xj[:, j] = 0.0
        ref = ElasticNet(alpha=alpha, l1_ratio=l1 / (l1 + l2), positive=True,
                         fit_intercept=False, tol=1e-12, max_iter=100_000).fit(Xj, X[:, j])
        np.testing.assert_allclose(W[:, j], ref.coef_, atol=2e-4)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), l1=st.floats(0.0, 2.0), l2=st.floats(0.1, 5.0),
       k=st.integers(1, 12))
def test_slim_kernel_matches_numpy_twin(seed, l1, l2, k):
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix((rng.random((25, 12)) < 0.3).astype(np.float32))
    a = slim_weights(x, l1, l2, k, max_sweeps=200, tol=1e-8, engine="numba").toarray()
    b = slim_weights(x, l1, l2, k, max_sweeps=200, tol=1e-8, engine="numpy").toarray()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_slim_same_for_any_thread_count(data):
    a = SLIM(n_threads=1, **SLIM._test_params).fit(data).weights_
    b = SLIM(n_threads=2, **SLIM._test_params).fit(data).weights_
    assert (a != b).nnz == 0


# -- shared behaviour ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [EASE, SLIM, RP3beta])
def test_fold_in_reproduces_training_scores(cls, data):
    m = cls(**cls._test_params).fit(data)
    users = data.users.ids[:4]
    u = data.users.index(users)
    hist = [list(data.items.ids[m.interactions_[r].indices]) for r in u]
    folded = m.recommend_for_history(hist, k=5)
    direct = m.recommend(users, k=5)
    np.testing.assert_array_equal(folded.item_idx, direct.item_idx)
    np.testing.assert_allclose(folded.scores, direct.scores, rtol=1e-5)


@pytest.mark.parametrize("cls", [EASE, SLIM, RP3beta])
def test_explain_terms_add_up_to_the_recommended_score(cls, data):
    m = cls(**cls._test_params).fit(data)
    user = data.users.ids[2]
    recs = m.recommend([user], k=3)
    exp = m.explain([user] * 3, recs.item_ids[0], n_reasons=None)
    for e, s in zip(exp, recs.scores[0], strict=True):
        assert e.additive
        assert all(r.kind == "item" for r in e.reasons)
        assert sum(r.contribution for r in e.reasons) == pytest.approx(float(s), rel=1e-4)
        hist = set(data.items.ids[m.interactions_[data.users.index([user])[0]].indices])
        assert {r.id for r in e.reasons} <= hist


@pytest.mark.parametrize("cls", [EASE, SLIM, RP3beta])
def test_similar_items_follow_the_weights(cls, data):
    m = cls(**cls._test_params).fit(data)
    item = data.items.ids[4]
    sim = m.similar_items([item], k=3)
    row = m.weights_[4]
    row = row.toarray().ravel() if sp.issparse(row) else np.asarray(row)
    row[4] = -np.inf
    best = np.argsort(-row, kind="stable")[:3]
    np.testing.assert_array_equal(sim.item_idx[0], best)
    assert item not in set(sim.item_ids[0])


def test_block_structure_is_recovered(data):
    # users of block b interact mostly with items of block b (item index % 3)
    for cls in (EASE, SLIM, RP3beta):
        m = cls(**cls._test_params).fit(data)
        recs = m.recommend(data.users.ids[:30], k=3)
        users = np.array([int(str(u)[1:]) for u in recs.user_ids])
        items = np.vectorize(lambda i: int(str(i)[1:]))(recs.item_ids)
        assert ((items % 3) == (users % 3)[:, None]).mean() > 0.6, cls.__name__  # chance: 1/3


# -- recency-weighted histories -----------------------------------------------------------------
@pytest.fixture(scope="module")
def timed(data) -> Interactions:
    # the same interactions with shuffled timestamps, rows in random order
    rng = np.random.default_rng(5)
    d = data.to_pandas().sample(frac=1.0, random_state=1)
    return Interactions.from_arrays(d["user"], d["item"],
                                    timestamps=rng.permutation(len(d)) * 60)


def test_recency_profiles_decay_by_rank(timed):
    h = 3.0
    m = EASE(regularization=10.0, recency_half_life=h).fit(timed)
    d = timed.to_pandas()
    u = 5
    rows = d[d["user"] == timed.users.ids[u]].sort_values("timestamp", ascending=False)
    expected = np.zeros(timed.n_items)
    expected[timed.items.index(rows["item"].to_numpy())] = 2.0 ** (-np.arange(len(rows)) / h)
    np.testing.assert_allclose(m.profiles_[u].toarray().ravel(), expected, rtol=1e-6)
    plain = EASE(regularization=10.0).fit(timed)
    np.testing.assert_allclose(m.weights_, plain.weights_)  # recency changes scoring only
    np.testing.assert_allclose(m._score(np.array([u]))[0], expected @ m.weights_, rtol=1e-4,
                               atol=1e-6)
    assert not np.allclose(m._score(np.array([u])), plain._score(np.array([u])))


@pytest.mark.parametrize("cls", [EASE, SLIM, RP3beta])
def test_recency_fold_in_reads_the_order(cls, timed):
    m = cls(**cls._test_params, recency_half_life=2.0).fit(timed)
    d = timed.to_pandas().sort_values(["timestamp"])
    users = timed.users.ids[:4]
    hist = [d.loc[d["user"] == u, "item"].tolist() for u in users]  # oldest first
    direct = m.recommend(users, k=5)
    folded = m.recommend_for_history(hist, k=5)
    np.testing.assert_array_equal(folded.item_idx, direct.item_idx)
    np.testing.assert_allclose(folded.scores, direct.scores, rtol=1e-5)
    sub = timed.subset(np.isin(timed.user_ids, users))
    from_log = m.recommend_for_history(sub, k=5)  # ordered by the log's timestamps
    np.testing.assert_allclose(from_log.scores, direct.scores, rtol=1e-5)
    reversed_ = m.recommend_for_history([h[::-1] for h in hist], k=5)
    assert not np.allclose(reversed_.scores, direct.scores)
    # a repeated item counts once, at its latest position
    again = m.recommend_for_history([[hist[0][-1], *hist[0]]], k=5)
    np.testing.assert_allclose(again.scores[0], direct.scores[0], rtol=1e-5)


@pytest.mark.parametrize("cls", [EASE, SLIM, RP3beta])
def test_recency_explain_is_additive(cls, timed):
    m = cls(**cls._test_params, recency_half_life=4.0).fit(timed)
    user = timed.users.ids[3]
    recs = m.recommend([user], k=3)
    for e, s in zip(m.explain([user] * 3, recs.item_ids[0], n_reasons=None), recs.scores[0],
                    strict=True):
        assert sum(r.contribution for r in e.reasons) == pytest.approx(float(s), rel=1e-4)
        assert max(r.detail["value"] for r in e.reasons) <= 1.0


def test_recency_round_trips_and_needs_binary(timed, tmp_path):
    from chuchun import load

    m = RP3beta(n_neighbors=10, recency_half_life=2.0).fit(timed)
    m.save(str(tmp_path / "m"))
    back = load(str(tmp_path / "m"))
    users = timed.users.ids[:6]
    np.testing.assert_allclose(back.recommend(users, k=4).scores,
                               m.recommend(users, k=4).scores)
    with pytest.raises(ConfigError, match="recency_half_life.*binary=True"):
        EASE(binary=False, recency_half_life=2.0).fit(timed)
