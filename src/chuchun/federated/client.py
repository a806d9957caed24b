"""Client side of federated matrix factorisation: what runs where the ratings live.

A client holds one user's interactions (item indices into the shared catalogue and their
values) and that user's private parameters (factor vector :math:`p_u`, bias :math:`b_u`). Each
round it receives the global item state, updates its private parameters against it, and
returns **one flat float vector** laid out by an :class:`UpdateLayout`: item-side quantities
only, dense over the whole catalogue, so the shape never depends on which items the user rated.

Explicit feedback (:func:`explicit_update`)
    ``n_epochs`` passes of biased-MF SGD over the client's own ratings (the FunkSVD update rule
    of :func:`chuchun.kernels.mf.sgd_epoch`) on a local copy of the item factors; the upload is
    the change of the item factors and item biases and the client's per-item rating counts
    (for the per-item weighted average on the server).
Implicit feedback (:func:`implicit_update`)
    the exact ALS user solve with the item factors fixed (the user half-step of ImplicitALS,
    :func:`chuchun.kernels.implicit_als.als_cholesky_update`), then the negative half-gradient
    of the user's weighted loss with respect to every item factor,
    :math:`c_{ui}(p_{ui} - x_u^\\top y_i)\\,x_u`, the user's Gram :math:`x_u x_u^\\top` and the
    trace of the user's confidence correction per item, :math:`(c_{ui} - 1)\\lVert x_u\\rVert^2`
    (the server's preconditioner, see :mod:`chuchun.federated.strategy`).

Neither upload contains :math:`p_u` or :math:`b_u`. Both are still functions of them (the
implicit gradient rows are multiples of :math:`x_u`), which is why the server should only ever
see sums: see :mod:`chuchun.federated.secagg` and ``docs/federated.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chuchun._exceptions import DataError

__all__ = [
    "ClientData",
    "ClientState",
    "ExplicitConfig",
    "GlobalState",
    "ImplicitConfig",
    "UpdateLayout",
    "explicit_update",
    "implicit_solve_users",
    "implicit_update",
]


@dataclass(frozen=True)
class UpdateLayout:
    """Names and shapes of the parts of a flat update vector, in order."""

    parts: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def size(self) -> int:
        return int(sum(int(np.prod(shape)) for _, shape in self.parts))

    def flatten(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        out = np.empty(self.size, dtype=np.float64)
        pos = 0
        for name, shape in self.parts:
            value = np.asarray(arrays[name], dtype=np.float64)
            if value.shape != shape:
                raise DataError(f"update part {name!r} has shape {value.shape}; expected {shape}")
            n = value.size
            out[pos:pos + n] = value.reshape(-1)
            pos += n
        return out

    def add_into(self, out: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        """``out += flatten(arrays)`` without the intermediate vector (the in-process
        simulation sums hundreds of catalogue-sized uploads per round)."""
        if out.shape != (self.size,):
            raise DataError(f"update vector has shape {out.shape}; expected ({self.size},)")
        pos = 0
        for name, shape in self.parts:
            value = np.asarray(arrays[name])
            if value.shape != shape:
                raise DataError(f"update part {name!r} has shape {value.shape}; expected {shape}")
            n = value.size
            out[pos:pos + n] += value.reshape(-1)
            pos += n

    def split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        if flat.shape != (self.size,):
            raise DataError(f"update vector has shape {flat.shape}; expected ({self.size},)")
        out: dict[str, np.ndarray] = {}
        pos = 0
        for name, shape in self.parts:
            n = int(np.prod(shape))
            out[name] = flat[pos:pos + n].reshape(shape)
            pos += n
        return out

    @classmethod
    def explicit(cls, n_items: int, n_factors: int) -> UpdateLayout:
        return cls((("item_factors", (n_items, n_factors)), ("item_bias", (n_items,)),
                    ("item_counts", (n_items,))))

    @classmethod
    def implicit(cls, n_items: int, n_factors: int) -> UpdateLayout:
        return cls((("item_factors", (n_items, n_factors)), ("gram", (n_factors, n_factors)),
                    ("item_curvature", (n_items,))))


@dataclass
class GlobalState:
    """What the server broadcasts each round: the item side of the model."""

    item_factors: np.ndarray  # float32 (n_items, n_factors)
    item_bias: np.ndarray  # float32 (n_items,); zeros for implicit feedback
    intercept: float = 0.0


@dataclass
class ClientData:
    """One user's interactions: catalogue indices and values, plus held-out validation rows."""

    items: np.ndarray  # int32
    values: np.ndarray  # float32
    val_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    val_values: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @property
    def n_examples(self) -> int:
        return len(self.items)


@dataclass
class ClientState:
    """The user's private parameters; they stay on the client."""

    factors: np.ndarray  # float32 (n_factors,)
    bias: float = 0.0


@dataclass(frozen=True)
class ExplicitConfig:
    n_epochs: int
    learning_rate: float
    regularization: float
    bias_regularization: float


@dataclass(frozen=True)
class ImplicitConfig:
    regularization: float
    alpha: float


def explicit_update(
    glob: GlobalState, data: ClientData, state: ClientState, config: ExplicitConfig,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Local SGD on the client's ratings; updates ``state`` in place.

    Returns the upload parts (item factor change, item bias change, per-item counts) and local
    metrics: ``sse``/``n`` of the training ratings seen during the last local pass and of the
    client's validation ratings after the update.
    """
    from chuchun.kernels.mf import sgd_epoch  # imported on use: a Flower client starts per message

    n = data.n_examples
    n_items = len(glob.item_bias)
    items = data.items.astype(np.int32, copy=False)
    # SGD touches the rated rows only: work on a copy of those (local indices), the same
    # arithmetic as on a copy of the whole catalogue
    rated, local = np.unique(items, return_inverse=True)
    local = local.astype(np.int32)
    Q = glob.item_factors[rated]
    bi = glob.item_bias[rated]
    P = state.factors[None, :].astype(np.float32).copy()
    bu = np.array([state.bias], dtype=np.float32)
    users = np.zeros(n, dtype=np.int32)
    values = data.values.astype(np.float32, copy=False)
    ptr = np.array([0, n], dtype=np.int64)
    sse = np.zeros(1, dtype=np.float64)
    lr = float(config.learning_rate)
    for _ in range(config.n_epochs):
        rows = rng.permutation(n).astype(np.int64)
        sgd_epoch(users, local, values, rows, ptr, 1, float(glob.intercept), bu, bi, P, Q, lr,
                  lr, float(config.bias_regularization), float(config.regularization), True,
                  sse)
    state.factors = P[0]
    state.bias = float(bu[0])
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    # dense over the catalogue (the upload's shape must not reveal the rated items)
    dq = np.zeros(glob.item_factors.shape, dtype=np.float64)
    dq[rated] = Q.astype(np.float64) - glob.item_factors[rated]
    db = np.zeros(n_items, dtype=np.float64)
    db[rated] = bi.astype(np.float64) - glob.item_bias[rated]
    upload = {"item_factors": dq, "item_bias": db, "item_counts": counts}
    metrics = {"train_sse": float(sse[0]), "train_n": float(n)}
    if len(data.val_items):
        vi = data.val_items
        est = (glob.intercept + state.bias + glob.item_bias[vi]
               + glob.item_factors[vi].astype(np.float64) @ state.factors.astype(np.float64))
        metrics["val_sse"] = float(np.sum((est - data.val_values) ** 2))
        metrics["val_n"] = float(len(vi))
    return upload, metrics


def implicit_solve_users(
    histories: list[tuple[np.ndarray, np.ndarray]], item_factors: np.ndarray,
    regularization: float, alpha: float, gram: np.ndarray | None = None,
) -> np.ndarray:
    """Exact ALS user factors for each ``(items, values)`` history, item factors fixed.

    ``gram`` is :math:`Y^\\top Y + \\lambda I` when the caller has it (it depends on the
    broadcast item factors only).
    """
    from chuchun.kernels import implicit_als as _als

    Y = np.ascontiguousarray(item_factors, dtype=np.float32)
    f = Y.shape[1]
    if gram is None:
        gram = Y.T @ Y
        gram[np.diag_indices_from(gram)] += np.float32(regularization)
    indptr = np.zeros(len(histories) + 1, dtype=np.int64)
    np.cumsum([len(items) for items, _ in histories], out=indptr[1:])
    indices = np.concatenate([np.asarray(items, dtype=np.int32) for items, _ in histories]
                             or [np.zeros(0, np.int32)])
    data = np.concatenate([np.asarray(v, dtype=np.float32) for _, v in histories]
                          or [np.zeros(0, np.float32)])
    X = np.zeros((len(histories), f), dtype=np.float32)
    bounds = np.array([0, len(histories)], dtype=np.int64)
    _als.als_cholesky_update(indptr, indices, data, X, Y, gram.astype(np.float64),
                             float(alpha), np.zeros(len(histories), dtype=np.float64),
                             bounds)  # lambda is already in ``gram``
    return X


def implicit_update(
    glob: GlobalState, data: ClientData, state: ClientState, config: ImplicitConfig,
    gram: np.ndarray | None = None, item_factors64: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """ALS user solve, then the item-side gradient statistics; updates ``state`` in place.

    ``gram`` (:math:`Y^\\top Y + \\lambda I`) and ``item_factors64`` (the item factors as
    float64) depend on the broadcast only; a caller serving many users passes them once.

    With :math:`s_i = x_u^\\top y_i`, the negative half-gradient of the user's loss
    :math:`\\sum_i c_{ui}(p_{ui} - s_i)^2` is :math:`-s_i x_u` for every item and
    :math:`c_{ui}(1 - s_i) x_u` for the user's items.
    """
    from chuchun.kernels.implicit_als import als_cholesky_update_numpy

    # one row: the kernel's NumPy twin (same solve) avoids a parallel region per client
    Y32 = np.ascontiguousarray(glob.item_factors, dtype=np.float32)
    if gram is None:
        gram = Y32.T @ Y32
        gram[np.diag_indices_from(gram)] += np.float32(config.regularization)
    X = np.zeros((1, Y32.shape[1]), dtype=np.float32)
    als_cholesky_update_numpy(np.array([0, len(data.items)], dtype=np.int64),
                              data.items.astype(np.int32), data.values.astype(np.float32), X,
                              Y32, gram, config.alpha,
                              np.zeros(1, dtype=np.float64),  # lambda is already in ``gram``
                              np.array([0, 1], dtype=np.int64))
    x = X[0]
    state.factors = x
    xd = x.astype(np.float64)
    Y = glob.item_factors.astype(np.float64) if item_factors64 is None else item_factors64
    s = Y @ xd
    keep = data.values > 0
    items = data.items[keep]
    conf_minus_1 = config.alpha * data.values[keep].astype(np.float64)
    coef = -s
    coef[items] = (1.0 + conf_minus_1) * (1.0 - s[items])
    curvature = np.zeros(len(s), dtype=np.float64)
    np.add.at(curvature, items, conf_minus_1 * float(xd @ xd))
    upload = {"item_factors": coef[:, None] * xd[None, :], "gram": np.outer(xd, xd),
              "item_curvature": curvature}
    loss = float(np.sum(s ** 2) - np.sum(s[items] ** 2)
                 + np.sum((1.0 + conf_minus_1) * (1.0 - s[items]) ** 2))
    return upload, {"train_loss": loss, "train_n": float(len(items))}


_LAST_GRAM: list[Any] = [None, None, None, None]


def _gram(item_factors: Any, regularization: float) -> tuple[np.ndarray, np.ndarray]:
    """:math:`Y^\\top Y + \\lambda I` of the broadcast item factors and the factors as
    float64. Every client of a round gets the same array, so the in-process simulation
    computes them once per round (the cache holds the array, so its identity is not reused)."""
    if _LAST_GRAM[0] is item_factors and _LAST_GRAM[1] == regularization:
        return _LAST_GRAM[2], _LAST_GRAM[3]
    Y = np.asarray(item_factors, dtype=np.float32)
    gram = Y.T @ Y
    gram[np.diag_indices_from(gram)] += np.float32(regularization)
    _LAST_GRAM[:] = [item_factors, regularization, gram, Y.astype(np.float64)]
    return gram, _LAST_GRAM[3]


class ClientRuntime:
    """One federated client: a group of users (one in the simulation, several on a SuperNode
    that serves a silo) with their data and private state, answering the server's requests.

    Requests and replies are dicts of NumPy arrays, numbers, strings and bytes, the same in the
    in-process simulation and in Flower messages. Kinds: ``"keys"`` (a fresh X25519 public key
    for secure aggregation), ``"stats"`` (rating sum and count, for the intercept), ``"train"``
    (one local update; the reply's ``"update"`` is the users' summed upload vector, clipped and,
    with secure aggregation, masked), ``"unmask"`` (the pairwise seeds shared with clients that
    dropped).
    """

    def __init__(self, client_id: int, users: dict[int, ClientData], n_factors: int,
                 random_state: int) -> None:
        self.client_id = int(client_id)
        self.users = users
        self.seed = int(random_state)
        self.calls = 0
        self.states = {u: ClientState(factors=np.zeros(n_factors, dtype=np.float32))
                       for u in users}
        self._key: object | None = None
        self._peers: dict[int, bytes] = {}

    def init_factors(self, init_std: float) -> None:
        """Random user factors (explicit feedback; the implicit solve needs no start)."""
        init = np.random.default_rng([self.seed, 1])
        for u in sorted(self.states):
            f = len(self.states[u].factors)
            self.states[u].factors = (init.standard_normal(f) * init_std).astype(np.float32)

    # -- state kept between requests (Flower runs each request in a fresh process) -----------
    def export_state(self) -> dict[str, object]:
        """The private state as plain values (stored on the client's own node only)."""
        from chuchun.federated import secagg

        users = sorted(self.states)
        key = self._key
        return {
            "users": np.asarray(users, dtype=np.int64),
            "factors": np.stack([self.states[u].factors for u in users]),
            "bias": np.asarray([self.states[u].bias for u in users], dtype=np.float64),
            "calls": self.calls,
            "private_key": key.private_bytes() if isinstance(key, secagg.KeyPair) else b"",
            "peer_ids": [int(p) for p in self._peers],
            "peer_keys": list(self._peers.values()),
        }

    def import_state(self, state: dict[str, Any]) -> None:
        from chuchun.federated import secagg

        users = [int(u) for u in np.asarray(state["users"]).reshape(-1)]
        factors = np.asarray(state["factors"], dtype=np.float32)
        bias = np.asarray(state["bias"], dtype=np.float64)
        for j, u in enumerate(users):
            self.states[u] = ClientState(factors=factors[j].copy(), bias=float(bias[j]))
        self.calls = int(state["calls"])
        raw = state.get("private_key", b"")
        self._key = secagg.KeyPair(bytes(raw)) if raw else None
        ids = [int(p) for p in state.get("peer_ids", [])]
        self._peers = dict(zip(ids, [bytes(k) for k in state.get("peer_keys", [])], strict=True))

    def handle(self, kind: str, request: dict[str, object]) -> dict[str, object]:
        from chuchun.federated import privacy, secagg

        if kind == "keys":
            key = secagg.KeyPair()
            self._key = key
            return {"public_key": key.public}
        if kind == "unmask":
            return self._unmask(request)
        if kind == "stats":
            rating_sum = sum(float(np.sum(d.values)) for d in self.users.values())
            count = float(sum(d.n_examples for d in self.users.values()))
            vector = np.array([rating_sum, count], dtype=np.float64)
            return self._finish(vector, np.zeros(0), request)
        if kind != "train":
            raise DataError(f"unknown request kind {kind!r}")
        glob = GlobalState(np.asarray(request["item_factors"], dtype=np.float32),
                           np.asarray(request["item_bias"], dtype=np.float32),
                           float(request["intercept"]))  # type: ignore[arg-type]
        n_items, f = glob.item_factors.shape
        model_kind = str(request["kind"])
        if model_kind == "explicit":
            layout = UpdateLayout.explicit(n_items, f)
            econf = ExplicitConfig(int(request["n_epochs"]),  # type: ignore[call-overload]
                                   float(request["learning_rate"]),  # type: ignore[arg-type]
                                   float(request["regularization"]),  # type: ignore[arg-type]
                                   float(request["bias_regularization"]))  # type: ignore[arg-type]
        else:
            layout = UpdateLayout.implicit(n_items, f)
            iconf = ImplicitConfig(float(request["regularization"]),  # type: ignore[arg-type]
                                   float(request["alpha"]))  # type: ignore[arg-type]
            gram, factors64 = _gram(request["item_factors"], iconf.regularization)
        total = np.zeros(layout.size, dtype=np.float64)
        metrics = np.zeros(4, dtype=np.float64)
        self.calls += 1
        rng = np.random.default_rng([self.seed, 2, self.calls])
        for u in sorted(self.users):
            if model_kind == "explicit":
                parts, m = explicit_update(glob, self.users[u], self.states[u], econf, rng)
                if not request.get("send_counts", True):
                    parts["item_counts"] = np.zeros_like(parts["item_counts"])
                metrics += [m["train_sse"], m["train_n"], m.get("val_sse", 0.0),
                            m.get("val_n", 0.0)]
            else:
                parts, m = implicit_update(glob, self.users[u], self.states[u], iconf, gram,
                                           factors64)
                metrics += [m["train_loss"], m["train_n"], 0.0, 0.0]
            layout.add_into(total, parts)
        clip_norm = request.get("clip_norm")
        clipped = False
        if clip_norm is not None and float(clip_norm) > 0:  # type: ignore[arg-type]
            total, clipped = privacy.clip(total, float(clip_norm))  # type: ignore[arg-type]
        reply = self._finish(total, metrics, request)
        reply["clipped"] = int(clipped)
        return reply

    def _finish(self, vector: np.ndarray, metrics: np.ndarray,
                request: dict[str, object]) -> dict[str, object]:
        from chuchun.federated import secagg

        peers = request.get("peers")
        if peers is None:
            return {"update": vector, "metrics": metrics}
        if self._key is None:
            raise DataError("secure aggregation needs a key exchange before the update")
        ids = [int(p) for p in np.asarray(peers).reshape(-1)]
        keys = list(request["peer_keys"])  # type: ignore[call-overload]
        self._peers = dict(zip(ids, keys, strict=True))
        context = str(request["context"]).encode()
        key = self._key
        assert isinstance(key, secagg.KeyPair)
        me = int(request.get("me", self.client_id))  # type: ignore[call-overload]
        return {"update": secagg.masked_update(vector, me, key, self._peers,
                                               context + b"/update"),
                "metrics": secagg.masked_update(metrics, me, key, self._peers,
                                                context + b"/metrics")}

    def _unmask(self, request: dict[str, object]) -> dict[str, object]:
        from chuchun.federated import secagg

        key = self._key
        if not isinstance(key, secagg.KeyPair):
            raise DataError("no key pair to unmask with")
        dropped = [int(p) for p in np.asarray(request["dropped"]).reshape(-1)]
        return {"secrets": [key.shared_secret(self._peers[d]) for d in dropped]}
