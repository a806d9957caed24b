"""Estimators. Every class here follows the contract of :class:`Recommender`.

Model classes are imported lazily (``from chuchun.models import ImplicitALS`` loads only that
model's module); :func:`registered_models` and :func:`get_model_class` load them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from chuchun._lazy import lazy_exports
from chuchun.models._base import Recommender, clone, get_model_class, registered_models
from chuchun.models._results import (
    Explanation,
    Explanations,
    Reason,
    Recommendations,
    SimilarItems,
)

if TYPE_CHECKING:
    from chuchun.models.baseline import BaselineOnly, GlobalMean, Popularity, Random
    from chuchun.models.content import ContentBased
    from chuchun.federated.model import FederatedImplicitMF, FederatedMF
    from chuchun.models.fm import FactorizationMachine
    from chuchun.models.hybrid import HybridMF

    from chuchun.models.graph import RP3beta
    from chuchun.models.implicit import BPR, ImplicitALS
    from chuchun.models.item2vec import Item2Vec
    from chuchun.models.knn import ImplicitItemKNN, ImplicitUserKNN, ItemKNN, UserKNN
    from chuchun.models.linear import EASE, SLIM
    from chuchun.models.neural.lightgcn import LightGCN
    from chuchun.models.neural.vae import MultVAE
    from chuchun.models.mf import ALS, FunkSVD, SVDpp, TruncatedSVD
    from chuchun.models.neural.sequential import GRU4Rec, SASRec
    from chuchun.models.rules import AssociationRules

_MODELS = {
    "ALS": "chuchun.models.mf",
    "AssociationRules": "chuchun.models.rules",
    "BPR": "chuchun.models.implicit",
    "BaselineOnly": "chuchun.models.baseline",
    "ContentBased": "chuchun.models.content",
    "FactorizationMachine": "chuchun.models.fm",
    "FederatedImplicitMF": "chuchun.federated.model",
    "FederatedMF": "chuchun.federated.model",

    "EASE": "chuchun.models.linear",
    "FunkSVD": "chuchun.models.mf",
    "GRU4Rec": "chuchun.models.neural.sequential",
    "GlobalMean": "chuchun.models.baseline",
    "HybridMF": "chuchun.models.hybrid",
    "ImplicitALS": "chuchun.models.implicit",
    "ImplicitItemKNN": "chuchun.models.knn",
    "ImplicitUserKNN": "chuchun.models.knn",
    "Item2Vec": "chuchun.models.item2vec",
    "ItemKNN": "chuchun.models.knn",
    "LightGCN": "chuchun.models.neural.lightgcn",
    "MultVAE": "chuchun.models.neural.vae",
    "Popularity": "chuchun.models.baseline",
    "RP3beta": "chuchun.models.graph",
    "SLIM": "chuchun.models.linear",
    "Random": "chuchun.models.baseline",
    "SASRec": "chuchun.models.neural.sequential",
    "SVDpp": "chuchun.models.mf",
    "TruncatedSVD": "chuchun.models.mf",
    "UserKNN": "chuchun.models.knn",
}


def _import_all() -> None:
    """Import every built-in model module, which registers its classes."""
    for module in sorted(set(_MODELS.values())):
        importlib.import_module(module)


__all__ = sorted(
    [*_MODELS, "Explanation", "Explanations", "Reason", "Recommendations", "Recommender",
     "SimilarItems", "clone",
     "get_model_class", "registered_models"]
)
__getattr__, __dir__ = lazy_exports(__name__, _MODELS, globals())
