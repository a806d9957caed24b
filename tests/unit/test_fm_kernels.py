"""The compiled FM and hybrid kernels agree with their plain twins (the twin of the ALS/Gibbs
sweep is a direct implementation on the expanded design matrix, without relation blocks)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun.kernels import fm as K
from chuchun.kernels import hybrid as H

SETTINGS = settings(max_examples=20, deadline=None)


def _csr(m):
    m = sp.csr_matrix(m, dtype=np.float64)
    m.sort_indices()
    m.indptr = m.indptr.astype(np.int64)
    m.indices = m.indices.astype(np.int32)
    return m


def _csc(m):
    c = sp.csr_matrix(m, dtype=np.float64).tocsc()
    c.sort_indices()
    c.indptr = c.indptr.astype(np.int64)
    c.indices = c.indices.astype(np.int32)
    return c


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    nu, ni = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    pu, pi, pc = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(0, 3))
    n = draw(st.integers(1, 14))
    k = draw(st.integers(1, 3))
    dens = draw(st.floats(0.2, 1.0))

    def block(r, c):
        m = rng.normal(size=(r, c)) * (rng.random((r, c)) < dens)
        return _csr(m)

    U, I, C = block(nu, pu), block(ni, pi), block(n, pc)
    uidx = rng.integers(0, nu, n).astype(np.int32)
    iidx = rng.integers(0, ni, n).astype(np.int32)
    y = rng.normal(3.0, 1.0, n)
    p = pu + pi + pc
    w0 = np.array([rng.normal()])
    w = rng.normal(0, 0.3, p)
    V = rng.normal(0, 0.3, (p, k))
    return dict(U=U, I=I, C=C, uidx=uidx, iidx=iidx, y=y, w0=w0, w=w, V=V, rng=rng)


def _terms(pr, w, V):
    out = {}
    pu, pi = pr["U"].shape[1], pr["I"].shape[1]
    for name, m, off in (("u", pr["U"], 0), ("i", pr["I"], pu), ("c", pr["C"], pu + pi)):
        n, k = m.shape[0], V.shape[1]
        lin, q, qq = np.empty(n), np.empty((n, k)), np.empty((n, k))
        K.block_terms(m.indptr, m.indices, m.data, off, w, V, lin, q, qq)
        out[name] = (lin, q, qq)
    return out


def _dense_x(pr):
    return np.hstack([pr["U"].toarray()[pr["uidx"]], pr["I"].toarray()[pr["iidx"]],
                      pr["C"].toarray()])


@SETTINGS
@given(problems())
def test_block_terms_and_predict_match_numpy(pr):
    t = _terms(pr, pr["w"], pr["V"])
    pu, pi = pr["U"].shape[1], pr["I"].shape[1]
    for name, m, off in (("u", pr["U"], 0), ("i", pr["I"], pu), ("c", pr["C"], pu + pi)):
        n, k = m.shape[0], pr["V"].shape[1]
        lin, q, qq = np.empty(n), np.empty((n, k)), np.empty((n, k))
        K.block_terms_numpy(m.indptr, m.indices, m.data, off, pr["w"], pr["V"], lin, q, qq)
        np.testing.assert_allclose(t[name][0], lin, atol=1e-10)
        np.testing.assert_allclose(t[name][1], q, atol=1e-10)
        np.testing.assert_allclose(t[name][2], qq, atol=1e-10)
    args = (pr["uidx"], pr["iidx"], float(pr["w0"][0]), *t["u"], *t["i"], *t["c"])
    got, want = np.empty(len(pr["y"])), np.empty(len(pr["y"]))
    K.predict_rows(*args, got)
    K.predict_rows_numpy(*args, want)
    np.testing.assert_allclose(got, want, atol=1e-10)
    # and both equal the FM equation on the expanded design matrix
    X = _dense_x(pr)
    s = X @ pr["V"]
    direct = pr["w0"][0] + X @ pr["w"] + 0.5 * (s * s - (X * X) @ (pr["V"] ** 2)).sum(axis=1)
    np.testing.assert_allclose(got, direct, atol=1e-10)


def _sweep(pr, w0, w, V, lam_w, mu_w, lam_v, mu_v, alpha, z, mcmc):
    t = _terms(pr, w, V)
    e = pr["y"].copy()
    pred = np.empty(len(e))
    K.predict_rows(pr["uidx"], pr["iidx"], float(w0[0]), *t["u"], *t["i"], *t["c"], pred)
    e -= pred
    Uc, Ic, Cc = _csc(pr["U"]), _csc(pr["I"]), _csc(pr["C"])
    cnt_u = np.bincount(pr["uidx"], minlength=pr["U"].shape[0]).astype(float)
    cnt_i = np.bincount(pr["iidx"], minlength=pr["I"].shape[0]).astype(float)
    T = {n: (t[n][0], np.ascontiguousarray(t[n][1].T), np.ascontiguousarray(t[n][2].T))
         for n in t}
    p = V.shape[0]
    K.cd_sweep(pr["uidx"], pr["iidx"], e, w0, w, V, np.arange(p, dtype=np.int32), lam_w, mu_w,
               lam_v, mu_v, 0.0, alpha, z, mcmc, cnt_u, Uc.indptr, Uc.indices, Uc.data,
               cnt_i, Ic.indptr, Ic.indices, Ic.data, Cc.indptr, Cc.indices, Cc.data,
               pr["U"].shape[1], pr["I"].shape[1], *T["u"], *T["i"], *T["c"])
    return e


@SETTINGS
@given(problems(), st.booleans())
def test_cd_sweep_matches_direct_coordinate_updates(pr, mcmc):
    rng = pr["rng"]
    p, k = pr["V"].shape
    lam_w, mu_w = rng.uniform(0.5, 2, p), rng.normal(0, 0.1, p)
    lam_v, mu_v = rng.uniform(0.5, 2, (p, k)), rng.normal(0, 0.1, (p, k))
    alpha = float(rng.uniform(0.5, 2))
    z = rng.standard_normal(1 + p + p * k)
    w0a, wa, Va = pr["w0"].copy(), pr["w"].copy(), pr["V"].copy()
    w0b, wb, Vb = pr["w0"].copy(), pr["w"].copy(), pr["V"].copy()
    e = _sweep(pr, w0a, wa, Va, lam_w, mu_w, lam_v, mu_v, alpha, z, mcmc)
    e_direct = K.cd_sweep_numpy(_dense_x(pr), pr["y"], w0b, wb, Vb, np.arange(p), lam_w, mu_w,
                                lam_v, mu_v, 0.0, alpha, z, mcmc, np.arange(p))
    np.testing.assert_allclose(w0a, w0b, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(wa, wb, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(Va, Vb, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(e, e_direct, rtol=1e-7, atol=1e-7)


def _sgd_args(pr, order):
    U, I, C = pr["U"], pr["I"], pr["C"]
    longest = max(1, np.diff(U.indptr).max() + np.diff(I.indptr).max()
                  + (np.diff(C.indptr).max() if C.shape[0] else 0))
    return (U.indptr, U.indices, U.data, I.indptr, I.indices, I.data, C.indptr, C.indices,
            C.data, U.shape[1], I.shape[1], np.empty(longest, np.int64), np.empty(longest),
            np.empty(pr["V"].shape[1]))


@SETTINGS
@given(problems(), st.sampled_from([0, 1]), st.floats(0.001, 0.1))
def test_sgd_epoch_matches_numpy(pr, task, lr):
    p, k = pr["V"].shape
    y = pr["y"] if task == 0 else np.where(pr["y"] > 3.0, 1.0, -1.0)
    order = pr["rng"].permutation(len(y)).astype(np.int64)
    group = np.zeros(p, dtype=np.int32)
    reg = np.array([0.02])
    a = [pr["w0"].copy(), pr["w"].copy(), pr["V"].copy()]
    b = [pr["w0"].copy(), pr["w"].copy(), pr["V"].copy()]
    la = K.sgd_epoch(order, pr["uidx"], pr["iidx"], y, task, *a, group, reg, reg, lr,
                     *_sgd_args(pr, order))
    lb = K.sgd_epoch_numpy(order, pr["uidx"], pr["iidx"], y, task, *b, group, reg, reg, lr,
                           *_sgd_args(pr, order))
    # a large step can overflow the loss of both twins alike (inf, then NaN parameters)
    np.testing.assert_allclose(la, lb, rtol=1e-8, atol=1e-8)
    for x, w in zip(a, b, strict=True):
        np.testing.assert_allclose(x, w, rtol=1e-8, atol=1e-10)


@SETTINGS
@given(problems(), st.floats(0.001, 0.1))
def test_bpr_epoch_matches_numpy(pr, lr):
    p, k = pr["V"].shape
    ni = pr["I"].shape[0]
    rng = pr["rng"]
    order = rng.permutation(len(pr["y"])).astype(np.int64)
    neg = rng.integers(0, ni, len(order)).astype(np.int32)
    seen = _csr(sp.csr_matrix((np.ones(len(order)), (pr["uidx"], pr["iidx"])),
                              shape=(pr["U"].shape[0], ni)))
    group = np.zeros(p, dtype=np.int32)
    reg = np.array([0.01])
    common = (pr["U"].indptr, pr["U"].indices, pr["U"].data, pr["I"].indptr, pr["I"].indices,
              pr["I"].data, pr["C"].indptr, pr["C"].indices, pr["C"].data, pr["U"].shape[1],
              pr["I"].shape[1], seen.indptr, seen.indices)
    scratch = tuple(np.empty(k) for _ in range(5))
    a = [pr["w"].copy(), pr["V"].copy()]
    b = [pr["w"].copy(), pr["V"].copy()]
    la, ua = K.bpr_epoch(order, pr["uidx"], pr["iidx"], neg, *a, group, reg, reg, lr, *common,
                         *scratch)
    lb, ub = K.bpr_epoch_numpy(order, pr["uidx"], pr["iidx"], neg, *b, group, reg, reg, lr,
                               *common, *scratch)
    assert ua == ub
    assert abs(la - lb) < 1e-8 * max(1.0, abs(lb))
    for x, w in zip(a, b, strict=True):
        np.testing.assert_allclose(x, w, rtol=1e-8, atol=1e-10)


@SETTINGS
@given(problems(), st.sampled_from([0, 1]), st.integers(1, 4), st.sampled_from([0.0, 0.5, 1.0]))
def test_hybrid_epoch_matches_numpy(pr, loss, n_draws, dropout):
    rng = pr["rng"]
    U, I = pr["U"], pr["I"]
    ni, k = I.shape[0], pr["V"].shape[1]
    order = rng.permutation(len(pr["y"])).astype(np.int64)
    negs = rng.integers(0, ni, (len(order), n_draws)).astype(np.int32)
    drop = (rng.random(len(order)) < dropout).astype(np.uint8)
    seen = _csr(sp.csr_matrix((np.ones(len(order)), (pr["uidx"], pr["iidx"])),
                              shape=(U.shape[0], ni)))
    # the id-free rows: the item block without its first column, as the model builds them
    A = _csr(sp.hstack([sp.csr_matrix((ni, 1)), I[:, 1:]]).tocsr())

    def state():
        r = np.random.default_rng(1)
        return [r.normal(0, 0.3, (U.shape[1], k)), np.zeros(U.shape[1]),
                r.normal(0, 0.3, (I.shape[1], k)), r.normal(0, 0.1, I.shape[1]),
                np.ones((U.shape[1], k)), np.ones(U.shape[1]), np.ones((I.shape[1], k)),
                np.ones(I.shape[1])]

    a, b = state(), state()
    args = (U.indptr, U.indices, U.data, I.indptr, I.indices, I.data)
    tail = (seen.indptr, seen.indices, drop, A.indptr, A.indices, A.data)
    ra = H.hybrid_epoch(order, pr["uidx"], pr["iidx"], negs, loss, ni, *args, *a, 0.05, 1e-3,
                        *tail)
    rb = H.hybrid_epoch_numpy(order, pr["uidx"], pr["iidx"], negs, loss, ni, *args, *b, 0.05,
                              1e-3, *tail)
    assert ra[1] == rb[1]
    assert abs(ra[0] - rb[0]) < 1e-8 * max(1.0, abs(rb[0]))
    for x, w in zip(a, b, strict=True):
        np.testing.assert_allclose(x, w, rtol=1e-8, atol=1e-10)
