"""The fast path of ``GET .../recommend`` gives exactly the route's answers (or leaves the
request to the route), for many users and every option, on integer and string ids, with the
exact and the approximate index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import chuchun
from chuchun.data import Interactions
from chuchun.models import ALS
from chuchun.serve import ModelRegistry, ServeConfig, create_app, read_labels
from chuchun.serve._fast import FastRecommend, parse_query, user_index

ROUTE = "/v1/models/{name}/recommend"


def _observer(app: FastAPI) -> Any:
    """The service's ObserveMiddleware (the stack is built on the first request; build it now)."""
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    stack: Any = app.middleware_stack
    while stack is not None and not hasattr(stack, "fast"):
        stack = getattr(stack, "app", None)
    assert stack is not None
    return stack


class _Counted:
    """Counts the requests the fast path answered itself."""

    def __init__(self, app: FastAPI) -> None:
        self.n = 0
        stack = _observer(app)
        assert isinstance(stack.fast, FastRecommend)
        handle = stack.fast.handle

        async def counted(scope: Any, send: Any) -> bool:
            done = await handle(scope, send)
            self.n += done
            return done

        stack.fast.handle = counted


def _pair(models: dict[str, str], **options: Any) -> tuple[TestClient, TestClient, _Counted]:
    """Two applications over one registry (the same loaded models, the same ANN graph): one
    with the fast path, one without."""
    labels = read_labels(options["labels_path"]) if "labels_path" in options else None
    registry = ModelRegistry(models, labels=labels, index=options.get("index", "exact"),
                             ann_options=options.get("ann_options"))
    registry.load_all()
    fast_app = create_app(ServeConfig(models=models, **options), registry)
    counter = _Counted(fast_app)
    slow_app = create_app(ServeConfig(models=models, fast_path=False, **options), registry)
    return TestClient(fast_app), TestClient(slow_app), counter


def _same(fast: TestClient, slow: TestClient, url: str, params: Any) -> dict[str, Any]:
    a, b = fast.get(url, params=params), slow.get(url, params=params)
    assert (a.status_code, a.json()) == (b.status_code, b.json()), (url, params)
    assert a.headers["content-type"] == b.headers["content-type"]
    return a.json()


def test_fast_path_answers_as_the_route(artifacts: dict[str, Path]) -> None:
    models = {"als": str(artifacts["als"]), "pop": str(artifacts["pop"])}
    fast, slow, counter = _pair(models, labels_path=str(artifacts["titles"]))
    model = chuchun.load(str(artifacts["als"]))
    users = [int(u) for u in model.users_.ids]
    item_ids = [int(i) for i in model.items_.ids]
    rng = np.random.default_rng(0)
    answered = 0
    for j, u in enumerate(users):
        params: dict[str, Any] = {"user": u, "k": [1, 10, 37][j % 3]}
        if j % 4 == 1:
            params["exclude_seen"] = "false"
        if j % 5 == 2:
            params["exclude"] = [int(x) for x in rng.choice(item_ids, 3)] + ["not-an-item"]
        if j % 7 == 3:
            params["candidates"] = [int(x) for x in rng.choice(item_ids, 40)]
        for name in ("als", "pop") if j % 5 == 0 else ("als",):
            body = _same(fast, slow, f"/v1/models/{name}/recommend", params)
            assert body["results"][0]["known"] is True and body["results"][0]["items"]
            answered += 1
    assert counter.n == answered  # every one of these took the fast path
    # the answers are the model's own
    body = fast.get("/v1/models/als/recommend", params={"user": 7, "k": 5}).json()
    want = model.recommend([7], k=5).to_lists()[0]
    assert [x["item"] for x in body["results"][0]["items"]] == want

    # what the fast path leaves to the route: same answers and errors, not answered by it
    left = [
        {"user": "ghost"}, {"user": "ghost", "unknown": "empty"},
        {"user": "ghost", "unknown": "error"}, {"user": 3, "explain": "true", "k": 2},
        {"user": 3, "k": "010"}, {"user": 3, "k": 0}, {"user": 3, "k": 1001},
        {"user": 3, "exclude_seen": "yes"}, {"user": 3, "unknown": "maybe"}, {},
        {"user": ""}, {"user": [3, 4]}, {"user": 3, "n_reasons": 101},
        {"user": 3, "candidates": ["ghost"], "unknown": "error"},
    ]
    before = counter.n
    for params in left:
        _same(fast, slow, "/v1/models/als/recommend", params)
    _same(fast, slow, "/v1/models/nope/recommend", {"user": 3})
    assert counter.n == before
    # plain variants it does answer: spellings the route reads the same way, ignored keys
    for params in ({"user": "007"}, {"user": 3, "explain": "false", "n_reasons": 100},
                   {"user": 3, "unknown": "error", "extra": "x"},
                   {"user": 3, "candidates": ["ghost", 1, 2, 3]}):
        _same(fast, slow, "/v1/models/als/recommend", params)
    assert counter.n == before + 4
    # metrics count fast answers under the route's template
    text = fast.get("/metrics").text
    assert f'route="{ROUTE}",status="200"' in text


def test_fast_path_string_ids_and_ann(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    rng = np.random.default_rng(1)
    n = 600
    df = pd.DataFrame({"user": [f"u{x:03d}" for x in rng.integers(0, 40, n)],
                       "item": [f"i{x}" for x in rng.integers(0, 120, n)],
                       "rating": rng.integers(1, 6, n).astype(float)})
    df = df.drop_duplicates(["user", "item"])
    data = Interactions.from_pandas(df, user_col="user", item_col="item", rating_col="rating")
    ALS(n_factors=4, n_epochs=3, random_state=0).fit(data).save(str(tmp_path / "s.zip"))
    fast, slow, counter = _pair({"s": str(tmp_path / "s.zip")})
    for u in sorted(set(df["user"])):
        _same(fast, slow, "/v1/models/s/recommend", {"user": u, "k": 5})
    _same(fast, slow, "/v1/models/s/recommend", {"user": "u999"})
    assert counter.n == len(set(df["user"]))

    # the approximate index: both paths search it the same way
    fast, slow, counter = _pair({"als": str(artifacts["als"])}, index="ann",
                                ann_options={"M": 8, "ef_construction": 50, "ef_search": 50})
    for u in range(1, 40):
        _same(fast, slow, "/v1/models/als/recommend", {"user": u, "k": 10})
    assert counter.n == 39


def test_parse_query_and_user_index(artifacts: dict[str, Path]) -> None:
    q = parse_query(b"user=12&k=7&exclude=5&exclude=6&candidates=1&unknown=empty&zzz=1")
    assert q is not None
    assert (q.user, q.k, q.exclude, q.candidates, q.unknown) == ("12", 7, ["5", "6"], ["1"],
                                                                 "empty")
    assert parse_query(b"user=a%20b").user == "a b"  # type: ignore[union-attr]
    for bad in (b"k=3", b"user=1&user=2", b"user=1&k=1e1", b"user=1&explain=1",
                b"user=1&exclude_seen=TRUE", b"user=" + b"x" * 201):
        assert parse_query(bad) is None, bad
    reg = ModelRegistry({"als": str(artifacts["als"])})
    reg.load_all()
    sm = reg.get("als")
    assert sm is not None
    ids = sm.model.users_
    for text in ("7", "007", "-0", "7.0", "x7", "-7", " 7"):
        assert user_index(sm, text) == int(ids.index(np.asarray([text]))[0]), text


@pytest.mark.parametrize("fast_path", [True, False])
def test_fast_path_flag_reaches_the_middleware(artifacts: dict[str, Path],
                                               fast_path: bool) -> None:
    app = create_app(ServeConfig(models={"als": str(artifacts["als"])}, fast_path=fast_path))
    assert (_observer(app).fast is not None) is fast_path


def test_metrics_histogram_is_cumulative() -> None:
    from chuchun.serve.metrics import BUCKETS, Metrics

    m = Metrics()
    times = [0.0001, 0.0005, 0.0007, 0.003, 0.003, 0.2, 20.0]
    for t in times:
        m.observe("GET", ROUTE, 200, t)
    text = m.render({})
    for bound in BUCKETS:
        line = next(x for x in text.splitlines()
                    if x.startswith("chuchun_http_request_duration_seconds_bucket")
                    and f'le="{bound!r}"' in x)
        assert int(line.rsplit(" ", 1)[1]) == sum(t <= bound for t in times), line
    assert f'le="+Inf"}} {len(times)}' in text
    assert f"chuchun_http_request_duration_seconds_count{{method=\"GET\"" in text


def _answers(fast: FastRecommend, name: str, query: bytes) -> bytes | None:
    matched = fast.match({"path": f"/v1/models/{name}/recommend", "query_string": query})
    assert matched is not None, query
    return fast.answer(*matched)


def test_serving_view_gives_the_same_bytes(artifacts: dict[str, Path]) -> None:
    """The view's kernel and prepared bytes against the service's general code, byte for byte,
    for every user of three models (two factored, one scored by its own ``_score``)."""
    from chuchun.serve.app import Service

    models = {n: str(artifacts[n]) for n in ("als", "ials", "pop")}
    labels = read_labels(str(artifacts["titles"]))
    with_view = ModelRegistry(models, labels=labels)
    plain = ModelRegistry(models, labels=labels, serving_views=False)
    with_view.load_all()
    plain.load_all()
    fast_view, fast_plain = FastRecommend(Service(with_view)), FastRecommend(Service(plain))
    for name, factored in (("als", True), ("ials", True), ("pop", False)):
        sm = with_view.get(name)
        assert sm is not None and sm.view is not None and sm.view.factored is factored
        assert plain.get(name).view is None  # type: ignore[union-attr]
    model = with_view.get("als").model  # type: ignore[union-attr]
    items = [int(i) for i in model.items_.ids]
    rng = np.random.default_rng(3)
    n = 0
    for j, u in enumerate(int(x) for x in model.users_.ids):
        query = f"user={u}&k={[1, 10, 37, 1000][j % 4]}"
        if j % 3 == 1:
            query += "&exclude_seen=false"
        if j % 5 == 2:
            query += "".join(f"&exclude={x}" for x in rng.choice(items, 4)) + "&exclude=zz"
        for name in ("als", "ials", "pop"):
            got = _answers(fast_view, name, query.encode())
            assert got is not None and got == _answers(fast_plain, name, query.encode()), query
            n += 1
    assert n == 3 * len(model.users_)


def test_serving_view_keeps_only_what_reproduces_the_model(artifacts: dict[str, Path]) -> None:
    from chuchun.serve._view import build_view

    model = chuchun.load(str(artifacts["als"]))
    view = build_view(model, "als", 1, {})
    assert view is not None and view.factored and view._reproduces(model)
    view.item_add = view.item_add + np.float32(1e-3)  # a view that no longer matches
    assert not view._reproduces(model)
    # a model scoring differently from its family's decomposition: served by its own _score
    own = model._score
    model._score = lambda u: own(u) * np.float32(0.5)  # type: ignore[method-assign]
    view = build_view(model, "als", 1, {})
    assert view is not None and not view.factored
    for u in range(0, len(model.users_), 7):
        top = view.top_k(u, 10, True, np.empty(0, np.int32))
        assert top is not None
        idx, scores = top
        recs = model.recommend(model.users_.ids[u:u + 1], k=10)
        assert idx == recs.item_idx[0].tolist()
        assert np.array_equal(np.float32(scores), recs.scores[0])


def test_query_pairs_are_parse_qsl() -> None:
    from urllib.parse import parse_qsl

    from chuchun.serve._fast import _pairs

    for text in ("user=1&k=10", "user=1&&k=", "user&k=3=4", "=x&user=2", "", "&", "a=b&a=c",
                 "user=a%20b", "user=a+b", "x=%zz&user=3", "user=1;k=2", "user==1"):
        assert _pairs(text) == parse_qsl(text, keep_blank_values=True), text


def test_freeze_heap_at_start_and_after_reload(artifacts: dict[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from chuchun.serve import app as serve_app

    calls: list[int] = []
    monkeypatch.setattr(serve_app, "freeze_heap", lambda: calls.append(gc.get_count()[0]))
    monkeypatch.setenv("CHUCHUN_ADMIN_TOKEN", "t0ken")
    for freeze in (False, True):
        calls.clear()
        app = create_app(ServeConfig(models={"als": str(artifacts["als"])}, freeze_heap=freeze))
        with TestClient(app) as client:
            assert len(calls) == int(freeze)  # once the models are loaded
            r = client.post("/v1/admin/reload", headers={"Authorization": "Bearer t0ken"})
            assert r.status_code == 200
            assert len(calls) == 2 * int(freeze)  # and after a reload
    monkeypatch.undo()
    serve_app.freeze_heap()  # the real one: the live objects are in the permanent generation
    try:
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
