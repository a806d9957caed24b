"""Estimators. Every class here follows the contract of :class:`Recommender`."""

from chuchun.models._base import Recommender, clone, get_model_class, registered_models
from chuchun.models._results import Explanation, Reason, Recommendations
from chuchun.models.baseline import BaselineOnly, GlobalMean, Popularity, Random
from chuchun.models.rules import AssociationRules

__all__ = [
    "AssociationRules",
    "BaselineOnly",
    "Explanation",
    "GlobalMean",
    "Popularity",
    "Random",
    "Reason",
    "Recommendations",
    "Recommender",
    "clone",
    "get_model_class",
    "registered_models",
]
