"""`make demo`'s install step: uv when it can be had, pip otherwise, and never half-done.

The Makefile's core install runs here against a stand-in virtual environment whose ``python``
and ``uv`` only log their arguments (and fail on request), so each path of the fallback runs for
real in ``make`` without touching a package index.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """\
#!/bin/sh
# logs each call; `-m pip install ... uv...` installs the fake uv unless told to fail
echo "python $*" >> "$FAKE_LOG"
case "$*" in
  *"pip install"*" uv>="*)
    [ -n "$FAKE_NO_UV" ] && exit 1
    cp "$FAKE_UV" "$(dirname "$0")/uv"; chmod +x "$(dirname "$0")/uv"; exit 0 ;;
  *"pip install"*" -e ."*) [ -n "$FAKE_PIP_FAILS" ] && exit 1; exit 0 ;;
esac
exit 0
"""

FAKE_UV = """\
#!/bin/sh
echo "uv $*" >> "$FAKE_LOG"
[ -n "$FAKE_UV_FAILS" ] && exit 1
exit 0
"""


def make_core(tmp_path: Path, *make_args: str, **env: str) -> tuple[int, list[str], str]:
    """Run ``make .venv/.core`` in a project stand-in; returns (status, logged calls, output)."""
    project = tmp_path / "project"
    bindir = project / ".venv" / "bin"
    bindir.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (bindir / "python").write_text(FAKE_PYTHON)
    (bindir / "python").chmod(0o755)
    (tmp_path / "uv").write_text(FAKE_UV)
    log = tmp_path / "calls.log"
    environ = {**os.environ, "FAKE_LOG": str(log), "FAKE_UV": str(tmp_path / "uv"), **env}
    proc = subprocess.run(["make", "--no-print-directory", "-f", str(REPO / "Makefile"),
                           ".venv/.core", *make_args],
                          cwd=project, env=environ, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc.returncode, calls, proc.stdout + proc.stderr


def installed(tmp_path: Path) -> bool:
    return (tmp_path / "project" / ".venv" / ".core").exists()


def test_core_install_goes_through_uv_bootstrapped_with_pip(tmp_path: Path) -> None:
    status, calls, out = make_core(tmp_path)
    assert status == 0, out
    assert calls[0].startswith("python -m pip install") and "uv>=" in calls[0]
    assert calls[1] == "uv pip install --quiet --python .venv/bin/python -e ."
    assert len(calls) == 2  # no pip install of the project, no pip upgrade
    assert "with uv" in out and installed(tmp_path)


def test_pip_installs_when_uv_cannot_be_had(tmp_path: Path) -> None:
    status, calls, out = make_core(tmp_path, FAKE_NO_UV="1")
    assert status == 0, out
    assert calls[-1] == "python -m pip install --quiet -e ."
    assert not any(c.startswith("uv ") for c in calls)
    assert "with pip" in out and installed(tmp_path)


def test_pip_installs_when_uv_fails(tmp_path: Path) -> None:
    status, calls, out = make_core(tmp_path, FAKE_UV_FAILS="1")
    assert status == 0, out
    assert calls[-2].startswith("uv pip install")
    assert calls[-1] == "python -m pip install --quiet -e ."
    assert "uv failed; installing with pip" in out and installed(tmp_path)


def test_installer_pip_skips_uv(tmp_path: Path) -> None:
    status, calls, out = make_core(tmp_path, "INSTALLER=pip")
    assert status == 0, out
    assert calls == ["python -m pip install --quiet -e ."]


def test_a_failed_install_leaves_no_marker(tmp_path: Path) -> None:
    # the next `make demo` must try again rather than run on a half-installed venv
    status, calls, out = make_core(tmp_path, FAKE_UV_FAILS="1", FAKE_PIP_FAILS="1")
    assert status != 0
    assert not installed(tmp_path)
    assert "uv failed; installing with pip" in out
