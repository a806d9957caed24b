"""End-to-end tests of ``chuchun serve`` over HTTP on a loopback port."""

from __future__ import annotations

import json
import math
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import chuchun
from tests.serve.conftest import TOKEN, Server, start_server

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def _assert_error(r: httpx.Response, status: int, error: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == error
    assert "Traceback" not in r.text
    return body


def test_models_and_cards(server: Server, artifacts: dict[str, Path]) -> None:
    body = _ok(httpx.get(f"{server.url}/v1/models"))
    assert [m["name"] for m in body["models"]] == ["als", "ials", "pop"]
    card = _ok(httpx.get(f"{server.url}/v1/models/als"))
    model = chuchun.load(str(artifacts["als"]))
    assert card["class"] == "ALS"
    assert card["n_users"] == len(model.users_) and card["n_items"] == len(model.items_)
    assert card["data_fingerprint"] == model.fingerprint_
    assert card["params"]["n_factors"]["value"] == 8
    assert card["params"]["n_factors"]["default"] == type(model).n_factors.default
    assert card["trained_at"] and card["version"] == 1
    assert card["labels"] > 9000 and card["example_users"][0] == 1


def test_recommend_matches_the_model(server: Server, artifacts: dict[str, Path]) -> None:
    model = chuchun.load(str(artifacts["als"]))
    body = _ok(httpx.get(f"{server.url}/v1/models/als/recommend", params={"user": 7, "k": 5}))
    expected = model.recommend([7], k=5)
    row = body["results"][0]
    assert row["user"] == 7 and row["known"] is True
    assert [x["item"] for x in row["items"]] == expected.to_lists()[0]
    np.testing.assert_allclose([x["score"] for x in row["items"]], expected.scores[0], rtol=1e-6)
    assert [x["rank"] for x in row["items"]] == [1, 2, 3, 4, 5]
    assert all(x["label"] for x in row["items"])  # titles from --labels

    # POST batch with exclude, candidates and exclude_seen=false
    first = row["items"][0]["item"]
    batch = _ok(httpx.post(f"{server.url}/v1/models/als/recommend",
                           json={"users": [7, 8], "k": 5, "exclude": [first]}))
    assert [r["user"] for r in batch["results"]] == [7, 8]
    assert first not in [x["item"] for x in batch["results"][0]["items"]]
    assert [x["item"] for x in batch["results"][0]["items"]][:4] == \
        [x["item"] for x in row["items"]][1:]
    cands = [1, 2, 3, 4, 5, 6, 10]
    restricted = _ok(httpx.post(f"{server.url}/v1/models/als/recommend",
                                json={"users": [7], "k": 3, "candidates": cands,
                                      "exclude_seen": False}))
    assert {x["item"] for x in restricted["results"][0]["items"]} <= set(cands)
    assert len(restricted["results"][0]["items"]) == 3

    # an unknown user: fallback ranks by the baseline, empty gives nothing
    fb = _ok(httpx.get(f"{server.url}/v1/models/als/recommend", params={"user": "nobody"}))
    assert fb["results"][0]["known"] is False and len(fb["results"][0]["items"]) == 10
    empty = _ok(httpx.get(f"{server.url}/v1/models/als/recommend",
                          params={"user": "nobody", "unknown": "empty"}))
    assert empty["results"][0]["items"] == []


def test_recommend_with_explanations(server: Server) -> None:
    body = _ok(httpx.get(f"{server.url}/v1/models/als/recommend",
                         params={"user": 7, "k": 3, "explain": "true", "n_reasons": 2}))
    for x in body["results"][0]["items"]:
        e = x["explanation"]
        assert e["item"] == x["item"] and e["user"] == 7
        assert math.isclose(e["score"], x["score"], rel_tol=1e-4, abs_tol=1e-4)
        assert 0 < len(e["reasons"]) <= 2
        assert e["label"] == x["label"]
    one = _ok(httpx.get(f"{server.url}/v1/models/als/explain",
                        params={"user": 7, "item": body["results"][0]["items"][0]["item"]}))
    assert one["explanation"]["method"]


def test_history_similar_predict(server: Server, artifacts: dict[str, Path]) -> None:
    model = chuchun.load(str(artifacts["als"]))
    body = _ok(httpx.post(f"{server.url}/v1/models/als/recommend-for-history",
                          json={"items": [1, 260, "no-such-item"], "ratings": [5, 4.5, 3],
                                "k": 4}))
    expected = model.recommend_for_history([[1, 260]], k=4, ratings=[[5, 4.5]])
    assert [x["item"] for x in body["results"][0]["items"]] == expected.to_lists()[0]
    assert body["ignored"] == ["no-such-item"]

    sim = _ok(httpx.get(f"{server.url}/v1/models/als/similar-items",
                        params={"item": 1, "k": 4}))
    assert sim["label"] == "Toy Story (1995)" and sim["known"] is True
    assert 1 not in [x["item"] for x in sim["items"]] and len(sim["items"]) == 4
    scores = [x["score"] for x in sim["items"]]
    assert scores == sorted(scores, reverse=True)

    pred = _ok(httpx.post(f"{server.url}/v1/models/als/predict",
                          json={"users": [7, 7], "items": [1, 260]}))
    np.testing.assert_allclose([p["score"] for p in pred["predictions"]],
                               model.predict([7, 7], [1, 260]), rtol=1e-6)
    # a ranking-only model has no estimate for an unknown pair: null, not NaN
    pred = _ok(httpx.post(f"{server.url}/v1/models/ials/predict",
                          json={"users": ["ghost"], "items": [1]}))
    assert pred["predictions"][0]["score"] is None


def test_errors(server: Server) -> None:
    u = server.url
    _assert_error(httpx.get(f"{u}/v1/models/nope"), 404, "unknown_model")
    _assert_error(httpx.get(f"{u}/v1/models/nope/recommend", params={"user": 1}), 404,
                  "unknown_model")
    body = _assert_error(httpx.get(f"{u}/v1/models/als/recommend",
                                   params={"user": "ghost", "unknown": "error"}), 404,
                         "unknown_id")
    assert "ghost" in body["detail"]
    _assert_error(httpx.get(f"{u}/v1/models/als/explain", params={"user": 7, "item": -5}),
                  404, "unknown_id")
    _assert_error(httpx.get(f"{u}/v1/models/als/similar-items",
                            params={"item": "nothing", "unknown": "error"}), 404, "unknown_id")
    for params in ({"user": 1, "k": 0}, {"user": 1, "k": "ten"}, {"user": 1, "k": 10**6},
                   {"user": 1, "unknown": "maybe"}, {}, {"user": 1, "exclude_seen": "perhaps"}):
        _assert_error(httpx.get(f"{u}/v1/models/als/recommend", params=params), 422,
                      "invalid_parameter")
    post = f"{u}/v1/models/als/recommend"
    _assert_error(httpx.post(post, json={"users": [], "k": 3}), 422, "invalid_parameter")
    _assert_error(httpx.post(post, json={"users": [1], "typo": 1}), 422, "invalid_parameter")
    _assert_error(httpx.post(post, json={"users": [[1]]}), 422, "invalid_parameter")
    _assert_error(httpx.post(f"{u}/v1/models/als/predict", json={"users": [1], "items": [1, 2]}),
                  422, "invalid_request")
    # a rating model cannot fold in a history without ratings
    _assert_error(httpx.post(f"{u}/v1/models/als/recommend-for-history", json={"items": [1]}),
                  422, "invalid_request")
    headers = {"Content-Type": "application/json"}
    _assert_error(httpx.post(post, content=b'{"users": [1', headers=headers), 400,
                  "malformed_body")
    _assert_error(httpx.post(post, content=b"[1, 2]", headers=headers), 400, "malformed_body")
    _assert_error(httpx.post(post, content=b"x" * (2 << 20), headers=headers), 413,
                  "body_too_large")

    def chunks():  # no Content-Length: the limit holds for a streamed body too
        for _ in range(40):
            yield b" " * 65536

    _assert_error(httpx.post(post, content=chunks(), headers=headers), 413, "body_too_large")
    _assert_error(httpx.get(f"{u}/no/such/route"), 404, "not_found")
    _assert_error(httpx.delete(f"{u}/v1/models/als"), 405, "method_not_allowed")


def test_ops_routes_metrics_and_access_log(server: Server) -> None:
    assert _ok(httpx.get(f"{server.url}/healthz")) == {"status": "ok"}
    assert _ok(httpx.get(f"{server.url}/readyz"))["models"]["als"] >= 1
    httpx.get(f"{server.url}/v1/models/als/recommend", params={"user": 3})
    httpx.get(f"{server.url}/v1/models/nope")
    text = httpx.get(f"{server.url}/metrics").text
    assert 'route="/v1/models/{name}/recommend",status="200"' in text
    assert 'route="/v1/models/{name}",status="404"' in text
    assert "chuchun_http_request_duration_seconds_bucket{" in text
    assert 'chuchun_model_version{model="als",class="ALS"' in text
    deadline = time.monotonic() + 5  # access lines are written in batches, 4 a second
    while True:
        lines = [json.loads(x) for x in server.stderr().splitlines() if x.startswith("{")]
        rec = [x for x in lines
               if x["route"] == "/v1/models/{name}/recommend" and x["status"] == 200]
        if rec or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert rec and rec[-1]["model"] == "als" and rec[-1]["ms"] >= 0
    openapi = _ok(httpx.get(f"{server.url}/openapi.json"))
    assert "/v1/models/{name}/recommend" in openapi["paths"]
    schemas = openapi["components"]["schemas"]
    assert schemas["ReasonOut"]["properties"]["kind"]["enum"] == list(
        chuchun.models.REASON_KINDS if hasattr(chuchun.models, "REASON_KINDS")
        else __import__("chuchun.models._results", fromlist=["x"]).REASON_KINDS)


def test_admin_auth(server: Server) -> None:
    url = f"{server.url}/v1/admin/reload"
    _assert_error(httpx.post(url), 401, "unauthorized")
    _assert_error(httpx.post(url, headers={"Authorization": "Bearer wrong"}), 401,
                  "unauthorized")
    _assert_error(httpx.post(url, json={"name": "nope"}, headers=AUTH), 404, "unknown_model")


def test_admin_disabled_without_token(artifacts: dict[str, Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from chuchun.serve import ServeConfig, create_app

    monkeypatch.delenv("CHUCHUN_ADMIN_TOKEN", raising=False)
    app = create_app(ServeConfig(models={"pop": str(artifacts["pop"])}))
    r = TestClient(app).post("/v1/admin/reload", headers=AUTH)
    _assert_error(r, 403, "admin_disabled")


def test_reload_under_load_bad_artifact_sighup_sigterm(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "live.zip"
    shutil.copy(artifacts["als"], path)
    srv = start_server([str(path), "--name", "live"], tmp_path / "log",
                       env={"CHUCHUN_ADMIN_TOKEN": TOKEN})
    try:
        old = chuchun.load(str(artifacts["als"])).recommend([7], k=5).to_lists()[0]
        new = chuchun.load(str(artifacts["als_alt"])).recommend([7], k=5).to_lists()[0]
        assert old != new
        statuses: list[int] = []
        seen_lists: list[list] = []
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client() as client:
                while not stop.is_set():
                    r = client.get(f"{srv.url}/v1/models/live/recommend",
                                   params={"user": 7, "k": 5})
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        seen_lists.append([x["item"] for x in r.json()["results"][0]["items"]])

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        shutil.copy(artifacts["als_alt"], path)
        r = httpx.post(f"{srv.url}/v1/admin/reload", json={"name": "live"}, headers=AUTH,
                       timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["results"] == [{"name": "live", "ok": True, "version": 2, "error": None}]
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        assert statuses and set(statuses) == {200}
        assert all(x in (old, new) for x in seen_lists)  # each answer wholly old or wholly new
        assert seen_lists[0] == old and seen_lists[-1] == new

        # a broken artifact: the reply says why, version 2 keeps serving
        path.write_bytes(b"not a zip file")
        r = httpx.post(f"{srv.url}/v1/admin/reload", headers=AUTH, timeout=30)
        assert r.status_code == 409
        res = r.json()["results"][0]
        assert res["ok"] is False and res["version"] == 2 and "live.zip" in res["error"]
        after = _ok(httpx.get(f"{srv.url}/v1/models/live/recommend", params={"user": 7, "k": 5}))
        assert after["version"] == 2
        assert [x["item"] for x in after["results"][0]["items"]] == new

        # SIGHUP reloads from the same path too
        shutil.copy(artifacts["als"], path)
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if _ok(httpx.get(f"{srv.url}/readyz"))["models"]["live"] == 3:
                break
            time.sleep(0.1)
        back = _ok(httpx.get(f"{srv.url}/v1/models/live/recommend", params={"user": 7, "k": 5}))
        assert back["version"] == 3 and [x["item"] for x in back["results"][0]["items"]] == old
        _sigterm_lets_requests_finish(srv)
    finally:
        srv.stop()


def _sigterm_lets_requests_finish(srv: Server) -> None:
    """SIGTERM while a request is in flight: it is answered, then the process exits 0."""
    results: list[object] = []
    body = json.dumps({"users": list(range(1, 151)), "k": 5}).encode()

    def slowly():  # the body trickles in, so the request is still in flight at SIGTERM
        for j in range(0, len(body), len(body) // 10 + 1):
            yield body[j : j + len(body) // 10 + 1]
            time.sleep(0.15)

    def slow() -> None:
        try:
            r = httpx.post(f"{srv.url}/v1/models/live/recommend", content=slowly(),
                           headers={"Content-Type": "application/json"}, timeout=60)
            results.append(r.status_code)
            results.append(len(r.json()["results"]))
        except httpx.TransportError as exc:
            results.append(exc)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)  # the request is in flight
    srv.proc.send_signal(signal.SIGTERM)
    t.join()
    assert srv.proc.wait(timeout=30) == 0
    assert results == [200, 150]
    log = srv.stderr()
    assert "shutting down" in log and "Traceback" not in log
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{srv.url}/healthz", timeout=2)


def test_cli_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"junk")
    r = subprocess.run([sys.executable, "-m", "chuchun", "serve", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "chuchun: error:" in r.stderr and "bad.zip" in r.stderr
    assert "Traceback" not in r.stderr
