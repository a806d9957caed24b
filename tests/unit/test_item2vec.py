"""Item2Vec learns co-occurrence groups, weights recent items, explains additively."""

from __future__ import annotations

import numpy as np
import pytest

from chuchun.data import Interactions
from chuchun.models import Item2Vec

GROUPS = 3
SIZE = 6


def _grouped(n_users: int = 90, seed: int = 0) -> Interactions:
    """Each user meets 3 items of group a, then 3 items of group b != a (in time order)."""
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    for u in range(n_users):
        a, b = rng.choice(GROUPS, 2, replace=False)
        chosen = [*(a * SIZE + rng.choice(SIZE, 3, replace=False)),
                  *(b * SIZE + rng.choice(SIZE, 3, replace=False))]
        for t, i in enumerate(chosen):
            users.append(f"u{u}")
            items.append(f"i{i}")
            stamps.append(t)
    return Interactions.from_arrays(users, items, timestamps=stamps)


def _group(item_id) -> int:
    return int(str(item_id)[1:]) // SIZE


PARAMS = dict(n_factors=16, n_epochs=15, window=2, sample=0.0, n_threads=1)


@pytest.fixture(scope="module")
def model():
    return Item2Vec(**PARAMS).fit(_grouped())


def test_similar_items_are_the_items_of_the_same_group(model):
    items = model.items_.ids
    sims = model.similar_items(items, k=SIZE - 1)
    same = [_group(q) == _group(x) for q, row in zip(items, sims.item_ids, strict=True)
            for x in row]
    assert np.mean(same) >= 0.9
    assert not any(q in row for q, row in zip(items, sims.item_ids, strict=True))


def test_recommendations_follow_the_recent_items(model):
    data = _grouped()
    recs = model.recommend(data.users.ids, k=2)
    seqs = [model._user_sequence(u) for u in range(len(model.users_))]
    latest = [_group(model.items_.ids[s[-1]]) for s in seqs]
    hits = [all(_group(x) == g for x in row) for row, g in zip(recs.item_ids, latest, strict=True)]
    assert np.mean(hits) >= 0.9
    # order matters: the same items, reversed, point to the other group
    a = [f"i{i}" for i in (0, 1, 2)]
    b = [f"i{i}" for i in (SIZE, SIZE + 1, SIZE + 2)]
    fwd, back = model.recommend_for_history([a + b, b + a], k=2).item_ids
    assert {_group(x) for x in fwd} == {1} and {_group(x) for x in back} == {0}


def test_explanation_adds_up_and_names_recent_items(model):
    user = model.users_.ids[0]
    item = model.recommend([user], k=1).item_ids[0, 0]
    exp = model.explain([user], [item], n_reasons=None)[0]
    history = set(model.items_.ids[model._user_sequence(0)][-model.history_length:].tolist())
    assert {r.id for r in exp.reasons} <= history
    assert np.isclose(sum(r.contribution for r in exp.reasons), exp.score, atol=1e-5)
    ages = sorted(r.detail["age"] for r in exp.reasons)
    assert ages == list(range(len(history)))


def test_basket_context_and_threads_are_reproducible():
    rng = np.random.default_rng(1)
    basket_ids, items = [], []
    for b in range(120):  # each basket holds 4 items of one group
        g = rng.integers(GROUPS)
        for i in g * SIZE + rng.choice(SIZE, 4, replace=False):
            basket_ids.append(b)
            items.append(f"i{i}")
    data = Interactions.from_arrays(basket_ids, items, timestamps=np.zeros(len(items)))
    a = Item2Vec(**{**PARAMS, "n_threads": 2, "context": "basket"}).fit(data)
    b = Item2Vec(**{**PARAMS, "n_threads": 2, "context": "basket"}).fit(data)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    sims = a.similar_items(a.items_.ids, k=3)
    same = [_group(q) == _group(x) for q, row in zip(a.items_.ids, sims.item_ids, strict=True)
            for x in row]
    assert np.mean(same) >= 0.9
