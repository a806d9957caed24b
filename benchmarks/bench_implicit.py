"""ImplicitALS and BPR against implicit 0.7 (``AlternatingLeastSquares``,
``BayesianPersonalizedRanking``), side by side in one run.

Quality (``quality``): MovieLens 100K, temporal split — per user, ratings sorted by (timestamp,
item id), the last floor(n/5) are test; every rating is an interaction (value 1); top-10 lists
exclude the user's training items; NDCG@10 averaged over users with test items (gain
1/log2(rank+1), ideal DCG over min(10, |test|) positions). Hyperparameters are searched for each
library on a validation split cut from the training part the same way (the last floor(n/5) of
each user's training interactions), then both refit on the whole training part and are scored
on the test part. Fit time: the fastest of three fits with the chosen settings.

Scale (``scale``): the seeded synthetic log of ``benchmarks/synthetic.py`` (100,000 users x
20,000 items, power-law item popularity) at the given sizes; each (library, model) fit runs in
its own subprocess, which loads the pairs, builds its library's input (chuchun ``Interactions``,
implicit a user x item CSR), and fits; peak RSS is the subprocess's ``VmHWM``.

Both libraries run with 2 threads (``n_threads=2`` / ``num_threads=2``) and BLAS limited to
one thread (threadpoolctl).

Usage::

    PYTHONPATH=src python benchmarks/bench_implicit.py quality
    PYTHONPATH=src nice -n 5 python benchmarks/bench_implicit.py scale --sizes 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The machine is shared: spinning OpenMP workers (libgomp's default) steal the cores from the
# busy ones. Both libraries run on OpenMP (numba's omp layer, implicit's Cython prange), so both
# get passive waiting; set before either library loads its runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "datasets" / "ml-100k"
RESULTS = HERE / "results" / "implicit.md"
THREADS = 2
K = 10

ALS_ALPHAS = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0]
BPR_GRID = [(lr, reg) for lr in (0.005, 0.01, 0.05, 0.1) for reg in (0.001, 0.01, 0.1)]


# -- data ------------------------------------------------------------------------------------
def load_ml100k() -> np.ndarray:
    raw = np.loadtxt(DATA / "u.data", dtype=np.int64)
    return raw[:, [0, 1, 3]]  # user, item, timestamp


def temporal_split(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks: per user, sort by (timestamp, item); last floor(n/5) test."""
    order = np.lexsort((rows[:, 1], rows[:, 2], rows[:, 0]))
    users = rows[order, 0]
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    pos = np.arange(len(users)) - np.repeat(starts, counts)
    n_test = np.repeat(counts // 5, counts)
    is_test = pos >= np.repeat(counts, counts) - n_test
    test = np.zeros(len(rows), dtype=bool)
    test[order[is_test]] = True
    return ~test, test


def ndcg_at_k(top: np.ndarray, relevant: list[set[int]], k: int = K) -> float:
    total, n = 0.0, 0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    for row, rel in zip(top, relevant, strict=True):
        if not rel:
            continue
        hits = np.array([int(x) in rel for x in row[:k]], dtype=float)
        idcg = disc[: min(k, len(rel))].sum()
        total += float(hits @ disc[: len(hits)]) / idcg
        n += 1
    return total / max(n, 1)


def top_k_from_scores(scores: np.ndarray, seen: sp.csr_matrix, k: int = K) -> np.ndarray:
    scores = scores.copy()
    for r in range(scores.shape[0]):
        scores[r, seen.indices[seen.indptr[r] : seen.indptr[r + 1]]] = -np.inf
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    return np.take_along_axis(part, np.argsort(-vals, axis=1, kind="stable"), axis=1)


class Problem:
    """A train part (as chuchun Interactions and as a CSR in the same index space) + targets."""

    def __init__(self, train_rows: np.ndarray, test_rows: np.ndarray) -> None:
        from chuchun.data import Interactions

        self.data = Interactions.from_arrays(train_rows[:, 0], train_rows[:, 1])
        self.csr = self.data.csr
        # implicit's Cython wants one index dtype for indptr and indices (scipy's own default)
        self.csr_implicit = sp.csr_matrix(
            (self.csr.data, self.csr.indices, self.csr.indptr.astype(np.int32)),
            shape=self.csr.shape,
        )
        u = self.data.users.index(test_rows[:, 0])
        i = self.data.items.index(test_rows[:, 1])
        self.relevant: list[set[int]] = [set() for _ in range(self.data.n_users)]
        for uu, ii in zip(u, i, strict=True):
            if uu >= 0:
                # a test item unknown to training can never be recommended: it stays a miss
                self.relevant[uu].add(int(ii) if ii >= 0 else -1 - len(self.relevant[uu]))
        self.users = np.flatnonzero([len(r) > 0 for r in self.relevant])

    def ndcg_chuchun(self, model) -> float:
        recs = model.recommend(self.data.users.ids[self.users], k=K)
        return ndcg_at_k(recs.item_idx, [self.relevant[u] for u in self.users])

    def ndcg_factors(self, user_factors: np.ndarray, item_factors: np.ndarray) -> float:
        scores = user_factors[self.users] @ item_factors.T
        top = top_k_from_scores(scores, self.csr[self.users])
        return ndcg_at_k(top, [self.relevant[u] for u in self.users])


# -- models ----------------------------------------------------------------------------------
def chuchun_model(kind: str, bpr_epochs: int = 100, **params):
    from chuchun.models import BPR, ImplicitALS

    if kind == "als":
        return ImplicitALS(n_factors=64, n_epochs=15, n_threads=THREADS, random_state=0,
                           **params)
    return BPR(n_factors=64, n_epochs=bpr_epochs, n_threads=THREADS, random_state=0, **params)


def implicit_model(kind: str, bpr_epochs: int = 100, **params):
    if kind == "als":
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(factors=64, iterations=15, num_threads=THREADS,
                                       random_state=0, **params)
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return BayesianPersonalizedRanking(factors=64, iterations=bpr_epochs, num_threads=THREADS,
                                       random_state=0, **params)


def fit_chuchun(kind: str, problem: Problem, **params) -> tuple[float, float]:
    model = chuchun_model(kind, **params)
    t0 = time.perf_counter()
    model.fit(problem.data)
    return time.perf_counter() - t0, problem.ndcg_chuchun(model)


def fit_implicit(kind: str, problem: Problem, **params) -> tuple[float, float]:
    model = implicit_model(kind, **params)
    t0 = time.perf_counter()
    model.fit(problem.csr_implicit, show_progress=False)
    elapsed = time.perf_counter() - t0
    return elapsed, problem.ndcg_factors(np.asarray(model.user_factors),
                                         np.asarray(model.item_factors))


# each library's best setting in the validation search of the full run (results/implicit.md)
RECORDED = {
    ("als", "chuchun"): {"alpha": 0.5}, ("als", "implicit"): {"alpha": 5.0},
    ("bpr", "chuchun"): {"learning_rate": 0.05, "regularization": 0.01},
    ("bpr", "implicit"): {"learning_rate": 0.005, "regularization": 0.001},
}


def quality(out_lines: list[str], recorded: bool = False, repeat: int = 3) -> None:
    rows = load_ml100k()
    train, test = temporal_split(rows)
    sub, val = temporal_split(rows[train])
    validation = Problem(rows[train][sub], rows[train][val])
    final = Problem(rows[train], rows[test])

    # warm-up: compile / load everything once so timings measure fitting only
    fit_chuchun("als", validation, alpha=1.0)
    fit_chuchun("bpr", validation)
    fit_implicit("als", validation)
    fit_implicit("bpr", validation)

    grids = {
        "als": [{"alpha": a} for a in ALS_ALPHAS],
        "bpr": [{"learning_rate": lr, "regularization": reg} for lr, reg in BPR_GRID],
    }
    names = {
        "als": ("chuchun ImplicitALS", "implicit AlternatingLeastSquares"),
        "bpr": ("chuchun BPR", "implicit BayesianPersonalizedRanking"),
    }
    out_lines += [
        "## MovieLens 100K, temporal split, NDCG@10",
        "",
        "The split is the one `chuchun.data.splits.user_holdout(order=\"time\")` makes "
        "(checked equal pair for pair): 19,633 test pairs, 87 of them with an item unseen in "
        "training (a miss for both libraries).",
        "",
        "Validation NDCG@10 of each setting (validation = last floor(n/5) of each user's "
        "training interactions; fitted on the rest):",
        "",
    ]
    best: dict[tuple[str, str], dict] = {}
    if recorded:
        best = dict(RECORDED)
        out_lines[-3:] = [
            "No search in this run (`--recorded`): each library uses the best setting of the "
            "validation search recorded in `implicit.md`.", "",
        ]
    for kind in ("als", "bpr") if not recorded else ():
        head = "alpha" if kind == "als" else "learning_rate, regularization"
        out_lines += [f"| {kind} {head} | chuchun | implicit |", "|---|---|---|"]
        scores = {"chuchun": [], "implicit": []}
        for params in grids[kind]:
            c = fit_chuchun(kind, validation, **params)[1]
            i = fit_implicit(kind, validation, **params)[1]
            scores["chuchun"].append(c)
            scores["implicit"].append(i)
            label = ", ".join(f"{v:g}" for v in params.values())
            out_lines.append(f"| {label} | {c:.4f} | {i:.4f} |")
            print(kind, params, f"chuchun {c:.4f} implicit {i:.4f}", flush=True)
        for lib in ("chuchun", "implicit"):
            best[(kind, lib)] = grids[kind][int(np.argmax(scores[lib]))]
        out_lines.append("")

    out_lines += [
        "Test (refit on the whole training part with each library's best setting; fit time = "
        f"fastest of {repeat} fit{'s' if repeat > 1 else ''}, 2 threads each):",
        "",
        "| model | setting | NDCG@10 | fit time (s) | time ratio (chuchun / implicit) |",
        "|---|---|---|---|---|",
    ]
    for kind in ("als", "bpr"):
        res = {}
        for lib, fit in (("chuchun", fit_chuchun), ("implicit", fit_implicit)):
            runs = [fit(kind, final, **best[(kind, lib)]) for _ in range(max(1, repeat))]
            res[lib] = (min(r[0] for r in runs), runs[0][1])
        ratio = res["chuchun"][0] / res["implicit"][0]
        for j, lib in enumerate(("chuchun", "implicit")):
            setting = ", ".join(f"{k}={v:g}" for k, v in best[(kind, lib)].items())
            r = f"{ratio:.2f}" if lib == "chuchun" else ""
            out_lines.append(
                f"| {names[kind][j]} | {setting} | {res[lib][1]:.4f} | {res[lib][0]:.3f} | {r} |"
            )
            print(names[kind][j], setting, res[lib], flush=True)
    out_lines.append("")


# -- scale -----------------------------------------------------------------------------------
def _vm_hwm_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # Linux: reset the peak-RSS watermark VmHWM to the current RSS
        return True
    except OSError:
        return False


def worker(lib: str, kind: str, path: str, bpr_epochs: str = "100") -> None:
    """Subprocess body: load pairs, build the library's input, fit, print JSON."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        if lib == "chuchun":
            from chuchun.data import Interactions
        else:
            import implicit.cpu.als  # noqa: F401
            import implicit.cpu.bpr  # noqa: F401
        z = np.load(path)
        user, item = z["user"], z["item"]
        n_users, n_items = int(z["n_users"]), int(z["n_items"])
        del z
        _warm_worker(lib, kind)
        t0 = time.perf_counter()
        params = {"alpha": 10.0} if kind == "als" else {}
        # both libraries get the same user x item CSR built the same way from the pairs
        csr = sp.csr_matrix(
            (np.ones(len(user), dtype=np.float32), (user, item)), shape=(n_users, n_items)
        )
        del user, item
        if lib == "chuchun":
            data = Interactions.from_sparse(csr)
            del csr
            model = chuchun_model(kind, int(bpr_epochs), **params)
        else:
            model = implicit_model(kind, int(bpr_epochs), **params)
        build = time.perf_counter() - t0
        # VmHWM, not ru_maxrss: the latter can carry the parent's peak over fork + exec
        peak_build = _vm_hwm_mib()
        rss_before = _vm_rss_mib()
        reset = _reset_hwm()
        t0 = time.perf_counter()
        c0 = time.process_time()
        if lib == "chuchun":
            model.fit(data)
        else:
            model.fit(csr, show_progress=False)
        fit = time.perf_counter() - t0
        fit_cpu = time.process_time() - c0
    peak_fit = _vm_hwm_mib() if reset else float("nan")
    peak = max(peak_build, _vm_hwm_mib())
    print(json.dumps({"fit_s": fit, "fit_cpu_s": fit_cpu, "build_s": build, "peak_rss_mib": peak,
                      "rss_before_fit_mib": rss_before, "peak_fit_mib": peak_fit,
                      "fit_increment_mib": peak_fit - rss_before}))


def _vm_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _warm_csr() -> sp.csr_matrix:
    """A small random matrix large enough that the fits take their multi-threaded paths."""
    rng = np.random.default_rng(0)
    m = sp.csr_matrix((np.ones(20_000, dtype=np.float32),
                       (rng.integers(0, 2_000, 20_000), rng.integers(0, 300, 20_000))),
                      shape=(2_000, 300))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def warm_compile() -> None:
    """Compile chuchun's kernels once (numba cache) so scale runs time fitting only."""
    from chuchun.data import Interactions

    d = Interactions.from_sparse(_warm_csr())
    for kind in ("als", "bpr"):
        for n_threads in (1, 2):
            chuchun_model(kind, 2).set_params(n_factors=64, n_threads=n_threads).fit(d)


def _warm_worker(lib: str, kind: str) -> None:
    """Load the kernels in this process (the issue compares fits with kernels warmed): a
    two-epoch fit on a small matrix through the same multi-threaded path as the timed fit."""
    small = _warm_csr()
    if lib == "chuchun":
        from chuchun.data import Interactions

        chuchun_model(kind, 2).fit(Interactions.from_sparse(small))
    else:
        implicit_model(kind, 2).fit(small, show_progress=False)


SMALL_LOG = (10_000, 17_000, 75_000)  # users, items, interactions


def scale(sizes: list[int], out_lines: list[str], models: tuple[str, ...] = ("als", "bpr"),
          small_log: bool = False, pairs_dir: str | None = None, bpr_epochs: int = 100) -> None:
    sys.path.insert(0, str(HERE))
    from synthetic import generate

    warm_compile()
    out_lines += [
        "## Scale: synthetic 100,000 users x 20,000 items, power-law popularity",
        "",
        "ImplicitALS/AlternatingLeastSquares: 64 factors, 15 iterations, alpha 10 (CG, 3 steps); "
        f"BPR/BayesianPersonalizedRanking: 64 factors, {bpr_epochs} epochs, library defaults "
        "otherwise "
        "(chuchun lr 0.05, reg 0.01; implicit lr 0.01, reg 0.01). Each fit in its own "
        "subprocess; peak RSS covers loading the pairs, building the input and fitting. "
        "Input: both libraries get the same user x item CSR built by scipy from the pairs "
        "(chuchun wraps it with `Interactions.from_sparse`, no copy).",
        "",
        "CPU time ratio: the fit's process CPU time (both threads), chuchun / implicit; less "
        "sensitive than wall time to other jobs taking the cores. "
        "Peak RSS: whole subprocess (imports, loading the pairs, building the input, fitting). "
        "Fit increment: the peak during `fit` (the kernel's VmHWM watermark is reset just "
        "before `fit`) minus the RSS just before `fit`, i.e. the memory fitting itself adds "
        "on top of the imported libraries and the built input.",
        "",
        "| interactions | model | chuchun fit (s) | implicit fit (s) | time ratio | "
        "chuchun peak RSS (MiB) | implicit peak RSS (MiB) | ratio | "
        "chuchun fit increment (MiB) | implicit fit increment (MiB) | ratio | "
        "CPU time ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    shapes = [(100_000, 20_000, n) for n in sizes] + ([SMALL_LOG] if small_log else [])
    if small_log:
        out_lines[-2:-2] = [
            f"The small log: {SMALL_LOG[2]:,} interactions of {SMALL_LOG[0]:,} users over "
            f"{SMALL_LOG[1]:,} items, same generator (rows marked *small log*).", "",
        ]
    with tempfile.TemporaryDirectory() as tmp:
        for n_users, n_items, n in shapes:
            # --pairs keeps the generated logs (generating 10M pairs takes minutes)
            path = os.path.join(pairs_dir or tmp, f"synthetic_{n_users}_{n_items}_{n}.npz")
            if not os.path.exists(path):
                u, i = generate(n_users, n_items, n, seed=0)
                np.savez(path, user=u, item=i, n_users=n_users, n_items=n_items)
                del u, i
            for kind, label in (("als", "ImplicitALS"), ("bpr", "BPR")):
                if kind not in models:
                    continue
                res = {}
                for lib in ("chuchun", "implicit"):
                    proc = subprocess.run(
                        [sys.executable, __file__, "_worker", lib, kind, path, str(bpr_epochs)],
                        capture_output=True, text=True, check=True,
                        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                    )
                    res[lib] = json.loads(proc.stdout.strip().splitlines()[-1])
                    print(n, kind, lib, res[lib], flush=True)
                c, i = res["chuchun"], res["implicit"]
                size = f"{n:,}" if n_items == 20_000 else f"{n:,} (small log)"
                out_lines.append(
                    f"| {size} | {label} | {c['fit_s']:.2f} | {i['fit_s']:.2f} | "
                    f"{c['fit_s'] / i['fit_s']:.2f} | {c['peak_rss_mib']:.0f} | "
                    f"{i['peak_rss_mib']:.0f} | {c['peak_rss_mib'] / i['peak_rss_mib']:.2f} | "
                    f"{c['fit_increment_mib']:.0f} | {i['fit_increment_mib']:.0f} | "
                    f"{c['fit_increment_mib'] / i['fit_increment_mib']:.2f} | "
                    f"{c['fit_cpu_s'] / i['fit_cpu_s']:.2f} |"
                )
    out_lines.append("")


def _loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def header(command: str) -> list[str]:
    import implicit

    return [
        "# ImplicitALS and BPR vs implicit",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores, load average at the start {_loadavg()}, "
        f"{platform.machine()}, Python {platform.python_version()}, implicit "
        f"{implicit.__version__}, numpy {np.__version__}. Both libraries: 2 threads, BLAS "
        "limited to 1 thread, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY')} (both run their threads on OpenMP).",
        "",
    ]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser(description="ImplicitALS and BPR vs implicit")
    ap.add_argument("part", choices=("quality", "scale", "all"))
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--models", nargs="+", choices=("als", "bpr"), default=["als", "bpr"],
                    help="models of the scale part")
    ap.add_argument("--small-log", action="store_true",
                    help="scale part: add the small log (75,000 interactions, 17,000 items)")
    ap.add_argument("--pairs", default=None,
                    help="scale part: directory keeping the generated logs between runs")
    ap.add_argument("--bpr-epochs", type=int, default=100,
                    help="scale part: BPR epochs (both libraries)")
    ap.add_argument("--recorded", action="store_true",
                    help="quality part: skip the search, use the recorded best settings")
    ap.add_argument("--repeat", type=int, default=3,
                    help="quality part: fits per library and model (the fastest is reported)")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    command = "PYTHONPATH=src python benchmarks/bench_implicit.py " + " ".join(sys.argv[1:])
    lines = header(command)
    with threadpool_limits(1):
        if args.part in ("quality", "all"):
            quality(lines, args.recorded, args.repeat)
        if args.part in ("scale", "all"):
            scale(args.sizes, lines, tuple(args.models), args.small_log, args.pairs,
                  args.bpr_epochs)
    lines += [f"Load average at the end: {_loadavg()}.", ""]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
