"""Revisited iALS: per-row regularisation, the iALS++ block solver, ImplicitALS params."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun.kernels import implicit_als as als
from chuchun.models import ImplicitALS
from chuchun.testing import block_interactions


def _problem(seed: int, n_rows: int = 9, n_cols: int = 14, f: int = 5):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_rows, n_cols)) < 0.35) * rng.integers(1, 4, (n_rows, n_cols))
    csr = sp.csr_matrix(dense.astype(np.float32))
    csr.indptr = csr.indptr.astype(np.int64)
    csr.indices = csr.indices.astype(np.int32)
    Y = rng.standard_normal((n_cols, f)).astype(np.float32) * 0.3
    X = rng.standard_normal((n_rows, f)).astype(np.float32) * 0.3
    G = Y.T.astype(np.float64) @ Y.astype(np.float64)
    reg = rng.uniform(0.01, 2.0, n_rows)
    bounds = np.array([0, n_rows // 2, n_rows], dtype=np.int64)
    return csr, X, Y, G, reg, bounds


def _loss(csr, X, Y, G, alpha, reg):
    """The half-step objective of every row (module docstring of chuchun.kernels.implicit_als)."""
    out = np.zeros(X.shape[0])
    for u in range(X.shape[0]):
        x = X[u].astype(np.float64)
        sl = slice(csr.indptr[u], csr.indptr[u + 1])
        v = csr.data[sl].astype(np.float64)
        yx = Y[csr.indices[sl]].astype(np.float64) @ x
        c = 1.0 + alpha * v
        out[u] = x @ G @ x + ((c - 1) * yx**2 - 2 * c * yx).sum() + reg[u] * x @ x
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), alpha=st.floats(0.0, 5.0), steps=st.integers(1, 4),
       block=st.integers(1, 6))
def test_kernels_match_numpy_twins(seed, alpha, steps, block):
    csr, X, Y, G, reg, bounds = _problem(seed)
    base = (csr.indptr, csr.indices, csr.data)
    for fast, slow, extra in (
        (als.als_cholesky_update, als.als_cholesky_update_numpy, ()),
        (als.als_block_update, als.als_block_update_numpy, (block,)),
    ):
        a, b = X.copy(), X.copy()
        fast(*base, a, Y, G, alpha, reg, *extra, bounds)
        slow(*base, b, Y, G, alpha, reg, *extra, bounds)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=fast.__name__)
    # the conjugate-gradient solver runs in float32, the factors' type
    a, b = X.copy(), X.copy()
    G32, reg32 = G.astype(np.float32), reg.astype(np.float32)
    als.als_cg_update(*base, a, Y, G32, np.float32(alpha), reg32, steps, bounds)
    als.als_cg_update_numpy(*base, b, Y, G32, np.float32(alpha), reg32, steps, bounds)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solvers_minimise_the_objective(seed):
    csr, X, Y, G, reg, bounds = _problem(seed)
    exact = X.copy()
    als.als_cholesky_update(csr.indptr, csr.indices, csr.data, exact, Y, G, 2.0, reg, bounds)
    # the exact solve zeroes the gradient
    for u in range(X.shape[0]):
        sl = slice(csr.indptr[u], csr.indptr[u + 1])
        Yu = Y[csr.indices[sl]].astype(np.float64)
        w = 2.0 * csr.data[sl]
        x = exact[u].astype(np.float64)
        grad = G @ x + (w * (Yu @ x)) @ Yu + reg[u] * x - (1 + w) @ Yu
        assert np.abs(grad).max() < 1e-4
    # a block sweep never increases the loss, and a block as wide as f is the exact solve
    blocked = X.copy()
    als.als_block_update(csr.indptr, csr.indices, csr.data, blocked, Y, G, 2.0, reg, 2, bounds)
    assert (_loss(csr, blocked, Y, G, 2.0, reg) <= _loss(csr, X, Y, G, 2.0, reg) + 1e-9).all()
    full = X.copy()
    als.als_block_update(csr.indptr, csr.indices, csr.data, full, Y, G, 2.0, reg, 5, bounds)
    np.testing.assert_allclose(full, exact, rtol=1e-4, atol=1e-5)


def test_cg_converges_to_the_exact_solve_with_per_row_regularisation():
    csr, X, Y, G, reg, bounds = _problem(5)
    exact, cg = X.copy(), X.copy()
    als.als_cholesky_update(csr.indptr, csr.indices, csr.data, exact, Y, G, 1.5, reg, bounds)
    als.als_cg_update(csr.indptr, csr.indices, csr.data, cg, Y, G.astype(np.float32),
                      np.float32(1.5), reg.astype(np.float32), 20, bounds)
    np.testing.assert_allclose(cg, exact, rtol=1e-3, atol=1e-4)
    # and the per-row lambda matters: the solve with one shared lambda differs
    shared = X.copy()
    als.als_cholesky_update(csr.indptr, csr.indices, csr.data, shared, Y, G, 1.5,
                            np.full_like(reg, reg.mean()), bounds)
    assert not np.allclose(shared, exact, atol=1e-3)


@pytest.fixture(scope="module")
def data():
    return block_interactions(n_users=50, n_items=24, random_state=1)


def test_defaults_keep_the_original_fit(data):
    a = ImplicitALS(n_factors=6, n_epochs=3, solver="cholesky").fit(data)
    b = ImplicitALS(n_factors=6, n_epochs=3, solver="cholesky", unobserved_weight=1.0,
                    regularization_exponent=0.0).fit(data)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_revisited_fit_is_the_weighted_objective(data):
    # scaling all weights and lambda by the same factor leaves the minimiser unchanged:
    # alpha_0 = 2, alpha = 2, lambda = 0.2 is the alpha_0 = 1, alpha = 1, lambda = 0.1 fit
    kw = {"n_factors": 6, "n_epochs": 4, "solver": "cholesky"}
    ref = ImplicitALS(regularization=0.1, alpha=1.0, **kw).fit(data)
    scaled = ImplicitALS(regularization=0.2, alpha=2.0, unobserved_weight=2.0, **kw).fit(data)
    np.testing.assert_allclose(scaled.user_factors_, ref.user_factors_, rtol=1e-3, atol=1e-4)
    # with nu > 0 heavy users are regularised harder: a different model
    nu = ImplicitALS(regularization=0.1, regularization_exponent=1.0, **kw).fit(data)
    assert not np.allclose(nu.user_factors_, ref.user_factors_, atol=1e-3)


@pytest.mark.parametrize("solver", ["block", "cholesky", "cg"])
def test_revisited_fold_in_and_reproducibility(data, solver):
    kw = {"n_factors": 8, "n_epochs": 6, "solver": solver, "regularization": 0.05,
          "regularization_exponent": 0.5, "unobserved_weight": 0.5, "block_size": 3}
    m = ImplicitALS(**kw).fit(data)
    again = ImplicitALS(**kw).fit(data)
    np.testing.assert_array_equal(m.user_factors_, again.user_factors_)
    one = ImplicitALS(n_threads=1, **kw).fit(data)
    np.testing.assert_allclose(one.user_factors_, m.user_factors_, rtol=1e-5, atol=1e-6)
    history = data.subset(data.user_idx < 5)  # the interaction values matter: pass them
    folded = m.recommend_for_history(history, k=4)
    direct = m.recommend(folded.user_ids, k=4)
    if solver == "cholesky":  # the last half-step solved users exactly: fold-in reproduces them
        np.testing.assert_array_equal(folded.item_idx, direct.item_idx)
        np.testing.assert_allclose(folded.scores, direct.scores, rtol=1e-4, atol=1e-5)
    else:
        assert (folded.item_idx == direct.item_idx).mean() > 0.5
