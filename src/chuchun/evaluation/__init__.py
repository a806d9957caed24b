"""Evaluation protocols: score a model on a split, cross-validate it, search hyperparameters."""

from chuchun.evaluation._evaluate import RATING_METRICS, cross_validate, evaluate

__all__ = ["RATING_METRICS", "cross_validate", "evaluate"]
