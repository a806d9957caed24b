"""The service under load, and the approximate index against exact search.

``--part load``: an ALS model fitted on the bundled ml-latest-small is served by ``chuchun
serve`` on loopback; an open-loop generator sends ``GET /v1/models/als/recommend?k=10`` for
random known users at a fixed rate. Its schedule is wrk2's: request ``j`` is due at
``t0 + j / rate`` whatever happened before, each of ``C`` connections owns every ``C``-th due
time, and latency runs from the due time to the last byte of the answer, so time spent
queueing behind a slow answer counts (no coordinated omission). A run stops
``--drain`` seconds after its last due time: requests still unanswered then are counted as
``unanswered`` and enter the percentiles with the time they had waited (a lower bound), so an
overloaded server cannot stretch the run. The server's CPU time (user + system, all its
processes) over the run divided by the requests answered is its CPU cost per request; the
generator's own CPU per request is reported beside it (both share the machine's cores).

The generator (``--generator raw``, the default) is one process with plain blocking sockets and
one ``select`` call per wake-up (microsecond timeouts, no event loop); requests are prepared
bytes, and an answer is read up to its Content-Length (the status line, Content-Length and
``Connection: close`` are all it parses; a closed connection is reopened for the next request
and counted in ``reconnects``). ``--generator asyncio`` is the earlier one, on asyncio streams.

Then the saturation throughput: a closed loop over the same connections as fast as they go, and
``wrk`` (a C load generator, when installed) with the same connections and paths. Cornac's
serving app (``cornac.serving``, Flask) runs through the same steps on a Cornac MF model of the
same shape when Cornac is installed.

``--part ann``: recall@10 and per-query time of the HNSW inner-product index against exact
search on a synthetic factor catalogue (1M items by default).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, write_results  # noqa: E402

# -- the load generator ---------------------------------------------------------------------


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop when it is installed (a cheaper generator leaves more CPU to the server)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


class _Closed(Exception):
    """The server answered and closed the connection (``Connection: close``)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   raw: bytes) -> int:
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    close = False
    for line in head.split(b"\r\n"):
        lower = line.lower()
        if lower.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        close |= lower == b"connection: close"
    await reader.readexactly(length)
    if close:
        raise _Closed(status)
    return status


async def _open_loop(host: str, port: int, paths: list[bytes], rate: float, seconds: float,
                     connections: int, drain: float) -> dict[str, float]:
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    errors = [0]
    t0 = time.perf_counter() + 0.5
    stop = t0 + seconds + drain  # nothing is sent or awaited after this

    async def conn(c: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for j in range(c, n, connections):
                due = t0 + j / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                if stop - time.perf_counter() <= 0:
                    break
                raw = b"GET " + paths[j % len(paths)] + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                try:
                    # no per-request timeout task (it costs CPU the server shares); the
                    # run's end cancels whatever is still waiting
                    status = await _request(reader, writer, raw)
                    if status != 200:
                        errors[0] += 1
                except _Closed as closed:
                    errors[0] += closed.status != 200
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors[0] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                latencies[j] = time.perf_counter() - due
        finally:
            writer.close()

    start = time.perf_counter()
    tasks = [asyncio.create_task(conn(c)) for c in range(connections)]
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, stop - time.perf_counter()))
    for task in pending:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for r in results:
        if isinstance(r, Exception):
            raise r
    end = time.perf_counter()
    return _latency_row(latencies, errors[0], n, rate, t0, start, end)


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _response_end(buf: bytearray) -> tuple[int, int, bool] | None:
    """(status, bytes, whether the server closes the connection) of the first complete
    response in ``buf``, or None while it is incomplete. Reads the status line, Content-Length
    (the service always sends one) and ``Connection: close``."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buf[:head_end]).lower()
    at = head.find(b"\r\ncontent-length:")
    length = 0
    if at >= 0:
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17:line_end if line_end >= 0 else len(head)])
    total = head_end + 4 + length
    if len(buf) < total:
        return None
    return int(buf[9:12]), total, b"\r\nconnection: close" in head


def _open_loop_raw(host: str, port: int, paths: list[bytes], rate: float, seconds: float,
                   connections: int, drain: float) -> dict[str, float]:
    """The open loop on plain blocking sockets and one ``select`` (microsecond timeouts), no
    event loop: the same wrk2 schedule and statistics as :func:`_open_loop` at a fraction of
    the generator's CPU, which it shares with the server."""
    n = int(rate * seconds)
    raw = [b"GET " + p + b" HTTP/1.1\r\nHost: x\r\n\r\n" for p in paths]
    latencies = np.full(n, np.nan)
    errors = 0
    socks = [_connect(host, port) for _ in range(connections)]
    slot = {s: c for c, s in enumerate(socks)}
    bufs = [bytearray() for _ in range(connections)]
    inflight = [-1] * connections  # the request each connection waits for (-1: none)
    backlog: list[list[int]] = [[] for _ in range(connections)]  # due, not yet sent
    busy = 0
    reconnects = 0
    perf = time.perf_counter
    start = perf()
    t0 = start + 0.5
    stop = t0 + seconds + drain  # nothing is sent or awaited after this
    next_j = 0

    def send(c: int, j: int) -> None:
        nonlocal errors
        try:
            socks[c].sendall(raw[j % len(raw)])
        except OSError:
            errors += 1
            latencies[j] = perf() - (t0 + j / rate)
            reconnect(c)
            return
        inflight[c] = j

    def reconnect(c: int) -> None:
        nonlocal reconnects
        reconnects += 1
        old = socks[c]
        del slot[old]
        old.close()
        socks[c] = _connect(host, port)
        slot[socks[c]] = c
        bufs[c].clear()

    while True:
        now = perf()
        if now >= stop:
            break
        while next_j < n and t0 + next_j / rate <= now:
            c = next_j % connections
            if inflight[c] < 0:
                send(c, next_j)
                busy += inflight[c] >= 0
            else:
                backlog[c].append(next_j)
            next_j += 1
        if next_j >= n and busy == 0:
            break
        wait = (t0 + next_j / rate if next_j < n else stop) - now
        ready, _, _ = select.select(socks, [], [], max(min(wait, stop - now), 0.0))
        for sock in ready:
            c = slot[sock]
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            j = inflight[c]
            if not data:  # the server closed the connection
                if j >= 0:
                    errors += 1
                    latencies[j] = perf() - (t0 + j / rate)
                    inflight[c] = -1
                    busy -= 1
                reconnect(c)
            else:
                buf = bufs[c]
                buf += data
                done = _response_end(buf)
                if done is None:
                    continue
                status, total, close = done
                del buf[:total]
                if j >= 0:
                    latencies[j] = perf() - (t0 + j / rate)
                    errors += status != 200
                    inflight[c] = -1
                    busy -= 1
                if close:  # the server ends this connection: the next request opens another
                    reconnect(c)
            if inflight[c] < 0 and backlog[c]:
                send(c, backlog[c].pop(0))
                busy += inflight[c] >= 0
    end = perf()
    for sock in socks:
        sock.close()
    return {**_latency_row(latencies, errors, n, rate, t0, start, end),
            "reconnects": reconnects}


def _latency_row(latencies: np.ndarray, errors: int, n: int, rate: float, t0: float,
                 start: float, end: float) -> dict[str, float]:
    answered = np.isfinite(latencies)
    waited = np.maximum(end - (t0 + np.arange(n) / rate), 0.0)
    ms = np.where(answered, latencies, waited) * 1000  # unanswered: time waited, a lower bound
    return {"requests": n, "answered": int(answered.sum()), "unanswered": int(n - answered.sum()),
            "errors": errors, "achieved_rps": answered.sum() / (end - start - 0.5),
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
                # a request still unanswered 10 s after the loop's end ends this connection
                left = end + 10.0 - time.perf_counter()
                if await asyncio.wait_for(_request(reader, writer, raw), max(left, 0.1)) != 200:
                    errors[0] += 1
            except _Closed as closed:
                errors[0] += closed.status != 200
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            except TimeoutError:
                errors[0] += 1
                break
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


def _wrk(port: int, paths: list[bytes], seconds: float, connections: int,
         tmp: Path) -> dict[str, float] | None:
    """Closed-loop throughput measured by wrk (one thread, same connections and paths)."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    script = tmp / "paths.lua"
    listed = ",\n".join('"' + p.decode() + '"' for p in paths)
    script.write_text(
        "local paths = {\n" + listed + "\n}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        "  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n")
    out = subprocess.run(
        [exe, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s",
         str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 60,
    ).stdout
    rps = re.search(r"Requests/sec:\s*([0-9.]+)", out)
    total = re.search(r"([0-9]+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*([0-9]+)", out)
    sock = re.search(r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), "
                     r"timeout ([0-9]+)", out)
    if rps is None or total is None:
        return None
    socket_errors = [int(x) for x in sock.groups()] if sock else [0, 0, 0, 0]
    return {"wrk_rps": float(rps.group(1)), "wrk_requests": int(total.group(1)),
            "wrk_non2xx": int(non2xx.group(1)) if non2xx else 0,
            "wrk_socket_errors": sum(socket_errors[:3]), "wrk_timeouts": socket_errors[3]}


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


def _procs(pid: int) -> list[Any]:
    import psutil

    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]


def _rss_mb(pid: int) -> float:
    return sum(x.memory_info().rss for x in _procs(pid)) / 2**20


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the server and its worker processes so far."""
    total = 0.0
    for p in _procs(pid):
        t = p.cpu_times()
        total += t.user + t.system
    return total


def _load1() -> float:
    return os.getloadavg()[0]


def _load_run(name: str, port: int, pid: int, paths: list[bytes], rate: float, seconds: float,
              connections: int, warmup: float, drain: float, sat_seconds: float,
              tmp: Path, generator: str = "raw") -> dict[str, float]:
    _run(_closed_loop("127.0.0.1", port, paths, warmup, connections))  # warm caches
    load0 = _load1()
    # the generator's own collector pauses would count as the server's latency: none during
    # the run (its garbage is freed by reference counting; cycles wait until the end)
    gc.collect()
    gc.disable()
    try:
        rss0, cpu0, gen0 = _rss_mb(pid), _cpu_s(pid), time.process_time()
        if generator == "raw":
            row = _open_loop_raw("127.0.0.1", port, paths, rate, seconds, connections, drain)
        else:
            row = _run(_open_loop("127.0.0.1", port, paths, rate, seconds, connections, drain))
        cpu1, gen1, rss1 = _cpu_s(pid), time.process_time(), _rss_mb(pid)
    finally:
        gc.enable()
    answered = max(row["answered"], 1)
    row.update({"server_cpu_ms_per_req": (cpu1 - cpu0) / answered * 1000,
                "generator_cpu_ms_per_req": (gen1 - gen0) / answered * 1000,
                "rss_before_mb": rss0, "rss_after_mb": rss1, "load1_before": load0,
                "load1_after": _load1()})
    cpu0 = _cpu_s(pid)
    sat = _run(_closed_loop("127.0.0.1", port, paths, sat_seconds, connections))
    row.update({"saturation_rps": sat["throughput_rps"], "saturation_errors": sat["errors"],
                "saturation_server_cpu_ms_per_req":
                    (_cpu_s(pid) - cpu0) / max(sat["requests"], 1) * 1000})
    wrk = _wrk(port, paths, sat_seconds, connections, tmp)
    if wrk is not None:
        row.update(wrk)
    row["load1_end"] = _load1()
    print(name, {k: round(v, 3) for k, v in row.items()}, flush=True)
    return row


_GENERATORS = {
    "raw": "generator: blocking sockets and one `select` loop",
    "asyncio": "generator: asyncio streams on uvloop",
}


def part_load(rates: list[float], seconds: float, connections: int, workers: int,
              fast_path: bool, drain: float, sat_seconds: float, cornac: bool,
              http: str = "auto", loop: str = "auto", generator: str = "raw",
              access_log: bool = False, server_args: tuple[str, ...] = (),
              label_extra: str = "") -> tuple[str, str, list[float]]:
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
    label = f"chuchun serve ({workers} worker{'s' if workers > 1 else ''}"
    label += "" if fast_path else ", no fast path"
    label += ", access log to a file" if access_log else ""
    label += label_extra
    # the server's stderr (its access log when on) goes to a file, as a deployment's would
    server_log = open(tmp / "server.log", "wb")  # noqa: SIM115 (closed after the server)
    if http == "auto" and loop == "auto":
        extra = ["--workers", str(workers)] + ([] if fast_path else ["--no-fast-path"])
        extra += [] if access_log else ["--no-access-log"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "chuchun", "serve", str(tmp / "als.zip"), "--port",
             str(port), "--log-level", "info" if access_log else "warning", *extra,
             *server_args], stderr=server_log,
        )
    else:  # uvicorn's own command line, to compare its HTTP parsers and event loops
        from chuchun.serve.app import ENV_CONFIG, ServeConfig

        config = ServeConfig(models={"als": str(tmp / "als.zip")}, fast_path=fast_path)
        env = {**os.environ, ENV_CONFIG: config.to_env(), "CHUCHUN_SERVE_ACCESS_LOG": "0",
               "CHUCHUN_SERVE_LOG_LEVEL": "warning"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "chuchun.serve.app:app_from_env", "--factory",
             "--port", str(port), "--workers", str(workers), "--http", http, "--loop", loop,
             "--no-access-log", "--log-level", "warning"], env=env, stderr=server_log,
        )
        label += f", uvicorn --http {http} --loop {loop}"
    label += ")"
    try:
        _wait_ready("/readyz", port, proc)
        paths = [f"/v1/models/als/recommend?user={u}&k=10".encode() for u in users]
        for rate in rates:
            rows[f"{label}, {rate:g}/s"] = _load_run(
                "chuchun", port, proc.pid, paths, rate, seconds, connections, 3.0, drain,
                sat_seconds, tmp, generator)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        server_log.close()
    if access_log:
        lines = (tmp / "server.log").read_bytes().count(b'"route":')
        print(f"access log: {lines} JSON lines", flush=True)
    cornac_note = (_cornac_reference(ml, users, tmp, rates, seconds, connections, rows, drain,
                                     sat_seconds) if cornac else "Cornac reference skipped.")
    frame = pd.DataFrame(rows).T
    frame.index.name = "server"
    cols = ["requests", "unanswered", "errors", "achieved_rps", "p50_ms", "p90_ms", "p99_ms",
            "p999_ms", "max_ms", "reconnects", "server_cpu_ms_per_req", "generator_cpu_ms_per_req",
            "rss_before_mb", "rss_after_mb", "saturation_rps", "saturation_errors",
            "saturation_server_cpu_ms_per_req", "wrk_rps", "wrk_non2xx", "wrk_socket_errors",
            "wrk_timeouts", "load1_before",
            "load1_after", "load1_end"]
    body = (f"Open loop at {', '.join(f'{r:g}' for r in rates)} requests/s for {seconds:g} s "
            f"over {connections} keep-alive connections (a run ends {drain:g} s after its last "
            f"due time), `recommend` k=10 for random known users of ALS (50 factors) on "
            f"ml-latest-small ({len(model.users_)} users, {len(model.items_)} items); latency "
            f"from each request's due time ({_GENERATORS[generator]}). CPU per request: server process CPU seconds over "
            "the open-loop run / requests answered. Saturation: closed loop over the same "
            f"connections for {sat_seconds:g} s (Python generator, then wrk). load1: the "
            "1-minute load average before the open-loop run, after it, and after the "
            "saturation runs. wrk_timeouts: requests wrk gave up on after 10 s.\n\n"
            + markdown_table(frame[[c for c in cols if c in frame.columns]], digits=2))
    return body, cornac_note, [float(r["load1_before"]) for r in rows.values()]


def _cornac_reference(ml: Any, users: np.ndarray, tmp: Path, rates: list[float],
                      seconds: float, connections: int, rows: dict[str, Any], drain: float,
                      sat_seconds: float) -> str:
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
            rows[f"cornac.serving (Flask), {rate:g}/s"] = _load_run(
                "cornac", port, proc.pid, paths, rate, seconds, connections, 3.0, drain,
                sat_seconds, tmp)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return ("Cornac reference: cornac.models.MF (k=50, 20 epochs) on the same ratings, served by "
            "`flask --app cornac.serving.app run --with-threads` (Cornac's documented serving "
            "app on Flask's development server, one process), answering "
            "`/recommend?uid=U&k=10&remove_seen=true` for the same users.")


# -- ANN -------------------------------------------------------------------------------------


def part_ann(n_items: int, dim: int, n_queries: int, ef_construction: int, M: int,
             n_threads: int, ef_values: list[int]) -> str:
    import importlib.metadata

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
    print(f"exact search done ({exact_s * 1000:.1f} ms per query); building the index",
          flush=True)
    t = time.perf_counter()
    index = FactorIndex(items, M=M, ef_construction=ef_construction, ef_search=10,
                        n_threads=n_threads)
    build_s = time.perf_counter() - t
    print(f"built in {build_s:.0f} s", flush=True)
    rows = {}
    for ef in ef_values:
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
            f"norms), {n_queries} queries; hnswlib {importlib.metadata.version('hnswlib')} "
            f"inner-product HNSW, M={M}, ef_construction={ef_construction}, built with "
            f"{n_threads} threads in {build_s:.0f} s. Queries one at a time on one thread. "
            "Exact: NumPy brute "
            "force in batches of 100 queries (per-query time is the batch time / 100).\n\n"
            + markdown_table(frame, digits=3))


def _machine_note(loads: list[float], what: str) -> str:
    """What the load average said while the benchmark ran (measured, not assumed)."""
    cores = os.cpu_count() or 1
    lo, hi = min(loads), max(loads)
    state = ("the machine was otherwise nearly idle" if hi < 0.5 * cores else
             f"other work shared the {cores} cores: read the timings as an upper bound of what "
             "a quiet machine gives")
    return (f"1-minute load average {what}: {lo:.1f} to {hi:.1f} on {cores} logical cores; "
            f"{state}.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["load", "ann", "all"], default="all")
    ap.add_argument("--rate", type=float, action="append",
                    help="Requests/s of an open-loop run (repeat for several; default 1000).")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--drain", type=float, default=10.0,
                    help="Seconds a run waits for answers after its last due time.")
    ap.add_argument("--saturation-seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=1, help="chuchun serve --workers.")
    ap.add_argument("--no-fast-path", action="store_true",
                    help="Serve every request through the FastAPI route (chuchun serve "
                    "--no-fast-path), for comparison.")
    ap.add_argument("--no-cornac", action="store_true", help="Skip the Cornac reference.")
    ap.add_argument("--generator", choices=sorted(_GENERATORS), default="raw",
                    help="Open-loop generator: plain sockets and select (raw), or asyncio "
                    "streams (the earlier one).")
    ap.add_argument("--access-log", action="store_true",
                    help="Keep the service's JSON access log on (written to a file).")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="Extra `chuchun serve` argument (repeat), e.g. --server-arg=--http.")
    ap.add_argument("--results-name", default="serve",
                    help="Write benchmarks/results/<name>.md.")
    ap.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto",
                    help="uvicorn's HTTP parser (not auto: started with uvicorn's command line).")
    ap.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                    help="uvicorn's event loop (not auto: started with uvicorn's command line).")
    ap.add_argument("--ann-items", type=int, default=1_000_000)
    ap.add_argument("--ann-dim", type=int, default=32)
    ap.add_argument("--ann-queries", type=int, default=1000)
    ap.add_argument("--ann-ef-construction", type=int, default=100)
    ap.add_argument("--ann-m", type=int, default=16)
    ap.add_argument("--ann-threads", type=int, default=2, help="Index build threads.")
    ap.add_argument("--ann-ef-search", type=int, action="append",
                    help="ef_search values to measure (repeat; default 50 100 200 400 800).")
    args = ap.parse_args()
    if args.part in ("ann", "all"):
        load0 = _load1()
        body = part_ann(args.ann_items, args.ann_dim, args.ann_queries,
                        args.ann_ef_construction, args.ann_m, args.ann_threads,
                        args.ann_ef_search or [50, 100, 200, 400, 800])
        note = _machine_note([load0, _load1()], "at the start and the end of the run")
        path = write_results("serve-ann", "Service: ANN index recall against exact search",
                             [("HNSW inner-product index vs exact top-10", body)],
                             libraries=["hnswlib"],
                             notes=note + " Recall does not depend on the load; times do.")
        print(f"wrote {path}")
    if args.part in ("load", "all"):
        body, note, loads = part_load(args.rate or [1000.0], args.seconds, args.connections,
                               args.workers, not args.no_fast_path, args.drain,
                               args.saturation_seconds, not args.no_cornac, args.http,
                               args.loop, args.generator, args.access_log,
                               tuple(args.server_arg),
                               "".join(f", {a}" for a in args.server_arg))
        machine = _machine_note(loads, "before each open-loop run") + (
            " The load generator runs on the same cores as the server, and the server's own "
            "load adds to the average while it runs.")
        path = write_results(args.results_name, "Service: latency under an open-loop load",
                             [("recommend k=10 at a fixed rate", body)],
                             libraries=["fastapi", "uvicorn", "cornac"],
                             notes=note + "\n\n" + machine)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
