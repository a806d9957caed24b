"""Data layer: id vocabularies, interaction logs, side features, splits and datasets."""

from chuchun.data.features import ItemFeatures, UserFeatures
from chuchun.data.interactions import Interactions
from chuchun.data.splits import (
    Split,
    holdout,
    kfold,
    movielens_100k_folds,
    predefined_folds,
    temporal_split,
    user_holdout,
)
from chuchun.data.vocabulary import Vocabulary

__all__ = [
    "Interactions",
    "ItemFeatures",
    "Split",
    "UserFeatures",
    "Vocabulary",
    "holdout",
    "kfold",
    "movielens_100k_folds",
    "predefined_folds",
    "temporal_split",
    "user_holdout",
]
