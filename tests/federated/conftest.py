"""Fixtures for the Flower end-to-end tests: free loopback ports and launchers for Flower's
executables that run under this interpreter (so the apps import this chuchun)."""

from __future__ import annotations

import os
import socket
import stat
import sys
from collections.abc import Iterator

import pytest

_ENTRY_POINTS = {
    "flower-superlink": "flwr.server.app:run_superlink",
    "flower-supernode": "flwr.supernode.cli:flower_supernode",
    "flower-superexec": "flwr.supercore.cli:flower_superexec",
    "flwr": "flwr.cli.app:app",
    "flwr-clientapp": "flwr.supernode.cli:flwr_clientapp",
    "flwr-serverapp": "flwr.server.serverapp:flwr_serverapp",
    "flwr-simulation": "flwr.simulation.app:flwr_simulation",
}


@pytest.fixture
def free_ports() -> Iterator[list[int]]:
    """Eight distinct free TCP ports on 127.0.0.1."""
    sockets = []
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    yield ports


@pytest.fixture
def flower_bin(tmp_path) -> str:
    """A directory of launchers for Flower's console scripts bound to ``sys.executable``
    (the SuperLink and SuperNodes start ServerApp/ClientApp processes by these names)."""
    import flwr  # noqa: F401  (a missing extra fails here, loudly)

    directory = tmp_path / "bin"
    directory.mkdir()
    for name, target in _ENTRY_POINTS.items():
        module, func = target.split(":")
        path = directory / name
        path.write_text(
            f"#!{sys.executable}\nimport sys\nfrom {module} import {func}\n"
            f"sys.argv[0] = {name!r}\nsys.exit({func}())\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(directory)


@pytest.fixture
def flower_env(tmp_path, flower_bin) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = flower_bin + os.pathsep + env.get("PATH", "")
    env["FLWR_HOME"] = str(tmp_path / "flwr_home")
    env["PYTHONUNBUFFERED"] = "1"
    return env
