"""Flower glue: the federated client and server of chuchun as a Flower App.

``server_app`` (a :class:`flwr.serverapp.ServerApp`) runs :class:`FederatedServer` rounds with
:class:`FlowerTransport`, which turns each request into a Flower :class:`~flwr.app.Message`
(``"train"`` for updates; ``"query.keys"``, ``"query.stats"``, ``"query.unmask"`` for the
secure-aggregation and intercept exchanges) and waits for the replies through the Grid, at most
``round-timeout`` seconds (late replies count as dropped). ``client_app`` (a
:class:`flwr.clientapp.ClientApp`) answers them with
:class:`~chuchun.federated.client.ClientRuntime`; the users it serves are read from the file
named by the SuperNode's ``data-path`` node config (an ``.npz`` with ``items``, ``values``
and ``users``, items as indices into the shared catalogue). The runtime's private state (user
factors, the round's key pair) is kept in the node's ``context.state`` between messages: it
never leaves the node. With the run config ``record-uploads`` the ServerApp also writes what it
received (``received.npz``), so a deployment can be audited for what the server saw.

:func:`write_app` writes a Flower App directory (``pyproject.toml`` naming these components and
the run configuration) for ``flwr run``; ``docs/federated.md`` shows a whole deployment.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from chuchun.federated.client import ClientData, ClientRuntime, GlobalState
from chuchun.federated.strategy import FederatedServer, ServerConfig

__all__ = ["FlowerTransport", "client_app", "read_node_data", "server_app", "write_app",
           "write_node_data"]

_KINDS = {"keys": "query.keys", "stats": "query.stats", "unmask": "query.unmask",
          "train": "train"}

#: run configuration keys of the app and their defaults
DEFAULT_RUN_CONFIG: dict[str, Any] = {
    "kind": "implicit",
    "n-items": 0,
    "n-factors": 16,
    "n-rounds": 10,
    "n-epochs": 1,
    "learning-rate": 0.005,
    "regularization": 0.01,
    "bias-regularization": 0.02,
    "alpha": 1.0,
    "init-std": 0.05,
    "server-learning-rate": 1.0,
    "aggregation": "auto",  # item_mean without noise, cohort_mean with noise
    "client-fraction": 1.0,
    "clip-norm": 0.0,
    "noise-multiplier": 0.0,
    "secure-aggregation": False,
    "secagg-neighbors": 8,
    "round-timeout": 60.0,
    "min-nodes": 1,
    "wait-for-nodes": 60.0,
    "seed": 0,
    "output-dir": "",
    "record-uploads": False,  # also write received.npz: every update the server received
}


# -- encoding of requests and replies ------------------------------------------------------------
def encode(content: dict[str, Any]) -> RecordDict:
    """A request/reply dict as a RecordDict: arrays in ``"arrays"``, the rest in ``"config"``
    (``None`` values are left out)."""
    arrays: dict[str, Array] = {}
    config: dict[str, Any] = {}
    for key, value in content.items():
        if value is None:
            continue
        if isinstance(value, np.ndarray):
            arrays[key] = Array(np.ascontiguousarray(value))
        elif isinstance(value, (list, tuple)):
            config[key] = [bytes(v) if isinstance(v, (bytes, bytearray)) else v for v in value]
        elif isinstance(value, (np.integer, np.floating, np.bool_)):
            config[key] = value.item()
        else:
            config[key] = value
    return RecordDict({"arrays": ArrayRecord(arrays), "config": ConfigRecord(config)})


def decode(record: RecordDict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "arrays" in record.array_records:
        for key, arr in record.array_records["arrays"].items():
            out[key] = arr.numpy()
    if "config" in record.config_records:
        out.update(dict(record.config_records["config"]))
    return out


class FlowerTransport:
    """:class:`~chuchun.federated.strategy.Transport` over a Flower Grid (one SuperNode, one
    client). Clients are numbered 0..K-1 in the order of their node ids (Flower's node ids are
    unsigned 64-bit and the mask graph only needs an order)."""

    def __init__(self, grid: Grid, node_ids: list[int], timeout: float) -> None:
        self.grid = grid
        self.node_ids = sorted(int(n) for n in node_ids)
        self.index = {n: j for j, n in enumerate(self.node_ids)}
        self.timeout = float(timeout)
        #: every request and the reply that arrived (None if none), when ``record`` is on
        self.log: list[tuple[str, int, dict[str, Any], dict[str, Any] | None]] = []
        self.record = False

    def clients(self) -> list[int]:
        return list(range(len(self.node_ids)))

    def exchange(self, kind: str, requests: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        if not requests:
            return {}
        messages = [Message(content=encode(req), dst_node_id=self.node_ids[c],
                            message_type=_KINDS[kind])
                    for c, req in requests.items()]
        start = time.perf_counter()
        replies = self.grid.send_and_receive(messages, timeout=self.timeout)
        out: dict[int, dict[str, Any]] = {}
        for msg in replies:
            if msg.has_error():
                continue
            reply = decode(msg.content)
            reply.setdefault("elapsed", time.perf_counter() - start)
            out[self.index[int(msg.metadata.src_node_id)]] = reply
        if self.record:
            self.log.extend((kind, c, req, out.get(c)) for c, req in requests.items())
        return out


# -- client ----------------------------------------------------------------------------------
client_app = ClientApp()
_STATE_KEY = "chuchun"


def read_node_data(path: str) -> dict[int, ClientData]:
    """The users one SuperNode serves, from the ``.npz`` of :func:`write_node_data`."""
    with np.load(path, allow_pickle=False) as z:
        users, items, values = z["users"], z["items"].astype(np.int32), z["values"]
    data: dict[int, ClientData] = {}
    order = np.argsort(users, kind="stable")
    uniq, starts = np.unique(users[order], return_index=True)
    bounds = np.r_[starts, len(order)]
    for j, u in enumerate(uniq):
        rows = order[bounds[j]:bounds[j + 1]]
        data[int(u)] = ClientData(items[rows], values[rows].astype(np.float32))
    return data


def _runtime(context: Context) -> ClientRuntime:
    data = read_node_data(str(context.node_config["data-path"]))
    n_factors = int(context.run_config["n-factors"])
    seed = int(context.run_config.get("seed", 0)) * 1_000_003 + int(context.node_id) % 2**31
    rt = ClientRuntime(int(context.node_id), data, n_factors, seed)
    saved = context.state.config_records.get(_STATE_KEY)
    if saved is not None:
        state: dict[str, Any] = dict(saved)
        with np.load(io.BytesIO(state.pop("arrays")), allow_pickle=False) as z:
            state.update({k: z[k] for k in z.files})
        rt.import_state(state)
    elif str(context.run_config["kind"]) == "explicit":
        rt.init_factors(float(context.run_config["init-std"]))
    return rt


def _answer(kind: str, message: Message, context: Context) -> Message:
    rt = _runtime(context)
    request = decode(message.content)
    reply = rt.handle(kind, request)
    state = rt.export_state()
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    np.savez(buffer, **arrays)
    plain: dict[str, Any] = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    context.state.config_records[_STATE_KEY] = ConfigRecord(
        {**plain, "arrays": buffer.getvalue()})
    return Message(encode(reply), reply_to=message)


@client_app.train()
def _train(message: Message, context: Context) -> Message:
    return _answer("train", message, context)


@client_app.query("keys")
def _keys(message: Message, context: Context) -> Message:
    return _answer("keys", message, context)


@client_app.query("stats")
def _stats(message: Message, context: Context) -> Message:
    return _answer("stats", message, context)


@client_app.query("unmask")
def _unmask(message: Message, context: Context) -> Message:
    return _answer("unmask", message, context)


# -- server ----------------------------------------------------------------------------------
server_app = ServerApp()


def _config(run_config: Any) -> dict[str, Any]:
    out = dict(DEFAULT_RUN_CONFIG)
    out.update({k: v for k, v in dict(run_config).items()})
    return out


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    cfg = _config(context.run_config)
    deadline = time.monotonic() + float(cfg["wait-for-nodes"])
    nodes = list(grid.get_node_ids())
    while len(nodes) < int(cfg["min-nodes"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        nodes = list(grid.get_node_ids())
    kind = str(cfg["kind"])
    n_items, f = int(cfg["n-items"]), int(cfg["n-factors"])
    rng = np.random.default_rng(int(cfg["seed"]))
    clip = float(cfg["clip-norm"]) or None
    client_config: dict[str, Any] = {"regularization": float(cfg["regularization"])}
    if kind == "explicit":
        client_config.update({"n_epochs": int(cfg["n-epochs"]),
                              "learning_rate": float(cfg["learning-rate"]),
                              "bias_regularization": float(cfg["bias-regularization"])})
    else:
        client_config["alpha"] = float(cfg["alpha"])
    aggregation = str(cfg["aggregation"])
    if aggregation == "auto":
        aggregation = "cohort_mean" if float(cfg["noise-multiplier"]) > 0 else "item_mean"
    server = FederatedServer(
        ServerConfig(kind=kind, n_items=n_items, n_factors=f,
                     client_fraction=float(cfg["client-fraction"]),
                     server_learning_rate=float(cfg["server-learning-rate"]),
                     aggregation=aggregation, client_config=client_config,
                     regularization=float(cfg["regularization"]), clip_norm=clip,
                     noise_multiplier=float(cfg["noise-multiplier"]),
                     secure_aggregation=bool(cfg["secure-aggregation"]),
                     secagg_neighbors=int(cfg["secagg-neighbors"])),
        GlobalState((rng.standard_normal((n_items, f)) * float(cfg["init-std"])).astype(
            np.float32), np.zeros(n_items, dtype=np.float32)),
        rng)
    transport = FlowerTransport(grid, nodes, float(cfg["round-timeout"]))
    transport.record = bool(cfg["record-uploads"])
    if kind == "explicit":
        server.compute_intercept(transport)
    received: dict[str, np.ndarray] = {}
    for r in range(int(cfg["n-rounds"])):
        server.run_round(transport, r)
        received.update(_received(transport.log, r))
        transport.log.clear()
    if cfg["output-dir"]:
        _save(str(cfg["output-dir"]), server, len(nodes), received)


def _received(log: list[tuple[str, int, dict[str, Any], dict[str, Any] | None]],
              round_idx: int) -> dict[str, np.ndarray]:
    """The server's view of one round's training exchange: the item factors it broadcast
    and each update vector that arrived (masked under secure aggregation), keyed
    ``r{round}_item_factors`` and ``r{round}_c{client}_update``."""
    out: dict[str, np.ndarray] = {}
    for kind, client, request, reply in log:
        if kind != "train":
            continue
        out[f"r{round_idx}_item_factors"] = np.asarray(request["item_factors"])
        if reply is not None and isinstance(reply.get("update"), np.ndarray):
            out[f"r{round_idx}_c{client}_update"] = reply["update"]
    return out


def _save(directory: str, server: FederatedServer, n_nodes: int,
          received: dict[str, np.ndarray] | None = None) -> None:
    """Write the item side, the round history and (when recorded) the updates the server
    received atomically into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    if received:
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, allow_pickle=False, **received)
        os.replace(tmp, os.path.join(directory, "received.npz"))
    st = server.state
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, item_factors=st.item_factors, item_bias=st.item_bias,
                 intercept=np.float64(st.intercept))
    os.replace(tmp, os.path.join(directory, "item_state.npz"))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".json.tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump({"nodes": n_nodes, "history": [r.as_dict() for r in server.history]}, fh)
    os.replace(tmp, os.path.join(directory, "history.json"))


# -- app directory ---------------------------------------------------------------------------
def write_app(directory: str, run_config: dict[str, Any] | None = None,
              name: str = "chuchun-federated") -> str:
    """Write a Flower App directory whose components are this module's apps; ``run_config``
    overrides :data:`DEFAULT_RUN_CONFIG`. Returns the directory."""
    cfg = dict(DEFAULT_RUN_CONFIG)
    cfg.update(run_config or {})
    unknown = sorted(set(cfg) - set(DEFAULT_RUN_CONFIG))
    if unknown:
        from chuchun._exceptions import ConfigError

        raise ConfigError(f"unknown run config keys {unknown}; known: {sorted(DEFAULT_RUN_CONFIG)}")
    os.makedirs(directory, exist_ok=True)
    lines = [
        "[build-system]", 'requires = ["hatchling"]', 'build-backend = "hatchling.build"', "",
        "[project]", f'name = "{name}"', 'version = "1.0.0"', "dependencies = []", "",
        "[tool.hatch.build.targets.wheel]", 'packages = ["."]', "",
        "[tool.flwr.app]", 'publisher = "chuchun"', "",
        "[tool.flwr.app.components]",
        'serverapp = "chuchun.federated.flower:server_app"',
        'clientapp = "chuchun.federated.flower:client_app"', "",
        "[tool.flwr.app.config]",
    ]
    for key, value in cfg.items():
        lines.append(f"{key} = {json.dumps(value)}")
    with open(os.path.join(directory, "pyproject.toml"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return directory


def write_node_data(path: str, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> None:
    """Write the interactions one SuperNode serves (items as catalogue indices)."""
    np.savez(path, users=np.asarray(users, dtype=np.int64),
             items=np.asarray(items, dtype=np.int64), values=np.asarray(values, dtype=np.float32))
