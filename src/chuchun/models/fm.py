"""Factorization machines with side features, context and three solvers (SGD, ALS, MCMC)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy import special

from chuchun._exceptions import ConfigError, DataError
from chuchun._params import Param, random_state_param
from chuchun._random import check_random_state
from chuchun.data.design import FeatureSpace
from chuchun.data.features import ItemFeatures, UserFeatures
from chuchun.data.interactions import Interactions
from chuchun.kernels import fm as K
from chuchun.models._base import Recommender
from chuchun.models._results import Reason

__all__ = ["FactorizationMachine"]

_log = logging.getLogger(__name__)

#: ``callback(model, epoch, logs)``; ``logs`` holds ``train_loss`` and ``val_loss`` (or NaN);
#: returning True stops training
EpochCallback = Callable[[Any, int, dict[str, float]], Any]

# Hyperpriors of the Gibbs sampler (Rendle 2012, sec. 4): alpha_0 = beta_0 = gamma_0 = 1, mu_0 = 0
_A0 = 1.0
_B0 = 1.0
_G0 = 1.0
_MU0 = 0.0
_N_EXPLAIN_TERMS = 40


class FactorizationMachine(Recommender):
    """Second-order factorization machine over users, items, their features and context.

    .. math:: \\hat y(x) = w_0 + \\sum_{f} w_f x_f + \\sum_{f < g} \\langle v_f, v_g \\rangle
              x_f x_g

    where :math:`x` concatenates the user's block (id, attributes, optionally the items they
    rated scaled by :math:`|N(u)|^{-1/2}`), the item's block (id, attributes, optionally its
    raters) and the interaction's context (see :class:`~chuchun.data.design.FeatureSpace`).
    Over ids alone this is biased MF; with the ``rated`` block it is SVD++ (Rendle 2010).

    Tasks: ``regression`` (squared loss on ratings), ``classification`` (binary; the log's
    values must be 0/1 or -1/1; probit likelihood :math:`P(y = 1) = \\Phi(\\hat y)` with MCMC,
    logistic :math:`\\sigma(\\hat y)` with SGD; ``predict`` returns probabilities) and ``ranking``
    (BPR: :math:`\\ln\\sigma(\\hat y(u,i) - \\hat y(u,j))` over observed items :math:`i` and
    uniformly sampled items :math:`j` the user did not interact with; Rendle et al. 2009).

    Solvers:

    ``mcmc`` (default for regression and classification)
        Gibbs sampling (Rendle 2012) of :math:`w_0, w, V`, the noise precision
        :math:`\\alpha \\sim \\Gamma` (classification: :math:`\\alpha = 1` and, each sweep,
        latent utilities :math:`z_n \\sim \\mathcal N(\\hat y_n, 1)` truncated to the side of
        the label, which become the regression targets; Albert & Chib 1993), and per group :math:`g` and factor :math:`k` the prior
        means and precisions :math:`\\mu_g, \\lambda_g` under Normal-Gamma hyperpriors — no
        regularisation to tune. ``n_epochs`` sweeps, the first ``burn_in`` discarded; the
        prediction is the mean over at most ``max_kept_samples`` evenly spaced kept samples
        (all of them are stored, which is what prediction needs).
    ``als``
        Coordinate descent (libFM's ALS): each parameter set to the minimiser of the
        regularised squared loss with the others fixed, :math:`\\lambda` weighted by the
        number of rows the parameter touches.
    ``sgd`` (the only solver for ranking)
        Stochastic gradient descent with per-step L2 weights per group, learning rate
        :math:`\\eta\\gamma^t` in epoch :math:`t`, and early stopping on a validation cut
        (``validation_fraction``; the best epoch is kept).

    Sweeps of ALS and MCMC run over the relation blocks, in time linear in the number of
    ratings plus the size of the blocks (:mod:`chuchun.kernels.fm`).

    ``fit(data, user_features=None, item_features=None, context=None, implicit_from=None,
    callbacks=None)``: ids present only in the features join the catalogue (cold items can be
    recommended and ranked with ``candidates=``; cold users with attributes can be
    recommended for). ``predict``/``recommend`` score without context (an all-zero context
    block); :meth:`predict_context` takes context columns.

    Parameters
    ----------
    task, solver, n_factors, n_epochs, burn_in, max_kept_samples, init_std, learning_rate,
    learning_rate_decay, regularization, linear_regularization, group_regularization,
    validation_fraction, patience, use_ids, implicit_users, implicit_items, clip, n_threads,
    random_state, verbose
        See the declarations below. ``group_regularization`` is a string such as
        ``"rated=0.1,genres=0.02"`` overriding ``regularization`` per feature group.

    Attributes
    ----------
    w0_ : ndarray (S,), w_ : ndarray (S, p), V_ : ndarray (S, p, k), float32
        The kept parameter samples (MCMC) or the single fitted parameter set (S = 1).
    feature_names_, feature_groups_ : ndarray, name and group index of each feature
    group_names_ : list of str
    history_ : dict of lists, ``train_loss`` and ``val_loss`` per epoch
    alpha_ : float, the last sampled noise precision (MCMC)

    References
    ----------
    S. Rendle. Factorization machines. ICDM 2010.
    S. Rendle. Factorization machines with libFM. ACM TIST 3(3), 2012.
    S. Rendle. Scaling factorization machines to relational data. VLDB 2013.
    S. Rendle et al. BPR: Bayesian personalized ranking from implicit feedback. UAI 2009.
    J. H. Albert, S. Chib. Bayesian analysis of binary and polychotomous response data. JASA
    88(422), 1993.
    """

    task = Param(str, "regression", "What to fit: ratings, binary labels or a ranking.",
                 choices=("regression", "classification", "ranking"))
    solver = Param(str, None, "mcmc, als or sgd (None: sgd for ranking, mcmc otherwise).",
                   choices=("mcmc", "als", "sgd"), nullable=True)
    n_factors = Param(int, 10, "Number of latent factors.", low=1)
    n_epochs = Param(int, None, "Sweeps or epochs (None: 200 mcmc, 30 als, 30 sgd).", low=1,
                     nullable=True)
    burn_in = Param(int, 5, "MCMC samples discarded before averaging.", low=0)
    max_kept_samples = Param(int, 50, "MCMC samples kept for prediction (evenly spaced).",
                             low=1)
    init_std = Param(float, 0.1, "Std of the normal factor initialisation.", low=0)
    learning_rate = Param(float, 0.01, "SGD step size.", low=0, low_open=True)
    learning_rate_decay = Param(float, 1.0, "SGD step size multiplier per epoch.", low=0,
                                high=1, low_open=True)
    regularization = Param(float, 0.01, "L2 weight of the factors (sgd per step, als per row).",
                           low=0)
    linear_regularization = Param(float, None, "L2 weight of the linear terms (None: same).",
                                  low=0, nullable=True)
    group_regularization = Param(str, "", "Per-group L2 overrides, e.g. 'rated=0.1,age=0'.")
    validation_fraction = Param(float, 0.0, "SGD rows held out for early stopping (0: none).",
                                low=0, high=1, high_open=True)
    patience = Param(int, 2, "SGD epochs without validation improvement before stopping.",
                     low=1)
    use_ids = Param(bool, True, "One-hot user and item id features.")
    implicit_users = Param(bool, False, "Add each user's rated items (1/sqrt n) as features.")
    implicit_items = Param(bool, False, "Add each item's raters (1/sqrt n) as features.")
    clip = Param(bool, True, "Clip regression predict() to the rating scale.")
    n_threads = Param(int, None, "Threads (None: all cores); the sweeps are sequential.",
                      low=1, nullable=True)
    random_state = random_state_param("Seed of initialisation and sampling.")
    verbose = Param(bool, False, "Show a progress bar with the per-epoch losses.")

    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("exact FM decomposition: w0 + linear terms w_f x_f + pairwise terms "
                      "<v_f, v_g> x_f x_g (averaged over the kept samples)")
    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 3, "n_epochs": 12, "burn_in": 2}

    @property
    def predicts_ratings(self) -> bool:  # type: ignore[override]
        return self.task == "regression"

    # -- fitting ------------------------------------------------------------------------------
    def _fit(
        self,
        data: Interactions,
        *,
        user_features: UserFeatures | None = None,
        item_features: ItemFeatures | None = None,
        context: Sequence[str] | None = None,
        implicit_from: Interactions | None = None,
        callbacks: Sequence[EpochCallback] | None = None,
    ) -> None:
        solver = self.solver or ("sgd" if self.task == "ranking" else "mcmc")
        if self.task == "ranking" and solver != "sgd":
            raise ConfigError(f"task='ranking' needs solver='sgd'; got solver={solver!r}")
        if self.task == "classification" and solver == "als":
            raise ConfigError("task='classification' takes solver='mcmc' (probit) or 'sgd' "
                              "(logistic); got solver='als'")
        if self.task == "regression" and not data.has_ratings:
            raise DataError("task='regression' needs ratings; use task='ranking' for implicit "
                            "feedback")
        if isinstance(context, str):
            raise ConfigError(f"context must be a list of column names; got {context!r}")
        for cb in callbacks or []:
            if not callable(cb):
                raise ConfigError(f"callbacks must be callables cb(model, epoch, logs); got "
                                  f"{type(cb).__name__}")
        group_reg = _parse_group_regularization(self.group_regularization)
        fs = FeatureSpace.build(
            data, user_features=user_features, item_features=item_features,
            context=list(context) if context else None, ids=self.use_ids,
            implicit_users=self.implicit_users, implicit_items=self.implicit_items,
            implicit_from=implicit_from,
        )
        unknown_groups = sorted(set(group_reg) - set(fs.group_names))
        if unknown_groups:
            raise ConfigError(f"group_regularization names unknown group(s) {unknown_groups}; "
                              f"groups are {fs.group_names}")
        rng = check_random_state(self.random_state)
        n_epochs = self.n_epochs or (200 if solver == "mcmc" else 30)
        if solver == "mcmc" and self.burn_in >= n_epochs:
            raise ConfigError(f"burn_in ({self.burn_in}) must be smaller than n_epochs "
                              f"({n_epochs})")
        # catalogue: training ids plus feature-only ids
        uidx = fs.users.index(data.user_ids).astype(np.int32)
        iidx = fs.items.index(data.item_ids).astype(np.int32)
        self.users_, self.items_ = fs.users, fs.items
        seen = sp.csr_matrix((np.ones(len(data), np.float32) if not data.has_ratings
                              else data.values, (uidx, iidx)), shape=(len(fs.users), len(fs.items)))
        seen.sort_indices()
        self.seen_ = seen
        self.item_popularity_ = np.bincount(iidx, minlength=len(fs.items)).astype(np.float32)
        y = self._targets(data)
        ctx = fs.context_rows(data, len(data))
        p, k = fs.n_features, int(self.n_factors)
        groups = fs.feature_groups
        reg_v = np.array([group_reg.get(g, self.regularization) for g in fs.group_names])
        lin = self.regularization if self.linear_regularization is None \
            else self.linear_regularization
        reg_w = np.array([group_reg.get(g, lin) for g in fs.group_names])
        w0 = np.zeros(1)
        w = np.zeros(p)
        V = rng.normal(0.0, self.init_std, size=(p, k))
        problem = _Problem(fs, uidx, iidx, y, ctx)
        loop = _Loop(self, n_epochs, callbacks)
        try:
            if solver == "sgd":
                samples = self._fit_sgd(problem, rng, w0, w, V, groups, reg_w, reg_v, loop,
                                        n_epochs)
            else:
                samples = self._fit_cd(problem, rng, w0, w, V, groups, reg_w, reg_v, loop,
                                       n_epochs, solver == "mcmc")
        finally:
            loop.close()
        self.solver_ = solver
        self.history_ = loop.history
        self.w0_ = np.array([s[0][0] for s in samples], dtype=np.float32)
        # float32 from the start: the kept samples are most of a large model's memory
        self.w_ = np.stack([s[1] for s in samples]).astype(np.float32, copy=False)
        self.V_ = np.stack([s[2] for s in samples]).astype(np.float32, copy=False)
        for name, value in fs.to_state().items():
            setattr(self, name, value)
        self.group_names_ = list(fs.group_names)
        self._cache: dict[str, Any] = {}

    def _targets(self, data: Interactions) -> np.ndarray:
        v = data.values.astype(np.float64)
        if self.task == "classification":
            labels = np.unique(v)
            if not (set(labels.tolist()) <= {0.0, 1.0} or set(labels.tolist()) <= {-1.0, 1.0}):
                raise DataError(
                    "task='classification' needs labels 0/1 or -1/1 in the rating column; got "
                    f"values such as {labels[:5].tolist()}"
                )
            if len(labels) < 2:
                raise DataError("task='classification' needs both labels in the training log")
            return np.where(v > 0, 1.0, -1.0)
        return v

    def _fit_cd(self, pr: _Problem, rng: np.random.Generator, w0: np.ndarray, w: np.ndarray,
                V: np.ndarray, groups: np.ndarray, reg_w: np.ndarray, reg_v: np.ndarray,
                loop: _Loop, n_epochs: int, mcmc: bool) -> list[tuple[np.ndarray, ...]]:
        p, k = V.shape
        n_groups = len(reg_w)
        feat = np.arange(p, dtype=np.int32)
        probit = self.task == "classification"
        if mcmc:
            lam_w_g, mu_w_g = np.ones(n_groups), np.zeros(n_groups)
            lam_v_g, mu_v_g = np.ones((n_groups, k)), np.zeros((n_groups, k))
            alpha = 1.0
        else:
            # weighted lambda: the per-row weight times the rows each parameter touches
            touches = pr.feature_counts()
            lam_w = reg_w[groups] * touches
            lam_v = np.repeat((reg_v[groups] * touches)[:, None], k, axis=1)
            mu_w, mu_v = np.zeros(p), np.zeros((p, k))
            alpha = 1.0
        terms = pr.terms(w0, w, V)
        # probit: e is the residual of the latent utilities, which start at the labels
        e = pr.y - pr.predict(w0, terms)
        latent = pr.y.copy()
        kept = _kept_sweeps(n_epochs, self.burn_in, self.max_kept_samples) if mcmc else set()
        samples: list[tuple[np.ndarray, ...]] = []
        zeros = np.zeros(1 + p + p * k)
        for epoch in range(n_epochs):
            if mcmc:
                lam_w_g, mu_w_g, lam_v_g, mu_v_g = sample_hyperparameters(
                    rng, w, V, groups, n_groups)
                if probit:
                    score = latent - e
                    latent = sample_probit_latent(rng, score, pr.y)
                    e = latent - score
                else:
                    alpha = sample_alpha(rng, e)
                lam_w, mu_w = lam_w_g[groups], mu_w_g[groups]
                lam_v, mu_v = lam_v_g[groups], mu_v_g[groups]
                z = rng.standard_normal(1 + p + p * k)
            else:
                z = zeros
            pr.sweep(e, w0, w, V, feat, lam_w, mu_w, lam_v, mu_v, alpha, z, mcmc, terms)
            if probit:
                # negative log-likelihood of the labels under the probit link
                train = float(-np.mean(special.log_ndtr(pr.y * (latent - e))))
            else:
                train = float(np.sqrt(np.mean(e * e)))
            if mcmc and epoch in kept:
                samples.append((w0.copy(), w.astype(np.float32), V.astype(np.float32)))
            if mcmc:
                self.alpha_ = float(alpha)
            if loop.end_epoch(epoch, train, float("nan")):
                break
        if not samples:
            samples.append((w0.copy(), w.copy(), V.copy()))
        return samples

    def _fit_sgd(self, pr: _Problem, rng: np.random.Generator, w0: np.ndarray, w: np.ndarray,
                 V: np.ndarray, groups: np.ndarray, reg_w: np.ndarray, reg_v: np.ndarray,
                 loop: _Loop, n_epochs: int) -> list[tuple[np.ndarray, ...]]:
        n = len(pr.y)
        rows = rng.permutation(n)
        n_val = int(round(self.validation_fraction * n)) if self.task != "ranking" else 0
        val, train = np.sort(rows[:n_val]), rows[n_val:]
        if self.task == "regression":
            w0[0] = float(pr.y[train].mean())
        rw, rv = reg_w[groups], reg_v[groups]
        feat = np.arange(len(w), dtype=np.int32)
        best: tuple[np.ndarray, ...] | None = None
        best_loss = math.inf
        bad = 0
        for epoch in range(n_epochs):
            lr = self.learning_rate * self.learning_rate_decay ** epoch
            order = rng.permutation(train).astype(np.int64)
            if self.task == "ranking":
                neg = rng.integers(0, pr.n_items, size=len(order)).astype(np.int32)
                loss, used = pr.bpr(order, neg, w, V, feat, rw, rv, lr)
                train_loss = loss / max(used, 1)
            else:
                loss = pr.sgd(order, 0 if self.task == "regression" else 1, w0, w, V, feat,
                              rw, rv, lr)
                train_loss = math.sqrt(loss / len(order)) if self.task == "regression" \
                    else loss / len(order)
            val_loss = self._val_loss(pr, val, w0, w, V) if n_val else float("nan")
            stop = loop.end_epoch(epoch, train_loss, val_loss)
            if n_val:
                if val_loss < best_loss:
                    best_loss, bad = val_loss, 0
                    best = (w0.copy(), w.copy(), V.copy())
                else:
                    bad += 1
                    stop = stop or bad >= self.patience
            if stop:
                break
        if best is not None:
            return [best]
        return [(w0.copy(), w.copy(), V.copy())]

    def _val_loss(self, pr: _Problem, rows: np.ndarray, w0: np.ndarray, w: np.ndarray,
                  V: np.ndarray) -> float:
        pred = pr.predict_subset(rows, w0, w, V)
        y = pr.y[rows]
        if self.task == "regression":
            return float(np.sqrt(np.mean((pred - y) ** 2)))
        return float(np.mean(np.logaddexp(0.0, -y * pred)))

    # -- scoring ------------------------------------------------------------------------------
    @property
    def feature_space(self) -> FeatureSpace:
        """The fitted :class:`~chuchun.data.design.FeatureSpace`."""
        self._check_fitted()
        cache = getattr(self, "_cache", None)
        if cache is None:
            cache = self._cache = {}
        if "fs" not in cache:
            cache["fs"] = FeatureSpace.from_state(vars(self))
        fs: FeatureSpace = cache["fs"]
        return fs

    def _terms(self) -> dict[str, Any]:
        """Per user and item, averaged over samples: the constant part and the stacked
        per-sample factor sums, so that ``score = w0 + c_u + c_i + Q_u . Q_i``."""
        cache = getattr(self, "_cache", None)
        if cache is None:
            cache = self._cache = {}
        if "w0" not in cache:
            fs = self.feature_space
            cu, qu = self._side_terms(fs.user_block, 0)
            ci, qi = self._side_terms(fs.item_block, fs.n_user_features)
            cache.update(w0=float(np.mean(self.w0_)), cu=cu, qu=qu, ci=ci, qi=qi)
        return cache

    def _side_terms(self, block: sp.csr_matrix, offset: int) -> tuple[np.ndarray, np.ndarray]:
        S, _, k = self.V_.shape
        m = block.shape[1]
        c = np.zeros(block.shape[0])
        q = np.empty((block.shape[0], S * k), dtype=np.float32)
        sq = block.multiply(block).tocsr()
        for s in range(S):
            Vs = self.V_[s, offset:offset + m].astype(np.float64)
            qs = block @ Vs
            c += block @ self.w_[s, offset:offset + m].astype(np.float64)
            c += 0.5 * ((qs * qs).sum(axis=1) - sq @ (Vs * Vs).sum(axis=1))
            q[:, s * k:(s + 1) * k] = qs / math.sqrt(S)
        return c / S, q

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        t = self._terms()
        s = (t["qu"][user_idx] @ t["qi"].T).astype(np.float64)
        s += t["w0"] + t["cu"][user_idx][:, None] + t["ci"][None, :]
        return self._link(s).astype(np.float32)

    def _link(self, s: np.ndarray) -> np.ndarray:
        if self.task != "classification":
            return s
        if self.solver_ == "mcmc":
            return np.asarray(special.ndtr(s))
        return np.asarray(special.expit(s))

    def _predict_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        t = self._terms()
        s = t["w0"] + t["cu"][user_idx] + t["ci"][item_idx] + np.einsum(
            "ij,ij->i", t["qu"][user_idx], t["qi"][item_idx], dtype=np.float64)
        return self._clip(self._link(s))

    def _clip(self, s: np.ndarray) -> np.ndarray:
        if self.task == "regression" and self.clip and self.rating_scale_ is not None:
            return np.clip(s, self.rating_scale_[0], self.rating_scale_[1])
        return s

    def _fallback_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        t = self._terms()
        s = np.full(len(user_idx), t["w0"])
        ku, ki = user_idx >= 0, item_idx >= 0
        s[ku] += t["cu"][user_idx[ku]]
        s[ki] += t["ci"][item_idx[ki]]
        both = ku & ki
        s[both] += np.einsum("ij,ij->i", t["qu"][user_idx[both]], t["qi"][item_idx[both]])
        if self.task == "ranking":
            s[~ki] = np.nan
        return self._clip(self._link(s))

    def _fallback_ranking(self) -> np.ndarray:
        t = self._terms()
        return np.asarray(t["w0"] + t["ci"], dtype=np.float32)

    def _new_user_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        c, q = self._side_terms(rows, 0)
        t = self._terms()
        s = (q @ t["qi"].T).astype(np.float64) + t["w0"] + c[:, None] + t["ci"][None, :]
        return self._link(s).astype(np.float32)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._new_user_scores(self.feature_space.new_user_rows(history=history))

    def recommend_new_users(
        self, user_features: UserFeatures | None = None, histories: Any = None, k: int = 10,
        *, candidates: Any = None, exclude_seen: bool = True,
    ) -> Any:
        """Top-``k`` items for users unseen in training from their attributes and/or their
        histories (lists of item ids, parallel to ``user_features`` rows when both are given).

        Returns :class:`~chuchun.models.Recommendations` whose ``user_ids`` are the ids of
        ``user_features`` (else ``0..n-1``).
        """
        from chuchun.models._base import _check_k, _mask_seen, _top_k

        self._check_fitted()
        _check_k(k)
        if user_features is None and histories is None:
            raise ConfigError("pass user_features and/or histories")
        if user_features is not None and not isinstance(user_features, UserFeatures):
            raise DataError(f"user_features must be UserFeatures; got "
                            f"{type(user_features).__name__}")
        hist = None
        if histories is not None:
            _, hist = self._history_matrix(histories, None)
        n = len(user_features) if user_features is not None else hist.shape[0]  # type: ignore[union-attr]
        if hist is not None and hist.shape[0] != n:
            raise DataError(f"{n} feature rows but {hist.shape[0]} histories")
        rows = self.feature_space.new_user_rows(user_features, hist, n)
        scores = self._new_user_scores(rows)
        if exclude_seen and hist is not None:
            _mask_seen(scores, hist, np.arange(n))
        allowed = self._candidate_mask(candidates, "fallback")
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        k_eff = min(k, len(self.items_))
        idx = np.full((n, k), -1, dtype=np.int32)
        vals = np.full((n, k), np.nan, dtype=np.float32)
        idx[:, :k_eff], vals[:, :k_eff] = _top_k(scores, k_eff)
        ids = user_features.ids.ids if user_features is not None else np.arange(n)
        return self._package(ids, idx, vals)

    def predict_context(self, users: Any, items: Any, context: dict[str, Any]) -> np.ndarray:
        """Predictions of known (user, item) pairs in the given context (one value per pair
        for each context column the model was fitted with)."""
        self._check_fitted()
        u = self._map(self.users_, np.asarray(users).reshape(-1), "user", "error")
        i = self._map(self.items_, np.asarray(items).reshape(-1), "item", "error")
        fs = self.feature_space
        ctx = fs.context_rows(context, len(u))
        off = fs.n_user_features + fs.n_item_features
        S, p, k = self.V_.shape
        out = np.zeros(len(u))
        for s in range(S):
            V = self.V_[s].astype(np.float64)
            w = self.w_[s].astype(np.float64)
            lu, qu, qqu = _terms_of(fs.user_block, 0, w, V)
            li, qi, qqi = _terms_of(fs.item_block, fs.n_user_features, w, V)
            lc, qc, qqc = _terms_of(ctx, off, w, V)
            pred = np.empty(len(u))
            K.predict_rows(u, i, float(self.w0_[s]), lu, qu, qqu, li, qi, qqi, lc, qc, qqc,
                           pred)
            out += pred
        return self._clip(self._link(out / S))

    # -- explanations -------------------------------------------------------------------------
    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        fs = self.feature_space
        ur, ir = fs.user_block[user_idx], fs.item_block[item_idx]
        f = np.r_[ur.indices, ir.indices + fs.n_user_features].astype(np.int64)
        x = np.r_[ur.data, ir.data].astype(np.float64)
        S, _, k = self.V_.shape
        w0 = float(np.mean(self.w0_.astype(np.float64)))
        lin = self.w_[:, f].astype(np.float64).mean(axis=0) * x
        M = self.V_[:, f, :].astype(np.float64).transpose(1, 0, 2).reshape(len(f), S * k)
        G = (M @ M.T) / S * np.outer(x, x)
        a, b = np.triu_indices(len(f), 1)
        pair = G[a, b]
        # for classification the reasons add up to the logit, which is the score shown
        score = w0 + lin.sum() + pair.sum()
        names = fs.feature_names
        # the item's id feature, if any: ``explain`` shows it by the item's label
        item_group = fs.group_names.index("item") if "item" in fs.group_names else -1
        own = f[fs.feature_groups[f] == item_group] if item_group >= 0 else f[:0]
        id_col = int(own[0]) if len(own) else -1
        item_id = _plain(fs.items.ids[item_idx])

        def about(col: int) -> dict[str, Any]:
            return {"item": item_id, "item_feature": str(names[col])} if col == id_col else {}

        reasons = [Reason(kind="bias", id="w0", contribution=w0)]
        for j in range(len(f)):
            reason = self._feature_reason(fs, int(f[j]), float(lin[j]), float(x[j]))
            if int(f[j]) == id_col:
                reason = Reason(kind=reason.kind, id=reason.id, contribution=reason.contribution,
                                detail=about(id_col))
            reasons.append(reason)
        # pairs within the user's (item's) own features shift every item's (user's) score
        # alike: one reason each; the user x item pairs are the personal part, listed
        side_a, side_b = a < len(ur.indices), b < len(ur.indices)
        for mask, label in ((side_a & side_b, "user's own pairwise terms (same for every item)"),
                            (~side_a & ~side_b, "item's own pairwise terms (same for every user)")):
            if mask.any():
                reasons.append(Reason(kind="bias", id=label, contribution=float(pair[mask].sum()),
                                      detail={"n_terms": int(mask.sum())}))
        cross = np.flatnonzero(side_a != side_b)
        order = cross[np.argsort(-np.abs(pair[cross]), kind="stable")]
        top, rest = order[:_N_EXPLAIN_TERMS], order[_N_EXPLAIN_TERMS:]
        for t in top:
            fa, fb = int(f[a[t]]), int(f[b[t]])
            reasons.append(Reason(kind="interaction", id=f"{names[fa]} × {names[fb]}",
                                  contribution=float(pair[t]),
                                  detail={"x": float(x[a[t]] * x[b[t]]),
                                          **about(fa), **about(fb)}))
        if len(rest):
            gn = fs.group_names
            ga, gb = fs.feature_groups[f[a[rest]]], fs.feature_groups[f[b[rest]]]
            lo, hi = np.minimum(ga, gb), np.maximum(ga, gb)
            key = lo * len(gn) + hi
            for kk in np.unique(key):
                sel = key == kk
                reasons.append(Reason(
                    kind="interaction",
                    id=f"{gn[kk // len(gn)]} × {gn[kk % len(gn)]} (other terms)",
                    contribution=float(pair[rest][sel].sum()),
                    detail={"n_terms": int(sel.sum())}))
        return float(score), reasons

    def _feature_reason(self, fs: FeatureSpace, f: int, contribution: float, x: float) -> Reason:
        name = str(fs.feature_names[f])
        group = fs.group_names[int(fs.feature_groups[f])]
        if group == "rated":
            item = fs.items.ids[self._rated_item(fs, f)]
            return Reason(kind="item", id=_plain(item), contribution=contribution,
                          detail={"feature": name, "x": x})
        if group in ("user", "item"):
            return Reason(kind="bias", id=f"{name} (linear)", contribution=contribution)
        return Reason(kind="feature", id=name, contribution=contribution, detail={"x": x})

    @staticmethod
    def _rated_item(fs: FeatureSpace, f: int) -> int:
        groups = fs.feature_groups[:fs.n_user_features]
        first = int(np.flatnonzero(groups == fs.group_names.index("rated"))[0])
        return f - first

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        qi = self._terms()["qi"].astype(np.float64)
        norms = np.linalg.norm(qi, axis=1)
        norms[norms == 0] = 1.0
        unit = qi / norms[:, None]
        return unit[item_idx] @ unit.T

    @classmethod
    def _test_fit_kwargs(cls, data: Interactions) -> dict[str, Any]:
        import pandas as pd

        ids = data.items.ids
        frame = pd.DataFrame({"item": ids, "group": [f"g{j % 3}" for j in range(len(ids))]})
        return {"item_features": ItemFeatures.from_pandas(frame, categorical=["group"])}


# -- the training problem -----------------------------------------------------------------------
class _Problem:
    """Arrays the kernels need: rows, blocks in both orientations, context."""

    def __init__(self, fs: FeatureSpace, uidx: np.ndarray, iidx: np.ndarray, y: np.ndarray,
                 ctx: sp.csr_matrix) -> None:
        self.fs = fs
        self.uidx, self.iidx, self.y = uidx, iidx, y.astype(np.float64)
        self.n_items = len(fs.items)
        self.U = _csr64(fs.user_block)
        self.I = _csr64(fs.item_block)
        self.C = _csr64(ctx)
        self.Uc, self.Ic, self.Cc = _csc64(self.U), _csc64(self.I), _csc64(self.C)
        self.cnt_u = np.bincount(uidx, minlength=self.U.shape[0]).astype(np.float64)
        self.cnt_i = np.bincount(iidx, minlength=self.I.shape[0]).astype(np.float64)
        self.pu, self.pi = fs.n_user_features, fs.n_item_features
        longest = max(np.diff(self.U.indptr).max(initial=0) + np.diff(self.I.indptr).max(
            initial=0) + np.diff(self.C.indptr).max(initial=0), 1)
        self.feats = np.empty(longest, dtype=np.int64)
        self.vals = np.empty(longest)
        seen = sp.csr_matrix((np.ones(len(uidx)), (uidx, iidx)),
                             shape=(self.U.shape[0], self.n_items))
        seen.sort_indices()
        self.seen_indptr = seen.indptr.astype(np.int64)
        self.seen_indices = seen.indices.astype(np.int32)

    def feature_counts(self) -> np.ndarray:
        """Number of training rows in which each feature is non-zero."""
        u = _pattern(self.U).T @ self.cnt_u
        i = _pattern(self.I).T @ self.cnt_i
        c = np.asarray(_pattern(self.C).sum(axis=0)).ravel()
        return np.r_[u, i, c].astype(np.float64)

    def terms(self, w0: np.ndarray, w: np.ndarray, V: np.ndarray) -> dict[str, np.ndarray]:
        k = V.shape[1]
        out: dict[str, np.ndarray] = {}
        for name, m, off in (("u", self.U, 0), ("i", self.I, self.pu),
                             ("c", self.C, self.pu + self.pi)):
            n = m.shape[0]
            lin_b, q_b, qq_b = np.empty(n), np.empty((n, k)), np.empty((n, k))
            K.block_terms(m.indptr, m.indices, m.data, off, w, V, lin_b, q_b, qq_b)
            out["lin_" + name], out["q_" + name], out["qq_" + name] = lin_b, q_b, qq_b
            # factor-major views for the sweeps (see kernels.fm.cd_sweep)
            out["qT_" + name] = np.ascontiguousarray(q_b.T)
            out["qqT_" + name] = np.ascontiguousarray(qq_b.T)
        return out

    def predict(self, w0: np.ndarray, t: dict[str, np.ndarray]) -> np.ndarray:
        out = np.empty(len(self.y))
        K.predict_rows(self.uidx, self.iidx, float(w0[0]), t["lin_u"], t["q_u"], t["qq_u"],
                       t["lin_i"], t["q_i"], t["qq_i"], t["lin_c"], t["q_c"], t["qq_c"], out)
        return out

    def predict_subset(self, rows: np.ndarray, w0: np.ndarray, w: np.ndarray,
                       V: np.ndarray) -> np.ndarray:
        t = self.terms(w0, w, V)
        out = np.empty(len(rows))
        K.predict_rows(self.uidx[rows], self.iidx[rows], float(w0[0]), t["lin_u"], t["q_u"],
                       t["qq_u"], t["lin_i"], t["q_i"], t["qq_i"], t["lin_c"][rows],
                       t["q_c"][rows], t["qq_c"][rows], out)
        return out

    def sweep(self, e: np.ndarray, w0: np.ndarray, w: np.ndarray, V: np.ndarray,
              group: np.ndarray, lam_w: np.ndarray, mu_w: np.ndarray, lam_v: np.ndarray,
              mu_v: np.ndarray, alpha: float, z: np.ndarray, mcmc: bool,
              t: dict[str, np.ndarray]) -> None:
        Uc, Ic, Cc = self.Uc, self.Ic, self.Cc
        K.cd_sweep(self.uidx, self.iidx, e, w0, w, V, group, lam_w, mu_w,
                   np.ascontiguousarray(lam_v), np.ascontiguousarray(mu_v), 0.0, alpha, z,
                   mcmc, self.cnt_u, Uc.indptr, Uc.indices, Uc.data, self.cnt_i, Ic.indptr,
                   Ic.indices, Ic.data, Cc.indptr, Cc.indices, Cc.data, self.pu, self.pi,
                   t["lin_u"], t["qT_u"], t["qqT_u"], t["lin_i"], t["qT_i"], t["qqT_i"],
                   t["lin_c"], t["qT_c"], t["qqT_c"])

    def sgd(self, order: np.ndarray, task: int, w0: np.ndarray, w: np.ndarray, V: np.ndarray,
            group: np.ndarray, reg_w: np.ndarray, reg_v: np.ndarray, lr: float) -> float:
        return float(K.sgd_epoch(
            order, self.uidx, self.iidx, self.y, task, w0, w, V, group, reg_w, reg_v, lr,
            self.U.indptr, self.U.indices, self.U.data, self.I.indptr, self.I.indices,
            self.I.data, self.C.indptr, self.C.indices, self.C.data, self.pu, self.pi,
            self.feats, self.vals, np.empty(V.shape[1])))

    def bpr(self, order: np.ndarray, neg: np.ndarray, w: np.ndarray, V: np.ndarray,
            group: np.ndarray, reg_w: np.ndarray, reg_v: np.ndarray,
            lr: float) -> tuple[float, int]:
        k = V.shape[1]
        loss, used = K.bpr_epoch(
            order, self.uidx, self.iidx, neg, w, V, group, reg_w, reg_v, lr,
            self.U.indptr, self.U.indices, self.U.data, self.I.indptr, self.I.indices,
            self.I.data, self.C.indptr, self.C.indices, self.C.data, self.pu, self.pi,
            self.seen_indptr, self.seen_indices, np.empty(k), np.empty(k), np.empty(k),
            np.empty(k), np.empty(k))
        return float(loss), int(used)


def sample_hyperparameters(
    rng: np.random.Generator, w: np.ndarray, V: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw per-group prior precisions and means given the parameters (Rendle 2012, sec. 4).

    For each group :math:`g` with :math:`n` parameters :math:`\\theta` (the linear terms, and
    each factor column separately; mean :math:`\\bar\\theta`) the Normal-Gamma posterior is
    drawn exactly:

    .. math:: \\lambda_g \\sim \\Gamma\\Big(\\tfrac{\\alpha_0 + n}{2},\\;
              \\text{rate}\\;\\tfrac12\\big(\\beta_0 + \\sum(\\theta - \\bar\\theta)^2
              + \\tfrac{n\\gamma_0}{n + \\gamma_0}(\\bar\\theta - \\mu_0)^2\\big)\\Big),
              \\quad
              \\mu_g \\sim \\mathcal N\\Big(\\tfrac{n\\bar\\theta + \\gamma_0\\mu_0}{n + \\gamma_0},
              \\tfrac{1}{(n + \\gamma_0)\\lambda_g}\\Big)

    with :math:`\\alpha_0 = \\beta_0 = \\gamma_0 = 1, \\mu_0 = 0`. Draw order: the standard
    gammas of all groups x (1 + k) (row-major: linear term, then factors), then the normals.
    """
    n_g = np.bincount(groups, minlength=n_groups).astype(np.float64)[:, None]
    theta = np.concatenate([w[:, None], V], axis=1)  # p x (1 + k)
    member = sp.csr_matrix((np.ones(len(groups)), (groups, np.arange(len(groups)))),
                           shape=(n_groups, len(groups)))
    bar = (member @ theta) / np.maximum(n_g, 1.0)
    dev = member @ ((theta - bar[groups]) ** 2)
    shape = np.broadcast_to((_A0 + n_g) / 2.0, dev.shape)
    rate = (_B0 + dev + n_g * _G0 / (n_g + _G0) * (bar - _MU0) ** 2) / 2.0
    lam = rng.standard_gamma(shape) / rate
    mean = (n_g * bar + _G0 * _MU0) / (n_g + _G0)
    mu = mean + rng.standard_normal(mean.shape) / np.sqrt((n_g + _G0) * lam)
    return lam[:, 0].copy(), mu[:, 0].copy(), lam[:, 1:].copy(), mu[:, 1:].copy()


def sample_probit_latent(rng: np.random.Generator, mean: np.ndarray,
                         labels: np.ndarray) -> np.ndarray:
    """Latent utilities of probit regression given the current scores (Albert & Chib 1993).

    .. math:: z_n \\sim \\mathcal N(\\hat y_n, 1)\\ \\text{truncated to}\\ z_n > 0
              \\text{ if } y_n = 1,\\ z_n < 0 \\text{ if } y_n = -1,

    drawn by inversion in log space, stable however far :math:`\\hat y_n` lies from the
    allowed side: with :math:`u \\sim U(0, 1)`,
    :math:`z = \\hat y - y\\,\\Phi^{-1}\\big(u\\,\\Phi(y\\hat y)\\big)`. One uniform per row.
    """
    u = rng.random(len(mean))
    eps = special.ndtri_exp(np.log(u) + special.log_ndtr(labels * mean))
    return np.asarray(mean - labels * eps)


def sample_alpha(rng: np.random.Generator, e: np.ndarray) -> float:
    """Noise precision :math:`\\alpha \\sim \\Gamma((\\alpha_0 + N)/2, \\text{rate}\\,
    (\\beta_0 + \\sum e^2)/2)` given the residuals."""
    shape = (_A0 + len(e)) / 2.0
    rate = (_B0 + float(np.square(e).sum())) / 2.0
    return float(rng.standard_gamma(shape) / rate)


def _kept_sweeps(n_epochs: int, burn_in: int, max_kept: int) -> set[int]:
    post = np.arange(burn_in, n_epochs)
    if len(post) <= max_kept:
        return set(post.tolist())
    pick = np.unique(np.round(np.linspace(burn_in, n_epochs - 1, max_kept)).astype(int))
    return set(pick.tolist())


def _terms_of(m: sp.csr_matrix, offset: int, w: np.ndarray,
              V: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = _csr64(m)
    n, k = m.shape[0], V.shape[1]
    lin, q, qq = np.empty(n), np.empty((n, k)), np.empty((n, k))
    K.block_terms(m.indptr, m.indices, m.data, offset, w, V, lin, q, qq)
    return lin, q, qq


def _csc64(m: sp.csr_matrix) -> sp.csc_matrix:
    c = m.tocsc()
    c.sort_indices()
    c.indptr = c.indptr.astype(np.int64)
    c.indices = c.indices.astype(np.int32)
    return c


def _pattern(m: sp.csr_matrix) -> sp.csr_matrix:
    """The non-zero pattern of ``m`` as ones."""
    return sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)


def _csr64(m: Any) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64)
    m.sort_indices()
    m.indptr = m.indptr.astype(np.int64)
    m.indices = m.indices.astype(np.int32)
    return m


def _parse_group_regularization(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in [t.strip() for t in text.split(",") if t.strip()]:
        name, sep, value = part.rpartition("=")
        try:
            out[name.strip()] = float(value)
            if not sep or not name.strip() or out[name.strip()] < 0:
                raise ValueError(part)
        except ValueError:
            raise ConfigError(
                "group_regularization must look like 'group=value,group=value' with values "
                f">= 0; got {text!r}"
            ) from None
    return out


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


class _Loop:
    """Per-epoch history, callbacks and progress bar."""

    def __init__(self, model: Recommender, n_epochs: int,
                 callbacks: Sequence[EpochCallback] | None) -> None:
        from chuchun import _progress

        self.model = model
        self.callbacks = list(callbacks or [])
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        self.bar = None
        if _progress._ENABLED or getattr(model, "verbose", False):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n_epochs, desc=type(model).__name__, leave=False,
                            dynamic_ncols=True, disable=None)

    def end_epoch(self, epoch: int, train: float, val: float) -> bool:
        self.history["train_loss"].append(float(train))
        self.history["val_loss"].append(float(val))
        logs = {"train_loss": float(train), "val_loss": float(val)}
        _log.debug("%s epoch %d: %s", type(self.model).__name__, epoch, logs)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(train=f"{train:.4f}", val=f"{val:.4f}")
        stop = False
        for cb in self.callbacks:
            stop = bool(cb(self.model, epoch, logs)) or stop
        return stop

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
