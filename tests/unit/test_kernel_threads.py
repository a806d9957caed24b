"""Importing ``chuchun.kernels`` makes numba start its pool with OpenMP's passive wait policy,
when numba starts it, not at import.

numba starts its pool once per process, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# records the wait policy in the environment at the moment numba starts its pool
_PROBE = """
import json, os
import numba
from numba.np.ufunc import parallel
seen = []
launch = parallel._launch_threads
def recording_launch():
    if not parallel._is_initialized:
        seen.append(os.environ.get("OMP_WAIT_POLICY"))
    launch()
parallel._launch_threads = recording_launch
import chuchun.kernels
started_at_import = parallel._is_initialized
numba.get_num_threads()  # numba starts its pool here
print(json.dumps({"at_start": seen, "after": os.environ.get("OMP_WAIT_POLICY"),
                  "started_at_import": started_at_import,
                  "started": parallel._is_initialized}))
"""

# a child forked after the import runs a parallel kernel (GNU OpenMP is not fork-safe, so numba
# terminates a child whose parent had started the pool)
_FORK = """
import os, sys
import numpy as np
import numba
import chuchun.kernels

@numba.njit(parallel=True)
def total(x):
    s = 0.0
    for j in numba.prange(x.shape[0]):
        s += x[j]
    return s

pid = os.fork()
if pid == 0:
    os._exit(0 if total(np.ones(1000)) == 1000.0 else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_THREADING_LAYER")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                         capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip().splitlines()[-1]


def test_pool_starts_passive_and_the_environment_is_restored() -> None:
    seen = json.loads(_run(_PROBE))
    assert seen == {"at_start": ["PASSIVE"], "after": None, "started_at_import": False,
                    "started": True}


@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "ACTIVE"),
                                         ("GOMP_SPINCOUNT", "1000")])
def test_a_users_own_wait_setting_is_kept(name: str, value: str) -> None:
    seen = json.loads(_run(_PROBE, **{name: value}))
    expected = value if name == "OMP_WAIT_POLICY" else None
    assert seen["at_start"] == [expected]
    assert seen["after"] == expected
    assert seen["started"] is True


def test_a_child_forked_after_the_import_can_run_parallel_kernels() -> None:
    assert _run(_FORK) == "0"
