"""chuchun locally vs chuchun on Spark (``local[2]``): fit time, peak memory, end-to-end wait.

Each measurement runs in a fresh subprocess (so imports, JIT caches and the JVM start cold the
same way every time) on the same synthetic implicit log (``benchmarks/synthetic.py``) written
once to Parquet. Peak memory is the largest resident set of the worker's whole process tree
(for Spark that includes the JVM), sampled every 0.1 s. Runs of the two engines are
interleaved; with ``--repeat`` above 1 the median is reported.

Two workloads per size:

fit
    ImplicitALS (32 factors, 5 sweeps) on data already in memory (local: the CSR; Spark: the
    cached DataFrame), timing the fit alone;
end to end
    what a user waits for: read the Parquet file, split (each user's last 10% by position
    held out), fit, evaluate precision/recall/NDCG@10 on the held-out rows, and export the
    model as a chuchun artifact.

Also on MovieLens 100K u1..u5: RMSE of explicit ALS through chuchun on Spark, MLlib ALS called
directly with the mapped parameters, and chuchun's local ALS with the same hyperparameters.

Usage::

    python benchmarks/bench_spark.py --sizes 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
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


# -- workers (run in subprocesses) ----------------------------------------------------------------
def _holdout_mask(users: np.ndarray) -> np.ndarray:
    """Each user's last 10% of rows (at least one kept in training) by position."""
    counts = np.bincount(users)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank = np.arange(len(users)) - starts[users]
    n_test = np.floor(counts * 0.1 + 1e-9).astype(np.int64)
    return rank >= counts[users] - n_test[users]


def _local(task: str, path: str, out: str) -> dict[str, Any]:
    from chuchun.data import Interactions
    from chuchun.data.splits import Split
    from chuchun.evaluation import evaluate
    from chuchun.io import save_model
    from chuchun.models import ImplicitALS

    params = {"n_factors": FACTORS, "random_state": 0}
    epochs = "n_epochs" if "n_epochs" in ImplicitALS.param_specs() else "n_iterations"
    params[epochs] = SWEEPS
    start = time.perf_counter()
    table = pd.read_parquet(path)
    data = Interactions.from_pandas(table, rating_col=None, timestamp_col=None)
    if task == "fit":
        data.csr  # noqa: B018 - build the matrix before timing, as Spark caches its frame
        t0 = time.perf_counter()
        ImplicitALS(**params).fit(data)
        return {"seconds": time.perf_counter() - t0}
    read_s = time.perf_counter() - start
    mask = _holdout_mask(data.user_idx)
    split = Split.from_parts(data.subset(~mask), data.subset(mask), warn=False)
    model = ImplicitALS(**params)
    result = evaluate(model, split, metrics=["precision", "recall", "ndcg"], k=10)
    t_export = time.perf_counter()
    save_model(model, out)
    return {"seconds": time.perf_counter() - start, "ndcg@10": result["ndcg@10"],
            "read_s": read_s, "fit_s": result["fit_seconds"], "eval_s": result["eval_seconds"],
            "export_s": time.perf_counter() - t_export}


def _spark(task: str, path: str, out: str) -> dict[str, Any]:
    from chuchun.io import save_model
    from chuchun.spark import ImplicitALS, SparkInteractions, get_session
    from chuchun.spark.evaluation import SparkSplit, evaluate

    t_session = time.perf_counter()
    spark = get_session("local[2]", config={"spark.driver.memory": "6g",
                                            "spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    session_seconds = time.perf_counter() - t_session
    params = {"n_factors": FACTORS, "n_epochs": SWEEPS, "random_state": 0}
    start = time.perf_counter()
    data = SparkInteractions.from_parquet(path, spark=spark, rating_col=None,
                                          timestamp_col=None)
    read_s = time.perf_counter() - start
    if task == "fit":
        data.persist().count()
        t0 = time.perf_counter()
        ImplicitALS(**params).fit(data)
        return {"seconds": time.perf_counter() - t0, "session_seconds": session_seconds}
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
    return {"seconds": time.perf_counter() - start, "ndcg@10": result["ndcg@10"],
            "session_seconds": session_seconds, "read_s": read_s,
            "fit_s": result["fit_seconds"], "eval_s": result["eval_seconds"],
            "export_s": time.perf_counter() - t_export}


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _run_worker(engine: str, task: str, path: str) -> dict[str, Any]:
    """Run one measurement in a subprocess, sampling its process tree's memory."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(HERE), "--worker", engine, task, path,
               os.path.join(tmp, "model")]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                time.sleep(0.1)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        stdout, _ = proc.communicate()
        done.set()
        thread.join()
        if proc.returncode != 0:
            raise RuntimeError(f"worker {engine} {task} failed with status {proc.returncode}")
        result = json.loads(stdout.strip().splitlines()[-1])
        result["peak_mib"] = peak[0] / 2**20
        return result


# -- MovieLens 100K equivalence ---------------------------------------------------------------------
def _ml100k_rmse(n_folds: int) -> pd.DataFrame:
    from common import ml100k_folds
    from pyspark.ml.recommendation import ALS as MLlibALS

    from chuchun.evaluation import evaluate as local_evaluate
    from chuchun.models import ALS as LocalALS
    from chuchun.spark import ALS, SparkInteractions, get_session
    from chuchun.spark.evaluation import SparkSplit, evaluate

    spark = get_session("local[2]", config={"spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")
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
        rows.append({"fold": name, "chuchun on Spark": ours, "MLlib direct": direct,
                     "chuchun local": local, "|Spark - MLlib|": abs(ours - direct),
                     "|Spark - local|": abs(ours - local)})
        print(rows[-1], file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).set_index("fold")
    table.loc["mean"] = table.mean()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000],
                        help="synthetic log sizes (none: only the MovieLens table)")
    parser.add_argument("--tasks", nargs="+", choices=("fit", "e2e"), default=["fit", "e2e"])
    parser.add_argument("--topic", default="spark",
                        help="results file benchmarks/results/<topic>.md")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--ml100k-folds", type=int, default=5,
                        help="MovieLens 100K folds for the RMSE table (0: skip it)")
    parser.add_argument("--worker", nargs=4, metavar=("ENGINE", "TASK", "PATH", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, task, path, out = args.worker
        result = (_local if engine == "local" else _spark)(task, path, out)
        print(json.dumps(result))
        return

    from synthetic import generate

    rows = []
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            users, items = generate(n_users=max(n // 100, 100), n_items=max(n // 500, 50),
                                    n_interactions=n, seed=0)
            path = os.path.join(tmp, f"log_{n}.parquet")
            pd.DataFrame({"user": users, "item": items}).to_parquet(path)
            del users, items
            for task in args.tasks:
                runs: dict[str, list[dict[str, Any]]] = {"local": [], "spark": []}
                for _ in range(args.repeat):
                    for engine in ("local", "spark"):  # interleaved
                        print(f"n={n:,} {task} {engine} ...", file=sys.stderr, flush=True)
                        runs[engine].append(_run_worker(engine, task, path))
                med = {e: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
                       for e, rs in runs.items()}
                rows.append({
                    "interactions": f"{n:,}", "workload": task,
                    "local s": med["local"]["seconds"], "Spark s": med["spark"]["seconds"],
                    "Spark/local time": med["spark"]["seconds"] / med["local"]["seconds"],
                    "local peak MiB": med["local"]["peak_mib"],
                    "Spark peak MiB": med["spark"]["peak_mib"],
                    "session start s": med["spark"]["session_seconds"],
                    "local ndcg@10": med["local"].get("ndcg@10", float("nan")),
                    "Spark ndcg@10": med["spark"].get("ndcg@10", float("nan")),
                })
                for phase in ("read_s", "fit_s", "eval_s", "export_s"):
                    if phase in med["local"]:
                        rows[-1][f"local {phase[:-2]} s"] = med["local"][phase]
                        rows[-1][f"Spark {phase[:-2]} s"] = med["spark"][phase]
                print(rows[-1], file=sys.stderr, flush=True)
    if rows:
        table = pd.DataFrame(rows)
        sections.append(("ImplicitALS, local chuchun vs chuchun on Spark local[2]",
                         markdown_table(table, digits=3, index=False)))
        _write(sections, args.topic)  # the scale table stands if the next part is interrupted
    if args.ml100k_folds:
        sections.append((f"Explicit ALS RMSE on MovieLens 100K, first {args.ml100k_folds} of "
                         "u1..u5 (10 factors, 10 iterations, regularization 0.1, seed 7, "
                         "unknown test pairs skipped)",
                         markdown_table(_ml100k_rmse(args.ml100k_folds), digits=4)))
    print(_write(sections, args.topic))


def _write(sections: list[tuple[str, str]], topic: str) -> Path:
    notes = (
        "Times in seconds from a fresh process; `fit` times the fit alone on data already in "
        "memory, `e2e` times read + split + fit + evaluate + export. Peak memory is the largest "
        "resident set of the worker's process tree (the JVM included for Spark). The Spark "
        "session start (JVM launch) is reported separately and is not in either time. The "
        "machine's two cores were shared with other work during the run, so the timings are "
        "noisy; with `--repeat 1` each number is a single run."
    )
    return write_results(topic, "Spark backend: local chuchun vs chuchun on Spark",
                         sections, libraries=("pyspark",), notes=notes)


if __name__ == "__main__":
    main()
