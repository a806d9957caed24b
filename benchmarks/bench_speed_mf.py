"""Fit speed of FunkSVD and explicit ALS against Surprise and Spark MLlib (issue #10).

Usage (from the repository root)::

    nice -n 5 python benchmarks/bench_speed_mf.py [--repeat 3] [--folds 1,2,3,4,5] [--no-spark]

Three measurements, all in this one process, on the same data and splits for both sides:

1. ``FunkSVD`` with Surprise ``SVD``'s defaults (100 factors, 20 epochs, learning rate 0.005,
   regularisation 0.02, init std 0.1), on one thread and on two (DSGD), against Surprise
   ``SVD(random_state=0)``: MovieLens 100K ``u1..u5`` and a 35,000-rating set (a seeded random
   sample of ml-latest-small, 0.5-5 stars, split 80/20 at random with seed 0). Time of ``fit``
   only on both sides (chuchun's ``Interactions`` and Surprise's ``Trainset`` are built before).
2. explicit ``ALS`` (50 factors, 15 iterations, 2 threads) on a sparse synthetic set of
   300,000 ratings by 7,000 users over a 100,000-item catalogue (``benchmarks/synthetic.py``:
   power-law item popularity, log-normal user activity, seed 0; ratings 1-5 from user and item
   effects plus noise; most items have fewer than 5 ratings).
3. explicit ``ALS`` against Spark MLlib ``ALS`` on MovieLens 100K ``u1`` (local[2], rank 50, 15
   iterations, ``regParam`` 0.1 — both scale the penalty by the rating count; the session is
   started and the training DataFrame cached and counted before timing; the timed region is
   ``fit`` plus counting both factor tables).

The repetitions are interleaved (chuchun, reference, chuchun, ...) and the table reports the
median wall time and the median CPU time of the process (``time.process_time``, all threads;
for Spark this is only the Python driver, so no CPU column is given there). The machine is
shared with other jobs, so wall times include waiting for a core; the CPU time is the work done.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from common import DATASETS, ML100K, markdown_table, write_results  # noqa: I001
from synthetic import generate

from chuchun import Interactions
from chuchun.models import ALS, FunkSVD

SURPRISE_SVD = dict(n_factors=100, n_epochs=20, learning_rate=0.005, regularization=0.02,
                    init_std=0.1, random_state=0)
COLS = ["user", "item", "rating", "timestamp"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ml100k_fold(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    read = lambda s: pd.read_csv(ML100K / f"u{n}.{s}", sep="\t", names=COLS)  # noqa: E731
    return read("base"), read("test")


def mls_35k() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(DATASETS / "ml-latest-small" / "ratings.csv")
    df = df.rename(columns={"userId": "user", "movieId": "item"})
    rng = np.random.default_rng(0)
    df = df.iloc[np.sort(rng.choice(len(df), 35_000, replace=False))]
    test = rng.random(len(df)) < 0.2
    return df[~test].reset_index(drop=True), df[test].reset_index(drop=True)


def to_interactions(df: pd.DataFrame, scale: tuple[float, float]) -> Interactions:
    return Interactions.from_arrays(df.user.values, df.item.values,
                                    df.rating.values.astype(np.float32), rating_scale=scale)


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - truth) ** 2)))


def clock(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Result, wall seconds and process CPU seconds of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def interleaved(runs: dict[str, Callable[[], Any]], repeat: int
                ) -> dict[str, tuple[Any, float, float]]:
    """Run each entry ``repeat`` times, round-robin; last result, median wall, median CPU."""
    walls: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    last: dict[str, Any] = {}
    for _ in range(repeat):
        for name, fn in runs.items():
            last[name], w, c = clock(fn)
            walls[name].append(w)
            cpus[name].append(c)
    return {k: (last[k], statistics.median(walls[k]), statistics.median(cpus[k])) for k in runs}


# -- 1. FunkSVD vs Surprise SVD ------------------------------------------------------------------
def funk_vs_surprise(name: str, train: pd.DataFrame, test: pd.DataFrame,
                     scale: tuple[float, float], repeat: int) -> list[dict[str, Any]]:
    from surprise import SVD, Dataset, Reader

    data = to_interactions(train, scale)
    trainset = Dataset.load_from_df(train[["user", "item", "rating"]],
                                    Reader(rating_scale=scale)).build_full_trainset()
    pairs = list(zip(test.user, test.item, test.rating.astype(float), strict=True))
    res = interleaved({
        "chuchun FunkSVD, 1 thread": lambda: FunkSVD(**SURPRISE_SVD, n_threads=1).fit(data),
        "chuchun FunkSVD, 2 threads (DSGD)": lambda: FunkSVD(**SURPRISE_SVD,
                                                             n_threads=2).fit(data),
        "Surprise SVD": lambda: SVD(random_state=0).fit(trainset),
    }, repeat)
    truth = test.rating.values
    rows = []
    for label, (model, wall, cpu) in res.items():
        if label == "Surprise SVD":
            err = rmse(np.array([p.est for p in model.test(pairs)]), truth)
        else:
            err = rmse(model.predict(test.user.values, test.item.values), truth)
        rows.append({"data": name, "model": label, "RMSE": err, "fit wall s": wall,
                     "fit CPU s": cpu})
        log(f"{name} {label}: rmse {err:.4f} wall {wall:.3f}s cpu {cpu:.3f}s")
    return rows


# -- 2. ALS on the sparse 300k set ---------------------------------------------------------------
def sparse_explicit(seed: int = 0) -> Interactions:
    n_users, n_items = 7_000, 100_000
    u, i = generate(n_users, n_items, 300_000, seed)
    rng = np.random.default_rng(seed + 1)
    user_eff = rng.normal(0.0, 0.5, n_users)
    item_eff = rng.normal(0.0, 0.7, n_items)
    r = np.clip(np.rint(3.5 + user_eff[u] + item_eff[i] + rng.normal(0.0, 0.8, len(u))), 1, 5)
    return Interactions.from_arrays(u, i, r.astype(np.float32), rating_scale=(1.0, 5.0))


def als_sparse(repeat: int) -> tuple[list[dict[str, Any]], str]:
    data = sparse_explicit()
    counts = np.bincount(data.item_idx, minlength=data.n_items)
    desc = (f"{len(data):,} ratings, {data.n_users:,} users, {data.n_items:,} items with at least "
            f"one rating (of a 100,000-item catalogue); {np.mean(counts < 5):.0%} of them have "
            f"fewer than 5 ratings, the most rated has {counts.max():,}")
    res = interleaved({"chuchun ALS (k=50, 15 iterations, 2 threads)":
                       lambda: ALS(n_factors=50, n_epochs=15, n_threads=2,
                                   random_state=0).fit(data)}, repeat)
    rows = []
    for label, (model, wall, cpu) in res.items():
        rows.append({"model": label, "train RMSE": model.history_["train_rmse"][-1],
                     "fit wall s": wall, "fit CPU s": cpu, "target s": 4.0})
        log(f"sparse {label}: wall {wall:.3f}s cpu {cpu:.3f}s")
    return rows, desc


# -- 3. ALS vs Spark MLlib ALS -------------------------------------------------------------------
def als_vs_spark(repeat: int) -> list[dict[str, Any]]:
    from pyspark.ml.recommendation import ALS as SparkALS
    from pyspark.sql import SparkSession

    train, test = ml100k_fold(1)
    spark = (SparkSession.builder.master("local[2]").appName("bench_speed_mf")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "4")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    sdf = spark.createDataFrame(train[["user", "item", "rating"]].astype(
        {"user": "int32", "item": "int32", "rating": "float32"})).cache()
    sdf.count()
    tdf = spark.createDataFrame(test[["user", "item", "rating"]].astype(
        {"user": "int32", "item": "int32", "rating": "float32"})).cache()
    tdf.count()
    data = to_interactions(train, (1.0, 5.0))
    spark_als = SparkALS(rank=50, maxIter=15, regParam=0.1, userCol="user", itemCol="item",
                         ratingCol="rating", coldStartStrategy="drop", seed=0)

    def spark_fit() -> Any:
        model = spark_als.fit(sdf)
        model.userFactors.count()
        model.itemFactors.count()
        return model

    spark_fit()  # JIT and Spark's own first-job costs, as chuchun's kernels are compiled
    res = interleaved({
        "chuchun ALS (k=50, 15 iterations, 2 threads)":
            lambda: ALS(n_factors=50, n_epochs=15, n_threads=2, random_state=0).fit(data),
        "Spark MLlib ALS (rank 50, 15 iterations, local[2])": spark_fit,
    }, repeat)
    pred = res["Spark MLlib ALS (rank 50, 15 iterations, local[2])"][0].transform(tdf).toPandas()
    known = pred[["user", "item", "rating"]]
    ours = res["chuchun ALS (k=50, 15 iterations, 2 threads)"][0]
    rows = []
    for label, (model, wall, cpu) in res.items():
        if label.startswith("Spark"):
            err = rmse(np.clip(pred.prediction.values, 1, 5), pred.rating.values)
            cpu_s: Any = "-"
        else:
            err = rmse(ours.predict(known.user.values, known.item.values), known.rating.values)
            cpu_s = cpu
        rows.append({"model": label, "RMSE (u1 test pairs Spark predicts)": err,
                     "fit wall s": wall, "fit CPU s (Python process)": cpu_s})
        log(f"spark {label}: rmse {err:.4f} wall {wall:.3f}s")
    spark.stop()
    return rows


def warm_up() -> None:
    tiny = to_interactions(pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [1, 2, 2, 3, 1],
                                         "rating": [5, 3, 4, 1, 2]}), (1.0, 5.0))
    for m in (FunkSVD(n_factors=2, n_epochs=1), FunkSVD(n_factors=2, n_epochs=1, n_threads=2),
              ALS(n_factors=2, n_epochs=1, n_threads=2)):
        m.fit(tiny)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--folds", default="1,2,3,4,5")
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()
    start = loadavg()
    warm_up()

    funk: list[dict[str, Any]] = []
    for f in [int(x) for x in args.folds.split(",") if x]:
        funk += funk_vs_surprise(f"ml-100k u{f}", *ml100k_fold(f), (1.0, 5.0), args.repeat)
    funk += funk_vs_surprise("ml-latest-small 35k", *mls_35k(), (0.5, 5.0), args.repeat)
    table = pd.DataFrame(funk)

    summary = []
    for data_group, mask in (("ml-100k u1..u5", table.data.str.startswith("ml-100k")),
                             ("ml-latest-small 35k", table.data == "ml-latest-small 35k")):
        part = table[mask]
        ref = part[part.model == "Surprise SVD"].set_index("data")
        for label in ("chuchun FunkSVD, 1 thread", "chuchun FunkSVD, 2 threads (DSGD)"):
            ours = part[part.model == label].set_index("data")
            summary.append({
                "data": data_group, "model": label,
                "ΔRMSE vs Surprise": float((ours.RMSE - ref.RMSE).mean()),
                "wall speed-up (Surprise / chuchun)": float(
                    ref["fit wall s"].sum() / ours["fit wall s"].sum()),
                "CPU speed-up (Surprise / chuchun)": float(
                    ref["fit CPU s"].sum() / ours["fit CPU s"].sum()),
            })
    sections = [
        ("FunkSVD vs Surprise SVD: summary (target ≥ 10× faster, |ΔRMSE| ≤ 0.003)",
         markdown_table(pd.DataFrame(summary), digits=4, index=False)),
        ("FunkSVD vs Surprise SVD: per fold", markdown_table(table, digits=4, index=False)),
    ]
    als_rows, desc = als_sparse(args.repeat)
    sections.append(("Explicit ALS on the sparse 300k-rating set (target ≤ 4 s)",
                     desc + ".\n\n" + markdown_table(pd.DataFrame(als_rows), digits=4,
                                                     index=False)))
    if not args.no_spark:
        spark_rows = als_vs_spark(args.repeat)
        walls = {r["model"]: r["fit wall s"] for r in spark_rows}
        ours, theirs = walls.values()
        sections.append(("Explicit ALS vs Spark MLlib ALS, MovieLens 100K u1 (target ≤ 1/5)",
                         markdown_table(pd.DataFrame(spark_rows), digits=4, index=False)
                         + f"\n\nchuchun / Spark wall time: {ours / theirs:.3f}"))
    path = write_results("mf_speed", "FunkSVD and explicit ALS fit speed", sections,
                         libraries=["surprise", "pyspark"],
                         notes=NOTES.format(start=start, end=loadavg()))
    print(path.read_text())


NOTES = """
Medians of the interleaved repetitions. Load average of the 2-core machine (1, 5, 15 min) at
the start of the run: {start}; at the end: {end}. Where other jobs ran meanwhile, the wall times
include time spent waiting for a core; the CPU column (process time of all threads) is the work
done and is the steadier figure for the chuchun and Surprise rows.
"""


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


if __name__ == "__main__":
    main()
