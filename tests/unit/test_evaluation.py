"""evaluate / cross_validate on hand-checked cases, unknown-pair handling and error paths."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chuchun import ConfigError, DataError, DataWarning, Interactions, NotFittedError
from chuchun.data.splits import Split, holdout, movielens_100k_folds
from chuchun.evaluation import cross_validate, evaluate
from chuchun.metrics import rmse
from chuchun.models import BaselineOnly, GlobalMean, Popularity, Reason, Recommender
from chuchun.testing import block_interactions

D2 = 1 / math.log2(3)


@pytest.fixture
def split() -> Split:
    # popularity in training: item 1 (3 users), 2 (2), then 3, 4, 5 (1 each; ties by index)
    train = Interactions.from_arrays(
        ["A", "A", "B", "B", "C", "C", "C", "D"],
        [1, 2, 1, 3, 1, 2, 4, 5],
        [4, 3, 5, 2, 4, 4, 3, 1],
    )
    # B rates item 6 (unknown to training); E is a user unknown to training
    test = Interactions.from_arrays(
        ["A", "A", "B", "B", "E"], [3, 5, 2, 6, 1], [5, 2, 4, 3, 5]
    )
    return Split.from_parts(train, test, warn=False, method="hand")


def test_ranking_metrics_by_hand_with_fallback(split: Split) -> None:
    out = evaluate(Popularity(), split, k=2)
    # top-2 excluding seen: A -> [3, 4] (hit 3), B -> [2, 4] (hit 2), E (unknown) -> [1, 2]
    assert out["precision@2"] == pytest.approx(0.5)
    # |T_B| = 2 because the unknown item 6 stays relevant
    assert out["recall@2"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert out["ndcg@2"] == pytest.approx((2 / (1 + D2) + 1) / 3)
    assert out["mrr@2"] == pytest.approx(1.0)
    assert out["coverage@2"] == pytest.approx(4 / 5)  # items 1-4 of the 5 training items
    assert out["n_users_evaluated"] == 3 and out["n_users_unknown"] == 1
    assert out["n_test_unknown_user"] == 1 and out["n_test_unknown_item"] == 1
    assert out["n_test_unknown"] == 2 and out["n_test"] == 5 and out["n_train"] == 8
    assert "rmse" not in out  # Popularity does not predict ratings
    assert out["fit_seconds"] >= 0 and out["eval_seconds"] >= 0


def test_skip_leaves_unknown_pairs_out(split: Split) -> None:
    out = evaluate(Popularity(), split, k=2, unknown="skip")
    assert out["recall@2"] == pytest.approx((1 / 2 + 1) / 2)  # A: 1 of 2, B: 1 of {2}
    assert out["n_users_evaluated"] == 2 and out["n_users_unknown"] == 0
    assert out["coverage@2"] == pytest.approx(3 / 5)
    assert out["n_test_unknown"] == 2  # still reported


def test_relevance_threshold(split: Split) -> None:
    # ratings >= 4 in test: A-3 (5), B-2 (4), E-1 (5); A-5 (2) and B-6 (3) are not relevant
    out = evaluate(Popularity(), split, k=2, relevance_threshold=4)
    assert out["recall@2"] == pytest.approx(1.0)
    assert out["precision@2"] == pytest.approx(0.5)
    none = evaluate(Popularity(), split, k=2, relevance_threshold=6, metrics=["recall"])
    assert math.isnan(none["recall@2"]) and none["n_users_evaluated"] == 0


def test_rating_metrics_use_the_fallback_and_count_it(split: Split) -> None:
    model = BaselineOnly()
    out = evaluate(model, split, metrics=["rmse", "mae", "mse"])
    pred = model.predict(split.test.user_ids, split.test.item_ids)
    assert out["rmse"] == pytest.approx(rmse(split.test.values, pred))
    assert out["mse"] == pytest.approx(out["rmse"] ** 2)
    assert out["n_rating_pairs"] == 5 and out["n_rating_fallback"] == 2
    assert not any(key.endswith("@10") for key in out)  # only what was asked
    skipped = evaluate(model, split, metrics=["rmse"], unknown="skip")
    known = np.array([True, True, True, False, False])
    assert skipped["n_rating_pairs"] == 3 and skipped["n_rating_fallback"] == 0
    assert skipped["rmse"] == pytest.approx(rmse(split.test.values[known], pred[known]))


def test_default_metrics_for_rating_and_ranking_models(split: Split) -> None:
    rating = evaluate(GlobalMean(), split)
    assert {"rmse", "mae", "precision@10", "ndcg@10", "map@10", "coverage@10"} <= set(rating)
    ranking = evaluate(Popularity(), split)
    assert "rmse" not in ranking and "f1@10" in ranking and "hit_rate@10" in ranking


class _FavoursSeen(Recommender):
    """Scores every training item of the user above every other item."""

    def _fit(self, data: Interactions) -> None:
        return None

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        bonus = self.seen_[user_idx].toarray() > 0
        return (bonus * 100.0 - np.arange(len(self.items_))[None, :]).astype(np.float32)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        score = float(self._score(np.array([user_idx]))[0, item_idx])
        return score, [Reason(kind="bias", id="rule", contribution=score)]


def test_top_k_excludes_training_items(split: Split) -> None:
    model = _FavoursSeen()
    out = evaluate(model, split, k=2, metrics=["precision", "recall"], unknown="skip")
    # without seen items: A -> [3, 4] (hit 3), B -> [2, 4] (hit 2)
    assert out["precision@2"] == pytest.approx(0.5)
    recs = model.recommend(["A", "B"], 2)
    assert recs.to_lists() == [[3, 4], [2, 4]]


def test_fit_false_uses_the_fitted_model(split: Split) -> None:
    model = Popularity().fit(split.train)
    out = evaluate(model, split, k=2, fit=False)
    assert out["precision@2"] == pytest.approx(0.5) and "fit_seconds" not in out
    with pytest.raises(NotFittedError, match="not fitted yet"):
        evaluate(Popularity(), split, fit=False)


def test_evaluate_errors(split: Split) -> None:
    with pytest.raises(ConfigError, match=r"Popularity does not predict ratings, so \['rmse'\]"):
        evaluate(Popularity(), split, metrics=["rmse"])
    with pytest.raises(ConfigError, match=r"unknown metric\(s\) \['auc'\]"):
        evaluate(Popularity(), split, metrics=["auc"])
    for bad_k in (0, -3, 1.5, True):
        with pytest.raises(ConfigError, match="k must be a positive int"):
            evaluate(Popularity(), split, k=bad_k)
    with pytest.raises(ConfigError, match="unknown must be 'fallback' or 'skip'; got 'drop'"):
        evaluate(Popularity(), split, unknown="drop")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="relevance_threshold must be a number"):
        evaluate(Popularity(), split, relevance_threshold="4")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="expects a chuchun.data.splits.Split; got tuple"):
        evaluate(Popularity(), (split.train, split.test))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expects a chuchun Recommender; got str"):
        evaluate("Popularity", split)  # type: ignore[arg-type]
    implicit = Split.from_parts(
        Interactions.from_arrays([1, 2], [1, 2]), Interactions.from_arrays([1], [2]), warn=False
    )
    with pytest.raises(DataError, match="relevance_threshold needs ratings"):
        evaluate(Popularity(), implicit, relevance_threshold=3)
    with pytest.raises(DataError, match=r"\['mae'\] need ratings, but the test part has no"):
        evaluate(_RatingStub(), implicit, metrics=["mae"])


class _RatingStub(GlobalMean):
    def _fit(self, data: Interactions) -> None:
        return None


# -- cross-validation --------------------------------------------------------------------------


def test_cross_validate_table_and_fresh_clones() -> None:
    data = block_interactions(n_users=30, n_items=18, random_state=2)
    model = BaselineOnly(n_epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        table = cross_validate(model, data, metrics=["rmse", "ndcg"], k=5, n_folds=3)
    assert list(table.index) == ["fold 1", "fold 2", "fold 3", "mean", "std"]
    assert not model.is_fitted  # the original is left untouched
    folds = table.iloc[:3]
    pd.testing.assert_series_equal(table.loc["mean"], folds.mean(), check_names=False)
    pd.testing.assert_series_equal(table.loc["std"], folds.std(ddof=1), check_names=False)
    assert table.loc["fold 1", "n_test"] + table.loc["fold 2", "n_test"] + table.loc[
        "fold 3", "n_test"
    ] == len(data)
    # the same folds given explicitly give the same numbers
    from chuchun.data.splits import kfold

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        again = cross_validate(model, kfold(data, 3), metrics=["rmse", "ndcg"], k=5)
    np.testing.assert_allclose(again["rmse"].to_numpy(), table["rmse"].to_numpy())


def test_cross_validate_single_split_and_errors() -> None:
    data = block_interactions(n_users=20, n_items=12, random_state=3)
    one = cross_validate(Popularity(), holdout(data), metrics=["recall"], k=3)
    assert list(one.index) == ["fold 1", "mean", "std"] and math.isnan(one.loc["std", "recall@3"])
    with pytest.raises(DataError, match="at least one split"):
        cross_validate(Popularity(), [])
    with pytest.raises(DataError, match="split 2 is a str, not a chuchun Split"):
        cross_validate(Popularity(), [holdout(data), "u2"])  # type: ignore[list-item]


def test_baseline_only_matches_surprise_on_ml100k(ml100k_dir: Path) -> None:
    """Reference: Surprise 1.1.5 BaselineOnly() with default options, ml-100k u1..u5:
    mean RMSE 0.9457, MAE 0.7499 (numbers from issue 2; reproduced by
    benchmarks/bench_baselines.py)."""
    with pytest.warns(DataWarning):
        folds = movielens_100k_folds(ml100k_dir)
    table = cross_validate(BaselineOnly(), folds, metrics=["rmse", "mae"])
    assert abs(table.loc["mean", "rmse"] - 0.9457) < 0.003
    assert abs(table.loc["mean", "mae"] - 0.7499) < 0.003
    assert (table.loc[[f"fold {f}" for f in range(1, 6)], "n_rating_fallback"] > 0).all()


def test_top_k_ties_at_the_cutoff_go_to_the_lower_index() -> None:
    # items 0..5 each seen by one user; item 6 by two: the list is 6 then 0, 1, ... by index
    users = ["a", "b", "c", "d", "e", "f", "a", "b"]
    items = [0, 1, 2, 3, 4, 5, 6, 6]
    model = Popularity().fit(Interactions.from_arrays(users, items))
    for k in range(1, 7):
        got = model.recommend(["z"], k).to_lists()[0]
        assert got == [6, 0, 1, 2, 3, 4][:k]
    assert model.recommend(["a"], 3).to_lists()[0] == [1, 2, 3]  # 0 and 6 are seen


@settings(max_examples=80, deadline=None)
@given(
    scores=hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 25)),
                      elements=st.sampled_from([0.0, 1.0, 2.0, 3.0, -np.inf])),
    k=st.integers(1, 30),
)
def test_top_k_equals_a_full_sort_by_score_then_index(scores: np.ndarray, k: int) -> None:
    from chuchun.models._base import _top_k

    n, m = scores.shape
    k = min(k, m)
    idx, vals = _top_k(scores.copy(), k)
    order = np.lexsort((np.broadcast_to(np.arange(m), (n, m)), -scores), axis=1)[:, :k]
    want = np.where(np.isfinite(np.take_along_axis(scores, order, axis=1)), order, -1)
    np.testing.assert_array_equal(idx, want)
