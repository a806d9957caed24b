"""Evaluation protocols: score a model on a split, cross-validate it, search hyperparameters."""

from chuchun.evaluation._evaluate import RATING_METRICS, cross_validate, evaluate
from chuchun.evaluation.report import report
from chuchun.evaluation.search import (
    BayesianSearch,
    Choice,
    Dimension,
    GridSearch,
    Integer,
    RandomSearch,
    Real,
)

__all__ = [
    "RATING_METRICS",
    "BayesianSearch",
    "Choice",
    "Dimension",
    "GridSearch",
    "Integer",
    "RandomSearch",
    "Real",
    "cross_validate",
    "evaluate",
    "report",
]
