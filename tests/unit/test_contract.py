"""The model contract beyond the conformance suite: exact fold-in of the neighbourhood models,
explanations that add up, similar-item lists."""

from __future__ import annotations

import numpy as np
import pytest

from chuchun import Interactions
from chuchun.models import (
    ALS,
    BPR,
    BaselineOnly,
    FunkSVD,
    ImplicitUserKNN,
    ItemKNN,
    SVDpp,
    TruncatedSVD,
    UserKNN,
)
from chuchun.models._explain import ridge_history_weights
from chuchun.testing import block_interactions


@pytest.fixture(scope="module")
def blocks() -> Interactions:
    return block_interactions(n_users=30, n_items=18)


def _without_user(data: Interactions, user: object) -> tuple[Interactions, list, list]:
    keep = data.user_ids != user
    mine = ~keep
    return data.subset(keep), list(data.item_ids[mine]), list(data.ratings[mine])


def _scores(recs, items_vocab) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.full(len(items_vocab), np.nan)
    ok = recs.item_idx[0] >= 0
    out[items_vocab.index(recs.item_ids[0][ok])] = recs.scores[0][ok]
    return out


@pytest.mark.parametrize("prediction", ["mean_centered", "zscore", "baseline"])
def test_user_knn_fold_in_equals_a_fit_that_includes_the_user(blocks, prediction):
    # the folded-in user's similarities to the others and their neighbours' terms are those
    # of a model fitted with the user (only the user's own row differs between the two fits)
    user = blocks.users.ids[4]
    rest, items, ratings = _without_user(blocks, user)
    # (the plain rule falls back to the global mean, which differs between the two fits, and
    # the baseline rule to biases that differ; compare where neighbours exist)
    params = dict(similarity="pearson", prediction=prediction, shrinkage=10.0, max_stored=None,
                  clip=False, ranking_damping=0.0)
    full = UserKNN(**params).fit(blocks)
    part = UserKNN(**params).fit(rest)
    assert part.items_.ids.tolist() == full.items_.ids.tolist()
    folded = part.recommend_for_history([items], ratings=[ratings], k=len(part.items_),
                                        exclude_seen=False)
    expected = full.predict([user] * len(full.items_), full.items_.ids)
    got = _scores(folded, part.items_)
    if prediction == "baseline":
        # the biases of the two fits differ a little: only the neighbour part must agree
        assert np.corrcoef(got, expected)[0, 1] > 0.99
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_item_knn_fold_in_of_a_training_user_reproduces_its_scores(blocks):
    m = ItemKNN(n_neighbors=5, damping=2.0).fit(blocks)
    user = blocks.users.ids[7]
    mine = blocks.user_ids == user
    folded = m.recommend_for_history([list(blocks.item_ids[mine])],
                                     ratings=[list(blocks.ratings[mine])],
                                     k=len(m.items_), exclude_seen=False)
    fitted = m._score(m.users_.index([user]))[0]
    np.testing.assert_allclose(_scores(folded, m.items_), fitted, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("similarity", ["cosine", "jaccard"])
def test_implicit_user_knn_fold_in_equals_a_fit_that_includes_the_user(blocks, similarity):
    user = blocks.users.ids[2]
    rest, items, _ = _without_user(blocks, user)
    full = ImplicitUserKNN(n_neighbors=6, similarity=similarity, binary=True).fit(blocks)
    part = ImplicitUserKNN(n_neighbors=6, similarity=similarity, binary=True).fit(rest)
    folded = part.recommend_for_history([items], k=len(part.items_), exclude_seen=False)
    expected = full._score(full.users_.index([user]))[0]
    np.testing.assert_allclose(_scores(folded, part.items_), expected, rtol=1e-5, atol=1e-6)


def test_implicit_user_knn_fold_in_weights_by_the_training_statistics(blocks):
    m = ImplicitUserKNN(n_neighbors=6, weighting="bm25").fit(blocks)
    history = [list(blocks.items.ids[:4])]
    a = m.recommend_for_history(history, k=5)
    b = m.recommend_for_history(history + [list(blocks.items.ids[4:9])], k=5)
    # a user's list does not depend on who else is folded in with them
    assert np.array_equal(a.item_idx[0], b.item_idx[0])
    np.testing.assert_allclose(a.scores[0], b.scores[0], rtol=1e-6)


def test_explicit_knn_explanations_add_up_with_damping(blocks):
    m = ItemKNN(n_neighbors=4, damping=3.0, similarity="cosine", shrinkage=0.0,
                clip=False, ranking_damping=0.0).fit(blocks)
    users = blocks.users.ids[:5]
    items = m.recommend(users, k=1).item_ids[:, 0]
    ex = m.explain(users, items, n_reasons=None)
    pred = m.predict(users, items)
    for e, p in zip(ex, pred, strict=True):
        assert e.score == pytest.approx(p, rel=1e-9)
        assert sum(r.contribution for r in e.reasons) == pytest.approx(p, rel=1e-9)
        assert {r.id for r in e.reasons if r.kind == "bias"} == {
            "global mean", "item bias", "user bias"}
        neighbours = [r for r in e.reasons if r.kind == "item"]
        assert 0 < len(neighbours) <= 4


def test_ranking_uses_unclipped_scores():
    # two items both predicted above the top of the scale: clipping would tie them at 5
    data = Interactions.from_arrays(
        ["a", "a", "b", "b", "c", "c", "d"], ["x", "y", "x", "y", "x", "z", "z"],
        [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0], rating_scale=(1.0, 5.0))
    # ranking_damping=0: rank by the prediction itself, the case clipping would tie
    m = BaselineOnly(user_regularization=0.0, item_regularization=0.0,
                     ranking_damping=0.0).fit(data)
    raw = m._score(m.users_.index(["a"]))[0]
    assert raw.max() > 5.0
    top = m.recommend(["d"], k=2)
    assert np.isfinite(top.scores).all() and top.scores[0, 0] > top.scores[0, 1]
    assert (m.predict(["a", "a"], ["x", "y"]) <= 5.0).all()


@pytest.mark.parametrize("cls", [FunkSVD, SVDpp, BPR])
def test_sgd_models_explain_through_the_users_history(blocks, cls):
    m = cls(n_factors=4, n_epochs=5, random_state=0).fit(blocks)
    user = blocks.users.ids[3]
    top = m.recommend([user], k=1).item_ids[0, 0]
    e = m.explain([user], [top], n_reasons=None)[0]
    history = set(blocks.item_ids[blocks.user_ids == user].tolist())
    items = [r for r in e.reasons if r.kind == "item"]
    assert {r.id for r in items} == history
    assert not e.additive and np.isnan(e.remainder)
    assert "item bias" in {r.id for r in e.reasons if r.kind == "bias"}


def test_ridge_history_weights_recover_a_vector_in_the_span_of_the_history():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((6, 4))
    a = np.array([1.0, -0.5, 0.0, 2.0, 0.0, 0.0])
    p = q.T @ a
    qi = rng.standard_normal(4)
    contrib, weights = ridge_history_weights(q, p, qi, ridge=1e-9)
    assert contrib.sum() == pytest.approx(p @ qi, rel=1e-6)
    np.testing.assert_allclose(q.T @ weights, p, atol=1e-6)
    # a vector orthogonal to every history vector gets no weight at all
    few = q[:2]
    orth = np.linalg.svd(few)[2][-1]
    _, w = ridge_history_weights(few, orth, qi)
    np.testing.assert_allclose(w, 0.0, atol=1e-9)


def test_truncated_svd_explanation_is_exact(blocks):
    m = TruncatedSVD(n_factors=3).fit(blocks)
    user, item = blocks.users.ids[1], blocks.items.ids[4]
    e = m.explain([user], [item], n_reasons=None)[0]
    score = float(m._score(m.users_.index([user]))[0, m.items_.index([item])[0]])
    assert sum(r.contribution for r in e.reasons) == pytest.approx(score, abs=1e-5)


def test_als_similar_items_have_one_result_type(blocks):
    m = ALS(n_factors=3, n_epochs=5, biased=False).fit(blocks)
    sim = m.similar_items(blocks.items.ids[:2], k=3)
    assert type(sim).__name__ == "SimilarItems" and list(sim.query_ids) == list(
        blocks.items.ids[:2])
    assert set(sim.to_pandas().columns) == {"query", "rank", "item", "score"}


# -- registry, failed fits, parameter names ------------------------------------------------------
def test_a_users_class_named_like_a_builtin_does_not_shadow_it(blocks, tmp_path):
    import json
    import types

    import chuchun
    from chuchun.models import get_model_class

    module = types.ModuleType("user_script")
    exec("from chuchun.models import ALS\nclass ALS(ALS):\n    pass\n", module.__dict__)
    assert get_model_class("ALS") is ALS
    built_in = ALS(n_factors=2, n_epochs=1).fit(blocks)
    built_in.save(tmp_path / "m")
    assert type(chuchun.load(tmp_path / "m")) is ALS
    # an artifact written before the qualified name was stored loads the built-in
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["model_qualname"] == "chuchun.models.mf.ALS"
    del manifest["model_qualname"]
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    assert type(chuchun.load(tmp_path / "m")) is ALS
    # the user's class is registered under its own qualified name and saves as itself
    mine = module.ALS(n_factors=2, n_epochs=1).fit(blocks)
    mine.save(tmp_path / "mine")
    assert type(chuchun.load(tmp_path / "mine")) is module.ALS
    assert get_model_class("user_script.ALS") is module.ALS


def test_a_second_class_under_a_taken_name_is_an_error():
    import types

    from chuchun import ConfigError

    source = "from chuchun.models import Popularity\nclass Twice(Popularity):\n    pass\n"
    first = types.ModuleType("twice_module")
    exec(source, first.__dict__)
    second = types.ModuleType("twice_module")
    with pytest.raises(ConfigError, match="already registered"):
        exec(source, second.__dict__)


def test_funk_svd_without_ratings_leaves_the_model_as_it_was(blocks, tmp_path):
    from chuchun import DataError, NotFittedError

    implicit = Interactions.from_arrays(["a", "b"], ["x", "y"])
    m = FunkSVD(n_factors=2, n_epochs=1)
    with pytest.raises(DataError):
        m.fit(implicit)
    assert not m.is_fitted
    with pytest.raises(NotFittedError):
        m.save(tmp_path / "m")
    m.fit(blocks)
    before = m.recommend(blocks.users.ids[:3], k=3).item_idx
    with pytest.raises(DataError):
        m.fit(implicit)
    assert np.array_equal(m.recommend(blocks.users.ids[:3], k=3).item_idx, before)


def test_old_parameter_names_and_values_warn(blocks):
    from chuchun.models import ImplicitALS

    with pytest.warns(DeprecationWarning, match="n_iterations"):
        m = ImplicitALS(n_factors=2, n_iterations=3)
    assert m.n_epochs == 3 and "n_iterations" not in m.get_params()
    with pytest.warns(DeprecationWarning, match="n_threads=0"):
        b = BPR(n_threads=0)
    assert b.n_threads is None
    with pytest.warns(DeprecationWarning):
        m.set_params(n_iterations=2)
    assert m.n_epochs == 2


def test_random_state_accepts_a_generator(blocks):
    a = FunkSVD(n_factors=2, n_epochs=2, random_state=np.random.default_rng(5)).fit(blocks)
    b = FunkSVD(n_factors=2, n_epochs=2, random_state=np.random.default_rng(5)).fit(blocks)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


def test_bpr_does_not_depend_on_the_machines_cores(blocks):
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from chuchun.models import BPR\n"
        "from chuchun.testing import block_interactions\n"
        "d = block_interactions(n_users=30, n_items=18)\n"
        "m = BPR(n_factors=4, n_epochs=3, n_threads=2, random_state=1).fit(d)\n"
        "print(repr(m.item_factors_.tobytes().hex()[:4000]))\n"
    )
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    one_core = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True).stdout
    here = BPR(n_factors=4, n_epochs=3, n_threads=2, random_state=1).fit(blocks)
    assert one_core.strip() == repr(here.item_factors_.tobytes().hex()[:4000])


def test_help_shows_each_parameters_type_default_and_doc():
    import pydoc

    text = pydoc.render_doc(FunkSVD, renderer=pydoc.plaintext)
    assert "n_factors = Param(int >= 1, default=100): Number of latent factors." in text
    assert "<chuchun._params.Param object" not in text
