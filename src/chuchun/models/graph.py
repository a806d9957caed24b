"""Random-walk models on the user-item graph: RP3beta (Paudel et al. 2017)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._params import Param
from chuchun.data.interactions import Interactions
from chuchun.models._base import _SCORE_BUDGET, _top_k
from chuchun.models.linear import _ItemWeights

__all__ = ["RP3beta", "rp3beta_weights"]


class RP3beta(_ItemWeights):
    """Three-step random walk item-item model with a popularity penalty (Paudel et al. 2017).

    With :math:`P_{ui} = (x_{ui} / \\sum_k x_{uk})^\\alpha` (user to item) and
    :math:`P_{iu} = (x_{ui} / \\sum_v x_{vi})^\\alpha` (item to user) the walk from item
    :math:`i` through a user to item :math:`j`, divided by the popularity of :math:`j`, gives

    .. math::

        W_{ij} = \\frac{\\sum_u P_{iu} P_{uj}}{d_j^{\\,\\beta}}, \\qquad W_{ii} = 0,

    with :math:`d_j` the number of users of :math:`j`. Each row keeps its ``n_neighbors``
    largest entries (the sparse top-k of :mod:`chuchun.similarity`'s convention: best first,
    ties to the lower index), optionally rescaled to sum to 1 (``normalize``). Scores are
    :math:`\\hat x_{ui} = \\sum_j x_{uj} W_{ji}`; :math:`\\beta = 0, \\alpha = 1` is the plain
    3-step walk P³ (Cooper et al. 2014).

    Parameters
    ----------
    alpha : float
        Exponent :math:`\\alpha` of the transition probabilities.
    beta : float
        Popularity penalty :math:`\\beta`.
    n_neighbors : int
        Entries kept per row of :math:`W`.
    normalize : bool
        Rescale each kept row of :math:`W` to sum to 1.
    binary : bool
        Use 1 for every interaction (default) or the interaction values.
    recency_half_life : float or None
        Score users from recency-weighted rows :math:`\\tilde x_{uj} = 2^{-r_{uj}/h}`
        (:math:`r_{uj}`: rank of :math:`j` from the user's most recent interaction, 0); see
        :class:`~chuchun.models.EASE`. None: every history item weighs 1.

    Attributes
    ----------
    weights_ : scipy.sparse.csr_matrix of float32, shape (n_items, n_items)
    interactions_ : scipy.sparse.csr_matrix

    References
    ----------
    B. Paudel, F. Christoffel, C. Newell, A. Bernstein. Updatable, accurate, diverse, and
    scalable recommendations for interactive applications. ACM TiiS 7(1), 2017.
    C. Cooper, S. H. Lee, T. Radzik, Y. Siantos. Random walks in recommender systems: exact
    computation and simulations. WWW 2014.
    """

    alpha = Param(float, 1.0, "Exponent of the transition probabilities.", low=0)
    beta = Param(float, 0.5, "Popularity penalty: divide by item degree ** beta.", low=0)
    n_neighbors = Param(int, 200, "Entries kept per row of W.", low=1)
    normalize = Param(bool, False, "Rescale each kept row of W to sum to 1.")
    binary = _ItemWeights.binary
    recency_half_life = _ItemWeights.recency_half_life

    _test_params: ClassVar[dict[str, Any]] = {"n_neighbors": 10}

    def _fit(self, data: Interactions) -> None:
        x = self._matrix(data)
        self.interactions_ = x
        self._set_profiles(data, x)
        self.weights_ = rp3beta_weights(x, self.alpha, self.beta, self.n_neighbors,
                                        self.normalize)


def rp3beta_weights(x: sp.csr_matrix, alpha: float, beta: float, k: int,
                    normalize: bool = False) -> sp.csr_matrix:
    """The RP3beta matrix :math:`W` of the users x items matrix ``x`` (see :class:`RP3beta`).

    Rows are computed in chunks of bounded memory (never the dense n_items x n_items matrix
    at once), each reduced to its ``k`` largest positive entries.
    """
    x = sp.csr_matrix(x, dtype=np.float64)
    n_items = x.shape[1]
    user_deg = np.asarray(x.sum(axis=1)).ravel()
    item_deg = np.asarray(x.sum(axis=0)).ravel()
    p_ui = sp.diags(1.0 / np.where(user_deg > 0, user_deg, 1.0)) @ x
    p_ui.data **= alpha
    xt = x.T.tocsr()
    p_iu = sp.diags(1.0 / np.where(item_deg > 0, item_deg, 1.0)) @ xt
    p_iu.data **= alpha
    p_ui, p_iu = p_ui.tocsr(), p_iu.tocsr()
    popularity = np.asarray((x > 0).sum(axis=0)).ravel().astype(np.float64)
    penalty = np.where(popularity > 0, popularity, 1.0) ** -beta
    k_eff = max(1, min(k, n_items))
    step = max(1, min(n_items, _SCORE_BUDGET // max(1, n_items) // 2))
    rows, cols, vals = [], [], []
    for start in range(0, n_items, step):
        stop = min(n_items, start + step)
        block = (p_iu[start:stop] @ p_ui).toarray() * penalty[None, :]
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        block[block <= 0] = -np.inf
        idx, v = _top_k(block, k_eff)
        ok = idx >= 0
        r = np.repeat(np.arange(start, stop), ok.sum(axis=1))
        rows.append(r)
        cols.append(idx[ok])
        vals.append(block[r - start, idx[ok]])
    w = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )
    if normalize:
        sums = np.asarray(w.sum(axis=1)).ravel()
        w = sp.diags(1.0 / np.where(sums > 0, sums, 1.0)) @ w
    w = sp.csr_matrix(w, dtype=np.float32)
    w.sort_indices()
    return w
