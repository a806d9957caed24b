"""The one-row branch of ``_top_k`` (single-user requests) gives exactly the general result."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chuchun.models import _base


def _general(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The multi-row code path on the same row (a second, dropped row forces it)."""
    pad = np.vstack([scores, np.zeros_like(scores)])
    idx, vals = _base._top_k(pad, k)
    return idx[:1], vals[:1]


@settings(max_examples=200, deadline=None)
@given(
    row=hnp.arrays(np.float32, st.integers(2, 40),
                   elements=st.sampled_from([0.0, 1.0, 2.5, -3.0, np.nan, -np.inf, np.inf])),
    k=st.integers(1, 39),
)
def test_one_row_branch_equals_the_general_path(row: np.ndarray, k: int) -> None:
    k = min(k, len(row) - 1)
    idx, vals = _base._top_k(row[None, :].copy(), k)
    want_idx, want_vals = _general(row.copy(), k)
    assert idx.dtype == want_idx.dtype and vals.dtype == want_vals.dtype
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(vals, want_vals)


def test_one_row_branch_on_a_large_row_with_ties() -> None:
    rng = np.random.default_rng(0)
    row = rng.integers(0, 50, size=20_000).astype(np.float32)  # many ties at every cutoff
    row[rng.integers(0, 20_000, 100)] = np.nan
    for k in (1, 10, 333, 19_999):
        idx, vals = _base._top_k(row[None, :].copy(), k)
        want_idx, want_vals = _general(row.copy(), k)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(vals, want_vals)
    # the branch is taken: breaking it breaks this test
    assert _base._top_k_row(row.copy(), 10)[0].shape == (1, 10)
