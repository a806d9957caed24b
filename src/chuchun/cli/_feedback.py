"""Feedback on long work: kernel compilation announced and kept out of the fit times.

chuchun's compiled loops (:mod:`chuchun.kernels`) are compiled by numba on their first call and
cached on disk, so the first run of a model on a fresh install spends seconds compiling. The
CLI warms a model's kernels up on a small slice of the data before timing the real fit, says so
on the first run, and reports the compile time on its own line.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from chuchun import _progress
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender, clone

__all__ = ["cached_kernels", "start_background_warm_up", "stop_background_warm_up", "warm_up"]

logger = logging.getLogger(__name__)

_WARM_USERS = 50  # users in the warm-up slice: enough to call every kernel, seconds at most
_state: dict[str, Any] = {"announced": False, "warmed": set()}


def _cache_dirs() -> list[Path]:
    import chuchun.kernels as kernels

    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:  # numba then caches there only
        return [Path(env)]
    source = Path(kernels.__file__).resolve().parent
    # beside the sources, or numba's user-wide cache when the package is not writable
    return [source / "__pycache__", Path.home() / ".cache" / "numba"]


def cached_kernels() -> set[str]:
    """Names of the numba cache index files of chuchun's kernels found on disk."""
    found: set[str] = set()
    for directory in _cache_dirs():
        if not directory.is_dir():
            continue
        if directory.name == "__pycache__" and directory.parent.name == "kernels":
            found.update(p.name for p in directory.glob("*.nbi"))
            continue
        for root, _, files in os.walk(directory):
            if "kernels" in os.path.basename(root):  # numba names it kernels_<hash>
                found.update(f for f in files if f.endswith(".nbi"))
    return found


def warm_up(model: Recommender, data: Interactions, fit_args: dict[str, Any]) -> float:
    """Fit a clone of ``model`` on the first users of ``data`` so that its kernels are compiled
    (or loaded from the cache) before the fit that is timed; returns the seconds spent.

    The first time in a process that the kernel cache is empty, the compilation is announced
    on stderr; whenever kernels were compiled, their compile time is reported there too.
    """
    cls = type(model)
    if cls in _state["warmed"]:
        return 0.0
    _state["warmed"].add(cls)
    before = cached_kernels()
    if not before and not _state["announced"]:
        _state["announced"] = True
        click.echo("chuchun: compiling kernels, first run only (cached for later runs)",
                   err=True)
    start = time.perf_counter()
    shown = _progress._ENABLED
    _progress.set_progress(False)  # the warm-up is not the work the user waits for
    try:
        small = data.subset(data.user_idx < min(_WARM_USERS, data.n_users))
        clone(model).fit(small, **fit_args)
    except Exception:  # a slice too small for some setting: the real fit will tell
        logger.debug("warm-up of %s skipped", cls.__name__, exc_info=True)
    finally:
        _progress.set_progress(shown)
    seconds = time.perf_counter() - start
    compiled = cached_kernels() - before
    if compiled:
        background = _state.get("background")
        if background is not None and background.poll() is None:
            # some of the new cache files may come from the background warm-up
            click.echo(f"chuchun: kernels for {cls.__name__} ready in {seconds:.1f} s "
                       "(not counted in fit times)", err=True)
        else:
            click.echo(f"chuchun: compiled {len(compiled)} kernel(s) for {cls.__name__} in "
                       f"{seconds:.1f} s (not counted in fit times)", err=True)
    return seconds


def start_background_warm_up(module: str, args: list[str]) -> subprocess.Popen[bytes] | None:
    """Compile kernels in a second process while this one works, when the cache is empty.

    On a fresh install most of a first run's time is numba compiling kernels, one model after
    another on one core. ``python -m module *args`` is started at low priority (it should warm
    the models the caller needs last, first): kernels it compiles land in numba's on-disk cache,
    where this process finds them when it gets there. When both reach the same kernel, each
    compiles it (numba writes cache files atomically); nothing is shared but the cache. Returns
    the process (the caller stops it when done), or None when the cache is already filled or
    there is a single core.
    """
    if cached_kernels() or (os.cpu_count() or 1) < 2:
        return None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except OSError:  # no second process (restricted environment): compile in this one
        logger.debug("background warm-up not started", exc_info=True)
        return None
    _state["background"] = proc
    return proc


def stop_background_warm_up(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a process from :func:`start_background_warm_up` (its finished kernels stay cached)."""
    if proc is None or proc.poll() is not None:
        _state["background"] = None
        return
    _state["background"] = None
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
