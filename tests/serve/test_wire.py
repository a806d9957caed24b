"""The service's own pieces under uvicorn: the fast path's error answer, one write per small
response, and even connection counts over several workers (a real ``chuchun serve --workers 2``
on loopback)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chuchun.serve import ServeConfig, create_app
from chuchun.serve._balance import ConnectionBalance, create_balance_file
from chuchun.serve._wire import CoalescingTransport
from chuchun.serve.logs import BatchedStreamHandler

from tests.serve.conftest import start_server

INTERNAL = {"error": "internal_error", "detail": "an internal error; the service log has details"}


def test_fast_path_failure_is_the_routes_json_500(artifacts: dict[str, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected exception in the fast path gives the JSON 500 the routes give, and is
    counted as a 500 under the route's template."""
    from chuchun.serve._fast import FastRecommend

    def broken(self: Any, sm: Any, query: Any) -> bytes:
        raise RuntimeError("injected failure")

    app = create_app(ServeConfig(models={"als": str(artifacts["als"])}))
    client = TestClient(app)
    assert client.get("/v1/models/als/recommend", params={"user": 3}).status_code == 200
    monkeypatch.setattr(FastRecommend, "answer", broken)
    r = client.get("/v1/models/als/recommend", params={"user": 3})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json() == INTERNAL
    # the general route's answer to an unexpected exception is the same body
    slow_app = create_app(ServeConfig(models={"als": str(artifacts["als"])}, fast_path=False))
    monkeypatch.setattr(slow_app.state.service, "recommend", lambda *a, **k: broken(
        None, None, None))
    r2 = TestClient(slow_app, raise_server_exceptions=False).get(
        "/v1/models/als/recommend", params={"user": 3})
    assert (r2.status_code, r2.json()) == (500, INTERNAL)
    text = client.get("/metrics").text
    assert ('chuchun_http_requests_total{method="GET",route="/v1/models/{name}/recommend",'
            'status="500"') in text


class _Transport:
    """Records the writes a transport receives."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_coalescing_transport_joins_head_and_body() -> None:
    async def run() -> list[list[bytes]]:
        loop = asyncio.get_running_loop()
        raw = _Transport()
        t = CoalescingTransport(raw, loop)  # type: ignore[arg-type]
        head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
        t.write(head)
        assert raw.writes == []  # held for the body
        t.write(b"{}")
        seen = [list(raw.writes)]  # one write: head and body together
        raw.writes.clear()
        t.write(head)  # a head whose body comes later leaves on the loop's next turn
        await asyncio.sleep(0)
        seen.append(list(raw.writes))
        raw.writes.clear()
        t.write(b"more body")  # body bytes are never held
        t.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        t.close()  # closing writes what is held first
        seen.append(list(raw.writes))
        assert raw.closed
        assert t.get_extra_info("peername") == "info:peername"
        await asyncio.sleep(0)  # the scheduled flush finds nothing left
        seen.append(list(raw.writes))
        return seen

    joined, later, closing, after = asyncio.run(run())
    assert joined == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert later == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"]
    assert closing == [b"more body", b"HTTP/1.1 204 No Content\r\n\r\n"]
    assert after == closing


def test_batched_access_lines_keep_their_order() -> None:
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, interval=60.0, capacity=3)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("chuchun.tests.batched")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("a")
        logger.info("b")
        assert stream.getvalue() == ""  # queued, not written by the caller
        logger.info("c")  # the capacity: the writer thread wakes now, not in 60 s
        deadline = time.monotonic() + 5
        while stream.getvalue() != "a\nb\nc\n" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.getvalue() == "a\nb\nc\n"
        logger.info("d")
    finally:
        handler.close()  # closing writes what is queued
        logger.handlers[:] = []
    assert stream.getvalue() == "a\nb\nc\nd\n"


def test_concurrent_flushes_keep_the_order() -> None:
    """The writer thread and a shutdown flush may run at once: neither may write lines that
    were queued after the lines the other one holds (a very short thread switch interval
    makes the interleavings that would swap them common)."""
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream, interval=0.0005, capacity=10**9)
    n = 100_000
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            handler.flush()

    threads = [threading.Thread(target=flusher) for _ in range(3)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for j in range(n):
            handler.queue_line(str(j))
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(old)
        handler.close()
    assert stream.getvalue().split() == [str(j) for j in range(n)]


def test_access_line_is_the_json_of_its_record() -> None:
    from chuchun.serve import app as serve_app

    for scope in ({"method": "GET", "path": '/v1/models/a"b\\c/recommend',
                   "client": ("127.0.0.1", 5), "path_params": {"name": 'é"\nx'}},
                  {"method": "POST", "path": "/readyz"}):
        line = serve_app._access_line(scope, "/v1/models/{name}/recommend", 404, 0.0012345)
        record = json.loads(line)
        client = scope.get("client") or ("", 0)
        assert line == json.dumps({
            "ts": record["ts"], "method": scope["method"], "path": scope["path"],
            "route": "/v1/models/{name}/recommend", "status": 404, "ms": 1.234,
            "model": (scope.get("path_params") or {}).get("name"),
            "client": f"{client[0]}:{client[1]}", "pid": os.getpid()})
        assert abs(record["ts"] - time.time()) < 60


def test_connection_balance_counts_and_share(tmp_path: Path) -> None:
    path = str(tmp_path / "connections")
    create_balance_file(path, 2)
    a = ConnectionBalance(path)
    # a second worker in this test is another slot claimed by a live process id
    b = ConnectionBalance.__new__(ConnectionBalance)
    b.__dict__.update(a.__dict__)
    b.slot, b._count, b.pid = 1, 3, os.getppid()
    a._words[2] = b.pid
    for _ in range(3):
        a.opened()
    b.opened()
    assert a.counts() == {a.pid: 3, b.pid: 1}
    assert a.over_share() and not b.over_share()  # 3 against 1: a sheds one
    a.closed()
    assert not a.over_share()  # 2 against 1: even enough
    b.closed()
    assert a.over_share()  # 2 against 0
    # a slot whose process has gone no longer counts, and is free again
    a._words[2] = 2**22 + 12345  # beyond pid_max's default: no such process
    assert not a.over_share()
    assert a.counts() == {a.pid: 2}
    c = ConnectionBalance(path)  # a restarted worker takes a free slot
    assert c.slot != a.slot


def _get(sock: socket.socket, request: bytes) -> tuple[bool, bool]:
    """Send one request on a keep-alive connection; (a 200 came back, the server closes)."""
    sock.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before an answer"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(x.split(b":")[1]) for x in lines if x.startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return lines[0].startswith(b"http/1.1 200"), b"connection: close" in lines


def test_two_workers_share_the_connections(artifacts: dict[str, Path], tmp_path: Path) -> None:
    """Connections opened at once end up spread over both workers; every answer is a 200
    (an over-share worker answers, then closes, and the client opens another connection)."""
    import psutil

    srv = start_server([str(artifacts["als"]), "--workers", "2"], tmp_path / "server.log",
                       timeout=180)
    deadline = time.monotonic() + 180  # /readyz answers once the first worker is up
    while srv.stderr().count("Application startup complete") < 2:
        assert time.monotonic() < deadline, srv.stderr()
        time.sleep(0.1)
    port = int(srv.url.rsplit(":", 1)[1])
    request = b"GET /v1/models/als/recommend?user=3&k=5 HTTP/1.1\r\nHost: x\r\n\r\n"
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
    try:
        bad = 0
        for _ in range(10):
            for j in range(len(socks)):
                ok, close = _get(socks[j], request)
                bad += not ok
                if close:
                    socks[j].close()
                    socks[j] = socket.create_connection(("127.0.0.1", port))
        assert bad == 0
        time.sleep(0.3)  # closed connections leave the workers' tables
        per_worker = sorted(
            sum(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                for c in p.net_connections("tcp"))
            for p in psutil.Process(srv.proc.pid).children(recursive=True))
        per_worker = [n for n in per_worker if n > 0]
        assert sum(per_worker) == 12
        assert len(per_worker) == 2 and per_worker[0] >= 4, per_worker
    finally:
        for sock in socks:
            sock.close()
        assert srv.stop() == 0
    # every answer has its access line, the last ones written as the workers shut down
    lines = [json.loads(x) for x in srv.stderr().splitlines() if x.startswith("{")]
    recommend = [x for x in lines if x["route"] == "/v1/models/{name}/recommend"]
    assert len(recommend) == 120 and all(x["status"] == 200 for x in recommend)
    assert len({x["pid"] for x in recommend}) == 2
