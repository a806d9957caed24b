"""Compiled loops (numba) and their plain-NumPy twins. Nothing else lives here.

Importing this package makes numba start its thread pool, whenever it does, with OpenMP's
passive wait policy (:func:`use_passive_wait`): waiting threads sleep instead of spinning.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["use_passive_wait"]

# environment variables through which a user chooses OpenMP's waiting behaviour themselves
_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def use_passive_wait() -> None:
    """Have numba start its thread pool with OpenMP's passive wait policy.

    GNU OpenMP, numba's default threading layer where TBB is absent, lets a thread that waits
    at the start or end of a parallel region spin for 300,000 iterations before it sleeps
    (``OMP_WAIT_POLICY`` unset), about 10 ms on CPUs with a slow ``pause`` instruction. When
    another process holds one of the cores, the spinning thread keeps its own core while the
    thread it waits for cannot run, so every parallel region costs a scheduler time slice: a
    kernel that opens many short regions (DSGD opens two per epoch on two threads) then runs
    with one thread's CPU time at three to four times the serial time. With the passive policy
    a waiting thread sleeps at once and the other runs in its place.

    libgomp reads the policy once, when it is loaded, which numba does when it starts its pool
    (at the first parallel kernel or thread-count call, not at import: a process that forks
    before it has started OpenMP keeps forked children able to use it). numba's pool start is
    wrapped so that ``OMP_WAIT_POLICY=PASSIVE`` is set only while it runs and the environment is
    restored afterwards; a user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is left as it
    is. A libgomp already loaded by the process (another library started OpenMP first) keeps
    its policy, and libraries that load the same libgomp later (torch shares it by name) share
    this one. Other threading layers are not affected.
    """
    from numba.np.ufunc import parallel

    launch: Callable[[], None] = parallel._launch_threads
    if getattr(launch, "passive_wait", False):
        return

    def launch_passive() -> None:
        if parallel._is_initialized:  # called before every thread-count query: stay cheap
            launch()
            return
        user_set = any(name in os.environ for name in _WAIT_SETTINGS)
        if not user_set:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            launch()
        finally:
            if not user_set:
                os.environ.pop("OMP_WAIT_POLICY", None)

    launch_passive.passive_wait = True  # type: ignore[attr-defined]
    parallel._launch_threads = launch_passive


use_passive_wait()
