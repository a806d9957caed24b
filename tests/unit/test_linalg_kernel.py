from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun.kernels.linalg import cholesky_solve


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_cholesky_solve_matches_numpy(n, seed):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, n))
    a = m @ m.T + n * np.eye(n)
    b = rng.normal(size=n)
    work = np.tril(a).copy()  # only the lower triangle is read
    x = b.copy()
    cholesky_solve(work, x, n, 0.0, 1e-12)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(np.tril(work) @ np.tril(work).T, a, rtol=1e-9, atol=1e-10)
