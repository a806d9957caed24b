"""Logging of a service process: one line per record on stderr; access records are JSON.

Access lines are written in batches (:class:`BatchedStreamHandler`): the event loop formats a
request's line and appends it to a queue, and a background thread writes whatever has queued
every quarter of a second (at once when 1,024 lines wait), so a request never waits for a
``write`` to stderr, and a busy worker makes one system call for many lines instead of one
each. The service flushes the queue when it shuts down.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from typing import TextIO

__all__ = ["BatchedStreamHandler", "configure_logging", "flush_access_log"]

ACCESS_LOGGER = "chuchun.serve.access"


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes formatted records to a stream in batches, from a background thread.

    Parameters
    ----------
    stream : text stream
        Where the lines go.
    interval : float
        Seconds between writes of what has queued.
    capacity : int
        A write starts early once this many lines wait.
    """

    #: the formatter writes the message alone, so a caller may queue finished lines
    #: (:meth:`queue_line`) instead of records
    plain = False

    def __init__(self, stream: TextIO, *, interval: float = 0.25, capacity: int = 1024) -> None:
        super().__init__(stream)
        self.interval = interval
        self.capacity = capacity
        self._lines: collections.deque[str] = collections.deque()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="chuchun-access-log",
                                        daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        # no lock: emit only appends to a deque, which is thread-safe
        if self.filter(record):
            self.emit(record)
            return True
        return False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= self.capacity:
            self._wake.set()

    def queue_line(self, line: str) -> None:
        """Queue a finished line (what :meth:`emit` does after formatting a record)."""
        self._lines.append(line)
        if len(self._lines) >= self.capacity:
            self._wake.set()

    def flush(self) -> None:
        # Draining and writing happen under one lock: two flushes (the writer thread's and
        # the one at shutdown) must not each take part of the queue and write their parts
        # in swapped order. Queueing never takes this lock.
        with self.lock:  # type: ignore[union-attr]
            lines: list[str] = []
            pop = self._lines.popleft
            while True:
                try:
                    lines.append(pop())
                except IndexError:
                    break
            if not lines:
                return
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # the stream is gone (shutdown): nothing to do
                pass

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
        super().close()


def flush_access_log() -> None:
    """Write the access lines still queued (the service calls it when it shuts down)."""
    for handler in logging.getLogger(ACCESS_LOGGER).handlers:
        handler.flush()


def configure_logging(level: str = "info", *, access: bool = True) -> None:
    """Send ``chuchun`` logs to stderr; ``chuchun.serve.access`` lines are bare JSON objects,
    written in batches."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("chuchun")
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    root.propagate = False
    server_log = logging.getLogger("uvicorn.error")  # "listening on ...", shutdown messages
    server_log.handlers[:] = [handler]
    server_log.setLevel(numeric)
    server_log.propagate = False
    access_log = logging.getLogger(ACCESS_LOGGER)
    for old in access_log.handlers:
        old.close()
    access_handler = BatchedStreamHandler(sys.stderr) if access else logging.NullHandler()
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    if isinstance(access_handler, BatchedStreamHandler):
        access_handler.plain = True
    access_log.handlers[:] = [access_handler]
    access_log.setLevel(logging.INFO if access else logging.WARNING)
    access_log.propagate = False
