"""Item2Vec (product2vec): item embeddings by skip-gram with negative sampling over sequences
or baskets (Barkan & Koenigstein 2016; Mikolov et al. 2013)."""

from __future__ import annotations

import os
import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import DataWarning
from chuchun._params import Param, random_state_param
from chuchun._progress import progress
from chuchun._random import check_random_state, kernel_seed
from chuchun.data.interactions import Interactions
from chuchun.kernels import sgns as _sgns
from chuchun.models._results import Reason
from chuchun.models._sequential import _SequenceRecommender, recency_weights

__all__ = ["Item2Vec"]

_ROUNDS_PER_EPOCH = 8


class Item2Vec(_SequenceRecommender):
    """Item embeddings from co-occurrence in sequences or baskets, by skip-gram with negative
    sampling (SGNS).

    Each training user's items, in time order (:func:`chuchun.data.user_sequences`), form a
    "sentence". For every item :math:`w` and every context item :math:`c` — within ``window``
    positions (word2vec's randomly shrunk window) when ``context="window"``, every other item
    of the same sequence when ``context="basket"`` (order-free baskets, Barkan & Koenigstein
    2016) — SGNS minimises (Mikolov et al. 2013, eq. 4)

    .. math:: -\\log\\sigma(v_c^\\top u_w) - \\sum_{k=1}^{K}
              \\mathbb{E}_{n_k \\sim P_n}\\log\\sigma(-v_c^\\top u_{n_k}),
              \\qquad P_n(i) \\propto f_i^{\\,0.75},

    after discarding each occurrence of item :math:`i` with probability
    :math:`1 - \\min(1, (\\sqrt{f_i/t} + 1)\\,t/f_i)`, :math:`t` = ``sample`` times the corpus
    size (frequent-item subsampling). The learning rate falls linearly from
    ``learning_rate`` to ``min_learning_rate`` over the fit. The item vectors are the input
    vectors :math:`v_i`, compared by cosine.

    A user's score for item :math:`i` is the recency-weighted mean cosine to their last
    ``history_length`` items :math:`j_1..j_m` (oldest first):

    .. math:: s_{ui} = \\sum_{r=1}^{m} \\tilde w_r \\cos(v_{j_r}, v_i),
              \\qquad \\tilde w_r = \\frac{\\gamma^{m-r}}{\\sum_{q} \\gamma^{m-q}},

    :math:`\\gamma` = ``recency_decay`` (1: a plain mean). Equivalently the cosine-normalised
    item vectors are averaged with weights :math:`\\tilde w` and dotted with :math:`\\hat v_i`.

    Parameters
    ----------
    n_factors, window, context, negative, n_epochs, learning_rate, min_learning_rate, sample,
    noise_power, history_length, recency_decay, n_threads, random_state, verbose
        See the declarations below.

    Attributes
    ----------
    item_factors_ : ndarray float32 (n_items, n_factors)
        Input vectors :math:`v_i`.
    context_factors_ : ndarray float32 (n_items, n_factors)
        Output vectors :math:`u_i`.
    sequence_indptr_, sequence_items_ : ndarray
        Each training user's items in time order.

    Notes
    -----
    ``explain`` lists the user's recent items with contribution
    :math:`\\tilde w_r \\cos(v_{j_r}, v_i)`; they add up to the score exactly. A large
    contribution means the two items occur in the same contexts across all users (they are
    "watched/bought together"); it does not mean one caused the other, nor that the order
    mattered. ``similar_items`` ranks by cosine of :math:`v`.

    Training runs on ``n_threads`` threads, each on private copies of the tables merged at
    fixed points (:mod:`chuchun.kernels.sgns`), so a fit is reproducible for a fixed seed and
    thread count; different thread counts give (slightly) different vectors.

    References
    ----------
    O. Barkan, N. Koenigstein. Item2Vec: neural item embedding for collaborative filtering.
    MLSP 2016. T. Mikolov, I. Sutskever, K. Chen, G. Corrado, J. Dean. Distributed
    representations of words and phrases and their compositionality. NIPS 2013.
    M. Grbovic et al. E-commerce in your inbox: product recommendations at scale (prod2vec).
    KDD 2015.
    """

    n_factors = Param(int, 64, "Dimension of the item vectors.", low=1)
    window = Param(int, 5, "Largest distance between an item and its context (context='window').",
                   low=1)
    context = Param(str, "window", "'window': neighbours within a sequence; 'basket': all items "
                    "of the same sequence (order-free baskets).", choices=("window", "basket"))
    negative = Param(int, 5, "Noise items per positive pair.", low=1)
    n_epochs = Param(int, 10, "Passes over the sequences.", low=1)
    learning_rate = Param(float, 0.025, "Initial SGD step size.", low=0, low_open=True)
    min_learning_rate = Param(float, 0.0001, "Final SGD step size (linear decay).", low=0)
    sample = Param(float, 1e-3, "Subsampling threshold t (0: keep every occurrence).", low=0)
    noise_power = Param(float, 0.75, "Exponent of the unigram noise distribution.", low=0)
    history_length = Param(int, 10, "Recent items that make a user's profile.", low=1)
    recency_decay = Param(float, 0.8, "Weight ratio of successive recent items (1: plain mean).",
                          low=0, high=1, low_open=True)
    n_threads = Param(int, None, "Threads of the SGNS kernel (None: all cores).", low=1,
                      nullable=True)
    random_state = random_state_param("Seed of initialisation, sampling and order.")
    verbose = Param(bool, False, "Show a progress bar over epochs.")

    explain_is_additive: ClassVar[bool] = True
    explain_method: ClassVar[str] = (
        "recency-weighted cosine between the item's vector and each of the user's recent items"
    )
    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 8, "n_epochs": 5, "n_threads": 1}

    # -- fitting ------------------------------------------------------------------------------
    def _fit(self, data: Interactions) -> None:
        with warnings.catch_warnings():
            if self.context == "basket":  # a basket has no order to lose
                warnings.simplefilter("ignore", DataWarning)
            seqs = self._store_sequences(data)
        rng = check_random_state(self.random_state)
        n, d = data.n_items, int(self.n_factors)
        counts = np.bincount(seqs.items, minlength=n)
        keep = _sgns.keep_probabilities(counts, float(self.sample))
        cdf = _sgns.noise_cdf(counts, float(self.noise_power))
        W = ((rng.random((n, d)) - 0.5) / d).astype(np.float32)
        C = np.zeros((n, d), dtype=np.float32)
        threads = self._threads()
        states = _sgns.seed_states(kernel_seed(rng), threads)
        W_loc = np.empty((threads, n, d), np.float32) if threads > 1 else W[None]
        C_loc = np.empty((threads, n, d), np.float32) if threads > 1 else C[None]
        lengths = seqs.lengths
        useful = np.flatnonzero(lengths >= 2).astype(np.int64)
        total_rounds = int(self.n_epochs) * _ROUNDS_PER_EPOCH
        lr0, lr1 = float(self.learning_rate), float(self.min_learning_rate)
        window = int(self.window)
        basket = self.context == "basket"
        done = 0
        from chuchun.kernels.implicit_als import set_threads

        previous = set_threads(threads)
        try:
            for _ in progress(range(int(self.n_epochs)), total=int(self.n_epochs),
                              desc="Item2Vec", verbose=self.verbose):
                order = rng.permutation(useful)
                for chunk in np.array_split(order, _ROUNDS_PER_EPOCH):
                    lr = lr0 - (lr0 - lr1) * done / total_rounds
                    done += 1
                    if threads == 1:
                        _sgns.sgns_serial(seqs.indptr, seqs.items, chunk, keep, cdf, W, C,
                                          window, basket, int(self.negative), lr, states)
                    else:
                        bounds = _balanced(lengths[chunk], threads, 2.0 if basket else 1.0)
                        _sgns.sgns_round(seqs.indptr, seqs.items, chunk, bounds, keep, cdf, W,
                                         C, W_loc, C_loc, window, basket, int(self.negative),
                                         lr, states)
        finally:
            set_threads(previous)
        self.item_factors_ = W
        self.context_factors_ = C

    def _threads(self) -> int:
        return int(self.n_threads) if self.n_threads is not None else (os.cpu_count() or 1)

    # -- scoring ------------------------------------------------------------------------------
    def _unit(self) -> np.ndarray:
        V = self.item_factors_
        norms = np.linalg.norm(V, axis=1, keepdims=True)
        return (V / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def _profile_weights(self, sequences: list[np.ndarray]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        L, g = int(self.history_length), float(self.recency_decay)
        for r, seq in enumerate(sequences):
            recent = np.asarray(seq)[-L:]
            rows.append(np.full(len(recent), r))
            cols.append(recent)
            vals.append(recency_weights(len(recent), g))
        m = sp.csr_matrix(
            (np.concatenate(vals) if vals else np.empty(0),
             (np.concatenate(rows) if rows else np.empty(0, int),
              np.concatenate(cols) if cols else np.empty(0, int))),
            shape=(len(sequences), len(self.items_)), dtype=np.float32,
        )
        m.sum_duplicates()
        return m

    def _score_sequences(self, sequences: list[np.ndarray]) -> np.ndarray:
        V = self._unit()
        return np.asarray((self._profile_weights(sequences) @ V) @ V.T, dtype=np.float32)

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        # an unordered history (CSR) carries no recency: every item weighs the same
        V = self._unit()
        counts = np.maximum(np.diff(history.indptr), 1).astype(np.float32)
        pattern = history.copy()
        pattern.data = np.ones_like(pattern.data)
        profile = (pattern @ V) / counts[:, None]
        return np.asarray(profile @ V.T, dtype=np.float32)

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        V = self._unit()
        return V[item_idx] @ V.T

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        V = self._unit().astype(np.float64)
        recent = self._user_sequence(user_idx)[-int(self.history_length):]
        w = recency_weights(len(recent), float(self.recency_decay))
        cos = V[recent] @ V[item_idx]
        contrib = w * cos
        score = float(self._score(np.array([user_idx]))[0, item_idx])
        reasons = [
            Reason(
                kind="item",
                id=_plain(self.items_.ids[j]),
                contribution=float(contrib[r]),
                detail={"cosine": float(cos[r]), "weight": float(w[r]),
                        "age": int(len(recent) - 1 - r)},
            )
            for r, j in enumerate(recent)
        ]
        return score, reasons


def _balanced(lengths: np.ndarray, parts: int, power: float) -> np.ndarray:
    """Bounds cutting a run of sequences into ``parts`` pieces of about equal work
    (``length ** power``: pairs grow linearly with a window, quadratically in a basket)."""
    cum = np.cumsum(lengths.astype(np.float64) ** power)
    targets = cum[-1] * np.arange(1, parts) / parts if len(cum) else np.zeros(parts - 1)
    cuts = np.searchsorted(cum, targets, side="left") + 1 if len(cum) else np.zeros(parts - 1)
    return np.r_[0, np.minimum(cuts, len(lengths)), len(lengths)].astype(np.int64)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
