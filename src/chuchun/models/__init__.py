"""Estimators. Every class here follows the contract of :class:`Recommender`."""

from chuchun.models._base import Recommender, clone, get_model_class, registered_models
from chuchun.models._results import Explanation, Reason, Recommendations
from chuchun.models.baseline import BaselineOnly, GlobalMean, Popularity, Random
from chuchun.models.content import ContentBased
from chuchun.models.implicit import BPR, ImplicitALS
from chuchun.models.knn import ImplicitItemKNN, ImplicitUserKNN, ItemKNN, UserKNN
from chuchun.models.mf import ALS, FunkSVD, SVDpp, TruncatedSVD
from chuchun.models.rules import AssociationRules

__all__ = [
    "ALS",
    "AssociationRules",
    "BPR",
    "BaselineOnly",
    "ContentBased",
    "Explanation",
    "FunkSVD",
    "GlobalMean",
    "ImplicitALS",
    "ImplicitItemKNN",
    "ImplicitUserKNN",
    "ItemKNN",
    "Popularity",
    "Random",
    "Reason",
    "Recommendations",
    "Recommender",
    "SVDpp",
    "TruncatedSVD",
    "UserKNN",
    "clone",
    "get_model_class",
    "registered_models",
]
