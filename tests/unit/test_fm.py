"""Factorization machines, the hybrid model and the feature space, on small synthetic logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from chuchun import ConfigError, DataError
from chuchun.data import Interactions, ItemFeatures, UserFeatures
from chuchun.data.design import FeatureSpace
from chuchun.io import load_model
from chuchun.kernels.fm import cd_sweep_numpy
from chuchun.models import FactorizationMachine, HybridMF
from chuchun.models.fm import (
    _kept_sweeps,
    sample_alpha,
    sample_hyperparameters,
)


def _planted(n_users=40, n_items=30, seed=0, context=False):
    """Ratings 3 + 1.5 * (+1 if the user's taste matches the item's kind else -1) + noise."""
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, 2, n_users)
    kind = rng.integers(0, 2, n_items)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, min(12, n_items - 1), replace=False):
            dev = ["mobile", "desktop"][int(rng.integers(0, 2))]
            r = 3.0 + 1.5 * (1 if taste[u] == kind[i] else -1) + rng.normal(0, 0.1)
            if context:
                r += 0.5 if dev == "mobile" else -0.5
            rows.append((u, i, r, dev))
    log = pd.DataFrame(rows, columns=["user", "item", "rating", "device"])
    users = UserFeatures.from_pandas(
        pd.DataFrame({"user": range(n_users), "taste": [f"t{t}" for t in taste]}),
        categorical=["taste"])
    items = ItemFeatures.from_pandas(
        pd.DataFrame({"item": range(n_items), "kind": [f"t{k}" for k in kind]}),
        categorical=["kind"])
    data = Interactions.from_pandas(log, context_cols=["device"] if context else ())
    return data, users, items, taste, kind


def _liked(data):
    pos = data.subset(data.ratings > 3)
    return Interactions.from_arrays(pos.user_ids, pos.item_ids)


def test_recovers_planted_second_order_interaction():
    data, users, items, taste, kind = _planted()
    m = FactorizationMachine(solver="als", use_ids=False, n_factors=2, n_epochs=30,
                             regularization=0.001, random_state=0)
    m.fit(data, user_features=users, item_features=items)
    pred = m.predict(data.user_ids, data.item_ids)
    assert np.sqrt(np.mean((pred - data.ratings) ** 2)) < 0.2
    # the learned pairwise weights carry the sign of the planted interaction
    fs = m.feature_space
    names = list(fs.feature_names)
    V = m.V_[0].astype(float)

    def inter(a, b):
        return float(V[names.index(a)] @ V[names.index(b)])

    assert inter("taste=t0", "kind=t0") > 0.5
    assert inter("taste=t1", "kind=t1") > 0.5
    assert inter("taste=t0", "kind=t1") < -0.5


def test_mcmc_matches_a_direct_gibbs_sampler():
    data, users, items, *_ = _planted(n_users=8, n_items=6, seed=1)
    params = dict(solver="mcmc", n_factors=2, n_epochs=6, burn_in=2, max_kept_samples=3,
                  random_state=7, clip=False, init_std=0.1)
    m = FactorizationMachine(**params).fit(data, user_features=users, item_features=items)
    fs = m.feature_space
    X = np.hstack([fs.user_block.toarray()[fs.users.index(data.user_ids)],
                   fs.item_block.toarray()[fs.items.index(data.item_ids)]]).astype(float)
    y = data.ratings.astype(float)
    rng = np.random.default_rng(7)
    p, k = X.shape[1], 2
    V = rng.normal(0.0, 0.1, (p, k))
    w0, w = np.zeros(1), np.zeros(p)
    groups = fs.feature_groups
    n_groups = len(fs.group_names)
    s = X @ V
    e = y - (X @ w + 0.5 * (s * s - (X * X) @ (V * V)).sum(axis=1))
    kept = _kept_sweeps(6, 2, 3)
    samples = []
    for sweep in range(6):
        lw, mw, lv, mv = sample_hyperparameters(rng, w, V, groups, n_groups)
        alpha = sample_alpha(rng, e)
        z = rng.standard_normal(1 + p + p * k)
        e = cd_sweep_numpy(X, y, w0, w, V, np.arange(p), lw[groups], mw[groups], lv[groups],
                           mv[groups], 0.0, alpha, z, True, np.arange(p))
        if sweep in kept:
            samples.append((w0.copy(), w.copy(), V.copy()))
    assert len(samples) == m.V_.shape[0] == 3
    direct = np.zeros(len(y))
    for a, b, c in samples:
        s = X @ c
        direct += a[0] + X @ b + 0.5 * (s * s - (X * X) @ (c * c)).sum(axis=1)
    direct /= len(samples)
    got = m.predict(data.user_ids, data.item_ids)
    np.testing.assert_allclose(got, direct, rtol=1e-4, atol=1e-4)


def test_probit_mcmc_matches_a_direct_gibbs_sampler(tmp_path):
    """Albert & Chib's latent-variable step (a truncated normal by the textbook inversion of
    its CDF, z = m + Phi^-1(Phi(a) + q (Phi(b) - Phi(a))) between the standardised bounds),
    then the coordinate-wise Gibbs sweep on the expanded matrix with the noise precision 1."""
    from scipy import special

    data, users, items, *_ = _planted(n_users=8, n_items=6, seed=3)
    labels = np.where(data.ratings > 3, 1.0, 0.0)
    clicks = Interactions.from_arrays(data.user_ids, data.item_ids, labels)
    m = FactorizationMachine(task="classification", solver="mcmc", n_factors=2, n_epochs=6,
                             burn_in=2, max_kept_samples=3, random_state=11, init_std=0.1)
    m.fit(clicks, user_features=users, item_features=items)
    fs = m.feature_space
    X = np.hstack([fs.user_block.toarray()[fs.users.index(data.user_ids)],
                   fs.item_block.toarray()[fs.items.index(data.item_ids)]]).astype(float)
    y = np.where(labels > 0, 1.0, -1.0)
    rng = np.random.default_rng(11)
    p, k = X.shape[1], 2
    V = rng.normal(0.0, 0.1, (p, k))
    w0, w = np.zeros(1), np.zeros(p)
    groups, n_groups = fs.feature_groups, len(fs.group_names)

    def score(w0, w, V):
        s = X @ V
        return w0[0] + X @ w + 0.5 * (s * s - (X * X) @ (V * V)).sum(axis=1)

    kept, samples = _kept_sweeps(6, 2, 3), []
    for sweep in range(6):
        lw, mw, lv, mv = sample_hyperparameters(rng, w, V, groups, n_groups)
        mean = score(w0, w, V)
        u = rng.random(len(y))
        lo = special.ndtr(np.where(y > 0, -mean, -np.inf))
        hi = special.ndtr(np.where(y > 0, np.inf, -mean))
        q = np.where(y > 0, 1 - u, u)  # the same uniform, read from the other end for y = 1
        latent = mean + special.ndtri(lo + q * (hi - lo))
        assert ((latent > 0) == (y > 0)).all()
        z = rng.standard_normal(1 + p + p * k)
        cd_sweep_numpy(X, latent, w0, w, V, np.arange(p), lw[groups], mw[groups], lv[groups],
                       mv[groups], 0.0, 1.0, z, True, np.arange(p))
        if sweep in kept:
            samples.append(score(w0, w, V))
    direct = special.ndtr(np.mean(samples, axis=0))
    got = m.predict(data.user_ids, data.item_ids)
    np.testing.assert_allclose(got, direct, rtol=1e-4, atol=1e-5)
    assert m.solver_ == "mcmc" and np.isfinite(m.history_["train_loss"]).all()
    m.save(tmp_path / "probit")
    again = load_model(tmp_path / "probit").predict(data.user_ids, data.item_ids)
    np.testing.assert_allclose(again, got, rtol=1e-6)


def test_explain_is_exact_and_names_features():
    data, users, items, *_ = _planted(n_users=12, n_items=10, seed=2)
    m = FactorizationMachine(n_factors=3, n_epochs=20, burn_in=5, implicit_users=True,
                             clip=False, random_state=0)
    m.fit(data, user_features=users, item_features=items)
    u, i = data.user_ids[:3], data.item_ids[:3]
    ex = m.explain(u, i, n_reasons=None)
    pred = m.predict(u, i)
    for e, p in zip(ex, pred, strict=True):
        assert e.additive
        total = sum(r.contribution for r in e.reasons)
        assert total == pytest.approx(e.score, abs=1e-4)
        assert e.score == pytest.approx(p, abs=1e-4)
        kinds = {r.kind for r in e.reasons}
        assert {"bias", "interaction", "item", "feature"} <= kinds
        assert any(str(r.id).startswith("user's own") for r in e.reasons)
        ids = [str(r.id) for r in e.reasons if r.kind == "interaction"]
        assert any("taste=" in x and "kind=" in x for x in ids)
    short = m.explain(u[:1], i[:1], n_reasons=3)[0]
    assert len(short.reasons) == 3
    assert short.remainder == pytest.approx(
        short.score - sum(r.contribution for r in short.reasons), abs=1e-9)


@pytest.mark.parametrize("solver", ["mcmc", "sgd"])
def test_save_load_keeps_feature_space_and_samples(tmp_path, solver):
    data, users, items, *_ = _planted(n_users=10, n_items=8, seed=3)
    m = FactorizationMachine(solver=solver, n_factors=2, n_epochs=8, burn_in=2,
                             implicit_users=True, random_state=0)
    m.fit(data, user_features=users, item_features=items)
    m.save(tmp_path / "fm")
    back = load_model(tmp_path / "fm")
    assert isinstance(back, FactorizationMachine)
    np.testing.assert_allclose(back.predict(data.user_ids[:9], data.item_ids[:9]),
                               m.predict(data.user_ids[:9], data.item_ids[:9]), rtol=1e-6)
    a = m.explain(data.user_ids[:1], data.item_ids[:1])[0]
    b = back.explain(data.user_ids[:1], data.item_ids[:1])[0]
    assert a.score == pytest.approx(b.score, rel=1e-6)
    got = back.recommend_for_history([list(data.item_ids[:4])], k=3, ratings=[[5, 4, 3, 2]])
    want = m.recommend_for_history([list(data.item_ids[:4])], k=3, ratings=[[5, 4, 3, 2]])
    assert got.to_lists() == want.to_lists()


def test_context_columns_enter_the_model():
    data, users, items, *_ = _planted(n_users=30, n_items=20, seed=4, context=True)
    assert set(data.context) == {"device"}
    m = FactorizationMachine(solver="als", n_factors=2, n_epochs=20, regularization=0.001,
                             random_state=0)
    m.fit(data, user_features=users, item_features=items, context=["device"])
    u, i = data.user_ids[:5], data.item_ids[:5]
    mob = m.predict_context(u, i, {"device": ["mobile"] * 5})
    desk = m.predict_context(u, i, {"device": ["desktop"] * 5})
    assert np.all(mob - desk > 0.7)
    unseen = m.predict_context(u, i, {"device": ["tablet"] * 5})  # unknown: no feature
    assert np.isfinite(unseen).all() and not np.allclose(unseen, mob)
    with pytest.raises(DataError, match="device"):
        m.predict_context(u, i, {})
    with pytest.raises(DataError, match="not found"):
        FactorizationMachine().fit(data, context=["weather"])


def test_cold_items_ranked_from_features_with_candidates():
    data, users, items, taste, kind = _planted(n_users=40, n_items=30, seed=5)
    new_ids = np.arange(100, 110)
    new_kind = np.array([0, 1] * 5)
    frame = pd.DataFrame({"item": np.r_[np.arange(30), new_ids],
                          "kind": [f"t{k}" for k in np.r_[kind, new_kind]]})
    all_items = ItemFeatures.from_pandas(frame, categorical=["kind"])
    # ALS point estimates let the ids absorb the taste; the sampler spreads it over features
    for model in (FactorizationMachine(n_factors=2, n_epochs=40, burn_in=10, random_state=0),
                  HybridMF(n_factors=8, n_epochs=30, loss="bpr", use_ids=False,
                           random_state=0)):
        # the hybrid ranks from implicit feedback: the liked items only
        log = data if isinstance(model, FactorizationMachine) else _liked(data)
        model.fit(log, user_features=users, item_features=all_items)
        assert set(new_ids) <= set(model.items_.ids.tolist())
        recs = model.recommend(np.arange(40), k=5, candidates=new_ids)
        assert set(np.unique(recs.item_ids)) <= set(new_ids)
        top = recs.item_ids[:, 0].astype(int)
        match = new_kind[top - 100] == taste
        assert match.mean() > 0.9, type(model).__name__


def test_new_users_from_their_attributes():
    data, users, items, taste, kind = _planted(seed=6)
    newcomers = UserFeatures.from_pandas(
        pd.DataFrame({"user": [900, 901], "taste": ["t0", "t1"]}), categorical=["taste"])
    fm = FactorizationMachine(n_factors=2, n_epochs=40, burn_in=10)
    fm.fit(data, user_features=users, item_features=items)
    hy = HybridMF(n_factors=8, n_epochs=30, loss="bpr", use_ids=False)
    hy.fit(_liked(data), user_features=users, item_features=items)
    for model in (fm, hy):
        recs = model.recommend_new_users(newcomers, k=5)
        assert list(recs.user_ids) == [900, 901]
        for row, t in enumerate([0, 1]):
            got = kind[recs.item_ids[row].astype(int)]
            assert (got == t).mean() >= 0.8, type(model).__name__


def test_classification_and_ranking_tasks():
    data, users, items, taste, kind = _planted(seed=7)
    labels = (data.ratings > 3).astype(np.float32)
    clicks = Interactions.from_arrays(data.user_ids, data.item_ids, labels)
    for clf in (FactorizationMachine(task="classification", solver="sgd", n_factors=2,
                                     n_epochs=30, learning_rate=0.05, random_state=0),
                FactorizationMachine(task="classification", n_factors=2, n_epochs=40,
                                     random_state=0)):
        clf.fit(clicks, user_features=users, item_features=items)
        prob = clf.predict(clicks.user_ids, clicks.item_ids)
        assert ((prob > 0) & (prob < 1)).all()
        assert ((prob > 0.5) == (labels > 0)).mean() > 0.9, clf.solver_
    positives = data.subset(data.ratings > 3)
    implicit = Interactions.from_arrays(positives.user_ids, positives.item_ids)
    rank = FactorizationMachine(task="ranking", n_factors=4, n_epochs=40, learning_rate=0.05,
                                random_state=0)
    rank.fit(implicit, user_features=users, item_features=items)
    recs = rank.recommend(np.arange(40), k=3)
    hits = kind[recs.item_ids.astype(int)] == taste[:, None]
    assert hits.mean() > 0.8
    with pytest.raises(ConfigError, match="solver='sgd'"):
        FactorizationMachine(task="ranking", solver="mcmc").fit(implicit)
    with pytest.raises(ConfigError, match="probit"):
        FactorizationMachine(task="classification", solver="als").fit(clicks)
    with pytest.raises(DataError, match="labels"):
        FactorizationMachine(task="classification").fit(data)


def test_sgd_early_stopping_and_callbacks():
    data, users, items, *_ = _planted(seed=8)
    seen = []
    m = FactorizationMachine(solver="sgd", n_epochs=50, validation_fraction=0.2, patience=2,
                             learning_rate=0.05, random_state=0)
    m.fit(data, user_features=users, callbacks=[lambda model, ep, logs: seen.append(logs)])
    assert len(seen) == len(m.history_["train_loss"])
    assert np.isfinite(m.history_["val_loss"]).all()
    stop = FactorizationMachine(solver="sgd", n_epochs=50).fit(
        data, callbacks=[lambda model, ep, logs: ep >= 2])
    assert len(stop.history_["train_loss"]) == 3


def test_parameters_from_text_and_bad_values():
    assert FactorizationMachine.param_specs()["solver"].parse("mcmc") == "mcmc"
    data, *_ = _planted(n_users=6, n_items=6)
    with pytest.raises(ConfigError, match="group_regularization"):
        FactorizationMachine(solver="als", group_regularization="user=-1").fit(data)
    with pytest.raises(ConfigError, match="unknown group"):
        FactorizationMachine(solver="als", group_regularization="genres=0.1").fit(data)
    with pytest.raises(ConfigError, match="burn_in"):
        FactorizationMachine(n_epochs=3, burn_in=3).fit(data)
    m = FactorizationMachine(solver="als", group_regularization="user=0.5, item=0.1",
                             n_epochs=2).fit(data)
    assert m.group_names_ == ["user", "item"]


# -- feature space and context on Interactions ------------------------------------------------
def test_feature_space_blocks_and_names():
    log = pd.DataFrame({"user": ["a", "a", "a", "a", "b"], "item": [1, 2, 3, 4, 1],
                        "rating": [5, 4, 3, 2, 1], "hour": [1, 2, 1, 2, 3],
                        "temp": [0.0, 10.0, 5.0, 5.0, 2.0]})
    data = Interactions.from_pandas(log, context_cols=["hour", "temp"])
    items = ItemFeatures.from_pandas(pd.DataFrame({"item": [1, 2, 9], "genre": ["x", "y", "x"]}),
                                     categorical=["genre"])
    fs = FeatureSpace.build(data, item_features=items, context=["hour", "temp"],
                            implicit_users=True, implicit_items=True)
    assert list(fs.items.ids) == [1, 2, 3, 4, 9]  # the feature-only item 9 joins
    ua = fs.user_block[0].toarray().ravel()
    names = list(fs.feature_names[: fs.n_user_features])
    assert ua[names.index("user=a")] == 1.0
    for it in (1, 2, 3, 4):
        assert ua[names.index(f"rated={it}")] == pytest.approx(0.5)  # 1/sqrt(4)
    assert ua[names.index("rated=9")] == 0.0
    inames = list(fs.feature_names[fs.n_user_features: fs.n_user_features + fs.n_item_features])
    i9 = fs.item_block[4].toarray().ravel()
    assert "item=9" not in inames and i9[inames.index("genre=x")] == 1.0  # no id for cold item
    i1 = fs.item_block[0].toarray().ravel()
    assert i1[inames.index("raters=a")] == pytest.approx(1 / np.sqrt(2))
    assert fs.group_names == ["user", "rated", "item", "genre", "raters", "hour", "temp"]
    ctx = fs.context_rows({"hour": [2, 7], "temp": [5.0, 20.0]}, 2).toarray()
    cnames = list(fs.feature_names[-fs.n_context_features:])
    assert cnames == ["hour=1", "hour=2", "hour=3", "temp"]
    np.testing.assert_allclose(ctx, [[0, 1, 0, 0.5], [0, 0, 0, 2.0]])
    history = sp.csr_matrix(([1.0] * 4, ([0] * 4, [0, 1, 2, 3])), shape=(1, 5))
    hist = fs.new_user_rows(history=history, n=1)
    hist_names = np.array(names)[hist.indices]
    assert set(hist_names) == {f"rated={i}" for i in (1, 2, 3, 4)}
    rebuilt = FeatureSpace.from_state(fs.to_state())
    assert (rebuilt.user_block != fs.user_block).nnz == 0
    assert rebuilt.context_spec == fs.context_spec


def test_interactions_carry_context_columns():
    log = pd.DataFrame({"user": [1, 1, 2, 2], "item": [1, 1, 1, 2], "rating": [1, 2, 3, 4],
                        "timestamp": [1, 5, 2, 3], "device": ["m", "d", "m", "d"]})
    data = Interactions.from_pandas(log, context_cols=["device"], duplicates="last")
    assert len(data) == 3
    table = data.to_pandas().sort_values(["user", "item"])
    assert table["device"].tolist() == ["d", "m", "d"]  # the kept (latest) row's context
    sub = data.subset(np.array([True, False, True]))
    assert len(sub.context["device"]) == 2
    with pytest.raises(DataError, match="context column 'nope' not found"):
        Interactions.from_pandas(log, context_cols=["nope"], duplicates="last")
    with pytest.raises(DataError, match="one value per row"):
        Interactions.from_arrays([1, 2], [1, 2], context={"d": [1]})
