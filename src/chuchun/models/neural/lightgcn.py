"""Light graph convolution network for collaborative filtering: LightGCN (He et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._params import Param, n_threads_param, random_state_param
from chuchun._progress import progress
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender
from chuchun.models._explain import plain
from chuchun.models._results import Reason
from chuchun.models.neural._epochs import EpochCallback
from chuchun.models.neural._setup import cosine_similarities, fit_setup, notify_callbacks

__all__ = ["OWN_EMBEDDING", "LightGCN"]

#: label of the explanation reason that is the user's own (ego) embedding
OWN_EMBEDDING = "the user's own embedding"


class LightGCN(Recommender):
    """Linear propagation of user and item embeddings over the interaction graph, trained with
    the BPR loss (He et al. 2020).

    With :math:`e^{(0)}` the free ("ego") embeddings of users and items and
    :math:`\\tilde A = D^{-1/2} A D^{-1/2}` the normalised adjacency of the bipartite
    user-item graph, layer :math:`k+1` is :math:`e^{(k+1)} = \\tilde A e^{(k)}`, i.e.

    .. math::

        e_u^{(k+1)} = \\sum_{i \\in N_u} \\frac{e_i^{(k)}}{\\sqrt{|N_u|\\,|N_i|}},\\qquad
        e_i^{(k+1)} = \\sum_{u \\in N_i} \\frac{e_u^{(k)}}{\\sqrt{|N_i|\\,|N_u|}},

    and the final embeddings are the layer means :math:`e = \\frac{1}{K+1}\\sum_{k=0}^{K}
    e^{(k)}`; scores are :math:`\\hat y_{ui} = e_u^\\top e_i`. Training minimises (eq. 15)

    .. math::

        -\\sum_{(u,i,j)} \\ln \\sigma(\\hat y_{ui} - \\hat y_{uj})
        + \\lambda \\lVert e^{(0)} \\rVert^2

    over mini-batches of triples: an observed pair :math:`(u, i)` and an item :math:`j` drawn
    uniformly among those :math:`u` has not interacted with; :math:`\\lambda` applies to the
    batch's ego embeddings (averaged over the batch, as the reference code). Adam.

    **Fold-in (approximation).** A new user has no trained ego embedding and does not change
    the items' layers. Its embedding is the propagation of its history through the trained
    item layers with :math:`e_u^{(0)} = 0`:

    .. math::

        e_u \\approx \\frac{1}{K+1} \\sum_{k=1}^{K} \\sum_{i \\in N_u}
        \\frac{e_i^{(k-1)}}{\\sqrt{|N_u|\\,|N_i|}}
        = \\frac{1}{\\sqrt{|N_u|}} \\sum_{i \\in N_u} \\frac{g_i}{\\sqrt{|N_i|}},
        \\qquad g_i = \\frac{1}{K+1} \\sum_{k=0}^{K-1} e_i^{(k)},

    with the training degrees :math:`|N_i|`. For a training user the same sum plus
    :math:`e_u^{(0)} / (K+1)` is exactly :math:`e_u`, which is how :meth:`explain` splits a
    score exactly into the user's own embedding and one term per history item.

    Trained on PyTorch (``device``), kept and scored as NumPy arrays.

    Parameters
    ----------
    n_factors : int
        Embedding dimension (paper: 64).
    n_layers : int
        Propagation layers :math:`K` (paper: 3).
    n_epochs, batch_size, learning_rate : int, int, float
        Each epoch draws one triple per interaction.
    regularization : float
        :math:`\\lambda` (paper: 1e-4).
    device : str
        Torch device for training.
    random_state : int or None
        Seeds initialisation and every sample.
    n_threads : int or None
        Torch CPU threads during fit (None: torch's setting).

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of float32
        Final (layer-mean) embeddings :math:`e_u, e_i`.
    user_ego_ : ndarray of float32
        :math:`e_u^{(0)}`.
    item_propagated_ : ndarray of float32
        :math:`g_i` of the fold-in formula.
    item_degree_ : ndarray of float32
        :math:`|N_i|` in training.
    interactions_ : scipy.sparse.csr_matrix, the binary users x items matrix
    loss_history_ : ndarray, mean BPR loss per epoch

    References
    ----------
    X. He, K. Deng, X. Wang, Y. Li, Y. Zhang, M. Wang. LightGCN: Simplifying and powering graph
    convolution network for recommendation. SIGIR 2020.
    """

    n_factors = Param(int, 64, "Embedding dimension.", low=1)
    n_layers = Param(int, 3, "Propagation layers K.", low=0)
    n_epochs = Param(int, 100, "Passes over the interactions.", low=1)
    batch_size = Param(int, 2048, "Triples per update.", low=1)
    learning_rate = Param(float, 1e-2, "Adam step size.", low=0, low_open=True)
    regularization = Param(float, 1e-4, "L2 weight lambda of the batch's ego embeddings.", low=0)
    device = Param(str, "cpu", "Torch device used for training.")
    random_state = random_state_param("Seed of every random draw.")
    n_threads = n_threads_param("Torch CPU threads during fit.")
    verbose = Param(bool, False, "Show a progress bar over epochs.")

    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("propagation: the user's own embedding plus one term per history item "
                      "carried to the user by the graph layers, each dotted with the item")
    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 8, "n_layers": 2, "n_epochs": 5,
                                              "batch_size": 64}

    interactions_: sp.csr_matrix

    # -- fitting ------------------------------------------------------------------------------
    def _fit(self, data: Interactions, *,
             callbacks: Sequence[EpochCallback] | None = None) -> None:
        """Train. ``callbacks`` receive ``cb(model, epoch, logs)`` after every epoch (``logs``:
        ``loss``, the epoch's mean BPR loss), with the model already scoring with that epoch's
        embeddings; a callback returning ``True`` stops training."""
        from chuchun.models.neural._torch import torch_threads

        setup = fit_setup("LightGCN", data.csr, device=self.device,
                          random_state=self.random_state, callbacks=callbacks)
        self.interactions_ = setup.interactions
        with torch_threads(setup.torch, self.n_threads):
            self._train(setup.torch, setup.interactions, setup.rng, setup.generator,
                        setup.device, setup.callbacks)

    def _train(self, torch: Any, x: sp.csr_matrix, rng: np.random.Generator, gen: Any,
               device: Any, callbacks: list[EpochCallback]) -> None:
        n_users, n_items = x.shape
        user_deg = np.diff(x.indptr).astype(np.float64)
        item_deg = np.bincount(x.indices, minlength=n_items).astype(np.float64)
        # normalised bipartite adjacency, users first then items
        coo = x.tocoo()
        w = 1.0 / np.sqrt(np.maximum(user_deg[coo.row] * item_deg[coo.col], 1.0))
        rows = np.r_[coo.row, coo.col + n_users]
        cols = np.r_[coo.col + n_users, coo.row]
        n_nodes = n_users + n_items
        if device.type == "cpu":
            # scipy's CSR product is several times faster than torch's sparse CPU kernels here
            spmm = _scipy_spmm(torch, sp.csr_matrix(
                (np.r_[w, w].astype(np.float32), (rows, cols)), shape=(n_nodes, n_nodes)))
        else:
            adj = torch.sparse_coo_tensor(
                torch.from_numpy(np.vstack([rows, cols]).astype(np.int64)),
                torch.from_numpy(np.r_[w, w].astype(np.float32)),
                (n_nodes, n_nodes), check_invariants=True,
            ).coalesce().to(device)

            def spmm(e: Any) -> Any:
                return torch.sparse.mm(adj, e)
        emb = (torch.randn((n_users + n_items, self.n_factors), generator=gen, device=device)
               * 0.1).requires_grad_()
        opt = torch.optim.Adam([emb], lr=self.learning_rate)
        k = self.n_layers

        def propagate(e0: Any) -> tuple[Any, Any]:
            acc, e = e0, e0
            partial = e0 if k > 0 else torch.zeros_like(e0)  # layers 0..K-1
            for layer in range(k):
                e = spmm(e)
                acc = acc + e
                if layer < k - 1:
                    partial = partial + e
            return acc / (k + 1), partial / (k + 1)

        pos_u = coo.row.astype(np.int64)
        pos_i = coo.col.astype(np.int64)
        seen_keys = pos_u * n_items + pos_i
        seen_keys.sort()
        losses: list[float] = []
        for epoch in progress(range(self.n_epochs), total=self.n_epochs, desc="LightGCN",
                              verbose=self.verbose):
            pick = rng.integers(0, len(pos_u), size=len(pos_u))
            u_all, i_all = pos_u[pick], pos_i[pick]
            j_all = _negatives(rng, u_all, seen_keys, n_items)
            total = 0.0
            for start in range(0, len(u_all), self.batch_size):
                sl = slice(start, start + self.batch_size)
                u = torch.from_numpy(u_all[sl]).to(device)
                i = torch.from_numpy(i_all[sl] + n_users).to(device)
                j = torch.from_numpy(j_all[sl] + n_users).to(device)
                final, _ = propagate(emb)
                eu, ei, ej = final[u], final[i], final[j]
                diff = (eu * ei).sum(dim=1) - (eu * ej).sum(dim=1)
                bpr = torch.nn.functional.softplus(-diff).mean()
                reg = (emb[u].pow(2).sum() + emb[i].pow(2).sum() + emb[j].pow(2).sum()) / (
                    2 * len(u))
                loss = bpr + self.regularization * reg
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(bpr.detach()) * len(u)
            losses.append(total / max(1, len(u_all)))
            if callbacks:
                self._store(torch, emb, propagate, n_users, item_deg, losses)
                if notify_callbacks(callbacks, self, epoch, {"loss": losses[-1]}):
                    break
        self._store(torch, emb, propagate, n_users, item_deg, losses)

    def _store(self, torch: Any, emb: Any, propagate: Any, n_users: int, item_deg: np.ndarray,
               losses: list[float]) -> None:
        with torch.no_grad():
            final, partial = propagate(emb)
        final_np = final.cpu().numpy().astype(np.float32)
        self.user_factors_ = final_np[:n_users].copy()
        self.item_factors_ = final_np[n_users:].copy()
        self.user_ego_ = emb.detach().cpu().numpy()[:n_users].astype(np.float32)
        self.item_propagated_ = partial.cpu().numpy()[n_users:].astype(np.float32)
        self.item_degree_ = item_deg.astype(np.float32)
        self.loss_history_ = np.asarray(losses)

    # -- scoring (NumPy) ----------------------------------------------------------------------
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_factors_[np.asarray(user_idx)] @ self.item_factors_.T

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        h = sp.csr_matrix(history, dtype=np.float32, copy=True)
        h.data = (h.data > 0).astype(np.float32)
        h.eliminate_zeros()
        n_u = np.diff(h.indptr).astype(np.float32)
        inv_item = 1.0 / np.sqrt(np.maximum(self.item_degree_, 1.0))
        g = self.item_propagated_ * inv_item[:, None]
        out = np.asarray(h @ g, dtype=np.float32)
        return out / np.sqrt(np.maximum(n_u, 1.0))[:, None]

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._fold_in(history) @ self.item_factors_.T

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        x = self.interactions_
        hist = x.indices[x.indptr[user_idx] : x.indptr[user_idx + 1]]
        target = self.item_factors_[item_idx].astype(np.float64)
        scale = 1.0 / np.sqrt(max(len(hist), 1) * np.maximum(self.item_degree_[hist], 1.0))
        terms = (self.item_propagated_[hist].astype(np.float64) @ target) * scale
        own = float(self.user_ego_[user_idx].astype(np.float64) @ target) / (self.n_layers + 1)
        # the ego embedding enters the layer mean with weight 1 / (K + 1)
        reasons = [Reason(kind="user", id=plain(self.users_.ids[user_idx]), contribution=own,
                          label=OWN_EMBEDDING,
                          detail={"layer_weight": 1.0 / (self.n_layers + 1)})]
        reasons += [
            Reason(kind="item", id=plain(self.items_.ids[j]), contribution=float(t),
                   detail={"degree": float(self.item_degree_[j])})
            for j, t in zip(hist, terms, strict=True)
        ]
        return own + float(terms.sum()), reasons

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        return cosine_similarities(self.item_factors_, item_idx)

    def _user_similarities(self, user_idx: np.ndarray) -> np.ndarray:
        return cosine_similarities(self.user_factors_, user_idx)


def _scipy_spmm(torch: Any, adj: sp.csr_matrix) -> Any:
    """``e -> adj @ e`` as a differentiable torch operation computed by scipy (CPU tensors);
    ``adj`` is symmetric, so the gradient is ``adj @ grad`` too."""
    adj.sort_indices()

    class _SpMM(torch.autograd.Function):  # type: ignore[misc]
        @staticmethod
        def forward(ctx: Any, e: Any) -> Any:
            return torch.from_numpy(np.ascontiguousarray(adj @ e.detach().numpy()))

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return torch.from_numpy(np.ascontiguousarray(adj @ grad.contiguous().numpy()))

    return _SpMM.apply


def _negatives(rng: np.random.Generator, users: np.ndarray, seen_keys: np.ndarray,
               n_items: int) -> np.ndarray:
    """One item per user drawn uniformly among the items the user has not interacted with
    (rejection sampling; a user who has seen every item keeps a seen item)."""
    j = rng.integers(0, n_items, size=len(users))
    for _ in range(20):
        keys = users * n_items + j
        pos = np.searchsorted(seen_keys, keys)
        hit = (pos < len(seen_keys)) & (seen_keys[np.minimum(pos, len(seen_keys) - 1)] == keys)
        if not hit.any():
            break
        j[hit] = rng.integers(0, n_items, size=int(hit.sum()))
    return j

