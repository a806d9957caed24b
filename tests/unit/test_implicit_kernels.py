"""The compiled ImplicitALS and BPR kernels agree with their plain-NumPy twins."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun.kernels import bpr as B
from chuchun.kernels import implicit_als as K

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def problems(draw):
    n_rows = draw(st.integers(1, 12))
    n_cols = draw(st.integers(2, 10))
    f = draw(st.integers(1, 6))
    density = draw(st.floats(0.0, 0.6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    values = rng.integers(1, 5, (n_rows, n_cols)).astype(np.float32) * mask
    m = sp.csr_matrix(values, dtype=np.float32)
    m.sort_indices()
    indptr = m.indptr.astype(np.int64)
    indices = m.indices.astype(np.int32)
    X = (rng.standard_normal((n_rows, f)) * 0.1).astype(np.float32)
    Y = (rng.standard_normal((n_cols, f)) * 0.1).astype(np.float32)
    return indptr, indices, m.data.astype(np.float32), X, Y, seed


def _gram(Y):
    return (Y.T @ Y).astype(np.float32)


def _reg(n_rows, reg, seed):
    """Per-row regularisation: lambda times a row weight in [1, 3) (frequency scaling)."""
    return reg * (1.0 + 2.0 * np.random.default_rng(seed).random(n_rows))


@SETTINGS
@given(problems(), st.floats(0.0, 20.0), st.floats(0.01, 2.0), st.integers(1, 4),
       st.integers(1, 5))
def test_cg_matches_numpy(prob, alpha, reg, steps, n_blocks):
    indptr, indices, data, X, Y, seed = prob
    lam = _reg(X.shape[0], reg, seed).astype(np.float32)
    blocks = K.row_blocks(indptr, n_blocks, X.shape[1] / 2)
    got, want = X.copy(), X.copy()
    K.als_cg_update(indptr, indices, data, got, Y, _gram(Y), np.float32(alpha), lam, steps,
                    blocks)
    K.als_cg_update_numpy(indptr, indices, data, want, Y, _gram(Y), np.float32(alpha), lam,
                          steps, blocks)
    # float32 CG on ill-conditioned systems amplifies summation-order differences a little
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-3 * scale)


@SETTINGS
@given(problems(), st.floats(0.0, 20.0), st.floats(0.01, 2.0), st.integers(1, 5))
def test_cholesky_matches_numpy(prob, alpha, reg, n_blocks):
    indptr, indices, data, X, Y, seed = prob
    lam = _reg(X.shape[0], reg, seed)
    blocks = K.row_blocks(indptr, n_blocks, X.shape[1] / 2)
    G = _gram(Y).astype(np.float64)
    got, want = X.copy(), X.copy()
    K.als_cholesky_update(indptr, indices, data, got, Y, G, float(alpha), lam, blocks)
    K.als_cholesky_update_numpy(indptr, indices, data, want, Y, G, float(alpha), lam, blocks)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(problems(), st.floats(0.0, 20.0), st.floats(0.05, 2.0))
def test_cg_with_f_steps_reaches_the_exact_solution(prob, alpha, reg):
    indptr, indices, data, X, Y, seed = prob
    lam = _reg(X.shape[0], reg, seed)
    blocks = K.row_blocks(indptr, 2, 1.0)
    cg, exact = X.copy(), X.copy()
    K.als_cg_update(indptr, indices, data, cg, Y, _gram(Y), np.float32(alpha),
                    lam.astype(np.float32), 4 * X.shape[1], blocks)
    K.als_cholesky_update(indptr, indices, data, exact, Y, _gram(Y).astype(np.float64),
                          float(alpha), lam, blocks)
    np.testing.assert_allclose(cg, exact, rtol=1e-2, atol=1e-3)


def test_row_blocks_cover_all_rows_in_order():
    indptr = np.array([0, 5, 5, 6, 20, 21], dtype=np.int64)
    b = K.row_blocks(indptr, 3, 1.0)
    assert b[0] == 0 and b[-1] == 5 and (np.diff(b) >= 0).all()


@SETTINGS
@given(problems(), st.floats(0.001, 0.2), st.floats(0.0, 0.1), st.integers(0, 60))
def test_bpr_serial_matches_numpy(prob, lr, reg, n_samples):
    indptr, indices, _, X, Y, seed = prob
    bias = np.zeros(Y.shape[0], dtype=np.float32)
    index = B.row_index(indptr)
    a = [X.copy(), Y.copy(), bias.copy(), B.seed_states(seed, 2)]
    b = [X.copy(), Y.copy(), bias.copy(), B.seed_states(seed, 2)]
    n = n_samples if indptr[-1] else 0
    d1 = B.bpr_serial(indptr, indices, index, *a, n, np.float32(lr), np.float32(reg), 8)
    d2 = B.bpr_serial_numpy(indptr, indices, index, *b, n, lr, reg, 8)
    assert d1 == d2
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(problems(), st.floats(0.001, 0.2), st.floats(0.0, 0.1), st.integers(2, 3),
       st.integers(1, 3))
def test_bpr_round_matches_numpy(prob, lr, reg, n_threads, n_rounds):
    indptr, indices, _, X, Y, seed = prob
    bounds = K.row_blocks(indptr, n_threads, 0.0)
    T = len(bounds) - 1
    per_round = np.diff(indptr[bounds]).astype(np.int64)
    results = []
    for fn in (B.bpr_round, B.bpr_round_numpy):
        P, S = X.copy(), Y.copy()
        bS = np.zeros(Y.shape[0], dtype=np.float32)
        S_next, bS_next = np.empty_like(S), np.empty_like(bS)
        L_prev = np.broadcast_to(S, (T, *S.shape)).copy()
        bL_prev = np.zeros((T, Y.shape[0]), dtype=np.float32)
        L_next, bL_next = np.empty_like(L_prev), np.empty_like(bL_prev)
        states = B.seed_states(seed, 2 * T)
        done = 0
        for _ in range(n_rounds):
            done += fn(indptr, indices, B.row_index(indptr), P, S, bS, S_next, bS_next, L_prev, bL_prev, L_next,
                       bL_next, states, bounds, per_round, np.float32(lr), np.float32(reg), 8)
            S, S_next, bS, bS_next = S_next, S, bS_next, bS
            L_prev, L_next, bL_prev, bL_next = L_next, L_prev, bL_next, bL_prev
        Q, bias = B.merge_rounds(S, bS, L_prev, bL_prev)
        results.append((done, P, Q, bias, states))
    (d1, *a), (d2, *b) = results
    assert d1 == d2
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(problems(), st.floats(0.001, 0.2), st.floats(0.0, 0.1), st.integers(1, 5))
def test_bpr_fold_in_matches_numpy(prob, lr, reg, n_epochs):
    indptr, indices, _, X, Y, seed = prob
    bias = np.linspace(-0.1, 0.1, Y.shape[0]).astype(np.float32)
    n = X.shape[0]
    a, sa = np.zeros_like(X), B.seed_states(seed, n)
    b, sb = np.zeros_like(X), B.seed_states(seed, n)
    B.bpr_fold_in(indptr, indices, a, Y, bias, n_epochs, np.float32(lr), np.float32(reg), sa, 8)
    B.bpr_fold_in_numpy(indptr, indices, b, Y, bias, n_epochs, lr, reg, sb, 8)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(sa, sb)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 400))
def test_bpr_serial_matches_numpy_over_many_buckets(seed, n_samples):
    # rows long enough that the row index has several buckets, some rows empty
    rng = np.random.default_rng(seed)
    dense = (rng.random((40, 60)) < 0.3) & (rng.random((40, 1)) < 0.8)
    m = sp.csr_matrix(dense.astype(np.float32))
    indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int32)
    index = B.row_index(indptr)
    assert len(index) > 4
    P = (rng.standard_normal((40, 5)) * 0.1).astype(np.float32)
    Q = (rng.standard_normal((60, 5)) * 0.1).astype(np.float32)
    a = [P.copy(), Q.copy(), np.zeros(60, np.float32), B.seed_states(seed, 2)]
    b = [P.copy(), Q.copy(), np.zeros(60, np.float32), B.seed_states(seed, 2)]
    assert B.bpr_serial(indptr, indices, index, *a, n_samples, np.float32(0.05),
                        np.float32(0.01), 8) == B.bpr_serial_numpy(
        indptr, indices, index, *b, n_samples, 0.05, 0.01, 8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_row_index_brackets_the_row_of_every_interaction():
    indptr = np.array([0, 0, 130, 131, 131, 400, 700, 700], dtype=np.int64)
    index = B.row_index(indptr)
    for k in range(700):
        row = np.searchsorted(indptr, k, side="right") - 1
        b = k >> B._SHIFT
        assert index[b] <= row <= index[b + 1]


def test_seed_states_are_distinct_and_nonzero():
    s = B.seed_states(0, 64)
    assert len(set(s.tolist())) == 64 and (s != 0).all()
