"""The approximate index: recall against exact inner-product search, exact re-scoring, the
check that refuses models whose scores are not inner products, and ``--index ann`` end to end."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

import chuchun
from chuchun._exceptions import ConfigError
from chuchun.serve.ann import FactorIndex, exact_top_k
from tests.serve.conftest import start_server


def _clustered(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    centres = rng.normal(size=(64, d))
    x = centres[rng.integers(0, 64, size=n)] + 0.5 * rng.normal(size=(n, d))
    return (x * rng.lognormal(0, 0.3, size=(n, 1))).astype(np.float32)  # unequal norms


def test_recall_against_exact_search() -> None:
    rng = np.random.default_rng(0)
    items = _clustered(rng, 5_000, 16)
    queries = rng.normal(size=(200, 16)).astype(np.float32)
    index = FactorIndex(items, M=16, ef_construction=100, ef_search=100, n_threads=2)
    approx = index.query(queries, 10)
    exact = exact_top_k(items, queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.95
    # a tiny search list loses recall: the parameter reaches the graph
    index.ef_search = 1
    index._index.set_ef(1)
    poor = index.query(queries, 1)
    assert np.mean(poor[:, 0] == exact[:, 0]) < 1.0


def test_factor_view_rescoring_and_refusals(artifacts: dict[str, Path]) -> None:
    model = chuchun.load(str(artifacts["als"]))
    index = FactorIndex.build(model, ef_search=200)
    seen = model.seen_
    u = int(model.users_.index([7])[0])
    excl = seen.indices[seen.indptr[u]:seen.indptr[u + 1]]
    idx, scores = index.recommend(u, 10, exclude=excl)
    exact = model.recommend([7], k=10)
    assert len(set(idx.tolist()) & set(exact.item_idx[0].tolist())) >= 9
    common = np.intersect1d(idx, exact.item_idx[0])
    mine = dict(zip(idx.tolist(), scores.tolist(), strict=True))
    theirs = dict(zip(exact.item_idx[0].tolist(), exact.scores[0].tolist(), strict=True))
    np.testing.assert_allclose([mine[i] for i in common], [theirs[i] for i in common], rtol=1e-4)
    assert not np.isin(idx, excl).any()
    with pytest.raises(ConfigError, match="needs a factor model"):
        FactorIndex.build(chuchun.load(str(artifacts["pop"])))
    model.user_factors_ = model.user_factors_ * 2  # scores no longer the factors' products
    broken = model
    broken.recommend = lambda *a, **k: type(model).recommend(  # type: ignore[method-assign]
        chuchun.load(str(artifacts["als"])), *a, **k)
    with pytest.raises(ConfigError, match="not the inner products"):
        FactorIndex.build(broken)


def test_serve_with_ann_index(artifacts: dict[str, Path], tmp_path: Path) -> None:
    srv = start_server([str(artifacts["als"]), str(artifacts["ials"]), "--index", "ann",
                        "--ann-ef-search", "200", "--no-access-log"], tmp_path / "log")
    try:
        card = httpx.get(f"{srv.url}/v1/models/ials").json()
        assert card["index"] == "ann"
        model = chuchun.load(str(artifacts["ials"]))
        hits = []
        for user in range(1, 40):
            body = httpx.get(f"{srv.url}/v1/models/ials/recommend",
                             params={"user": user, "k": 10}).json()
            got = [x["item"] for x in body["results"][0]["items"]]
            exact = model.recommend([user], k=10).to_lists()[0]
            hits.append(len(set(got) & set(exact)) / 10)
            scores = [x["score"] for x in body["results"][0]["items"]]
            assert scores == sorted(scores, reverse=True)
        assert np.mean(hits) >= 0.95
        # unknown users and candidate lists take the exact path
        body = httpx.get(f"{srv.url}/v1/models/ials/recommend",
                         params={"user": "ghost", "k": 5}).json()
        assert len(body["results"][0]["items"]) == 5
    finally:
        srv.stop()


def test_ann_refuses_a_model_without_factors(artifacts: dict[str, Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "chuchun", "serve", str(artifacts["pop"]),
                        "--index", "ann"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "needs a factor model" in r.stderr
