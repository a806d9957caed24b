"""Importing ``chuchun.kernels`` starts numba's pool with OpenMP's passive wait policy.

The pool starts once per process, so each case runs in a fresh interpreter.
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
from numba.np.ufunc import parallel
seen = []
launch = parallel._launch_threads
def recording_launch():
    seen.append(os.environ.get("OMP_WAIT_POLICY"))
    launch()
parallel._launch_threads = recording_launch
import chuchun.kernels
print(json.dumps({"at_start": seen, "after": os.environ.get("OMP_WAIT_POLICY"),
                  "started": parallel._is_initialized}))
"""


def _probe(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", _PROBE], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pool_starts_passive_and_the_environment_is_restored() -> None:
    seen = _probe()
    assert seen == {"at_start": ["PASSIVE"], "after": None, "started": True}


@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "ACTIVE"),
                                         ("GOMP_SPINCOUNT", "1000")])
def test_a_users_own_wait_setting_is_kept(name: str, value: str) -> None:
    seen = _probe(**{name: value})
    expected_at_start = value if name == "OMP_WAIT_POLICY" else None
    assert seen["at_start"] == [expected_at_start]
    assert seen["started"] is True
    assert seen["after"] == (value if name == "OMP_WAIT_POLICY" else None)
