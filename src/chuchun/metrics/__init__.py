"""Evaluation metrics: rating errors, top-k ranking quality and beyond-accuracy measures
(novelty, diversity, serendipity, popularity bias, exposure), with exact definitions."""

from chuchun.metrics.beyond import (
    average_recommendation_popularity_at_k,
    beyond_accuracy_metrics,
    beyond_accuracy_per_user,
    gini_index_at_k,
    intra_list_diversity_at_k,
    item_vectors_from_interactions,
    novelty_at_k,
    personalisation_at_k,
    popularity_lift_at_k,
    serendipity_at_k,
)
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
    "average_recommendation_popularity_at_k",
    "beyond_accuracy_metrics",
    "beyond_accuracy_per_user",
    "catalog_coverage_at_k",
    "f1_at_k",
    "gini_index_at_k",
    "hit_rate_at_k",
    "intra_list_diversity_at_k",
    "item_vectors_from_interactions",
    "mae",
    "mse",
    "ndcg_at_k",
    "novelty_at_k",
    "personalisation_at_k",
    "popularity_lift_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "rmse",
    "serendipity_at_k",
]
