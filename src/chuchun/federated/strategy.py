"""Server side of federated matrix factorisation: sampling, secure summation, validation,
privacy noise and the item-factor step.

One :class:`FederatedServer` round, whatever carries the messages (:class:`Transport`: the
in-process simulation of :mod:`chuchun.federated.simulation`, or Flower's grid in
:mod:`chuchun.federated.flower`):

1. **sample** the cohort: every client independently with probability ``client_fraction``
   (Poisson sampling, what the privacy accounting assumes);
2. with secure aggregation, **exchange keys**: each member returns a fresh public key, the
   server draws the round's mask graph and sends each member its neighbours' keys;
3. **train**: members receive the item state and return one upload vector (see
   :mod:`chuchun.federated.client`), clipped to ``clip_norm`` and possibly masked;
4. **validate**: replies after the deadline are ignored (stragglers), replies of the wrong
   shape or type, or with non-finite values, are rejected; everything is counted in the
   round record;
5. with secure aggregation, **unmask**: survivors reveal the pairwise secrets they shared with
   members that dropped, were late or were rejected, and the server cancels those masks;
6. **aggregate**: the (unmasked) sum plus Gaussian noise of std ``noise_multiplier *
   clip_norm`` (DP-FedAvg), then the server step.

Server steps
------------
Explicit feedback, ``aggregation="item_mean"`` (the models' default without noise): the
data-size weighted FedAvg of each item's parameters over the clients that rated it, scaled by
the server learning rate
:math:`\\eta_s`,

.. math:: q_i \\leftarrow q_i + \\eta_s\\, \\frac{\\sum_k \\Delta q_{k,i}}{\\sum_k n_{k,i}},

with :math:`n_{k,i}` client :math:`k`'s number of ratings of item :math:`i` (item biases
alike). This estimator suits plain (and clipped) training but not DP noise: the
denominators ride in the clipped upload and, once noised, are no longer counts.

With noise, ``aggregation="cohort_mean"`` is the fixed-denominator estimator of DP-FedAvg
(McMahan et al. 2018, section 3): the noised sum divided by the *expected* cohort size
:math:`qN` (sampling rate times number of clients, both public),

.. math:: q_i \\leftarrow q_i + \\eta_s\\, \\frac{\\sum_k \\Delta q_{k,i}
          + \\mathcal N(0, \\sigma^2 C^2)}{q N},

an unbiased estimate of :math:`\\eta_s` times the mean client change. No count is uploaded
(the count part of the vector is zero), so the whole clipping budget goes to the item
changes and the privacy cost is that of one Gaussian release per round. ``aggregation="sum"``
applies :math:`\\eta_s \\sum_k \\Delta q_{k,i}` (the FCF update of
Ammad-ud-din et al. 2019), which needs :math:`\\eta_s < 2 / (\\eta\\, n_i)` for the most
popular item to be stable.

Implicit feedback: a preconditioned gradient step on the item factors of the ImplicitALS
objective. With the cohort sums :math:`R` (negative half-gradients), :math:`G = \\sum_k x_k
x_k^\\top`, :math:`d_i = \\sum_k (c_{ki} - 1)\\lVert x_k\\rVert^2` and sampling rate :math:`q`,

.. math::
    y_i \\leftarrow y_i + \\eta_s P_i^{-1}\\big(R_i / q - \\lambda y_i\\big), \\qquad
    P_i = G / q + \\big(\\lambda + d_i / (q f)\\big) I,

where :math:`P_i` is the exact Hessian of the ALS item solve (Hu et al. 2008, eq. 4) with the
item's confidence correction :math:`\\sum_k (c_{ki} - 1) x_k x_k^\\top` replaced by its average
eigenvalue (its trace over :math:`f`). An item nobody interacted with gets the exact ALS step.
For an item with many interactions the correction is concentrated in the few directions where
its users' factors lie, so there :math:`P_i` underestimates the curvature and the full step
(:math:`\\eta_s = 1`) overshoots; the step size is a protocol setting chosen on validation
(``docs/federated.md``). The objective is ImplicitALS's with its defaults (unobserved weight 1,
one :math:`\\lambda` for every row); the same :math:`\\lambda` and confidences enter the clients'
solves and this step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from chuchun._exceptions import ConfigError, DataError
from chuchun.federated import privacy, secagg
from chuchun.federated.client import GlobalState, UpdateLayout

__all__ = ["FederatedServer", "RoundRecord", "ServerConfig", "Transport"]

_METRICS = 4


class Transport(Protocol):
    """Carries requests to clients and brings back the replies that arrived.

    ``exchange(kind, requests)`` sends ``requests[c]`` to each client ``c`` and returns the
    replies by client id; clients that dropped are absent. A reply may carry ``"elapsed"``
    (seconds the client took), which the server compares with its deadline.
    """

    def clients(self) -> list[int]: ...

    def exchange(self, kind: str, requests: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        ...


@dataclass
class ServerConfig:
    """Everything the server needs; the model classes fill it from their hyperparameters."""

    kind: str  # "explicit" or "implicit"
    n_items: int
    n_factors: int
    client_fraction: float = 1.0
    server_learning_rate: float = 1.0
    aggregation: str = "item_mean"
    client_config: dict[str, Any] = field(default_factory=dict)
    regularization: float = 0.0
    clip_norm: float | None = None
    noise_multiplier: float = 0.0
    secure_aggregation: bool = False
    secagg_neighbors: int = 8
    round_deadline: float | None = None


@dataclass
class RoundRecord:
    """What happened in one round (one entry of a model's ``history_``)."""

    round: int
    sampled: int = 0
    accepted: int = 0
    dropped: int = 0
    stragglers: int = 0
    rejected: int = 0
    clipped: int = 0
    unmasked_pairs: int = 0
    bytes_down_per_client: int = 0
    bytes_up_per_client: int = 0
    seconds: float = 0.0
    train_rmse: float = math.nan
    val_rmse: float = math.nan
    train_loss: float = math.nan
    epsilon: float = math.nan
    applied: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _nbytes(request: dict[str, Any]) -> int:
    total = 0
    for value in request.values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, bytes):
            total += len(value)
        elif isinstance(value, (list, tuple)):
            total += sum(len(v) if isinstance(v, bytes) else 8 for v in value)
        else:
            total += 8
    return total


class FederatedServer:
    """Holds the global item state and runs rounds over a :class:`Transport`."""

    def __init__(self, config: ServerConfig, state: GlobalState,
                 rng: np.random.Generator) -> None:
        if config.kind not in ("explicit", "implicit"):
            raise ConfigError(f"kind must be 'explicit' or 'implicit'; got {config.kind!r}")
        if config.aggregation not in ("item_mean", "cohort_mean", "sum"):
            raise ConfigError("aggregation must be 'item_mean', 'cohort_mean' or 'sum'; got "
                              f"{config.aggregation!r}")
        if config.noise_multiplier > 0 and not config.clip_norm:
            raise ConfigError("noise_multiplier > 0 needs a clip_norm (the sensitivity)")
        self.config = config
        self.state = state
        self.rng = rng
        self.layout = (UpdateLayout.explicit if config.kind == "explicit"
                       else UpdateLayout.implicit)(config.n_items, config.n_factors)
        self.history: list[RoundRecord] = []
        self.n_clients = 0

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, clients: list[int]) -> list[int]:
        q = self.config.client_fraction
        if q >= 1.0:
            return sorted(clients)
        chosen = self.rng.random(len(clients)) < q
        return sorted(c for c, keep in zip(clients, chosen, strict=True) if keep)

    # -- one secure (or plain) sum --------------------------------------------------------------
    def secure_sum(
        self, transport: Transport, kind: str, cohort: list[int], requests: dict[int, dict],
        size: int, record: RoundRecord,
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Collect one vector (and the metrics vector) from each member of ``cohort`` and
        return their sums and the accepted members."""
        cfg = self.config
        context = f"r{record.round}/{kind}/{int(self.rng.integers(2**62))}"
        graph: dict[int, list[int]] = {}
        if cfg.secure_aggregation:
            keys = transport.exchange("keys", {c: {} for c in cohort})
            keyed = sorted(c for c in cohort if isinstance(keys.get(c, {}).get("public_key"),
                                                           bytes))
            record.dropped += len(cohort) - len(keyed)
            graph = mask_graph_for(keyed, cfg.secagg_neighbors, self.rng)
            for c in keyed:
                requests[c] = dict(requests[c], me=c, peers=np.asarray(graph[c], dtype=np.int64),
                                   peer_keys=[keys[p]["public_key"] for p in graph[c]],
                                   context=context)
            cohort = keyed
        sent = {c: requests[c] for c in cohort}
        if sent:
            record.bytes_down_per_client = max(record.bytes_down_per_client,
                                               max(_nbytes(r) for r in sent.values()))
        replies = transport.exchange(kind, sent)
        accepted: list[int] = []
        for c in cohort:
            reply = replies.get(c)
            if reply is None:
                record.dropped += 1
                continue
            if (cfg.round_deadline is not None and
                    float(reply.get("elapsed", 0.0)) > cfg.round_deadline):
                record.stragglers += 1
                continue
            if not self._valid(reply, size):
                record.rejected += 1
                continue
            accepted.append(c)
            record.clipped += int(reply.get("clipped", 0))
            record.bytes_up_per_client = max(record.bytes_up_per_client, _nbytes(reply))
        if cfg.secure_aggregation:
            total = np.zeros(size, dtype=np.uint64)
            metrics = np.zeros(_METRICS if kind == "train" else 0, dtype=np.uint64)
            for c in accepted:
                total += replies[c]["update"]
                metrics += replies[c]["metrics"]
            missing = sorted(set(cohort) - set(accepted))
            if missing:
                total, metrics = self._unmask(transport, graph, accepted, missing, context,
                                              total, metrics, record)
            return secagg.decode(total), secagg.decode(metrics), accepted
        total_f = np.zeros(size, dtype=np.float64)
        metrics_f = np.zeros(_METRICS if kind == "train" else 0, dtype=np.float64)
        for c in accepted:
            update = np.asarray(replies[c]["update"], dtype=np.float64)
            if cfg.clip_norm:
                # the server clips again what it can see (a client may not have)
                update, scaled = privacy.clip(update, cfg.clip_norm)
                record.clipped += int(scaled)
            total_f += update
            metrics_f += np.asarray(replies[c]["metrics"], dtype=np.float64)
        return total_f, metrics_f, accepted

    def _valid(self, reply: dict[str, Any], size: int) -> bool:
        update = reply.get("update")
        metrics = reply.get("metrics")
        if not isinstance(update, np.ndarray) or update.shape != (size,):
            return False
        if not isinstance(metrics, np.ndarray) or metrics.ndim != 1:
            return False
        if self.config.secure_aggregation:
            return update.dtype == np.uint64 and metrics.dtype == np.uint64
        if update.dtype.kind != "f" or metrics.dtype.kind != "f":
            return False
        return bool(np.isfinite(update).all() and np.isfinite(metrics).all())

    def _unmask(
        self, transport: Transport, graph: dict[int, list[int]], accepted: list[int],
        missing: list[int], context: str, total: np.ndarray, metrics: np.ndarray,
        record: RoundRecord,
    ) -> tuple[np.ndarray, np.ndarray]:
        gone = set(missing)
        asks = {c: sorted(d for d in graph[c] if d in gone) for c in accepted}
        asks = {c: d for c, d in asks.items() if d}
        replies = transport.exchange(
            "unmask", {c: {"dropped": np.asarray(d, dtype=np.int64)} for c, d in asks.items()})
        for c, dropped in asks.items():
            secrets = replies.get(c, {}).get("secrets")
            if secrets is None or len(secrets) != len(dropped):
                raise DataError(
                    f"secure aggregation: survivor {c} did not reveal its pairwise secrets; "
                    "the round cannot be unmasked and is abandoned")
            for d, secret in zip(dropped, secrets, strict=True):
                total += secagg.unmask_correction(c, d, bytes(secret),
                                                  (context + "/update").encode(), total.size)
                if metrics.size:
                    metrics += secagg.unmask_correction(c, d, bytes(secret),
                                                        (context + "/metrics").encode(),
                                                        metrics.size)
                record.unmasked_pairs += 1
        return total, metrics

    # -- rounds -------------------------------------------------------------------------------
    def compute_intercept(self, transport: Transport) -> float:
        """Global mean rating from one secure sum of (rating sum, count) over every client."""
        record = RoundRecord(round=-1)
        cohort = sorted(transport.clients())
        total, _, _ = self.secure_sum(transport, "stats", cohort, {c: {} for c in cohort}, 2,
                                      record)
        mean = float(total[0] / total[1]) if total[1] > 0 else 0.0
        self.state.intercept = mean
        return mean

    def run_round(self, transport: Transport, round_idx: int) -> RoundRecord:
        start = time.perf_counter()
        cfg = self.config
        record = RoundRecord(round=round_idx)
        everyone = transport.clients()
        self.n_clients = len(everyone)
        cohort = self.sample(everyone)
        record.sampled = len(cohort)
        base = {"kind": cfg.kind, "item_factors": self.state.item_factors,
                "item_bias": self.state.item_bias, "intercept": float(self.state.intercept),
                "clip_norm": cfg.clip_norm, **cfg.client_config}
        if cfg.kind == "explicit":
            base["send_counts"] = cfg.aggregation == "item_mean"
        requests = {c: dict(base) for c in cohort}
        try:
            total, metrics, accepted = self.secure_sum(transport, "train", cohort, requests,
                                                       self.layout.size, record)
        except DataError:
            record.seconds = time.perf_counter() - start
            self.history.append(record)
            return record
        record.accepted = len(accepted)
        if accepted:
            if cfg.noise_multiplier > 0 and cfg.clip_norm:
                total = privacy.add_noise(total, cfg.clip_norm, cfg.noise_multiplier, self.rng)
            else:
                self._metrics(record, metrics)
            self._step(total)
            self._check_finite(round_idx)
            record.applied = True
        record.seconds = time.perf_counter() - start
        self.history.append(record)
        return record

    def _metrics(self, record: RoundRecord, metrics: np.ndarray) -> None:
        sse, n, vsse, vn = (float(x) for x in metrics)
        if n > 0:
            if self.config.kind == "explicit":
                record.train_rmse = math.sqrt(max(sse, 0.0) / n)
            else:
                record.train_loss = sse
        if vn > 0:
            record.val_rmse = math.sqrt(max(vsse, 0.0) / vn)

    def _check_finite(self, round_idx: int) -> None:
        """Stop with a clear error rather than carry a non-finite item state on."""
        st = self.state
        if np.isfinite(st.item_factors).all() and np.isfinite(st.item_bias).all():
            return
        cfg = self.config
        hint = ("lower server_learning_rate"
                + (" or noise_multiplier, or use aggregation='cohort_mean' (the DP-FedAvg "
                   "fixed-denominator step)" if cfg.noise_multiplier > 0 else ""))
        raise ConfigError(
            f"federated training diverged: the item state became non-finite in round "
            f"{round_idx} (aggregation={cfg.aggregation!r}, server_learning_rate="
            f"{cfg.server_learning_rate}, noise_multiplier={cfg.noise_multiplier}, "
            f"clip_norm={cfg.clip_norm}); {hint}")

    def _step(self, total: np.ndarray) -> None:
        cfg = self.config
        parts = self.layout.split(total)
        eta = cfg.server_learning_rate
        st = self.state
        if cfg.kind == "explicit":
            dq, db = parts["item_factors"], parts["item_bias"]
            if cfg.aggregation == "item_mean":
                den = parts["item_counts"]
                floor = max(1e-9, cfg.noise_multiplier * (cfg.clip_norm or 0.0))
                ok = den > floor
                scale = np.where(ok, 1.0 / np.where(ok, den, 1.0), 0.0)
                dq = dq * scale[:, None]
                db = db * scale
            elif cfg.aggregation == "cohort_mean":
                expected = max(cfg.client_fraction * max(self.n_clients, 1), 1.0)
                dq = dq / expected
                db = db / expected
            with np.errstate(over="ignore", invalid="ignore"):  # _check_finite reports it
                st.item_factors = (st.item_factors + eta * dq).astype(np.float32)
                st.item_bias = (st.item_bias + eta * db).astype(np.float32)
            return
        q = max(cfg.client_fraction, 1e-12)
        lam = cfg.regularization
        G = parts["gram"] / q
        G = 0.5 * (G + G.T)
        evals, V = np.linalg.eigh(G)
        evals = np.maximum(evals, 0.0)
        Y = st.item_factors.astype(np.float64)
        f = Y.shape[1]
        grad = parts["item_factors"] / q - lam * Y
        shift = lam + np.maximum(parts["item_curvature"], 0.0) / (q * f)
        Z = (grad @ V) / (evals[None, :] + shift[:, None] + 1e-12)
        st.item_factors = (Y + eta * (Z @ V.T)).astype(np.float32)


def mask_graph_for(clients: list[int], n_neighbors: int,
                   rng: np.random.Generator) -> dict[int, list[int]]:
    return secagg.mask_graph(clients, n_neighbors, int(rng.integers(2**62)))
