"""Spreading keep-alive connections evenly over the worker processes (``--workers N``).

The workers share one listening socket, and whichever wakes first accepts every connection
waiting: a client that opens its connection pool at once often lands entirely on one worker
(16 connections measured 16:0 in some runs, see ``benchmarks/results/serve.md``), which then
does all the work while the others idle. Each worker therefore counts its open connections in a
small file shared by all of them (one slot per worker: process id and count), and a worker that
holds more than one connection above the least loaded live worker answers the request in hand
with ``Connection: close`` (RFC 9112, section 9.6): the client finishes reading that answer,
opens a new connection for its next request, and the accept goes to whichever worker takes it.
Repeated, the counts settle within one of each other. Nothing is refused or cut off.
"""

from __future__ import annotations

import fcntl
import mmap
import os

__all__ = ["ENV_BALANCE", "ConnectionBalance", "create_balance_file", "worker_balance"]

#: the path of the shared file (set by ``chuchun serve`` for its workers)
ENV_BALANCE = "CHUCHUN_SERVE_BALANCE"


def create_balance_file(path: str, n_workers: int) -> None:
    """A zeroed file with ``n_workers`` slots (twice as many: restarted workers reuse slots
    of processes that have gone, but a slot is only freed once its process is gone)."""
    with open(path, "wb") as fh:
        fh.write(bytes(16 * 2 * n_workers))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ConnectionBalance:
    """This worker's slot in the shared file of connection counts."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "r+b")  # noqa: SIM115 (held for the process's lifetime)
        self._map = mmap.mmap(self._fh.fileno(), 0)
        self._words = memoryview(self._map).cast("q")  # slot j: pid at 2j, count at 2j + 1
        self.n_slots = len(self._words) // 2
        self.pid = os.getpid()
        words = self._words
        fcntl.flock(self._fh, fcntl.LOCK_EX)  # claiming a slot: one worker at a time
        try:
            free = [j for j in range(self.n_slots)
                    if words[2 * j] == 0 or not _alive(words[2 * j])]
            if not free:
                raise RuntimeError(f"no free worker slot in {path}")
            self.slot = free[0]
            words[2 * self.slot + 1] = 0
            words[2 * self.slot] = self.pid
        finally:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._count = 2 * self.slot + 1

    def opened(self) -> None:
        self._words[self._count] += 1  # only this process writes its own count

    def closed(self) -> None:
        self._words[self._count] -= 1

    def counts(self) -> dict[int, int]:
        """Open connections per live worker process id."""
        words = self._words
        return {words[2 * j]: words[2 * j + 1] for j in range(self.n_slots)
                if words[2 * j] != 0}

    def over_share(self) -> bool:
        """True when this worker holds two or more connections more than the least loaded
        live worker."""
        words = self._words
        mine = words[self._count]
        if mine < 2:
            return False
        for j in range(self.n_slots):
            pid = words[2 * j]
            if pid == 0 or pid == self.pid or mine <= words[2 * j + 1] + 1:
                continue
            if _alive(pid):
                return True
            words[2 * j] = 0  # a worker that has gone: its slot is free again
        return False


_BALANCE: list[ConnectionBalance | None] = []


def worker_balance() -> ConnectionBalance | None:
    """This process's :class:`ConnectionBalance` when ``chuchun serve`` runs several workers
    (the environment names the shared file), else None."""
    if not _BALANCE:
        spec = os.environ.get(ENV_BALANCE)
        _BALANCE.append(ConnectionBalance(spec) if spec else None)
    return _BALANCE[0]
