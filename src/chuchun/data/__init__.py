"""Data layer: id vocabularies, interaction logs, side features, splits and datasets."""

from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary

__all__ = ["Interactions", "Vocabulary"]
