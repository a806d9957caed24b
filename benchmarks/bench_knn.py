"""Neighbourhood and content-based models side by side with Surprise and implicit.

    PYTHONPATH=src nice -n 5 python benchmarks/bench_knn.py            # every part
    PYTHONPATH=src python benchmarks/bench_knn.py --parts surprise,implicit

Parts (one process run; the markdown table goes to benchmarks/results/knn.md):

surprise  MovieLens 100K u1..u5: UserKNN/ItemKNN against Surprise's KNNBasic (user cosine),
          KNNWithMeans (item Pearson) and KNNBaseline (item Pearson-baseline), k=40, min_k=1;
          RMSE, fit + predict-all-test-pairs time, speed ratio. The numba kernels are compiled
          (or loaded from the cache) by a warm-up fit on u1 before timing.
tuned     best explicit kNN configuration, chosen on a validation split cut from each training
          fold (10% of the fold's training ratings, seed 0); the test folds are used once, for
          the chosen configuration.
implicit  ml-100k temporal split (per user, sort by timestamp then item id; last floor(n/5) to
          test): ImplicitItemKNN vs implicit's CosineRecommender(K=50), NDCG@10 and time.
scale     item-item top-50 cosine on the synthetic catalogue (300,000 items, 2,000,000
          interactions, 50,000 users; benchmarks/synthetic_catalogue.py) in a subprocess, with its
          peak resident memory.
content   ContentBased on ml-latest-small (genres + tags) with the same temporal split, ranking
          only the cold-start items (first appearing in test), against a random ordering; and one
          explained cold-start recommendation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from chuchun.data import ItemFeatures, Interactions, movielens_100k_folds, user_holdout
from chuchun.data.splits import Split
from chuchun.metrics.ranking import hit_rate_at_k, ndcg_at_k
from chuchun.models import ContentBased, ImplicitItemKNN, ItemKNN, UserKNN

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmark helpers: dataset location, machine description)

ROOT = common.REPO
SHARED = common.DATASETS
ML100K = SHARED / "ml-100k"
LATEST = SHARED / "ml-latest-small"
OUT = ROOT / "benchmarks" / "results" / "knn.md"


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


# -- Surprise cross-checks -------------------------------------------------------------------
CROSS = [
    ("KNNBasic, user cosine",
     lambda: UserKNN(similarity="corated_cosine", prediction="plain", shrinkage=0.0, damping=0.0,
                     max_stored=None),
     "KNNBasic", {"name": "cosine", "user_based": True}),
    ("KNNWithMeans, item Pearson",
     lambda: ItemKNN(similarity="pearson", prediction="mean_centered", shrinkage=0.0, damping=0.0,
                     max_stored=None),
     "KNNWithMeans", {"name": "pearson", "user_based": False}),
    ("KNNBaseline, item Pearson-baseline",
     lambda: ItemKNN(similarity="pearson_baseline", prediction="baseline", shrinkage=100.0, damping=0.0,
                     max_stored=None),
     "KNNBaseline", {"name": "pearson_baseline", "user_based": False}),
    ("KNNBaseline, item Pearson-baseline; chuchun max_stored='auto' (2 x 40 kept per item)",
     lambda: ItemKNN(similarity="pearson_baseline", prediction="baseline", shrinkage=100.0,
                     damping=0.0),
     "KNNBaseline", {"name": "pearson_baseline", "user_based": False}),
]


def surprise_part(folds: list[Split], lines: list[str], fold_numbers: list[int]) -> None:
    import surprise
    from surprise import Dataset, Reader
    from surprise.model_selection import PredefinedKFold

    data = Dataset.load_from_folds(
        [(str(ML100K / f"u{f}.base"), str(ML100K / f"u{f}.test")) for f in fold_numbers],
        Reader("ml-100k"),
    )
    sfolds = list(PredefinedKFold().split(data))
    names = ", ".join(f"u{f}" for f in fold_numbers)
    # warm-up: compile or load the numba kernels once, outside the timings
    for _, make, _, _ in CROSS:
        make().fit(folds[0].train).predict(folds[0].test.user_ids[:10],
                                           folds[0].test.item_ids[:10])
    lines += [
        f"## Surprise cross-check (MovieLens 100K, {names}, k=40, min_k=1)",
        "",
        f"scikit-surprise {surprise.__version__}; time = fit + prediction of every test pair, "
        f"per fold, mean over the folds ({names}); the data is already built on both sides "
        "(chuchun `Interactions`, Surprise `Trainset`), so this is the kernel ratio. chuchun "
        "runs the Surprise-identical configuration (`damping=0, max_stored=None`: every "
        "non-zero similarity kept, the equivalent of Surprise's dense matrix) except in the "
        "last row, which shows the memory-bounded default `max_stored='auto'` (its Surprise "
        "columns are those of the same Surprise configuration in the row above, not a second "
        "run).",
        "",
        "| configuration | chuchun RMSE | Surprise RMSE | diff | chuchun s/fold | "
        "Surprise s/fold | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    measured: dict[str, tuple[list[float], list[float]]] = {}  # Surprise runs, by config
    for label, make, sname, sim_options in CROSS:
        ours_rmse, ours_t, their_rmse, their_t = [], [], [], []
        key = f"{sname} {sorted(sim_options.items())}"
        for n, (split, (strain, stest)) in enumerate(zip(folds, sfolds, strict=True)):
            test = split.test
            t0 = time.perf_counter()
            model = make().fit(split.train)
            pred = model.predict(test.user_ids, test.item_ids)
            ours_t.append(time.perf_counter() - t0)
            ours_rmse.append(rmse(pred, test.values))
            if key in measured:  # the same Surprise configuration as a row above
                their_rmse.append(measured[key][0][n])
                their_t.append(measured[key][1][n])
                continue
            algo = getattr(surprise, sname)(k=40, min_k=1, sim_options=sim_options,
                                            verbose=False)
            t0 = time.perf_counter()
            algo.fit(strain)
            spred = algo.test(stest)
            their_t.append(time.perf_counter() - t0)
            their_rmse.append(surprise.accuracy.rmse(spred, verbose=False))
        measured.setdefault(key, (their_rmse, their_t))
        a, b = np.mean(ours_rmse), np.mean(their_rmse)
        ta, tb = np.mean(ours_t), np.mean(their_t)
        lines.append(f"| {label} | {a:.4f} | {b:.4f} | {a - b:+.4f} | {ta:.3f} | {tb:.2f} | "
                     f"{tb / ta:.1f}x |")
        print(lines[-1], flush=True)
    lines.append("")
    pandas_rows(fold_numbers, lines)


def pandas_rows(fold_numbers: list[int], lines: list[str]) -> None:
    """From a pandas table to predictions on both sides: what a user waits for."""
    import surprise
    from surprise import Dataset, Reader

    lines += [
        "From a pandas table to predictions (same folds and configurations): the ratings are "
        "read once into pandas DataFrames outside the timing; timed per fold is building the "
        "library's data from the training frame (chuchun `Interactions.from_pandas`, Surprise "
        "`Dataset.load_from_df(...).build_full_trainset()`), fitting, and predicting every "
        "test pair given as the test frame's columns (chuchun `predict(users, items)`, "
        "Surprise `test` on the list of (user, item, rating) tuples).",
        "",
        "| configuration | chuchun s/fold | Surprise s/fold | speed-up |",
        "|---|---|---|---|",
    ]
    frames = [(pd.read_csv(ML100K / f"u{f}.base", sep="\t", names=common.ML100K_COLUMNS),
               pd.read_csv(ML100K / f"u{f}.test", sep="\t", names=common.ML100K_COLUMNS))
              for f in fold_numbers]
    reader = Reader(rating_scale=(1, 5))
    for label, make, sname, sim_options in CROSS[:3]:
        ours_t, their_t = [], []
        for train_df, test_df in frames:
            t0 = time.perf_counter()
            data = Interactions.from_pandas(train_df, rating_scale=(1, 5))
            make().fit(data).predict(test_df.user.to_numpy(), test_df.item.to_numpy())
            ours_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            trainset = Dataset.load_from_df(train_df[["user", "item", "rating"]],
                                            reader).build_full_trainset()
            algo = getattr(surprise, sname)(k=40, min_k=1, sim_options=sim_options,
                                            verbose=False)
            algo.fit(trainset)
            algo.test(list(zip(test_df.user, test_df.item, test_df.rating, strict=True)))
            their_t.append(time.perf_counter() - t0)
        ta, tb = np.mean(ours_t), np.mean(their_t)
        lines.append(f"| {label}, pandas to predictions | {ta:.3f} | {tb:.2f} | "
                     f"{tb / ta:.1f}x |")
        print(lines[-1], flush=True)
    lines.append("")


# -- tuned explicit kNN ----------------------------------------------------------------------
GRID = {
    f"ItemKNN k={k} shrinkage={sh:g} bias_reg={reg:g} damping={d:g}": (
        lambda k=k, sh=sh, reg=reg, d=d: ItemKNN(
            n_neighbors=k, shrinkage=sh, user_regularization=reg, item_regularization=reg,
            damping=d))
    for k in (40, 80) for sh in (100.0, 300.0) for reg in (3.0, 10.0)
    for d in (0.0, 0.05, 0.1, 0.2)
}
USER_PARTNER = {
    f"UserKNN k={k} shrinkage=300 bias_reg={reg:g} damping={d:g}": (
        lambda k=k, reg=reg, d=d: UserKNN(n_neighbors=k, shrinkage=300.0,
                                          user_regularization=reg, item_regularization=reg,
                                          damping=d))
    for k in (40, 80) for reg in (3.0, 10.0) for d in (0.0, 0.1)
}
BLEND_WEIGHTS = (0.2, 0.3, 0.4, 0.5)


def _validation(train: Interactions, seed: int = 0) -> tuple[Interactions, Interactions]:
    mask = np.random.default_rng(seed).random(len(train)) < 0.1
    return train.subset(~mask), train.subset(mask)


def tuned_part(folds: list[Split], lines: list[str]) -> None:
    val_preds: dict[str, list[np.ndarray]] = {}
    val_truth: list[np.ndarray] = []
    for split in folds:
        fit_part, val = _validation(split.train)
        val_truth.append(val.values.astype(np.float64))
        for name, make in {**GRID, **USER_PARTNER}.items():
            m = make().fit(fit_part)
            val_preds.setdefault(name, []).append(m.predict(val.user_ids, val.item_ids))
    score = {n: np.mean([rmse(p, t) for p, t in zip(v, val_truth, strict=True)])
             for n, v in val_preds.items()}
    best_item = min(GRID, key=score.__getitem__)
    blends = {
        (u, w): np.mean([rmse(w * pu + (1 - w) * pi, t) for pu, pi, t in
                         zip(val_preds[u], val_preds[best_item], val_truth, strict=True)])
        for u in USER_PARTNER for w in BLEND_WEIGHTS
    }
    (best_user, best_w), best_blend = min(blends.items(), key=lambda kv: kv[1])
    test_item, test_blend = [], []
    for split in folds:
        test = split.test
        pi = GRID[best_item]().fit(split.train).predict(test.user_ids, test.item_ids)
        pu = USER_PARTNER[best_user]().fit(split.train).predict(test.user_ids, test.item_ids)
        test_item.append(rmse(pi, test.values))
        test_blend.append(rmse(best_w * pu + (1 - best_w) * pi, test.values))
    lines += [
        "## Best explicit kNN configuration (MovieLens 100K, u1..u5)",
        "",
        "Chosen on validation only: from each training fold 10% of its ratings (seed 0) are held "
        "out, every configuration is fitted on the other 90% and scored on them; the "
        "configuration with the lowest mean validation RMSE over the five folds is refitted "
        "on the whole training fold and scored once on the test fold. Grid: ItemKNN "
        "(Pearson-baseline similarity, baseline prediction) over n_neighbors {40, 80} x "
        "shrinkage {100, 300} x bias regularisation (user = item) {3, 10} x damping "
        "{0, 0.05, 0.1, 0.2} (default max_stored=500); then, for reference, a linear blend of "
        "predictions "
        "w * UserKNN + (1 - w) * best ItemKNN with w in {0.2, 0.3, 0.4, 0.5} and the UserKNN "
        "over n_neighbors {40, 80} x bias regularisation {3, 10} x damping {0, 0.1}, chosen the "
        "same way (the blend is computed here, not a chuchun model).",
        "",
        "| configuration | validation RMSE | test RMSE (mean u1..u5) | per fold |",
        "|---|---|---|---|",
        f"| {best_item} | {score[best_item]:.4f} | {np.mean(test_item):.4f} | "
        + ", ".join(f"{x:.4f}" for x in test_item) + " |",
        f"| blend: {best_w:g} x {best_user} + {1 - best_w:g} x {best_item} | {best_blend:.4f} | "
        f"{np.mean(test_blend):.4f} | " + ", ".join(f"{x:.4f}" for x in test_blend) + " |",
        "",
    ]
    print("\n".join(lines[-4:]), flush=True)


# -- implicit top-N --------------------------------------------------------------------------
def _relevant(train: Interactions, test: Interactions) -> tuple[np.ndarray, list[np.ndarray]]:
    """Test users (external ids) and their test items as training item indices; test items
    unknown to training get indices past the catalogue (they count but can never be hit)."""
    users = test.users.ids
    rel = []
    idx = train.items.index(test.item_ids)
    idx = np.where(idx >= 0, idx, train.n_items + test.item_idx)
    order = np.argsort(test.user_idx, kind="stable")
    bounds = np.searchsorted(test.user_idx[order], np.arange(test.n_users + 1))
    for u in range(test.n_users):
        rel.append(np.unique(idx[order[bounds[u]:bounds[u + 1]]]))
    return users, rel


REPEATS = 5


def implicit_part(ratings: Interactions, lines: list[str], repeats: int = REPEATS) -> None:
    import implicit
    from implicit.nearest_neighbours import CosineRecommender
    from threadpoolctl import threadpool_limits

    split = user_holdout(ratings, 0.2, order="time")
    train = split.train
    users, rel = _relevant(train, split.test)
    uidx = train.users.index(users)
    assert (uidx >= 0).all()
    x = train.csr.astype(np.float32)
    x.data[:] = 1.0
    rows = []
    configs = [
        ("chuchun ImplicitItemKNN(n_neighbors=50, cosine, binary)",
         dict(n_neighbors=50, binary=True)),
        ("chuchun ImplicitItemKNN(n_neighbors=50, bm25 + dot, binary)",
         dict(n_neighbors=50, binary=True, weighting="bm25", similarity="dot")),
    ]
    ImplicitItemKNN(n_neighbors=5, binary=True).fit(train).recommend(users[:3], k=10)  # warm-up

    def ours(params: dict) -> np.ndarray:
        return ImplicitItemKNN(**params).fit(train).recommend(users, k=10).item_idx

    def theirs() -> np.ndarray:
        ref = CosineRecommender(K=50)
        ref.fit(x, show_progress=False)
        ids, _ = ref.recommend(uidx, x[uidx], N=10, filter_already_liked_items=True)
        return np.where(ids < 0, -1, ids)

    runs = [(label, lambda p=params: ours(p)) for label, params in configs]
    runs.append(("implicit CosineRecommender(K=50)", theirs))
    times: dict[str, list[float]] = {label: [] for label, _ in runs}
    lists: dict[str, np.ndarray] = {}
    with threadpool_limits(1, "blas"):
        for _ in range(repeats):  # interleaved, so both libraries see the same machine load
            for label, fn in runs:
                t0 = time.perf_counter()
                lists[label] = fn()
                times[label].append(time.perf_counter() - t0)
    for label, _ in runs:
        rec = lists[label]
        rows.append((label, ndcg_at_k(rec, rel, 10).mean(), hit_rate_at_k(rec, rel, 10).mean(),
                     min(times[label])))
        print(rows[-1], flush=True)
    lines += [
        "## Implicit top-N (MovieLens 100K, temporal split)",
        "",
        f"implicit {implicit.__version__}. Per user, ratings sorted by timestamp then item id, the "
        "last floor(n/5) are test (`chuchun.data.user_holdout(order=\"time\")`); every rating is "
        "an interaction (value 1); training items excluded from the lists; NDCG@10 and hit "
        "rate@10 from `chuchun.metrics` over all test users; time = fit + top-10 for every "
        f"test user, best of {repeats} interleaved runs each (the machine is shared), both "
        "libraries on every core.",
        "",
        "| model | NDCG@10 | hit rate@10 | time (s) |",
        "|---|---|---|---|",
    ] + [f"| {a} | {b:.4f} | {c:.4f} | {d:.3f} |" for a, b, c, d in rows] + [""]


# -- scale -----------------------------------------------------------------------------------
SCALE_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {bench!r})
from synthetic_catalogue import synthetic_catalogue
from chuchun.similarity import similarity
x = synthetic_catalogue()
items = x.T.tocsr()
t0 = time.perf_counter()
s = similarity(items, "cosine", k=50)
t = time.perf_counter() - t0
print(json.dumps({{"seconds": t, "nnz": int(s.nnz), "shape": list(s.shape),
                  "max_per_row": int((s.indptr[1:] - s.indptr[:-1]).max())}}))
"""


def scale_part(lines: list[str]) -> None:
    code = SCALE_CHILD.format(bench=str(ROOT / "benchmarks"))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    info = json.loads(out.stdout.strip().splitlines()[-1])
    lines += [
        "## Scale: item-item top-50 cosine",
        "",
        "Synthetic catalogue from `benchmarks/synthetic_catalogue.py` (seed 0): 50,000 users, "
        "300,000 items, 2,000,000 distinct interactions, Zipf-like item popularity. Run in a "
        "subprocess; peak memory is its maximum resident set size (whole process: Python, "
        "numba, the generated data, the transpose and the result).",
        "",
        "| similarity time (s) | peak RSS (MB) | stored similarities | max per row | "
        "subprocess wall (s) |",
        "|---|---|---|---|---|",
        f"| {info['seconds']:.1f} | {peak_mb:.0f} | {info['nnz']:,} | {info['max_per_row']} | "
        f"{wall:.1f} |",
        "",
    ]
    print(lines[-2], flush=True)


# -- memory: ItemKNN on a large sparse explicit log -----------------------------------------
MEMORY_SETUP = """
import numpy as np, pandas as pd
from chuchun import Interactions
from chuchun.models import ItemKNN
z = np.load({path!r})
df = pd.DataFrame({{"user": z["user"], "item": z["item"], "rating": z["rating"]}})
"""
MEMORY_CODE = """
data = Interactions.from_pandas(df, timestamp_col=None, rating_scale=(1, 5))
m = ItemKNN(**{params!r}).fit(data)
m.predict(df.user.to_numpy()[:20000], df.item.to_numpy()[:20000])
m.recommend(data.users.ids[:20], k=10)
print("__STORED__", m.similarity_.nnz, m.similarity_.data.dtype)
"""


def memory_part(lines: list[str], quick: bool = False) -> None:
    """Peak RSS of ItemKNN fit + predict + recommend, each configuration in a fresh process."""
    import tempfile

    from synthetic_explicit import explicit_log

    from chuchun.models.knn import _EXPLICIT_MEASURES

    n_users, n_items, n_ratings = (5_000, 200_000, 200_000) if quick else (
        22_000, 1_000_000, 1_000_000)
    df = explicit_log(n_users, n_items, n_ratings, seed=0)
    counts = df.item.value_counts()
    tmp = Path(tempfile.mkdtemp()) / "explicit.npz"
    np.savez(tmp, user=df.user.to_numpy(), item=df.item.to_numpy(),
             rating=df.rating.to_numpy())
    configs: list[tuple[str, dict]] = [
        (f"{m}, n_neighbors=50", {"similarity": m, "n_neighbors": 50})
        for m in (("cosine",) if quick else _EXPLICIT_MEASURES)
    ]
    configs.append(("cosine, n_neighbors=100", {"similarity": "cosine", "n_neighbors": 100}))
    if not quick:  # quick: the growth with n_neighbors only
        configs.append(("cosine, n_neighbors=50, max_stored=500 (the former default)",
                        {"similarity": "cosine", "n_neighbors": 50, "max_stored": 500}))
    rows = []
    for label, params in configs:
        t0 = time.perf_counter()
        mem = common.peak_memory(MEMORY_CODE.format(params=params),
                                 setup=MEMORY_SETUP.format(path=str(tmp)))
        rows.append(f"| {label} | {mem['peak_mib']:.0f} | {mem['rss_before_mib']:.0f} | "
                    f"{mem['delta_mib']:.0f} | {time.perf_counter() - t0:.0f} |")
        print(rows[-1], flush=True)
    tmp.unlink()
    lines += [
        "## Memory: ItemKNN on a large sparse explicit log",
        "",
        f"`benchmarks/synthetic_explicit.py` (seed 0): {len(df):,} ratings (1-5) by "
        f"{df.user.nunique():,} users over {df.item.nunique():,} items (power-law item "
        f"popularity, log-normal user activity; {(counts < 5).mean():.0%} of the items have "
        "fewer than 5 ratings). Each configuration runs in a fresh subprocess "
        "(`common.peak_memory`): the log is loaded as a pandas table first (\"RSS before\"), "
        "then `Interactions.from_pandas`, `ItemKNN(...).fit`, `predict` of 20,000 pairs and "
        "`recommend` for 20 users run; \"peak RSS\" is the whole process's high-water mark "
        "during that work (Python, numba, pandas and the table included), \"added\" its "
        "increase over the RSS before. Defaults otherwise (`max_stored='auto'` keeps "
        "2 x n_neighbors similarities per item, float32). Wall time includes the process start "
        "and, on a shared 2-core machine, other people's work.",
        "",
        "| ItemKNN configuration | peak RSS (MiB) | RSS before (MiB) | added (MiB) | wall (s) |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


# -- content-based cold start ------------------------------------------------------------------
def _cold_start_eval(train: Interactions, test: Interactions, features: ItemFeatures,
                     **params: object) -> tuple[ContentBased, np.ndarray, list, np.ndarray]:
    """Fit on ``train``; users with cold-start test items, their relevant lists, the items."""
    cold = np.setdiff1d(np.unique(test.item_ids), train.items.ids)
    model = ContentBased(**params).fit(train, item_features=features)
    test_df = test.to_pandas()
    cold_rows = test_df[test_df["item"].isin(cold)]
    users = np.unique(cold_rows["user"].to_numpy())
    users = users[model.users_.index(users) >= 0]
    rel = [model.items_.index(cold_rows.loc[cold_rows.user == u, "item"].to_numpy())
           for u in users]
    return model, users, rel, cold


CONTENT_GRID = {
    "genres": dict(multi_valued=["genres"]),
    "genres + tags": dict(multi_valued=["genres"], text=["tags"]),
}


def content_part(lines: list[str]) -> None:
    import warnings

    from chuchun._exceptions import DataWarning

    warnings.simplefilter("ignore", DataWarning)  # unknown test items are the point here
    ratings_df = pd.read_csv(LATEST / "ratings.csv")
    movies = pd.read_csv(LATEST / "movies.csv").rename(columns={"movieId": "item"})
    tags = pd.read_csv(LATEST / "tags.csv")
    data = Interactions.from_pandas(
        ratings_df.rename(columns={"userId": "user", "movieId": "item"}),
        timestamp_col="timestamp", rating_scale=(0.5, 5.0),
    )
    split = user_holdout(data, 0.2, order="time")
    train, test = split.train, split.test
    tag_text = tags.groupby("movieId")["tag"].apply(lambda s: " ".join(map(str, s)))
    table = movies.assign(tags=movies.item.map(tag_text).fillna(""))
    table["genres"] = table.genres.replace("(no genres listed)", "")
    feats = {name: ItemFeatures.from_pandas(table, **kw) for name, kw in CONTENT_GRID.items()}
    # choose features and centring on a validation split cut from the training part the same way
    inner = user_holdout(train, 0.2, order="time")
    val_scores = {}
    for fname, f in feats.items():
        for centering in (True, False):
            m, vu, vrel, vcold = _cold_start_eval(inner.train, inner.test, f,
                                                  centering=centering)
            vrec = m.recommend(vu, k=10, candidates=vcold)
            val_scores[(fname, centering)] = ndcg_at_k(vrec.item_idx, vrel, 10).mean()
    best_f, best_c = max(val_scores, key=val_scores.__getitem__)
    t0 = time.perf_counter()
    model, users, rel, cold = _cold_start_eval(train, test, feats[best_f], centering=best_c)
    t_fit = time.perf_counter() - t0
    cold_idx = model.items_.index(cold)
    assert (cold_idx >= 0).all()
    t0 = time.perf_counter()
    recs = model.recommend(users, k=10, candidates=cold)
    t_rec = time.perf_counter() - t0
    ndcg = ndcg_at_k(recs.item_idx, rel, 10).mean()
    hit = hit_rate_at_k(recs.item_idx, rel, 10).mean()
    rnd_ndcg, rnd_hit = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        order = np.stack([rng.permutation(cold_idx)[:10] for _ in users])
        rnd_ndcg.append(ndcg_at_k(order, rel, 10).mean())
        rnd_hit.append(hit_rate_at_k(order, rel, 10).mean())
    # one explained cold-start recommendation: the user with the most cold-start hits
    titles = dict(zip(movies.item, movies.title, strict=True))
    hits = [len(set(recs.item_idx[j].tolist()) & set(rel[j].tolist())) for j in range(len(users))]
    j = int(np.argmax(hits))
    hit_items = [i for i in recs.item_idx[j] if i in set(rel[j].tolist())]
    explanation = model.explain(users[j], model.items_.ids[hit_items[0]], labels=titles)
    lines += [
        "## Content-based cold start (MovieLens latest-small, temporal split)",
        "",
        "Same per-user temporal split. Features: genres (multi-hot) and tags (TF-IDF over the "
        "words of all of a movie's tags in `tags.csv`, including tags applied during the test "
        "period — tags are item side information here, never who tagged; only "
        f"{np.isin(cold, tags.movieId.unique()).mean():.1%} of the cold-start items have any "
        "tag). Cold-start items = items in test that never occur in training; each user with "
        "cold-start test items gets a top-10 over the cold-start items only "
        "(`recommend(..., candidates=cold)`); random = mean over 20 seeded random orderings of "
        "the same candidates.",
        "",
        "Feature set ({genres, genres + tags}) and `centering` ({True, False}) were chosen by "
        "NDCG@10 on a validation split cut from the training part the same way (per user, last "
        "20% of the training ratings; cold-start = items first appearing there). Validation "
        "NDCG@10: " + ", ".join(f"{f}/centering={c}: {v:.4f}" for (f, c), v in
                               val_scores.items())
        + f". Chosen: {best_f}, centering={best_c}.",
        "",
        f"{len(cold)} cold-start items, {len(users)} users with cold-start test items; fit "
        f"{t_fit:.2f} s, recommend {t_rec:.2f} s.",
        "",
        "| ranking | hit rate@10 | NDCG@10 |",
        "|---|---|---|",
        f"| ContentBased ({best_f}, centering={best_c}) | {hit:.4f} | {ndcg:.4f} |",
        f"| random ordering | {np.mean(rnd_hit):.4f} | {np.mean(rnd_ndcg):.4f} |",
        f"| ratio | {hit / np.mean(rnd_hit):.1f}x | {ndcg / np.mean(rnd_ndcg):.1f}x |",
        "",
        "One explained cold-start recommendation (a hit: the user rated it in the test period):",
        "",
        "```",
        f"user {users[j]}: {explanation}",
        "```",
        "",
    ]
    print("\n".join(lines[-16:]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="surprise,tuned,implicit,scale,memory,content")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--folds", default="1,2,3,4,5",
                        help="MovieLens 100K folds of the surprise and tuned parts")
    parser.add_argument("--repeat", type=int, default=REPEATS,
                        help="interleaved timing runs of the implicit part (best is reported)")
    parser.add_argument("--quick", action="store_true",
                        help="a quick check: fold u1 only, one repetition, no tuning grid, a "
                        "smaller memory set (unless --folds/--parts say otherwise)")
    args = parser.parse_args()
    if args.quick:
        if args.folds == parser.get_default("folds"):
            args.folds = "1"
        if args.parts == parser.get_default("parts"):
            args.parts = "surprise,implicit,memory,content"
        args.repeat = 1
    parts = args.parts.split(",")
    fold_numbers = [int(f) for f in args.folds.split(",")]
    cmd = "PYTHONPATH=src nice -n 5 python " + " ".join(["benchmarks/bench_knn.py", *sys.argv[1:]])
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = common.machine_description(["surprise", "implicit"])
    lines = [
        "# Neighbourhood and content-based models",
        "",
        f"Command: `{cmd}` (run from the repository root)  ",
        f"Machine: {machine}  ",
        f"Date: {now}",
        "",
    ]
    folds = movielens_100k_folds(ML100K) if {"surprise", "tuned"} & set(parts) else []
    folds = [folds[f - 1] for f in fold_numbers] if folds else []
    if "surprise" in parts:
        surprise_part(folds, lines, fold_numbers)
    if "tuned" in parts:
        tuned_part(folds, lines)
    if "implicit" in parts:
        from chuchun.datasets import load_movielens_100k

        implicit_part(load_movielens_100k(ML100K).ratings, lines, args.repeat)
    if "scale" in parts:
        scale_part(lines)
    if "memory" in parts:
        memory_part(lines, quick=args.quick)
    if "content" in parts:
        content_part(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
