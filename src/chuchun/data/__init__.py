"""Data layer: id vocabularies, interaction logs, side features, splits and datasets."""

from chuchun.data.features import ItemFeatures, UserFeatures
from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary

__all__ = ["Interactions", "ItemFeatures", "UserFeatures", "Vocabulary"]
