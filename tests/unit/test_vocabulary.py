from __future__ import annotations

import numpy as np
import pytest

from chuchun import DataError, Vocabulary


def test_integer_ids_sorted_and_mapped():
    v = Vocabulary.from_ids([30, 10, 20, 10])
    assert v.ids.tolist() == [10, 20, 30]
    assert v.index([20, 99, 10]).tolist() == [1, -1, 0]
    assert v.index(np.array([20.0, 1.5])).tolist() == [1, -1]
    assert v.index(["30"]).tolist() == [2]
    assert 30 in v and 31 not in v


def test_string_ids():
    v = Vocabulary.from_ids(["b", "a", "c"])
    assert v.ids.dtype.kind == "U"
    assert v.index(["c", "z"]).tolist() == [2, -1]
    assert v.to_ids([0, 2]).tolist() == ["a", "c"]
    assert v.to_python(1) == "b"


def test_missing_ids_are_an_error():
    with pytest.raises(DataError, match="1 missing"):
        Vocabulary.from_ids(["a", None])
    with pytest.raises(DataError, match="non-integral"):
        Vocabulary.from_ids([1.5, 2.0])
