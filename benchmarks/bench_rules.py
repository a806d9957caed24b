"""Association rules: chuchun against mlxtend, side by side in one run.

Usage::

    PYTHONPATH=src python benchmarks/bench_rules.py [--datasets ../shared/datasets] \
        [--output benchmarks/results/rules.md] [--quick]

For every (data set, min_support) case the parent process starts fresh subprocesses:

* ``check``: mines with chuchun (FP-growth and Apriori) and mlxtend ``fpgrowth``, asserts
  identical itemsets and support counts, then identical rules and metrics at min_confidence
  0.1 against ``mlxtend.frequent_patterns.association_rules``;
* ``time``: one library, a warm-up on two tiny baskets (loads numba's cached machine code),
  then the best of a few timed runs from the same Python list of baskets. chuchun's time
  includes encoding the baskets (``Transactions.from_baskets``) and the canonical ordering
  of its output; mlxtend's includes ``TransactionEncoder`` and building the one-hot DataFrame;
* ``memory``: one library, one run, peak resident memory above the resident memory just
  before the call, read from Linux's ``VmHWM`` after resetting it (``/proc/self/clear_refs``)
  and after ``malloc_trim(0)`` returned freed heap pages to the OS; this counts every
  allocation (numba, NumPy, pandas, Python objects).

It then evaluates the rules recommender on MovieLens 100K with a temporal split and writes a
Markdown table.

``--quick`` (``run_all.py --quick``) runs the cases in :data:`QUICK_CASES` only, times one run
per library and leaves out the recommender evaluation: a check of the miners against mlxtend
before a full run.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATASETS = Path(os.environ.get("CHUCHUN_SHARED", ROOT.parent / "shared")) / "datasets"

CASES: list[tuple[str, float, bool]] = [
    # (data set, min_support, compare rules)
    ("groceries", 0.01, True),
    ("groceries", 0.005, True),
    ("groceries", 0.001, True),
    ("ml-100k", 0.10, True),
    ("ml-100k", 0.05, True),
    ("groceries", 0.0005, False),
]
QUICK_CASES = [("ml-100k", 0.10, True)]
MIN_CONFIDENCE = 0.1
# rule comparison on ML-100K at 0.05 is limited to itemsets of at most this many items: the full
# set holds ~9.8 million rules, beyond what mlxtend's association_rules finishes in minutes
RULE_CHECK_MAX_LEN = {("ml-100k", 0.05): 3}


# ---- data -----------------------------------------------------------------------------------


def load_baskets(name: str, datasets: Path) -> list[list[Any]]:
    if name == "groceries":
        from chuchun.rules import read_baskets

        return read_baskets(datasets / "groceries" / "groceries.csv").baskets()
    if name == "ml-100k":
        frame = _ml100k(datasets)
        liked = frame[frame["rating"] >= 4]
        return [list(items) for _, items in liked.groupby("user", sort=True)["item"]]
    raise SystemExit(f"unknown data set {name!r}")


def _ml100k(datasets: Path) -> pd.DataFrame:
    return pd.read_csv(
        datasets / "ml-100k" / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"]
    )


# ---- the two libraries ------------------------------------------------------------------------


def mine_chuchun(baskets: list[list[Any]], min_support: float, algorithm: str = "fpgrowth") -> Any:
    from chuchun.rules import Apriori, FPGrowth

    miner = FPGrowth if algorithm == "fpgrowth" else Apriori
    return miner(min_support=min_support).mine(baskets)


def mine_mlxtend(baskets: list[list[Any]], min_support: float) -> pd.DataFrame:
    from mlxtend.frequent_patterns import fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    encoder = TransactionEncoder()
    onehot = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)
    return fpgrowth(onehot, min_support=min_support, use_colnames=True)


def run_library(library: str, baskets: list[list[Any]], min_support: float) -> int:
    if library == "mlxtend":
        return len(mine_mlxtend(baskets, min_support))
    return len(
        mine_chuchun(
            baskets, min_support, "apriori" if library == "chuchun-apriori" else "fpgrowth"
        )
    )


# ---- subprocess workers -------------------------------------------------------------------------


def worker_time(library: str, dataset: str, min_support: float, datasets: Path,
                max_runs: int = 3) -> dict[str, Any]:
    baskets = load_baskets(dataset, datasets)
    run_library(library, [["a", "b"], ["a"]], 0.5)  # warm-up
    times: list[float] = []
    n = 0
    while True:
        start = time.perf_counter()
        n = run_library(library, baskets, min_support)
        times.append(time.perf_counter() - start)
        # best of 3, but one run is enough when a run takes long (2 shared cores)
        if len(times) >= max_runs or sum(times) > 10:
            break
    return {"seconds": min(times), "runs": len(times), "n_itemsets": n}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker_memory(library: str, dataset: str, min_support: float, datasets: Path) -> dict[str, Any]:
    baskets = load_baskets(dataset, datasets)
    run_library(library, [["a", "b"], ["a"]], 0.5)  # warm-up: imports, cached kernels
    gc.collect()
    # hand freed heap pages back to the OS, so the call's allocations show up as new pages
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
        fh.write("5")
    n = run_library(library, baskets, min_support)
    peak = _status_kib("VmHWM")
    return {"peak_mib": (peak - before) / 1024, "n_itemsets": n}


def worker_check(
    dataset: str, min_support: float, compare_rules: bool, datasets: Path
) -> dict[str, Any]:
    from mlxtend.frequent_patterns import association_rules

    from chuchun.rules import FrequentItemsets

    baskets = load_baskets(dataset, datasets)
    n = len(baskets)
    ref = mine_mlxtend(baskets, min_support)
    ref_counts = {k: round(s * n) for k, s in zip(ref["itemsets"], ref["support"])}
    result: dict[str, Any] = {"n_transactions": n, "n_itemsets": len(ref_counts)}
    fp = mine_chuchun(baskets, min_support, "fpgrowth")
    ap = mine_chuchun(baskets, min_support, "apriori")
    result["itemsets_equal"] = fp.to_dict() == ref_counts and ap.to_dict() == ref_counts
    if not compare_rules:
        return result
    max_len = RULE_CHECK_MAX_LEN.get((dataset, min_support))
    if max_len is not None:
        ref = ref[ref["itemsets"].map(len) <= max_len].reset_index(drop=True)
        keep = np.flatnonzero(fp.lengths <= max_len)
        from chuchun.kernels.rules import take_rows

        indptr, indices = take_rows(fp.indptr, fp.indices, keep)
        fp = FrequentItemsets(fp.items, indptr, indices, fp.counts[keep], n, fp.min_count)
        result["rule_check_max_len"] = max_len
    ref_rules = association_rules(
        ref, num_itemsets=n, metric="confidence", min_threshold=MIN_CONFIDENCE
    )
    ours = fp.rules(min_confidence=MIN_CONFIDENCE).to_pandas()
    result["n_rules"] = len(ours)
    keys = list(zip(ours["antecedent"], ours["consequent"]))
    ref_row = {
        key: r for r, key in enumerate(zip(ref_rules["antecedents"], ref_rules["consequents"]))
    }
    same_rules = len(keys) == len(ref_row) and set(keys) == set(ref_row)
    worst = 0.0
    if same_rules:
        aligned = ref_rules.iloc[[ref_row[key] for key in keys]]
        for ours_col, ref_col in [
            ("antecedent_support", "antecedent support"),
            ("consequent_support", "consequent support"),
            ("support", "support"),
            ("confidence", "confidence"),
            ("lift", "lift"),
            ("leverage", "leverage"),
            ("conviction", "conviction"),
        ]:
            a = ours[ours_col].to_numpy()
            b = aligned[ref_col].to_numpy()
            finite = np.isfinite(a) & np.isfinite(b)
            same_rules &= bool(np.array_equal(np.isinf(a), np.isinf(b)))
            diff = np.abs(a[finite] - b[finite]) / np.maximum(np.abs(b[finite]), 1e-300)
            worst = max(worst, float(diff.max(initial=0.0)))
    result["rules_equal"] = bool(same_rules and worst <= 1e-9)
    result["max_rel_diff"] = worst
    return result


def _spawn(args: list[str], datasets: str, timeout: float = 1800) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *args, "--datasets", datasets],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- recommender on ML-100K ---------------------------------------------------------------------


def evaluate_recommenders(datasets: Path, k: int = 10) -> list[dict[str, Any]]:
    """Precision@k and NDCG@k on the ML-100K temporal split, through ``chuchun.evaluate``."""
    from chuchun.data import Interactions
    from chuchun.data.splits import user_holdout
    from chuchun.evaluation import evaluate
    from chuchun.models import AssociationRules, ImplicitItemKNN, ItemKNN, Popularity

    frame = _ml100k(datasets)
    data = Interactions.from_arrays(
        frame["user"].to_numpy(),
        frame["item"].to_numpy(),
        frame["rating"].to_numpy(),
        frame["timestamp"].to_numpy(),
        rating_scale=(1.0, 5.0),
    )
    # per user: sort by (timestamp, item id), the last floor(n / 5) rows are test
    split = user_holdout(data, test_fraction=0.2, order="time")
    models: list[tuple[str, Any]] = [
        ("Popularity", Popularity()),
        ("ItemKNN (explicit, defaults)", ItemKNN()),
        ("ImplicitItemKNN (defaults)", ImplicitItemKNN()),
        (
            "AssociationRules(min_support=0.05, min_confidence=0.1, max_len=3, min_rating=4)",
            AssociationRules(min_support=0.05, min_confidence=0.1, max_len=3, min_rating=4.0),
        ),
    ]
    rows = []
    for name, model in models:
        result = evaluate(model, split, metrics=["precision", "ndcg"], k=k, relevance_threshold=4.0)
        rows.append(
            {
                "model": name,
                "precision": result[f"precision@{k}"],
                "ndcg": result[f"ndcg@{k}"],
                "seconds": result["fit_seconds"] + result["eval_seconds"],
                "n_users": result["n_users_evaluated"],
            }
        )
    return rows


# ---- report ---------------------------------------------------------------------------------------


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores visible (shared with other jobs), Linux {platform.release()}"


def _versions() -> str:
    import mlxtend
    import numba

    return (
        f"Python {platform.python_version()}, NumPy {np.__version__}, numba {numba.__version__}, "
        f"pandas {pd.__version__}, mlxtend {mlxtend.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "rules.md")
    parser.add_argument("--quick", action="store_true",
                        help="one case (ML-100K at 0.10), one timed run per library, "
                        "no recommender evaluation")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "time":
            out = worker_time(rest[0], rest[1], float(rest[2]), args.datasets,
                              int(rest[3]) if len(rest) > 3 else 3)
        elif kind == "memory":
            out = worker_memory(rest[0], rest[1], float(rest[2]), args.datasets)
        else:
            out = worker_check(rest[0], float(rest[1]), rest[2] == "1", args.datasets)
        print(json.dumps(out))
        return

    datasets = str(args.datasets)
    started = time.perf_counter()
    rows = []
    runs = "1" if args.quick else "3"
    for dataset, min_support, compare in QUICK_CASES if args.quick else CASES:
        ms = str(min_support)
        check = _spawn(["check", dataset, ms, "1" if compare else "0"], datasets)
        row: dict[str, Any] = {"dataset": dataset, "min_support": min_support, **check}
        for library in ("chuchun", "chuchun-apriori", "mlxtend"):
            timing = _spawn(["time", library, dataset, ms, runs], datasets)
            row[f"{library}_s"] = timing["seconds"]
            row[f"{library}_runs"] = timing["runs"]
        for library in ("chuchun", "mlxtend"):
            row[f"{library}_mib"] = _spawn(["memory", library, dataset, ms], datasets)["peak_mib"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    recommenders = [] if args.quick else evaluate_recommenders(args.datasets)
    report = render(rows, recommenders, time.perf_counter() - started, quick=args.quick)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".md.tmp")
    tmp.write_text(report)
    os.replace(tmp, args.output)
    print(report)


def render(rows: list[dict[str, Any]], recommenders: list[dict[str, Any]], seconds: float,
           quick: bool = False) -> str:
    lines = [
        "# Association rules: chuchun vs mlxtend",
        "",
        "Produced by (from the repository root):",
        "",
        "```",
        "PYTHONPATH=src python benchmarks/bench_rules.py" + (" --quick" if quick else ""),
        "```",
        "",
        f"Machine: {_machine()}. {_versions()}. Whole run: {seconds:.0f} s.",
        "",
        "Time: best of up to 3 runs after a warm-up, each library in its own fresh process, from",
        "the same Python list of baskets; chuchun includes encoding the baskets and sorting its",
        "output, mlxtend includes `TransactionEncoder` and building the one-hot DataFrame.",
        "Memory: peak resident set size above the resident size just before the call (Linux",
        "`VmHWM` after resetting it through `/proc/self/clear_refs`, and after `malloc_trim(0)`",
        "handed freed heap pages back), one fresh process per measurement, so numba, NumPy,",
        "pandas and Python allocations all count.",
        '"Same itemsets": identical itemsets and support counts from chuchun FPGrowth, chuchun',
        'Apriori and mlxtend `fpgrowth`; "same rules": identical rule sets and support, confidence,',
        f"lift, leverage, conviction (relative difference <= 1e-9) at min_confidence {MIN_CONFIDENCE}",
        "against `mlxtend.frequent_patterns.association_rules`.",
        "",
        (
            "| data | min_support | itemsets | same itemsets | rules (conf >= 0.1) | same rules "
            "| chuchun FPGrowth s | chuchun Apriori s | mlxtend s | speed-up | chuchun MiB "
            "| mlxtend MiB | memory ratio |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        data = "Groceries" if r["dataset"] == "groceries" else "ML-100K (rated >= 4)"
        if "rules_equal" in r:
            limit = r.get("rule_check_max_len")
            rules = f"{r['n_rules']:,}" + (f" (itemsets <= {limit} items)" if limit else "")
            same_rules = (
                "yes" if r["rules_equal"] else f"NO (max rel. diff {r['max_rel_diff']:.2g})"
            )
        else:
            rules, same_rules = "not compared", "-"
        lines.append(
            f"| {data} | {r['min_support']} | {r['n_itemsets']:,} | {'yes' if r['itemsets_equal'] else 'NO'} "
            f"| {rules} | {same_rules} | {r['chuchun_s']:.4f} | {r['chuchun-apriori_s']:.4f} "
            f"| {r['mlxtend_s']:.3f} | {r['mlxtend_s'] / r['chuchun_s']:.1f}x "
            f"| {r['chuchun_mib']:.1f} | {r['mlxtend_mib']:.1f} "
            f"| {r['chuchun_mib'] / max(r['mlxtend_mib'], 1e-9):.2f} |"
        )
    lines += [
        "",
        "Speed-up is mlxtend time / chuchun FPGrowth time; memory ratio is chuchun / mlxtend.",
        "",
    ]
    if quick:
        lines.append("Quick check: one timed run per library; the recommender evaluation is left out.")
        return "\n".join(lines) + "\n"
    lines += [
        "## Rules recommender on MovieLens 100K",
        "",
        'Temporal split (`chuchun.data.splits.user_holdout(order="time", test_fraction=0.2)`):',
        "per user, interactions sorted by (timestamp, item id); the last floor(n/5) are the test",
        "set. Scored with `chuchun.evaluate(..., k=10, relevance_threshold=4)`: positives are",
        "test ratings >= 4, users with no positive are skipped, lists exclude the user's training",
        "items. Hyperparameters are defaults or fixed in advance, not tuned on the test set.",
        "",
        "| model | users | precision@10 | NDCG@10 | fit + evaluate s |",
        "|---|---|---|---|---|",
    ]
    for r in recommenders:
        lines.append(
            f"| {r['model']} | {r['n_users']} | {r['precision']:.4f} | {r['ndcg']:.4f} | {r['seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
