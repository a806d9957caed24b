"""Hybrid matrix factorisation: users and items as sums of their feature embeddings (LightFM)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy import optimize

from chuchun._exceptions import ConfigError, DataError, DataWarning
from chuchun._params import Param, random_state_param
from chuchun._random import check_random_state
from chuchun.data.design import FeatureSpace
from chuchun.data.features import ItemFeatures, UserFeatures
from chuchun.data.interactions import Interactions
from chuchun.kernels.hybrid import hybrid_epoch
from chuchun.models._base import Recommender, _check_k, _plain, _top_k
from chuchun.models._results import Reason, Recommendations
from chuchun.models.fm import EpochCallback, _Loop

__all__ = ["HybridMF"]


class HybridMF(Recommender):
    """Hybrid matrix factorisation for cold start (Kula 2015, the LightFM model).

    Users and items are described by features — their id (for ids seen in training) and their
    attributes — each row scaled to sum to one. Every feature :math:`f` has an embedding
    :math:`e_f` and a bias :math:`b_f`; a user is the sum of its features,
    :math:`p_u = \\sum_f x_{uf} e_f`, an item likewise, and

    .. math:: s_{ui} = p_u^\\top q_i + \\beta_u + \\beta_i, \\qquad
              \\beta_u = \\sum_f x_{uf} b_f,\\; \\beta_i = \\sum_f x_{if} b_f.

    Trained on implicit feedback with ``loss="warp"`` (Weston et al. 2011: sample items until
    one scores within a margin of 1 of the positive, weight the step by
    :math:`\\ln\\lfloor (n-1)/t \\rfloor` after :math:`t` draws) or ``loss="bpr"``
    (:math:`\\ln\\sigma(s_{ui} - s_{uj})`), with AdaGrad steps (kernel:
    :mod:`chuchun.kernels.hybrid`). Items and users that have only features (no interactions)
    are scored from their attribute embeddings alone, so new items rank among old ones and
    ``recommend(users, candidates=new_items)`` ranks a set of new items; new users are served by
    :meth:`recommend_new_users` from their attributes.

    Two options serve items without interactions (*cold* items) better:

    ``item_id_dropout``
        each training step, with this probability, represents its positive and negative item
        by their attributes alone (the id feature dropped, the row rescaled to sum to one), so
        the attribute embeddings learn to rank items the way cold items must be ranked.
    ``cold_item_prior``
        a prior for cold items learned from the items that arrived during the latest
        ``cold_item_prior`` share of the log (by interaction count; needs timestamps and item
        attributes). For those arrivals, the interactions after their first one follow a
        Poisson model with the time since arrival as exposure,

        .. math:: y_i \\sim \\mathrm{Poisson}\\big(e_i \\exp(c + \\theta^\\top a_i)\\big),
                  \\qquad \\min_{c,\\theta}\\ \\sum_i \\big(e_i e^{c + \\theta^\\top a_i}
                  - y_i (c + \\theta^\\top a_i)\\big) + \\tfrac12 \\|\\theta\\|^2

        over their raw attribute rows :math:`a_i` (L-BFGS). A cold item's bias becomes the
        cold items' mean attribute bias plus its centred log rate
        :math:`\\theta^\\top a_i - \\overline{\\theta^\\top a}`: among cold items the order of
        the biases is that of the learned arrival rates (a log rate enters a multinomial choice
        model's utility with coefficient one), while their level against the items with
        interactions stays the model's own.

    ``fit(data, user_features=None, item_features=None, callbacks=None)``.

    Parameters
    ----------
    loss, n_factors, n_epochs, learning_rate, regularization, max_sampled, init_std,
    use_ids, item_id_dropout, cold_item_prior, n_threads, random_state, verbose
        See the declarations below.

    Attributes
    ----------
    feature_embeddings_ : ndarray (p, k) float32, user-side features first, then item-side
    feature_biases_ : ndarray (p,) float32
    n_user_features_ : int
    feature_names_ : ndarray of str
    history_ : dict of lists, ``train_loss`` per epoch
    item_prior_ : ndarray (n_items,) float32, the bias of each cold item that replaces its
        attribute bias (zero for items with interactions, and everywhere without
        ``cold_item_prior``)
    prior_coef_ : ndarray (1 + n_attributes,) float32, :math:`c` and :math:`\\theta` of the
        arrival-rate model (empty without ``cold_item_prior``)

    References
    ----------
    M. Kula. Metadata embeddings for user and item cold-start recommendations. CBRecSys 2015.
    J. Weston, S. Bengio, N. Usunier. WSABIE: scaling up to large vocabulary image annotation.
    IJCAI 2011.
    M. Volkovs, G. Yu, T. Poutanen. DropoutNet: addressing cold start in recommender systems.
    NeurIPS 2017 (input dropout of the preference part so content learns to stand alone).
    """

    loss = Param(str, "warp", "Ranking loss.", choices=("warp", "bpr"))
    n_factors = Param(int, 32, "Number of latent factors.", low=1)
    n_epochs = Param(int, 30, "Passes over the interactions.", low=1)
    learning_rate = Param(float, 0.05, "AdaGrad step size.", low=0, low_open=True)
    regularization = Param(float, 1e-6, "L2 weight of embeddings and biases.", low=0)
    max_sampled = Param(int, 10, "WARP: most negatives drawn per positive.", low=1)
    init_std = Param(float, 0.01, "Std of the normal embedding initialisation.", low=0)
    use_ids = Param(bool, True, "Give every training user and item an id feature.")
    item_id_dropout = Param(float, 0.0, "Chance that a step shows its items by attributes only.",
                            low=0, high=1, high_open=True)
    cold_item_prior = Param(float, 0.0, "Latest share of the log whose arrivals teach a cold-item "
                            "prior (0: none).", low=0, high=1, high_open=True)
    n_threads = Param(int, None, "Threads (None: all cores); training is sequential.", low=1,
                      nullable=True)
    random_state = random_state_param("Seed of initialisation and sampling.")
    verbose = Param(bool, False, "Show a progress bar with the per-epoch loss.")

    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("exact decomposition of p_u . q_i + item bias over pairs of user and "
                      "item features: x_uf x_ig <e_f, e_g>, plus x_ig b_g (a cold item's "
                      "learned arrival prior in place of b_g with cold_item_prior)")
    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 4, "n_epochs": 5}

    def _fit(
        self,
        data: Interactions,
        *,
        user_features: UserFeatures | None = None,
        item_features: ItemFeatures | None = None,
        callbacks: Sequence[EpochCallback] | None = None,
    ) -> None:
        fs = FeatureSpace.build(data, user_features=user_features,
                                item_features=item_features, ids=self.use_ids)
        if fs.n_user_features == 0 or fs.n_item_features == 0:
            raise ConfigError("HybridMF needs a feature for users and for items: keep "
                              "use_ids=True or pass user_features and item_features")
        attr_cols = self._attribute_columns(fs)
        if self.cold_item_prior > 0 and len(attr_cols) == 0:
            raise ConfigError("cold_item_prior needs item attributes: pass item_features")
        if self.cold_item_prior > 0 and data.timestamps is None:
            raise DataError("cold_item_prior needs the interactions' timestamps (the arrival "
                            "of items is read from them); the log has none")
        rng = check_random_state(self.random_state)
        uidx = fs.users.index(data.user_ids).astype(np.int32)
        iidx = fs.items.index(data.item_ids).astype(np.int32)
        self.users_, self.items_ = fs.users, fs.items
        seen = sp.csr_matrix((data.values, (uidx, iidx)), shape=(len(fs.users), len(fs.items)),
                             dtype=np.float32)
        seen.sort_indices()
        self.seen_ = seen
        self.item_popularity_ = np.bincount(iidx, minlength=len(fs.items)).astype(np.float32)
        fu, fi = _sum_rows(fs.user_block), _sum_rows(fs.item_block)
        dropout = float(self.item_id_dropout)
        fa = _sum_rows(fs.item_block[:, attr_cols]) if dropout > 0 else fi
        if dropout > 0:
            # attribute columns keep their place in the item block
            fa = _sum_rows(sp.csr_matrix((fa.data, attr_cols[fa.indices], fa.indptr),
                                         shape=fi.shape))
        pu, pi, k = fu.shape[1], fi.shape[1], int(self.n_factors)
        Eu = rng.normal(0.0, self.init_std, (pu, k))
        Ei = rng.normal(0.0, self.init_std, (pi, k))
        bu, bi = np.zeros(pu), np.zeros(pi)
        gEu, gEi, gbu, gbi = np.ones((pu, k)), np.ones((pi, k)), np.ones(pu), np.ones(pi)
        pattern = seen.copy()
        indptr, indices = pattern.indptr.astype(np.int64), pattern.indices.astype(np.int32)
        n_draws = self.max_sampled if self.loss == "warp" else 1
        keep_all = np.zeros(len(uidx), dtype=np.uint8)
        loop = _Loop(self, self.n_epochs, callbacks)
        try:
            for epoch in range(self.n_epochs):
                order = rng.permutation(len(uidx)).astype(np.int64)
                negs = rng.integers(0, len(fs.items), (len(order), n_draws)).astype(np.int32)
                drop = ((rng.random(len(order)) < dropout).astype(np.uint8) if dropout > 0
                        else keep_all)
                total, used = hybrid_epoch(
                    order, uidx, iidx, negs, 0 if self.loss == "bpr" else 1, len(fs.items),
                    fu.indptr, fu.indices, fu.data, fi.indptr, fi.indices, fi.data,
                    Eu, bu, Ei, bi, gEu, gbu, gEi, gbi, float(self.learning_rate),
                    float(self.regularization), indptr, indices, drop, fa.indptr, fa.indices,
                    fa.data)
                if loop.end_epoch(epoch, total / max(used, 1), float("nan")):
                    break
        finally:
            loop.close()
        self.history_ = loop.history
        self.feature_embeddings_ = np.vstack([Eu, Ei]).astype(np.float32)
        self.feature_biases_ = np.r_[bu, bi].astype(np.float32)
        self.n_user_features_ = pu
        self.user_rows_ = fu.astype(np.float32)
        self.item_rows_ = fi.astype(np.float32)
        self.feature_names_ = fs.feature_names
        self.fs_meta_: dict[str, Any] = {"group_names": list(fs.group_names), "context_spec": [],
                         "options": fs.options}
        self.feature_groups_ = fs.feature_groups
        self.item_prior_ = np.zeros(len(fs.items), dtype=np.float32)
        self.prior_coef_ = np.zeros(0, dtype=np.float32)
        if self.cold_item_prior > 0:
            raw = sp.csr_matrix(fs.item_block[:, attr_cols], dtype=np.float64)
            coef, log_rate = _arrival_rates(data.timestamps, iidx, raw,  # type: ignore[arg-type]
                                            float(self.cold_item_prior))
            self.prior_coef_ = coef.astype(np.float32)
            cold = self.item_popularity_ == 0
            if cold.any():
                attr_bias = fi[cold] @ bi
                self.item_prior_[cold] = (attr_bias.mean() + log_rate[cold]
                                          - log_rate[cold].mean())
        self._cache: dict[str, Any] = {}

    @staticmethod
    def _attribute_columns(fs: FeatureSpace) -> np.ndarray:
        """Item-block columns that are attributes (not the item id)."""
        groups = fs.feature_groups[fs.n_user_features:]
        if "item" in fs.group_names and fs.options.get("ids", True):
            return np.flatnonzero(groups != fs.group_names.index("item")).astype(np.int32)
        return np.arange(len(groups), dtype=np.int32)

    # -- representations ----------------------------------------------------------------------
    def _reps(self) -> dict[str, np.ndarray]:
        cache = getattr(self, "_cache", None)
        if cache is None:
            cache = self._cache = {}
        if "P" not in cache:
            pu = self.n_user_features_
            E = self.feature_embeddings_.astype(np.float64)
            b = self.feature_biases_.astype(np.float64)
            cache["P"] = self.user_rows_ @ E[:pu]
            cache["Q"] = self.item_rows_ @ E[pu:]
            bi = self.item_rows_ @ b[pu:]
            prior = getattr(self, "item_prior_", None)
            if prior is not None and len(getattr(self, "prior_coef_", ())):
                cold = self.item_popularity_ == 0
                bi[cold] = prior[cold]
            cache["bi"] = bi
        return cache

    def _user_reps(self, rows: sp.csr_matrix) -> np.ndarray:
        E = self.feature_embeddings_[: self.n_user_features_].astype(np.float64)
        return np.asarray(rows @ E)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        r = self._reps()
        return (r["P"][user_idx] @ r["Q"].T + r["bi"][None, :]).astype(np.float32)

    def _predict_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        r = self._reps()
        return np.einsum("ij,ij->i", r["P"][user_idx], r["Q"][item_idx]) + r["bi"][item_idx]

    def _fallback_ranking(self) -> np.ndarray:
        return np.asarray(self._reps()["bi"], dtype=np.float32)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Fold-in: a new user is represented by the mean representation of the items in their
        history (no user-side features are known for them)."""
        r = self._reps()
        h = sp.csr_matrix(history, dtype=np.float64)
        counts = np.diff(h.indptr)
        h.data[:] = 1.0
        p = np.asarray(h @ r["Q"]) / np.maximum(counts, 1)[:, None]
        return (p @ r["Q"].T + r["bi"][None, :]).astype(np.float32)

    def recommend_new_users(
        self, user_features: UserFeatures, k: int = 10, *, candidates: Any = None,
    ) -> Recommendations:
        """Top-``k`` items for users unseen in training, from their attributes alone."""
        self._check_fitted()
        _check_k(k)
        if not isinstance(user_features, UserFeatures):
            raise DataError(f"user_features must be UserFeatures; got "
                            f"{type(user_features).__name__}")
        rows = _sum_rows(self._space().new_user_rows(user_features, None, len(user_features)))
        r = self._reps()
        scores = (self._user_reps(rows) @ r["Q"].T + r["bi"][None, :]).astype(np.float32)
        allowed = self._candidate_mask(candidates, "fallback")
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        n = scores.shape[0]
        k_eff = min(k, len(self.items_))
        idx = np.full((n, k), -1, dtype=np.int32)
        vals = np.full((n, k), np.nan, dtype=np.float32)
        idx[:, :k_eff], vals[:, :k_eff] = _top_k(scores, k_eff)
        return self._package(user_features.ids.ids, idx, vals)

    def _space(self) -> FeatureSpace:
        pu = self.n_user_features_
        return FeatureSpace(
            users=self.users_, items=self.items_, user_block=self.user_rows_,
            item_block=self.item_rows_, feature_names=self.feature_names_,
            feature_groups=self.feature_groups_, group_names=self.fs_meta_["group_names"],
            options={**self.fs_meta_["options"], "n_user_features": pu})

    # -- explanations and neighbours ----------------------------------------------------------
    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        pu = self.n_user_features_
        E = self.feature_embeddings_.astype(np.float64)
        b = self.feature_biases_.astype(np.float64)
        ur, ir = self.user_rows_[user_idx], self.item_rows_[item_idx]
        fu, xu = ur.indices, ur.data.astype(np.float64)
        fi, xi = ir.indices, ir.data.astype(np.float64)
        names = self.feature_names_
        # the item's id feature, if it has one: labelled with the item's name by ``explain``
        id_col = -1
        groups = self.feature_groups_
        if "item" in self.fs_meta_["group_names"]:
            item_group = self.fs_meta_["group_names"].index("item")
            own = fi[groups[pu + fi] == item_group]
            id_col = int(own[0]) if len(own) else -1
        item_id = _plain(self.items_.ids[item_idx])

        def about(g: int) -> dict[str, Any]:
            return ({"item": item_id, "item_feature": str(names[pu + g])} if g == id_col
                    else {})

        reasons = []
        if len(getattr(self, "prior_coef_", ())) and self.item_popularity_[item_idx] == 0:
            reasons.append(Reason(kind="popularity", id="learned arrival rate of new items",
                                  contribution=float(self.item_prior_[item_idx])))
        else:
            for g, x in zip(fi, xi, strict=True):
                reasons.append(Reason(kind="bias", id=f"{names[pu + g]} (bias)",
                                      contribution=float(x * b[pu + g]), detail=about(int(g))))
        G = (E[fu] @ E[pu + fi].T) * np.outer(xu, xi)
        for a in range(len(fu)):
            for c in range(len(fi)):
                reasons.append(Reason(
                    kind="interaction", id=f"{names[fu[a]]} × {names[pu + fi[c]]}",
                    contribution=float(G[a, c]), detail=about(int(fi[c]))))
        score = float(sum(r.contribution for r in reasons))
        return score, reasons

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        Q = self._reps()["Q"]
        norms = np.linalg.norm(Q, axis=1)
        norms[norms == 0] = 1.0
        unit = Q / norms[:, None]
        return unit[item_idx] @ unit.T

    @classmethod
    def _test_fit_kwargs(cls, data: Interactions) -> dict[str, Any]:
        import pandas as pd

        ids = data.items.ids
        frame = pd.DataFrame({"item": ids, "group": [f"g{j % 3}" for j in range(len(ids))]})
        return {"item_features": ItemFeatures.from_pandas(frame, categorical=["group"])}


def _sum_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum to one (in absolute value); empty rows stay empty."""
    m = sp.csr_matrix(m, dtype=np.float64)
    s = np.asarray(abs(m).sum(axis=1)).ravel()
    scale = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)
    out = (sp.diags(scale) @ m).tocsr()
    out.sort_indices()
    out.indptr = out.indptr.astype(np.int64)
    out.indices = out.indices.astype(np.int32)
    return out



def _arrival_rates(timestamps: np.ndarray, iidx: np.ndarray, attributes: sp.csr_matrix,
                   share: float) -> tuple[np.ndarray, np.ndarray]:
    """Poisson model of how often newly arrived items are chosen, from their attributes.

    Arrivals are the items whose first interaction falls after the ``1 - share`` quantile of
    the timestamps; for each, ``y`` counts its later interactions and the exposure is the time
    from its arrival to the end of the log (in units of the window). Returns the coefficients
    ``[c, theta]`` and the log rate :math:`\\theta^\\top a_i` of every item (without ``c``).
    """
    n_items = attributes.shape[0]
    t = np.asarray(timestamps, dtype=np.float64)
    t_cut, t_end = float(np.quantile(t, 1.0 - share)), float(t.max())
    first = np.full(n_items, np.inf)
    np.minimum.at(first, iidx, t)
    arrived = np.flatnonzero(np.isfinite(first) & (first > t_cut))
    counts = np.bincount(iidx, minlength=n_items).astype(np.float64)
    m = attributes.shape[1]
    if len(arrived) < 2 or t_end <= t_cut:
        warnings.warn(f"cold_item_prior={share}: only {len(arrived)} item(s) arrived in the "
                      "latest share of the log; the cold-item prior is flat", DataWarning,
                      stacklevel=4)
        return np.zeros(1 + m), np.zeros(n_items)
    X = attributes[arrived]
    y = counts[arrived] - 1.0
    expo = (t_end - first[arrived]) / (t_end - t_cut)

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        eta = np.clip(z[0] + X @ z[1:], -30.0, 30.0)
        mu = expo * np.exp(eta)
        r = mu - y
        value = float(mu.sum() - y @ eta + 0.5 * z[1:] @ z[1:])
        return value, np.r_[r.sum(), X.T @ r + z[1:]]

    z0 = np.zeros(1 + m)
    z0[0] = np.log(max(y.sum(), 1.0) / max(expo.sum(), 1e-12))
    res = optimize.minimize(objective, z0, jac=True, method="L-BFGS-B",
                            options={"maxiter": 500})
    coef = np.asarray(res.x)
    return coef, np.asarray(attributes @ coef[1:]).ravel()
