"""Latent-factor models for implicit feedback: ImplicitALS (Hu et al. 2008) and BPR (Rendle et
al. 2009).

Both read the interaction values as feedback strength ``r >= 0`` (ones for logs without a rating
column; a count or a rating otherwise), learn float32 user and item factors, fold in users unseen
in training, and find similar items and users by factor cosine.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import (
    ConfigError,
    DataError,
    DataWarning,
    NotFittedError,
    UnknownIdError,
)
from chuchun._params import Param, n_threads_param, random_state_param
from chuchun._progress import progress
from chuchun._random import check_random_state, kernel_seed
from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary
from chuchun.kernels import bpr as _bpr
from chuchun.kernels import implicit_als as _als
from chuchun.models._base import Recommender
from chuchun.models._explain import bias_reasons, history_reasons, ridge_history_weights
from chuchun.models._results import Reason
from chuchun.models._similar import cosine_rows

__all__ = ["BPR", "ImplicitALS"]

_BLOCKS_PER_THREAD = 8


class _FactorRecommender(Recommender):
    """Shared parts of the implicit factor models: threads, checks, cosine neighbours."""

    n_threads = n_threads_param("Worker threads for the compiled loops.")

    # fitted state, set by each model's _fit
    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def _check_values(self, data: Interactions) -> None:
        values = data.values
        if not np.isfinite(values).all() or (values < 0).any():
            bad = values[~np.isfinite(values) | (values < 0)][:3].tolist()
            raise DataError(
                f"{type(self).__name__} reads interaction values as non-negative feedback "
                f"strengths; got values such as {bad}"
            )

    def _threads(self) -> int:
        import os

        return int(self.n_threads or (os.cpu_count() or 1))

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._user_scores(self.user_factors_[user_idx])

    def _user_scores(self, factors: np.ndarray) -> np.ndarray:
        return factors @ self.item_factors_.T

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        return cosine_rows(self.item_factors_, item_idx)

    def _user_similarities(self, user_idx: np.ndarray) -> np.ndarray:
        return cosine_rows(self.user_factors_, user_idx)


class ImplicitALS(_FactorRecommender):
    """Alternating least squares for implicit feedback (weighted matrix factorisation).

    Minimises over user factors :math:`x_u` and item factors :math:`y_i` (Hu, Koren & Volinsky
    2008, eq. 3)

    .. math::

        \\sum_{u,i} c_{ui} (p_{ui} - x_u^\\top y_i)^2
        + \\lambda \\Big(\\sum_u \\lVert x_u\\rVert^2 + \\sum_i \\lVert y_i\\rVert^2\\Big),
        \\qquad c_{ui} = 1 + \\alpha r_{ui}, \\quad p_{ui} = [r_{ui} > 0],

    over *all* user-item pairs, by alternating exact or conjugate-gradient solves of the user
    and the item side (see :mod:`chuchun.kernels.implicit_als`). Scores are
    :math:`\\hat p_{ui} = x_u^\\top y_i`.

    **Revisited iALS** (Rendle et al. 2022). ``unobserved_weight`` :math:`\\alpha_0` and
    ``regularization_exponent`` :math:`\\nu` generalise the objective to

    .. math::

        \\sum_{u,i} c_{ui} (p_{ui} - x_u^\\top y_i)^2
        + \\sum_u \\lambda_u \\lVert x_u\\rVert^2 + \\sum_i \\lambda_i \\lVert y_i\\rVert^2,
        \\qquad c_{ui} = \\alpha_0 + \\alpha r_{ui},
        \\quad \\lambda_u = \\lambda (n_u + \\alpha_0 n_\\text{items})^\\nu,

    (:math:`n_u` the user's interactions; items alike with :math:`n_\\text{users}`), which is
    the defaults' objective for :math:`\\alpha_0 = 1, \\nu = 0`. ``solver="block"`` is the
    iALS++ subspace solver (Rendle et al. 2021): exact solves over ``block_size`` factor
    dimensions at a time, one sweep per half-step, for large ``n_factors``
    (:mod:`chuchun.kernels.implicit_als`). All three solvers share one family of row kernels
    that take the per-row :math:`\\lambda_u`.

    Parameters
    ----------
    n_factors : int
        Dimension :math:`f` of the factors.
    n_epochs : int
        ALS sweeps (one item half-step, then one user half-step each).
    regularization : float
        :math:`\\lambda`.
    alpha : float
        Confidence slope :math:`\\alpha`.
    solver : {"cg", "cholesky", "block"}
        ``"cg"``: ``cg_steps`` conjugate-gradient steps per row, warm-started from the previous
        factors (Takács et al. 2011); ``"cholesky"``: the exact solve per row; ``"block"``:
        iALS++ subspace solves (see above).
    cg_steps : int
        Conjugate-gradient steps per row and half-step.
    unobserved_weight : float
        :math:`\\alpha_0`, the weight of every unobserved pair.
    regularization_exponent : float
        :math:`\\nu` of the frequency-scaled regularisation (Rendle et al. 2022 use 1).
    block_size : int
        Dimensions per subspace solve of ``solver="block"``.
    random_state : int or None
        Seed of the initial factors.
    n_threads : int or None
        Threads (None: all cores). A fit is reproducible for a fixed seed; the rows of a
        half-step are solved independently, so the thread count does not change the compiled
        loops' arithmetic.
    verbose : bool
        Progress bar over iterations.

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, n_factors)
    item_factors_ : ndarray of float32, shape (n_items, n_factors)

    Notes
    -----
    Fold-in (:meth:`recommend_for_history`) solves a new user's factor exactly (Cholesky) with
    the item factors fixed, which is the user half-step of the fit.
    :meth:`explain` splits a score into the contributions of the user's history items (Hu et
    al. 2008, sec. 5). :meth:`partial_fit` continues training or refreshes given users.

    References
    ----------
    Y. Hu, Y. Koren, C. Volinsky. Collaborative filtering for implicit feedback datasets.
    ICDM 2008.
    G. Takács, I. Pilászy, D. Tikk. Applications of the conjugate gradient method for implicit
    feedback collaborative filtering. RecSys 2011.
    S. Rendle, W. Krichene, L. Zhang, Y. Koren. Revisiting the performance of iALS on item
    recommendation benchmarks. RecSys 2022.
    S. Rendle, W. Krichene, L. Zhang, Y. Koren. iALS++: Speeding up matrix factorization with
    subspace optimization. arXiv:2110.14044, 2021.
    """

    n_factors = Param(int, 64, "Number of latent factors.", low=1)
    n_epochs = Param(int, 15, "ALS sweeps over users and items (one item and one user "
                     "half-step each).", low=0)
    regularization = Param(float, 0.01, "L2 weight lambda of the factors.", low=0)
    alpha = Param(float, 1.0, "Confidence slope: c = 1 + alpha * r.", low=0)
    solver = Param(str, "cg", "Row solver.", choices=("cg", "cholesky", "block"))
    cg_steps = Param(int, 3, "Conjugate-gradient steps per row (solver='cg').", low=1)
    unobserved_weight = Param(float, 1.0, "Weight alpha_0 of each unobserved pair "
                              "(c = alpha_0 + alpha * r when observed).", low=0, low_open=True)
    regularization_exponent = Param(float, 0.0, "nu: lambda scaled by (n_u + alpha_0 * "
                                    "n_items) ** nu per row (0: plain lambda).", low=0)
    block_size = Param(int, 32, "Factor dimensions per subspace solve (solver='block').",
                       low=1)
    random_state = random_state_param("Seed of the initial factors.")
    n_threads = _FactorRecommender.n_threads
    verbose = Param(bool, False, "Show a progress bar over iterations.")

    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("the user's items, each contributing confidence x W-similarity to the "
                      "item (Hu, Koren & Volinsky 2008, sec. 5); additive")
    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 8, "n_epochs": 4}
    _renamed_params: ClassVar[dict[str, str]] = {"n_iterations": "n_epochs"}

    # -- fitting ------------------------------------------------------------------------------
    def _fit(self, data: Interactions) -> None:
        self._check_values(data)
        rng = check_random_state(self.random_state)
        f = self.n_factors
        self.user_factors_ = _normal(rng, (data.n_users, f), 0.01)
        self.item_factors_ = _normal(rng, (data.n_items, f), 0.01)
        self._iterate(self.seen_, self.n_epochs)

    def _iterate(self, csr: sp.csr_matrix, n_epochs: int) -> None:
        by_item = csr.T.tocsr()
        by_item.indptr = by_item.indptr.astype(np.int64, copy=False)
        by_item.indices = by_item.indices.astype(np.int32, copy=False)
        n_blocks = self._threads() * _BLOCKS_PER_THREAD
        user_blocks = _als.row_blocks(csr.indptr, n_blocks, self.n_factors / 2)
        item_blocks = _als.row_blocks(by_item.indptr, n_blocks, self.n_factors / 2)
        user_reg = self._row_regularization(csr, by_item.shape[0])
        item_reg = self._row_regularization(by_item, csr.shape[0])
        with _als.parallel_rows(self.n_threads or 0):
            for _ in progress(range(n_epochs), total=n_epochs, desc="ImplicitALS",
                              verbose=self.verbose):
                # items first, so the user factors end up solved against the final item
                # factors: fold-in then reproduces a training user and explain() sums exactly
                self._half_step(by_item, self.item_factors_, self.user_factors_, item_blocks,
                                item_reg)
                self._half_step(csr, self.user_factors_, self.item_factors_, user_blocks,
                                user_reg)

    def _row_regularization(self, csr: sp.csr_matrix, n_other: int) -> np.ndarray:
        """``reg[u]`` of the kernels: :math:`\\lambda_u / \\alpha_0` per row of ``csr``."""
        w0 = float(self.unobserved_weight)
        if self.regularization_exponent == 0.0:
            return np.full(csr.shape[0], self.regularization / w0)
        counts = np.bincount(np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr)),
                             weights=(np.asarray(csr.data) > 0).astype(np.float64),
                             minlength=csr.shape[0])
        return (self.regularization * (counts + w0 * n_other) ** self.regularization_exponent
                / w0)

    def _half_step(
        self, csr: sp.csr_matrix, X: np.ndarray, Y: np.ndarray, blocks: np.ndarray,
        reg: np.ndarray, solver: str | None = None,
    ) -> None:
        """One half-step of the objective (:mod:`chuchun.kernels.implicit_als`) on ``X``."""
        solver = solver or self.solver
        gram = Y.T @ Y  # float32 BLAS: the dominant dense cost of the item half-step
        data = np.asarray(csr.data, dtype=np.float32)
        alpha = float(self.alpha) / float(self.unobserved_weight)
        args = (csr.indptr, csr.indices, data, X, Y)
        if solver == "cg":
            _als.als_cg_update(*args, gram.astype(np.float32, copy=False), np.float32(alpha),
                               reg.astype(np.float32), self.cg_steps, blocks)
        elif solver == "block":
            _als.als_block_update(*args, gram.astype(np.float64), alpha, reg,
                                  min(int(self.block_size), X.shape[1]), blocks)
        else:
            _als.als_cholesky_update(*args, gram.astype(np.float64), alpha, reg, blocks)

    def _solve_users(self, history: sp.csr_matrix) -> np.ndarray:
        """Exact user factors for the rows of ``history`` with the item factors fixed."""
        history = _as_kernel_csr(history)
        X = np.zeros((history.shape[0], self.n_factors), dtype=np.float32)
        blocks = _als.row_blocks(history.indptr, self._threads() * _BLOCKS_PER_THREAD,
                                 self.n_factors / 2)
        reg = self._row_regularization(history, self.item_factors_.shape[0])
        with _als.parallel_rows(self.n_threads or 0):
            self._half_step(history, X, self.item_factors_, blocks, reg, solver="cholesky")
        return X

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._user_scores(self._solve_users(history))

    def partial_fit(self, data: Interactions | None = None, *, n_epochs: int | None = None,
                    n_iterations: int | None = None) -> Self:
        """Warm-start training.

        ``partial_fit()`` runs ``n_epochs`` (default: the ``n_epochs`` parameter) more
        ALS sweeps on the training matrix, starting from the current factors.

        ``partial_fit(data)`` refreshes the users in ``data``: their stored histories are
        replaced by their rows in ``data`` (pass each user's full current history), users not
        seen before are added, and their factors are solved exactly with the item factors
        fixed. Items unknown to the model are dropped with a :class:`~chuchun.DataWarning`.
        Other users and all items keep their factors; call ``partial_fit()`` afterwards to let
        the items follow. An unfitted model is simply fitted on ``data``.
        """
        if not self.is_fitted:
            if data is None:
                raise NotFittedError(
                    "partial_fit() without data continues a fit; call fit(interactions) first"
                )
            return self.fit(data)
        self._validate_params()
        if data is not None and not isinstance(data, Interactions):
            raise DataError(
                f"partial_fit expects a chuchun.data.Interactions or None; got "
                f"{type(data).__name__}"
            )
        if n_iterations is not None:
            warnings.warn("partial_fit(n_iterations=...) is now partial_fit(n_epochs=...)",
                          DeprecationWarning, stacklevel=2)
            n_epochs = n_iterations if n_epochs is None else n_epochs
        if n_epochs is not None and (
            isinstance(n_epochs, bool) or not isinstance(n_epochs, int | np.integer)
            or n_epochs < 0
        ):
            raise ConfigError(f"n_epochs must be a non-negative int; got {n_epochs!r}")
        if data is not None:
            self._check_values(data)
        # the kernels update factors in place: work on copies and put the previous state
        # back if anything fails, so a failed partial_fit leaves the model as it was
        before = dict(vars(self))
        try:
            if data is None:
                self.user_factors_ = self.user_factors_.copy()
                self.item_factors_ = self.item_factors_.copy()
                n = self.n_epochs if n_epochs is None else int(n_epochs)
                self._iterate(_as_kernel_csr(self.seen_), n)
            else:
                _refresh_users(self, data, self._solve_users)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise
        return self

    # -- explanations -------------------------------------------------------------------------
    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        """Split the score of an item into contributions of the user's items.

        With :math:`W^u = (Y^\\top C^u Y + \\lambda I)^{-1}` the exact user factor is
        :math:`x_u = W^u Y^\\top C^u p(u)`, so (Hu et al. 2008, sec. 5)

        .. math:: \\hat p_{ui} = \\sum_{j: r_{uj} > 0} s^u_{ij} c_{uj},
                  \\qquad s^u_{ij} = y_i^\\top W^u y_j,

        and history item ``j`` contributes :math:`s^u_{ij} c_{uj}`. The fitted :math:`x_u`
        comes from the last user half-step; with ``solver="cg"`` it is a few conjugate-gradient
        steps from the exact solution, and the difference to the exact score is returned as one
        more reason (``kind="bias"``, id ``"solver residual"``) so that the reasons add up to
        the model's score.
        """
        Y = self.item_factors_.astype(np.float64)
        lo, hi = self.seen_.indptr[user_idx], self.seen_.indptr[user_idx + 1]
        hist = self.seen_.indices[lo:hi]
        r = np.asarray(self.seen_.data[lo:hi], dtype=np.float64)
        keep = r > 0
        hist, r = hist[keep], r[keep]
        conf = 1.0 + self.alpha * r
        Yh = Y[hist]
        A = Y.T @ Y + (Yh * (conf - 1.0)[:, None]).T @ Yh
        A[np.diag_indices_from(A)] += self.regularization
        s = Yh @ np.linalg.solve(A, Y[item_idx])
        contrib = s * conf
        score = float(self.user_factors_[user_idx] @ self.item_factors_[item_idx])
        reasons = history_reasons(self.items_.ids[hist], contrib, similarity=s, confidence=conf)
        reasons += bias_reasons(solver_residual=score - float(contrib.sum()))
        return score, reasons


class BPR(_FactorRecommender):
    """Bayesian personalised ranking matrix factorisation with item biases.

    Maximises by stochastic gradient ascent over sampled triples (Rendle et al. 2009, eq. 4
    with :math:`\\hat x_{uij} = \\hat x_{ui} - \\hat x_{uj}`)

    .. math::

        \\sum_{(u,i,j)} \\ln \\sigma(\\hat x_{ui} - \\hat x_{uj})
        - \\lambda \\big(\\lVert p_u\\rVert^2 + \\lVert q_i\\rVert^2 + \\lVert q_j\\rVert^2
        + b_i^2 + b_j^2\\big),
        \\qquad \\hat x_{ui} = p_u^\\top q_i + b_i,

    where :math:`(u, i)` is an observed interaction drawn uniformly and :math:`j` an item drawn
    uniformly among those ``u`` has not interacted with (LearnBPR). Each epoch draws as many
    triples as there are interactions; the positive pairs are drawn in runs of eight
    consecutive interactions from a uniform start (each interaction equally likely, so the
    expected gradient is unchanged; see :mod:`chuchun.kernels.bpr`), which halves the memory
    traffic per sample on large logs. Scores are :math:`\\hat x_{ui}`.

    ``explain`` lists the item bias and the user's items: the user vector is written as a ridge
    combination :math:`p_u \\approx \\sum_{j} a_j q_j` of the factor vectors of their items and
    item ``j`` contributes :math:`a_j q_j^\\top q_i` (see
    :func:`~chuchun.models._explain.ridge_history_weights`; not additive).

    Training runs on ``n_threads`` threads, each owning a block of users and a private copy of
    the item table merged at fixed points (see :mod:`chuchun.kernels.bpr`), so a fit is
    reproducible for a fixed seed *and* thread count. A merge follows about ten updates per item
    row on each thread: up to four per epoch on large logs, and on small logs (fewer than
    ``10 * n_items`` interactions per thread) one every few epochs (at most five), since
    merging the item tables then costs as much as the sampling itself.

    Parameters
    ----------
    n_factors : int
    n_epochs : int
    learning_rate : float
    regularization : float
        :math:`\\lambda` (applied per step to every vector and bias touched).
    fold_in_epochs : int
        Epochs of user-only steps used to fold in a new user.
    random_state : int or None
    n_threads : int or None
        Threads (None: all cores). The users are split into ``n_threads`` blocks, so the
        result depends on this count but not on the cores of the machine that runs it (with
        None it is the machine's core count).
    verbose : bool

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, n_factors)
    item_factors_ : ndarray of float32, shape (n_items, n_factors)
    item_bias_ : ndarray of float32, shape (n_items,)
    seed_ : int
        Seed of fold-in's random streams.

    Notes
    -----
    Fold-in (:meth:`recommend_for_history`): a new user's vector starts at zero and takes
    ``fold_in_epochs * n_u`` BPR steps (``n_u``: the user's number of items) on the user vector
    only, the item factors and biases fixed — the same objective as training restricted to that
    user. It is deterministic for a given history batch.

    References
    ----------
    S. Rendle, C. Freudenthaler, Z. Gantner, L. Schmidt-Thieme. BPR: Bayesian personalized
    ranking from implicit feedback. UAI 2009.
    """

    n_factors = Param(int, 64, "Number of latent factors.", low=1)
    n_epochs = Param(int, 100, "Passes (as many sampled triples as interactions each).", low=0)
    learning_rate = Param(float, 0.05, "SGD step size.", low=0, low_open=True)
    regularization = Param(float, 0.01, "L2 weight lambda per step.", low=0)
    fold_in_epochs = Param(int, 50, "Epochs of user-only steps to fold in a new user.", low=1)
    random_state = random_state_param("Seed of the initial factors and the sampling.")
    n_threads = _FactorRecommender.n_threads
    verbose = Param(bool, False, "Show a progress bar over epochs.")

    supports_fold_in = True
    explain_method = ("item bias plus the user's items, weighted by a ridge fit of the user's "
                      "factor vector on theirs (not additive)")
    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 8, "n_epochs": 10}

    _MAX_TRIES = 16
    _ROUNDS = 4  # most merges per epoch
    _EPOCHS_PER_ROUND = 5  # most epochs between merges

    def _fit(self, data: Interactions) -> None:
        self._check_values(data)
        rng = check_random_state(self.random_state)
        f = self.n_factors
        scale = 1.0 / np.sqrt(f)
        self.user_factors_ = _normal(rng, (data.n_users, f), scale * 0.1)
        self.item_factors_ = _normal(rng, (data.n_items, f), scale * 0.1)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self.seed_ = kernel_seed(rng)
        self._train(self.seed_, self.n_epochs)

    def _train(self, seed: int, n_epochs: int) -> None:
        """``n_epochs`` epochs of SGD from the current factors, random streams from ``seed``."""
        csr = _as_kernel_csr(self.seen_)
        if csr.nnz and csr.data.min() <= 0:
            # a stored zero is no interaction for BPR (the kernels read only the pattern)
            csr = csr.copy()
            csr.eliminate_zeros()
        bounds = _als.row_blocks(csr.indptr, self._threads(), 0.0)
        lr, reg = np.float32(self.learning_rate), np.float32(self.regularization)
        previous = _als.set_threads(self.n_threads or 0)
        try:
            if len(bounds) == 2 or csr.nnz == 0:
                self._train_serial(csr, seed, n_epochs, lr, reg)
            else:
                self._train_parallel(csr, bounds, seed, n_epochs, lr, reg)
        finally:
            _als.set_threads(previous)

    def _epochs(self, n_epochs: int | list[int]) -> Any:
        steps = range(n_epochs) if isinstance(n_epochs, int) else n_epochs
        return progress(steps, total=len(steps), desc="BPR", verbose=self.verbose)

    def partial_fit(self, data: Interactions | None = None, *,
                    n_epochs: int | None = None) -> Self:
        """Warm-start training.

        ``partial_fit()`` runs ``n_epochs`` (default: the ``n_epochs`` parameter) more epochs
        of SGD on the training matrix from the current factors and biases. Their random
        streams derive from ``seed_`` and the current item biases, so a repeated call draws new
        samples and the same model continued the same way gives the same result.

        ``partial_fit(data)`` refreshes the users in ``data``: their stored histories are
        replaced by their rows in ``data`` (pass each user's full current history), users not
        seen before are added, and their vectors are fitted by fold-in (user-only steps, the
        items fixed; see Notes). Items unknown to the model are dropped with a
        :class:`~chuchun.DataWarning`. An unfitted model is simply fitted on ``data``.

        A call that raises leaves the model exactly as it was.
        """
        if not self.is_fitted:
            if data is None:
                raise NotFittedError(
                    "partial_fit() without data continues a fit; call fit(interactions) first"
                )
            return self.fit(data)
        self._validate_params()
        if data is not None and not isinstance(data, Interactions):
            raise DataError(
                f"partial_fit expects a chuchun.data.Interactions or None; got "
                f"{type(data).__name__}"
            )
        if n_epochs is not None and (
            isinstance(n_epochs, bool) or not isinstance(n_epochs, int | np.integer)
            or n_epochs < 0
        ):
            raise ConfigError(f"n_epochs must be a non-negative int; got {n_epochs!r}")
        if data is not None:
            self._check_values(data)
        before = dict(vars(self))
        try:
            if data is None:
                # the kernels update in place: train copies, so a failure restores the old ones
                self.user_factors_ = self.user_factors_.copy()
                self.item_factors_ = self.item_factors_.copy()
                self.item_bias_ = self.item_bias_.copy()
                seed = self.seed_ ^ zlib.crc32(self.item_bias_.tobytes())
                self._train(seed, self.n_epochs if n_epochs is None else int(n_epochs))
            else:
                _refresh_users(self, data, self._fold_in)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise
        return self

    def _train_serial(self, csr: sp.csr_matrix, seed: int, n_epochs: int, lr: np.float32,
                      reg: np.float32) -> None:
        states = _bpr.seed_states(seed, 2)
        index = _bpr.row_index(csr.indptr)
        for _ in self._epochs(n_epochs):
            if csr.nnz:
                _bpr.bpr_serial(csr.indptr, csr.indices, index, self.user_factors_,
                                self.item_factors_, self.item_bias_, states, csr.nnz, lr, reg,
                                self._MAX_TRIES)

    def _train_parallel(
        self, csr: sp.csr_matrix, bounds: np.ndarray, seed: int, n_epochs: int, lr: np.float32,
        reg: np.float32,
    ) -> None:
        n_threads = len(bounds) - 1
        states = _bpr.seed_states(seed, 2 * n_threads)
        index = _bpr.row_index(csr.indptr)
        per_thread = np.diff(csr.indptr[bounds]).astype(np.int64)
        # each round is one parallel region and ends in a merge of the item tables; a thread
        # makes about 10 updates per item row in a round: at most _ROUNDS rounds per epoch,
        # and on small logs one round spans up to _EPOCHS_PER_ROUND epochs
        work = int(per_thread.max())
        n_rounds = max(1, min(self._ROUNDS, work // (10 * csr.shape[1])))
        span = 1
        if work and work < 10 * csr.shape[1]:
            span = min(self._EPOCHS_PER_ROUND, -(-10 * csr.shape[1] // work))
        groups = [span] * (n_epochs // span) + ([n_epochs % span] if n_epochs % span else [])
        S, bS = self.item_factors_, self.item_bias_
        S_next, bS_next = np.empty_like(S), np.empty_like(bS)
        L_prev = np.broadcast_to(S, (n_threads, *S.shape)).copy()
        bL_prev = np.broadcast_to(bS, (n_threads, *bS.shape)).copy()
        L_next, bL_next = np.empty_like(L_prev), np.empty_like(bL_prev)
        for g in self._epochs(groups):
            edges = [g * per_thread * r // n_rounds for r in range(n_rounds + 1)]
            for r in range(n_rounds):
                _bpr.bpr_round(csr.indptr, csr.indices, index, self.user_factors_, S, bS, S_next,
                               bS_next, L_prev, bL_prev, L_next, bL_next, states, bounds,
                               edges[r + 1] - edges[r], lr, reg, self._MAX_TRIES)
                S, S_next = S_next, S
                bS, bS_next = bS_next, bS
                L_prev, L_next = L_next, L_prev
                bL_prev, bL_next = bL_next, bL_prev
        self.item_factors_, self.item_bias_ = _bpr.merge_rounds(S, bS, L_prev, bL_prev)

    def _user_scores(self, factors: np.ndarray) -> np.ndarray:
        return factors @ self.item_factors_.T + self.item_bias_[None, :]

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        history = history.copy()
        history.data = (history.data > 0).astype(np.float32)
        history.eliminate_zeros()
        history = _as_kernel_csr(history)
        P = np.zeros((history.shape[0], self.n_factors), dtype=np.float32)
        states = _bpr.seed_states(self.seed_ ^ 0x5F3759DF, history.shape[0])
        previous = _als.set_threads(self.n_threads or 0)
        try:
            _bpr.bpr_fold_in(history.indptr, history.indices, P, self.item_factors_,
                             self.item_bias_, self.fold_in_epochs,
                             np.float32(self.learning_rate), np.float32(self.regularization),
                             states, self._MAX_TRIES)
        finally:
            _als.set_threads(previous)
        return P

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._user_scores(self._fold_in(history))

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        lo, hi = self.seen_.indptr[user_idx], self.seen_.indptr[user_idx + 1]
        js = self.seen_.indices[lo:hi][self.seen_.data[lo:hi] > 0]
        contrib, weights = ridge_history_weights(
            self.item_factors_[js], self.user_factors_[user_idx], self.item_factors_[item_idx])
        score = float(self._user_scores(self.user_factors_[user_idx:user_idx + 1])[0, item_idx])
        reasons = bias_reasons(item_bias=self.item_bias_[item_idx])
        reasons += history_reasons(self.items_.ids[js], contrib, weight=weights)
        return score, reasons


def _refresh_users(model: _FactorRecommender, data: Interactions,
                   solve: Callable[[sp.csr_matrix], np.ndarray]) -> None:
    """``partial_fit(data)`` of both models: replace the histories of the users in ``data``
    (adding new users) and set their factors to ``solve(their rows)``, items fixed."""
    old, new = model.users_.ids, data.users.ids
    if old.dtype.kind in "iu" and new.dtype.kind not in "iu" or (
        old.dtype.kind not in "iu" and new.dtype.kind in "iu"
    ):
        raise DataError(
            f"partial_fit user ids must be of the training kind ({old.dtype}); got "
            f"{new.dtype}"
        )
    vocab = Vocabulary(np.unique(np.concatenate([old, new])))
    old_pos = vocab.index(old)
    new_pos = vocab.index(new)
    item = model.items_.index(data.item_ids)
    if (item < 0).any():
        warnings.warn(
            f"partial_fit: {int((item < 0).sum())} interaction(s) with items unknown to the "
            "model were dropped", DataWarning, stacklevel=3,
        )
    # stored rows of users not in data, moved to their new positions
    seen = model.seen_
    refreshed = np.zeros(len(vocab), dtype=bool)
    refreshed[new_pos] = True
    rows = old_pos[np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))]
    kept = ~refreshed[rows]
    ok = item >= 0
    m = sp.csr_matrix(
        (
            np.concatenate([seen.data[kept], data.values[ok]]),
            (
                np.concatenate([rows[kept], new_pos[data.user_idx[ok]]]),
                np.concatenate([seen.indices[kept], item[ok]]),
            ),
        ),
        shape=(len(vocab), len(model.items_)),
        dtype=np.float32,
    )
    m.sum_duplicates()
    m = _as_kernel_csr(m)
    X = np.zeros((len(vocab), model.user_factors_.shape[1]), dtype=np.float32)
    X[old_pos] = model.user_factors_
    X[new_pos] = solve(m[new_pos])
    model.users_ = vocab
    model.user_factors_ = X
    model.seen_ = m
    model.item_popularity_ = np.bincount(m.indices, minlength=len(model.items_)).astype(
        np.float32
    )


def _normal(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """float32 normal draws times ``scale``, drawn in float32 (no float64 temporaries the size
    of the factor table)."""
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(scale)
    return out


def _as_kernel_csr(matrix: Any) -> sp.csr_matrix:
    """CSR with sorted int32 indices, int64 indptr and float32 data (what the kernels take).

    Shares the arrays of ``matrix`` where their types already fit: the interaction log is the
    largest object a fit holds, so no copy of it is made on the way to the kernels.
    """
    m = sp.csr_matrix(matrix, dtype=np.float32)
    m.indptr = m.indptr.astype(np.int64, copy=False)
    m.indices = m.indices.astype(np.int32, copy=False)
    if not _rows_sorted(m.indptr, m.indices):
        m = m.copy()
        m.sort_indices()
        m.indptr = m.indptr.astype(np.int64, copy=False)
        m.indices = m.indices.astype(np.int32, copy=False)
    m.has_sorted_indices = True
    return m


def _rows_sorted(indptr: np.ndarray, indices: np.ndarray, chunk: int = 1 << 20) -> bool:
    """Whether the indices of every row are increasing, checked in chunks (scipy's own check
    casts the indices to the indptr's int64 first, a transient copy of the whole log)."""
    n = len(indices)
    for lo in range(0, max(n - 1, 0), chunk):
        hi = min(n, lo + chunk + 1)
        # positions k where indices[k] <= indices[k - 1]: allowed only where a row starts
        drops = np.flatnonzero(indices[lo + 1:hi] <= indices[lo:hi - 1]) + lo + 1
        if len(drops):
            at = np.searchsorted(indptr, drops)
            if not (at < len(indptr)).all() or not (indptr[np.minimum(at, len(indptr) - 1)]
                                                     == drops).all():
                return False
    return True
