"""Item popularity is counted in chunks (no int64 copy of the item column) with bincount's
result."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun.data import Interactions
from chuchun.models import Popularity, _base


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 3000), st.integers(1, 50),
       st.integers(1, 700))
def test_chunked_counts_equal_bincount(seed: int, n: int, n_items: int, chunk: int) -> None:
    idx = np.random.default_rng(seed).integers(0, n_items, n).astype(np.int32)
    got = _base._counts(idx, n_items, chunk)
    np.testing.assert_array_equal(got, np.bincount(idx, minlength=n_items))
    assert got.dtype == np.int64


def test_fitted_item_popularity_counts_every_interaction() -> None:
    users = np.repeat(np.arange(300), 4)
    items = (np.arange(1200) * 7) % 13
    model = Popularity().fit(Interactions.from_arrays(users, items))
    order = model.items_.index(np.arange(13))
    np.testing.assert_array_equal(model.item_popularity_[order],
                                  np.bincount(items, minlength=13).astype(np.float32))
