"""UserFeatures.from_item_profiles: users described by the attributes of their items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun import ConfigError, DataError
from chuchun.data import Interactions, ItemFeatures, UserFeatures
from chuchun.models import HybridMF


def _items() -> ItemFeatures:
    frame = pd.DataFrame({"item": [10, 11, 12, 13],
                          "genres": ["Drama|War", "Comedy", "Drama", "Horror"],
                          "year": ["1990", "1990", "2001", "1975"]})
    return ItemFeatures.from_pandas(frame, multi_valued=["genres"], categorical=["year"])


def test_profile_is_the_mean_attribute_row_of_the_distinct_items():
    items = _items()
    log = Interactions.from_arrays(["a", "a", "a", "b", "c"], [10, 11, 10, 12, 99],
                                   duplicates="sum")
    prof = UserFeatures.from_item_profiles(log, items)
    assert list(prof.ids.ids) == ["a", "b", "c"]
    assert list(prof.feature_names) == [f"profile:{n}" for n in items.feature_names]
    assert set(prof.feature_columns) == {"profile:genres", "profile:year"}
    A = items.matrix.toarray()
    got = prof.matrix.toarray()
    # a rated 10 twice (one pair after summing) and 11 once: the mean over distinct items
    np.testing.assert_allclose(got[0], (A[0] + A[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(got[1], A[2], rtol=1e-6)
    # an item without features counts as a zero row
    np.testing.assert_allclose(got[2], 0.0)


def test_profile_columns_and_bad_input():
    items = _items()
    log = Interactions.from_arrays([1, 1], [10, 13])
    genres = UserFeatures.from_item_profiles(log, items, columns=["genres"])
    assert all(n.startswith("profile:genres=") for n in genres.feature_names)
    assert genres.matrix.toarray()[0].sum() > 0
    with pytest.raises(ConfigError, match="not item feature columns"):
        UserFeatures.from_item_profiles(log, items, columns=["decade"])
    with pytest.raises(DataError, match="ItemFeatures"):
        UserFeatures.from_item_profiles(log, genres)
    with pytest.raises(DataError, match="Interactions"):
        UserFeatures.from_item_profiles(pd.DataFrame(), items)


def test_hybrid_with_profiles_ranks_unseen_items_by_the_users_taste():
    """Two tastes, each user rates items of one genre; items with no interactions are ranked
    for each user by the profile of what they rated."""
    rng = np.random.default_rng(0)
    genre = np.array(["Drama", "Comedy"] * 20)
    frame = pd.DataFrame({"item": np.arange(40), "genres": genre})
    items = ItemFeatures.from_pandas(frame, multi_valued=["genres"])
    users, rated = [], []
    for u in range(30):
        mine = np.flatnonzero(genre[:30] == ("Drama" if u % 2 else "Comedy"))
        for i in rng.choice(mine, 6, replace=False):
            users.append(u)
            rated.append(i)
    log = Interactions.from_arrays(users, rated)
    prof = UserFeatures.from_item_profiles(log, items)
    m = HybridMF(loss="bpr", n_factors=4, n_epochs=30, random_state=0, use_ids=False)
    m.fit(log, item_features=items, user_features=prof)
    cold = np.arange(30, 40)
    recs = m.recommend(np.arange(30), k=1, candidates=cold)
    want = np.where(np.arange(30) % 2, "Drama", "Comedy")
    assert (genre[recs.item_ids[:, 0].astype(int)] == want).mean() >= 0.9
