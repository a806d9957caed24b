"""Variational autoencoder for collaborative filtering: Mult-VAE (Liang et al. 2018)."""

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
from chuchun.models.neural._setup import (
    binary_interactions,
    cosine_similarities,
    fit_setup,
    notify_callbacks,
)

__all__ = ["MultVAE"]


class MultVAE(Recommender):
    """Variational autoencoder with a multinomial likelihood (Liang et al. 2018).

    A user's binary history :math:`x_u` is encoded, after L2 normalisation and input dropout,
    by :math:`h = \\tanh(W_1 \\tilde x_u + b_1)`, :math:`[\\mu_u, \\log \\sigma_u^2] =
    W_2 h + b_2`; a latent :math:`z_u \\sim \\mathcal N(\\mu_u, \\sigma_u^2)` is decoded to
    item logits :math:`f(z_u) = W_4 \\tanh(W_3 z_u + b_3) + b_4` and
    :math:`\\pi(z_u) = \\operatorname{softmax}(f(z_u))`. Training maximises the annealed
    evidence lower bound (eq. 5 of the paper)

    .. math::

        \\mathcal L_\\beta(x_u) = \\mathbb E_{q(z_u \\mid x_u)}\\Big[\\sum_i x_{ui}
        \\log \\pi_i(z_u)\\Big] - \\beta\\, \\mathrm{KL}\\big(q(z_u \\mid x_u) \\,\\|\\,
        \\mathcal N(0, I)\\big),

    with Adam, :math:`\\beta_t = \\beta_{\\max} \\min(1, t / T)` after :math:`t` updates
    (:math:`\\beta_{\\max}` = ``beta_cap``, :math:`T` = ``anneal_steps``; the paper's
    schedule counts updates, not epochs, so a fit of ``n_epochs=e`` is exactly the first
    :math:`e` epochs of a longer fit with the same seed). Scores are the logits of the mean,
    :math:`f(\\mu_u)` (no dropout, no sampling), so a user unseen in training is folded in
    exactly: the encoder reads any history.

    Trained on PyTorch (``device``), kept and scored as NumPy arrays: loading and
    recommending need no torch.

    Parameters
    ----------
    n_factors : int
        Latent dimension (paper: 200).
    n_hidden : int
        Width of the encoder's and decoder's hidden layer (paper: 600).
    dropout : float
        Input dropout rate (paper: 0.5).
    beta_cap : float
        Largest KL weight :math:`\\beta` (paper: 0.2).
    anneal_steps : int
        Updates :math:`T` over which :math:`\\beta` rises linearly to ``beta_cap`` (paper:
        200,000); 0 keeps :math:`\\beta` at ``beta_cap`` from the first update.
    n_epochs, batch_size, learning_rate : int, int, float
        Adam over shuffled user batches.
    regularization : float
        L2 weight decay of the weights.
    recency_half_life : float or None
        With :math:`h` set, the encoder reads recency-weighted histories
        :math:`\\tilde x_{uj} = 2^{-r_{uj}/h}` (:math:`r_{uj}` the rank of item :math:`j` in
        :math:`u`'s history from the latest interaction, 0) in training and scoring, while the
        likelihood still reconstructs the binary history; the weighting of EASE, SLIM and
        RP3beta (Ding & Li 2005, with rank in place of elapsed time). Folding in reads the order
        of the history given. None: every history item weighs 1 (the paper's model).
    device : str
        Torch device for training ("cpu", "cuda", "cuda:1", ...).
    random_state : int or None
        Seeds initialisation, batches, dropout and the reparameterisation noise.
    n_threads : int or None
        Torch CPU threads during fit (None: torch's setting).

    Attributes
    ----------
    enc_weights_, enc_biases_ : ndarray of float32
        :math:`W_1` (n_hidden, n_items) and :math:`b_1`; ``enc_mu_weights_`` etc. hold
        :math:`W_2, b_2` (mean and log-variance halves stacked).
    dec_hidden_weights_, dec_hidden_biases_, dec_weights_, dec_biases_ : ndarray of float32
        :math:`W_3, b_3, W_4, b_4`; the rows of :math:`W_4` are the item vectors compared by
        ``similar_items`` (cosine).
    interactions_ : scipy.sparse.csr_matrix, the binary users x items matrix
    profiles_ : scipy.sparse.csr_matrix
        The recency-weighted rows the encoder reads (only with ``recency_half_life``).
    loss_history_ : ndarray, mean negative ELBO per epoch

    References
    ----------
    D. Liang, R. G. Krishnan, M. D. Hoffman, T. Jebara. Variational autoencoders for
    collaborative filtering. WWW 2018.
    """

    n_factors = Param(int, 200, "Latent dimension.", low=1)
    n_hidden = Param(int, 600, "Hidden layer width of encoder and decoder.", low=1)
    dropout = Param(float, 0.5, "Input dropout rate.", low=0, high=1, high_open=True)
    beta_cap = Param(float, 0.2, "Largest KL weight beta.", low=0)
    anneal_steps = Param(int, 200_000, "Updates over which beta rises linearly to beta_cap (0: "
                         "beta_cap throughout).", low=0)
    n_epochs = Param(int, 100, "Passes over the users.", low=1)
    batch_size = Param(int, 128, "Users per update.", low=1)
    learning_rate = Param(float, 1e-3, "Adam step size.", low=0, low_open=True)
    regularization = Param(float, 0.0, "L2 weight decay.", low=0)
    recency_half_life = Param(
        float, None, "Encoder input weighs each history item by 2 ** (-r / h), r its rank from "
        "the user's latest interaction (0); None weighs all alike.", low=0, low_open=True,
        nullable=True)
    device = Param(str, "cpu", "Torch device used for training.")
    random_state = random_state_param("Seed of every random draw.")
    n_threads = n_threads_param("Torch CPU threads during fit.")
    verbose = Param(bool, False, "Show a progress bar over epochs.")

    supports_fold_in = True
    explain_is_additive = False
    explain_method = ("leave-one-out: each history item's contribution is how much the item's "
                      "score falls when that item is removed from the user's history")
    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 8, "n_hidden": 16, "n_epochs": 5,
                                              "batch_size": 16}

    interactions_: sp.csr_matrix

    # -- fitting ------------------------------------------------------------------------------
    def _fit(self, data: Interactions, *,
             callbacks: Sequence[EpochCallback] | None = None) -> None:
        """Train. ``callbacks`` receive ``cb(model, epoch, logs)`` after every epoch (``logs``:
        ``loss``, the epoch's mean negative ELBO, and ``beta``), with the model already
        scoring with that epoch's weights; a callback returning ``True`` stops training."""
        from chuchun.models.neural._torch import torch_threads

        setup = fit_setup("MultVAE", data.csr, device=self.device,
                          random_state=self.random_state, callbacks=callbacks)
        torch, x = setup.torch, setup.interactions
        self.interactions_ = x
        if self.recency_half_life is not None:
            from chuchun.data.sequences import user_sequences

            seqs = user_sequences(data)  # sequence u is user index u, oldest first
            lengths = seqs.lengths
            rows = np.repeat(np.arange(len(seqs)), lengths)
            rank = np.repeat(seqs.indptr[1:], lengths) - 1 - np.arange(len(seqs.items))
            self.profiles_ = _decayed(rows, seqs.items.astype(np.int64), rank, x.shape,
                                      self.recency_half_life)
        with torch_threads(torch, self.n_threads):
            self._train(torch, x, self._rows(), setup.rng, setup.generator, setup.device,
                        setup.callbacks)

    def _train(self, torch: Any, x: sp.csr_matrix, enc: sp.csr_matrix, rng: np.random.Generator,
               gen: Any, device: Any, callbacks: list[EpochCallback]) -> None:
        """Adam on the annealed ELBO; the encoder reads rows of ``enc`` (``x`` itself, or its
        recency-weighted rows), the likelihood reconstructs the rows of ``x``."""
        n_users, n_items = x.shape
        f, h = self.n_factors, self.n_hidden

        def layer(n_in: int, n_out: int) -> tuple[Any, Any]:
            # Xavier-uniform weights, small normal biases (the paper's initialisation)
            bound = float(np.sqrt(6.0 / (n_in + n_out)))
            w = (torch.rand((n_out, n_in), generator=gen, device=device) * 2 - 1) * bound
            b = torch.randn((n_out,), generator=gen, device=device) * 0.001
            return w.requires_grad_(), b.requires_grad_()

        w1, b1 = layer(n_items, h)
        w2, b2 = layer(h, 2 * f)
        w3, b3 = layer(f, h)
        w4, b4 = layer(h, n_items)
        params = [w1, b1, w2, b2, w3, b3, w4, b4]
        opt = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.regularization)
        keep = 1.0 - self.dropout
        step = 0
        losses: list[float] = []
        for epoch in progress(range(self.n_epochs), total=self.n_epochs, desc="MultVAE",
                              verbose=self.verbose):
            order = rng.permutation(n_users)
            total = 0.0
            for start in range(0, n_users, self.batch_size):
                rows = order[start : start + self.batch_size]
                xb = torch.from_numpy(x[rows].toarray()).to(device)
                # the encoder reads the sparse input: normalise and drop out its non-zeros only
                batch = enc[rows]
                counts = np.diff(batch.indptr)
                norms = np.sqrt(np.asarray(batch.multiply(batch).sum(axis=1)).ravel())
                norms = np.where(norms > 0, norms, 1.0)
                scale = 1.0 / np.repeat(norms, counts)
                vals = torch.from_numpy((batch.data * scale).astype(np.float32)).to(device)
                if self.dropout > 0:
                    mask = torch.rand(vals.shape, generator=gen, device=device) < keep
                    vals = vals * mask / keep
                coords = np.vstack([np.repeat(np.arange(len(rows)), counts), batch.indices])
                inp = torch.sparse_coo_tensor(
                    torch.from_numpy(coords.astype(np.int64)).to(device), vals,
                    (len(rows), n_items), check_invariants=True,
                )
                hid = torch.tanh(torch.sparse.mm(inp, w1.T) + b1)
                stats = hid @ w2.T + b2
                mu, logvar = stats[:, :f], stats[:, f:]
                eps = torch.randn(mu.shape, generator=gen, device=device)
                z = mu + eps * torch.exp(0.5 * logvar)
                logits = torch.tanh(z @ w3.T + b3) @ w4.T + b4
                nll = -(torch.log_softmax(logits, dim=1) * xb).sum(dim=1).mean()
                kl = (0.5 * (-logvar + torch.exp(logvar) + mu**2 - 1.0)).sum(dim=1).mean()
                beta = self._beta(step)
                loss = nll + beta * kl
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                total += float(loss.detach()) * len(rows)
            losses.append(total / n_users)
            if callbacks:
                self._store(params, losses)
                logs = {"loss": losses[-1], "beta": self._beta(step)}
                if notify_callbacks(callbacks, self, epoch, logs):
                    break
        self._store(params, losses)

    def _beta(self, step: int) -> float:
        """The KL weight of update ``step`` (0-based): linear from 0 to ``beta_cap``."""
        if self.anneal_steps == 0:
            return float(self.beta_cap)
        return float(self.beta_cap) * min(1.0, step / self.anneal_steps)

    def _store(self, params: list[Any], losses: list[float]) -> None:
        arrays = [p.detach().cpu().numpy().astype(np.float32) for p in params]
        (self.enc_weights_, self.enc_biases_, self.enc_mu_weights_, self.enc_mu_biases_,
         self.dec_hidden_weights_, self.dec_hidden_biases_, self.dec_weights_,
         self.dec_biases_) = arrays
        self.loss_history_ = np.asarray(losses)

    # -- scoring (NumPy) ----------------------------------------------------------------------
    def _logits(self, x: sp.csr_matrix) -> np.ndarray:
        x = sp.csr_matrix(x, dtype=np.float32)
        norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        x = sp.diags((1.0 / np.where(norm > 0, norm, 1.0)).astype(np.float32)) @ x
        hid = np.tanh(np.asarray(x @ self.enc_weights_.T) + self.enc_biases_)
        mu = hid @ self.enc_mu_weights_[: self.n_factors].T + self.enc_mu_biases_[: self.n_factors]
        dec = np.tanh(mu @ self.dec_hidden_weights_.T + self.dec_hidden_biases_)
        return np.asarray(dec @ self.dec_weights_.T + self.dec_biases_, dtype=np.float32)

    def _rows(self) -> sp.csr_matrix:
        """The users x items rows the encoder reads (recency-weighted when ``profiles_``)."""
        profiles = vars(self).get("profiles_")
        return self.interactions_ if profiles is None else profiles

    def _orders_histories(self) -> bool:
        return self.recency_half_life is not None

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._logits(self._rows()[np.asarray(user_idx)])

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._logits(binary_interactions(history, "MultVAE"))

    def _score_sequences(self, sequences: list[np.ndarray]) -> np.ndarray:
        assert self.recency_half_life is not None
        lengths = np.array([len(q) for q in sequences], dtype=np.int64)
        rows = np.repeat(np.arange(len(sequences)), lengths)
        items = np.concatenate(sequences) if len(sequences) else np.empty(0, np.int64)
        rank = np.repeat(np.cumsum(lengths), lengths) - 1 - np.arange(int(lengths.sum()))
        return self._logits(_decayed(rows, items.astype(np.int64), rank,
                                     (len(sequences), len(self.items_)),
                                     self.recency_half_life))

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        row = self._rows()[[user_idx]]
        hist, values = row.indices, row.data
        score = float(self._logits(row)[0, item_idx])
        if len(hist) == 0:
            return score, []
        dense = np.repeat(row.toarray(), len(hist), axis=0)
        dense[np.arange(len(hist)), hist] = 0.0  # row r: the history without its r-th item
        drop = self._logits(sp.csr_matrix(dense))[:, item_idx]
        reasons = [
            Reason(kind="item", id=plain(self.items_.ids[j]), contribution=float(score - d),
                   detail={"score_without": float(d), "value": float(v)})
            for j, d, v in zip(hist, drop, values, strict=True)
        ]
        return score, reasons

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        return cosine_similarities(self.dec_weights_, item_idx)


def _decayed(rows: np.ndarray, items: np.ndarray, rank: np.ndarray, shape: tuple[int, int],
             half_life: float) -> sp.csr_matrix:
    """CSR of ``2 ** (-rank / half_life)``; an item repeated in a row keeps its latest rank
    (the weighting of ``chuchun.models.linear``)."""
    order = np.lexsort((rank, items, rows))
    rows, items, rank = rows[order], items[order], rank[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    w = np.exp2(-rank[first] / half_life).astype(np.float32)
    out = sp.csr_matrix((w, (rows[first], items[first])), shape=shape, dtype=np.float32)
    out.sort_indices()
    return out

