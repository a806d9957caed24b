"""Metrics against hand-computed values, a plain-loop reference, and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun import ConfigError, DataError
from chuchun.metrics import (
    RANKING_METRICS,
    average_precision_at_k,
    catalog_coverage_at_k,
    f1_at_k,
    hit_rate_at_k,
    mae,
    mse,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
    rmse,
)

# -- rating metrics ------------------------------------------------------------------------------


def test_rating_metrics_hand_computed() -> None:
    truth = [4.0, 3.0, 5.0, 1.0]
    pred = [3.5, 3.0, 3.0, 2.0]  # errors -0.5, 0, -2, 1
    assert mse(truth, pred) == pytest.approx((0.25 + 0 + 4 + 1) / 4)
    assert rmse(truth, pred) == pytest.approx(math.sqrt(5.25 / 4))
    assert mae(truth, pred) == pytest.approx(3.5 / 4)
    assert isinstance(rmse(truth, pred), float)


def test_rating_metrics_perfect_prediction_is_zero() -> None:
    x = np.array([1.0, 2.5, 5.0])
    assert rmse(x, x) == 0.0 and mae(x, x) == 0.0 and mse(x, x) == 0.0


@pytest.mark.parametrize("fn", [rmse, mae, mse])
def test_rating_metric_errors(fn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="length mismatch: 2 true ratings but 3 predictions"):
        fn([1, 2], [1, 2, 3])
    with pytest.raises(DataError, match="zero ratings"):
        fn([], [])
    with pytest.raises(DataError, match="1 NaN or infinite"):
        fn([1.0, 2.0], [1.0, np.nan])


# -- ranking metrics: a hand-computed example ---------------------------------------------------
# user 0: list [1, 2, 3, 4, 5], relevant {2, 4, 9}: hits at ranks 2 and 4
# user 1: list [5, 6, -1, -1, -1] (padded), relevant {6}: hit at rank 2
# user 2: list [0, 1, 2, 3, 4], relevant {} -> skipped everywhere
# user 3: list [7, 8, 0, 1, 2], relevant {9, 3}: no hit
REC = np.array([[1, 2, 3, 4, 5], [5, 6, -1, -1, -1], [0, 1, 2, 3, 4], [7, 8, 0, 1, 2]])
REL = [[2, 4, 9], [6], [], [9, 3]]
D = [1 / math.log2(r + 1) for r in range(1, 6)]  # discounts at ranks 1..5


def test_precision_recall_hand_computed() -> None:
    p = precision_at_k(REC, REL, k=5)
    np.testing.assert_allclose(p[[0, 1, 3]], [2 / 5, 1 / 5, 0.0])
    assert np.isnan(p[2])
    r = recall_at_k(REC, REL, k=5)
    np.testing.assert_allclose(r[[0, 1, 3]], [2 / 3, 1.0, 0.0])
    # k=2: user 0 has one hit (rank 2) out of 2 slots
    np.testing.assert_allclose(precision_at_k(REC, REL, k=2)[[0, 1, 3]], [1 / 2, 1 / 2, 0.0])


def test_f1_hand_computed_and_zero_when_no_hits() -> None:
    f = f1_at_k(REC, REL, k=5)
    p, r = 2 / 5, 2 / 3
    assert f[0] == pytest.approx(2 * p * r / (p + r))
    assert f[1] == pytest.approx(2 * 0.2 * 1.0 / 1.2)
    assert f[3] == 0.0
    assert np.isnan(f[2])


def test_hit_rate_and_mrr_hand_computed() -> None:
    np.testing.assert_array_equal(hit_rate_at_k(REC, REL, k=5)[[0, 1, 3]], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(reciprocal_rank_at_k(REC, REL, k=5)[[0, 1, 3]], [0.5, 0.5, 0.0])
    # with k=1 nobody has a hit (first hits are at rank 2)
    np.testing.assert_array_equal(reciprocal_rank_at_k(REC, REL, k=1)[[0, 1, 3]], [0, 0, 0])


def test_ndcg_hand_computed() -> None:
    n = ndcg_at_k(REC, REL, k=5)
    # user 0: DCG = d2 + d4; |T| = 3 -> IDCG = d1 + d2 + d3
    assert n[0] == pytest.approx((D[1] + D[3]) / (D[0] + D[1] + D[2]))
    # user 1: DCG = d2; |T| = 1 -> IDCG = d1 = 1
    assert n[1] == pytest.approx(D[1])
    assert n[3] == 0.0
    # ideal DCG is over min(k, |T|) positions: k=2 for user 0 -> IDCG = d1 + d2
    assert ndcg_at_k(REC, REL, k=2)[0] == pytest.approx(D[1] / (D[0] + D[1]))


def test_average_precision_hand_computed() -> None:
    ap = average_precision_at_k(REC, REL, k=5)
    # user 0: hits at 2 and 4 -> P@2 = 1/2, P@4 = 2/4; divided by min(5, 3) = 3
    assert ap[0] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert ap[1] == pytest.approx((1 / 2) / 1)
    assert ap[3] == 0.0
    # k=2: min(2, 3) = 2 -> (1/2) / 2
    assert average_precision_at_k(REC, REL, k=2)[0] == pytest.approx(0.25)


def test_perfect_list_scores_one() -> None:
    rec = np.array([[3, 1, 2, 0]])
    rel = [[1, 3]]
    for fn in (recall_at_k, hit_rate_at_k, ndcg_at_k, average_precision_at_k,
               reciprocal_rank_at_k):
        assert fn(rec, rel, k=2)[0] == pytest.approx(1.0), fn.__name__
    assert precision_at_k(rec, rel, k=2)[0] == 1.0
    assert f1_at_k(rec, rel, k=2)[0] == 1.0


def test_ranking_metrics_averages_over_users_with_relevant_items() -> None:
    out = ranking_metrics(REC, REL, k=5, n_items=10)
    assert list(out) == [f"{m}@5" for m in RANKING_METRICS]
    assert out["precision@5"] == pytest.approx((2 / 5 + 1 / 5 + 0) / 3)
    assert out["recall@5"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert out["hit_rate@5"] == pytest.approx(2 / 3)
    assert out["mrr@5"] == pytest.approx((0.5 + 0.5) / 3)
    assert out["map@5"] == pytest.approx(((1 / 2 + 2 / 4) / 3 + 0.5 + 0) / 3)
    # coverage over the evaluated users 0, 1, 3: {1,2,3,4,5,6,7,8,0} = 9 of 10 items
    assert out["coverage@5"] == pytest.approx(9 / 10)


def test_ranking_metrics_selection_and_default_catalogue() -> None:
    out = ranking_metrics(REC, REL, k=3, metrics=["ndcg", "coverage"])
    assert list(out) == ["ndcg@3", "coverage@3"]
    # without n_items the catalogue is the columns of `relevant` (max index 9 -> 10 columns)
    assert out["coverage@3"] == pytest.approx(len({1, 2, 3, 5, 6, 7, 8, 0}) / 10)


def test_ranking_metrics_nan_when_no_user_has_relevant_items() -> None:
    out = ranking_metrics(np.array([[0, 1]]), sp.csr_matrix((1, 3)), k=2)
    assert all(math.isnan(v) for v in out.values())


def test_relevant_formats_agree() -> None:
    dense = np.zeros((4, 10))
    for u, items in enumerate(REL):
        dense[u, items] = 1
    from_list = ranking_metrics(REC, REL, k=4, n_items=10)
    from_dense = ranking_metrics(REC, dense, k=4, n_items=10)
    from_csr = ranking_metrics(REC, sp.csr_matrix(dense), k=4, n_items=10)
    assert from_list == pytest.approx(from_dense) and from_list == pytest.approx(from_csr)


def test_explicit_zeros_in_sparse_relevance_are_not_relevant() -> None:
    rel = sp.csr_matrix((np.array([0.0, 1.0]), (np.array([0, 0]), np.array([0, 1]))), shape=(1, 3))
    assert recall_at_k(np.array([[0, 1]]), rel, k=2)[0] == 1.0  # |T| = 1, item 0 not relevant
    assert precision_at_k(np.array([[0, 2]]), rel, k=2)[0] == 0.0


def test_repeated_item_counts_once() -> None:
    rec = np.array([[1, 1, 1, 2]])
    assert precision_at_k(rec, [[1]], k=4)[0] == pytest.approx(1 / 4)
    assert average_precision_at_k(rec, [[1, 2]], k=4)[0] == pytest.approx((1 + 2 / 4) / 2)


def test_k_longer_than_list_counts_padding_as_misses() -> None:
    rec = np.array([[4, 5]])
    assert precision_at_k(rec, [[5]], k=10)[0] == pytest.approx(1 / 10)
    assert ndcg_at_k(rec, [[5]], k=10)[0] == pytest.approx(D[1])


def test_relevant_columns_past_catalogue_count_but_never_hit() -> None:
    # item 7 is relevant but outside a 5-item catalogue (unknown to training)
    rec = np.array([[0, 1, 7]])  # indices outside the catalogue do not count as covered
    assert recall_at_k(np.array([[0, 1]]), [[1, 7]], k=2)[0] == pytest.approx(0.5)
    assert catalog_coverage_at_k(rec, n_items=5, k=3) == pytest.approx(2 / 5)


def test_coverage_ignores_padding_and_counts_distinct() -> None:
    rec = np.array([[0, 1, -1], [1, 0, 2]])
    assert catalog_coverage_at_k(rec, n_items=4, k=3) == pytest.approx(3 / 4)
    assert catalog_coverage_at_k(rec, n_items=4, k=1) == pytest.approx(2 / 4)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3", None])
def test_bad_k(k) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="k must be a positive int"):
        precision_at_k(REC, REL, k=k)
    with pytest.raises(ConfigError, match="k must be a positive int"):
        ranking_metrics(REC, REL, k=k)
    with pytest.raises(ConfigError, match="k must be a positive int"):
        catalog_coverage_at_k(REC, 10, k=k)


def test_ranking_input_errors() -> None:
    with pytest.raises(DataError, match="recommended_idx has 4 users but relevant has 2"):
        precision_at_k(REC, REL[:2], k=3)
    with pytest.raises(DataError, match="must be a 2-D"):
        precision_at_k(np.array([1, 2, 3]), [[1]], k=3)
    with pytest.raises(DataError, match="integer item indices; got dtype float64"):
        precision_at_k(np.array([[1.0, 2.0]]), [[1]], k=2)
    with pytest.raises(DataError, match="relevant must be a scipy sparse matrix"):
        precision_at_k(REC, "abc", k=2)
    with pytest.raises(DataError, match="must be >= 0"):
        precision_at_k(np.array([[1]]), [[-1]], k=1)
    with pytest.raises(ConfigError, match=r"unknown ranking metric\(s\) \['auc'\]"):
        ranking_metrics(REC, REL, k=2, metrics=["precision", "auc"])
    with pytest.raises(ConfigError, match="n_items .* must be a positive int; got 0"):
        catalog_coverage_at_k(REC, 0, k=2)


# -- the vectorised code against a plain per-user loop -----------------------------------------


def _reference(rec: list[list[int]], rel: list[set[int]], k: int) -> dict[str, float]:
    vals: dict[str, list[float]] = {m: [] for m in RANKING_METRICS if m != "coverage"}
    for lst, t in zip(rec, rel, strict=True):
        if not t:
            continue
        seen: set[int] = set()
        hit_ranks = []
        for r, item in enumerate(lst[:k], start=1):
            if item >= 0 and item in t and item not in seen:
                hit_ranks.append(r)
            seen.add(item)
        h = len(hit_ranks)
        p, rc = h / k, h / len(t)
        vals["precision"].append(p)
        vals["recall"].append(rc)
        vals["f1"].append(2 * p * rc / (p + rc) if p + rc else 0.0)
        vals["hit_rate"].append(float(h > 0))
        dcg = sum(1 / math.log2(r + 1) for r in hit_ranks)
        idcg = sum(1 / math.log2(r + 1) for r in range(1, min(k, len(t)) + 1))
        vals["ndcg"].append(dcg / idcg)
        vals["map"].append(
            sum((j + 1) / r for j, r in enumerate(hit_ranks)) / min(k, len(t))
        )
        vals["mrr"].append(1 / hit_ranks[0] if hit_ranks else 0.0)
    return {f"{m}@{k}": (float(np.mean(v)) if v else float("nan")) for m, v in vals.items()}


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_users=st.integers(1, 6),
    length=st.integers(1, 8),
    k=st.integers(1, 10),
)
def test_vectorised_metrics_match_plain_loop(
    data: st.DataObject, n_users: int, length: int, k: int
) -> None:
    n_items = 12
    rec = [
        data.draw(st.lists(st.integers(-1, n_items - 1), min_size=length, max_size=length))
        for _ in range(n_users)
    ]
    rel = [
        data.draw(st.sets(st.integers(0, n_items + 2), max_size=6)) for _ in range(n_users)
    ]
    got = ranking_metrics(np.array(rec), [sorted(t) for t in rel], k=k, n_items=n_items,
                          metrics=[m for m in RANKING_METRICS if m != "coverage"])
    want = _reference(rec, rel, k)
    assert got.keys() == want.keys()
    for key in want:
        if math.isnan(want[key]):
            assert math.isnan(got[key])
        else:
            assert got[key] == pytest.approx(want[key], abs=1e-12), key
