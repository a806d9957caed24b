"""PyTorch modules of the sequence models (imported only when a model is fitted or scored)."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GRU4RecNet", "SASRecNet"]


class GRU4RecNet(nn.Module):
    """Item embedding -> GRU -> scores ``h W_out^T + b_out`` (Hidasi et al. 2016, with an
    embedding input layer as in Hidasi & Karatzoglou 2018)."""

    def __init__(self, n_items: int, dim: int, hidden: int, n_layers: int, dropout: float,
                 tied: bool = False) -> None:
        super().__init__()
        self.tied = tied
        self.embed = nn.Embedding(n_items, dim)
        self.gru = nn.GRU(dim, hidden, num_layers=n_layers, batch_first=True)
        self.drop = nn.Dropout(dropout)
        if tied:
            # scores <W h, e_i>: the input table doubles as the output table, so it starts at
            # an output layer's scale (Glorot & Bengio 2010) and the state is not dropped out
            self.proj = nn.Linear(hidden, dim, bias=False)
            nn.init.normal_(self.embed.weight, std=math.sqrt(2.0 / (n_items + dim)))
        else:
            self.out = nn.Embedding(n_items, hidden)
            self.out_bias = nn.Parameter(torch.zeros(n_items))
            nn.init.normal_(self.out.weight, std=1.0 / math.sqrt(hidden))
            nn.init.normal_(self.embed.weight, std=1.0 / math.sqrt(dim))

    def step(self, items: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One time step for a batch of sessions: new hidden state ``(layers, B, hidden)``."""
        x = self.drop(self.embed(items)).unsqueeze(1)
        _, h_new = self.gru(x, h)
        return h_new

    def states(self, padded: torch.Tensor) -> torch.Tensor:
        """Top-layer states ``(B, T, hidden)`` after each item of right-padded sequences
        (from a zero state; a state depends on its row's earlier items only)."""
        out, _ = self.gru(self.drop(self.embed(padded)))
        return out

    def final_state(self, padded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Last hidden state (top layer) of right-padded sequences of positive ``lengths``."""
        x = self.embed(padded)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)
        return h[-1]

    def scores(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of all items (or of ``items``) for top-layer states ``h``."""
        if self.tied:
            z = self.proj(h)
            return z @ (self.embed.weight if items is None else self.embed(items)).T
        h = self.drop(h)
        if items is None:
            return h @ self.out.weight.T + self.out_bias
        return h @ self.out(items).T + self.out_bias[items]


class _Block(nn.Module):
    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q = self.norm1(x)
        a, w = self.attn(q, x, x, attn_mask=mask, need_weights=need_weights,
                         average_attn_weights=True)
        x = q + self.drop(a)  # Kang & McAuley: residual on the normalised query
        x = x + self.ffn(self.norm2(x))
        return x, w


class SASRecNet(nn.Module):
    """Self-attentive sequential recommendation (Kang & McAuley 2018): item + learned position
    embeddings, causal self-attention blocks, scores ``h_t^T e_i`` with the shared item table.

    Item index ``i`` is stored at row ``i + 1``; row 0 is padding.
    """

    def __init__(self, n_items: int, dim: int, max_len: int, n_blocks: int, n_heads: int,
                 dropout: float) -> None:
        super().__init__()
        self.dim = dim
        self.n_heads = n_heads
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, n_heads, dropout) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.item.weight, std=1.0 / math.sqrt(dim))
        with torch.no_grad():
            self.item.weight[0].zero_()

    def forward(self, seq: torch.Tensor, need_weights: bool = False, offset: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Hidden states ``(B, L, dim)`` of left-padded ``seq`` (0 = padding; item ``i`` as
        ``i + 1``) and, with ``need_weights``, the last block's head-averaged attention.

        ``seq`` may be narrower than ``max_len`` when its first ``offset`` columns would all
        be padding: column ``c`` then takes position ``offset + c``, so the states of the real
        items are those of the full-width input."""
        B, L = seq.shape
        if offset < 0 or offset + L > self.pos.num_embeddings:
            raise ValueError(f"offset {offset} + width {L} exceeds max_len "
                             f"{self.pos.num_embeddings}")
        pad = seq == 0
        x = self.item(seq) * math.sqrt(self.dim)
        x = x + self.pos(torch.arange(offset, offset + L, device=seq.device))[None]
        x = self.drop(x) * (~pad).unsqueeze(-1)
        causal = torch.ones(L, L, dtype=torch.bool, device=seq.device).triu(1)
        mask = causal[None] | pad[:, None, :]
        # a padded query may attend to itself only: no all-masked row, no NaN
        eye = torch.eye(L, dtype=torch.bool, device=seq.device)[None]
        mask = mask & ~eye
        mask = mask.repeat_interleave(self.n_heads, dim=0)
        weights = None
        for block in self.blocks:
            x, weights = block(x, mask, need_weights)
            x = x * (~pad).unsqueeze(-1)
        return self.norm(x), weights

    def item_table(self) -> torch.Tensor:
        """Embeddings of the real items (without the padding row)."""
        return self.item.weight[1:]
