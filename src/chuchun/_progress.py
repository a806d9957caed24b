"""Progress feedback: off in library use, on from the CLI or with ``verbose=True``.

On a terminal, long loops show a tqdm bar on stderr. When stderr is not a terminal (a log file,
a CI job, a pipe), a bar would be invisible, so a plain line is written instead at a steady
cadence (every :data:`interval` seconds, and once at the end): the step, how far it is, the
elapsed time and the latest numbers the loop reports (losses, metrics).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

_ENABLED = False
_INTERVAL = 10.0

__all__ = ["bar", "progress", "set_progress"]


class Bar(Protocol):
    """What a progress display offers a loop."""

    def update(self, n: int = 1) -> Any: ...

    def set_postfix(self, **values: Any) -> Any: ...

    def close(self) -> Any: ...


def set_progress(enabled: bool, *, interval: float | None = None) -> None:
    """Turn progress feedback on or off for the whole process (the CLI turns it on);
    ``interval`` is the seconds between two log lines when stderr is not a terminal."""
    global _ENABLED, _INTERVAL
    _ENABLED = bool(enabled)
    if interval is not None:
        _INTERVAL = max(0.0, float(interval))


class _LogLines:
    """A progress display for non-terminals: one line per :data:`_INTERVAL` seconds."""

    def __init__(self, total: int | None, desc: str) -> None:
        self.total, self.desc = total, desc or "working"
        self.n = 0
        self.start = self.last = time.perf_counter()
        self.postfix: dict[str, Any] = {}
        self.closed = False
        self.lines = 0

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= _INTERVAL:
            self.last = now
            self._line(now)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def close(self) -> None:
        """A closing line, when the loop lasted long enough to have logged before."""
        if not self.closed:
            self.closed = True
            now = time.perf_counter()
            if self.lines or now - self.start >= _INTERVAL:
                self._line(now, done=True)

    def _line(self, now: float, done: bool = False) -> None:
        where = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items() if str(v) != "nan")
        state = "done, " if done else ""
        self.lines += 1
        print(f"chuchun: {self.desc}: {where}, {state}{now - self.start:.1f} s elapsed{extra}",
              file=sys.stderr, flush=True)


def _tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def bar(total: int | None, desc: str = "", *, verbose: bool = False) -> Bar | None:
    """A progress display for a loop of ``total`` steps, or None when feedback is off."""
    if not (_ENABLED or verbose):
        return None
    if _tty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)  # type: ignore[no-any-return]
    return _LogLines(total, desc)


def progress(
    iterable: Iterable[T], *, total: int | None = None, desc: str = "", verbose: bool = False
) -> Iterator[T]:
    """Iterate ``iterable`` with a progress display when feedback is on or ``verbose``."""
    display = bar(total, desc, verbose=verbose)
    if display is None:
        yield from iterable
        return
    try:
        for item in iterable:
            yield item
            display.update(1)
    finally:
        display.close()
