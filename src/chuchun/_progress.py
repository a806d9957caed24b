"""Progress bars: off in library use, on from the CLI or with ``verbose=True``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_ENABLED = False

__all__ = ["progress", "set_progress"]


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for the whole process (the CLI turns them on)."""
    global _ENABLED
    _ENABLED = bool(enabled)


def progress(
    iterable: Iterable[T], *, total: int | None = None, desc: str = "", verbose: bool = False
) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar (on stderr) when progress is enabled or ``verbose``."""
    if not (_ENABLED or verbose):
        yield from iterable
        return
    from tqdm.auto import tqdm

    # disable=None: bars only on a terminal, so logs and pipes stay clean
    yield from tqdm(
        iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None
    )
