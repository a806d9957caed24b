"""ImplicitALS and BPR: recovery of known structure, solvers, fold-in, seeds, errors."""

from __future__ import annotations

import numpy as np
import pytest

from chuchun import ConfigError, DataError, NotFittedError, UnknownIdError
from chuchun.data import Interactions
from chuchun.models import BPR, Explanation, ImplicitALS

N_BLOCKS = 3
N_USERS = 45
N_ITEMS = 30


def _blocks(seed: int = 0) -> Interactions:
    """Users of block b interact with about 60% of the items of block b and nothing else."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(N_USERS):
        block = u % N_BLOCKS
        own = np.flatnonzero(np.arange(N_ITEMS) % N_BLOCKS == block)
        chosen = rng.choice(own, size=6, replace=False)
        users += [u] * len(chosen)
        items += chosen.tolist()
    return Interactions.from_arrays(np.asarray(users), np.asarray(items))


@pytest.fixture(scope="module")
def blocks() -> Interactions:
    return _blocks()


@pytest.fixture(scope="module")
def als(blocks):
    return ImplicitALS(n_factors=4, n_epochs=10, alpha=5.0, regularization=1.0,
                       solver="cholesky", random_state=0).fit(blocks)


@pytest.fixture(scope="module")
def bpr(blocks):
    return BPR(n_factors=8, n_epochs=60, learning_rate=0.05, random_state=0).fit(blocks)


def _block_hits(model, data: Interactions, k: int = 3) -> float:
    recs = model.recommend(data.users.ids, k=k)
    item_block = recs.item_idx % N_BLOCKS  # item ids are 0..29, equal to their index
    user_block = (data.users.ids % N_BLOCKS)[:, None]
    return float((item_block == user_block).mean())


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_als_recovers_blocks(blocks, solver):
    m = ImplicitALS(n_factors=4, n_epochs=10, alpha=5.0, regularization=1.0, solver=solver,
                    random_state=0).fit(blocks)
    assert _block_hits(m, blocks) == 1.0


def test_bpr_recovers_blocks(blocks, bpr):
    assert _block_hits(bpr, blocks) == 1.0


def test_untrained_models_do_not_recover_blocks(blocks):
    # the recovery tests above can fail: with no training the lists are unstructured
    m = ImplicitALS(n_factors=8, n_epochs=0, random_state=0).fit(blocks)
    b = BPR(n_factors=8, n_epochs=0, random_state=0).fit(blocks)
    assert _block_hits(m, blocks) < 0.7 and _block_hits(b, blocks) < 0.7


def test_cg_with_many_steps_matches_cholesky(blocks, als):
    cg = ImplicitALS(n_factors=4, n_epochs=10, alpha=5.0, regularization=1.0, solver="cg",
                     cg_steps=32, random_state=0).fit(blocks)
    np.testing.assert_allclose(cg._score(np.arange(N_USERS)), als._score(np.arange(N_USERS)),
                               atol=2e-2)


def test_cg_default_steps_ranks_like_cholesky(blocks, als):
    cg = ImplicitALS(n_factors=4, n_epochs=10, alpha=5.0, regularization=1.0,
                     random_state=0).fit(blocks)
    a = cg.recommend(blocks.users.ids, k=3).item_idx
    b = als.recommend(blocks.users.ids, k=3).item_idx
    overlap = np.mean([len(set(x) & set(y)) / 3 for x, y in zip(a, b, strict=True)])
    assert overlap > 0.8


def test_als_fold_in_reproduces_a_training_user(blocks, als):
    # the fit ends with a user half-step, so fold-in of a training user's own history is the
    # same exact solve against the same item factors
    csr = blocks.csr
    for u in (0, 7, 20):
        history = blocks.items.ids[csr.indices[csr.indptr[u] : csr.indptr[u + 1]]]
        folded = als._score_history(als._history_matrix([list(history)], None)[1])[0]
        np.testing.assert_allclose(folded, als._score(np.array([u]))[0], atol=1e-4)
        recs = als.recommend_for_history([list(history)], k=3)
        assert (recs.item_idx[0] % N_BLOCKS == u % N_BLOCKS).all()


def test_bpr_fold_in_resembles_the_fitted_user(blocks, bpr):
    csr = blocks.csr
    for u in (0, 7, 20):
        history = blocks.items.ids[csr.indices[csr.indptr[u] : csr.indptr[u + 1]]]
        folded = bpr._score_history(bpr._history_matrix([list(history)], None)[1])[0]
        fitted = bpr._score(np.array([u]))[0]
        assert np.corrcoef(folded, fitted)[0, 1] > 0.8
        recs = bpr.recommend_for_history([list(history)], k=3)
        assert (recs.item_idx[0] % N_BLOCKS == u % N_BLOCKS).all()


@pytest.mark.parametrize("cls, params", [
    (ImplicitALS, {"n_epochs": 3}),
    (BPR, {"n_epochs": 5}),
])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fixed_seed_and_threads_reproduce_the_fit(blocks, cls, params, n_threads):
    a = cls(n_factors=8, random_state=3, n_threads=n_threads, **params).fit(blocks)
    b = cls(n_factors=8, random_state=3, n_threads=n_threads, **params).fit(blocks)
    c = cls(n_factors=8, random_state=4, n_threads=n_threads, **params).fit(blocks)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_bpr_threads_give_similar_quality(blocks):
    one = BPR(n_factors=8, n_epochs=60, random_state=0, n_threads=1).fit(blocks)
    two = BPR(n_factors=8, n_epochs=60, random_state=0, n_threads=2).fit(blocks)
    assert _block_hits(one, blocks) == _block_hits(two, blocks) == 1.0


def test_bpr_item_bias_follows_popularity():
    # item 0 is in every history, the others in a quarter each: item 0 gets the largest bias
    users = np.repeat(np.arange(30), 3)
    rng = np.random.default_rng(1)
    items = np.concatenate([[0, *rng.choice(np.arange(1, 9), 2, replace=False)]
                            for _ in range(30)])
    m = BPR(n_factors=4, n_epochs=40, random_state=0).fit(Interactions.from_arrays(users, items))
    assert m.item_bias_[0] == m.item_bias_.max()


def test_similar_items_and_users_stay_in_block(als, bpr):
    for model in (als, bpr):
        sim = model.similar_items([0, 1, 2], k=3)
        assert sim.item_idx.shape == (3, 3)
        assert (sim.item_idx % N_BLOCKS == np.array([[0], [1], [2]])).all()
        assert not (sim.item_idx == np.array([[0], [1], [2]])).any()
        users = model.similar_users([0, 1], k=2)
        assert (users.item_ids % N_BLOCKS == np.array([[0], [1]])).all()
        assert list(users.query_ids) == [0, 1]


def test_similar_items_pads_when_k_exceeds_catalogue(als):
    sim = als.similar_items([0], k=40)
    n = int(sim.lengths[0])
    # every item of the query's block has a positive cosine; only positive ones are listed
    assert N_ITEMS // N_BLOCKS - 1 <= n <= N_ITEMS - 1
    assert (sim.item_idx[0, :n] >= 0).all() and (sim.scores[0, :n] > 0).all()
    assert (sim.item_idx[0, n:] == -1).all()


def test_explain_contributions_sum_to_the_score(blocks, als):
    exp = als.explain(0, 3, n_reasons=None)[0]
    assert isinstance(exp, Explanation)
    items = [r for r in exp.reasons if r.kind == "item"]
    residual = [r for r in exp.reasons if r.kind == "bias"]
    assert len(items) == 6 and len(residual) == 1
    total = sum(r.weight for r in exp.reasons)
    np.testing.assert_allclose(total, exp.score, rtol=1e-9, atol=1e-9)
    # the history terms alone are the exact solve, a few CG steps from the fitted factors
    np.testing.assert_allclose(sum(r.weight for r in items), exp.score, rtol=1e-2, atol=1e-3)
    history = set(blocks.items.ids[blocks.csr[0].indices].tolist())
    assert {r.id for r in items} == history
    assert "similarity" in items[0].detail
    assert len(als.explain(0, 3, n_reasons=2)[0].reasons) == 2


def test_partial_fit_continues_from_the_current_factors(blocks):
    full = ImplicitALS(n_factors=8, n_epochs=6, random_state=0, solver="cholesky").fit(blocks)
    half = ImplicitALS(n_factors=8, n_epochs=3, random_state=0, solver="cholesky").fit(blocks)
    half.partial_fit(n_epochs=3)
    np.testing.assert_allclose(half.user_factors_, full.user_factors_, atol=1e-5)
    np.testing.assert_allclose(half.item_factors_, full.item_factors_, atol=1e-5)


def test_partial_fit_refreshes_given_users(blocks, als):
    import copy

    m = copy.deepcopy(als)
    items_before = m.item_factors_.copy()
    # user 0 (block 0) now behaves like block 1; user 999 is new with block-2 items
    update = Interactions.from_arrays(np.array([0, 0, 0, 999, 999, 999]),
                                      np.array([1, 4, 7, 2, 5, 8]))
    m.partial_fit(update)
    assert 999 in m.users_ and len(m.users_) == N_USERS + 1
    np.testing.assert_array_equal(m.item_factors_, items_before)
    recs = m.recommend([0, 999], k=3)
    assert (recs.item_idx[0] % N_BLOCKS == 1).all()
    assert (recs.item_idx[1] % N_BLOCKS == 2).all()
    assert set(m.seen_[m.users_.index([0])[0]].indices.tolist()) == {1, 4, 7}
    # untouched users keep their factors
    np.testing.assert_array_equal(m.user_factors_[m.users_.index([5])[0]], als.user_factors_[5])


def test_partial_fit_unfitted(blocks):
    with pytest.raises(NotFittedError):
        ImplicitALS().partial_fit()
    m = ImplicitALS(n_factors=4, n_epochs=2).partial_fit(blocks)
    assert m.user_factors_.shape == (N_USERS, 4)


def test_dtypes(als, bpr):
    for m in (als, bpr):
        assert m.user_factors_.dtype == np.float32 and m.item_factors_.dtype == np.float32
    assert bpr.item_bias_.dtype == np.float32


@pytest.mark.parametrize("cls", [ImplicitALS, BPR])
def test_negative_values_are_rejected(cls):
    data = Interactions.from_arrays([1, 2], [1, 2], [1.0, -1.0])
    with pytest.raises(DataError, match="non-negative"):
        cls().fit(data)


@pytest.mark.parametrize("cls, params", [
    (ImplicitALS, {"n_factors": 0}),
    (ImplicitALS, {"solver": "lu"}),
    (ImplicitALS, {"alpha": -1.0}),
    (BPR, {"learning_rate": 0.0}),
    (BPR, {"n_threads": -1}),
])
def test_bad_params(blocks, cls, params):
    with pytest.raises(ConfigError):
        cls(**params).fit(blocks)


def test_misspelt_param():
    with pytest.raises(ConfigError, match="did you mean 'n_epochs'"):
        ImplicitALS(n_epoch=3)


def test_unknown_ids(als):
    with pytest.raises(UnknownIdError):
        als.explain(12345, 0)
    with pytest.raises(UnknownIdError):
        als.similar_items([12345], unknown="error")
    with pytest.raises(NotFittedError):
        ImplicitALS().explain(0, 0)


@pytest.mark.parametrize("cls, kernel", [
    (ImplicitALS, "als_cg_update"),
    (BPR, "bpr_serial"),
])
def test_failed_partial_fit_leaves_the_model_untouched(blocks, monkeypatch, cls, kernel):
    from chuchun.models import implicit as module

    m = cls(n_factors=4, n_epochs=3, n_threads=1, random_state=0).fit(blocks)
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(m).items()}

    def check():
        assert set(vars(m)) == set(state)
        for k, v in state.items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(getattr(m, k), v, err_msg=k)
        assert m.users_ is state["users_"] and m.seen_ is state["seen_"]

    with pytest.raises(ConfigError, match="n_epochs"):
        m.partial_fit(n_epochs=-1)
    with pytest.raises(DataError, match="non-negative"):
        m.partial_fit(Interactions.from_arrays([1], [1], [-2.0]))
    with pytest.raises(DataError, match="user ids"):
        m.partial_fit(Interactions.from_arrays(["a"], [1]))
    check()
    # a failure after the kernels have written into the factors
    kernels = module._als if cls is ImplicitALS else module._bpr
    real = getattr(kernels, kernel)

    def half_done(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(kernels, kernel, half_done)
    with pytest.raises(KeyboardInterrupt):
        m.partial_fit(n_epochs=2)
    check()
    monkeypatch.undo()
    m.partial_fit(n_epochs=1)  # and a call that succeeds does change it
    assert not np.array_equal(m.user_factors_, state["user_factors_"])


def test_bpr_partial_fit_continues_and_refreshes_users(blocks, bpr):
    import copy

    a, b = copy.deepcopy(bpr), copy.deepcopy(bpr)
    a.partial_fit(n_epochs=2)
    b.partial_fit(n_epochs=2)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)  # reproducible
    assert not np.array_equal(a.item_factors_, bpr.item_factors_)
    before = a.item_factors_.copy()
    a.partial_fit(n_epochs=2)  # a second continuation draws new samples
    assert not np.array_equal(a.item_factors_, before)
    m = copy.deepcopy(bpr)
    update = Interactions.from_arrays(np.array([0, 0, 0, 999, 999, 999]),
                                      np.array([1, 4, 7, 2, 5, 8]))
    m.partial_fit(update)
    assert 999 in m.users_ and len(m.users_) == N_USERS + 1
    np.testing.assert_array_equal(m.item_factors_, bpr.item_factors_)
    recs = m.recommend([0, 999], k=3)
    assert (recs.item_idx[0] % N_BLOCKS == 1).all()
    assert (recs.item_idx[1] % N_BLOCKS == 2).all()
    np.testing.assert_array_equal(m.user_factors_[m.users_.index([5])[0]], bpr.user_factors_[5])



@pytest.mark.parametrize(("two_items", "n_epochs", "expected_rounds"),
                         [(False, 7, 3), (True, 4, 8)])
def test_bpr_rounds_draw_one_epoch_of_samples_per_epoch(monkeypatch, two_items, n_epochs,
                                                        expected_rounds):
    # blocks: about 135 interactions per thread, fewer than 10 x 30 items, so one round (one
    # merge) spans 3 epochs: 3 + 3 + 1. Two items, 40 interactions per thread: 2 rounds per
    # epoch. Either way each thread draws n_epochs times its number of interactions.
    import chuchun.kernels.bpr as kernel
    from chuchun.kernels.implicit_als import row_blocks

    if two_items:
        data = Interactions.from_arrays(np.repeat(np.arange(40), 2), np.tile([0, 1], 40))
    else:
        data = _blocks()
    calls = []
    real = kernel.bpr_round

    def spy(*args):
        calls.append(np.asarray(args[-4]).copy())
        return real(*args)

    monkeypatch.setattr(kernel, "bpr_round", spy)
    m = BPR(n_factors=4, n_epochs=n_epochs, n_threads=2, random_state=0).fit(data)
    per_thread = np.diff(m.seen_.indptr[row_blocks(m.seen_.indptr, 2, 0.0)])
    assert len(calls) == expected_rounds
    np.testing.assert_array_equal(np.sum(calls, axis=0), n_epochs * per_thread)
