"""HybridMF's cold-item options: item-id dropout and the learned arrival-rate prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun import ConfigError, DataError
from chuchun.data import Interactions, ItemFeatures
from chuchun.io import load_model
from chuchun.models import HybridMF
from chuchun.models.hybrid import _arrival_rates


def _arrivals(seed: int = 0, n_users: int = 60, n_old: int = 40, n_new: int = 30,
              n_cold: int = 12):
    """A log over times 0..100 with two kinds of items matched to two kinds of users.

    Old items are there from the start, all on the 'stale' shelf, and popular. New items
    arrive over times 60..95; those on the 'fresh' shelf are taken by many users soon after
    they arrive, 'stale' ones by one. ``n_cold`` further items (half fresh, half stale) exist
    only in the features. Over the whole log 'stale' items are the more popular; among
    arrivals, 'fresh' ones are.
    """
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, 2, n_users)
    n_items = n_old + n_new + n_cold
    kind = rng.integers(0, 2, n_items)
    shelf = np.array(["stale"] * n_old
                     + ["fresh" if j % 2 else "stale" for j in range(n_new + n_cold)])
    rows = []
    for u in range(n_users):
        liked = np.flatnonzero(kind[:n_old] == taste[u])
        for i in rng.choice(liked, min(14, len(liked)), replace=False):
            rows.append((u, i, float(rng.uniform(0, 100))))
    for j in range(n_new):
        i = n_old + j
        arrive = 60.0 + 35.0 * j / n_new
        takers = 12 if shelf[i] == "fresh" else 1
        pool = np.flatnonzero(taste == kind[i])
        for u in rng.choice(pool, min(takers, len(pool)), replace=False):
            rows.append((u, i, arrive + float(rng.uniform(0, 100 - arrive))))
    frame = pd.DataFrame(rows, columns=["user", "item", "t"]).drop_duplicates(["user", "item"])
    log = Interactions.from_arrays(frame["user"], frame["item"],
                                   timestamps=(frame["t"] * 1000).astype(np.int64))
    items = ItemFeatures.from_pandas(
        pd.DataFrame({"item": np.arange(n_items), "kind": [f"k{k}" for k in kind],
                      "shelf": shelf}), categorical=["kind", "shelf"])
    cold = np.arange(n_old + n_new, n_items)
    return log, items, taste, kind, shelf, cold


def test_arrival_rates_learn_which_attributes_arrive_popular():
    log, items, taste, kind, shelf, cold = _arrivals()
    iidx = log.items.index(log.item_ids)
    raw = items.align(log.items).matrix.tocsr().astype(np.float64)
    names = list(items.feature_names)
    coef, log_rate = _arrival_rates(log.timestamps, iidx, raw, 0.35)
    fresh, stale = names.index("shelf=fresh"), names.index("shelf=stale")
    # fresh arrivals are taken about 12 times, stale ones about once: exp(gap) near 12
    assert coef[1 + fresh] - coef[1 + stale] > np.log(4)
    assert log_rate.shape == (len(log.items),)


def test_cold_item_prior_ranks_the_popular_kind_of_arrival_first():
    log, items, taste, kind, shelf, cold = _arrivals(seed=1)
    flat = HybridMF(loss="bpr", n_factors=4, n_epochs=20, random_state=0)
    flat.fit(log, item_features=items)
    assert not flat.item_prior_.any()
    model = HybridMF(loss="bpr", n_factors=4, n_epochs=20, cold_item_prior=0.35,
                     random_state=0)
    model.fit(log, item_features=items)
    assert len(model.prior_coef_) == 1 + len(items.feature_names)
    users = np.arange(len(taste))
    fresh = set(cold[shelf[cold] == "fresh"].tolist())
    top = model.recommend(users, k=2, candidates=cold).item_ids.astype(int)
    hit = np.mean([t in fresh for t in top.ravel()])
    base = flat.recommend(users, k=2, candidates=cold).item_ids.astype(int)
    hit_flat = np.mean([t in fresh for t in base.ravel()])
    assert hit > 0.8
    assert hit > hit_flat + 0.2
    # items with interactions keep their learned biases
    warm = model.item_popularity_ > 0
    assert not model.item_prior_[warm].any()
    # the prior is one exact, named term of a cold item's score
    e = model.explain(users[:1], cold[:1], n_reasons=100)[0]
    assert any(r.kind == "popularity" for r in e.reasons)
    assert e.score == pytest.approx(sum(r.contribution for r in e.reasons), abs=1e-6)
    assert e.score == pytest.approx(float(model.predict(users[:1], cold[:1])[0]), abs=1e-5)


def test_cold_item_prior_survives_save_and_load(tmp_path):
    log, items, taste, kind, shelf, cold = _arrivals(seed=2)
    model = HybridMF(loss="bpr", n_factors=4, n_epochs=5, cold_item_prior=0.35,
                     random_state=0).fit(log, item_features=items)
    model.save(tmp_path / "h")
    back = load_model(tmp_path / "h")
    users = np.arange(5)
    np.testing.assert_allclose(back.predict(np.repeat(users, len(cold)), np.tile(cold, 5)),
                               model.predict(np.repeat(users, len(cold)), np.tile(cold, 5)),
                               rtol=1e-6)


def test_cold_item_prior_needs_timestamps_and_attributes():
    log, items, *_ = _arrivals()
    untimed = Interactions.from_arrays(log.user_ids, log.item_ids)
    with pytest.raises(DataError, match="timestamps"):
        HybridMF(cold_item_prior=0.2, n_epochs=1).fit(untimed, item_features=items)
    with pytest.raises(ConfigError, match="item attributes"):
        HybridMF(cold_item_prior=0.2, n_epochs=1).fit(log)


def test_item_id_dropout_trains_attributes_to_rank_cold_items_alone():
    log, items, taste, kind, shelf, cold = _arrivals(seed=3)
    users = np.arange(len(taste))
    plain = HybridMF(loss="bpr", n_factors=8, n_epochs=15, random_state=0).fit(
        log, item_features=items)
    m = HybridMF(loss="bpr", n_factors=8, n_epochs=15, item_id_dropout=0.5,
                 random_state=0).fit(log, item_features=items)
    # the option reaches the training loop ...
    assert not np.allclose(m.feature_embeddings_, plain.feature_embeddings_)
    # ... and cold items, scored from their attributes alone, still follow the users' taste
    top = m.recommend(users, k=2, candidates=cold).item_ids.astype(int)
    assert (kind[top] == taste[:, None]).mean() > 0.9
    # the id-free rows the dropped steps use carry no id column
    fs = m._space()
    cols = HybridMF._attribute_columns(fs)
    names = fs.feature_names[fs.n_user_features:][cols]
    assert not any(str(n).startswith("item=") for n in names)
    assert len(cols) == len(items.feature_names)
