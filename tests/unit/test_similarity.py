"""Similarity measures: hand-computed values, the NumPy twin, Surprise, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun import ConfigError, DataError
from chuchun.similarity import MEASURES, cosine, similarity


def dense(s: sp.csr_matrix) -> np.ndarray:
    return s.toarray().astype(np.float64)


def test_cosine_example_from_the_issue() -> None:
    s = cosine(np.array([[1, 1, 1], [2, 0, 1]]), k=None)
    assert s[0, 1] == pytest.approx(0.77459667, abs=1e-7)
    assert s[1, 0] == pytest.approx(0.77459667, abs=1e-7)
    assert s[0, 0] == 0  # no self-similarity stored


# rows a, b over 4 columns; columns 0, 1 co-rated (a=[4, 2], b=[5, 1]); a also rates col 2
A = np.array([[4.0, 2.0, 3.0, 0.0], [5.0, 1.0, 0.0, 2.0]])


def test_hand_computed_measures() -> None:
    m = sp.csr_matrix(A)
    got = {name: dense(similarity(m, name, k=None))[0, 1] for name in
           ("cosine", "corated_cosine", "pearson", "jaccard", "euclidean", "msd", "dot")}
    assert got["cosine"] == pytest.approx(22 / (np.sqrt(29) * np.sqrt(30)), rel=1e-6)
    assert got["corated_cosine"] == pytest.approx(22 / (np.sqrt(20) * np.sqrt(26)), rel=1e-6)
    # Pearson over the co-rated columns: means 3 and 3, deviations (1, -1) and (2, -2) -> 1
    assert got["pearson"] == pytest.approx(1.0, rel=1e-6)
    assert got["jaccard"] == pytest.approx(2 / 4)
    assert got["euclidean"] == pytest.approx(1 / (1 + np.sqrt(1 + 1)), rel=1e-6)
    assert got["msd"] == pytest.approx(1 / (1 + 2 / 2), rel=1e-6)
    assert got["dot"] == pytest.approx(22.0)


def test_adjusted_cosine_centres_columns() -> None:
    # items x users: column means are the users' means
    m = sp.csr_matrix(np.array([[5.0, 3.0], [3.0, 1.0], [4.0, 2.0]]))
    s = dense(similarity(m, "adjusted_cosine", k=None))
    # user means 4 and 2; centred rows (1, 1), (-1, -1), (0, 0)
    assert s[0, 1] == pytest.approx(-1.0, abs=1e-6)
    assert s[0, 2] == 0.0  # zero vector: no similarity


def test_pearson_baseline_uses_residuals_and_surprise_shrinkage() -> None:
    m = sp.csr_matrix(A)
    mu, rb, cb = 3.0, np.array([0.5, -0.5]), np.array([1.0, -1.0, 0.0, 0.0])
    s = dense(similarity(m, "pearson_baseline", k=None, shrinkage=0.0, baselines=(mu, rb, cb)))
    ra = np.array([4 - 4.5, 2 - 2.5])
    rb_ = np.array([5 - 3.5, 1 - 1.5])
    expect = ra @ rb_ / np.sqrt((ra @ ra) * (rb_ @ rb_))
    assert s[0, 1] == pytest.approx(expect, rel=1e-6)
    shrunk = dense(similarity(m, "pearson_baseline", k=None, shrinkage=10.0,
                              baselines=(mu, rb, cb)))
    assert shrunk[0, 1] == pytest.approx(expect * (2 - 1) / (2 - 1 + 10), rel=1e-6)


def test_shrinkage_and_min_support() -> None:
    m = sp.csr_matrix(A)
    plain = dense(similarity(m, "corated_cosine", k=None))[0, 1]
    shrunk = dense(similarity(m, "corated_cosine", k=None, shrinkage=3.0))[0, 1]
    assert shrunk == pytest.approx(plain * 2 / (2 + 3), rel=1e-6)
    assert similarity(m, "corated_cosine", k=None, min_support=3).nnz == 0
    assert similarity(m, "corated_cosine", k=None, min_support=2).nnz == 2


def test_top_k_keeps_the_best_first_and_bounds_memory() -> None:
    m = sp.random(60, 40, density=0.2, random_state=3, format="csr")
    full = dense(similarity(m, "cosine", k=None))
    top = similarity(m, "cosine", k=5)
    assert np.diff(top.indptr).max() <= 5
    for r in range(60):
        row = top.data[top.indptr[r]:top.indptr[r + 1]]
        assert np.all(np.diff(row) <= 0), "best first"
        if len(row):
            assert row[0] == pytest.approx(full[r].max(), rel=1e-6)
    assert np.allclose(full, full.T)


@pytest.mark.parametrize("exclude", [None, 30])
def test_top_k_filled_in_chunks_equals_one_pass(monkeypatch, exclude) -> None:
    import chuchun.similarity as simmod

    # sparse enough that many rows have fewer than k neighbours (the result is shrunk in place)
    m = sp.random(70, 60, density=0.06, random_state=5, format="csr")
    kw = dict(k=6, rows=(20, 70), exclude_from=exclude) if exclude else dict(k=6)
    one = similarity(m, "cosine", **kw)
    monkeypatch.setattr(simmod, "_BUFFER_TOPK", 13)  # two rows per kernel call
    chunked = similarity(m, "cosine", **kw)
    assert np.array_equal(one.indptr, chunked.indptr)
    assert np.array_equal(one.indices, chunked.indices)
    assert np.array_equal(one.data, chunked.data)
    counts = np.diff(chunked.indptr)
    assert counts.max() == 6 and counts.min() < 6
    # no unused tail is kept behind the stored entries
    assert len(chunked.indices) == len(chunked.data) == chunked.indptr[-1] == chunked.nnz
    full = dense(similarity(m, "cosine", k=None))
    if exclude:
        full = full[20:, :exclude]
    for r in range(chunked.shape[0]):
        lo, hi = chunked.indptr[r], chunked.indptr[r + 1]
        row = full[r].copy()
        if not exclude:
            row[r] = 0.0
        expect = np.sort(row[row != 0])[::-1][:6]
        np.testing.assert_allclose(chunked.data[lo:hi], expect, rtol=1e-5)


def test_threads_give_the_same_result() -> None:
    m = sp.random(80, 50, density=0.15, random_state=1, format="csr")
    a = similarity(m, "pearson", k=7, n_threads=1)
    b = similarity(m, "pearson", k=7, n_threads=2)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)


@st.composite
def sparse_matrices(draw: st.DrawFn) -> sp.csr_matrix:
    n_rows = draw(st.integers(1, 12))
    n_cols = draw(st.integers(1, 10))
    mask = draw(st.lists(st.booleans(), min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    vals = draw(st.lists(st.integers(1, 5), min_size=n_rows * n_cols,
                         max_size=n_rows * n_cols))
    arr = np.where(np.array(mask).reshape(n_rows, n_cols),
                   np.array(vals, dtype=float).reshape(n_rows, n_cols), 0.0)
    return sp.csr_matrix(arr)


@settings(max_examples=60, deadline=None)
@given(m=sparse_matrices(), measure=st.sampled_from(MEASURES),
       k=st.sampled_from([1, 2, 4, None]), shrinkage=st.sampled_from([0.0, 2.5]),
       min_support=st.integers(0, 3))
def test_kernel_agrees_with_numpy_twin(m, measure, k, shrinkage, min_support) -> None:
    kw = {}
    if measure == "pearson_baseline":
        rng = np.random.default_rng(m.nnz)
        kw["baselines"] = (3.0, rng.normal(size=m.shape[0]), rng.normal(size=m.shape[1]))
    a = similarity(m, measure, k=k, shrinkage=shrinkage, min_support=min_support, **kw)
    b = similarity(m, measure, k=k, shrinkage=shrinkage, min_support=min_support,
                   engine="numpy", **kw)
    assert np.array_equal(a.indptr, b.indptr)
    # order may differ only among (near-)equal values; compare as dense matrices
    np.testing.assert_allclose(a.toarray(), b.toarray(), rtol=1e-5, atol=1e-6)


def test_matches_surprise_similarity_matrices() -> None:
    from surprise import Dataset, Reader
    from surprise import similarities as ssims

    import pandas as pd

    rng = np.random.default_rng(7)
    n_u, n_i = 25, 15
    mask = rng.random((n_u, n_i)) < 0.45
    r = rng.integers(1, 6, size=(n_u, n_i)).astype(float)
    rows, cols = np.nonzero(mask)
    df = pd.DataFrame({"u": rows, "i": cols, "r": r[rows, cols]})
    ts = Dataset.load_from_df(df, Reader(rating_scale=(1, 5))).build_full_trainset()
    inner_u = np.array([ts.to_inner_uid(u) for u in range(n_u)])
    m = sp.csr_matrix((df.r.to_numpy(), (rows, cols)), shape=(n_u, n_i))
    for name, fn in (("corated_cosine", ssims.cosine), ("pearson", ssims.pearson),
                     ("msd", ssims.msd)):
        ref = fn(ts.n_users, ts.ir, 1)[np.ix_(inner_u, inner_u)]
        np.fill_diagonal(ref, 0)
        np.testing.assert_allclose(dense(similarity(m, name, k=None)), ref, atol=1e-6)
    bu = rng.normal(scale=0.3, size=n_u)
    bi = rng.normal(scale=0.3, size=n_i)
    inner_i = np.array([ts.to_inner_iid(i) for i in range(n_i)])
    bu_inner = np.empty(n_u)
    bu_inner[inner_u] = bu
    bi_inner = np.empty(n_i)
    bi_inner[inner_i] = bi
    ref = ssims.pearson_baseline(ts.n_users, ts.ir, 1, ts.global_mean, bu_inner, bi_inner,
                                 100)[np.ix_(inner_u, inner_u)]
    np.fill_diagonal(ref, 0)
    got = dense(similarity(m, "pearson_baseline", k=None, shrinkage=100.0,
                           baselines=(ts.global_mean, bu, bi)))
    np.testing.assert_allclose(got, np.nan_to_num(ref), atol=1e-6)


def test_bad_inputs() -> None:
    m = sp.csr_matrix(A)
    with pytest.raises(ConfigError, match="measure must be one of"):
        similarity(m, "cosin")
    with pytest.raises(ConfigError, match="k must be"):
        similarity(m, "cosine", k=0)
    with pytest.raises(ConfigError, match="shrinkage"):
        similarity(m, "cosine", shrinkage=-1)
    with pytest.raises(ConfigError, match="min_support"):
        similarity(m, "cosine", min_support=-2)
    with pytest.raises(ConfigError, match="needs baselines"):
        similarity(m, "pearson_baseline")
    with pytest.raises(DataError, match="shapes"):
        similarity(m, "pearson_baseline", baselines=(3.0, np.zeros(3), np.zeros(4)))
    bad = sp.csr_matrix(np.array([[np.nan, 1.0]]))
    with pytest.raises(DataError, match="NaN"):
        similarity(bad, "cosine")
    with pytest.raises(DataError, match="2-d numeric"):
        similarity(np.array(["a", "b"]), "cosine")
    with pytest.raises(ConfigError, match="engine"):
        similarity(m, "cosine", engine="gpu")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), density=st.floats(0.0, 1.0))
def test_mirror_kernel_agrees_with_twin(seed: int, n: int, density: float) -> None:
    from chuchun.kernels.similarity import mirror_upper, mirror_upper_numpy

    u = sp.triu(sp.random(n, n, density=density, random_state=seed), k=1).tocsr()
    outs = []
    for fn in (mirror_upper, mirror_upper_numpy):
        ip = np.empty(n + 1, np.int64)
        ix = np.empty(2 * u.nnz, np.int32)
        dv = np.empty(2 * u.nnz, np.float64)
        fn(u.indptr.astype(np.int64), u.indices.astype(np.int32), u.data, ip, ix, dv)
        outs.append(sp.csr_matrix((dv, ix, ip), shape=(n, n)).toarray())
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], (u + u.T).toarray())
