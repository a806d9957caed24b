"""The compiled SGNS kernel agrees with its NumPy twin; its helpers follow word2vec."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun.kernels import sgns as K

SETTINGS = settings(max_examples=20, deadline=None)


@st.composite
def corpora(draw):
    n_items = draw(st.integers(2, 10))
    n_seqs = draw(st.integers(1, 12))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 9, n_seqs)
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    items = rng.integers(0, n_items, indptr[-1]).astype(np.int32)
    counts = np.bincount(items, minlength=n_items) + 1
    keep = K.keep_probabilities(counts, draw(st.sampled_from([0.0, 0.05, 0.5])))
    cdf = K.noise_cdf(counts)
    W = (rng.standard_normal((n_items, d)) * 0.3).astype(np.float32)
    C = (rng.standard_normal((n_items, d)) * 0.3).astype(np.float32)
    return indptr, items, keep, cdf, W, C, seed


@SETTINGS
@given(corpora(), st.integers(1, 4), st.booleans(), st.integers(1, 4))
def test_serial_kernel_matches_twin(corpus, window, basket, negative):
    indptr, items, keep, cdf, W, C, seed = corpus
    seq_ids = np.arange(len(indptr) - 1, dtype=np.int64)
    W1, C1, W2, C2 = W.copy(), C.copy(), W.copy(), C.copy()
    s1 = K.seed_states(seed, 1)
    s2 = s1.copy()
    K.sgns_serial(indptr, items, seq_ids, keep, cdf, W1, C1, window, basket, negative, 0.05, s1)
    K.sgns_serial_numpy(indptr, items, seq_ids, keep, cdf, W2, C2, window, basket, negative,
                        0.05, s2)
    assert s1[0] == s2[0]
    np.testing.assert_allclose(W1, W2, atol=1e-5)
    np.testing.assert_allclose(C1, C2, atol=1e-5)


@SETTINGS
@given(corpora(), st.integers(1, 3), st.booleans())
def test_parallel_round_matches_twin(corpus, n_threads, basket):
    indptr, items, keep, cdf, W, C, seed = corpus
    n = len(indptr) - 1
    seq_ids = np.arange(n, dtype=np.int64)[::-1].copy()
    bounds = np.linspace(0, n, n_threads + 1).astype(np.int64)
    W1, C1, W2, C2 = W.copy(), C.copy(), W.copy(), C.copy()
    s1 = K.seed_states(seed, n_threads)
    s2 = s1.copy()
    W_loc = np.empty((n_threads, *W.shape), np.float32)
    C_loc = np.empty((n_threads, *C.shape), np.float32)
    K.sgns_round(indptr, items, seq_ids, bounds, keep, cdf, W1, C1, W_loc, C_loc, 2, basket, 3,
                 0.05, s1)
    K.sgns_round_numpy(indptr, items, seq_ids, bounds, keep, cdf, W2, C2, 2, basket, 3, 0.05,
                       s2)
    assert np.array_equal(s1, s2)
    np.testing.assert_allclose(W1, W2, atol=1e-5)
    np.testing.assert_allclose(C1, C2, atol=1e-5)


def test_subsampling_and_noise_follow_word2vec():
    counts = np.array([1000, 10, 0, 1])
    keep = K.keep_probabilities(counts, 1e-3)
    t = 1e-3 * counts.sum()
    for w in (0, 1):
        assert np.isclose(keep[w], (np.sqrt(counts[w] / t) + 1) * t / counts[w], rtol=1e-6)
    assert keep[0] < keep[1] < 1.0
    assert keep[2] == keep[3] == 1.0  # rare (and absent) items are always kept
    assert (K.keep_probabilities(counts, 0.0) == 1).all()
    cdf = K.noise_cdf(counts)
    p = np.diff(np.r_[0.0, cdf])
    expected = np.array([1000, 10, 0, 1]) ** 0.75
    np.testing.assert_allclose(p, expected / expected.sum())
