"""Second-order factorization machines over relation blocks (Rendle 2010, 2012, 2013).

The model of one interaction :math:`n` with feature vector :math:`x` is

.. math:: \\hat y(x) = w_0 + \\sum_f w_f x_f + \\tfrac12 \\sum_k \\Big[\\big(\\sum_f v_{fk} x_f\\big)^2
          - \\sum_f v_{fk}^2 x_f^2\\Big].

Layout (Rendle 2013, relation blocks). The features of row :math:`n` are the concatenation of
the row of its user in the user block ``U`` (global feature indices ``0..pu``), the row of its
item in the item block ``I`` (``pu..pu+pi``) and its own context row ``C`` (``pu+pi..p``). The
user and item rows are stored once; per user the kernels cache ``a_u = U_u V`` (``qu``) and
``sum_f x_f^2 v_f^2`` (``qqu``), likewise per item, and per row the context's ``qc``.

Coordinate updates (libFM's ALS and MCMC). Every parameter :math:`\\theta` enters
:math:`\\hat y` linearly, :math:`\\hat y = g + \\theta h`; with residuals :math:`e = y - \\hat y`,

.. math:: \\text{ALS:}\\; \\theta \\leftarrow \\frac{\\sum_n h_n e_n + \\theta \\sum_n h_n^2}
          {\\sum_n h_n^2 + \\lambda}, \\qquad
          \\text{MCMC:}\\; \\theta \\sim \\mathcal N\\Big(\\sigma^2\\big(\\alpha(\\sum h e +
          \\theta\\sum h^2) + \\lambda\\mu\\big),\\, \\sigma^2\\Big),\\;
          \\sigma^2 = \\frac{1}{\\alpha\\sum h^2 + \\lambda}

(Rendle 2012, eqs. 9-12). For a user-block factor :math:`v_{fk}`,
:math:`h_n = x_{uf}(a'_u + b_n)` with :math:`a'_u = a_{uk} - x_{uf} v_{fk}` and
:math:`b_n = q_{i(n)k} + q^c_{nk}`, so both sums reduce to per-user aggregates of the user's
rows (count, :math:`\\sum e`, :math:`\\sum b`, :math:`\\sum b^2`, :math:`\\sum b e`), computed
once per factor; the cost of a sweep is :math:`O(N k + \\text{nnz}(U) k + \\text{nnz}(I) k)`
instead of :math:`O(\\text{nnz}(X) k)` for the expanded matrix.

The Gaussian draws of a sweep come in as ``z`` (standard normals: ``z[0]`` for :math:`w_0`,
``z[1 + f]`` for :math:`w_f`, ``z[1 + p + k p + f]`` for :math:`v_{fk}`), drawn by the caller
from its generator, so a fit is reproducible and the NumPy twin sees the same numbers. ALS is
the same sweep with ``mcmc=False`` (no noise, :math:`\\alpha = 1`, :math:`\\mu = 0`).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "block_terms",
    "block_terms_numpy",
    "cd_sweep",
    "cd_sweep_numpy",
    "predict_rows",
    "predict_rows_numpy",
    "sgd_epoch",
    "sgd_epoch_numpy",
    "bpr_epoch",
    "bpr_epoch_numpy",
]


# -- prediction ---------------------------------------------------------------------------------
@numba.njit(cache=True)
def block_terms(indptr, indices, data, offset, w, V, lin, q, qq):  # pragma: no cover - compiled
    """Per row of one block: ``lin = x.w``, ``q = x V`` and ``qq = (x^2)(V^2)`` (outputs)."""
    K = V.shape[1]
    for r in range(len(indptr) - 1):
        lin[r] = 0.0
        for k in range(K):
            q[r, k] = 0.0
            qq[r, k] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            f = indices[p] + offset
            x = data[p]
            lin[r] += x * w[f]
            for k in range(K):
                v = V[f, k]
                q[r, k] += x * v
                qq[r, k] += x * x * v * v


def block_terms_numpy(indptr, indices, data, offset, w, V, lin, q, qq):
    """NumPy twin of :func:`block_terms`."""
    import scipy.sparse as sp

    n = len(indptr) - 1
    m = sp.csr_matrix((data, indices + offset, indptr), shape=(n, V.shape[0]))
    lin[:] = m @ w
    q[:] = m @ V
    qq[:] = m.multiply(m) @ (V * V)


@numba.njit(cache=True)
def predict_rows(uidx, iidx, w0, lin_u, q_u, qq_u, lin_i, q_i, qq_i, lin_c, q_c, qq_c,
                 out):  # pragma: no cover - compiled
    """:math:`\\hat y` of each row from the cached block terms (context terms per row)."""
    K = q_u.shape[1]
    for n in range(len(uidx)):
        u = uidx[n]
        i = iidx[n]
        s = w0 + lin_u[u] + lin_i[i] + lin_c[n]
        for k in range(K):
            t = q_u[u, k] + q_i[i, k] + q_c[n, k]
            s += 0.5 * (t * t - qq_u[u, k] - qq_i[i, k] - qq_c[n, k])
        out[n] = s


def predict_rows_numpy(uidx, iidx, w0, lin_u, q_u, qq_u, lin_i, q_i, qq_i, lin_c, q_c, qq_c,
                       out):
    """NumPy twin of :func:`predict_rows`."""
    t = q_u[uidx] + q_i[iidx] + q_c
    out[:] = (w0 + lin_u[uidx] + lin_i[iidx] + lin_c
              + 0.5 * (t * t - qq_u[uidx] - qq_i[iidx] - qq_c).sum(axis=1))


# -- coordinate descent / Gibbs sampling --------------------------------------------------------
@numba.njit(cache=True)
def _draw(sum_hh, sum_he, theta, lam, mu, alpha, z, mcmc):  # pragma: no cover - compiled
    if mcmc:
        var = 1.0 / (alpha * sum_hh + lam)
        mean = var * (alpha * (sum_he + theta * sum_hh) + lam * mu)
        return mean + np.sqrt(var) * z
    den = sum_hh + lam
    if den <= 0.0:
        return theta
    return (sum_he + theta * sum_hh) / den


@numba.njit(cache=True)
def _relation_linear(rows_of, cnt, e, col_indptr, col_rows, col_data, offset, w, group,
                     lam_w, mu_w, alpha, z, zoff, mcmc, lin, agg_e, dlin):  # pragma: no cover
    n_ent = len(cnt)
    for r in range(n_ent):
        agg_e[r] = 0.0
        dlin[r] = 0.0
    for n in range(len(rows_of)):
        agg_e[rows_of[n]] += e[n]
    for f in range(len(col_indptr) - 1):
        g = offset + f
        shh = 0.0
        she = 0.0
        for p in range(col_indptr[f], col_indptr[f + 1]):
            r = col_rows[p]
            x = col_data[p]
            shh += x * x * cnt[r]
            she += x * agg_e[r]
        old = w[g]
        new = _draw(shh, she, old, lam_w[group[g]], mu_w[group[g]], alpha, z[zoff + g], mcmc)
        d = new - old
        w[g] = new
        if d != 0.0:
            for p in range(col_indptr[f], col_indptr[f + 1]):
                r = col_rows[p]
                x = col_data[p]
                agg_e[r] -= d * x * cnt[r]
                dlin[r] += d * x
                lin[r] += d * x
    for n in range(len(rows_of)):
        e[n] -= dlin[rows_of[n]]


@numba.njit(cache=True)
def _relation_features(k, cnt, col_indptr, col_rows, col_data, offset, V, group, lam_v, mu_v,
                       alpha, z, zoff, mcmc, q, qq, agg_e, agg_b1, agg_b2, agg_be, a_old,
                       qq_old):  # pragma: no cover - compiled
    """Update factor ``k`` of every feature of one block from the per-entity aggregates.

    ``agg_*`` hold, per user (item), :math:`\\sum e`, :math:`\\sum b`, :math:`\\sum b^2` and
    :math:`\\sum b e` over its rows (:func:`_rows_pass`) and are kept current as the
    coordinates change; ``a_old``/``qq_old`` receive the caches before the update, which the
    next pass over the rows needs to bring the residuals up to date.
    """
    p_all = V.shape[0]
    for r in range(len(cnt)):
        a_old[r] = q[k, r]
        qq_old[r] = qq[k, r]
    for f in range(len(col_indptr) - 1):
        lo = col_indptr[f]
        hi = col_indptr[f + 1]
        g = offset + f
        old = V[g, k]
        shh = 0.0
        she = 0.0
        for p in range(lo, hi):
            r = col_rows[p]
            x = col_data[p]
            a = q[k, r] - x * old
            shh += x * x * (cnt[r] * a * a + 2.0 * a * agg_b1[r] + agg_b2[r])
            she += x * (a * agg_e[r] + agg_be[r])
        new = _draw(shh, she, old, lam_v[group[g], k], mu_v[group[g], k], alpha,
                    z[zoff + k * p_all + g], mcmc)
        d = new - old
        V[g, k] = new
        if d != 0.0:
            dsq = new * new - old * old
            for p in range(lo, hi):
                r = col_rows[p]
                x = col_data[p]
                a = q[k, r] - x * old
                b1 = agg_b1[r]
                agg_e[r] -= d * x * (cnt[r] * a + b1)
                agg_be[r] -= d * x * (a * b1 + agg_b2[r])
                q[k, r] += d * x
                qq[k, r] += x * x * dsq


@numba.njit(cache=True)
def _rows_pass(e, q_c, has_ctx,
               done, kd, rows_d, other_d, q_d, qq_d, q_d_other, a_old, qq_old,
               todo, kt, rows_t, other_t, q_t_other, agg_e, agg_b1, agg_b2,
               agg_be):  # pragma: no cover - compiled
    """One pass over the rows doing two jobs at once (Rendle 2013's per-row work).

    ``done``: bring the residuals up to date after factor ``kd`` of one block (``rows_d`` its
    entity per row, ``q_d``/``qq_d`` its caches, ``a_old``/``qq_old`` their values before the
    update, ``q_d_other`` the other block's caches). ``todo``: gather the aggregates that the
    next block update (factor ``kt``, entity per row ``rows_t``) needs, from the residuals just
    updated. Fusing them halves the passes over the rows.
    """
    if todo:
        for r in range(len(agg_e)):
            agg_e[r] = 0.0
            agg_b1[r] = 0.0
            agg_b2[r] = 0.0
            agg_be[r] = 0.0
    for n in range(len(e)):
        en = e[n]
        if done:
            r = rows_d[n]
            b = q_d_other[kd, other_d[n]]
            if has_ctx:
                b += q_c[kd, n]
            an = q_d[kd, r]
            ao = a_old[r]
            en -= (an - ao) * b + 0.5 * (an * an - ao * ao) - 0.5 * (qq_d[kd, r] - qq_old[r])
            e[n] = en
        if todo:
            r = rows_t[n]
            b = q_t_other[kt, other_t[n]]
            if has_ctx:
                b += q_c[kt, n]
            agg_e[r] += en
            agg_b1[r] += b
            agg_b2[r] += b * b
            agg_be[r] += b * en


@numba.njit(cache=True)
def cd_sweep(uidx, iidx, e, w0, w, V, group, lam_w, mu_w, lam_v, mu_v, lam0, alpha, z, mcmc,
             cnt_u, ucol_indptr, ucol_rows, ucol_data,
             cnt_i, icol_indptr, icol_rows, icol_data,
             ccol_indptr, ccol_rows, ccol_data, pu, pi,
             lin_u, q_u, qq_u, lin_i, q_i, qq_i, lin_c, q_c, qq_c):  # pragma: no cover
    """One ALS (``mcmc=False``) or Gibbs (``mcmc=True``) sweep over every parameter, in place.

    ``e`` holds the residuals :math:`y - \\hat y` and is kept current, as are the cached block
    terms; the factor caches ``q_*``/``qq_*`` are factor-major here, shape ``(k, rows)``, so a
    pass over one factor reads contiguous memory. ``*col_*`` are the blocks in column-major form (per feature: the users/items/rows
    holding it and its values). Order: :math:`w_0`; linear terms of the user, item and context
    blocks; then for each factor :math:`k` the user, item and context blocks.
    """
    N = len(e)
    K = V.shape[1]
    p = V.shape[0]
    nu = len(cnt_u)
    ni = len(cnt_i)
    # w0
    se = 0.0
    for n in range(N):
        se += e[n]
    old = w0[0]
    new = _draw(float(N), se, old, lam0, 0.0, alpha, z[0], mcmc)
    w0[0] = new
    d = new - old
    for n in range(N):
        e[n] -= d
    agg_e = np.empty(max(nu, ni))
    dlin = np.empty(max(nu, ni))
    # linear terms
    _relation_linear(uidx, cnt_u, e, ucol_indptr, ucol_rows, ucol_data, 0, w, group, lam_w,
                     mu_w, alpha, z, 1, mcmc, lin_u, agg_e, dlin)
    _relation_linear(iidx, cnt_i, e, icol_indptr, icol_rows, icol_data, pu, w, group, lam_w,
                     mu_w, alpha, z, 1, mcmc, lin_i, agg_e, dlin)
    for f in range(len(ccol_indptr) - 1):
        g = pu + pi + f
        shh = 0.0
        she = 0.0
        for t in range(ccol_indptr[f], ccol_indptr[f + 1]):
            x = ccol_data[t]
            shh += x * x
            she += x * e[ccol_rows[t]]
        old = w[g]
        new = _draw(shh, she, old, lam_w[group[g]], mu_w[group[g]], alpha, z[1 + g], mcmc)
        w[g] = new
        d = new - old
        if d != 0.0:
            for t in range(ccol_indptr[f], ccol_indptr[f + 1]):
                n = ccol_rows[t]
                x = ccol_data[t]
                e[n] -= d * x
                lin_c[n] += d * x
    pc = len(ccol_indptr) - 1
    has_ctx = pc > 0
    m = max(nu, ni)
    agg_b1 = np.empty(m)
    agg_b2 = np.empty(m)
    agg_be = np.empty(m)
    ua_old = np.empty(nu)
    uqq_old = np.empty(nu)
    ia_old = np.empty(ni)
    iqq_old = np.empty(ni)
    zoff = 1 + p
    # Per factor: aggregates per user -> user block -> (residuals, aggregates per item) ->
    # item block -> residuals [-> context block]. Without context the last pass of factor k is
    # fused with the first pass of factor k + 1.
    pending = False
    for k in range(K):
        _rows_pass(e, q_c, has_ctx, pending, k - 1, iidx, uidx, q_i, qq_i, q_u, ia_old,
                   iqq_old, True, k, uidx, iidx, q_i, agg_e, agg_b1, agg_b2, agg_be)
        _relation_features(k, cnt_u, ucol_indptr, ucol_rows, ucol_data, 0, V, group, lam_v,
                           mu_v, alpha, z, zoff, mcmc, q_u, qq_u, agg_e, agg_b1, agg_b2, agg_be,
                           ua_old, uqq_old)
        _rows_pass(e, q_c, has_ctx, True, k, uidx, iidx, q_u, qq_u, q_i, ua_old, uqq_old,
                   True, k, iidx, uidx, q_u, agg_e, agg_b1, agg_b2, agg_be)
        _relation_features(k, cnt_i, icol_indptr, icol_rows, icol_data, pu, V, group, lam_v,
                           mu_v, alpha, z, zoff, mcmc, q_i, qq_i, agg_e, agg_b1, agg_b2, agg_be,
                           ia_old, iqq_old)
        pending = True
        if not has_ctx:
            continue
        _rows_pass(e, q_c, has_ctx, True, k, iidx, uidx, q_i, qq_i, q_u, ia_old, iqq_old,
                   False, k, uidx, iidx, q_i, agg_e, agg_b1, agg_b2, agg_be)
        pending = False
        for f in range(pc):
            g = pu + pi + f
            old = V[g, k]
            shh = 0.0
            she = 0.0
            for t in range(ccol_indptr[f], ccol_indptr[f + 1]):
                n = ccol_rows[t]
                x = ccol_data[t]
                h = x * (q_u[k, uidx[n]] + q_i[k, iidx[n]] + q_c[k, n] - x * old)
                shh += h * h
                she += h * e[n]
            new = _draw(shh, she, old, lam_v[group[g], k], mu_v[group[g], k], alpha,
                        z[zoff + k * p + g], mcmc)
            d = new - old
            V[g, k] = new
            if d != 0.0:
                for t in range(ccol_indptr[f], ccol_indptr[f + 1]):
                    n = ccol_rows[t]
                    x = ccol_data[t]
                    h = x * (q_u[k, uidx[n]] + q_i[k, iidx[n]] + q_c[k, n] - x * old)
                    e[n] -= d * h
                    q_c[k, n] += d * x
                    qq_c[k, n] += x * x * (new * new - old * old)
    if pending:
        _rows_pass(e, q_c, has_ctx, True, K - 1, iidx, uidx, q_i, qq_i, q_u, ia_old, iqq_old,
                   False, 0, uidx, iidx, q_i, agg_e, agg_b1, agg_b2, agg_be)


def cd_sweep_numpy(X, y, w0, w, V, group, lam_w, mu_w, lam_v, mu_v, lam0, alpha, z, mcmc,
                   order):
    """Direct twin of :func:`cd_sweep` on the expanded design matrix ``X`` (dense, rows x p).

    libFM's update of one coordinate at a time, recomputing :math:`\\hat y` from scratch for
    every coordinate (no caches, no relation blocks). ``order`` lists the features in the
    kernel's visiting order (user block, item block, context). Returns the residuals.
    """
    X = np.asarray(X, dtype=np.float64)
    p = X.shape[1]

    def predict():
        s = X @ V
        return w0[0] + X @ w + 0.5 * ((s * s) - (X * X) @ (V * V)).sum(axis=1)

    def draw(shh, she, theta, lam, mu, zz):
        if mcmc:
            var = 1.0 / (alpha * shh + lam)
            return var * (alpha * (she + theta * shh) + lam * mu) + np.sqrt(var) * zz
        den = shh + lam
        return theta if den <= 0 else (she + theta * shh) / den

    e = y - predict()
    w0[0] = draw(float(len(y)), e.sum(), w0[0], lam0, 0.0, z[0])
    for f in order:
        e = y - predict()
        h = X[:, f]
        w[f] = draw(h @ h, h @ e, w[f], lam_w[group[f]], mu_w[group[f]], z[1 + f])
    for k in range(V.shape[1]):
        for f in order:
            e = y - predict()
            h = X[:, f] * (X @ V[:, k] - X[:, f] * V[f, k])
            V[f, k] = draw(h @ h, h @ e, V[f, k], lam_v[group[f], k], mu_v[group[f], k],
                           z[1 + p + k * p + f])
    return y - predict()


# -- stochastic gradient descent ----------------------------------------------------------------
@numba.njit(cache=True)
def _gather(n, u, i, u_indptr, u_indices, u_data, i_indptr, i_indices, i_data, c_indptr,
            c_indices, c_data, pu, pi, feats, vals):  # pragma: no cover - compiled
    m = 0
    for t in range(u_indptr[u], u_indptr[u + 1]):
        feats[m] = u_indices[t]
        vals[m] = u_data[t]
        m += 1
    for t in range(i_indptr[i], i_indptr[i + 1]):
        feats[m] = i_indices[t] + pu
        vals[m] = i_data[t]
        m += 1
    for t in range(c_indptr[n], c_indptr[n + 1]):
        feats[m] = c_indices[t] + pu + pi
        vals[m] = c_data[t]
        m += 1
    return m


@numba.njit(cache=True)
def sgd_epoch(order, uidx, iidx, y, task, w0, w, V, group, reg_w, reg_v, lr,
              u_indptr, u_indices, u_data, i_indptr, i_indices, i_data,
              c_indptr, c_indices, c_data, pu, pi, feats, vals, s):  # pragma: no cover
    """One SGD pass over the rows in ``order`` (Rendle 2010, eq. 4 gradients); returns the
    summed loss before each step. ``task`` 0: squared error, 1: logistic (``y`` in {-1, 1}).

    ``feats``/``vals``/``s`` are scratch buffers (longest row, longest row, ``k``).
    """
    K = V.shape[1]
    loss = 0.0
    for t in range(len(order)):
        n = order[t]
        m = _gather(n, uidx[n], iidx[n], u_indptr, u_indices, u_data, i_indptr, i_indices,
                    i_data, c_indptr, c_indices, c_data, pu, pi, feats, vals)
        pred = w0[0]
        for k in range(K):
            s[k] = 0.0
        sq = 0.0
        for j in range(m):
            f = feats[j]
            x = vals[j]
            pred += w[f] * x
            for k in range(K):
                v = V[f, k]
                s[k] += v * x
                sq += v * v * x * x
        for k in range(K):
            pred += 0.5 * s[k] * s[k]
        pred -= 0.5 * sq
        if task == 0:
            g = pred - y[n]
            loss += g * g
        else:
            yy = y[n]
            marg = yy * pred
            if marg > 0:
                ez = np.exp(-marg)
                g = -yy * ez / (1.0 + ez)
                loss += np.log1p(ez)
            else:
                ez = np.exp(marg)
                g = -yy / (1.0 + ez)
                loss += -marg + np.log1p(ez)
        w0[0] -= lr * g
        for j in range(m):
            f = feats[j]
            x = vals[j]
            grp = group[f]
            w[f] -= lr * (g * x + reg_w[grp] * w[f])
            for k in range(K):
                v = V[f, k]
                V[f, k] = v - lr * (g * x * (s[k] - x * v) + reg_v[grp] * v)
    return loss


def sgd_epoch_numpy(order, uidx, iidx, y, task, w0, w, V, group, reg_w, reg_v, lr,
                    u_indptr, u_indices, u_data, i_indptr, i_indices, i_data,
                    c_indptr, c_indices, c_data, pu, pi, feats, vals, s):
    """Plain twin of :func:`sgd_epoch` (same visiting order, vectorised per row)."""
    loss = 0.0
    for n in order:
        u, i = uidx[n], iidx[n]
        f = np.concatenate([u_indices[u_indptr[u]:u_indptr[u + 1]],
                            i_indices[i_indptr[i]:i_indptr[i + 1]] + pu,
                            c_indices[c_indptr[n]:c_indptr[n + 1]] + pu + pi]).astype(np.int64)
        x = np.concatenate([u_data[u_indptr[u]:u_indptr[u + 1]],
                            i_data[i_indptr[i]:i_indptr[i + 1]],
                            c_data[c_indptr[n]:c_indptr[n + 1]]]).astype(np.float64)
        vf = V[f]
        ss = x @ vf
        pred = w0[0] + x @ w[f] + 0.5 * (ss @ ss - (x * x) @ (vf * vf).sum(axis=1))
        if task == 0:
            g = pred - y[n]
            loss += g * g
        else:
            marg = y[n] * pred
            g = -y[n] / (1.0 + np.exp(marg))
            loss += np.logaddexp(0.0, -marg)
        w0[0] -= lr * g
        # a feature appears once per row, so fancy-index assignment is exact
        w[f] = w[f] - lr * (g * x + reg_w[group[f]] * w[f])
        V[f] = vf - lr * (g * x[:, None] * (ss[None, :] - x[:, None] * vf)
                          + reg_v[group[f]][:, None] * vf)
    return loss


@numba.njit(cache=True)
def bpr_epoch(pos, uidx, iidx, neg, w, V, group, reg_w, reg_v, lr,
              u_indptr, u_indices, u_data, i_indptr, i_indices, i_data,
              c_indptr, c_indices, c_data, pu, pi, seen_indptr, seen_indices,
              qu, qi, qj, gi, gj):  # pragma: no cover - compiled
    """One BPR pass for a ranking FM: row ``pos[t]`` against the sampled item ``neg[t]``.

    :math:`d = \\hat y(u, i, c) - \\hat y(u, j, c)`; terms of the user and context alone cancel,
    so :math:`d = \\text{lin}_i - \\text{lin}_j + \\langle a_u + c, q_i - q_j\\rangle
    + \\text{intra}_i - \\text{intra}_j`. Negatives the user has seen are skipped. Returns the
    summed :math:`-\\ln\\sigma(d)` and the number of triples used.
    """
    K = V.shape[1]
    loss = 0.0
    used = 0
    for t in range(len(pos)):
        n = pos[t]
        u = uidx[n]
        i = iidx[n]
        j = neg[t]
        if j == i:
            continue
        lo = seen_indptr[u]
        hi = seen_indptr[u + 1]
        found = False
        while lo < hi:
            mid = (lo + hi) >> 1
            if seen_indices[mid] < j:
                lo = mid + 1
            else:
                hi = mid
        if lo < seen_indptr[u + 1] and seen_indices[lo] == j:
            found = True
        if found:
            continue
        used += 1
        for k in range(K):
            qu[k] = 0.0
            qi[k] = 0.0
            qj[k] = 0.0
        for r in range(u_indptr[u], u_indptr[u + 1]):
            f = u_indices[r]
            for k in range(K):
                qu[k] += u_data[r] * V[f, k]
        for r in range(c_indptr[n], c_indptr[n + 1]):
            f = c_indices[r] + pu + pi
            for k in range(K):
                qu[k] += c_data[r] * V[f, k]
        d = 0.0
        sq = 0.0
        for r in range(i_indptr[i], i_indptr[i + 1]):
            f = i_indices[r] + pu
            x = i_data[r]
            d += x * w[f]
            for k in range(K):
                qi[k] += x * V[f, k]
                sq += x * x * V[f, k] * V[f, k]
        d -= 0.5 * sq
        sq = 0.0
        for r in range(i_indptr[j], i_indptr[j + 1]):
            f = i_indices[r] + pu
            x = i_data[r]
            d -= x * w[f]
            for k in range(K):
                qj[k] += x * V[f, k]
                sq += x * x * V[f, k] * V[f, k]
        d += 0.5 * sq
        for k in range(K):
            d += qu[k] * (qi[k] - qj[k]) + 0.5 * (qi[k] * qi[k] - qj[k] * qj[k])
        if d > 0:
            ez = np.exp(-d)
            z = ez / (1.0 + ez)
            loss += np.log1p(ez)
        else:
            z = 1.0 / (1.0 + np.exp(d))
            loss += -d + np.log1p(np.exp(d))
        # ascent on ln sigma(d): step z * grad(d), with gradients at the values before the step
        for k in range(K):
            gi[k] = qu[k] + qi[k]
            gj[k] = qu[k] + qj[k]
        for r in range(u_indptr[u], u_indptr[u + 1]):
            f = u_indices[r]
            x = u_data[r]
            for k in range(K):
                V[f, k] += lr * (z * x * (qi[k] - qj[k]) - reg_v[group[f]] * V[f, k])
        for r in range(c_indptr[n], c_indptr[n + 1]):
            f = c_indices[r] + pu + pi
            x = c_data[r]
            for k in range(K):
                V[f, k] += lr * (z * x * (qi[k] - qj[k]) - reg_v[group[f]] * V[f, k])
        for r in range(i_indptr[i], i_indptr[i + 1]):
            f = i_indices[r] + pu
            x = i_data[r]
            w[f] += lr * (z * x - reg_w[group[f]] * w[f])
            for k in range(K):
                v = V[f, k]
                V[f, k] = v + lr * (z * x * (gi[k] - x * v) - reg_v[group[f]] * v)
        for r in range(i_indptr[j], i_indptr[j + 1]):
            f = i_indices[r] + pu
            x = i_data[r]
            w[f] += lr * (-z * x - reg_w[group[f]] * w[f])
            for k in range(K):
                v = V[f, k]
                V[f, k] = v + lr * (-z * x * (gj[k] - x * v) - reg_v[group[f]] * v)
    return loss, used


def bpr_epoch_numpy(pos, uidx, iidx, neg, w, V, group, reg_w, reg_v, lr,
                    u_indptr, u_indices, u_data, i_indptr, i_indices, i_data,
                    c_indptr, c_indices, c_data, pu, pi, seen_indptr, seen_indices,
                    qu, qi, qj, gi, gj):
    """Plain twin of :func:`bpr_epoch` (same triples and order, vectorised per triple)."""
    loss = 0.0
    used = 0

    def rows(indptr, indices, data, r, off):
        return (indices[indptr[r]:indptr[r + 1]].astype(np.int64) + off,
                data[indptr[r]:indptr[r + 1]].astype(np.float64))

    for t in range(len(pos)):
        n = pos[t]
        u, i, j = uidx[n], iidx[n], neg[t]
        if j == i or j in seen_indices[seen_indptr[u]:seen_indptr[u + 1]]:
            continue
        used += 1
        fu, xu = rows(u_indptr, u_indices, u_data, u, 0)
        fc, xc = rows(c_indptr, c_indices, c_data, n, pu + pi)
        fi, xi = rows(i_indptr, i_indices, i_data, i, pu)
        fj, xj = rows(i_indptr, i_indices, i_data, j, pu)
        a = xu @ V[fu] + xc @ V[fc]
        q_i = xi @ V[fi]
        q_j = xj @ V[fj]
        d = (xi @ w[fi] - xj @ w[fj] + a @ (q_i - q_j)
             + 0.5 * (q_i @ q_i - (xi * xi) @ (V[fi] ** 2).sum(axis=1))
             - 0.5 * (q_j @ q_j - (xj * xj) @ (V[fj] ** 2).sum(axis=1)))
        z = 1.0 / (1.0 + np.exp(d))
        loss += np.logaddexp(0.0, -d)
        for f, x in zip(np.r_[fu, fc], np.r_[xu, xc], strict=True):
            V[f] += lr * (z * x * (q_i - q_j) - reg_v[group[f]] * V[f])
        for f, x in zip(fi, xi, strict=True):
            w[f] += lr * (z * x - reg_w[group[f]] * w[f])
            V[f] = V[f] + lr * (z * x * (a + q_i - x * V[f]) - reg_v[group[f]] * V[f])
        for f, x in zip(fj, xj, strict=True):
            w[f] += lr * (-z * x - reg_w[group[f]] * w[f])
            V[f] = V[f] + lr * (-z * x * (a + q_j - x * V[f]) - reg_v[group[f]] * V[f])
    return loss, used
