"""Beyond-accuracy metrics: hand-computed tiny cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun import ConfigError, DataError
from chuchun.metrics import (
    average_recommendation_popularity_at_k,
    beyond_accuracy_metrics,
    gini_index_at_k,
    intra_list_diversity_at_k,
    item_vectors_from_interactions,
    novelty_at_k,
    personalisation_at_k,
    popularity_lift_at_k,
    serendipity_at_k,
)

POP = np.array([4.0, 2.0, 1.0, 1.0])  # training counts; 4 training users
LISTS = np.array([[0, 1], [2, -1]])


def test_novelty_by_hand() -> None:
    # u0: (-log2(4/4) - log2(2/4)) / 2 = 0.5 ; u1: -log2(1/4) = 2 (padding ignored)
    assert novelty_at_k(LISTS, POP, n_users=4, k=2) == pytest.approx([0.5, 2.0])
    # only the first k positions count
    assert novelty_at_k(LISTS, POP, n_users=4, k=1) == pytest.approx([0.0, 2.0])
    # an item nobody trained on counts as one interaction
    assert novelty_at_k([[0]], [0.0], n_users=8, k=1) == pytest.approx([3.0])
    assert math.isnan(novelty_at_k([[-1, -1]], POP, n_users=4, k=2)[0])


def test_arp_and_popularity_lift_by_hand() -> None:
    assert average_recommendation_popularity_at_k(LISTS, POP, k=2) == pytest.approx([3.0, 1.0])
    history = [np.array([2, 3]), np.array([0])]
    # u0: profile mean 1, list mean 3 -> lift 2 ; u1: profile 4, list 1 -> -0.75
    assert popularity_lift_at_k(LISTS, POP, history, k=2) == pytest.approx([2.0, -0.75])
    lift = popularity_lift_at_k(LISTS, POP, sp.csr_matrix((2, 4)), k=2)
    assert np.isnan(lift).all()  # empty histories


def test_intra_list_diversity_by_hand_dense_and_sparse() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    lists = np.array([[0, 1, 2], [0, 3, -1], [1, -1, -1]])
    # list 0: distances 1, 1 - 1/sqrt2, 1 - 1/sqrt2 ; list 1: same direction -> 0 ; list 2: one
    expected = [(1 + 2 * (1 - 2**-0.5)) / 3, 0.0, np.nan]
    for vecs in (vectors, sp.csr_matrix(vectors)):
        got = intra_list_diversity_at_k(lists, vecs, k=3)
        assert got[:2] == pytest.approx(expected[:2])
        assert np.isnan(got[2])


def test_item_vectors_from_interactions_give_cooccurrence_cosine() -> None:
    ui = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=float))
    vecs = item_vectors_from_interactions(ui)
    assert vecs.shape == (3, 4)
    # items 0 and 1 share users {0, 3}: cosine 2 / sqrt(3 * 3)
    assert intra_list_diversity_at_k([[0, 1]], vecs, k=2) == pytest.approx([1 - 2 / 3])
    with pytest.raises(DataError, match="sparse matrix or an Interactions; got list"):
        item_vectors_from_interactions([[1, 0]])


def test_serendipity_by_hand() -> None:
    rec = [[0, 1, 2], [3, 0, 1]]
    relevant = [np.array([1, 2]), np.array([], dtype=int)]
    baseline = [[0, 1, 3], [0, 1, 2]]
    got = serendipity_at_k(rec, relevant, baseline, k=3)
    assert got[0] == pytest.approx(1 / 3)  # item 2: relevant and not in the baseline list
    assert np.isnan(got[1])  # no relevant item
    with pytest.raises(DataError, match="baseline_idx has 1"):
        serendipity_at_k(rec, relevant, [[0, 1, 2]], k=3)


def test_personalisation_by_hand() -> None:
    lists = [[0, 1], [0, 2], [3, 4]]
    got = personalisation_at_k(lists, k=2)
    assert got == pytest.approx([0.75, 0.75, 1.0])
    # the mean equals 1 - mean pairwise overlap / k: overlaps 1, 0, 0 over 3 pairs
    assert got.mean() == pytest.approx(1 - (1 / 2) / 3)
    assert personalisation_at_k([[5, 6], [6, 5], [5, 6]], k=2) == pytest.approx([0, 0, 0])
    assert np.isnan(personalisation_at_k([[1, 2]], k=2)).all()


def test_gini_by_hand() -> None:
    assert gini_index_at_k([[0, 1], [0, 1]], n_items=4, k=2) == pytest.approx(0.5)
    assert gini_index_at_k([[0, 1], [2, 3]], n_items=4, k=2) == pytest.approx(0.0)
    assert gini_index_at_k([[0], [0]], n_items=4, k=1) == pytest.approx(3 / 4)
    assert math.isnan(gini_index_at_k([[-1]], n_items=4, k=1))
    with pytest.raises(ConfigError, match="n_items"):
        gini_index_at_k([[0]], n_items=0)
    with pytest.raises(DataError, match="item index 7, but the catalogue has only 4"):
        gini_index_at_k([[7]], n_items=4, k=1)


def test_aggregate_names_and_means() -> None:
    out = beyond_accuracy_metrics(
        LISTS, 2, item_popularity=POP, n_users=4, item_vectors=np.eye(4),
        history=[np.array([2, 3]), np.array([0])], relevant=[np.array([1]), np.array([2])],
        baseline_idx=[[0, 2], [0, 1]],
    )
    assert set(out) == {f"{n}@2" for n in ("novelty", "arp", "personalisation", "diversity",
                                            "popularity_lift", "serendipity", "gini",
                                            "coverage")}
    assert out["novelty@2"] == pytest.approx(1.25)
    assert out["coverage@2"] == pytest.approx(3 / 4)
    assert out["diversity@2"] == pytest.approx(1.0)  # u1's single-item list is skipped
    assert out["serendipity@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    with pytest.raises(DataError, match="non-negative"):
        novelty_at_k(LISTS, [-1.0, 1, 1, 1], n_users=4)
    with pytest.raises(ConfigError, match="n_users must be a positive int"):
        novelty_at_k(LISTS, POP, n_users=0)


lists_strategy = st.integers(1, 6).flatmap(
    lambda n: st.lists(st.lists(st.integers(0, 9), min_size=2, max_size=5, unique=True),
                       min_size=n, max_size=n)
)


def _pad(lists: list[list[int]], width: int = 5) -> np.ndarray:
    return np.array([row + [-1] * (width - len(row)) for row in lists])


@settings(max_examples=40, deadline=None)
@given(lists_strategy, st.integers(0, 2**31 - 1))
def test_properties(lists: list[list[int]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    rec = _pad(lists)
    vectors = rng.random((10, 3))
    dense = intra_list_diversity_at_k(rec, vectors, k=5)
    sparse = intra_list_diversity_at_k(rec, sp.csr_matrix(vectors), k=5)
    assert np.allclose(dense, sparse)
    assert ((dense >= 0) & (dense <= 2)).all()
    # a list of one item repeated is not diverse at all
    same = np.repeat(rec[:, :1], 3, axis=1)
    assert np.allclose(intra_list_diversity_at_k(same, vectors, k=3), 0.0)
    # everyone the same list: no personalisation; exposure of one list is as even as it gets
    assert np.allclose(personalisation_at_k(np.repeat(rec[:1], 3, axis=0), k=5), 0.0)
    assert 0.0 <= gini_index_at_k(rec, 10, k=5) < 1.0
    # replacing every item's popularity by a larger one lowers novelty
    pop = rng.integers(1, 50, size=10).astype(float)
    assert (novelty_at_k(rec, pop * 2, 100, k=5) < novelty_at_k(rec, pop, 100, k=5)).all()
