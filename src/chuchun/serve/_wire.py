"""uvicorn's httptools protocol with one socket write per small response.

uvicorn writes a response's status line and headers as soon as the application sends
``http.response.start``, then the body at ``http.response.body``: two ``send`` system calls
and, with ``TCP_NODELAY``, two TCP segments per response, each of which wakes the client. The
fast path sends both messages in one step, so the header block can wait for the body and leave
in the same write: one system call and one segment per answer (``strace -c`` of a worker under
load: 2 writes per request before, 1 after).

:class:`HttpToolsProtocol` is uvicorn's own protocol with the connection's transport wrapped
in :class:`CoalescingTransport`, which holds a header block until the next write on the
connection (the body: both leave together) or, at the latest, the event loop's next turn (a
streamed response whose body comes later, an interim ``100 Continue``). Bytes leave in the
order they were written; closing the transport first writes what it holds.
``chuchun serve`` uses it when httptools is installed (``--http`` in uvicorn's terms).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _UvicornHttpTools

from chuchun.serve._balance import ConnectionBalance, worker_balance

__all__ = ["CoalescingTransport", "HttpToolsProtocol"]

_STATUS_LINE = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"


class CoalescingTransport:
    """A transport that sends a response's header block together with the write after it."""

    __slots__ = ("_held", "_loop", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
            return
        if (isinstance(data, bytes) and data.startswith(_STATUS_LINE)
                and data.endswith(_HEAD_END)):
            # a header block: its body is usually written next in the same step
            self._held = data
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        self._scheduled = False
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # everything else (is_closing, pause_reading, get_extra_info, ...) is the transport's
        return getattr(self._transport, name)


class HttpToolsProtocol(_UvicornHttpTools):
    """uvicorn's httptools protocol writing each small response with one system call; with
    several workers it also keeps their connection counts even (:mod:`chuchun.serve._balance`)."""

    _balance: ConnectionBalance | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._balance = worker_balance()
        if self._balance is not None:
            self._balance.opened()

    def connection_lost(self, exc: Exception | None) -> None:
        balance, self._balance = self._balance, None
        if balance is not None:
            balance.closed()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        balance = self._balance
        cycle = self.cycle
        if (balance is not None and cycle is not None and not cycle.response_started
                and balance.over_share()):
            cycle.keep_alive = False  # answer this request, then close: see _balance
