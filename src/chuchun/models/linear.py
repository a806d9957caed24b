"""Linear item-item models for top-N recommendation: EASE (Steck 2019) and SLIM (Ning & Karypis
2011).

Both learn an item-item weight matrix :math:`B` and score a user by :math:`\\hat x_u = x_u B`
(:math:`x_u` the user's row of the interaction matrix), so folding in a new user is exact (the
same product on the new history), every score splits exactly into one term per history item,
and the rows of :math:`B` say which items each item lends weight to.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun._params import Param
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender
from chuchun.models._results import Reason

__all__ = ["EASE", "SLIM"]

_GRAM_BUDGET = 25_000_000  # dense floats per chunk of users when forming X^T X (100 MB)


class _ItemWeights(Recommender):
    """Shared parts of models scoring :math:`\\hat x_u = x_u B` with item-item weights ``B``.

    Subclasses set ``interactions_`` (users x items, float32 CSR) and ``weights_`` (items x
    items, a dense float32 array or a float32 CSR) in ``_fit``.
    """

    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("item-item weights: each history item j adds x_uj * B[j, i] to the score "
                      "of item i")

    binary = Param(bool, True, "Treat every interaction as 1, ignoring ratings or counts.")
    recency_half_life = Param(
        float, None, "Weigh each history item by 2 ** (-r / h), r its rank from the user's most "
        "recent interaction (0); None weighs all history items alike.", low=0, low_open=True,
        nullable=True)

    interactions_: sp.csr_matrix
    weights_: np.ndarray | sp.csr_matrix

    def _orders_histories(self) -> bool:
        return self.recency_half_life is not None

    def _matrix(self, data: Interactions) -> sp.csr_matrix:
        if self.recency_half_life is not None and not self.binary:
            raise ConfigError(
                f"{type(self).__name__}: recency_half_life weighs history items by their order, "
                "which replaces the interaction values; it needs binary=True (got binary=False)"
            )
        values = data.values
        if not np.isfinite(values).all() or (values < 0).any():
            bad = values[~np.isfinite(values) | (values < 0)][:3].tolist()
            raise DataError(
                f"{type(self).__name__} reads interaction values as non-negative feedback "
                f"strengths; got values such as {bad}"
            )
        return self._as_input(data.csr)

    def _as_input(self, csr: sp.csr_matrix) -> sp.csr_matrix:
        x = sp.csr_matrix(csr, dtype=np.float32, copy=True)
        if self.binary:
            x.data = np.ones_like(x.data)
        x.sort_indices()
        return x

    def _set_profiles(self, data: Interactions, x: sp.csr_matrix) -> None:
        """With ``recency_half_life``, ``profiles_``: the recency-weighted rows of ``x``."""
        if self.recency_half_life is None:
            return
        from chuchun.data.sequences import user_sequences

        seqs = user_sequences(data)  # sequence u is user index u, oldest first
        lengths = seqs.lengths
        rows = np.repeat(np.arange(len(seqs)), lengths)
        rank = np.repeat(seqs.indptr[1:], lengths) - 1 - np.arange(len(seqs.items))
        self.profiles_ = self._decayed(rows, seqs.items.astype(np.int64), rank, x.shape)

    def _rows(self) -> sp.csr_matrix:
        """The users x items rows scored with (recency-weighted when ``profiles_`` exists)."""
        profiles = vars(self).get("profiles_")
        return self.interactions_ if profiles is None else profiles

    def _decayed(self, rows: np.ndarray, items: np.ndarray, rank: np.ndarray,
                 shape: tuple[int, int]) -> sp.csr_matrix:
        """CSR of ``2 ** (-rank / h)``; an item repeated in a row keeps its latest rank."""
        assert self.recency_half_life is not None
        order = np.lexsort((rank, items, rows))
        rows, items, rank = rows[order], items[order], rank[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
        w = np.exp2(-rank[first] / self.recency_half_life).astype(np.float32)
        out = sp.csr_matrix((w, (rows[first], items[first])), shape=shape, dtype=np.float32)
        out.sort_indices()
        return out

    def _times_weights(self, x: sp.csr_matrix) -> np.ndarray:
        out = x @ self.weights_
        return np.asarray(_dense(out), dtype=np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._times_weights(self._rows()[np.asarray(user_idx)])

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._times_weights(self._as_input(history))

    def _score_sequences(self, sequences: list[np.ndarray]) -> np.ndarray:
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        rows = np.repeat(np.arange(len(sequences)), lengths)
        items = (np.concatenate(sequences) if len(sequences) else np.empty(0, np.int32))
        rank = np.repeat(np.cumsum(lengths), lengths) - 1 - np.arange(int(lengths.sum()))
        return self._times_weights(
            self._decayed(rows, items.astype(np.int64), rank, (len(sequences), len(self.items_))))

    def _column(self, item_idx: int) -> np.ndarray:
        return np.asarray(_dense(self.weights_[:, [item_idx]]), dtype=np.float64).ravel()

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        x = self._rows()
        lo, hi = x.indptr[user_idx], x.indptr[user_idx + 1]
        hist, values = x.indices[lo:hi], x.data[lo:hi].astype(np.float64)
        weights = self._column(item_idx)[hist]
        terms = values * weights
        reasons = [
            Reason(kind="item", id=_plain(self.items_.ids[j]), contribution=float(t),
                   detail={"weight": float(w), "value": float(v)})
            for j, t, w, v in zip(hist, terms, weights, values, strict=True) if t != 0
        ]
        return float(terms.sum()), reasons

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray | sp.csr_matrix:
        return self.weights_[np.asarray(item_idx)]


def _dense(a: Any) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    return np.asarray(sp.csr_matrix(a).toarray())


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class EASE(_ItemWeights):
    """Embarrassingly shallow autoencoder: a closed-form item-item model (Steck 2019).

    Solves

    .. math::

        \\min_B \\lVert X - X B \\rVert_F^2 + \\lambda \\lVert B \\rVert_F^2
        \\quad \\text{s.t.}\\quad \\operatorname{diag}(B) = 0,

    whose solution is (Steck 2019, eq. 8)

    .. math::

        P = (X^\\top X + \\lambda I)^{-1}, \\qquad
        B = I - P \\operatorname{diagMat}(1 / \\operatorname{diag}(P)),
        \\qquad B_{ij} = -P_{ij} / P_{jj}\\; (i \\ne j),

    and scores :math:`\\hat x_{ui} = \\sum_j x_{uj} B_{ji}`. :math:`P` comes from a float32
    Cholesky factorisation of the Gram matrix (LAPACK ``potrf``/``potri``).

    **Memory.** :math:`B` is dense: ``n_items**2`` float32 values are kept (4 bytes each:
    11 MB at 1,682 items, 400 MB at 10,000, 1.6 GB at 20,000), and fitting holds about twice
    that. Fitting refuses catalogues above ``max_items`` with a :class:`ConfigError`; raise the
    limit deliberately, or use :class:`SLIM` or :class:`~chuchun.models.graph.RP3beta`, whose
    weights are sparse.

    Parameters
    ----------
    regularization : float
        :math:`\\lambda`; it acts on the scale of the item counts (the Gram diagonal), so larger
        or denser data want larger values.
    binary : bool
        Use :math:`x_{ui} = 1` for every interaction (the paper's setting); otherwise the
        interaction values (counts, ratings) themselves.
    recency_half_life : float or None
        With :math:`h` set, a user is scored from the recency-weighted row
        :math:`\\tilde x_{uj} = 2^{-r_{uj}/h}` (:math:`r_{uj}` the rank of item :math:`j` in the
        user's history counted from the most recent, 0), i.e.
        :math:`\\hat x_u = \\tilde x_u B`; the weights are learned from the unweighted rows as
        before. Histories are ordered by timestamp (row order without timestamps); folding in
        reads the order of the history given. Needs ``binary=True``. None: every history item
        weighs 1.
    max_items : int
        Largest catalogue fitted.
    n_threads : int or None
        BLAS threads for forming and factorising :math:`X^\\top X + \\lambda I` (None: the
        BLAS library's default). On a machine shared with other work, a small number avoids
        oversubscription.

    Attributes
    ----------
    weights_ : ndarray of float32, shape (n_items, n_items)
        :math:`B`, zero diagonal; ``similar_items`` reads its rows.
    interactions_ : scipy.sparse.csr_matrix
        The users x items matrix :math:`X`.
    profiles_ : scipy.sparse.csr_matrix
        The recency-weighted rows :math:`\\tilde X` scored with (only with
        ``recency_half_life``).

    References
    ----------
    H. Steck. Embarrassingly shallow autoencoders for sparse data. WWW 2019.
    """

    regularization = Param(float, 200.0, "L2 weight lambda on B (scale: item counts).", low=0,
                           low_open=True)
    binary = _ItemWeights.binary
    recency_half_life = _ItemWeights.recency_half_life
    max_items = Param(int, 20_000, "Refuse to fit larger catalogues (B is n_items^2 floats).",
                      low=1)
    n_threads = Param(int, None, "BLAS threads of the factorisation (None: the BLAS default, "
                      "normally all cores).", low=1, nullable=True)

    _test_params: ClassVar[dict[str, Any]] = {"regularization": 10.0}

    def _fit(self, data: Interactions) -> None:
        if data.n_items > self.max_items:
            gb = 4 * data.n_items**2 / 1e9
            raise ConfigError(
                f"EASE keeps a dense n_items x n_items weight matrix: {data.n_items} items need "
                f"{gb:.1f} GB (float32), more than max_items={self.max_items} allows; raise "
                "max_items, or use SLIM or RP3beta (sparse weights)"
            )
        x = self._matrix(data)
        self.interactions_ = x
        self._set_profiles(data, x)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.n_threads, user_api="blas"):
            self.weights_ = ease_weights(x, self.regularization)


def ease_weights(x: sp.csr_matrix, regularization: float) -> np.ndarray:
    """The EASE closed form :math:`B` of ``x`` (float32, by a Cholesky-based inverse)."""
    from scipy.linalg import lapack

    n = x.shape[1]
    gram = np.zeros((n, n), dtype=np.float32)
    # sparse x dense products over user chunks: the sparse Gram product is slower and its
    # result is nearly dense anyway
    xt = x.T.tocsr()
    step = max(1, _GRAM_BUDGET // max(1, n))
    for start in range(0, x.shape[0], step):
        gram += np.asarray(xt[:, start : start + step] @ x[start : start + step].toarray(),
                           dtype=np.float32)
    gram[np.diag_indices(n)] += np.float32(regularization)
    factor, info = lapack.spotrf(gram, lower=True, overwrite_a=True, clean=False)
    if info != 0:
        raise DataError(f"EASE: the regularised Gram matrix is not positive definite "
                        f"(LAPACK potrf info={info}); use a larger regularization")
    p, info = lapack.spotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise DataError(f"EASE: inverting the Gram matrix failed (LAPACK potri info={info})")
    p = np.tril(p)
    p = p + np.tril(p, -1).T  # potri fills one triangle
    b = p / (-np.diag(p))[None, :]
    b[np.diag_indices(n)] = 0.0
    return np.ascontiguousarray(b, dtype=np.float32)


class SLIM(_ItemWeights):
    """Sparse linear method: a non-negative ElasticNet per item column (Ning & Karypis 2011).

    For each item :math:`j`,

    .. math::

        w_j = \\arg\\min_{w \\ge 0,\\; w_j = 0}\\; \\tfrac12 \\lVert x_j - X w \\rVert^2
        + l_1 \\lVert w \\rVert_1 + \\tfrac{l_2}{2} \\lVert w \\rVert^2,

    solved by coordinate descent on :math:`X^\\top X` (:mod:`chuchun.kernels.slim`), in
    parallel over items; the ``n_neighbors`` largest weights of each column are kept, so
    :math:`W` is sparse. Scores are :math:`\\hat x_{ui} = \\sum_j x_{uj} W_{ji}`.

    The objective is unscaled (scikit-learn's ``ElasticNet(alpha, l1_ratio)`` with
    ``positive=True`` corresponds to :math:`l_1 = n\\,\\alpha\\,\\rho`,
    :math:`l_2 = n\\,\\alpha (1 - \\rho)` with :math:`n` the number of users).

    **Memory.** The Gram matrix :math:`X^\\top X` is held sparse (one entry per co-occurring
    item pair) and :math:`W` keeps at most ``n_items * n_neighbors`` entries.

    Parameters
    ----------
    l1_regularization, l2_regularization : float
        :math:`l_1`, :math:`l_2` on the scale of the item counts.
    n_neighbors : int
        Largest weights kept per item column.
    max_sweeps : int
        Coordinate-descent sweeps per item at most.
    tol : float
        Stop when a sweep changes no weight by more than ``tol`` times the largest weight.
    binary : bool
        Use 1 for every interaction (default) or the interaction values.
    recency_half_life : float or None
        With :math:`h` set, a user is scored from the recency-weighted row
        :math:`\\tilde x_{uj} = 2^{-r_{uj}/h}` (:math:`r_{uj}` the rank of item :math:`j` in the
        user's history counted from the most recent, 0), i.e.
        :math:`\\hat x_u = \\tilde x_u B`; the weights are learned from the unweighted rows as
        before. Histories are ordered by timestamp (row order without timestamps); folding in
        reads the order of the history given. Needs ``binary=True``. None: every history item
        weighs 1.
    n_threads : int or None
        Threads of the kernel (None: all cores). Items are solved independently, so the result
        does not depend on the thread count.

    Attributes
    ----------
    weights_ : scipy.sparse.csr_matrix of float32, shape (n_items, n_items)
        :math:`W` (row: the item lending weight, column: the item scored), zero diagonal.
    interactions_ : scipy.sparse.csr_matrix

    References
    ----------
    X. Ning, G. Karypis. SLIM: Sparse linear methods for top-N recommender systems. ICDM 2011.
    """

    l1_regularization = Param(float, 1.0, "L1 weight l1 (sparsity of W).", low=0)
    l2_regularization = Param(float, 50.0, "L2 weight l2 of W.", low=0)
    n_neighbors = Param(int, 100, "Largest weights kept per item column.", low=1)
    max_sweeps = Param(int, 50, "Coordinate-descent sweeps per item at most.", low=1)
    tol = Param(float, 1e-4, "Relative change below which an item's sweeps stop.", low=0)
    binary = _ItemWeights.binary
    recency_half_life = _ItemWeights.recency_half_life
    n_threads = Param(int, None, "Kernel threads (None: all cores).", low=1, nullable=True)

    _test_params: ClassVar[dict[str, Any]] = {"l1_regularization": 0.1,
                                              "l2_regularization": 1.0}

    def _fit(self, data: Interactions) -> None:
        if self.l1_regularization == 0 and self.l2_regularization == 0:
            raise ConfigError("SLIM needs l1_regularization > 0 or l2_regularization > 0; "
                              "with both 0 it reproduces the training matrix exactly")
        x = self._matrix(data)
        self.interactions_ = x
        self._set_profiles(data, x)
        self.weights_ = slim_weights(x, self.l1_regularization, self.l2_regularization,
                                     self.n_neighbors, self.max_sweeps, self.tol, self.n_threads)


def slim_weights(x: sp.csr_matrix, l1: float, l2: float, top_k: int, max_sweeps: int = 50,
                 tol: float = 1e-4, n_threads: int | None = None,
                 engine: str = "numba") -> sp.csr_matrix:
    """SLIM weight matrix of ``x`` (items x items CSR, row k column j = weight of k for j).

    ``engine="numpy"`` runs the kernel's plain-NumPy twin (slow; for tests).
    """
    from chuchun.kernels import slim as kern
    from chuchun.kernels.similarity import thread_limit

    kernel = kern.slim_columns if engine == "numba" else kern.slim_columns_numpy
    gram = (x.T @ x).astype(np.float64).tocsr()
    gram.sum_duplicates()
    gram.sort_indices()
    n = gram.shape[0]
    cap = max(1, min(top_k, n))
    out_idx = np.zeros((n, cap), dtype=np.int64)
    out_val = np.zeros((n, cap), dtype=np.float64)
    out_cnt = np.zeros(n, dtype=np.int64)
    # blocks of about equal Gram work so threads stay busy
    cost = np.r_[0, np.cumsum(np.diff(gram.indptr).astype(np.float64) + 1.0)]
    n_blocks = max(1, min(n, 64))
    bounds = np.searchsorted(cost, np.linspace(0, cost[-1], n_blocks + 1)).astype(np.int64)
    bounds[0], bounds[-1] = 0, n
    bounds = np.maximum.accumulate(bounds)
    with thread_limit(n_threads):
        kernel(gram.indptr.astype(np.int64), gram.indices.astype(np.int64), gram.data,
               float(l1), float(l2), int(max_sweeps), float(tol), cap, bounds, out_idx, out_val,
               out_cnt)
    cols = np.repeat(np.arange(n), out_cnt)
    mask = np.arange(cap)[None, :] < out_cnt[:, None]
    rows = out_idx[mask]
    w = sp.csr_matrix((out_val[mask].astype(np.float32), (rows, cols)), shape=(n, n),
                      dtype=np.float32)
    w.sort_indices()
    return w
