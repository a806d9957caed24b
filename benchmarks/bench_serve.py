"""The service under load, and the approximate index against exact search.

``--part load``: an ALS model fitted on the bundled ml-latest-small is served by ``chuchun
serve`` on loopback; an open-loop generator sends ``GET /v1/models/als/recommend?k=10`` for
random known users at a fixed rate. Its schedule is wrk2's: request ``j`` is due at
``t0 + j / rate`` whatever happened before, each of ``C`` connections owns every ``C``-th due
time, and latency runs from the due time to the last byte of the answer, so time spent
queueing behind a slow answer counts (no coordinated omission). Then a closed loop with the
same connections as fast as they go gives the saturation throughput. Cornac's serving app
(``cornac.serving``, Flask) runs beside it on a Cornac MF model of the same shape when Cornac is
installed.

``--part ann``: recall@10 and per-query time of the HNSW inner-product index against exact
search on a synthetic factor catalogue (1M items by default).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, write_results  # noqa: E402

# -- the load generator ---------------------------------------------------------------------


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   raw: bytes) -> int:
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _open_loop(host: str, port: int, paths: list[bytes], rate: float, seconds: float,
                     connections: int) -> dict[str, float]:
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    errors = [0]
    t0 = time.perf_counter() + 0.5

    async def conn(c: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        for j in range(c, n, connections):
            due = t0 + j / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            raw = b"GET " + paths[j % len(paths)] + b" HTTP/1.1\r\nHost: x\r\n\r\n"
            try:
                status = await _request(reader, writer, raw)
                if status != 200:
                    errors[0] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors[0] += 1
                reader, writer = await asyncio.open_connection(host, port)
            latencies[j] = time.perf_counter() - due
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(conn(c) for c in range(connections)))
    elapsed = time.perf_counter() - start - 0.5
    ms = latencies[np.isfinite(latencies)] * 1000
    return {"requests": n, "errors": errors[0], "achieved_rps": n / elapsed,
            "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "p999_ms": float(np.percentile(ms, 99.9)),
            "max_ms": float(ms.max())}


async def _closed_loop(host: str, port: int, paths: list[bytes], seconds: float,
                       connections: int) -> dict[str, float]:
    done = [0]
    errors = [0]
    end = time.perf_counter() + seconds

    async def conn(c: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        j = c
        while time.perf_counter() < end:
            raw = b"GET " + paths[j % len(paths)] + b" HTTP/1.1\r\nHost: x\r\n\r\n"
            try:
                if await _request(reader, writer, raw) != 200:
                    errors[0] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors[0] += 1
                reader, writer = await asyncio.open_connection(host, port)
            done[0] += 1
            j += connections
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(conn(c) for c in range(connections)))
    return {"requests": done[0], "errors": errors[0],
            "throughput_rps": done[0] / (time.perf_counter() - start)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url_path: str, port: int, proc: subprocess.Popen[bytes],
                timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{url_path}", timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def _rss_mb(pid: int) -> float:
    import psutil

    p = psutil.Process(pid)
    return sum(x.memory_info().rss for x in [p, *p.children(recursive=True)]) / 2**20


def _load_run(name: str, port: int, pid: int, paths: list[bytes], rate: float, seconds: float,
              connections: int, warmup: float) -> dict[str, float]:
    asyncio.run(_closed_loop("127.0.0.1", port, paths, warmup, connections))  # warm caches
    rss0 = _rss_mb(pid)
    row = asyncio.run(_open_loop("127.0.0.1", port, paths, rate, seconds, connections))
    rss1 = _rss_mb(pid)
    sat = asyncio.run(_closed_loop("127.0.0.1", port, paths, min(seconds, 15.0), connections))
    row.update({"rss_before_mb": rss0, "rss_after_mb": rss1,
                "saturation_rps": sat["throughput_rps"], "saturation_errors": sat["errors"]})
    print(name, row, flush=True)
    return row


def part_load(rates: list[float], seconds: float, connections: int) -> tuple[str, str]:
    from chuchun.datasets import load_dataset
    from chuchun.models import ALS

    ml = load_dataset("ml-latest-small")
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model = ALS(n_factors=50, random_state=0).fit(ml.ratings)
    model.save(str(tmp / "als.zip"))
    rng = np.random.default_rng(0)
    users = rng.choice(model.users_.ids, size=5000)
    rows = {}
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chuchun", "serve", str(tmp / "als.zip"), "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
    )
    try:
        _wait_ready("/readyz", port, proc)
        paths = [f"/v1/models/als/recommend?user={u}&k=10".encode() for u in users]
        for rate in rates:
            rows[f"chuchun serve, {rate:g}/s"] = _load_run(
                "chuchun", port, proc.pid, paths, rate, seconds, connections, 5.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    cornac_note = _cornac_reference(ml, users, tmp, rates, seconds, connections, rows)
    frame = pd.DataFrame(rows).T
    frame.index.name = "server"
    cols = ["requests", "errors", "achieved_rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
            "max_ms", "rss_before_mb", "rss_after_mb", "saturation_rps", "saturation_errors"]
    body = (f"Open loop at {', '.join(f'{r:g}' for r in rates)} requests/s for {seconds:g} s over {connections} keep-alive "
            f"connections, `recommend` k=10 for random known users of ALS (50 factors) on "
            f"ml-latest-small ({len(model.users_)} users, {len(model.items_)} items); latency "
            "from each request's due time. Saturation: closed loop, same connections, 15 s.\n\n"
            + markdown_table(frame[[c for c in cols if c in frame.columns]], digits=2))
    return body, cornac_note


def _cornac_reference(ml, users, tmp: Path, rates: list[float], seconds: float,
                      connections: int, rows: dict) -> str:
    try:
        import cornac  # noqa: F401
        from cornac.data import Dataset
        from cornac.models import MF
    except ImportError as exc:
        return f"Cornac is not installed here ({exc}); no reference row."
    df = ml.ratings.to_pandas()
    triples = list(zip(df["user"].astype(str), df["item"].astype(str),
                       df["rating"].astype(float), strict=True))
    train = Dataset.from_uir(triples, seed=0)
    mf = MF(k=50, max_iter=20, seed=0, verbose=False)
    mf.fit(train)
    save_dir = tmp / "cornac"
    model_file = mf.save(str(save_dir), save_trainset=True)
    port = _free_port()
    env = {**os.environ, "MODEL_PATH": str(model_file), "MODEL_CLASS": "cornac.models.MF"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "cornac.serving.app", "run", "--port",
         str(port), "--no-debugger", "--no-reload", "--with-threads"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(f"/recommend?uid={users[0]}&k=10", port, proc)
        paths = [f"/recommend?uid={u}&k=10&remove_seen=true".encode() for u in users]
        for rate in rates:
            rows[f"cornac.serving, {rate:g}/s"] = _load_run(
                "cornac", port, proc.pid, paths, rate, seconds, connections, 5.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return ("Cornac reference: cornac.models.MF (k=50, 20 epochs) on the same ratings, served by "
            "`flask --app cornac.serving.app run --with-threads` (Cornac's documented serving "
            "app; Flask's development server).")


# -- ANN -------------------------------------------------------------------------------------


def part_ann(n_items: int, dim: int, n_queries: int, ef_construction: int, M: int) -> str:
    from chuchun.serve.ann import FactorIndex, exact_top_k

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(256, dim))
    items = np.empty((n_items, dim + 1), np.float32)  # factors and an item-bias column
    for s in range(0, n_items, 100_000):
        m = min(100_000, n_items - s)
        x = centres[rng.integers(0, 256, size=m)] + 0.5 * rng.normal(size=(m, dim))
        items[s:s + m, :dim] = x * rng.lognormal(0, 0.3, size=(m, 1))
        items[s:s + m, dim] = rng.normal(0, 0.3, size=m)
    queries = np.hstack([rng.normal(size=(n_queries, dim)),
                         np.ones((n_queries, 1))]).astype(np.float32)
    t = time.perf_counter()
    exact = np.vstack([exact_top_k(items, queries[j:j + 100], 10)
                       for j in range(0, n_queries, 100)])
    exact_s = (time.perf_counter() - t) / n_queries
    t = time.perf_counter()
    index = FactorIndex(items, M=M, ef_construction=ef_construction, ef_search=10)
    build_s = time.perf_counter() - t
    rows = {}
    for ef in (50, 100, 200, 400):
        index._index.set_ef(ef)
        t = time.perf_counter()
        approx = np.vstack([index.query(q, 10) for q in queries])
        per = (time.perf_counter() - t) / n_queries
        recall = float(np.mean([len(set(a) & set(e)) / 10
                                for a, e in zip(approx, exact, strict=True)]))
        rows[ef] = {"recall@10": recall, "ms_per_query": per * 1000,
                    "exact_ms_per_query": exact_s * 1000, "speed-up": exact_s / per}
        print(ef, rows[ef], flush=True)
    frame = pd.DataFrame(rows).T
    frame.index.name = "ef_search"
    return (f"{n_items:,} items, {dim} factors + a bias column (clustered factors, log-normal "
            f"norms), {n_queries} queries; hnswlib inner-product HNSW, M={M}, "
            f"ef_construction={ef_construction}; build {build_s:.0f} s. Exact: NumPy brute "
            "force in batches of 100 queries (per-query time is the batch time / 100).\n\n"
            + markdown_table(frame, digits=3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["load", "ann", "all"], default="all")
    ap.add_argument("--rate", type=float, action="append",
                    help="Requests/s of an open-loop run (repeat for several; default 1000).")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--ann-items", type=int, default=1_000_000)
    ap.add_argument("--ann-dim", type=int, default=32)
    ap.add_argument("--ann-queries", type=int, default=1000)
    ap.add_argument("--ann-ef-construction", type=int, default=100)
    ap.add_argument("--ann-m", type=int, default=16)
    args = ap.parse_args()
    noisy = ("The machine's 2 cores were shared with other developers' builds and tests during "
             "the run (load average well above 2), and the load generator shares them with the "
             "server: read the latencies as an upper bound of what a quiet machine gives.")
    if args.part in ("ann", "all"):
        body = part_ann(args.ann_items, args.ann_dim, args.ann_queries,
                        args.ann_ef_construction, args.ann_m)
        path = write_results("serve-ann", "Service: ANN index recall against exact search",
                             [("HNSW inner-product index vs exact top-10", body)],
                             libraries=["hnswlib"], notes=noisy)
        print(f"wrote {path}")
    if args.part in ("load", "all"):
        body, note = part_load(args.rate or [1000.0], args.seconds, args.connections)
        path = write_results("serve", "Service: latency under an open-loop load",
                             [("recommend k=10 at a fixed rate", body)],
                             libraries=["fastapi", "uvicorn", "cornac"], notes=note + "\n\n" + noisy)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
