"""The compiled MF kernels agree with their plain NumPy twins on random small problems."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun.kernels.mf import (
    als_half_step,
    als_half_step_numpy,
    sgd_epoch,
    sgd_epoch_numpy,
    svdpp_epoch,
    svdpp_epoch_numpy,
)

problems = st.fixed_dictionaries(
    {
        "n_users": st.integers(1, 7),
        "n_items": st.integers(1, 7),
        "k": st.integers(1, 4),
        "density": st.floats(0.1, 1.0),
        "seed": st.integers(0, 2**31 - 1),
    }
)


def _ratings(p):
    rng = np.random.default_rng(p["seed"])
    mask = rng.random((p["n_users"], p["n_items"])) < p["density"]
    mask[0, 0] = True
    u, i = np.nonzero(mask)
    r = rng.integers(1, 6, len(u)).astype(np.float32)
    m = sp.csr_matrix((r, (u, i)), shape=mask.shape, dtype=np.float32)
    m.sort_indices()
    return rng, u.astype(np.int32), i.astype(np.int32), r, m


def _factors(rng, n, k):
    return (rng.standard_normal((n, k)) * 0.3).astype(np.float32)


@settings(max_examples=40, deadline=None)
@given(p=problems, n_strata=st.integers(1, 3), biased=st.booleans())
def test_sgd_epoch_matches_numpy(p, n_strata, biased):
    rng, u, i, r, _ = _ratings(p)
    ug = rng.integers(0, n_strata, p["n_users"])
    ig = rng.integers(0, n_strata, p["n_items"])
    key = ug[u] * n_strata + ig[i]
    rows = rng.permutation(len(u))
    rows = rows[np.argsort(key[rows], kind="stable")].astype(np.int64)
    ptr = np.r_[0, np.cumsum(np.bincount(key, minlength=n_strata**2))].astype(np.int64)
    state = [
        (rng.standard_normal(p["n_users"]) * 0.1).astype(np.float32),
        (rng.standard_normal(p["n_items"]) * 0.1).astype(np.float32),
        _factors(rng, p["n_users"], p["k"]),
        _factors(rng, p["n_items"], p["k"]),
    ]
    twin = [a.copy() for a in state]
    sse, sse_twin = np.zeros(n_strata), np.zeros(n_strata)
    args = (0.05, 0.03, 0.02, 0.04, biased)
    sgd_epoch(u, i, r, rows, ptr, n_strata, 3.5, *state, *args, sse)
    sgd_epoch_numpy(u, i, r, rows, ptr, n_strata, 3.5, *twin, *args, sse_twin)
    for a, b in zip(state, twin, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sse, sse_twin, rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(p=problems)
def test_svdpp_lazy_epoch_matches_literal_per_rating_updates(p):
    rng, _, _, _, m = _ratings(p)
    n_users, n_items, k = p["n_users"], p["n_items"], p["k"]
    state = [
        np.zeros(n_users, np.float32), np.zeros(n_items, np.float32),
        _factors(rng, n_users, k), _factors(rng, n_items, k), _factors(rng, n_items, k),
    ]
    twin = [a.copy() for a in state]
    order = rng.permutation(n_users).astype(np.int32)
    csr = (m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data)
    sse = svdpp_epoch(*csr, order, 3.0, *state, 0.02, 0.03, 0.05, 0.1, 0.01, 0.2)
    sse_twin = svdpp_epoch_numpy(*csr, order, 3.0, *twin, 0.02, 0.03, 0.05, 0.1, 0.01, 0.2)
    for a, b in zip(state, twin, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sse, sse_twin, rtol=1e-4)


@settings(max_examples=40, deadline=None)
@given(p=problems, weighted=st.booleans(), fit_bias=st.booleans(),
       reg=st.floats(0.01, 2.0), breg=st.floats(0.0, 2.0))
def test_als_half_step_matches_numpy(p, weighted, fit_bias, reg, breg):
    rng, _, _, _, m = _ratings(p)
    other = _factors(rng, p["n_items"], p["k"])
    b_other = rng.standard_normal(p["n_items"]) * 0.2
    x = np.full((p["n_users"], p["k"]), 7.0, np.float32)
    b = np.full(p["n_users"], 7.0, np.float32)
    x2, b2 = x.copy(), b.copy()
    args = (m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data, other, b_other, 3.0,
            reg, breg, weighted, fit_bias)
    sse = als_half_step(*args, x, b)
    sse_twin = als_half_step_numpy(*args, x2, b2)
    np.testing.assert_allclose(sse, sse_twin, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(x, x2, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(b, b2, rtol=1e-3, atol=1e-4)
    if not fit_bias:
        assert (b == 7.0).all()  # bias output untouched when not fitted


@pytest.mark.parametrize("breg", [0.05, 1e-6])
def test_als_half_step_short_and_long_rows_match_numpy(breg):
    # rows of 1..40 ratings with k = 12: rows shorter than k + 1 take the dual (n x n) solve,
    # longer ones the primal Gram matrix; a bias penalty far below the factor one forces the
    # primal solve everywhere
    rng = np.random.default_rng(7)
    n_rows, n_cols, k = 30, 60, 12
    counts = rng.integers(1, 41, n_rows)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    indices = np.concatenate(
        [np.sort(rng.choice(n_cols, c, replace=False)) for c in counts]).astype(np.int32)
    data = rng.integers(1, 6, indptr[-1]).astype(np.float32)
    other = _factors(rng, n_cols, k)
    b_other = rng.standard_normal(n_cols) * 0.2
    for weighted in (True, False):
        x, b = np.zeros((n_rows, k), np.float32), np.zeros(n_rows, np.float32)
        x2, b2 = x.copy(), b.copy()
        args = (indptr, indices, data, other, b_other, 3.0, 0.08, breg, weighted, True)
        sse = als_half_step(*args, x, b)
        sse_twin = als_half_step_numpy(*args, x2, b2)
        np.testing.assert_allclose(x, x2, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, b2, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sse, sse_twin, rtol=1e-6)
