"""Where one ``GET /v1/models/{name}/recommend?user=ID&k=10`` request spends its CPU time.

The service's ASGI application is driven in-process (no sockets): each request is an ASGI
``http`` scope with an empty body, run on one event loop, so the numbers are the application's
own cost. The HTTP layer (uvicorn's httptools parser, the socket writes) is what the real
server's per-request CPU (``bench_serve.py --part load``, server CPU seconds / requests) adds on
top.

Three views of the same request:

- per-request CPU of the whole application, and of each piece called alone (the model's
  ``recommend``, the service's answer dict, JSON encoding, metrics, the access-log line);
- a cProfile of many requests, summed by component (sync routes run in a worker thread that
  cProfile does not see, so for the profile the thread hop is replaced by a direct call and its
  cost is measured separately);
- the same with the fast path (``GET recommend`` answered before routing) on and off, and
  the fast path with and without the models' serving views (``chuchun.serve._view``).

Usage: ``python benchmarks/profile_serve.py [--requests 3000] [--factors 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _scope(path: str, query: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"),
                    (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }


async def _drive(app: Any, queries: list[str], path: str) -> list[bytes]:
    bodies: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    for q in queries:
        chunks: list[bytes] = []
        status = [0]

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(_scope(path, q), receive, send)
        if status[0] != 200:
            raise RuntimeError(f"status {status[0]} for {q}: {b''.join(chunks)[:300]!r}")
        bodies.append(b"".join(chunks))
    return bodies


def _cpu_per_call(fn: Any, n: int) -> float:
    fn()
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n * 1e6


COMPONENTS = [
    # (label, (file fragment, function name)) summed by cumulative time; nested entries overlap
    ("ServiceApp / FastEntry / ObserveMiddleware (whole request inside)",
     ("serve/app.py", "__call__")),
    ("  FastAPI request handler", ("fastapi/routing.py", "app")),
    ("    parameter parsing / validation", ("fastapi/dependencies/utils.py",
                                             "solve_dependencies")),
    ("    route function (Service.recommend)", ("serve/app.py", "recommend")),
    ("      Recommender.recommend", ("models/_base.py", "recommend")),
    ("        _score (factor dot products)", ("models/mf.py", "_score")),
    ("        _top_k", ("models/_base.py", "_top_k")),
    ("        vocabulary lookups", ("data/vocabulary.py", "index")),
    ("    response validation + serialisation", ("fastapi/routing.py", "serialize_response")),
    ("    JSONResponse.render (json.dumps)", ("starlette/responses.py", "render")),
    ("  routing (Router.__call__ / matches)", ("starlette/routing.py", "matches")),
    ("  metrics observe", ("serve/metrics.py", "observe")),
    ("  access log line", ("logging/__init__.py", "info")),
    ("  fast path (answer before routing)", ("serve/_fast.py", "handle")),
    ("    query parsing", ("serve/_fast.py", "parse_query")),
    ("    user lookup", ("serve/_fast.py", "user_index")),
    ("    Service._rows (model.recommend)", ("serve/app.py", "_rows")),
    ("    Service._items (ids, labels, scores)", ("serve/app.py", "_items")),
    ("    json.dumps", ("json/__init__.py", "dumps")),
    ("    ServingView.top_k (product + kernel)", ("serve/_view.py", "top_k")),
    ("      BLAS product user x items", ("serve/_view.py", "<lambda>")),
    ("    ServingView.body (bytes join)", ("serve/_view.py", "body")),
]


def _component_table(stats: pstats.Stats, n: int) -> list[tuple[str, float]]:
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for label, (frag, name) in COMPONENTS:
        total = 0.0
        for (file, _line, fn), (_cc, _nc, _tt, ct, _callers) in raw.items():
            if fn == name and frag in file.replace("\\", "/"):
                total = max(total, ct)  # recursive entries repeat the outer cumulative time
        if total > 0:
            rows.append((label, total / n * 1e6))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--factors", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=10,
                    help="Interleaved rounds of the timed requests (the median is reported).")
    ap.add_argument("--access-log", action="store_true",
                    help="Log one line per request (to a discarded stream) as the service does "
                    "by default.")
    args = ap.parse_args()

    import starlette.concurrency
    from fastapi import routing as fastapi_routing

    from chuchun.datasets import load_dataset
    from chuchun.models import ALS
    from chuchun.serve.app import ServeConfig, create_app, limit_native_threads

    limit_native_threads()
    ml = load_dataset("ml-latest-small")
    tmp = Path(tempfile.mkdtemp(prefix="profile-serve-"))
    model = ALS(n_factors=args.factors, random_state=0).fit(ml.ratings)
    model.save(str(tmp / "als.zip"))
    access = logging.getLogger("chuchun.serve.access")
    access.handlers[:] = [logging.StreamHandler(io.StringIO())]
    access.propagate = False
    access.setLevel(logging.INFO if args.access_log else logging.WARNING)

    rng = np.random.default_rng(0)
    users = rng.choice(model.users_.ids, size=args.requests)
    queries = [f"user={u}&k=10" for u in users]
    path = "/v1/models/als/recommend"
    n = len(queries)

    import dataclasses

    fields = {f.name for f in dataclasses.fields(ServeConfig)}
    has_fast, has_view = "fast_path" in fields, "serving_view" in fields

    def build(fast: bool, view: bool = False) -> Any:
        extra: dict[str, Any] = {"fast_path": fast} if has_fast else {}  # older versions
        if has_view:
            extra["serving_view"] = view
        return create_app(ServeConfig(models={"als": str(tmp / "als.zip")}, **extra))

    apps = {"general path (FastAPI route)": build(False)}
    if has_fast:
        apps["fast path"] = build(True)
    if has_view:
        apps["fast path with serving view"] = build(True, True)
    loop = asyncio.new_event_loop()
    results: dict[str, Any] = {}
    for label, app in apps.items():
        loop.run_until_complete(_drive(app, queries[:200], path))  # warm up
        results[label] = {"cpu_us": [], "bodies": None}
    # the applications in turn, round after round: a busy machine slows them alike
    chunks = np.array_split(np.arange(n), args.rounds)
    for r, chunk in enumerate(chunks):
        for label, app in apps.items():
            batch = [queries[i] for i in chunk]
            t = time.process_time()
            bodies = loop.run_until_complete(_drive(app, batch, path))
            results[label]["cpu_us"].append((time.process_time() - t) / len(batch) * 1e6)
            results[label]["bodies"] = (results[label]["bodies"] or []) + bodies
    for label, res in results.items():
        cpu = float(np.median(res["cpu_us"]))
        print(f"{label}: {cpu:.0f} us CPU per request (in-process, median of {args.rounds} "
              f"interleaved rounds of {n // args.rounds} requests; min "
              f"{min(res['cpu_us']):.0f})", flush=True)
    if has_fast:
        bodies = [r["bodies"] for r in results.values()]
        same = all(json.loads(a) == json.loads(b)
                   for other in bodies[1:] for a, b in zip(bodies[0], other, strict=True))
        print(f"answers identical (parsed JSON) for all {n} requests: {same}")
        if len(bodies) == 3:
            print(f"fast path answers identical byte for byte with and without the view: "
                  f"{bodies[1] == bodies[2]}")

    # the thread hop of sync routes, measured alone
    async def hops(m: int) -> None:
        for _ in range(m):
            await starlette.concurrency.run_in_threadpool(lambda: None)

    loop.run_until_complete(hops(100))
    t0, c0 = time.perf_counter(), time.process_time()
    loop.run_until_complete(hops(n))
    hop_cpu = (time.process_time() - c0) / n * 1e6
    hop_wall = (time.perf_counter() - t0) / n * 1e6
    print(f"one run_in_threadpool hop: {hop_cpu:.0f} us CPU, {hop_wall:.0f} us wall "
          "(sync routes take two: the endpoint and the response validation)")

    # pieces alone
    u0 = users[0]
    from chuchun.serve.app import Service
    from chuchun.serve.schemas import RecommendRequest

    general = apps["general path (FastAPI route)"]
    service: Service = general.state.service
    req = RecommendRequest(users=[str(u0)], k=10)
    answer = service.recommend("als", req)
    pieces = {
        "model.recommend([user], k=10)": lambda: model.recommend([str(u0)], k=10),
        "model.recommend([user]) int id": lambda: model.recommend([int(u0)], k=10),
        "vocabulary index of one str id": lambda: model.users_.index(np.asarray([str(u0)])),
        "Service.recommend (answer dict)": lambda: service.recommend("als", req),
        "RecommendRequest(...) pydantic": lambda: RecommendRequest(users=[str(u0)], k=10),
        "json.dumps(answer)": lambda: json.dumps(answer),
    }
    if has_view:
        view = apps["fast path with serving view"].state.service.registry.get("als").view
        u_row = int(model.users_.index([u0])[0])
        none = np.empty(0, dtype=np.int32)
        top = view.top_k(u_row, 10, True, none)
        pieces["ServingView.top_k (product + kernel)"] = lambda: view.top_k(u_row, 10, True,
                                                                            none)
        pieces["  its BLAS product alone"] = lambda: view._dot(u_row)
        pieces["ServingView.body (bytes)"] = lambda: view.body(u_row, *top)
    print("\npieces called alone (us CPU per call):")
    for label, fn in pieces.items():
        print(f"  {label:38s} {_cpu_per_call(fn, 2000):8.1f}")

    # cProfile with the thread hop replaced by a direct call (cProfile sees one thread)
    async def inline(func: Any, *a: Any, **kw: Any) -> Any:
        return func(*a, **kw)

    saved = fastapi_routing.run_in_threadpool
    fastapi_routing.run_in_threadpool = inline  # type: ignore[assignment]
    try:
        for label, app in apps.items():
            prof = cProfile.Profile()
            prof.enable()
            loop.run_until_complete(_drive(app, queries, path))
            prof.disable()
            stats = pstats.Stats(prof)
            total = sum(v[2] for v in stats.stats.values()) / n * 1e6  # type: ignore[attr-defined]
            print(f"\n{label}, cProfile (profiler overhead inflates every figure; read them as "
                  f"shares): total {total:.0f} us per request")
            for comp, us in _component_table(stats, n):
                print(f"  {comp:48s} {us:8.0f} us  {100 * us / total:5.1f} %")
            if label.startswith("general"):
                s = io.StringIO()
                pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(18)
                print("\n".join(s.getvalue().splitlines()[6:30]))
    finally:
        fastapi_routing.run_in_threadpool = saved  # type: ignore[assignment]
    loop.close()


if __name__ == "__main__":
    main()
