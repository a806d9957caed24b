"""Federated collaborative filtering: train matrix factorisation without collecting ratings.

Each user's ratings and user factors stay on their client; the server holds the item factors
and only ever needs the sum of the clients' item-side updates (secure aggregation makes that
all it sees; DP-FedAvg noise bounds what the sum reveals). See ``docs/federated.md``.

``FederatedMF`` / ``FederatedImplicitMF``
    ordinary chuchun models whose ``fit`` runs the in-process simulation;
``client``, ``strategy``, ``secagg``, ``privacy``, ``simulation``
    the client update, the server round, pairwise masking, clipping/noise/accounting and the
    in-process transport;
``flower``
    the same client and server on Flower (``flwr``, the ``federated`` extra): a ServerApp and
    a ClientApp for the deployment runtime (SuperLink + SuperNodes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chuchun._lazy import lazy_exports

if TYPE_CHECKING:
    from chuchun.federated.model import FederatedImplicitMF, FederatedMF

_EXPORTS = {"FederatedImplicitMF": "chuchun.federated.model",
            "FederatedMF": "chuchun.federated.model"}
__all__ = ["FederatedImplicitMF", "FederatedMF"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
