"""Checks that every registered model honours the estimator contract.

Use :func:`check_model` on a model instance, or run ``tests/conformance`` which applies every
check to every registered model. A model class may declare

``_test_params``
    hyperparameters that make it fast on tiny data (few epochs or factors);
``_test_fit_kwargs(data)``
    a classmethod returning extra keyword arguments for ``fit`` (e.g. side features).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from chuchun._exceptions import ConfigError, NotFittedError, UnknownIdError
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender, clone
from chuchun.models._results import (
    REASON_KINDS,
    Explanation,
    Explanations,
    Reason,
    SimilarItems,
)

__all__ = ["CHECKS", "check_model"]


def _fit(model: Recommender, data: Interactions) -> Recommender:
    hook = getattr(type(model), "_test_fit_kwargs", None)
    kwargs = hook(data) if hook is not None else {}
    return model.fit(data, **kwargs)


def _users(data: Interactions, n: int = 5) -> np.ndarray:
    return data.users.ids[:n]


def check_params_roundtrip(model: Recommender, data: Interactions) -> None:
    params = model.get_params()
    assert set(params) == set(type(model).param_specs()), "get_params must list every Param"
    other = type(model)(**params)
    assert other.get_params() == params, "constructing from get_params() must round-trip"
    try:
        type(model)(no_such_parameter=1)
    except ConfigError:
        pass
    else:
        raise AssertionError("an unknown parameter must raise ConfigError")


def check_not_fitted(model: Recommender, data: Interactions) -> None:
    fresh = clone(model)
    for call in (
        lambda: fresh.recommend(_users(data), k=3),
        lambda: fresh.predict(_users(data, 1), data.items.ids[:1]),
    ):
        try:
            call()
        except NotFittedError:
            continue
        raise AssertionError("methods called before fit must raise NotFittedError")


def check_fit_returns_self(model: Recommender, data: Interactions) -> None:
    m = clone(model)
    assert _fit(m, data) is m, "fit must return self"
    assert m.get_params() == model.get_params(), "fit must not change hyperparameters"


def check_reproducible(model: Recommender, data: Interactions) -> None:
    a = _fit(clone(model), data).recommend(_users(data, 10), k=5)
    b = _fit(clone(model), data).recommend(_users(data, 10), k=5)
    assert np.array_equal(a.item_idx, b.item_idx), "same seed must give the same model"
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


def check_refit_from_scratch(model: Recommender, data: Interactions) -> None:
    m = _fit(clone(model), data)
    half = data.subset(np.arange(len(data)) < len(data) // 2)
    _fit(m, half)
    assert len(m.users_) == half.n_users, "a refit must replace the learned state"
    expected = _fit(clone(model), half).recommend(half.users.ids[:5], k=5)
    got = m.recommend(half.users.ids[:5], k=5)
    assert np.array_equal(expected.item_idx, got.item_idx), "refit must not depend on the past"


def check_batch_equals_single(model: Recommender, data: Interactions) -> None:
    m = _fit(clone(model), data)
    users = _users(data, 6)
    batch = m.recommend(users, k=4)
    for row, u in enumerate(users):
        single = m.recommend([u], k=4)
        assert np.array_equal(single.item_idx[0], batch.item_idx[row]), "batch != single"
    items = data.items.ids[: len(users)]
    p_batch = m.predict(users, items)
    p_single = np.array([m.predict([u], [i])[0] for u, i in zip(users, items, strict=True)])
    np.testing.assert_allclose(p_batch, p_single, rtol=1e-5, atol=1e-6, equal_nan=True)


def check_k_larger_than_catalogue(model: Recommender, data: Interactions) -> None:
    m = _fit(clone(model), data)
    k = data.n_items + 7
    recs = m.recommend(_users(data, 3), k=k)
    assert recs.item_idx.shape == (3, k)
    seen = data.csr[data.users.index(_users(data, 3))]
    for row in range(3):
        n_unseen = data.n_items - seen[row].nnz
        assert recs.lengths[row] <= n_unseen
        assert np.isnan(recs.scores[row, recs.lengths[row]:]).all(), "padding must be NaN"
        valid = recs.item_idx[row, : recs.lengths[row]]
        assert len(np.unique(valid)) == len(valid), "no item may repeat in a list"


def check_exclude_seen(model: Recommender, data: Interactions) -> None:
    m = _fit(clone(model), data)
    users = _users(data, 8)
    recs = m.recommend(users, k=data.n_items)
    rows = data.csr[data.users.index(users)]
    for r in range(len(users)):
        seen = set(rows[r].indices.tolist())
        got = set(recs.item_idx[r][recs.item_idx[r] >= 0].tolist())
        assert not seen & got, "exclude_seen=True must drop training items"
    with_seen = m.recommend(users[:1], k=data.n_items, exclude_seen=False)
    assert with_seen.lengths[0] >= recs.lengths[0]


def check_unknown_policy(model: Recommender, data: Interactions) -> None:
    m = _fit(clone(model), data)
    ghost = np.array(["__nobody__"]) if not data.users.numeric else np.array([-987654321])
    try:
        m.recommend(ghost, k=3, unknown="error")
    except UnknownIdError:
        pass
    else:
        raise AssertionError("unknown='error' must raise UnknownIdError")
    empty = m.recommend(ghost, k=3, unknown="empty")
    assert empty.lengths[0] == 0
    fallback = m.recommend(ghost, k=3, unknown="fallback")
    assert fallback.lengths[0] == 3
    pred = m.predict(ghost, data.items.ids[:1], unknown="empty")
    assert np.isnan(pred[0])


def check_save_load(model: Recommender, data: Interactions) -> None:
    from chuchun.io import load_model

    m = _fit(clone(model), data)
    users = _users(data, 5)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("model", "model.zip"):
            path = os.path.join(tmp, name)
            m.save(path)
            loaded = load_model(path)
            assert type(loaded) is type(m)
            assert loaded.get_params() == m.get_params()
            a, b = m.recommend(users, k=5), loaded.recommend(users, k=5)
            assert np.array_equal(a.item_idx, b.item_idx), "loaded model must recommend the same"
            pa = m.predict(users, data.items.ids[: len(users)])
            pb = loaded.predict(users, data.items.ids[: len(users)])
            np.testing.assert_allclose(pa, pb, rtol=1e-6, equal_nan=True)


def check_fold_in(model: Recommender, data: Interactions) -> None:
    assert type(model).supports_fold_in, "every model must score users unseen in training"
    m = _fit(clone(model), data)
    history = data.items.ids[:3]
    ratings = [[5.0, 4.0, 1.0], []] if type(model).predicts_ratings else None
    recs = m.recommend_for_history([list(history), []], k=4, ratings=ratings)
    assert recs.item_idx.shape == (2, 4)
    assert not set(m.items_.index(history).tolist()) & set(recs.item_idx[0].tolist())
    assert recs.lengths[0] > 0, "a folded-in user must get recommendations"
    finite = recs.scores[recs.item_idx >= 0]
    assert np.isfinite(finite).all(), "fold-in scores must be finite"


def check_explain(model: Recommender, data: Interactions) -> None:
    m = _fit(clone(model), data)
    users = np.repeat(_users(data, 3), 3)
    items = np.tile(np.r_[data.items.ids[:2], data.items.ids[-1:]], 3)
    ex = m.explain(users, items, n_reasons=None)
    assert isinstance(ex, Explanations) and len(ex) == len(users)
    additive = type(m).explain_is_additive
    assert type(m).explain_method, "explain_method must say how the reasons are derived"
    for e, u, i in zip(ex, users, items, strict=True):
        assert isinstance(e, Explanation) and e.user == u and e.item == i
        assert e.additive is additive and e.method == type(m).explain_method
        for r in e.reasons:
            assert isinstance(r, Reason) and r.kind in REASON_KINDS, f"bad reason {r!r}"
            assert np.isfinite(r.contribution)
            assert not isinstance(r.id, np.generic), "reason ids must be plain Python values"
        ranked = float(m._score(m.users_.index([u]))[0, m.items_.index([i])[0]])
        assert abs(e.score - ranked) <= 1e-4 * (1 + abs(ranked)), (
            f"explain score {e.score} is not the ranking score {ranked}")
        if additive:
            total = sum(r.contribution for r in e.reasons)
            assert abs(total - e.score) <= 1e-5 * (1 + abs(e.score)), (
                f"contributions sum to {total}, score is {e.score}")
            assert abs(e.remainder) <= 1e-5 * (1 + abs(e.score))
    top = m.explain(users[:1], items[:1], n_reasons=1)[0]
    assert len(top.reasons) <= 1
    full = ex[0].reasons
    if full:
        # the strongest reason that names something; a bias term only when there is none
        named = [r for r in full if r.kind != "bias"] or list(full)
        assert abs(top.reasons[0].contribution) == max(abs(r.contribution) for r in named)
        if additive:
            np.testing.assert_allclose(top.remainder + top.reasons[0].contribution,
                                       top.score, atol=1e-5 * (1 + abs(top.score)))
    labelled = m.explain(users[:1], items[:1], labels=lambda x: f"<{x}>", n_reasons=None)[0]
    assert labelled.label == f"<{items[0]}>"
    assert all(r.label == f"<{r.id}>" for r in labelled.reasons if r.kind == "item")


def check_similar_items(model: Recommender, data: Interactions) -> None:
    m = _fit(clone(model), data)
    query = data.items.ids[:4]
    if not type(m).has_similar_items():
        try:
            m.similar_items(query)
        except ConfigError:
            return
        raise AssertionError("similar_items without an item representation must raise")
    k = len(m.items_) + 3
    sim = m.similar_items(query, k=k)
    assert isinstance(sim, SimilarItems) and sim.item_idx.shape == (len(query), k)
    q = m.items_.index(query)
    for row in range(len(query)):
        n = sim.lengths[row]
        assert q[row] not in sim.item_idx[row, :n].tolist(), "an item is not its own neighbour"
        assert (sim.item_idx[row, n:] == -1).all() and np.isnan(sim.scores[row, n:]).all()
        s = sim.scores[row, :n]
        assert (np.diff(s) <= 0).all(), "similarities must be non-increasing"
        assert (s > 0).all(), "only positive similarities are listed"
    ghost = np.array(["__no_item__"]) if not data.items.numeric else np.array([-987654321])
    try:
        m.similar_items(ghost, unknown="error")
    except UnknownIdError:
        pass
    else:
        raise AssertionError("unknown='error' must raise UnknownIdError")
    assert m.similar_items(ghost, k=3, unknown="empty").lengths[0] == 0
    assert m.similar_items(ghost, k=3, unknown="fallback").lengths[0] == 3


class _InjectedError(RuntimeError):
    pass


def _failing_fit(model: Recommender) -> None:
    """Make ``model``'s next fit raise after its ``_fit`` hook has run to the end (so every
    fitted attribute is set when the error arrives)."""
    real = model._fit

    def failing(data: Interactions, **kwargs: Any) -> None:
        real(data, **kwargs)
        raise _InjectedError("injected failure")

    model._fit = failing  # type: ignore[method-assign]


def check_failed_fit(model: Recommender, data: Interactions) -> None:
    from chuchun.io import save_model

    fresh = clone(model)
    _failing_fit(fresh)
    try:
        _fit(fresh, data)
    except _InjectedError:
        pass
    del fresh._fit
    assert not fresh.is_fitted, "a failed fit must leave an unfitted model unfitted"
    assert not [n for n in vars(fresh) if n.endswith("_") and not n.startswith("_")], (
        "a failed fit must not leave fitted attributes behind")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            save_model(fresh, os.path.join(tmp, "m"))
        except NotFittedError:
            pass
        else:
            raise AssertionError("a model whose fit failed must not be saved")
        assert not os.listdir(tmp), "a refused save must not leave files"
    fitted = _fit(clone(model), data)
    users = _users(data, 5)
    before = fitted.recommend(users, k=5)
    state = {n: v for n, v in vars(fitted).items() if n.endswith("_")}
    half = data.subset(np.arange(len(data)) < len(data) // 2)
    _failing_fit(fitted)
    try:
        _fit(fitted, half)
    except _InjectedError:
        pass
    del fitted._fit
    after = {n: v for n, v in vars(fitted).items() if n.endswith("_")}
    assert set(after) == set(state) and all(after[n] is state[n] for n in state), (
        "a failed refit must restore the previous fitted state")
    again = fitted.recommend(users, k=5)
    assert np.array_equal(before.item_idx, again.item_idx)


def check_sklearn_clone(model: Recommender, data: Interactions) -> None:
    from sklearn.base import clone as sk_clone

    m = _fit(clone(model), data)
    copy = sk_clone(m)
    assert type(copy) is type(m) and not copy.is_fitted
    assert copy.get_params(deep=True) == m.get_params(deep=False) == model.get_params()
    assert copy.set_params(**model.get_params()) is copy
    try:
        copy.set_params(no_such_parameter=1)
    except ConfigError:
        pass
    else:
        raise AssertionError("set_params with an unknown name must raise ConfigError")
    if "random_state" in type(model).param_specs():
        rng_model = clone(model).set_params(random_state=np.random.default_rng(7))
        _fit(rng_model, data).recommend(_users(data, 2), k=3)


CHECKS: list[Callable[[Recommender, Interactions], None]] = [
    check_params_roundtrip,
    check_not_fitted,
    check_fit_returns_self,
    check_reproducible,
    check_refit_from_scratch,
    check_batch_equals_single,
    check_k_larger_than_catalogue,
    check_exclude_seen,
    check_unknown_policy,
    check_save_load,
    check_fold_in,
    check_explain,
    check_similar_items,
    check_failed_fit,
    check_sklearn_clone,
]


def check_model(model: Recommender, data: Interactions, checks: Any = None) -> None:
    """Run every conformance check (or the given ones) on ``model``; raises on the first failure."""
    for check in checks or CHECKS:
        check(model, data)
