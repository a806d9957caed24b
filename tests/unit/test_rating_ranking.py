"""The support-discounted ranking of the explicit rating models (BaselineOnly, FunkSVD, SVDpp,
ALS): ``recommend`` ranks by (prediction - lowest rating) x n_i / (n_i + ranking_damping),
``predict`` does not change, ``explain`` adds up to the ranking score."""

from __future__ import annotations

import numpy as np
import pytest

from chuchun import Interactions
from chuchun.models import ALS, BaselineOnly, FunkSVD, SVDpp

FAST = {
    BaselineOnly: {},
    FunkSVD: {"n_factors": 3, "n_epochs": 5},
    SVDpp: {"n_factors": 3, "n_epochs": 5},
    ALS: {"n_factors": 3, "n_epochs": 3},
}
MODELS = list(FAST)


def _log(seed: int = 0) -> Interactions:
    """40 users; items 0-19 rated by many users, items 20-29 by one or two users each."""
    rng = np.random.default_rng(seed)
    users, items, ratings = [], [], []
    for u in range(40):
        for i in rng.choice(20, size=8, replace=False):
            users.append(u), items.append(int(i)), ratings.append(float(rng.integers(2, 6)))
    for i in range(20, 30):
        for u in rng.choice(40, size=1 + i % 2, replace=False):
            users.append(int(u)), items.append(i), ratings.append(5.0)
    return Interactions.from_arrays(users, items, np.asarray(ratings, np.float32),
                                    rating_scale=(1, 5))


@pytest.fixture(scope="module")
def log() -> Interactions:
    return _log()


def _ranking_scores(m, users, log) -> np.ndarray:
    """What recommend ranks by, for every item of ``log`` in its order."""
    recs = m.recommend(users, k=len(m.items_), exclude_seen=False)
    out = np.empty((len(users), len(m.items_)))
    np.put_along_axis(out, recs.item_idx.astype(np.int64), recs.scores, axis=1)
    return out[:, m.items_.index(log.items.ids)]


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_ranking_score_is_the_discounted_unclipped_prediction(cls, log):
    m = cls(**FAST[cls], clip=False).fit(log)
    users = log.users.ids[:5]
    items = np.tile(log.items.ids, len(users))
    est = m.predict(np.repeat(users, log.n_items), items).reshape(len(users), -1)
    n = np.bincount(log.item_idx, minlength=log.n_items).astype(np.float64)
    want = (est - 1.0) * (n / (n + m.ranking_damping))
    np.testing.assert_allclose(_ranking_scores(m, users, log), want, rtol=1e-5, atol=1e-5)
    m.set_params(ranking_damping=0.0)
    np.testing.assert_allclose(_ranking_scores(m, users, log), est, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_predict_does_not_depend_on_ranking_damping(cls, log):
    a = cls(**FAST[cls]).fit(log)
    b = cls(**FAST[cls], ranking_damping=0.0).fit(log)
    u, i = log.user_ids[:50], log.item_ids[:50]
    np.testing.assert_array_equal(a.predict(u, i), b.predict(u, i))


def test_rarely_rated_items_no_longer_top_the_ranking(log):
    # unshrunk item biases put the items with one or two 5-star ratings first, for known
    # users and for unknown ones (the fallback mu + b_i); the support discount puts the
    # widely rated items first
    plain = BaselineOnly(item_regularization=0.0, ranking_damping=0.0).fit(log)
    damped = BaselineOnly(item_regularization=0.0, ranking_damping=10.0).fit(log)
    rare = np.arange(20, 30)
    users = [*log.users.ids[:10], 10_000]
    assert np.isin(plain.recommend(users, k=3).item_ids, rare).all()
    assert not np.isin(damped.recommend(users, k=3).item_ids, rare).any()


@pytest.mark.parametrize("cls", [ALS, BaselineOnly], ids=lambda c: c.__name__)
def test_additive_explanations_add_up_to_the_ranking_score(cls, log):
    m = cls(**FAST[cls]).fit(log)
    top = m.recommend(log.users.ids[:3], k=2)
    e = m.explain(np.repeat(top.user_ids, 2), top.item_ids.ravel(), n_reasons=None)
    for x, ranked in zip(e, top.scores.ravel(), strict=True):
        support = [r for r in x.reasons if r.id == "rating support"]
        assert len(support) == 1 and support[0].kind == "bias"
        est = support[0].detail["predicted rating"]
        assert support[0].contribution == pytest.approx(x.score - est)
        assert x.score == pytest.approx(float(ranked), rel=1e-5, abs=1e-5)
        assert sum(r.contribution for r in x.reasons) == pytest.approx(x.score, abs=1e-5)
    m.set_params(ranking_damping=0.0)
    x = m.explain(top.user_ids[:1], top.item_ids[:1, 0], n_reasons=None)[0]
    assert not [r for r in x.reasons if r.id == "rating support"]


def _fold_in_scores(m, history, ratings) -> np.ndarray:
    recs = m.recommend_for_history(history, k=len(m.items_), ratings=ratings,
                                   exclude_seen=False)
    out = np.empty(len(m.items_))
    out[recs.item_idx[0]] = recs.scores[0]
    return out


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_fold_in_ranks_with_the_same_discount(cls, log):
    m = cls(**FAST[cls]).fit(log)
    mine = log.user_ids == log.users.ids[0]
    history, ratings = [list(log.item_ids[mine])], [list(log.ratings[mine])]
    m.set_params(ranking_damping=0.0)
    plain = _fold_in_scores(m, history, ratings)
    m.set_params(ranking_damping=10.0)
    damped = _fold_in_scores(m, history, ratings)
    n = m.item_popularity_.astype(np.float64)
    np.testing.assert_allclose(damped, (plain - 1.0) * n / (n + 10.0), rtol=1e-5, atol=1e-5)
