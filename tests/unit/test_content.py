"""ContentBased: hand-computed scores, cold-start items, explanations, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun import ConfigError, DataError, DataWarning, Interactions, UnknownIdError
from chuchun.data import ItemFeatures
from chuchun.models import ContentBased

MOVIES = pd.DataFrame({
    "item": [1, 2, 3, 4, 5],
    "title": ["Toy Story", "Heat", "Toy Story 2", "Casino", "Cars"],
    "genres": ["Animation|Children", "Crime", "Animation|Children", "Crime",
               "Animation|Children"],
})


@pytest.fixture()
def features() -> ItemFeatures:
    return ItemFeatures.from_pandas(MOVIES, multi_valued=["genres"])


@pytest.fixture()
def ratings() -> Interactions:
    # item 5 (Cars) is never rated: a cold-start item present only in the features
    return Interactions.from_arrays(
        ["a", "a", "a", "b", "b"], [1, 2, 3, 2, 4], [5.0, 1.0, 4.0, 5.0, 4.0],
        rating_scale=(1, 5),
    )


def test_profile_and_scores_by_hand(ratings: Interactions, features: ItemFeatures) -> None:
    m = ContentBased().fit(ratings, item_features=features)
    # user a: mean 10/3; weights 5/3, -7/3, 2/3 on animation, crime, animation
    # profile ~ (7/3) * anim - (7/3) * crime -> cos to an animation item = 1/sqrt(2)
    scores = m.predict(["a", "a"], [5, 4])
    assert scores[0] == pytest.approx(1 / np.sqrt(2), rel=1e-5)
    assert scores[1] == pytest.approx(-1 / np.sqrt(2), rel=1e-5)


def test_cold_start_items_are_recommended(ratings: Interactions,
                                          features: ItemFeatures) -> None:
    m = ContentBased().fit(ratings, item_features=features)
    assert m.items_.ids.tolist() == [1, 2, 3, 4, 5]
    assert m.item_popularity_.tolist() == [1, 2, 1, 1, 0]
    recs = m.recommend(["a"], k=2)
    assert recs.to_lists()[0] == [5, 4]  # never-rated Cars first; seen items excluded
    only_cold = m.recommend(["a"], k=3, candidates=[5])
    assert only_cold.to_lists()[0] == [5]


def test_user_with_equal_ratings_uses_uncentred_weights(features: ItemFeatures) -> None:
    data = Interactions.from_arrays(["a", "a"], [1, 3], [4.0, 4.0])
    m = ContentBased().fit(data, item_features=features)
    assert m.predict(["a"], [5])[0] == pytest.approx(1.0, rel=1e-5)


def test_implicit_feedback_and_fold_in(features: ItemFeatures) -> None:
    data = Interactions.from_arrays(["a", "b"], [2, 1])
    m = ContentBased().fit(data, item_features=features)
    assert m.recommend(["a"], k=1).to_lists()[0] == [4]
    folded = m.recommend_for_history([[1]], k=2)
    assert set(folded.to_lists()[0]) == {3, 5}


def test_popularity_discount_by_hand(ratings: Interactions, features: ItemFeatures) -> None:
    plain = ContentBased().fit(ratings, item_features=features)
    same = ContentBased(popularity_discount=0.0).fit(ratings, item_features=features)
    np.testing.assert_array_equal(plain.predict(["a", "a"], [5, 4]),
                                  same.predict(["a", "a"], [5, 4]))
    m = ContentBased(popularity_discount=1.0).fit(ratings, item_features=features)
    # user a: centred weights 5/3, -7/3, 2/3; item 2 (Heat) was rated by two users, so its
    # weight halves to -7/6: profile ~ (7/3) * anim - (7/6) * crime
    scores = m.predict(["a", "a"], [5, 4])
    assert scores[0] == pytest.approx(2 / np.sqrt(5), rel=1e-5)
    assert scores[1] == pytest.approx(-1 / np.sqrt(5), rel=1e-5)
    ex = m.explain("a", 5)[0]
    assert sum(r.contribution for r in ex.reasons) == pytest.approx(float(scores[0]), rel=1e-5)
    with pytest.raises(ConfigError, match="popularity_discount"):
        ContentBased(popularity_discount=-1.0).fit(ratings, item_features=features)
    with pytest.raises(ConfigError, match="finite"):
        ContentBased(popularity_discount=float("inf")).fit(ratings, item_features=features)
    # a large exponent leaves the user's least popular items, not underflowed zeros:
    # a's profile is all animation (Heat's factor 2**-200 vanishes)
    steep = ContentBased(popularity_discount=200.0).fit(ratings, item_features=features)
    assert steep.predict(["a"], [5])[0] == pytest.approx(1.0, rel=1e-5)


def test_popularity_discount_fold_in_matches_training_profile(features: ItemFeatures) -> None:
    data = Interactions.from_arrays(["a", "a", "b", "b", "c"], [1, 2, 2, 4, 2])
    m = ContentBased(popularity_discount=2.0).fit(data, item_features=features)
    # a history equal to user a's is weighted with the training popularities, as a is
    folded = m.recommend_for_history([[1, 2]], k=3, exclude_seen=False)
    own = m.recommend(["a"], k=3, exclude_seen=False)
    assert folded.to_lists() == own.to_lists()
    np.testing.assert_allclose(folded.scores, own.scores, rtol=1e-6)


def test_similar_items_by_content(ratings: Interactions, features: ItemFeatures) -> None:
    m = ContentBased().fit(ratings, item_features=features)
    sim = m.similar_items([1, 2], k=2)
    assert set(sim.to_lists()[0]) == {3, 5}
    assert sim.to_lists()[1] == [4]
    assert sim.scores[0, 0] == pytest.approx(1.0)


def test_explain_cold_start(ratings: Interactions, features: ItemFeatures) -> None:
    m = ContentBased().fit(ratings, item_features=features)
    titles = dict(zip(MOVIES.item, MOVIES.title, strict=True))
    ex = m.explain("a", 5, labels=titles)[0]
    assert ex.score == pytest.approx(m.predict(["a"], [5])[0], rel=1e-5)
    assert ex.label == titles[5] and ex.additive
    assert all(r.kind == "feature" for r in ex.reasons)
    # Cars shares Animation and Children with the profile; its other genres add nothing
    assert {r.id for r in ex.reasons} == {"genres=Animation", "genres=Children"}
    assert {r.detail["value"] for r in ex.reasons} == {"Animation", "Children"}
    assert sum(r.weight for r in ex.reasons) == pytest.approx(ex.score, rel=1e-6)


def test_bad_inputs(ratings: Interactions, features: ItemFeatures) -> None:
    with pytest.raises(ConfigError, match="needs item features"):
        ContentBased().fit(ratings)
    with pytest.raises(DataError, match="ItemFeatures"):
        ContentBased().fit(ratings, item_features=MOVIES)
    text_ids = ItemFeatures.from_pandas(MOVIES.assign(item=MOVIES.item.astype(str)),
                                        multi_valued=["genres"])
    with pytest.raises(DataError, match=r"features are strings \(such as \['1', '2', '3'\]\) "
                                        r"and those of the interactions are integers"):
        ContentBased().fit(ratings, item_features=text_ids)
    # ids that look alike but differ ("007" is not "7"): nothing would shape a profile
    padded = Interactions.from_arrays(["u", "v"], ["001", "002"])
    with pytest.raises(DataError, match="none of the 2 rated items has a row in item_features"):
        ContentBased().fit(padded, item_features=text_ids)
    partly = Interactions.from_arrays(["u", "u", "v"], ["1", "x", "y"])
    with pytest.warns(DataWarning, match="only 1 of the 3 rated items have features"):
        ContentBased().fit(partly, item_features=text_ids)
    m = ContentBased().fit(ratings, item_features=features)
    with pytest.raises(UnknownIdError, match="not seen in training"):
        m.similar_items([42], unknown="error")
