"""Next-item recommenders on PyTorch: GRU4Rec (Hidasi et al. 2016; Hidasi & Karatzoglou 2018)
and SASRec (Kang & McAuley 2018).

torch is imported only when one of these models is fitted or scored (optional ``deep``
extra). Both run on ``device`` (CPU by default), seed every generator they use from
``random_state`` (torch's inside a forked RNG state, so the caller's is untouched), and keep
their weights as one float32 array in the fitted state, so artifacts hold plain arrays and
never pickle.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from chuchun._exceptions import ConfigError
from chuchun._params import Param, random_state_param
from chuchun._random import check_random_state, kernel_seed
from chuchun.data.interactions import Interactions
from chuchun.data.sequences import Sequences, pad_sequences
from chuchun.models._results import Reason
from chuchun.models._sequential import (
    EpochCallback,
    EpochLoop,
    _SequenceRecommender,
    next_item_metrics,
    validation_targets,
)

if TYPE_CHECKING:
    import torch

__all__ = ["GRU4Rec", "SASRec"]


@contextlib.contextmanager
def _torch_threads(n_threads: int | None) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _TorchSequenceModel(_SequenceRecommender):
    """Training loop, weights-as-arrays and scoring shared by GRU4Rec and SASRec."""

    n_factors = Param(int, 64, "Size of the item embeddings and hidden states.", low=1)
    max_len = Param(int, 50, "Most recent items a sequence is cut to.", low=1)
    n_epochs = Param(int, 30, "Maximum passes over the training sequences.", low=1)
    batch_size = Param(int, 128, "Sequences per mini-batch.", low=1)
    learning_rate = Param(float, 1e-3, "Adam step size.", low=0, low_open=True)
    weight_decay = Param(float, 0.0, "Adam L2 weight decay.", low=0)
    dropout = Param(float, 0.2, "Dropout rate.", low=0, high=1, high_open=True)
    loss = Param(str, "ce", "Training loss.", choices=("ce", "bce", "bpr-max"))
    n_negatives = Param(int, 0, "Sampled negatives per step (0: softmax over all items).", low=0)
    patience = Param(int, 3, "Epochs without validation NDCG@10 gain before stopping.", low=1)
    stride = Param(int, None, "Training windows of max_len + 1 items end every `stride` "
                   "items and train their last `stride` targets, so each target sees up to "
                   "max_len items of context (None: stride = max_len, consecutive windows).",
                   low=1, nullable=True)
    device = Param(str, "cpu", "torch device ('cpu', 'cuda', 'cuda:1', 'mps').")
    n_threads = Param(int, None, "torch CPU threads (None: torch's default).", low=1,
                      nullable=True)
    random_state = random_state_param("Seed of initialisation, dropout, batching and sampling.")
    verbose = Param(bool, False, "Show a progress bar with the per-epoch loss.")

    _losses: ClassVar[tuple[str, ...]] = ("ce",)

    # -- fitting ------------------------------------------------------------------------------
    def _fit(
        self,
        data: Interactions,
        *,
        validation: Interactions | None = None,
        callbacks: Sequence[EpochCallback] | None = None,
    ) -> None:
        """Train; with ``validation`` (e.g. the validation part of
        :func:`~chuchun.data.leave_last_out`) stop early on its NDCG@10 and keep the best
        epoch. ``callbacks`` receive ``cb(model, epoch, logs)`` after every epoch."""
        import torch

        if self.loss not in self._losses:
            raise ConfigError(
                f"{type(self).__name__} supports loss in {self._losses}; got {self.loss!r}"
            )
        self._net = None
        seqs = self._store_sequences(data)
        rng = check_random_state(self.random_state)
        val = validation_targets(data, validation)
        device = self._device()
        devices = [device] if device.type == "cuda" else []
        loop = EpochLoop(self, int(self.n_epochs), callbacks, int(self.patience) if val else 0,
                         type(self).__name__)
        best: dict[str, torch.Tensor] | None = None
        try:
            with _torch_threads(self.n_threads), torch.random.fork_rng(devices=devices):
                torch.manual_seed(kernel_seed(rng))
                net = self._build(data.n_items).to(device)
                opt = _Adam(list(net.parameters()), float(self.learning_rate),
                            float(self.weight_decay))
                self._set_net(net)
                sample_p = self._noise(seqs, data.n_items)
                for epoch in range(int(self.n_epochs)):
                    net.train()
                    loss = self._train_epoch(net, opt, seqs, rng, sample_p)
                    net.eval()
                    metrics = next_item_metrics(self, *val) if val is not None else None
                    stop = loop.end_epoch(epoch, loss, metrics)
                    if loop.improved:
                        best = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    if stop:
                        break
                if best is not None:
                    net.load_state_dict(best)
        finally:
            loop.close()
        self._set_net(net)
        self._store_weights(net)
        self.history_ = loop.history
        self.best_epoch_ = loop.best_epoch if val is not None else len(loop.history["loss"]) - 1

    def _device(self) -> torch.device:
        import torch

        try:
            return torch.device(self.device)
        except RuntimeError as exc:
            raise ConfigError(f"device must name a torch device; got {self.device!r}") from exc

    def _noise(self, seqs: Sequences, n_items: int) -> np.ndarray:
        """Sampling distribution of negatives: uniform over the catalogue."""
        return np.full(n_items, 1.0 / n_items)

    def _set_net(self, net: Any) -> None:
        net.eval()
        self._net = net

    def _store_weights(self, net: Any) -> None:
        state = net.state_dict()
        names = sorted(state)
        self.weight_names_ = names
        self.weight_shapes_ = [list(state[n].shape) for n in names]
        self.weights_ = np.concatenate(
            [state[n].detach().cpu().numpy().astype(np.float32).reshape(-1) for n in names]
        ) if names else np.empty(0, np.float32)

    def _module(self) -> Any:
        """The network, rebuilt from ``weights_`` after loading an artifact."""
        net = getattr(self, "_net", None)
        if net is not None:
            return net
        import torch

        net = self._build(len(self.items_))
        state = {}
        offset = 0
        for name, shape in zip(self.weight_names_, self.weight_shapes_, strict=True):
            size = int(np.prod(shape)) if shape else 1
            state[name] = torch.from_numpy(
                self.weights_[offset : offset + size].reshape(shape).copy()
            )
            offset += size
        net.load_state_dict(state)
        net = net.to(self._device())
        self._set_net(net)
        return net

    # -- scoring ------------------------------------------------------------------------------
    def _score_sequences(self, sequences: list[np.ndarray]) -> np.ndarray:
        import torch

        out = np.empty((len(sequences), len(self.items_)), dtype=np.float32)
        empty = np.array([len(s) == 0 for s in sequences], dtype=bool)
        # no history, no state: rank by training popularity
        out[empty] = self.item_popularity_
        rows = np.flatnonzero(~empty)
        if len(rows):
            net = self._module()
            with torch.no_grad(), _torch_threads(self.n_threads):
                scores = self._forward_scores(net, [sequences[r] for r in rows])
            out[rows] = scores.cpu().numpy()
        return out

    # -- training windows (SASRec; GRU4Rec with training="windows") -------------------------
    def _length_batches(self, lengths: np.ndarray, rng: np.random.Generator
                        ) -> list[np.ndarray]:
        """Mini-batches of window indices, each window once: windows are shuffled, sorted by
        length within groups of 16 batches (so a batch is padded to about its own windows'
        length rather than to ``max_len``), cut into batches, and the batches shuffled."""
        step = int(self.batch_size)
        order = rng.permutation(len(lengths))
        group = 16 * step
        batches: list[np.ndarray] = []
        for g in range(0, len(order), group):
            chunk = order[g : g + group]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(chunk[c : c + step] for c in range(0, len(chunk), step))
        return [batches[b] for b in rng.permutation(len(batches))]

    def _windows(self, seqs: Sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``[start, end)`` offsets into ``seqs.items`` of the training windows, up to
        ``max_len + 1`` items each, and how many of each window's last (input, next item)
        pairs are trained. SASRec's ``windows="last"``: each sequence's latest window only, all
        its pairs (Kang & McAuley 2018); otherwise windows ending every ``stride`` items back
        from the end, each training its last ``stride`` pairs, so that every transition of
        every sequence is a target exactly once per epoch. With ``stride < max_len`` the
        windows overlap and each target is predicted from up to ``max_len`` earlier items
        rather than from its offset within a window."""
        L = int(self.max_len)
        lo, hi = seqs.indptr[:-1], seqs.indptr[1:]
        keep = hi - lo >= 2
        lo, hi = lo[keep].astype(np.int64), hi[keep].astype(np.int64)
        if getattr(self, "windows", "all") == "last":
            start = np.maximum(lo, hi - L - 1)
            return start, hi, hi - start - 1
        S = min(L, int(self.stride)) if self.stride is not None else L
        # window k of a sequence ends k * S items before its end; the oldest one trains the
        # pairs left down to the sequence's first item
        n_windows = np.maximum(1, -(-(hi - lo - 1) // S))
        seq_of = np.repeat(np.arange(len(lo)), n_windows)
        k = np.arange(len(seq_of)) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
        end = hi[seq_of] - k * S
        n_train = np.minimum(S, end - lo[seq_of] - 1)
        return np.maximum(lo[seq_of], end - L - 1), end, n_train

    # hooks of the two models
    @abc.abstractmethod
    def _build(self, n_items: int) -> Any:
        """A freshly initialised network for ``n_items`` items."""

    @abc.abstractmethod
    def _train_epoch(self, net: Any, opt: Any, seqs: Sequences, rng: np.random.Generator,
                     sample_p: np.ndarray) -> float:
        """One pass over the training sequences; returns the mean loss."""

    @abc.abstractmethod
    def _forward_scores(self, net: Any, sequences: list[np.ndarray]) -> torch.Tensor:
        """Scores ``(len(sequences), n_items)`` of non-empty ordered sequences."""


class _Adam:
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient, as
    ``torch.optim.Adam`` does; written out because ``torch.optim`` loads the graph compiler on
    first use, which costs seconds and does nothing for these small models."""

    def __init__(self, params: list[Any], lr: float, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        import torch

        self.params = params
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        self.t += 1
        b1, b2 = self.betas
        c1 = 1.0 - b1**self.t
        c2 = 1.0 - b2**self.t
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                if p.grad is None:
                    continue
                g = p.grad
                if self.weight_decay:
                    g = g.add(p, alpha=self.weight_decay)
                m.mul_(b1).add_(g, alpha=1.0 - b1)
                v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                denom = (v / c2).sqrt_().add_(self.eps)
                p.addcdiv_(m, denom, value=-self.lr / c1)


def _sampled_ce(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of the positive against sampled negatives (column 0 = positive)."""
    import torch

    logits = torch.cat([pos[:, None], neg], dim=1)
    return torch.nn.functional.cross_entropy(
        logits, torch.zeros(len(pos), dtype=torch.long, device=pos.device)
    )


def _bpr_max(pos: torch.Tensor, neg: torch.Tensor, reg: float) -> torch.Tensor:
    """BPR-max (Hidasi & Karatzoglou 2018, eq. 5 and 6): negatives weighted by their softmax."""
    import torch

    s = torch.softmax(neg, dim=1)
    inner = (s * torch.sigmoid(pos[:, None] - neg)).sum(dim=1)
    return (-torch.log(inner + 1e-24) + reg * (s * neg.pow(2)).sum(dim=1)).mean()


class GRU4Rec(_TorchSequenceModel):
    """Session-based recommendation with a GRU (GRU4Rec).

    Item embeddings :math:`x_t = E[i_t]` drive a gated recurrent unit

    .. math::

        z_t = \\sigma(W_z x_t + U_z h_{t-1}),\\quad r_t = \\sigma(W_r x_t + U_r h_{t-1}),

        \\hat h_t = \\tanh(W x_t + U (r_t \\odot h_{t-1})),\\quad
        h_t = (1 - z_t) \\odot h_{t-1} + z_t \\odot \\hat h_t,

    and the next item is scored :math:`s_{t,i} = o_i^\\top h_t + b_i`, or, with
    ``tie_embeddings``, :math:`s_{t,i} = E[i]^\\top W h_t` (one table for inputs and
    outputs, initialised at an output layer's scale; dropout on the inputs only). With
    ``training="sessions"`` it trains on session-parallel mini-batches (Hidasi et al. 2016,
    sec. 3.1.1): ``batch_size`` sequences run side by side, one step at a time; when one ends
    the next takes its lane with a reset hidden state; gradients flow back through ``bptt``
    steps (one by default, as in the paper; the state itself is carried over the whole
    sequence). With ``training="windows"`` it trains on SASRec's windows: shuffled windows of
    up to ``max_len + 1`` items ending every ``stride`` items, each run from a zero state,
    the loss on its last ``stride`` next items; for long user histories this decorrelates
    the updates, which session-parallel lanes keep on the same users for hundreds of steps.
    The other targets of the batch serve as negatives, plus ``n_negatives`` items shared by
    the batch drawn with probability :math:`\\propto f_i^{\\alpha}` (``sample_alpha``). Losses:
    ``"ce"``, softmax cross-entropy over the positive and the negatives (over the whole
    catalogue when ``n_negatives=0``), or ``"bpr-max"`` (Hidasi & Karatzoglou 2018)

    .. math:: L = -\\log \\sum_j s_j \\sigma(r_i - r_j) + \\lambda \\sum_j s_j r_j^2,
              \\qquad s_j = \\mathrm{softmax}_j(r_j),

    :math:`\\lambda` = ``bpreg``. A user is scored from the hidden state after their last
    ``max_len`` items.

    Parameters
    ----------
    n_factors, n_layers, max_len, n_epochs, batch_size, learning_rate, weight_decay, dropout,
    loss, n_negatives, sample_alpha, bpreg, training, stride, bptt, tie_embeddings, patience,
    device, n_threads, random_state, verbose
        See the declarations.

    Attributes
    ----------
    weights_ : ndarray float32
        All network parameters, flattened in the order of ``weight_names_`` with shapes
        ``weight_shapes_``.
    history_ : dict
        ``loss``, ``val_ndcg``, ``val_hit`` per epoch. ``best_epoch_``: the epoch kept.

    Notes
    -----
    ``explain`` occludes each of the user's last ``explain_last`` items in turn and reports
    how much the score falls without it (``contribution = s(full) - s(without item)``). It
    names the recent items the state depends on; the contributions do not add up to the
    score, and an item's effect is measured with all other items present.

    References
    ----------
    B. Hidasi, A. Karatzoglou, L. Baltrunas, D. Tikk. Session-based recommendations with
    recurrent neural networks. ICLR 2016. B. Hidasi, A. Karatzoglou. Recurrent neural
    networks with top-k gains for session-based recommendations. CIKM 2018.
    """

    n_layers = Param(int, 1, "Stacked GRU layers.", low=1)
    max_len = Param(int, 200, "Most recent items the state is computed from.", low=1)
    n_epochs = Param(int, 10, "Maximum passes over the training sequences.", low=1)
    batch_size = Param(int, 64, "Parallel sessions per mini-batch.", low=1)
    n_negatives = Param(int, 0, "Shared sampled negatives per step besides the other lanes' "
                        "targets (0: softmax over all items).", low=0)
    sample_alpha = Param(float, 0.5, "Negatives drawn with probability ~ popularity^alpha.",
                         low=0)
    bpreg = Param(float, 1.0, "Score regularisation lambda of BPR-max.", low=0)
    dropout = Param(float, 0.1, "Dropout on the input embedding and the hidden state (the "
                    "input only with tie_embeddings).", low=0, high=1, high_open=True)
    training = Param(str, "sessions", "'sessions': session-parallel mini-batches, each lane "
                     "running a whole sequence (Hidasi et al. 2016); 'windows': shuffled "
                     "windows of max_len + 1 items ending every `stride` items, each from a "
                     "zero state with gradients through the window.",
                     choices=("sessions", "windows"))
    bptt = Param(int, 1, "With training='sessions', time steps a gradient flows back "
                 "through: the losses of `bptt` consecutive steps are summed before each "
                 "update and the state is detached between such chunks (1: one step, as in "
                 "Hidasi et al. 2016).", low=1)
    tie_embeddings = Param(bool, False, "Score items with the input embedding table through "
                           "a linear map of the state, <W h_t, E[i]>, instead of a separate "
                           "output table with item biases (dropout then acts on the inputs "
                           "only).")
    explain_last = Param(int, 5, "Recent items explain() occludes.", low=1)

    explain_is_additive: ClassVar[bool] = False
    explain_method: ClassVar[str] = (
        "score drop when each of the user's last items is left out of the sequence (occlusion)"
    )
    _losses: ClassVar[tuple[str, ...]] = ("ce", "bpr-max")
    _test_params: ClassVar[dict[str, Any]] = {
        "n_factors": 8, "n_epochs": 2, "batch_size": 8, "n_threads": 1,
    }

    def _build(self, n_items: int) -> Any:
        from chuchun.models.neural._nets import GRU4RecNet

        d = int(self.n_factors)
        return GRU4RecNet(n_items, d, d, int(self.n_layers), float(self.dropout),
                          tied=bool(self.tie_embeddings))

    def _noise(self, seqs: Sequences, n_items: int) -> np.ndarray:
        counts = np.bincount(seqs.items, minlength=n_items).astype(np.float64)
        p = counts ** float(self.sample_alpha)
        return p / p.sum()

    def _loss(self, net: Any, top: torch.Tensor, tgt: torch.Tensor, tgt_np: np.ndarray,
              rng: np.random.Generator, sample_p: np.ndarray) -> torch.Tensor:
        """Mean loss of top-layer states ``top`` against next items ``tgt``: softmax over the
        catalogue, or over the batch's targets plus ``n_negatives`` shared sampled items."""
        import torch

        if self.n_negatives == 0 and self.loss == "ce":
            return torch.nn.functional.cross_entropy(net.scores(top), tgt)
        extra = rng.choice(len(sample_p), size=int(self.n_negatives), p=sample_p)
        cands_np = np.concatenate([tgt_np, extra])
        cands = torch.from_numpy(cands_np).to(top.device)
        logits = net.scores(top, cands)
        same = torch.from_numpy(cands_np[None, :] == tgt_np[:, None]).to(top.device)
        pos = logits.diagonal()
        # the positive and copies of it among the candidates are no negatives
        if self.loss == "ce":
            return _sampled_ce(pos, logits.masked_fill(same, -1e9))
        return _bpr_max(pos, logits.masked_fill(same, -1e4), float(self.bpreg))

    def _train_epoch(self, net: Any, opt: Any, seqs: Sequences, rng: np.random.Generator,
                     sample_p: np.ndarray) -> float:
        if self.training == "windows":
            return self._train_windows(net, opt, seqs, rng, sample_p)
        return self._train_sessions(net, opt, seqs, rng, sample_p)

    def _train_windows(self, net: Any, opt: Any, seqs: Sequences, rng: np.random.Generator,
                       sample_p: np.ndarray) -> float:
        """Shuffled windows of up to ``max_len + 1`` items, each run from a zero state with
        gradients through the whole window; the loss covers each window's last ``stride``
        next items (as SASRec's windows)."""
        import torch

        device = self._device()
        starts, ends, n_train = self._windows(seqs)
        items = seqs.items
        total, count = 0.0, 0
        for batch in self._length_batches(ends - starts, rng):
            lengths = (ends[batch] - starts[batch] - 1).astype(np.int64)
            width = int(lengths.max())
            inp_np = np.zeros((len(batch), width), dtype=np.int64)
            for r, w in enumerate(batch):
                inp_np[r, : lengths[r]] = items[starts[w] : ends[w] - 1]
            # right-padded: row r's trained pairs are its columns [len - n_train, len)
            cols = np.arange(width)[None, :]
            keep = (cols < lengths[:, None]) & (cols >= (lengths - n_train[batch])[:, None])
            rows, pos = np.nonzero(keep)
            tgt_np = items[starts[batch][rows] + pos + 1].astype(np.int64)
            out = net.states(torch.from_numpy(inp_np).to(device))
            top = out[torch.from_numpy(rows).to(device), torch.from_numpy(pos).to(device)]
            tgt = torch.from_numpy(tgt_np).to(device)
            loss = self._loss(net, top, tgt, tgt_np, rng, sample_p)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(tgt_np)
            count += len(tgt_np)
        return total / max(count, 1)

    def _train_sessions(self, net: Any, opt: Any, seqs: Sequences, rng: np.random.Generator,
                        sample_p: np.ndarray) -> float:
        import torch

        device = self._device()
        order = rng.permutation(np.flatnonzero(seqs.lengths >= 2))
        if len(order) == 0:
            return float("nan")
        starts, ends = seqs.indptr[order], seqs.indptr[order + 1]
        B = min(int(self.batch_size), len(order))
        ptr = starts[:B].copy()  # position of each lane's current input item
        end = ends[:B].copy()
        nxt = B
        H = int(self.n_factors)
        h = torch.zeros(int(self.n_layers), B, H, device=device)
        items = seqs.items
        total, steps = 0.0, 0
        bptt = int(self.bptt)
        chunk, chunk_n, in_chunk = torch.zeros((), device=device), 0, 0
        while True:
            alive = np.flatnonzero(ptr >= 0)
            if len(alive) == 0:
                break
            inp = torch.from_numpy(items[ptr[alive]].astype(np.int64)).to(device)
            tgt_np = items[ptr[alive] + 1].astype(np.int64)
            tgt = torch.from_numpy(tgt_np).to(device)
            alive_t = torch.from_numpy(alive).to(device)
            h_new = net.step(inp, h[:, alive_t])
            loss = self._loss(net, h_new[-1], tgt, tgt_np, rng, sample_p)
            chunk = chunk + loss * len(alive)
            chunk_n += len(alive)
            total += float(loss.detach()) * len(alive)
            steps += len(alive)
            # the state keeps its graph within a chunk of bptt steps (a fresh tensor per
            # step, so the states saved for the backward pass stay as they were)
            h = h.clone()
            h[:, alive_t] = h_new
            ptr[alive] += 1
            for lane in alive[ptr[alive] + 1 >= end[alive]]:
                if nxt < len(order):
                    ptr[lane], end[lane] = starts[nxt], ends[nxt]
                    nxt += 1
                else:
                    ptr[lane] = -1
                h[:, lane] = 0.0
            in_chunk += 1
            if in_chunk == bptt or not np.any(ptr >= 0):
                opt.zero_grad()
                (chunk / chunk_n).backward()
                opt.step()
                h = h.detach()
                chunk, chunk_n, in_chunk = torch.zeros((), device=device), 0, 0
        return total / max(steps, 1)

    def _forward_scores(self, net: Any, sequences: list[np.ndarray]) -> torch.Tensor:
        import torch

        device = self._device()
        L = int(self.max_len)
        out = []
        for c in range(0, len(sequences), 512):
            chunk = [np.asarray(s)[-L:] for s in sequences[c : c + 512]]
            lengths = torch.tensor([len(s) for s in chunk], dtype=torch.long)
            padded = np.zeros((len(chunk), int(lengths.max())), dtype=np.int64)
            for r, s in enumerate(chunk):
                padded[r, : len(s)] = s
            h = net.final_state(torch.from_numpy(padded).to(device), lengths)
            out.append(net.scores(h))
        return torch.cat(out)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        seq = self._user_sequence(user_idx)[-int(self.max_len):]
        score = float(self._score_sequences([seq])[0, item_idx])
        last = min(int(self.explain_last), len(seq))
        positions = range(len(seq) - last, len(seq))
        occluded = [np.delete(seq, p) for p in positions]
        without = self._score_sequences(occluded)[:, item_idx] if occluded else np.empty(0)
        reasons = [
            Reason(
                kind="item",
                id=_plain(self.items_.ids[seq[p]]),
                contribution=float(score - without[r]),
                detail={"age": int(len(seq) - 1 - p), "score_without": float(without[r])},
            )
            for r, p in enumerate(positions)
        ]
        return score, reasons


class SASRec(_TorchSequenceModel):
    """Self-attentive sequential recommendation (SASRec).

    The last ``max_len`` items :math:`i_1..i_L` of a user (left-padded) are embedded as
    :math:`\\sqrt{d}\\,E[i_t] + P_t` (learned positions) and passed through ``n_blocks``
    blocks of causal multi-head self-attention and a point-wise feed-forward network, each
    with layer normalisation, residual connections and dropout (Kang & McAuley 2018, sec.
    III). The state :math:`F_t` at position :math:`t` scores the next item with the shared
    item table, :math:`r_{t,i} = F_t^\\top E[i]`. Training predicts every next item of every
    sequence: with ``windows="all"`` each sequence is cut, from its end back, into windows of
    ``max_len + 1`` items, so each transition is a target once per epoch whatever the
    sequence's length (``"last"``: only each sequence's latest window, as in the paper's
    code, which leaves most of a long history unused). ``loss="ce"`` is softmax cross-entropy
    over the whole catalogue (``n_negatives=0``) or over ``n_negatives`` uniformly sampled
    items; ``loss="bce"`` is the paper's binary cross-entropy with ``max(1, n_negatives)``
    sampled negatives per position

    .. math:: -\\sum_t \\Big[\\log \\sigma(r_{t,i_{t+1}})
              + \\sum_{j \\in S_t} \\log(1 - \\sigma(r_{t,j}))\\Big].

    A user's scores are :math:`r_{L,\\cdot}` at their last position.

    Parameters
    ----------
    n_factors, n_blocks, n_heads, windows, stride, max_len, n_epochs, batch_size, learning_rate,
    weight_decay, dropout, loss, n_negatives, patience, device, n_threads, random_state, verbose
        See the declarations.

    Attributes
    ----------
    weights_, weight_names_, weight_shapes_, history_, best_epoch_
        As in :class:`GRU4Rec`.

    Notes
    -----
    ``explain`` reports the last block's attention weights (averaged over heads) from the
    user's last position to each item of their sequence. They say which items the final
    state *read*, for any candidate item alike: they are not a decomposition of the score,
    and attention weights are known to be an imperfect account of what a network relies on
    (Jain & Wallace 2019).

    References
    ----------
    W.-C. Kang, J. McAuley. Self-attentive sequential recommendation. ICDM 2018.
    A. Vaswani et al. Attention is all you need. NIPS 2017.
    """

    n_blocks = Param(int, 2, "Self-attention blocks.", low=1)
    n_heads = Param(int, 1, "Attention heads (must divide n_factors).", low=1)
    windows = Param(str, "all", "Training windows of max_len + 1 items: 'all' cuts every "
                    "sequence into windows ending every `stride` items (each transition "
                    "trained once per epoch); 'last' takes each sequence's latest window only.",
                    choices=("all", "last"))

    explain_is_additive: ClassVar[bool] = False
    explain_method: ClassVar[str] = (
        "last block's attention from the user's latest position to each item of the sequence"
    )
    _losses: ClassVar[tuple[str, ...]] = ("ce", "bce")
    _test_params: ClassVar[dict[str, Any]] = {
        "n_factors": 8, "n_epochs": 2, "max_len": 10, "n_blocks": 1, "batch_size": 16,
        "n_threads": 1,
    }

    def _build(self, n_items: int) -> Any:
        from chuchun.models.neural._nets import SASRecNet

        if int(self.n_factors) % int(self.n_heads):
            raise ConfigError(
                f"n_heads must divide n_factors; got n_heads={self.n_heads}, "
                f"n_factors={self.n_factors}"
            )
        return SASRecNet(n_items, int(self.n_factors), int(self.max_len), int(self.n_blocks),
                         int(self.n_heads), float(self.dropout))

    def _inputs(self, sequences: list[np.ndarray], width: int | None = None) -> np.ndarray:
        width = int(self.max_len) if width is None else width
        return pad_sequences([np.asarray(s) + 1 for s in sequences], width, pad=0)

    def _train_epoch(self, net: Any, opt: Any, seqs: Sequences, rng: np.random.Generator,
                     sample_p: np.ndarray) -> float:
        import torch

        device = self._device()
        L = int(self.max_len)
        starts, ends, n_train = self._windows(seqs)
        items = seqs.items
        n_items = len(sample_p)
        total, count = 0.0, 0
        for batch in self._length_batches(ends - starts, rng):
            tails = [items[starts[w] : ends[w]] for w in batch]
            # pad to the batch's longest window, not to max_len (positions stay aligned)
            width = int(max(len(t) for t in tails)) - 1
            inp = torch.from_numpy(self._inputs([t[:-1] for t in tails], width).astype(np.int64))
            tgt_np = self._inputs([t[1:] for t in tails], width).astype(np.int64)
            # windows are right-aligned: a window's trained pairs are its last n_train columns
            tgt_np[np.arange(width)[None, :] < width - n_train[batch][:, None]] = 0
            tgt = torch.from_numpy(tgt_np)
            inp, tgt = inp.to(device), tgt.to(device)
            h, _ = net(inp, offset=L - width)
            valid = tgt > 0
            hv = h[valid]
            tv = tgt[valid] - 1
            table = net.item_table()
            if self.loss == "ce" and self.n_negatives == 0:
                loss = torch.nn.functional.cross_entropy(hv @ table.T, tv)
            else:
                pos = (hv * table[tv]).sum(dim=1)
                n_neg = max(1, int(self.n_negatives))
                shape = (len(tv), n_neg) if self.loss == "bce" else (n_neg,)
                neg_np = rng.integers(0, n_items, size=shape)
                negs = torch.from_numpy(neg_np).to(device)
                if self.loss == "bce":
                    neg = (hv[:, None, :] * table[negs]).sum(dim=2)
                    clash = negs == tv[:, None]
                    ls = torch.nn.functional.logsigmoid
                    loss = -(ls(pos).sum() + (ls(-neg) * ~clash).sum()) / len(tv)
                else:
                    neg = hv @ table[negs].T
                    neg = neg.masked_fill(negs[None, :] == tv[:, None], -1e9)
                    loss = _sampled_ce(pos, neg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(tv)
            count += len(tv)
        return total / max(count, 1)

    def _forward_scores(self, net: Any, sequences: list[np.ndarray]) -> torch.Tensor:
        import torch

        device = self._device()
        L = int(self.max_len)
        table = net.item_table()
        out = torch.empty((len(sequences), table.shape[0]), device=device)
        # shortest first, each chunk padded to its longest sequence (positions offset)
        lengths = np.array([min(len(s), L) for s in sequences])
        order = np.argsort(lengths, kind="stable")
        for c in range(0, len(sequences), 512):
            rows = order[c : c + 512]
            width = max(1, int(lengths[rows].max()))
            inp = self._inputs([sequences[r] for r in rows], width).astype(np.int64)
            h, _ = net(torch.from_numpy(inp).to(device), offset=L - width)
            out[torch.from_numpy(rows).to(device)] = h[:, -1] @ table.T
        return out

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        import torch

        seq = self._user_sequence(user_idx)[-int(self.max_len):]
        score = float(self._score_sequences([seq])[0, item_idx])
        if len(seq) == 0:
            return score, []
        net = self._module()
        with torch.no_grad(), _torch_threads(self.n_threads):
            inp = torch.from_numpy(self._inputs([seq]).astype(np.int64)).to(self._device())
            _, weights = net(inp, need_weights=True)
        w = weights[0, -1].cpu().numpy()[-len(seq):]
        merged: dict[int, float] = {}
        for p, j in enumerate(seq):
            merged[int(j)] = merged.get(int(j), 0.0) + float(w[p])
        last_pos = {int(j): len(seq) - 1 - p for p, j in enumerate(seq)}
        reasons = [
            Reason(kind="item", id=_plain(self.items_.ids[j]), contribution=a,
                   detail={"attention": a, "age": int(last_pos[j])})
            for j, a in merged.items()
        ]
        return score, reasons


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v

