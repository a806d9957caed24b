"""One local Spark session for every test in this folder (``pytest -m spark`` runs them alone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chuchun.data import Interactions


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from chuchun.spark import get_session

    session = get_session(
        "local[2]", app_name="chuchun-tests", shuffle_partitions=2,
        config={"spark.ui.showConsoleProgress": "false",
                "spark.default.parallelism": "2",
                "spark.sql.adaptive.coalescePartitions.enabled": "true"},
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def ml100k_u1(ml100k_dir: Path) -> Any:
    from chuchun.data.splits import movielens_100k_folds

    return movielens_100k_folds(ml100k_dir)[0]


@pytest.fixture(scope="session")
def small_log() -> Interactions:
    """A small explicit log with string user ids and timestamps (ties included)."""
    import numpy as np

    rng = np.random.default_rng(3)
    n_users, n_items = 40, 25
    pairs = rng.choice(n_users * n_items, size=400, replace=False)
    users = np.array([f"u{p // n_items:02d}" for p in pairs])
    items = (pairs % n_items) * 7 + 100
    ratings = rng.integers(1, 6, size=len(pairs)).astype(float)
    stamps = rng.integers(0, 60, size=len(pairs))
    return Interactions.from_arrays(users, items, ratings, stamps)
