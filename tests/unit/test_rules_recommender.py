"""The AssociationRules recommender."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun._exceptions import ConfigError, DataError, NotFittedError, UnknownIdError
from chuchun.data import Interactions
from chuchun.models import AssociationRules, registered_models
from chuchun.rules import FPGrowth
from chuchun.testing import block_interactions, check_model

BASKETS = {
    "ann": ["yogurt", "whole milk", "butter"],
    "bob": ["yogurt", "whole milk", "butter"],
    "cat": ["yogurt", "whole milk"],
    "dan": ["yogurt", "whole milk", "bread"],
    "eve": ["whole milk", "bread"],
    "fay": ["bread", "jam"],
    "gus": ["yogurt"],
    "hal": ["butter", "bread"],
}


def _log(baskets=BASKETS, ratings=None):
    users = [u for u, items in baskets.items() for _ in items]
    items = [i for items in baskets.values() for i in items]
    return Interactions.from_arrays(users, items, ratings)


def test_registered_and_conformant():
    assert "AssociationRules" in registered_models()
    check_model(AssociationRules(min_support=0.1, min_confidence=0.2), block_interactions())


def test_scores_are_best_rule_confidence():
    data = _log()
    model = AssociationRules(min_support=2, min_confidence=0.0, max_len=None).fit(data)
    rules = FPGrowth(min_support=2).mine(list(BASKETS.values())).rules()
    table = rules.to_pandas()
    table = table[table["consequent"].map(len) == 1]
    n = len(BASKETS)
    prior = {i: sum(i in b for b in BASKETS.values()) / n for b in BASKETS.values() for i in b}
    for user, basket in BASKETS.items():
        for item in sorted(prior):
            applicable = table[
                table["antecedent"].map(lambda a, b=set(basket): a <= b)
                & (table["consequent"] == frozenset({item}))
            ]
            expected = max([prior[item], *applicable["confidence"].tolist()])
            got = model.predict([user], [item])[0]
            assert got == pytest.approx(expected, rel=1e-6), (user, item)


def test_recommend_explain_and_bought_together():
    model = AssociationRules(min_support=2, min_confidence=0.2).fit(_log())
    recs = model.recommend(["cat"], k=2)
    # butter via {yogurt, whole milk} -> butter (2/4); bread by its base rate (4/8), above any rule
    assert set(recs.to_lists()[0]) == {"butter", "bread"}
    explanation = model.explain("cat", "butter")[0]
    assert explanation.score == pytest.approx(0.5)
    best = explanation.reasons[0]
    assert best.kind == "rule" and best.detail["confidence"] == pytest.approx(0.5)
    assert best.id in {"{whole milk, yogurt} → butter", "{yogurt, whole milk} → butter"}
    assert best.contribution == pytest.approx(explanation.score)
    named = model.explain("cat", "butter", labels=str.upper)[0].reasons[0]
    assert named.label in {"{WHOLE MILK, YOGURT} → BUTTER", "{YOGURT, WHOLE MILK} → BUTTER"}
    none = model.explain("fay", "butter")[0]
    assert [r.kind for r in none.reasons] == ["popularity"]
    assert none.score == pytest.approx(none.reasons[0].contribution)
    together = model.bought_together("yogurt", k=3)
    assert list(together.columns) == ["item", "confidence", "lift", "support"]
    assert together["item"].iloc[0] == "whole milk"
    assert together["confidence"].iloc[0] == pytest.approx(4 / 5)
    assert np.all(np.diff(together["confidence"].to_numpy()) <= 0)
    assert model.bought_together("jam").empty
    rules = model.rules_
    assert len(rules) == len(model.rule_consequent_) and np.all(rules.confidence >= 0.2)


def test_min_rating_filters_baskets():
    data = _log({"a": ["x", "y"], "b": ["x", "y"], "c": ["x", "z"]}, ratings=[5, 5, 5, 1, 5, 5])
    all_rules = AssociationRules(min_support=2, min_confidence=0.0).fit(data)
    liked = AssociationRules(min_support=2, min_confidence=0.0, min_rating=4.0).fit(data)
    assert all_rules.bought_together("x")["item"].tolist() == ["y"]
    assert liked.bought_together("x").empty  # b's y is rated 1, so {x, y} occurs once
    assert liked.n_transactions_ == 3
    with pytest.raises(DataError, match="no user has an interaction rated >= min_rating=9.0"):
        AssociationRules(min_rating=9.0).fit(data)
    with pytest.raises(DataError, match="has no ratings"):
        AssociationRules(min_rating=4.0).fit(_log())


def test_fold_in_uses_the_same_rules():
    model = AssociationRules(min_support=2, min_confidence=0.2).fit(_log())
    new = model.recommend_for_history([["yogurt", "whole milk"]], k=2)
    assert new.to_lists() == model.recommend(["cat"], k=2).to_lists()


def test_errors():
    with pytest.raises(NotFittedError):
        AssociationRules().explain("ann", "butter")
    with pytest.raises(ConfigError, match="min_confidence"):
        AssociationRules(min_confidence=2.0).fit(_log())
    with pytest.raises(ConfigError, match="above the number of transactions"):
        AssociationRules(min_support=50).fit(_log())
    with pytest.raises(ConfigError):
        AssociationRules(min_supprt=0.1)
    model = AssociationRules(min_support=2).fit(_log())
    with pytest.raises(UnknownIdError):
        model.explain("ann", "caviar")
    with pytest.raises(UnknownIdError):
        model.bought_together("caviar")


def test_save_load_roundtrip(tmp_path):
    from chuchun.io import load_model

    model = AssociationRules(min_support=2, min_confidence=0.2).fit(_log())
    model.save(str(tmp_path / "rules.zip"))
    loaded = load_model(str(tmp_path / "rules.zip"))
    assert str(loaded.explain("cat", "butter")) == str(model.explain("cat", "butter"))
    pd.testing.assert_frame_equal(loaded.bought_together("yogurt"), model.bought_together("yogurt"))


def test_min_support_from_text_is_count_or_fraction():
    spec = AssociationRules.param_specs()["min_support"]
    assert spec.parse("5") == 5 and isinstance(spec.parse("5"), int)
    assert spec.parse("0.05") == 0.05
    model = AssociationRules(min_support=spec.parse("2"), min_confidence=0.2).fit(_log())
    assert model.get_params()["min_support"] == 2 and len(model.rule_consequent_) > 0
