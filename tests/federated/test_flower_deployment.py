"""End to end on Flower's deployment runtime: a SuperLink and three SuperNodes as separate
processes on 127.0.0.1, the chuchun ServerApp/ClientApp submitted with ``flwr run``, with
secure aggregation: the ServerApp records every update it received, and the test shows that
each was masked while their sum is the sum of the nodes' true updates."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from chuchun.federated import secagg
from chuchun.federated.client import ClientRuntime, implicit_solve_users
from chuchun.federated.flower import read_node_data, write_app, write_node_data
from chuchun.testing import block_interactions

N_NODES = 3


def _split(data):
    """Implicit feedback: each user's liked items (rated 4 or 5), the last two held out."""
    csr = data.csr
    train, test = [], []
    for u in range(data.n_users):
        items = csr.indices[csr.indptr[u]:csr.indptr[u + 1]]
        values = csr.data[csr.indptr[u]:csr.indptr[u + 1]]
        liked = items[values >= 4]
        train.append(liked[:-2])
        test.append(sorted(liked[-2:].tolist()))
    return train, test


def _hit_rate(scores, train, test, k=5):
    hits = 0
    for u, row in enumerate(scores):
        row = row.astype(np.float64).copy()
        row[train[u]] = -np.inf
        top = np.argsort(-row, kind="stable")[:k]
        hits += len(set(top.tolist()) & set(test[u]))
    return hits / sum(len(t) for t in test)


def _wait_listening(port, proc, timeout=30.0):
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {timeout}s")


def _carrying(marker):
    """(pid, process group, command line) of this user's processes whose environment holds
    ``marker`` (every process the test starts inherits it, whatever group it ends up in)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            found.append((int(entry), os.getpgid(int(entry)), cmd))
        except (OSError, ProcessLookupError):
            continue  # another user's process, or gone meanwhile
    return found


def _plain_update(path, item_factors, n_factors):
    """What the node serving ``path`` computes before masking, replayed here."""
    rt = ClientRuntime(0, read_node_data(str(path)), n_factors, 0)
    reply = rt.handle("train", {"kind": "implicit", "item_factors": item_factors,
                                "item_bias": np.zeros(len(item_factors), np.float32),
                                "intercept": 0.0, "clip_norm": None,
                                "regularization": 0.1, "alpha": 4.0})
    return np.asarray(reply["update"], dtype=np.float64)


def test_flower_superlink_and_supernodes_train_a_model(tmp_path, free_ports, flower_env):
    data = block_interactions(n_users=90, n_items=36, density=0.6, random_state=3)
    train, test = _split(data)
    nodes = np.arange(data.n_users) % N_NODES
    for k in range(N_NODES):
        users = np.flatnonzero(nodes == k)
        write_node_data(str(tmp_path / f"node{k}.npz"),
                        np.repeat(users, [len(train[u]) for u in users]),
                        np.concatenate([train[u] for u in users]),
                        np.ones(sum(len(train[u]) for u in users)))
    out = tmp_path / "out"
    app = write_app(str(tmp_path / "app"), {
        "kind": "implicit", "n-items": data.n_items, "n-factors": 6, "n-rounds": 3,
        "regularization": 0.1, "alpha": 4.0, "min-nodes": N_NODES, "output-dir": str(out),
        "round-timeout": 60.0, "seed": 1, "secure-aggregation": True, "record-uploads": True})
    fleet, appio, control = free_ports[:3]
    home = flower_env["FLWR_HOME"]
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "config.toml"), "w") as fh:
        fh.write(f'[superlink]\ndefault = "e2e"\n\n[superlink.e2e]\n'
                 f'address = "127.0.0.1:{control}"\ninsecure = true\n')
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []
    marker = f"FLWR_HOME={home}".encode()
    escaped = []

    def start(name, args):
        fh = open(logs / f"{name}.log", "w")
        procs.append(subprocess.Popen(args, env=flower_env, stdout=fh, stderr=subprocess.STDOUT,
                                      cwd=tmp_path, start_new_session=True))
        return procs[-1]

    try:
        link = start("superlink", [
            "flower-superlink", "--insecure", "--disable-runtime-dependency-installation",
            "--fleet-api-address", f"127.0.0.1:{fleet}",
            "--serverappio-api-address", f"127.0.0.1:{appio}",
            "--control-api-address", f"127.0.0.1:{control}"])
        _wait_listening(fleet, link)
        _wait_listening(control, link)
        for k in range(N_NODES):
            start(f"supernode{k}", [
                "flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{fleet}",
                "--clientappio-api-address", f"127.0.0.1:{free_ports[3 + k]}",
                "--node-config", f'data-path="{tmp_path / f"node{k}.npz"}"'])
        run = subprocess.run(["flwr", "run", app, "e2e", "--stream"], env=flower_env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=240)
        (logs / "flwr-run.log").write_text(run.stdout + run.stderr)
        assert run.returncode == 0, run.stdout + run.stderr
        end = time.monotonic() + 10
        while not (out / "history.json").exists() and time.monotonic() < end:
            time.sleep(0.5)
        assert (out / "history.json").exists(), "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.iterdir()))
    finally:
        # each process leads its own group, which also holds the apps it started
        # (flwr-serverapp, flwr-clientapp): stop whole groups so nothing outlives the test
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        # anything that left those groups (a new session) would survive them: stop it by pid
        escaped = [e for e in _carrying(marker) if e[1] not in {p.pid for p in procs}]
        for pid, _, _ in escaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not escaped, f"Flower processes outside the test's process groups: {escaped}"

    history = json.loads((out / "history.json").read_text())
    assert history["nodes"] == N_NODES
    rounds = history["history"]
    assert len(rounds) == 3 and all(r["accepted"] == N_NODES for r in rounds)
    assert all(r["applied"] and r["unmasked_pairs"] == 0 for r in rounds)
    # what the server received: masked vectors only, whose sum is the sum of the true updates
    received = np.load(out / "received.npz")
    for r in range(3):
        Y_r = received[f"r{r}_item_factors"]
        masked = [received[f"r{r}_c{c}_update"] for c in range(N_NODES)]
        plain = [_plain_update(tmp_path / f"node{k}.npz", Y_r, 6) for k in range(N_NODES)]
        assert all(m.dtype == np.uint64 and m.shape == plain[0].shape for m in masked)
        wire = np.zeros_like(masked[0])
        for m in masked:
            wire += m  # modulo 2**64, as the server sums
        np.testing.assert_allclose(secagg.decode(wire), np.sum(plain, axis=0),
                                   rtol=1e-4, atol=1e-4)
        for m in masked:
            assert min(np.abs(secagg.decode(m) - p).max() for p in plain) > 1e3
    assert rounds[-1]["train_loss"] < rounds[0]["train_loss"]
    state = np.load(out / "item_state.npz")
    Y = state["item_factors"]
    assert Y.shape == (data.n_items, 6) and np.isfinite(Y).all()
    X = implicit_solve_users([(t, np.ones(len(t), np.float32)) for t in train], Y, 0.1, 4.0)
    model_hr = _hit_rate(X @ Y.T, train, test)
    pop = np.bincount(np.concatenate(train), minlength=data.n_items).astype(np.float64)
    pop_hr = _hit_rate(np.tile(pop, (data.n_users, 1)), train, test)
    assert model_hr > pop_hr + 0.1, (model_hr, pop_hr)
