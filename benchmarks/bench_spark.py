"""chuchun locally vs chuchun on Spark (``local[2]``): fit time, CPU time, peak memory, the
end-to-end wait, and the equivalence checks on MovieLens 100K and Groceries.

Scale part. Each measurement runs in a fresh subprocess (its own session, so it can be stopped
as a whole) on the same synthetic implicit log (``benchmarks/synthetic.py``) written once to
Parquet. For every run the parent records

- wall seconds of the measured work (the Spark session start, i.e. the JVM launch, is timed
  apart and reported beside it);
- CPU seconds of the whole process tree over the same span: user + system time of every live
  process (the Python driver, the JVM, Spark's Python workers) plus the time of the children
  they have reaped, read from ``/proc`` (psutil) before and after, so work that no longer waits
  for a core is counted the same on an idle and on a loaded machine;
- peak resident memory of the process tree (the JVM included), sampled every 0.1 s;
- the 1-minute load average, sampled every second: mean and maximum over the run.

Two workloads per size:

fit
    ImplicitALS (32 factors, 5 sweeps) on data already in memory (local: the CSR; Spark: the
    cached DataFrame), timing the fit alone;
e2e
    what a user waits for: read the Parquet file, split (each user's last 10% by position
    held out), fit, evaluate precision/recall/NDCG@10 on the held-out rows, and export the
    model as a chuchun artifact.

The numba kernels are compiled once (cached on disk) before the first timed run, as they are
for any installed copy after its first use. A run that exceeds ``--timeout`` is stopped and
reported as such.

Equivalence part (one Spark session):

- MovieLens 100K u1..u5: RMSE of explicit ALS through chuchun on Spark, MLlib ALS called
  directly with the mapped parameters, and chuchun's local ALS with the same hyperparameters;
- Groceries: Spark FP-growth itemsets and rules (all consequent sizes) against chuchun's local
  miner, compared exactly;
- MovieLens 100K (all of ``u.data``): the exact distributed top-k item cosine against chuchun's
  local ``ImplicitItemKNN``.

Usage::

    python benchmarks/bench_spark.py --sizes 1000000 10000000 --equivalence
    python benchmarks/bench_spark.py --sizes --ml100k-folds 5 --equivalence --topic spark_equivalence
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import markdown_table, write_results  # noqa: E402

HERE = Path(__file__).resolve()
FACTORS, SWEEPS = 32, 5
SPARK_CONFIG = {"spark.driver.memory": "6g", "spark.ui.showConsoleProgress": "false"}


# -- process-tree accounting ---------------------------------------------------------------------
def _tree(pid: int) -> list[Any]:
    import psutil

    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def tree_cpu(pid: int | None = None) -> float:
    """User + system CPU seconds of ``pid`` (default: this process) and its descendants,
    reaped children included."""
    import psutil

    total = 0.0
    for p in _tree(os.getpid() if pid is None else pid):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def tree_rss(pid: int) -> int:
    import psutil

    total = 0
    for p in _tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class _Clock:
    """Wall and process-tree CPU seconds since construction."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), tree_cpu()

    def lap(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, tree_cpu() - self.cpu


# -- workers (run in subprocesses) ----------------------------------------------------------------
def _holdout_mask(users: np.ndarray) -> np.ndarray:
    """Each user's last 10% of rows (at least one kept in training) by position."""
    counts = np.bincount(users)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank = np.arange(len(users)) - starts[users]
    n_test = np.floor(counts * 0.1 + 1e-9).astype(np.int64)
    return rank >= counts[users] - n_test[users]


def _local_params() -> dict[str, Any]:
    from chuchun.models import ImplicitALS

    params: dict[str, Any] = {"n_factors": FACTORS, "random_state": 0}
    epochs = "n_epochs" if "n_epochs" in ImplicitALS.param_specs() else "n_iterations"
    params[epochs] = SWEEPS
    return params


def _local(task: str, path: str, out: str) -> dict[str, Any]:
    from chuchun.data import Interactions
    from chuchun.data.splits import Split
    from chuchun.evaluation import evaluate
    from chuchun.io import save_model
    from chuchun.models import ImplicitALS

    if task == "warm":  # compile (or load from the on-disk cache) the numba kernels
        users, items = np.repeat(np.arange(50), 4), np.tile(np.arange(20), 10)
        ImplicitALS(**_local_params()).fit(Interactions.from_arrays(users, items))
        return {"seconds": 0.0, "cpu_s": 0.0}
    clock = _Clock()
    table = pd.read_parquet(path)
    data = Interactions.from_pandas(table, rating_col=None, timestamp_col=None)
    if task == "fit":
        data.csr  # noqa: B018 - build the matrix before timing, as Spark caches its frame
        fit = _Clock()
        ImplicitALS(**_local_params()).fit(data)
        wall, cpu = fit.lap()
        return {"seconds": wall, "cpu_s": cpu}
    read_s = clock.lap()[0]
    mask = _holdout_mask(data.user_idx)
    split = Split.from_parts(data.subset(~mask), data.subset(mask), warn=False)
    model = ImplicitALS(**_local_params())
    result = evaluate(model, split, metrics=["precision", "recall", "ndcg"], k=10)
    t_export = time.perf_counter()
    save_model(model, out)
    wall, cpu = clock.lap()
    return {"seconds": wall, "cpu_s": cpu, "ndcg@10": result["ndcg@10"], "read_s": read_s,
            "fit_s": result["fit_seconds"], "eval_s": result["eval_seconds"],
            "export_s": time.perf_counter() - t_export}


def _spark(task: str, path: str, out: str) -> dict[str, Any]:
    from chuchun.io import save_model
    from chuchun.spark import ImplicitALS, SparkInteractions, get_session
    from chuchun.spark.evaluation import SparkSplit, evaluate

    session = _Clock()
    spark = get_session("local[2]", config=SPARK_CONFIG)
    spark.sparkContext.setLogLevel("ERROR")
    session_s, session_cpu = session.lap()
    params = {"n_factors": FACTORS, "n_epochs": SWEEPS, "random_state": 0}
    clock = _Clock()
    data = SparkInteractions.from_parquet(path, spark=spark, rating_col=None,
                                          timestamp_col=None)
    read_s = clock.lap()[0]
    base = {"session_s": session_s, "session_cpu_s": session_cpu}
    if task == "fit":
        data.persist().count()
        fit = _Clock()
        ImplicitALS(**params).fit(data)
        wall, cpu = fit.lap()
        return {**base, "seconds": wall, "cpu_s": cpu}
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("user_idx")
    ranked = data.frame.withColumn("_n", F.count(F.lit(1)).over(w)).withColumn(
        "_r", F.row_number().over(w.orderBy("item_idx")))
    is_test = F.col("_r") > F.col("_n") - F.floor(F.col("_n") * 0.1 + 1e-9)
    marked = ranked.withColumn("_t", is_test).drop("_n", "_r").persist()
    train = data.subset(marked.filter(~F.col("_t")).drop("_t"))
    test = data.with_ids(marked.filter(F.col("_t")).drop("_t"))
    model = ImplicitALS(**params)
    result = evaluate(model, SparkSplit(train, test), metrics=["precision", "recall", "ndcg"],
                      k=10)
    t_export = time.perf_counter()
    save_model(model.to_local(), out)
    wall, cpu = clock.lap()
    return {**base, "seconds": wall, "cpu_s": cpu, "ndcg@10": result["ndcg@10"],
            "read_s": read_s, "fit_s": result["fit_seconds"], "eval_s": result["eval_seconds"],
            "export_s": time.perf_counter() - t_export}


def _run_worker(engine: str, task: str, path: str, timeout: float) -> dict[str, Any]:
    """Run one measurement in a subprocess, sampling its process tree's memory and the load."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(HERE), "--worker", engine, task, path,
               os.path.join(tmp, "model")]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, start_new_session=True)
        peak, loads = [0], [os.getloadavg()[0]]
        done = threading.Event()

        def sample() -> None:
            ticks = 0
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(proc.pid))
                ticks += 1
                if ticks % 10 == 0:
                    loads.append(os.getloadavg()[0])
                time.sleep(0.1)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        started = time.perf_counter()
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker's own session: it and the JVM
            proc.communicate()
            stdout = ""
        done.set()
        thread.join()
        stats = {"peak_mib": peak[0] / 2**20, "load_mean": statistics.fmean(loads),
                 "load_max": max(loads)}
        if not stdout.strip():
            if proc.returncode not in (0, -signal.SIGKILL):
                raise RuntimeError(f"worker {engine} {task} failed with status {proc.returncode}")
            return {**stats, "timed_out": True, "seconds": time.perf_counter() - started}
        return {**json.loads(stdout.strip().splitlines()[-1]), **stats, "timed_out": False}


def _scale(sizes: list[int], tasks: list[str], repeat: int, timeout: float,
           on_row: Any) -> None:
    from synthetic import generate

    _run_worker("local", "warm", "", timeout)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            users, items = generate(n_users=max(n // 100, 100), n_items=max(n // 500, 50),
                                    n_interactions=n, seed=0)
            path = os.path.join(tmp, f"log_{n}.parquet")
            pd.DataFrame({"user": users, "item": items}).to_parquet(path)
            del users, items
            for task in tasks:
                runs: dict[str, list[dict[str, Any]]] = {"local": [], "spark": []}
                for _ in range(repeat):
                    for engine in ("local", "spark"):  # interleaved
                        print(f"n={n:,} {task} {engine} ...", file=sys.stderr, flush=True)
                        runs[engine].append(_run_worker(engine, task, path, timeout))
                        print(runs[engine][-1], file=sys.stderr, flush=True)
                for engine, rs in runs.items():
                    finished = [r for r in rs if not r["timed_out"]]
                    keys = finished[0].keys() if finished else ()
                    med = {key: statistics.median(r[key] for r in finished) for key in keys
                           if key != "timed_out"}
                    on_row(n, task, engine, med, len(rs) - len(finished), rs)


def _scale_tables(rows: list[dict[str, Any]], timeout: float) -> list[tuple[str, str]]:
    nan = float("nan")
    runs, phases, ratios = [], [], []
    for r in rows:
        m = r["median"]
        label = "local" if r["engine"] == "local" else "Spark local[2]"
        if not m:
            runs.append({"interactions": f"{r['n']:,}", "workload": r["task"], "engine": label,
                         "wall s": f"did not finish in {timeout:,.0f} s", "CPU s": "–",
                         "CPU/wall": "–", "peak MiB": max(x["peak_mib"] for x in r["runs"]),
                         "load mean": statistics.fmean(x["load_mean"] for x in r["runs"]),
                         "load max": max(x["load_max"] for x in r["runs"]),
                         "JVM start wall s": "–", "JVM start CPU s": "–", "NDCG@10": "–"})
            continue
        runs.append({
            "interactions": f"{r['n']:,}", "workload": r["task"], "engine": label,
            "wall s": m["seconds"], "CPU s": m["cpu_s"], "CPU/wall": m["cpu_s"] / m["seconds"],
            "peak MiB": m["peak_mib"], "load mean": m["load_mean"], "load max": m["load_max"],
            "JVM start wall s": m.get("session_s", nan),
            "JVM start CPU s": m.get("session_cpu_s", nan),
            "NDCG@10": m.get("ndcg@10", nan),
        })
        if "read_s" in m:
            phases.append({"interactions": f"{r['n']:,}", "engine": label,
                           **{f"{p} s": m[f"{p}_s"] for p in ("read", "fit", "eval", "export")},
                           "split and rest s": m["seconds"] - sum(
                               m[f"{p}_s"] for p in ("read", "fit", "eval", "export"))})
    by_key = {(r["n"], r["task"], r["engine"]): r["median"] for r in rows}
    for (n, task, engine), m in by_key.items():
        other = by_key.get((n, task, "local"))
        if engine != "spark" or not m or not other:
            continue
        ratios.append({"interactions": f"{n:,}", "workload": task,
                       "Spark/local wall": m["seconds"] / other["seconds"],
                       "Spark/local CPU": m["cpu_s"] / other["cpu_s"],
                       "Spark/local peak memory": m["peak_mib"] / other["peak_mib"],
                       "Spark wall incl. JVM start / local wall":
                           (m["seconds"] + m["session_s"]) / other["seconds"]})
    out = [("ImplicitALS runs, local chuchun vs chuchun on Spark local[2]",
            markdown_table(pd.DataFrame(runs), digits=3, index=False))]
    if ratios:
        out.append(("Ratios (Spark / local)",
                    markdown_table(pd.DataFrame(ratios), digits=2, index=False)))
    if phases:
        out.append(("End-to-end phases (wall seconds)",
                    markdown_table(pd.DataFrame(phases), digits=2, index=False)))
    return out


# -- equivalence ----------------------------------------------------------------------------------
def _ml100k_rmse(spark: Any, n_folds: int) -> pd.DataFrame:
    from common import ml100k_folds
    from pyspark.ml.recommendation import ALS as MLlibALS

    from chuchun.evaluation import evaluate as local_evaluate
    from chuchun.models import ALS as LocalALS
    from chuchun.spark import ALS, SparkInteractions
    from chuchun.spark.evaluation import SparkSplit, evaluate

    params = {"n_factors": 10, "n_epochs": 10, "regularization": 0.1, "random_state": 7}
    rows = []
    folds = list(zip(("u1", "u2", "u3", "u4", "u5"), ml100k_folds(), strict=True))[:n_folds]
    for name, split in folds:
        train = SparkInteractions.from_local(split.train, spark=spark)
        test_table = split.test.to_pandas()
        test = spark.createDataFrame(test_table.rename(
            columns={"user": "user_id", "item": "item_id"})[["user_id", "item_id", "rating"]])
        ours = evaluate(ALS(**params, clip=False), SparkSplit(train, test), metrics=["rmse"],
                        unknown="skip")["rmse"]
        mapped = {ALS.spark_names[k]: v for k, v in params.items()}
        raw = spark.createDataFrame(split.train.to_pandas()[["user", "item", "rating"]])
        direct_model = MLlibALS(userCol="user", itemCol="item", ratingCol="rating",
                                coldStartStrategy="drop", **mapped).fit(raw)
        pred = direct_model.transform(spark.createDataFrame(
            test_table[["user", "item", "rating"]])).toPandas()
        direct = float(np.sqrt(np.mean((pred["prediction"] - pred["rating"]) ** 2)))
        local = local_evaluate(LocalALS(**params, biased=False, weighted=True, clip=False),
                               split, metrics=["rmse"], unknown="skip")["rmse"]
        rows.append({"fold": name, "test pairs scored": len(pred),
                     "chuchun on Spark": ours, "MLlib direct": direct,
                     "chuchun local": local, "Δ Spark vs MLlib": abs(ours - direct),
                     "Δ Spark vs local": abs(ours - local)})
        print(rows[-1], file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).set_index("fold")
    table.loc["mean"] = table.mean()
    table.loc["max"] = table.iloc[:-1].max()
    table.loc[["mean", "max"], "test pairs scored"] = float("nan")
    return table


def _groceries(spark: Any) -> str:
    from common import DATASETS

    from chuchun.rules import FPGrowth as LocalFPGrowth
    from chuchun.rules import read_baskets
    from chuchun.spark import FPGrowth

    tx = read_baskets(DATASETS / "groceries" / "groceries.csv")
    rows = []
    for support, confidence in ((0.005, 0.1), (0.002, 0.05)):
        ref_sets = LocalFPGrowth(min_support=support).mine(tx)
        ref_rules = ref_sets.rules(min_confidence=confidence).to_pandas()
        baskets = spark.createDataFrame(pd.DataFrame(
            {"items": [sorted(map(str, b)) for b in tx.baskets()]}))
        miner = FPGrowth(min_support=support)
        frame = miner.mine_frame(baskets).persist()
        ours_sets = miner.mine(baskets)
        ours_rules = miner.rules(frame, min_confidence=confidence).to_pandas()
        frame.unpersist()
        key = ["antecedent", "consequent"]
        merged = ref_rules.merge(ours_rules, on=key, how="outer", suffixes=("_ref", "_spark"),
                                 indicator=True)
        both = merged[merged["_merge"] == "both"]
        metrics = ("support", "confidence", "lift", "leverage", "conviction", "count")
        unequal = sum(int((both[f"{c}_ref"].to_numpy() != both[f"{c}_spark"].to_numpy()).sum())
                      for c in metrics)
        rows.append({
            "min_support": support, "min_confidence": confidence,
            "min count": ref_sets.min_count, "itemsets (local)": len(ref_sets.to_dict()),
            "itemsets equal with counts": ours_sets.to_dict() == ref_sets.to_dict(),
            "rules (local)": len(ref_rules), "rules (Spark)": len(ours_rules),
            "multi-item consequents": int((ref_rules["consequent"].map(len) > 1).sum()),
            "rules in one only": int((merged["_merge"] != "both").sum()),
            "unequal metric values": unequal,
        })
        print(rows[-1], file=sys.stderr, flush=True)
    return markdown_table(pd.DataFrame(rows), digits=3, index=False)


def _item_cosine(spark: Any, k: int = 20) -> str:
    from common import ml100k_ratings

    from chuchun.models import ImplicitItemKNN as LocalItemKNN
    from chuchun.spark import ImplicitItemKNN, SparkInteractions

    log = ml100k_ratings()
    data = SparkInteractions.from_local(log, spark=spark)
    ours = ImplicitItemKNN(n_neighbors=k, mode="exact").fit(data).similarity_matrix().tocsr()
    ref = LocalItemKNN(n_neighbors=k).fit(log).similarity_.tocsr()
    same = (ours != 0).multiply(ref != 0)
    row = {
        "ratings": log.n_interactions, "items": log.n_items, "k": k,
        "stored (local)": ref.nnz, "stored (Spark)": ours.nnz,
        "items with equal neighbour counts": int(np.sum(np.diff(ours.indptr)
                                                         == np.diff(ref.indptr))),
        "same (item, neighbour) entries": same.nnz,
        "max abs. similarity difference": float(abs(ours - ref).max()),
    }
    print(row, file=sys.stderr, flush=True)
    return markdown_table(pd.DataFrame([row]), digits=3, index=False)


def _equivalence(n_folds: int, checks: bool) -> list[tuple[str, str]]:
    from chuchun.spark import get_session

    spark = get_session("local[2]", config=SPARK_CONFIG)
    spark.sparkContext.setLogLevel("ERROR")
    out = []
    if n_folds:
        folds = ", ".join(f"u{f}" for f in range(1, n_folds + 1))
        out.append((f"Explicit ALS RMSE on MovieLens 100K {folds} (10 factors, 10 iterations, "
                    "regularization 0.1, seed 7, test pairs with an unknown user or item "
                    "skipped)", markdown_table(_ml100k_rmse(spark, n_folds), digits=4)))
    if checks:
        out.append(("FP-growth on Groceries: Spark (MLlib + chuchun's rule expansion) vs "
                    "chuchun local", _groceries(spark)))
        out.append(("Exact distributed item cosine vs chuchun's local top-k on MovieLens 100K "
                    "(all of u.data)", _item_cosine(spark)))
    spark.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000],
                        help="synthetic log sizes (none: only the equivalence part)")
    parser.add_argument("--tasks", nargs="+", choices=("fit", "e2e"), default=["fit", "e2e"])
    parser.add_argument("--topic", default="spark",
                        help="results file benchmarks/results/<topic>.md")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds after which one measurement is stopped and reported so")
    parser.add_argument("--ml100k-folds", type=int, default=5,
                        help="MovieLens 100K folds for the RMSE table (0: skip it)")
    parser.add_argument("--equivalence", action="store_true",
                        help="also compare FP-growth on Groceries and the item cosine")
    parser.add_argument("--worker", nargs=4, metavar=("ENGINE", "TASK", "PATH", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, task, path, out = args.worker
        result = (_local if engine == "local" else _spark)(task, path, out)
        print(json.dumps(result))
        return

    rows: list[dict[str, Any]] = []
    sections: list[tuple[str, str]] = []

    def on_row(n: int, task: str, engine: str, med: dict[str, Any], n_timed_out: int,
               runs: list[dict[str, Any]]) -> None:
        rows.append({"n": n, "task": task, "engine": engine, "median": med, "runs": runs})
        # each finished row is written at once: the table stands if a later run is stopped
        _write(_scale_tables(rows, args.timeout), args.topic)

    if args.sizes:
        _scale(args.sizes, args.tasks, args.repeat, args.timeout, on_row)
        sections += _scale_tables(rows, args.timeout)
    if args.ml100k_folds or args.equivalence:
        sections += _equivalence(args.ml100k_folds, args.equivalence)
    print(_write(sections, args.topic))


def _write(sections: list[tuple[str, str]], topic: str) -> Path:
    notes = (
        "Wall and CPU seconds are measured from a fresh process; `fit` is the fit alone on data "
        "already in memory, `e2e` is read + split + fit + evaluate + export. CPU seconds are "
        "user + system time of the worker's whole process tree (the Python driver, the JVM and "
        "Spark's Python workers, reaped children included), over the same span as the wall "
        "time. Peak memory is the largest resident set of that tree (the JVM included for "
        "Spark). The Spark session start (JVM launch) is reported apart and is in neither "
        "time. `load mean`/`load max` are the machine's 1-minute load average sampled every "
        "second during the run. On a machine shared with other work the wall times are "
        "inflated and noisy (`CPU/wall` shows the share of the cores a run got); CPU seconds "
        "are the comparable measure. With `--repeat 1` each number is a single run."
    )
    return write_results(topic, "Spark backend: local chuchun vs chuchun on Spark",
                         sections, libraries=("pyspark",), notes=notes)


if __name__ == "__main__":
    main()
