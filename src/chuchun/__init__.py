"""chuchun (추천): a recommender-system engine.

Data in, evaluated and explainable recommendations out: id vocabularies and sparse matrices,
similarity, neighbourhood and content-based models, latent factors, association rules,
evaluation protocols, safe artifacts, a CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chuchun._exceptions import (
    ArtifactError,
    ChuchunError,
    ChuchunWarning,
    ConfigError,
    ConvergenceWarning,
    DataError,
    DataWarning,
    NotFittedError,
    SearchSpaceWarning,
    UnknownIdError,
)
from chuchun._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from chuchun.data import Interactions, Vocabulary
    from chuchun.evaluation import evaluate
    from chuchun.models import Recommender

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Interactions": "chuchun.data.interactions",
        "Vocabulary": "chuchun.data.vocabulary",
        "Recommender": "chuchun.models._base",
        "evaluate": "chuchun.evaluation",
    },
    globals(),
)


def load(path: str) -> Recommender:
    """Load a model artifact saved with ``model.save(path)`` (see :mod:`chuchun.io`)."""
    from chuchun.io import load_model

    return load_model(path)


__all__ = [
    "ArtifactError",
    "ChuchunError",
    "ChuchunWarning",
    "ConfigError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "Interactions",
    "NotFittedError",
    "Recommender",
    "SearchSpaceWarning",
    "UnknownIdError",
    "Vocabulary",
    "__version__",
    "evaluate",
    "load",
]
