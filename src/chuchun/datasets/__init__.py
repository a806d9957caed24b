"""Data sets: MovieLens loaders (with a bundled ml-latest-small), generic file loaders.

>>> from chuchun.datasets import load_dataset
>>> ml = load_dataset("ml-latest-small")        # ships with chuchun, no network
>>> ml.ratings
Interactions(100836 rows, 610 users, 9724 items, ratings, timestamps)
"""

from __future__ import annotations

from typing import Any

from chuchun._exceptions import DataError
from chuchun.datasets.files import load_baskets, load_interactions
from chuchun.datasets.movielens import (
    MOVIELENS,
    MovieLens,
    bundled_readme,
    cache_dir,
    download_movielens,
    load_movielens,
    load_movielens_1m,
    load_movielens_10m,
    load_movielens_20m,
    load_movielens_32m,
    load_movielens_100k,
    load_movielens_latest_small,
)

__all__ = [
    "MOVIELENS",
    "MovieLens",
    "bundled_readme",
    "cache_dir",
    "download_movielens",
    "load_baskets",
    "load_dataset",
    "load_interactions",
    "load_movielens",
    "load_movielens_100k",
    "load_movielens_10m",
    "load_movielens_1m",
    "load_movielens_20m",
    "load_movielens_32m",
    "load_movielens_latest_small",
]


def load_dataset(name: str, **kwargs: Any) -> MovieLens:
    """Load a data set by name.

    ``"ml-latest-small"`` is bundled with chuchun and always loads offline. The other MovieLens
    releases (``"ml-100k"``, ``"ml-1m"``, ``"ml-10m"``, ``"ml-20m"``, ``"ml-32m"``) come from the
    cache directory, downloaded on first use (``kwargs`` go to :func:`load_movielens`).
    """
    if not isinstance(name, str) or name not in MOVIELENS:
        raise DataError(
            f"unknown data set {name!r}; available: {', '.join(sorted(MOVIELENS))} "
            "(for files of your own use load_interactions or load_movielens(directory))"
        )
    if name == "ml-latest-small" and not kwargs:
        return load_movielens_latest_small()
    return load_movielens(name, **kwargs)


