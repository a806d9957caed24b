"""Evaluation metrics: rating errors and top-k ranking quality, with exact definitions."""

from chuchun.metrics.ranking import (
    RANKING_METRICS,
    average_precision_at_k,
    catalog_coverage_at_k,
    f1_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
)
from chuchun.metrics.rating import mae, mse, rmse

RATING_METRICS = ("rmse", "mae", "mse")

__all__ = [
    "RANKING_METRICS",
    "RATING_METRICS",
    "average_precision_at_k",
    "catalog_coverage_at_k",
    "f1_at_k",
    "hit_rate_at_k",
    "mae",
    "mse",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "rmse",
]
