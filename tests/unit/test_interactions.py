from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun import DataError, Interactions


def test_from_pandas_builds_sorted_vocabularies_and_views():
    df = pd.DataFrame({"user": ["b", "a", "b"], "item": [3, 1, 1], "rating": [4, 5, 2],
                       "timestamp": [3, 1, 2]})
    x = Interactions.from_pandas(df)
    assert x.users.ids.tolist() == ["a", "b"]
    assert x.items.ids.tolist() == [1, 3]
    assert x.csr.toarray().tolist() == [[5, 0], [2, 4]]
    assert x.csr.dtype == np.float32 and x.csr.indptr.dtype == np.int64
    assert x.csc.toarray().tolist() == [[5, 0], [2, 4]]
    assert x.has_ratings and x.timestamps.tolist() == [3, 1, 2]


def test_implicit_when_no_rating_column():
    x = Interactions.from_pandas(pd.DataFrame({"u": [1, 2], "i": [1, 1]}), user_col="u",
                                 item_col="i")
    assert not x.has_ratings
    assert x.values.tolist() == [1.0, 1.0]


def test_configurable_columns_and_missing_column_message():
    df = pd.DataFrame({"u": [1], "i": [2], "score": [3.0]})
    x = Interactions.from_pandas(df, user_col="u", item_col="i", rating_col="score")
    assert x.ratings.tolist() == [3.0]
    with pytest.raises(DataError, match=r"rating column 'stars' not found; columns are \['u', 'i', 'score'\]"):
        Interactions.from_pandas(df, user_col="u", item_col="i", rating_col="stars")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("last", [3.0, 5.0]), ("first", [1.0, 5.0]), ("mean", [2.0, 5.0]), ("sum", [4.0, 5.0])],
)
def test_duplicate_policies(policy, expected):
    x = Interactions.from_arrays([1, 1, 2], [7, 7, 7], [1.0, 3.0, 5.0], [10, 20, 5],
                                 duplicates=policy)
    assert x.to_pandas().sort_values("user")["rating"].tolist() == expected


def test_duplicates_are_an_error_by_default():
    with pytest.raises(DataError, match="1 duplicate .* user 1 item 7"):
        Interactions.from_arrays([1, 1], [7, 7], [1.0, 2.0])


def test_last_follows_timestamps_not_row_order():
    x = Interactions.from_arrays([1, 1], [7, 7], [1.0, 2.0], [20, 10], duplicates="last")
    assert x.ratings.tolist() == [1.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": [], "items": []}, "empty input"),
        ({"users": [1, 2], "items": [1]}, "length mismatch"),
        ({"users": [1], "items": [1], "ratings": [np.nan]}, "NaN"),
        ({"users": [1], "items": [1], "ratings": ["good"]}, "non-numeric"),
        ({"users": [1, None], "items": [1, 2]}, "missing"),
        ({"users": [1], "items": [1], "ratings": [7.0], "rating_scale": (1, 5)},
         r"declared scale \[1, 5\]"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(DataError, match=message):
        Interactions.from_arrays(**kwargs)


def test_subset_compacts_vocabularies():
    x = Interactions.from_arrays(["a", "b", "c"], [1, 2, 3], [1, 2, 3])
    s = x.subset(np.array([False, True, True]))
    assert s.users.ids.tolist() == ["b", "c"]
    assert s.items.ids.tolist() == [2, 3]
    assert s.csr.shape == (2, 2)


def test_csv_and_parquet_round_trip(tmp_path):
    df = pd.DataFrame({"user": [1, 2], "item": ["x", "y"], "rating": [1.0, 2.0]})
    df.to_csv(tmp_path / "r.csv", index=False)
    df.to_parquet(tmp_path / "r.parquet")
    a = Interactions.from_csv(tmp_path / "r.csv")
    b = Interactions.from_parquet(tmp_path / "r.parquet")
    assert a.fingerprint() == b.fingerprint()
    with pytest.raises(DataError, match="file not found"):
        Interactions.from_csv(tmp_path / "nope.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read Parquet"):
        Interactions.from_parquet(tmp_path / "bad.parquet")


def test_datetime_timestamps():
    x = Interactions.from_arrays([1], [1], None, pd.to_datetime(["1970-01-02"]))
    assert x.timestamps.tolist() == [86400]


def test_from_sparse_wraps_a_matrix():
    import scipy.sparse as sp

    m = sp.csr_matrix(np.array([[0, 3.0, 0], [1.0, 0, 0]], dtype=np.float32))
    x = Interactions.from_sparse(m, user_ids=["b", "a"], item_ids=[30, 10, 20])
    assert x.users.ids.tolist() == ["a", "b"] and x.items.ids.tolist() == [10, 20, 30]
    # row "b" held item 10 (column 1) with 3; row "a" held item 30 (column 0) with 1
    assert x.csr.toarray().tolist() == [[0, 0, 1.0], [3.0, 0, 0]]
    assert sorted(zip(x.user_ids, x.item_ids, x.ratings)) == [("a", 30, 1.0), ("b", 10, 3.0)]
    plain = Interactions.from_sparse(m, ratings=False)
    assert not plain.has_ratings and plain.csr.data.tolist() == [1.0, 1.0]
    assert Interactions.from_sparse(m).users.ids.tolist() == [0, 1]
    with pytest.raises(DataError, match="distinct"):
        Interactions.from_sparse(m, user_ids=["a", "a"])
    with pytest.raises(DataError, match="length mismatch"):
        Interactions.from_sparse(m, item_ids=[1, 2])
    with pytest.raises(DataError, match="scipy sparse"):
        Interactions.from_sparse(np.ones((2, 2)))
    with pytest.raises(DataError, match="empty input"):
        Interactions.from_sparse(sp.csr_matrix((2, 2)))
