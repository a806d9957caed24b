"""Profile of FunkSVD's two-thread (DSGD) fit: OpenMP's wait policy, a competing process, and
what bounds the fit.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/profile_dsgd.py [--repeat 3] [--no-busy]
        [--out benchmarks/results/mf_speed_dsgd.md]

Each configuration runs in its own subprocess, because libgomp reads its wait policy once, when
it is loaded:

* ``passive``: chuchun's default (``chuchun.kernels`` has numba start its pool with
  ``OMP_WAIT_POLICY=PASSIVE``);
* ``spin``: ``GOMP_SPINCOUNT=300000``, which chuchun leaves alone: libgomp's own default when
  ``OMP_WAIT_POLICY`` is unset (spin 300,000 times, then sleep), i.e. the behaviour before;

each alone on the machine and beside one busy process (a Python loop, started before and
stopped after the measurement), which stands for any other job holding a core.

In each subprocess: FunkSVD with Surprise SVD's defaults (100 factors, 20 epochs) on MovieLens
100K u1..u5, one and two threads interleaved, median wall and CPU seconds of ``fit`` over
``--repeat`` fits; then, on u1, the kernel alone (``sgd_epoch`` for 20 epochs on the visiting
order a fit uses, no set-up), which is the part of the fit that threads can divide.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = [  # (label, extra environment, competing busy process)
    ("passive (default)", {}, False),
    ("spin (before)", {"GOMP_SPINCOUNT": "300000"}, False),
    ("passive (default), one busy process", {}, True),
    ("spin (before), one busy process", {"GOMP_SPINCOUNT": "300000"}, True),
]


def worker(repeat: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import numpy as np
    from bench_speed_mf import SURPRISE_SVD, ml100k_fold, to_interactions, warm_up

    from chuchun._random import check_random_state
    from chuchun.kernels.mf import numba_threads, sgd_epoch
    from chuchun.models import FunkSVD
    from chuchun.models.mf import _strata

    warm_up()
    folds: dict[str, Any] = {}
    for f in range(1, 6):
        data = to_interactions(ml100k_fold(f)[0], (1.0, 5.0))
        walls: dict[int, list[float]] = {1: [], 2: []}
        cpus: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(repeat):
            for t in (1, 2):
                w, c = time.perf_counter(), time.process_time()
                FunkSVD(**SURPRISE_SVD, n_threads=t).fit(data)
                walls[t].append(time.perf_counter() - w)
                cpus[t].append(time.process_time() - c)
        folds[f"u{f}"] = {t: (statistics.median(walls[t]), statistics.median(cpus[t]))
                          for t in (1, 2)}
    data = to_interactions(ml100k_fold(1)[0], (1.0, 5.0))
    u, i, r = data.user_idx, data.item_idx, data.values
    kernel: dict[int, tuple[float, float]] = {}
    for t in (1, 2):
        rng = check_random_state(0)
        rows, ptr, ug, ig = _strata(rng, u, i, data.n_users, data.n_items, t)
        users, items = np.argsort(ug, kind="stable"), np.argsort(ig, kind="stable")
        upos, ipos = np.empty_like(users), np.empty_like(items)
        upos[users], ipos[items] = np.arange(len(users)), np.arange(len(items))
        uo, io = upos[u[rows]].astype(np.int32), ipos[i[rows]].astype(np.int32)
        ro, ident = r[rows], np.arange(len(r), dtype=np.int64)
        runs_w, runs_c = [], []
        for _ in range(repeat):
            P = (rng.standard_normal((data.n_users, 100), dtype=np.float32) * 0.1)
            Q = (rng.standard_normal((data.n_items, 100), dtype=np.float32) * 0.1)
            bu = np.zeros(data.n_users, np.float32)
            bi = np.zeros(data.n_items, np.float32)
            sse = np.zeros(t)
            with numba_threads(t):
                w, c = time.perf_counter(), time.process_time()
                for _ in range(20):
                    sgd_epoch(uo, io, ro, ident, ptr, t, 3.5, bu, bi, P, Q, 0.005, 0.005, 0.02,
                              0.02, True, sse)
                runs_w.append(time.perf_counter() - w)
                runs_c.append(time.process_time() - c)
        kernel[t] = (statistics.median(runs_w), statistics.median(runs_c))
    return {"folds": folds, "kernel": kernel,
            "blocks": [int(x) for x in np.diff(_strata(check_random_state(0), u, i, data.n_users,
                                                              data.n_items, 2)[1])]}


def run_config(env_extra: dict[str, str], busy: bool, repeat: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    spinner = None
    if busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", "--repeat", str(repeat)],
                             cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "mf_speed_dsgd.md"))
    ap.add_argument("--no-busy", action="store_true",
                    help="leave out the configurations beside a busy process")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.repeat)))
        return
    start = loadavg()
    results = {}
    for label, env_extra, busy in CONFIGS:
        if busy and args.no_busy:
            continue
        results[label] = run_config(env_extra, busy, args.repeat)
        print(label, json.dumps(results[label]), file=sys.stderr, flush=True)
    lines = [
        "# FunkSVD two-thread (DSGD) fit: wait policy, a competing process, bounds",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/profile_dsgd.py --repeat {args.repeat}` "
        "(run from the repository root). Date: "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Load average (1, 5, 15 min) "
        f"at the start: {start}; at the end: {loadavg()}. 2-core machine.",
        "",
        "FunkSVD with Surprise SVD's defaults (100 factors, 20 epochs) on MovieLens 100K, "
        f"median of {args.repeat} interleaved fits per fold; wall / CPU seconds of `fit` "
        "(CPU: all threads of the process). \"passive\" is chuchun's default wait policy, "
        "\"spin\" libgomp's default (`GOMP_SPINCOUNT=300000`), the behaviour before. "
        "\"one busy process\": a Python loop holds one core during the run.",
        "",
        "| configuration | threads | " + " | ".join(f"u{f}" for f in range(1, 6))
        + " | sum of the five fits |",
        "|---|---|" + "---|" * 6,
    ]
    for label, res in results.items():
        for t in ("1", "2"):
            cells = [f"{res['folds'][f'u{f}'][t][0]:.3f} / {res['folds'][f'u{f}'][t][1]:.3f}"
                     for f in range(1, 6)]
            wall = sum(res["folds"][f"u{f}"][t][0] for f in range(1, 6))
            cpu = sum(res["folds"][f"u{f}"][t][1] for f in range(1, 6))
            lines.append(f"| {label} | {t} | " + " | ".join(cells)
                         + f" | {wall:.3f} / {cpu:.3f} |")
    lines += [
        "",
        "The kernel alone on u1 (`sgd_epoch`, 20 epochs on the visiting order of a fit, no "
        "set-up; wall / CPU seconds) against the whole fit: the difference is the fit's serial "
        "set-up (factor initialisation, visiting order, renumbering, per-epoch bookkeeping).",
        "",
        "| configuration | kernel, 1 thread | kernel, 2 threads | fit u1, 1 thread | "
        "fit u1, 2 threads |",
        "|---|---|---|---|---|",
    ]
    for label, res in results.items():
        k1, k2 = res["kernel"]["1"], res["kernel"]["2"]
        f1, f2 = res["folds"]["u1"]["1"], res["folds"]["u1"]["2"]
        lines.append(f"| {label} | {k1[0]:.3f} / {k1[1]:.3f} | {k2[0]:.3f} / {k2[1]:.3f} | "
                     f"{f1[0]:.3f} / {f1[1]:.3f} | {f2[0]:.3f} / {f2[1]:.3f} |")
    blocks = next(iter(results.values()))["blocks"]
    lines += ["", f"Ratings per DSGD block on u1 (2 x 2 blocks, seed 0): {blocks}.", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
