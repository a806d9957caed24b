"""Compiled loops (numba) and their plain-NumPy twins. Nothing else lives here.

Importing this package starts numba's thread pool (:func:`start_thread_pool`) so that, on the
OpenMP threading layer, its threads sleep instead of spinning while they wait.
"""

from __future__ import annotations

import os

__all__ = ["start_thread_pool"]

# environment variables through which a user chooses OpenMP's waiting behaviour themselves
_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def start_thread_pool() -> None:
    """Start numba's thread pool with OpenMP's passive wait policy.

    GNU OpenMP, numba's default threading layer where TBB is absent, lets a thread that waits
    at the start or end of a parallel region spin for 300,000 iterations before it sleeps
    (``OMP_WAIT_POLICY`` unset), about 10 ms on CPUs with a slow ``pause`` instruction. When
    another process holds one of the cores, the spinning thread keeps its own core while the
    thread it waits for cannot run, so every parallel region costs a scheduler time slice: a
    kernel that opens many short regions (DSGD opens two per epoch on two threads) then runs
    with one thread's CPU time at three to four times the serial time. With the passive policy
    a waiting thread sleeps at once and the other runs in its place.

    libgomp reads the policy once, when it is loaded, so the variable is set only around the
    pool's start and restored afterwards; a user's own ``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT`` is left as it is. A libgomp already loaded by the process (another
    library started OpenMP first) keeps its policy, and libraries that load the same libgomp
    later (torch shares it by name) share this one. Other threading layers are not affected.
    """
    from numba.np.ufunc import parallel

    user_set = any(name in os.environ for name in _WAIT_SETTINGS)
    if not user_set:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        parallel._launch_threads()
    finally:
        if not user_set:
            del os.environ["OMP_WAIT_POLICY"]


start_thread_pool()
