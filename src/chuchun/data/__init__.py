"""Data layer: id vocabularies, interaction logs, side features, splits and datasets.

Names are imported lazily, so ``from chuchun.data import Interactions`` does not load pandas
or the feature and split machinery until they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chuchun._lazy import lazy_exports

if TYPE_CHECKING:
    from chuchun.data.features import ItemFeatures, UserFeatures
    from chuchun.data.interactions import Interactions
    from chuchun.data.sequences import (
        LeaveLastOut,
        Sequences,
        SessionSplit,
        baskets,
        leave_last_out,
        pad_sequences,
        session_split,
        sessions,
        user_sequences,
    )
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

_EXPORTS = {
    "Interactions": "chuchun.data.interactions",
    "ItemFeatures": "chuchun.data.features",
    "LeaveLastOut": "chuchun.data.sequences",
    "Sequences": "chuchun.data.sequences",
    "SessionSplit": "chuchun.data.sequences",
    "baskets": "chuchun.data.sequences",
    "leave_last_out": "chuchun.data.sequences",
    "pad_sequences": "chuchun.data.sequences",
    "session_split": "chuchun.data.sequences",
    "sessions": "chuchun.data.sequences",
    "user_sequences": "chuchun.data.sequences",
    "Split": "chuchun.data.splits",
    "UserFeatures": "chuchun.data.features",
    "Vocabulary": "chuchun.data.vocabulary",
    "holdout": "chuchun.data.splits",
    "kfold": "chuchun.data.splits",
    "movielens_100k_folds": "chuchun.data.splits",
    "predefined_folds": "chuchun.data.splits",
    "temporal_split": "chuchun.data.splits",
    "user_holdout": "chuchun.data.splits",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
