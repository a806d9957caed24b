"""Explicit matrix factorization: TruncatedSVD, FunkSVD, SVDpp, ALS."""

from __future__ import annotations

import numpy as np
import pytest

from chuchun import ConfigError, DataError, Interactions, NotFittedError, UnknownIdError
from chuchun.models import ALS, FunkSVD, SVDpp, TruncatedSVD
from chuchun.testing import block_interactions


def low_rank(n_users=120, n_items=80, rank=3, density=0.5, noise=0.05, seed=0):
    """r = 3 + b_u + b_i + p_u.q_i + noise on a random observed subset; returns train, test."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.7, (n_users, rank))
    q = rng.normal(0, 0.7, (n_items, rank))
    bu = rng.normal(0, 0.3, n_users)
    bi = rng.normal(0, 0.3, n_items)
    full = 3.0 + bu[:, None] + bi[None, :] + p @ q.T
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = full[u, i] + rng.normal(0, noise, len(u))
    test = rng.random(len(u)) < 0.15
    train = Interactions.from_arrays(u[~test], i[~test], r[~test].astype(np.float32))
    return train, (u[test], i[test], full[u[test], i[test]])


def rmse(model, test):
    u, i, r = test
    keep = np.isin(u, model.users_.ids) & np.isin(i, model.items_.ids)
    return float(np.sqrt(np.mean((model.predict(u[keep], i[keep]) - r[keep]) ** 2)))


@pytest.fixture(scope="module")
def synthetic():
    return low_rank()


@pytest.fixture(scope="module")
def blocks():
    return block_interactions()


# -- convergence on a matrix with a known answer ------------------------------------------------
def test_models_recover_low_rank_matrix(synthetic):
    train, test = synthetic
    spread = float(np.std(test[2]))  # RMSE of predicting the mean
    models = [
        FunkSVD(n_factors=3, n_epochs=150, learning_rate=0.02, regularization=0.005,
                clip=False),
        SVDpp(n_factors=3, n_epochs=150, learning_rate=0.02, regularization=0.005, clip=False),
        ALS(n_factors=3, n_epochs=20, regularization=0.002, clip=False),
    ]
    for model in models:
        model.fit(train)
        err = rmse(model, test)
        assert err < 0.2 * spread, (type(model).__name__, err, spread)
        assert model.history_["train_rmse"][-1] < model.history_["train_rmse"][0]


def test_truncated_svd_is_exact_on_a_full_low_rank_matrix():
    rng = np.random.default_rng(1)
    full = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 20))
    u, i = np.nonzero(np.ones_like(full))
    data = Interactions.from_arrays(u, i, full[u, i].astype(np.float32))
    model = TruncatedSVD(n_factors=3, center="none").fit(data)
    np.testing.assert_allclose(model.predict(u, i), full[u, i], atol=1e-4)
    np.testing.assert_allclose(model.singular_values_, np.linalg.svd(full)[1][:3], rtol=1e-5)


def test_truncated_svd_centring_beats_no_centring_on_ratings(synthetic):
    train, test = synthetic
    errs = {c: rmse(TruncatedSVD(n_factors=3, center=c).fit(train), test)
            for c in ("none", "mean", "baseline")}
    assert errs["baseline"] < errs["mean"] < errs["none"]


def test_funksvd_unbiased_is_plain_mf(synthetic):
    train, _ = synthetic
    model = FunkSVD(n_factors=3, n_epochs=5, biased=False).fit(train)
    assert model.intercept_ == 0.0
    assert not model.user_bias_.any() and not model.item_bias_.any()
    u, i = train.user_ids[:5], train.item_ids[:5]
    ui, ii = train.user_idx[:5], train.item_idx[:5]
    expect = np.einsum("nk,nk->n", model.user_factors_[ui], model.item_factors_[ii])
    np.testing.assert_allclose(FunkSVD.predict(model.set_params(clip=False), u, i), expect,
                               rtol=1e-5)


# -- early stopping, callbacks, schedule --------------------------------------------------------
def test_early_stopping_restores_best_epoch(synthetic):
    train, _ = synthetic
    seen: list[tuple[int, dict]] = []
    model = FunkSVD(n_factors=20, n_epochs=200, learning_rate=0.03, regularization=0.0,
                    validation_fraction=0.2, patience=2, clip=False)
    model.fit(train, callbacks=[lambda m, epoch, logs: seen.append((epoch, logs))])
    val = model.history_["val_rmse"]
    assert len(val) < 200, "overfitting without regularisation must trigger early stopping"
    assert model.best_epoch_ == int(np.argmin(val))
    assert len(val) == model.best_epoch_ + 3  # patience 2 after the best epoch
    assert val[-1] > val[model.best_epoch_] and val[-2] > val[model.best_epoch_]
    assert [e for e, _ in seen] == list(range(len(val)))
    assert set(seen[0][1]) == {"train_rmse", "val_rmse", "learning_rate"}
    # the restored model is the best one: re-measure the same validation split
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(train))
    vidx = np.sort(perm[: int(round(len(train) * 0.2))])
    est = model.predict(train.user_ids[vidx], train.item_ids[vidx])
    np.testing.assert_allclose(np.sqrt(np.mean((est - train.ratings[vidx]) ** 2)),
                               val[model.best_epoch_], rtol=1e-5)


def test_explicit_validation_set_and_callback_stop(synthetic):
    train, (u, i, r) = synthetic
    val = Interactions.from_arrays(u, i, r.astype(np.float32))
    model = SVDpp(n_factors=3, n_epochs=50)
    model.fit(train, validation=val, callbacks=[lambda m, epoch, logs: epoch == 3])
    assert len(model.history_["val_rmse"]) == 4
    assert np.isfinite(model.history_["val_rmse"]).all()


def test_learning_rate_schedule_is_reported(synthetic):
    train, _ = synthetic
    rates: list[float] = []
    FunkSVD(n_factors=2, n_epochs=3, learning_rate=0.01, learning_rate_decay=0.5).fit(
        train, callbacks=[lambda m, e, logs: rates.append(logs["learning_rate"])]
    )
    np.testing.assert_allclose(rates, [0.01, 0.005, 0.0025])


def test_svdpp_separate_step_sizes_and_penalties(synthetic):
    train, _ = synthetic
    base = dict(n_factors=3, n_epochs=5, learning_rate=0.01, regularization=0.05)
    ref = SVDpp(**base).fit(train)
    explicit = SVDpp(**base, bias_learning_rate=0.01, implicit_learning_rate=0.01,
                     implicit_regularization=0.05).fit(train)
    for name in ("user_factors_", "item_factors_", "implicit_factors_", "user_bias_"):
        np.testing.assert_array_equal(getattr(ref, name), getattr(explicit, name))
    # a heavy penalty on y_j shrinks them; the other groups keep their defaults
    shrunk = SVDpp(**base, implicit_regularization=5.0).fit(train)
    assert (np.linalg.norm(shrunk.implicit_factors_)
            < 0.5 * np.linalg.norm(ref.implicit_factors_))
    # a vanishing step size freezes y_j at its initialisation, and the biases at zero
    frozen = SVDpp(**base, implicit_learning_rate=1e-12, bias_learning_rate=1e-12).fit(train)
    init = SVDpp(**dict(base, n_epochs=1), implicit_learning_rate=1e-12).fit(train)
    np.testing.assert_allclose(frozen.implicit_factors_, init.implicit_factors_, atol=1e-7)
    assert not np.allclose(ref.implicit_factors_, init.implicit_factors_, atol=1e-3)
    assert np.abs(frozen.user_bias_).max() < 1e-6 < np.abs(ref.user_bias_).max()


def test_balanced_groups_split_the_counts_evenly():
    from chuchun.models.mf import _balanced_groups

    rng = np.random.default_rng(0)
    counts = rng.zipf(1.6, 5000) % 700  # heavy-tailed, like user activity
    for t in (2, 3, 4):
        groups = _balanced_groups(np.random.default_rng(1), counts, t)
        totals = np.bincount(groups, weights=counts, minlength=t)
        assert set(np.unique(groups)) == set(range(t))
        assert totals.max() - totals.min() <= counts.max()
        # a random partition, not a fixed one: another seed gives other groups
        other = _balanced_groups(np.random.default_rng(2), counts, t)
        assert not np.array_equal(groups, other)


def test_dsgd_fit_maps_the_renumbered_strata_back(synthetic):
    """Two threads renumber users and items stratum by stratum inside the fit; the fitted
    arrays must come back in the model's own order, with and without per-epoch syncing."""
    train, _ = synthetic
    kw = dict(n_factors=4, n_epochs=3, n_threads=2, random_state=5)
    a = FunkSVD(**kw).fit(train)
    seen = []
    b = FunkSVD(**kw).fit(train, callbacks=[lambda m, e, logs: seen.append(
        (m.user_factors_.copy(), m.item_bias_.copy()))])
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_bias_, b.user_bias_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
    np.testing.assert_array_equal(seen[-1][0], a.user_factors_)  # callbacks see current state
    np.testing.assert_array_equal(seen[-1][1], a.item_bias_)
    # the same epochs on the original numbering (the NumPy twin, no renumbering) agree
    from chuchun._random import check_random_state
    from chuchun.kernels.mf import sgd_epoch_numpy
    from chuchun.models.mf import _strata

    rng = check_random_state(5)
    P = a._init_factors(rng, train.n_users, 4)
    Q = a._init_factors(rng, train.n_items, 4)
    bu, bi = np.zeros(train.n_users, np.float32), np.zeros(train.n_items, np.float32)
    u, i, r = train.user_idx, train.item_idx, train.values
    rows, ptr, _, _ = _strata(rng, u, i, train.n_users, train.n_items, 2)
    mu = float(r.mean())
    for _ in range(3):
        sgd_epoch_numpy(u, i, r, rows, ptr, 2, mu, bu, bi, P, Q, 0.005, 0.005, 0.02, 0.02,
                        True, np.zeros(2))
    np.testing.assert_allclose(a.user_factors_, P, atol=1e-5)
    np.testing.assert_allclose(a.item_factors_, Q, atol=1e-5)
    np.testing.assert_allclose(a.user_bias_, bu, atol=1e-5)
    np.testing.assert_allclose(a.item_bias_, bi, atol=1e-5)


# -- reproducibility ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda s: FunkSVD(n_factors=4, n_epochs=3, random_state=s),
        lambda s: FunkSVD(n_factors=4, n_epochs=3, random_state=s, n_threads=2),
        lambda s: SVDpp(n_factors=4, n_epochs=3, random_state=s),
        lambda s: ALS(n_factors=4, n_epochs=3, random_state=s),
        lambda s: TruncatedSVD(n_factors=4, random_state=s),
    ],
    ids=["funk", "funk-2-threads", "svdpp", "als", "tsvd"],
)
def test_fixed_seed_reproduces_the_fit(make, synthetic):
    train, _ = synthetic
    a, b = make(3).fit(train), make(3).fit(train)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    if not isinstance(a, TruncatedSVD):
        c = make(4).fit(train)
        assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_als_result_does_not_depend_on_thread_count(synthetic):
    train, _ = synthetic
    a = ALS(n_factors=4, n_epochs=3, n_threads=1).fit(train)
    b = ALS(n_factors=4, n_epochs=3, n_threads=2).fit(train)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
    assert a.history_["train_rmse"] == b.history_["train_rmse"]


def test_dsgd_threads_keep_accuracy(synthetic):
    train, test = synthetic
    kw = dict(n_factors=3, n_epochs=100, learning_rate=0.02, regularization=0.005, clip=False)
    one = rmse(FunkSVD(**kw).fit(train), test)
    two = rmse(FunkSVD(**kw, n_threads=2).fit(train), test)
    assert abs(one - two) < 0.02


# -- fold-in ------------------------------------------------------------------------------------
def _history(train, user):
    rows = np.flatnonzero(train.user_ids == user)
    return list(train.item_ids[rows]), list(train.ratings[rows])


def _fold_in_scores(model, train, users):
    hist = [_history(train, u) for u in users]
    return model._score_history(model._history_matrix([h[0] for h in hist],
                                                      [h[1] for h in hist])[1])


def test_als_fold_in_equals_fitted_user(synthetic):
    train, _ = synthetic
    model = ALS(n_factors=3, n_epochs=5).fit(train)
    users = train.users.ids[:10]
    fitted = model._score(model.users_.index(users))
    np.testing.assert_allclose(_fold_in_scores(model, train, users), fitted, rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("center", ["none", "mean", "baseline"])
def test_truncated_svd_fold_in_projects_onto_the_fitted_user(synthetic, center):
    train, _ = synthetic
    model = TruncatedSVD(n_factors=3, center=center).fit(train)
    users = train.users.ids[:10]
    fitted = model._score(model.users_.index(users))
    np.testing.assert_allclose(_fold_in_scores(model, train, users), fitted, rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("cls", [FunkSVD, SVDpp])
def test_sgd_fold_in_approximates_fitted_user(synthetic, cls):
    train, test = synthetic
    model = cls(n_factors=3, n_epochs=150, learning_rate=0.02, regularization=0.005,
                clip=False).fit(train)
    users = train.users.ids[:20]
    fitted = model._score(model.users_.index(users))
    folded = _fold_in_scores(model, train, users)
    assert np.sqrt(np.mean((folded - fitted) ** 2)) < 0.1 * np.std(fitted)
    recs = model.recommend_for_history([_history(train, users[0])[0]],
                                       ratings=[_history(train, users[0])[1]], k=5)
    assert recs.item_idx.shape == (1, 5)


# -- similarity and explanations ----------------------------------------------------------------
def test_similar_items_and_users_follow_the_blocks(blocks):
    # unbiased, so the block structure (4-5 inside, 1-2 outside) lives in the factors
    model = ALS(n_factors=3, n_epochs=10, regularization=0.05, biased=False).fit(blocks)
    item_block = {f"i{i}": i % 3 for i in range(24)}
    res = model.similar_items(["i0", "i1"], k=3)
    assert res.item_ids.shape == (2, 3)
    assert "i0" not in res.item_ids[0]
    for q, row in zip(["i0", "i1"], res.item_ids, strict=True):
        assert all(item_block[x] == item_block[q] for x in row)
    assert (np.diff(res.scores, axis=1) <= 1e-6).all()
    users = model.similar_users(["u0"], k=3)
    assert all(int(x[1:]) % 3 == 0 for x in users.item_ids[0])
    with pytest.raises(UnknownIdError):
        model.similar_items(["nope"], unknown="error")
    empty = model.similar_items(["nope"], unknown="empty")
    assert (empty.item_idx == -1).all()


@pytest.mark.parametrize("biased", [True, False])
def test_als_explanation_sums_to_the_prediction(synthetic, biased):
    train, _ = synthetic
    # ranking_damping=0: the explained score is the prediction itself
    model = ALS(n_factors=3, n_epochs=5, biased=biased, clip=False,
                ranking_damping=0.0).fit(train)
    user, item = train.users.ids[5], train.items.ids[7]
    exp = model.explain(user, item, n_reasons=None)[0]
    pred = model.predict([user], [item])[0]
    assert exp.score == pytest.approx(pred, rel=1e-4)
    base = model.intercept_ + model.item_bias_[model.items_.index([item])[0]]
    items = [r for r in exp.reasons if r.kind == "item"]
    assert sum(r.weight for r in items) == pytest.approx(pred - base, rel=1e-3, abs=1e-4)
    n_rated = int((train.user_ids == user).sum())
    assert len(items) == n_rated
    assert len(exp.reasons) == n_rated + (2 if biased else 0)
    weights = [abs(r.weight) for r in exp.reasons]
    assert weights == sorted(weights, reverse=True)
    assert len(model.explain(user, item, n_reasons=3)[0].reasons) == 3


# -- warm start ---------------------------------------------------------------------------------
def test_als_partial_fit_warm_starts_and_adds_new_ids(synthetic):
    train, _ = synthetic
    model = ALS(n_factors=3, n_epochs=2).fit(train)
    first = model.history_["train_rmse"][-1]
    model.partial_fit(train, n_epochs=3)
    assert len(model.history_["train_rmse"]) == 5
    assert model.history_["train_rmse"][-1] <= first + 1e-6
    df = train.to_pandas()
    extra = df.iloc[:5].assign(user=10_000, item=np.r_[df.item.iloc[:4], 20_000])
    bigger = Interactions.from_pandas(
        df._append(extra, ignore_index=True) if hasattr(df, "_append")
        else __import__("pandas").concat([df, extra], ignore_index=True)
    )
    model.partial_fit(bigger, n_epochs=1)
    assert 10_000 in model.users_ and 20_000 in model.items_
    assert model.user_factors_.shape[0] == len(model.users_)
    assert np.isfinite(model.predict([10_000], [20_000])).all()
    assert model.recommend([10_000], k=3).item_idx.shape == (1, 3)


def test_failed_als_partial_fit_leaves_the_model_untouched(synthetic):
    train, _ = synthetic
    model = ALS(n_factors=3, n_epochs=2, random_state=0).fit(train)
    before = {name: (value.copy() if isinstance(value, np.ndarray) else value)
              for name, value in vars(model).items()}
    history = {name: list(values) for name, values in model.history_.items()}
    df = train.to_pandas()
    extra = df.iloc[:3].assign(user=10_000)
    bigger = Interactions.from_pandas(__import__("pandas").concat([df, extra], ignore_index=True))

    def interrupt(model, epoch, logs):
        if epoch >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(bigger, n_epochs=3, callbacks=[interrupt])
    assert 10_000 not in model.users_
    assert model.history_ == history
    for name, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(model, name), value)
    assert model.user_factors_.shape[0] == len(model.users_)
    model.partial_fit(bigger, n_epochs=1)  # and it still trains
    assert 10_000 in model.users_


def test_partial_fit_on_unfitted_model_fits(synthetic):
    train, _ = synthetic
    model = ALS(n_factors=2, n_epochs=1).partial_fit(train)
    assert model.is_fitted


# -- errors -------------------------------------------------------------------------------------
def test_clear_errors(synthetic):
    train, _ = synthetic
    implicit = Interactions.from_arrays([1, 2, 2], [1, 1, 2])
    for cls in (FunkSVD, SVDpp, ALS):
        with pytest.raises(DataError, match="needs explicit ratings"):
            cls().fit(implicit)
    with pytest.raises(ConfigError, match="n_factors must be less than"):
        TruncatedSVD(n_factors=80).fit(train)
    with pytest.raises(ConfigError, match="learning_rate"):
        FunkSVD(learning_rate=0).fit(train)
    with pytest.raises(ConfigError, match="validation_fraction"):
        FunkSVD(validation_fraction=1e-9).fit(train)
    with pytest.raises(ConfigError, match="callbacks"):
        FunkSVD(n_epochs=1).fit(train, callbacks=[3])
    with pytest.raises(DataError, match="validation"):
        FunkSVD(n_epochs=1).fit(train, validation="x")
    with pytest.raises(NotFittedError):
        ALS().explain(1, 1)
    model = ALS(n_factors=2, n_epochs=1).fit(train)
    with pytest.raises(UnknownIdError):
        model.explain(-5, train.items.ids[0])
    with pytest.raises(ConfigError, match="n_reasons"):
        model.explain(train.users.ids[0], train.items.ids[0], n_reasons=-1)
    with pytest.raises(ConfigError, match="n_epochs"):
        model.partial_fit(train, n_epochs=0)
    with pytest.raises(DataError, match="strings"):
        model.partial_fit(Interactions.from_arrays(["a"], ["b"], [3.0]))


@pytest.mark.parametrize("t", [1, 2, 3])
def test_funksvd_visiting_order_groups_users_and_separates_strata(t):
    from chuchun.models.mf import _strata

    rng = np.random.default_rng(0)
    n_users, n_items, n = 40, 30, 600
    u, i = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    rows, ptr, ug, ig = _strata(np.random.default_rng(1), u, i, n_users, n_items, t)
    assert np.array_equal(np.sort(rows), np.arange(n))  # every rating once
    for b in range(t * t):  # block b holds the ratings of user stratum b // t, item stratum b % t
        assert np.all(ug[u[rows[ptr[b]:ptr[b + 1]]]] == b // t)
        assert np.all(ig[i[rows[ptr[b]:ptr[b + 1]]]] == b % t)
    assert ptr[0] == 0 and ptr[-1] == n and len(ptr) == t * t + 1
    users_of = [set(u[rows[ptr[b]:ptr[b + 1]]]) for b in range(t * t)]
    items_of = [set(i[rows[ptr[b]:ptr[b + 1]]]) for b in range(t * t)]
    for b in range(t * t):
        block_users = u[rows[ptr[b]:ptr[b + 1]]]
        if len(block_users):  # each user's ratings of the block form one contiguous run
            runs = 1 + np.count_nonzero(block_users[1:] != block_users[:-1])
            assert runs == len(set(block_users))
        for c in range(t * t):
            if b // t != c // t:  # other user stratum: no shared user
                assert not users_of[b] & users_of[c]
            if b % t != c % t:  # other item stratum: no shared item
                assert not items_of[b] & items_of[c]


def test_a_diverged_fit_is_refused_and_leaves_the_model_as_it_was(synthetic):
    """An SGD step size far too large makes the factors overflow to NaN: the fit raises
    instead of producing a model that scores NaN, recommends nothing and still saves."""
    from chuchun.models import BaselineOnly

    train, _ = synthetic
    m = FunkSVD(n_factors=4, n_epochs=5, learning_rate=1e9)
    with pytest.raises(ConfigError, match=r"FunkSVD's fit diverged: \w+_ holds \d+ non-finite "
                                          r"value\(s\).*learning_rate=1000000000\.0"):
        m.fit(train)
    with pytest.raises(NotFittedError):
        m.predict([0], [0])
    fitted = FunkSVD(n_factors=4, n_epochs=2).fit(train)
    before = fitted.predict([0], [0])
    with pytest.raises(ConfigError, match="diverged"):
        fitted.set_params(learning_rate=1e9).fit(train)
    np.testing.assert_array_equal(fitted.predict([0], [0]), before)  # the old fit remains
    with pytest.raises(ConfigError, match="BaselineOnly's fit diverged"):
        BaselineOnly(method="sgd", learning_rate=1e9).fit(train)
