"""Factorization machines and the hybrid model, chuchun vs myFM (and chuchun baselines).

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_fm.py [--folds 1,2,3,4,5] [--skip-myfm-features]
        [--sections rmse,solvers,ranking,coldstart]

Sections, all in one process:

``rmse``
    MovieLens 100K official folds, rank 10, 200 Gibbs sweeps (chuchun ``burn_in=5``; myFM
    ``n_kept_samples=195``), predictions clipped to [1, 5]. Feature sets: user and item ids;
    plus age bucket, gender, occupation and the movie's genres (each block scaled to unit
    length); plus the implicit blocks (the user's rated items and the item's raters, each
    :math:`1/\\sqrt n`, from the training fold only). Both libraries get the same design: myFM
    the expanded sparse matrix of chuchun's feature space. Fit time is one fit (wall clock).
``solvers``
    SGD and ALS on the ids + features set (fold u1), their settings chosen on a 10 %
    validation cut of u1's training part (never the test fold).
``ranking``
    the temporal split of u.data (each user's latest 20 % held out), NDCG@10 over all test
    items, for the ranking FM (BPR), HybridMF (WARP) and ImplicitALS (its benchmarked setting).
``coldstart``
    bundled ml-latest-small: the split point is the 80 % quantile of the timestamps; items
    whose first rating falls after it are new; for every user with a rating before and a
    rating of a new item after it, all new items are ranked (``candidates=``) and NDCG@10 is
    measured against the new items they rated. Models know the new items' genres and release
    year (from the title) only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ML100K,
    markdown_table,
    ml100k_folds,
    ml100k_temporal_split,
    read_ml100k_file,
    write_results,
)

from chuchun import DataWarning, Interactions  # noqa: E402
from chuchun.data import ItemFeatures, UserFeatures  # noqa: E402
from chuchun.data.design import FeatureSpace  # noqa: E402
from chuchun.datasets import load_dataset, load_movielens_100k  # noqa: E402
from chuchun.evaluation import evaluate  # noqa: E402
from chuchun.metrics.ranking import ndcg_at_k  # noqa: E402
from chuchun.models import ContentBased, FactorizationMachine, HybridMF, ImplicitALS  # noqa: E402

warnings.simplefilter("ignore", DataWarning)

AGE_BINS = [0, 18, 25, 35, 45, 50, 56, 200]
# ImplicitALS names its passes n_iterations in older checkouts, n_epochs in newer ones
_EPOCHS = "n_epochs" if "n_epochs" in ImplicitALS.param_specs() else "n_iterations"


def ml100k_side() -> tuple[UserFeatures, ItemFeatures]:
    """Demographics (age bucket, gender, occupation) and genres of ml-100k."""
    ml = load_movielens_100k(ML100K)
    users = ml.users.copy()
    users["age_bucket"] = pd.cut(users["age"], AGE_BINS, right=False).astype(str)
    uf = UserFeatures.from_pandas(users, categorical=["age_bucket", "gender", "occupation"])
    items = ml.items.copy()
    items["genres"] = items["genres"].replace("", np.nan)
    itf = ItemFeatures.from_pandas(items, multi_valued=["genres"])
    return uf, itf


def design_matrix(fs: FeatureSpace, data: Interactions):
    """The expanded rows x features matrix of a log (what a plain FM library needs)."""
    import scipy.sparse as sp

    u = fs.users.index(data.user_ids)
    i = fs.items.index(data.item_ids)
    ub = fs.user_block[np.maximum(u, 0)]
    ub = sp.diags((u >= 0).astype(np.float32)) @ ub
    ib = fs.item_block[np.maximum(i, 0)]
    ib = sp.diags((i >= 0).astype(np.float32)) @ ib
    return sp.hstack([ub, ib], format="csr")


def _quiet(*args: object) -> tuple[bool, None]:
    """myFM callback: no progress bar, never stop early."""
    return False, None


def rmse(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.clip(p, 1, 5) - y) ** 2)))


FEATURE_SETS = {
    "ids": dict(side=False, implicit=False),
    "ids + demographics + genres": dict(side=True, implicit=False),
    "+ implicit blocks (rated items, raters)": dict(side=True, implicit=True),
    # who rated what, from the whole of u.data without the test ratings (the Netflix-prize
    # convention of SVD++); reported apart from the training-only row above
    "+ implicit blocks from all rated pairs (test ratings hidden)":
        dict(side=True, implicit=True, all_pairs=True),
}


def bench_rmse(folds: list[int], run_myfm: set[str], sets: list[str],
               max_kept: int = 50) -> tuple[pd.DataFrame, pd.DataFrame]:
    import myfm

    uf, itf = ml100k_side()
    splits = ml100k_folds()
    every = read_ml100k_file(ML100K / "u.data")
    all_pairs = Interactions.from_arrays(every.user_ids, every.item_ids)
    rows = []
    for name, opt in FEATURE_SETS.items():
        if name not in sets:
            continue
        for f in folds:
            tr, te = splits[f - 1].train, splits[f - 1].test
            kw: dict = dict(user_features=uf, item_features=itf) if opt["side"] else {}
            if opt.get("all_pairs"):
                kw["implicit_from"] = all_pairs
            model = FactorizationMachine(solver="mcmc", n_factors=10, n_epochs=200, burn_in=5,
                                         max_kept_samples=max_kept,
                                         implicit_users=opt["implicit"],
                                         implicit_items=opt["implicit"], random_state=f)
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(tr, **kw)
            fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            ours = rmse(model.predict(te.user_ids, te.item_ids), te.ratings)
            row = {"features": name, "fold": f"u{f}", "chuchun RMSE": ours,
                   "chuchun fit s": fit_s, "chuchun CPU s": cpu_s, "myFM RMSE": np.nan,
                   "myFM fit s": np.nan, "myFM CPU s": np.nan}
            if name in run_myfm:
                fs = model.feature_space
                xtr, xte = design_matrix(fs, tr), design_matrix(fs, te)
                fm = myfm.MyFMRegressor(rank=10, random_seed=f)
                t0, c0 = time.perf_counter(), time.process_time()
                # the same prior groups as chuchun's (one per id block and feature column)
                g = fs.feature_groups
                cuts = np.flatnonzero(np.diff(g)) + 1
                shapes = np.diff(np.r_[0, cuts, len(g)]).tolist()
                fm.fit(xtr, tr.ratings, n_iter=200, n_kept_samples=195, group_shapes=shapes,
                       callback=_quiet)
                row["myFM fit s"] = time.perf_counter() - t0
                row["myFM CPU s"] = time.process_time() - c0
                row["myFM RMSE"] = rmse(fm.predict(xte), te.ratings)
            row["load (1 min)"] = os.getloadavg()[0]
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows)
    mean = table.groupby("features", sort=False)[
        ["chuchun RMSE", "chuchun fit s", "chuchun CPU s", "myFM RMSE", "myFM fit s",
         "myFM CPU s"]].mean()
    mean["fit ratio (chuchun / myFM)"] = mean["chuchun fit s"] / mean["myFM fit s"]
    mean["CPU ratio"] = mean["chuchun CPU s"] / mean["myFM CPU s"]
    return table.set_index("features"), mean


def _cut(data: Interactions, fraction: float, seed: int) -> tuple[Interactions, Interactions]:
    rng = np.random.default_rng(seed)
    mask = rng.random(len(data)) < fraction
    return data.subset(~mask), data.subset(mask)


def bench_solvers() -> pd.DataFrame:
    uf, itf = ml100k_side()
    split = ml100k_folds()[0]
    fit_part, val = _cut(split.train, 0.1, 0)
    grids = {
        "sgd": [dict(learning_rate=lr, regularization=reg, n_epochs=60,
                     validation_fraction=0.1, patience=3)
                for lr in (0.01, 0.03) for reg in (0.01, 0.05)],
        "als": [dict(regularization=reg, n_epochs=20) for reg in (0.05, 0.2, 1.0)],
    }
    rows = []
    for solver, grid in grids.items():
        scored = []
        for params in grid:
            m = FactorizationMachine(solver=solver, n_factors=10, random_state=0, **params)
            m.fit(fit_part, user_features=uf, item_features=itf)
            scored.append((rmse(m.predict(val.user_ids, val.item_ids), val.ratings), params))
        best_val, best = min(scored, key=lambda t: t[0])
        m = FactorizationMachine(solver=solver, n_factors=10, random_state=0, **best)
        t0 = time.perf_counter()
        m.fit(split.train, user_features=uf, item_features=itf)
        fit_s = time.perf_counter() - t0
        rows.append({"solver": solver, "setting": ", ".join(f"{k}={v}" for k, v in best.items()
                                                              if k in ("learning_rate",
                                                                       "regularization")),
                     "validation RMSE": best_val,
                     "u1 test RMSE": rmse(m.predict(split.test.user_ids, split.test.item_ids),
                                          split.test.ratings),
                     "fit s": fit_s})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows).set_index("solver")


def _implicit(split):
    return type(split)(
        train=Interactions.from_arrays(split.train.user_ids, split.train.item_ids),
        test=Interactions.from_arrays(split.test.user_ids, split.test.item_ids),
        info=split.info)


RANKING_GRID = {
    "FactorizationMachine": [
        dict(task="ranking", n_factors=64, learning_rate=0.05, regularization=reg,
             n_epochs=ep, init_std=0.01, random_state=0)
        for reg in (0.001, 0.01) for ep in (30, 100)],
    "HybridMF": [dict(loss=loss, n_factors=64, n_epochs=ep, random_state=0)
                 for loss in ("warp", "bpr") for ep in (30, 60)],
}


def bench_ranking() -> pd.DataFrame:
    """Settings chosen on a validation cut of the temporal training part (each user's latest
    20 % of training rows), refitted on the whole training part, scored once on the test."""
    from chuchun.data.splits import user_holdout

    uf, itf = ml100k_side()
    raw = ml100k_temporal_split()
    split = _implicit(raw)
    valid = _implicit(user_holdout(raw.train, test_fraction=0.2, order="time"))
    cases = [
        ("ImplicitALS (64 factors, 15 epochs, alpha 0.5)", ImplicitALS,
         [dict(n_factors=64, alpha=0.5, random_state=0, **{_EPOCHS: 15})], {}),
        ("FactorizationMachine ranking (ids)", FactorizationMachine,
         RANKING_GRID["FactorizationMachine"], {}),
        ("FactorizationMachine ranking (ids + demographics + genres)", FactorizationMachine,
         RANKING_GRID["FactorizationMachine"], dict(user_features=uf, item_features=itf)),
        ("HybridMF (ids)", HybridMF, RANKING_GRID["HybridMF"], {}),
        ("HybridMF (ids + demographics + genres)", HybridMF, RANKING_GRID["HybridMF"],
         dict(user_features=uf, item_features=itf)),
    ]
    rows = []
    for name, cls, grid, kw in cases:
        best, best_val = grid[0], -1.0
        if len(grid) > 1:
            for params in grid:
                m = cls(**params).fit(valid.train, **kw)
                val = evaluate(m, valid, metrics=["ndcg"], k=10, fit=False)["ndcg@10"]
                print(name, params, val, flush=True)
                if val > best_val:
                    best, best_val = params, val
        model = cls(**best)
        t0 = time.perf_counter()
        model.fit(split.train, **kw)
        fit_s = time.perf_counter() - t0
        res = evaluate(model, split, metrics=["ndcg"], k=10, fit=False)
        shown = {k: v for k, v in best.items() if k in ("loss", "learning_rate",
                                                       "regularization", "n_epochs", "alpha")}
        rows.append({"model": name, "setting": ", ".join(f"{k}={v}" for k, v in shown.items()),
                     "validation NDCG@10": best_val if len(grid) > 1 else np.nan,
                     "test NDCG@10": res["ndcg@10"], "fit s": fit_s})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows).set_index("model")


def bench_coldstart(models: bool = True) -> tuple[pd.DataFrame, dict[str, int]]:
    ml = load_dataset("ml-latest-small")
    data = ml.ratings
    t_split = float(np.quantile(data.timestamps, 0.8))
    frame = data.to_pandas()
    first = frame.groupby("item")["timestamp"].min()
    new_items = first.index[first > t_split].to_numpy()
    before = frame[frame["timestamp"] <= t_split]
    after = frame[(frame["timestamp"] > t_split) & frame["item"].isin(new_items)]
    after = after[after["user"].isin(before["user"].unique())]
    train = Interactions.from_arrays(before["user"], before["item"], before["rating"])
    implicit_train = Interactions.from_arrays(before["user"], before["item"])
    items = ml.items.copy()
    items["genres"] = items["genres"].replace("(no genres listed)", np.nan)
    # release year from the title, "Heat (1995)": one category per year
    items["year"] = items["title"].str.extract(r"\((\d{4})\)\s*$", expand=False)
    itf = ItemFeatures.from_pandas(items, multi_valued=["genres"], categorical=["year"])
    test_users = np.sort(after["user"].unique())
    relevant = after.groupby("user")["item"].apply(set)
    rng = np.random.default_rng(0)

    def score(model) -> float:
        recs = model.recommend(test_users, k=10, candidates=new_items, exclude_seen=True)
        rel = [model.items_.index(np.array(sorted(relevant[u]))) for u in test_users]
        return float(np.nanmean(ndcg_at_k(recs.item_idx, rel, 10)))

    rows = []
    for name, model, log in [] if not models else [
        ("ContentBased (genres, year)", ContentBased(), train),
        ("HybridMF WARP (ids + genres, year)", HybridMF(n_factors=64, n_epochs=30, random_state=0),
         implicit_train),
        ("HybridMF BPR (ids + genres, year)",
         HybridMF(loss="bpr", n_factors=64, n_epochs=30, random_state=0), implicit_train),
        ("FactorizationMachine ranking (ids + genres, year)",
         FactorizationMachine(task="ranking", n_factors=32, n_epochs=30, learning_rate=0.05,
                              regularization=0.001, random_state=0), implicit_train),
    ]:
        t0 = time.perf_counter()
        model.fit(log, item_features=itf)
        rows.append({"model": name, "NDCG@10": score(model),
                     "fit s": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    # popularity-free random floor: a random order of the new items, 20 draws
    vals = []
    idx_new = np.arange(len(new_items))
    rel_pos = [np.searchsorted(new_items, np.array(sorted(relevant[u]))) for u in test_users]
    for _ in range(20):
        top = np.stack([rng.permutation(idx_new)[:10] for _ in test_users])
        vals.append(np.nanmean(ndcg_at_k(top, rel_pos, 10)))
    rows.append({"model": "Random (mean of 20 draws)", "NDCG@10": float(np.mean(vals)),
                 "fit s": 0.0})
    # the same order for every user: the most recent release year first (ties: catalogue
    # order), a reference for how much of the signal is the films' recency
    year = pd.to_numeric(items.set_index("item")["year"], errors="coerce").reindex(new_items)
    newest = np.argsort(-year.fillna(year.median()).to_numpy(), kind="stable")[:10]
    top = np.tile(newest, (len(test_users), 1))
    rows.append({"model": "Newest release first (no model, same list for every user)",
                 "NDCG@10": float(np.nanmean(ndcg_at_k(top, rel_pos, 10))), "fit s": 0.0})
    info = {"new items": len(new_items), "test users": len(test_users),
            "test pairs": len(after), "training ratings": len(train)}
    return pd.DataFrame(rows).set_index("model"), info


def sparse_catalogue(n_users: int, n_items: int, n_ratings: int, n_categories: int,
                     seed: int = 0) -> tuple[Interactions, ItemFeatures]:
    """A large, sparse synthetic catalogue: Zipf item popularity (most items rated a few
    times), one categorical item attribute, ratings 1..5 from a planted biased rank-8 model in
    which the category carries part of the item's bias and factors."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    items = rng.choice(n_items, n_ratings, p=pop / pop.sum())
    users = rng.integers(0, n_users, n_ratings)
    pairs = np.unique(users.astype(np.int64) * n_items + items)
    users, items = pairs // n_items, pairs % n_items
    cat = rng.integers(0, n_categories, n_items)
    k = 8
    P = rng.normal(0, 0.35, (n_users, k))
    Qc = rng.normal(0, 0.35, (n_categories, k))
    Q = 0.6 * Qc[cat] + rng.normal(0, 0.25, (n_items, k))
    b_u = rng.normal(0, 0.4, n_users)
    b_c = rng.normal(0, 0.4, n_categories)
    b_i = 0.7 * b_c[cat] + rng.normal(0, 0.3, n_items)
    r = 3.5 + b_u[users] + b_i[items] + np.einsum("ij,ij->i", P[users], Q[items])
    r = np.clip(np.round(r + rng.normal(0, 0.7, len(r))), 1, 5)
    log = Interactions.from_arrays(users, items, r.astype(np.float32))
    frame = pd.DataFrame({"item": np.arange(n_items), "category": [f"c{c}" for c in cat]})
    return log, ItemFeatures.from_pandas(frame, categorical=["category"])


def bench_sparse(n_items: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """Defaults on a large sparse catalogue: RMSE, fit time and peak memory against
    BaselineOnly (10 % of the ratings held out at random)."""
    import tracemalloc

    from chuchun.models import BaselineOnly

    n_users = max(n_items // 5, 1000)
    log, itf = sparse_catalogue(n_users, n_items, 4 * n_items, 40)
    rng = np.random.default_rng(1)
    test = rng.random(len(log)) < 0.1
    tr, te = log.subset(~test), log.subset(test)
    counts = np.bincount(log.items.index(tr.item_ids), minlength=len(log.items))
    rows = []
    for name, model, kw in [
        ("BaselineOnly (defaults)", BaselineOnly(), {}),
        ("FactorizationMachine (defaults: mcmc, 200 sweeps, 10 factors), ids",
         FactorizationMachine(random_state=0), {}),
        ("FactorizationMachine (defaults), ids + category",
         FactorizationMachine(random_state=0), {"item_features": itf}),
    ]:
        tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(tr, **kw)
        pred = model.predict(te.user_ids, te.item_ids)
        fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        known = log.items.index(te.item_ids)
        rare = counts[known] <= 2
        err = (np.clip(pred, 1, 5) - te.ratings) ** 2
        rows.append({"model": name, "RMSE": float(np.sqrt(err.mean())),
                     "RMSE, items with <= 2 training ratings": float(np.sqrt(err[rare].mean())),
                     "fit + predict s": fit_s, "CPU s": cpu_s, "peak MiB (numpy)": peak})
        print(rows[-1], flush=True)
    info = {"users": f"{n_users:,}", "items": f"{n_items:,}",
            "training ratings": f"{len(tr):,}", "test ratings": f"{len(te):,}",
            "items with <= 2 training ratings": f"{(counts <= 2).mean():.0%}"}
    return pd.DataFrame(rows).set_index("model"), info


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", default="1,2,3,4,5")
    ap.add_argument("--sections", default="rmse,solvers,ranking,coldstart")
    ap.add_argument("--feature-sets", default="0,1,2,3",
                    help="indices of the rmse feature sets to run (0 ids, 1 + side, 2 + implicit, "
                         "3 + implicit from all rated pairs)")
    ap.add_argument("--sparse-items", type=int, default=120_000,
                    help="catalogue size of the sparse section")
    ap.add_argument("--topic", default=None,
                    help="name of the results file (default: fm, or fm_<sections>)")
    ap.add_argument("--max-kept-samples", type=int, default=50,
                    help="chuchun's max_kept_samples (50 is the default; 195 keeps every "
                         "post-burn-in sample, as myFM's n_kept_samples=195)")
    ap.add_argument("--no-myfm", action="store_true", help="run chuchun only")
    ap.add_argument("--skip-myfm-features", action="store_true",
                    help="run myFM on the ids set only")
    args = ap.parse_args()
    folds = [int(x) for x in args.folds.split(",")]
    sections = args.sections.split(",")
    out = []
    if "rmse" in sections:
        run_myfm = {"ids"} if args.skip_myfm_features else {"ids", "ids + demographics + genres"}
        if args.no_myfm:
            run_myfm = set()
        names = list(FEATURE_SETS)
        sets = [names[int(j)] for j in args.feature_sets.split(",")]
        per_fold, mean = bench_rmse(folds, run_myfm, sets, args.max_kept_samples)
        out.append(("MCMC regression on MovieLens 100K, chuchun vs myFM (same design matrix)",
                    "Mean over folds " + ", ".join(f"u{f}" for f in folds) + ":\n\n"
                    + markdown_table(mean) + "\n\nPer fold:\n\n" + markdown_table(per_fold)))
    if "solvers" in sections:
        out.append(("SGD and ALS on ids + demographics + genres (u1)",
                    markdown_table(bench_solvers())))
    if "ranking" in sections:
        out.append(("Ranking on the ml-100k temporal split (NDCG@10)",
                    markdown_table(bench_ranking())))
    if "coldstart" in sections or "coldstart_reference" in sections:
        table, info = bench_coldstart(models="coldstart" in sections)
        out.append(("Cold-start items on ml-latest-small",
                    ", ".join(f"{k}: {v:,}" for k, v in info.items()) + "\n\n"
                    + markdown_table(table)))
    if "sparse" in sections:
        table, info = bench_sparse(args.sparse_items)
        out.append(("Defaults on a large sparse catalogue (synthetic)",
                    ", ".join(f"{k}: {v}" for k, v in info.items()) + "\n\n"
                    + markdown_table(table)))
    topic = args.topic or ("fm" if len(sections) == 4 else "fm_" + "_".join(sections))
    path = write_results(
        topic, "Factorization machines and HybridMF", out, libraries=["myfm"],
        notes="Times are single wall-clock fits on a 2-core machine shared with seven other "
              "developers' jobs during the run (load average at the end of the run: "
              f"{os.getloadavg()[0]:.0f}): they are noisy, and the "
              "chuchun/myFM ratio, measured in the same process one fit after the other, is "
              "the number to read. chuchun's kernels are loaded from the numba cache.")
    print(path)


if __name__ == "__main__":
    main()
