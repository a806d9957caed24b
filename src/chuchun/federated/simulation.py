"""In-process federated simulation: every user a client, messages as Python calls.

:class:`InProcessTransport` implements :class:`~chuchun.federated.strategy.Transport` over
:class:`~chuchun.federated.client.ClientRuntime` objects, with seeded failures: in each
``"train"`` exchange a ``dropout_fraction`` of the members drop (they received the request but
never reply) and a ``straggler_fraction`` reply after the server's deadline. Requests go
through the same handlers as in a Flower deployment, so the protocol (and what the server
receives) is the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chuchun.federated.client import ClientData, ClientRuntime
from chuchun.data.interactions import Interactions

__all__ = ["InProcessTransport", "clients_from_interactions"]


class InProcessTransport:
    """Calls each client's ``handle`` directly, dropping and delaying replies as configured."""

    def __init__(self, runtimes: dict[int, Any], *, dropout_fraction: float = 0.0,
                 straggler_fraction: float = 0.0, deadline: float | None = None,
                 rng: np.random.Generator | None = None) -> None:
        self.runtimes = runtimes
        self.dropout_fraction = float(dropout_fraction)
        self.straggler_fraction = float(straggler_fraction)
        self.deadline = deadline
        self.rng = rng if rng is not None else np.random.default_rng(0)
        #: every request and reply, when ``record`` is switched on (tests inspect it)
        self.log: list[tuple[str, int, dict[str, Any], dict[str, Any] | None]] = []
        self.record = False

    def clients(self) -> list[int]:
        return sorted(self.runtimes)

    def exchange(self, kind: str, requests: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        ids = sorted(requests)
        drop = np.zeros(len(ids), dtype=bool)
        late = np.zeros(len(ids), dtype=bool)
        if kind == "train" and ids:
            u = self.rng.random(len(ids))
            drop = u < self.dropout_fraction
            late = ~drop & (u < self.dropout_fraction + self.straggler_fraction)
        out: dict[int, dict[str, Any]] = {}
        from threadpoolctl import threadpool_limits

        # one BLAS thread: the per-client products are small and many; a thread pool per call
        # only contends for the cores
        with threadpool_limits(limits=1):
            replies = [self.runtimes[c].handle(kind, requests[c]) for c in ids]
        for c, dropped, is_late, reply in zip(ids, drop, late, replies, strict=True):
            if dropped:
                reply = None
            elif is_late:
                reply = dict(reply, elapsed=2.0 * (self.deadline or 1.0))
            if self.record:
                self.log.append((kind, c, requests[c], reply))
            if reply is not None:
                out[c] = reply
        return out


def clients_from_interactions(
    data: Interactions, n_factors: int, seed_seq: np.random.SeedSequence,
    validation_fraction: float = 0.0,
) -> dict[int, ClientRuntime]:
    """One client per user of ``data`` (client id = user index), each holding only that
    user's rows; a ``validation_fraction`` of each user's rows stays on the client for local
    validation."""
    csr = data.csr
    seeds = seed_seq.spawn(data.n_users)
    split_rng = np.random.default_rng(seed_seq.spawn(1)[0])
    out: dict[int, ClientRuntime] = {}
    for u in range(data.n_users):
        lo, hi = int(csr.indptr[u]), int(csr.indptr[u + 1])
        items = csr.indices[lo:hi].astype(np.int32)
        values = csr.data[lo:hi].astype(np.float32)
        cd = ClientData(items, values)
        if validation_fraction > 0 and len(items) > 1:
            n_val = int(round(len(items) * validation_fraction))
            n_val = min(max(n_val, 0), len(items) - 1)
            if n_val:
                perm = split_rng.permutation(len(items))
                v, t = np.sort(perm[:n_val]), np.sort(perm[n_val:])
                cd = ClientData(items[t], values[t], items[v], values[v])
        out[u] = ClientRuntime(u, {u: cd}, n_factors,
                               int(seeds[u].generate_state(1, np.uint64)[0] >> np.uint64(1)))
    return out
