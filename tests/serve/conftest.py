"""Fixtures of the service tests: small artifacts fitted on the bundled data, and real
``chuchun serve`` processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

TOKEN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_server(args: list[str], log: Path, *, env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> Server:
    """Run ``chuchun serve ARGS`` on a free port and wait until /readyz answers 200."""
    port = free_port()
    full_env = {**os.environ, **(env or {})}
    fh = open(log, "wb")  # noqa: SIM115 (kept open for the process's lifetime)
    proc = subprocess.Popen(
        [sys.executable, "-m", "chuchun", "serve", *args, "--port", str(port)],
        stdout=fh, stderr=subprocess.STDOUT, env=full_env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return Server(url, proc, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not become ready:\n{log.read_text()}")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ALS, ImplicitALS and Popularity fitted on 150 users of ml-latest-small, and a titles CSV."""
    from chuchun.data import Interactions
    from chuchun.datasets import load_dataset
    from chuchun.models import ALS, ImplicitALS, Popularity

    ml = load_dataset("ml-latest-small")
    df = ml.ratings.to_pandas() if hasattr(ml.ratings, "to_pandas") else None
    assert df is not None
    small = df[df["user"] <= 150]
    data = Interactions.from_pandas(small, user_col="user", item_col="item",
                                    rating_col="rating", rating_scale=(0.5, 5.0))
    root = tmp_path_factory.mktemp("serve-artifacts")
    out = {
        "als": root / "als.zip", "ials": root / "ials.zip", "pop": root / "pop.zip",
        "als_alt": root / "als_alt.zip", "titles": root / "titles.csv",
    }
    ALS(n_factors=8, n_epochs=4, random_state=0).fit(data).save(str(out["als"]))
    ALS(n_factors=4, n_epochs=2, random_state=1).fit(data).save(str(out["als_alt"]))
    ImplicitALS(n_factors=8, random_state=0).fit(data).save(str(out["ials"]))
    Popularity().fit(data).save(str(out["pop"]))
    ml.items[["item", "title"]].to_csv(out["titles"], index=False)
    return out


@pytest.fixture(scope="session")
def server(artifacts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """One service over the three models, with labels and an admin token."""
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    srv = start_server(
        [str(artifacts["als"]), str(artifacts["ials"]), str(artifacts["pop"]),
         "--labels", str(artifacts["titles"])],
        log, env={"CHUCHUN_ADMIN_TOKEN": TOKEN},
    )
    yield srv
    srv.stop()
