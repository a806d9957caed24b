"""Explanations of HybridMF and the FM name an item's id terms by the item's label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun.data import Interactions, ItemFeatures
from chuchun.models import FactorizationMachine, HybridMF


def _log(seed: int = 0) -> tuple[Interactions, ItemFeatures, dict[int, str]]:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(12), 5)
    items = np.concatenate([rng.choice(9, 5, replace=False) + 100 for _ in range(12)])
    log = Interactions.from_arrays(users, items, rng.integers(1, 6, len(users)).astype(float))
    ids = np.arange(100, 109)
    feats = ItemFeatures.from_pandas(
        pd.DataFrame({"item": ids, "genre": [f"g{j % 3}" for j in range(len(ids))]}),
        categorical=["genre"])
    titles = {int(i): f"Film {i} ({1990 + int(i) % 10})" for i in ids}
    return log, feats, titles


def test_hybrid_names_the_id_pair_term_by_the_items_label():
    log, feats, titles = _log()
    m = HybridMF(n_factors=4, n_epochs=5, random_state=0).fit(log, item_features=feats)
    user, item = int(log.user_ids[0]), int(log.item_ids[0])
    plain = m.explain([user], [item], n_reasons=None)[0]
    named = m.explain([user], [item], labels=titles, n_reasons=None)[0]
    pair = [r for r in named.reasons if r.id == f"user={user} × item={item}"]
    assert len(pair) == 1
    assert pair[0].label == f"user={user} × {titles[item]}"
    assert pair[0].name == pair[0].label
    bias = [r for r in named.reasons if r.id == f"item={item} (bias)"]
    assert bias[0].label == f"{titles[item]} (bias)"
    # attribute terms keep their feature names; labels change no number
    assert all(r.label == "" for r in named.reasons if "genre=" in str(r.id))
    assert [r.contribution for r in named.reasons] == [r.contribution for r in plain.reasons]
    assert all(r.label == "" for r in plain.reasons)
    assert named.label == titles[item]
    assert named.score == pytest.approx(sum(r.contribution for r in named.reasons), abs=1e-6)
    # labels stored in the model serve the same purpose
    m.set_item_labels(titles)
    stored = m.explain([user], [item], n_reasons=None)[0]
    assert [r.label for r in stored.reasons] == [r.label for r in named.reasons]
    assert pair[0].to_dict()["detail"]["item"] == item


def test_fm_names_the_item_id_terms_by_the_items_label():
    log, feats, titles = _log(1)
    m = FactorizationMachine(n_factors=3, n_epochs=10, burn_in=3, random_state=0)
    m.fit(log, item_features=feats)
    user, item = int(log.user_ids[3]), int(log.item_ids[3])
    named = m.explain([user], [item], labels=titles, n_reasons=None)[0]
    pair = [r for r in named.reasons if r.id == f"user={user} × item={item}"]
    assert pair and pair[0].label == f"user={user} × {titles[item]}"
    linear = [r for r in named.reasons if r.id == f"item={item} (linear)"]
    assert linear and linear[0].label == f"{titles[item]} (linear)"
    assert named.score == pytest.approx(sum(r.contribution for r in named.reasons), abs=1e-4)
