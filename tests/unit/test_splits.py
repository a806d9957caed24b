"""Splits: sizes, disjointness, seeding, time order, unknown-pair accounting, error paths."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chuchun import ConfigError, DataError, DataWarning, Interactions
from chuchun.data.splits import (
    Split,
    holdout,
    kfold,
    movielens_100k_folds,
    predefined_folds,
    temporal_split,
    user_holdout,
)
from chuchun.testing import block_interactions



@pytest.fixture
def log() -> Interactions:
    return block_interactions(n_users=30, n_items=18, random_state=1)


def _pairs(data: Interactions) -> set[tuple[str, str]]:
    return set(zip(data.user_ids.tolist(), data.item_ids.tolist(), strict=True))


def _quiet(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


def _assert_partition(data: Interactions, split: Split) -> None:
    train, test = _pairs(split.train), _pairs(split.test)
    assert not train & test
    assert train | test == _pairs(data)
    assert split.info["n_train"] == len(split.train) and split.info["n_test"] == len(split.test)


# -- holdout -----------------------------------------------------------------------------------


def test_holdout_sizes_partition_and_seed(log: Interactions) -> None:
    s = _quiet(holdout, log, test_fraction=0.25, random_state=3)
    assert len(s.test) == round(len(log) * 0.25)
    _assert_partition(log, s)
    assert s.info["method"] == "holdout" and s.info["random_state"] == 3
    again = _quiet(holdout, log, test_fraction=0.25, random_state=3)
    assert _pairs(again.test) == _pairs(s.test)
    other = _quiet(holdout, log, test_fraction=0.25, random_state=4)
    assert _pairs(other.test) != _pairs(s.test)
    gen = _quiet(holdout, log, random_state=np.random.default_rng(3))
    assert len(gen.test) == round(len(log) * 0.2)


def test_holdout_keeps_ratings_and_timestamps(log: Interactions) -> None:
    s = _quiet(holdout, log)
    whole = log.to_pandas().set_index(["user", "item"])
    part = s.test.to_pandas().set_index(["user", "item"])
    pd.testing.assert_frame_equal(whole.loc[part.index], part, check_dtype=False)


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, "0.2", True, None, float("nan")])
def test_bad_test_fraction(log: Interactions, bad) -> None:  # type: ignore[no-untyped-def]
    for fn in (holdout, user_holdout, temporal_split):
        with pytest.raises(ConfigError, match="test_fraction must be a number strictly between"):
            fn(log, test_fraction=bad)


def test_too_few_rows_for_holdout() -> None:
    tiny = Interactions.from_arrays([1, 2], [1, 2], [3.0, 4.0])
    with pytest.raises(DataError, match="put no rows in the test part"):
        holdout(tiny, test_fraction=0.1)
    with pytest.raises(DataError, match="put all 2 rows in the test part"):
        holdout(tiny, test_fraction=0.9)


def test_splits_reject_non_interactions() -> None:
    frame = pd.DataFrame({"user": [1], "item": [2]})
    for fn in (holdout, user_holdout, temporal_split, kfold):
        with pytest.raises(DataError, match="expects a chuchun.data.Interactions; got DataFrame"):
            fn(frame)


# -- unknown users / items are counted and announced ---------------------------------------------


def test_unknown_test_pairs_are_counted_and_warned() -> None:
    # user 9 and item 99 occur once each; a split that tests those rows cannot train on them
    data = Interactions.from_arrays(
        [1, 1, 2, 2, 9, 1], [10, 11, 10, 11, 10, 99], [1, 2, 3, 4, 5, 2], [1, 2, 3, 4, 5, 6]
    )
    with pytest.warns(DataWarning, match=r"2 of 2 test pairs have a user or item unknown") as rec:
        s = temporal_split(data, at=5)
    assert rec[0].filename == __file__  # the warning points at the caller
    assert s.info["n_test_unknown_user"] == 1
    assert s.info["n_test_unknown_item"] == 1
    assert s.info["n_test_unknown"] == 2
    assert s.info["n_unknown_users"] == 1 and s.info["n_unknown_items"] == 1
    assert len(s.test) == 2  # kept, not dropped
    assert "2 test pairs unknown" in repr(s)


def test_no_warning_when_every_test_pair_is_known(log: Interactions) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        s = user_holdout(log, test_fraction=0.2)
    assert s.info["n_test_unknown"] == 0


def test_from_parts_counts_without_warning_on_request() -> None:
    train = Interactions.from_arrays(["a", "b"], ["x", "y"])
    test = Interactions.from_arrays(["a", "c", "c"], ["y", "x", "z"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        s = Split.from_parts(train, test, warn=False, method="custom")
    assert s.info["n_test_unknown_user"] == 2
    assert s.info["n_test_unknown_item"] == 1
    assert s.info["n_test_unknown"] == 2
    with pytest.raises(DataError, match="test must be a chuchun.data.Interactions; got list"):
        Split.from_parts(train, [1, 2])  # type: ignore[arg-type]


# -- per-user hold-out --------------------------------------------------------------------------


def test_user_holdout_fraction_per_user(log: Interactions) -> None:
    s = user_holdout(log, test_fraction=0.3, random_state=5)
    _assert_partition(log, s)
    n_u = log.to_pandas().groupby("user").size()
    n_test = s.test.to_pandas().groupby("user").size().reindex(n_u.index, fill_value=0)
    np.testing.assert_array_equal(n_test.to_numpy(), np.floor(n_u.to_numpy() * 0.3))
    assert _pairs(user_holdout(log, test_fraction=0.3, random_state=5).test) == _pairs(s.test)
    assert _pairs(user_holdout(log, test_fraction=0.3, random_state=6).test) != _pairs(s.test)


def test_user_holdout_time_takes_most_recent_with_item_tiebreak() -> None:
    # user "a": times 1, 2, 3, 3 -> the last two by (time, item) are (3, "p") and (3, "q")
    data = Interactions.from_arrays(
        ["a", "a", "a", "a", "b", "b"],
        ["q", "r", "s", "p", "r", "s"],
        None,
        [3, 1, 2, 3, 9, 8],
    )
    with pytest.warns(DataWarning, match="2 unknown item"):  # items p and q occur only in test
        s = user_holdout(data, test_fraction=0.5, order="time")
    assert _pairs(s.test) == {("a", "p"), ("a", "q"), ("b", "r")}
    assert s.info["order"] == "time" and s.info["random_state"] is None


def test_user_holdout_last_k_keeps_one_training_row() -> None:
    data = Interactions.from_arrays(
        [1, 1, 1, 1, 2, 2, 3], [1, 2, 3, 4, 1, 2, 1], None, [1, 2, 3, 4, 5, 6, 7]
    )
    with pytest.warns(DataWarning, match="2 unknown item"):  # items 3 and 4 only in test
        s = user_holdout(data, last_k=2, order="time")
    assert _pairs(s.test) == {(1, 3), (1, 4), (2, 2)}
    assert s.info["last_k"] == 2 and s.info["test_fraction"] is None
    assert s.info["n_users_without_test"] == 1  # user 3 has a single row
    r = _quiet(user_holdout, data, last_k=1, order="random", random_state=0)
    assert r.test.to_pandas().groupby("user").size().to_dict() == {1: 1, 2: 1}


def test_user_holdout_errors(log: Interactions) -> None:
    no_time = Interactions.from_arrays([1, 1, 2, 2], [1, 2, 1, 2])
    with pytest.raises(DataError, match="no timestamps"):
        user_holdout(no_time, order="time")
    with pytest.raises(ConfigError, match="order must be 'random' or 'time'; got 'latest'"):
        user_holdout(log, order="latest")  # type: ignore[arg-type]
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="last_k must be an int >= 1"):
            user_holdout(log, last_k=bad)
    one_each = Interactions.from_arrays([1, 2, 3], [1, 2, 3])
    with pytest.raises(DataError, match="put no rows in the test part"):
        user_holdout(one_each, test_fraction=0.5)


# -- temporal split ----------------------------------------------------------------------------


def test_temporal_split_fraction_orders_by_time(log: Interactions) -> None:
    s = _quiet(temporal_split, log, test_fraction=0.25)
    _assert_partition(log, s)
    assert len(s.test) == round(len(log) * 0.25)
    assert s.train.timestamps.max() <= s.test.timestamps.min()


def test_temporal_split_at_numbers_and_dates() -> None:
    day = 86_400
    data = Interactions.from_arrays([1, 1, 2, 2], [1, 2, 1, 2], None, [0, day, 2 * day, 3 * day])
    with pytest.warns(DataWarning, match="2 unknown user"):  # user 2 only in test
        s = temporal_split(data, at=2 * day)
    assert sorted(s.test.timestamps.tolist()) == [2 * day, 3 * day]
    assert s.info["at"] == 2 * day
    d = _quiet(temporal_split, data, at="1970-01-03")
    assert sorted(d.test.timestamps.tolist()) == [2 * day, 3 * day]
    with pytest.raises(DataError, match="leaves the test part empty"):
        temporal_split(data, at=10 * day)
    with pytest.raises(DataError, match="leaves the train part empty"):
        temporal_split(data, at=0)
    with pytest.raises(ConfigError, match="at must be a timestamp"):
        temporal_split(data, at="not a date")


def test_temporal_split_needs_timestamps() -> None:
    with pytest.raises(DataError, match="temporal_split orders rows by time, but the interaction"):
        temporal_split(Interactions.from_arrays([1, 2], [1, 2]))


# -- k-fold ------------------------------------------------------------------------------------


def test_kfold_tests_every_row_once(log: Interactions) -> None:
    folds = _quiet(kfold, log, n_folds=4, random_state=2)
    assert len(folds) == 4
    tested = [p for s in folds for p in _pairs(s.test)]
    assert len(tested) == len(log) and set(tested) == _pairs(log)
    sizes = [len(s.test) for s in folds]
    assert max(sizes) - min(sizes) <= 1
    for f, s in enumerate(folds):
        _assert_partition(log, s)
        assert s.info["fold"] == f + 1 and s.info["n_folds"] == 4
    again = _quiet(kfold, log, n_folds=4, random_state=2)
    assert [_pairs(s.test) for s in again] == [_pairs(s.test) for s in folds]


def test_kfold_errors(log: Interactions) -> None:
    for bad in (1, 0, 2.0, True):
        with pytest.raises(ConfigError, match="n_folds must be an int >= 2"):
            kfold(log, n_folds=bad)
    with pytest.raises(DataError, match="needs at least n_folds=5 rows; the log has 3"):
        kfold(Interactions.from_arrays([1, 2, 3], [1, 2, 3]), n_folds=5)


# -- predefined folds --------------------------------------------------------------------------


def test_predefined_folds_from_files(tmp_path: Path) -> None:
    train = tmp_path / "a.csv"
    test = tmp_path / "b.csv"
    pd.DataFrame({"user": [1, 1, 2], "item": [5, 6, 5], "rating": [1, 2, 3]}).to_csv(
        train, index=False
    )
    pd.DataFrame({"user": [2, 3], "item": [6, 5], "rating": [4, 5]}).to_csv(test, index=False)
    with pytest.warns(DataWarning, match="1 of 2 test pairs"):
        (s,) = predefined_folds([(train, test)])
    assert len(s.train) == 3 and len(s.test) == 2
    assert s.info["train_path"] == os.fspath(train) and s.info["n_test_unknown_user"] == 1
    parquet = tmp_path / "c.parquet"
    pd.DataFrame({"u": [2], "i": [6]}).to_parquet(parquet)
    (p,) = predefined_folds([(s.train, parquet)], user_col="u", item_col="i")
    assert len(p.test) == 1 and p.info["train_path"] is None


def test_predefined_folds_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least one"):
        predefined_folds([])
    with pytest.raises(DataError, match="fold 1: expected a \\(train, test\\) pair"):
        predefined_folds(["only-one-path"])
    with pytest.raises(DataError, match="file not found"):
        predefined_folds([(tmp_path / "x.csv", tmp_path / "y.csv")])
    with pytest.raises(DataError, match="expected a file path or Interactions for a fold; got int"):
        predefined_folds([(1, 2)])


def test_movielens_100k_official_folds(ml100k_dir: Path) -> None:
    with pytest.warns(DataWarning):
        folds = movielens_100k_folds(ml100k_dir)
    assert len(folds) == 5
    for f, s in enumerate(folds):
        assert (len(s.train), len(s.test)) == (80_000, 20_000)
        assert s.info["fold"] == f + 1 and s.train.rating_scale == (1.0, 5.0)
        assert s.info["n_test_unknown_user"] == 0
    # u1.test has 32 ratings of items that u1.base never rates (counted, not dropped)
    assert [s.info["n_test_unknown_item"] for s in folds] == [32, 36, 36, 27, 36]
    first = folds[0].train.to_pandas().iloc[0]
    assert (first["user"], first["item"], first["rating"]) == (1, 1, 5.0)


def test_movielens_100k_folds_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MovieLens 100K directory not found"):
        movielens_100k_folds(tmp_path / "nope")
    (tmp_path / "u1.base").write_text("1\t1\t5\t1\n")
    with pytest.raises(DataError, match="folds missing in .*u1.test, u2.base"):
        movielens_100k_folds(tmp_path)
