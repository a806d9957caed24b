"""Factorization machines and the hybrid model, chuchun vs myFM (and chuchun baselines).

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_fm.py [--folds 1,2,3,4,5] [--skip-myfm-features]
        [--sections rmse,solvers,ranking,coldstart] [--sections coldstart_users --cs-grid small]

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
    year (from the title) only. HybridMF's cold-item options (``item_id_dropout``,
    ``cold_item_prior``, the year also as a number) are chosen on the same protocol cut from
    the training period (its 80 % time quantile); references: the learned arrival prior
    alone, newest first, random, and two oracles that read the test period.
``coldstart_users``
    the issue's cold-start protocol with enough users to tell models apart: the per-user
    temporal split of bench_knn's content part (each user's latest 20 % of ratings to test,
    ``user_holdout(order="time")``, reused from there; cold-start items = test items that never
    occur in training; 185 test users) and its validation cut made the same way from the
    training part (181 users). ContentBased's item description (genres, tags, year) and
    centering, HybridMF's loss, ``item_id_dropout``, ``cold_item_prior`` and users described by
    the attributes of their rated items (``UserFeatures.from_item_profiles``), and the ranking
    FM's n_epochs are chosen on validation; every candidate's validation and test NDCG@10 is
    listed; random (mean of 20 draws), newest first, the arrival prior alone and two oracles as
    references; paired bootstrap 95 % intervals (over users) of the ratios to ContentBased.
    ``--cs-grid small`` keeps the BPR hybrid with and without user profiles.
``rmse_validation``
    validation RMSE of the implicit-block feature sets on a random 10 % cut of each training
    fold (the test fold unread); ``--rows-out`` appends rows as JSON lines, and
    ``--assemble TEST_ROWS VALIDATION_ROWS`` writes the tables (per fold, means, and the set
    chosen per fold on validation) from such files.
``coldstart_ceiling``
    what bounds the cold-start target on the per-user protocol: a half-split oracle (half of
    each test user's test-period cold ratings join training, the other half is ranked; 3
    seeds) for ContentBased and HybridMF, and other signals (recency and rarity weighting of the
    ContentBased profile, the release age at the user's time, title words, HybridMF on a
    popularity-discounted sample), each on validation and test.
``coldstart_prior``, ``coldstart_age``
    the arrival prior alone for several item descriptions, and HybridMF with the release age,
    chosen by the mean over four rolling validation cuts of the training period.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

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
    # the day of the rating as a categorical context column (Rendle 2019's time feature,
    # myFM's ml-100k example): known for every test rating at prediction time
    "+ implicit blocks + rating day": dict(side=True, implicit=True, day=True),
    "+ implicit blocks from all rated pairs + rating day":
        dict(side=True, implicit=True, all_pairs=True, day=True),
}


def with_day(data: Interactions) -> Interactions:
    """The log with its rating day (UTC) as a categorical context column ``day``."""
    day = (np.asarray(data.timestamps) // 86400).astype(str)
    return Interactions.from_arrays(data.user_ids, data.item_ids, data.ratings, data.timestamps,
                                    rating_scale=data.rating_scale, context={"day": day})


def myfm_inputs(fs: FeatureSpace, data: Interactions, day: bool):
    """myFM's input for the same design: the context block as X (None without context) and
    the user and item blocks as relation blocks (Rendle 2013), rows of unknown ids empty."""
    import myfm

    blocks = []
    for vocab, block, ids in ((fs.users, fs.user_block, data.user_ids),
                              (fs.items, fs.item_block, data.item_ids)):
        idx = vocab.index(ids)
        padded = sp.csr_matrix(sp.vstack([block, sp.csr_matrix((1, block.shape[1]))]),
                               dtype=np.float64)
        rows = np.where(idx >= 0, idx, block.shape[0]).astype(np.int64)
        blocks.append(myfm.RelationBlock(rows, padded))
    x = sp.csr_matrix(fs.context_rows(data, len(data)), dtype=np.float64) if day else None
    return x, blocks


def myfm_group_shapes(fs: FeatureSpace) -> list[int]:
    """chuchun's prior groups in myFM's column order (X, i.e. the context, first)."""
    g = fs.feature_groups
    pu_pi = fs.n_user_features + fs.n_item_features
    order = np.r_[g[pu_pi:], g[:pu_pi]]
    cuts = np.flatnonzero(np.diff(order)) + 1
    return np.diff(np.r_[0, cuts, len(order)]).tolist()


def _mcmc_setup(opt: dict, train: Interactions, test: Interactions, uf: Any, itf: Any,
                pairs: Interactions, max_kept: int, seed: int
                ) -> tuple[Any, Interactions, Interactions, dict]:
    """The MCMC FM of one feature set (rank 10, 200 sweeps) with its fit arguments, and the
    train/test parts with the rating day added when the set uses it."""
    kw: dict = dict(user_features=uf, item_features=itf) if opt["side"] else {}
    if opt.get("all_pairs"):
        kw["implicit_from"] = pairs
    if opt.get("day"):
        train, test = with_day(train), with_day(test)
        kw["context"] = ["day"]
    model = FactorizationMachine(solver="mcmc", n_factors=10, n_epochs=200, burn_in=5,
                                 max_kept_samples=max_kept, implicit_users=opt["implicit"],
                                 implicit_items=opt["implicit"], random_state=seed)
    return model, train, test, kw


def bench_rmse(folds: list[int], run_myfm: set[str], sets: list[str],
               max_kept: int = 50, rows_out: str | None = None
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
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
            day = bool(opt.get("day"))
            model, tr, te, kw = _mcmc_setup(opt, tr, te, uf, itf, all_pairs, max_kept, f)
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(tr, **kw)
            fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            if day:
                pred = model.predict_context(te.user_ids, te.item_ids,
                                             {"day": te.context["day"]})
            else:
                pred = model.predict(te.user_ids, te.item_ids)
            ours = rmse(pred, te.ratings)
            row = {"features": name, "fold": f"u{f}", "chuchun RMSE": ours,
                   "chuchun fit s": fit_s, "chuchun CPU s": cpu_s, "myFM RMSE": np.nan,
                   "myFM fit s": np.nan, "myFM CPU s": np.nan}
            if name in run_myfm and not opt["implicit"]:
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
            elif name in run_myfm:
                # implicit blocks: myFM's relation blocks hold chuchun's user and item blocks
                fs = model.feature_space
                xtr, btr = myfm_inputs(fs, tr, day)
                xte, bte = myfm_inputs(fs, te, day)
                fm = myfm.MyFMRegressor(rank=10, random_seed=f)
                t0, c0 = time.perf_counter(), time.process_time()
                fm.fit(xtr, tr.ratings, X_rel=btr, n_iter=200, n_kept_samples=195,
                       group_shapes=myfm_group_shapes(fs), callback=_quiet)
                row["myFM fit s"] = time.perf_counter() - t0
                row["myFM CPU s"] = time.process_time() - c0
                row["myFM RMSE"] = rmse(fm.predict(xte, bte), te.ratings)
            row["load (1 min)"] = os.getloadavg()[0]
            rows.append(row)
            print(row, flush=True)
            if rows_out:
                with open(rows_out, "a") as fh:
                    fh.write(json.dumps({k: (None if isinstance(v, float) and np.isnan(v)
                                             else v) for k, v in row.items()}) + "\n")
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


def bench_rmse_validation(folds: list[int], sets: list[str], max_kept: int = 50,
                          rows_out: str | None = None) -> pd.DataFrame:
    """Validation RMSE of each feature set on a random 10 % cut of each training fold (seed =
    fold number), the model fitted on the other 90 %; the test fold is never read. "All rated
    pairs" here means the pairs of the whole training fold, the validation ratings hidden."""
    uf, itf = ml100k_side()
    splits = ml100k_folds()
    rows = []
    for f in folds:
        full = splits[f - 1].train
        fit_part, val = _cut(full, 0.1, f)
        pairs = Interactions.from_arrays(full.user_ids, full.item_ids)
        for name in sets:
            opt = FEATURE_SETS[name]
            model, tr, va, kw = _mcmc_setup(opt, fit_part, val, uf, itf, pairs, max_kept, f)
            model.fit(tr, **kw)
            if opt.get("day"):
                pred = model.predict_context(va.user_ids, va.item_ids, {"day": va.context["day"]})
            else:
                pred = model.predict(va.user_ids, va.item_ids)
            row = {"features": name, "fold": f"u{f}", "validation RMSE": rmse(pred, va.ratings)}
            rows.append(row)
            print(row, flush=True)
            if rows_out:
                with open(rows_out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    return pd.DataFrame(rows)


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


def coldstart_split(frame: pd.DataFrame, quantile: float = 0.8) -> dict:
    """The cold-start protocol on a ratings frame (user, item, rating, timestamp).

    The split point is the ``quantile`` of the timestamps; items whose first rating falls
    after it are new; the test users are those with a rating before the split point and a
    rating of a new item after it, and their relevant items are the new items they rated.
    The training log is every rating up to the split point, timestamps kept.
    """
    t_split = float(np.quantile(frame["timestamp"], quantile))
    first = frame.groupby("item")["timestamp"].min()
    new_items = np.sort(first.index[first > t_split].to_numpy())
    before = frame[frame["timestamp"] <= t_split]
    after = frame[(frame["timestamp"] > t_split) & frame["item"].isin(new_items)]
    after = after[after["user"].isin(before["user"].unique())]
    train = Interactions.from_arrays(before["user"], before["item"], before["rating"],
                                     before["timestamp"])
    implicit = Interactions.from_arrays(before["user"], before["item"],
                                        timestamps=before["timestamp"])
    users = np.sort(after["user"].unique())
    relevant = after.groupby("user")["item"].apply(set)
    rel_pos = [np.searchsorted(new_items, np.array(sorted(relevant[u]))) for u in users]
    counts = after.groupby("item").size().reindex(new_items, fill_value=0).to_numpy()
    return {"train": train, "implicit": implicit, "before": before, "new_items": new_items,
            "users": users, "rel_pos": rel_pos, "counts": counts, "after": after,
            "t_split": t_split}


def coldstart_features(items: pd.DataFrame, year_numeric: bool) -> ItemFeatures:
    """Genres and release year (from the title, "Heat (1995)") as one category per year;
    optionally the year also as a standardised number (so that years absent from training
    still have a value)."""
    items = items.copy()
    items["genres"] = items["genres"].replace("(no genres listed)", np.nan)
    items["year"] = items["title"].str.extract(r"\((\d{4})\)\s*$", expand=False)
    items["release"] = pd.to_numeric(items["year"], errors="coerce")
    return ItemFeatures.from_pandas(items, multi_valued=["genres"], categorical=["year"],
                                    numeric=["release"] if year_numeric else (),
                                    numeric_scaling="standard")


def _ndcg_lists(top_pos: np.ndarray, cs: dict) -> float:
    return float(np.nanmean(ndcg_at_k(top_pos, cs["rel_pos"], 10)))


def _model_ndcg(model, cs: dict) -> float:
    recs = model.recommend(cs["users"], k=10, candidates=cs["new_items"], exclude_seen=True)
    pos = np.searchsorted(cs["new_items"], recs.item_ids.astype(cs["new_items"].dtype))
    return _ndcg_lists(pos, cs)


def _same_list_ndcg(order: np.ndarray, cs: dict) -> float:
    """NDCG@10 of one ranking of the new items (positions into ``new_items``) for everyone."""
    return _ndcg_lists(np.tile(order[:10], (len(cs["users"]), 1)), cs)


def _poisson_order(x, y: np.ndarray) -> np.ndarray:
    """New items ordered by a ridge Poisson fit of ``y`` on their features (in-sample)."""
    from scipy import optimize

    X = x.tocsr().astype(np.float64)

    def f(z):
        eta = np.clip(z[0] + X @ z[1:], -30, 30)
        mu = np.exp(eta)
        r = mu - y
        return float(mu.sum() - y @ eta + 0.5 * z[1:] @ z[1:]), np.r_[r.sum(), X.T @ r + z[1:]]

    z = optimize.minimize(f, np.zeros(1 + X.shape[1]), jac=True, method="L-BFGS-B").x
    return np.argsort(-(X @ z[1:]), kind="stable")


COLDSTART_GRID = [dict(item_id_dropout=d, cold_item_prior=c, year_numeric=y)
                  for y in (False, True) for d in (0.0, 0.5) for c in (0.0, 0.2)]


def bench_coldstart(models: bool = True) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """Cold start on ml-latest-small (see the module docstring). HybridMF's cold-item
    options (item-id dropout, the learned arrival prior, the year as a number) are chosen on a
    validation cold-start split cut from the training period alone (its own 80 % time
    quantile); references: ContentBased, random, newest first, the learned prior alone, and
    two oracles that read the test period."""
    from chuchun.models.hybrid import _arrival_rates

    ml = load_dataset("ml-latest-small")
    frame = ml.ratings.to_pandas()
    cs = coldstart_split(frame)
    val = coldstart_split(cs["before"])
    feats = {y: coldstart_features(ml.items, y) for y in (False, True)}
    rows: list[dict] = []
    val_rows: list[dict] = []
    per_user: dict[str, np.ndarray] = {}

    def hybrid(params: dict) -> HybridMF:
        return HybridMF(loss="bpr", n_factors=64, n_epochs=30, random_state=0,
                        item_id_dropout=params["item_id_dropout"],
                        cold_item_prior=params["cold_item_prior"])

    if models:
        best, best_val = COLDSTART_GRID[0], -1.0
        for params in COLDSTART_GRID:
            m = hybrid(params).fit(val["implicit"], item_features=feats[params["year_numeric"]])
            score = _model_ndcg(m, val)
            val_rows.append({**params, "validation NDCG@10": score})
            print(val_rows[-1], flush=True)
            if score > best_val:
                best, best_val = params, score
        t0 = time.perf_counter()
        m = hybrid(best).fit(cs["implicit"], item_features=feats[best["year_numeric"]])
        setting = ", ".join(f"{k}={v}" for k, v in best.items())
        per_user["HybridMF BPR (chosen)"] = _model_per_user(m, cs)
        rows.append({"model": f"HybridMF BPR, chosen on validation ({setting})",
                     "NDCG@10": per_user["HybridMF BPR (chosen)"].mean(),
                     "validation NDCG@10": best_val,
                     "fit s": time.perf_counter() - t0})
        print(rows[-1], flush=True)
        plain = dict(item_id_dropout=0.0, cold_item_prior=0.0, year_numeric=False)
        if best != plain:
            t0 = time.perf_counter()
            m0 = hybrid(plain).fit(cs["implicit"], item_features=feats[False])
            per_user["HybridMF BPR (no cold-item options)"] = _model_per_user(m0, cs)
            rows.append({"model": "HybridMF BPR, no cold-item options (genres, year)",
                         "NDCG@10": per_user["HybridMF BPR (no cold-item options)"].mean(),
                         "validation NDCG@10": next(
                             r["validation NDCG@10"] for r in val_rows
                             if all(r[k] == v for k, v in plain.items())),
                         "fit s": time.perf_counter() - t0})
            print(rows[-1], flush=True)
        val_content = _model_ndcg(ContentBased().fit(val["train"], item_features=feats[False]),
                                  val)
        t0 = time.perf_counter()
        cb = ContentBased().fit(cs["train"], item_features=feats[False])
        per_user["ContentBased"] = _model_per_user(cb, cs)
        rows.append({"model": "ContentBased (genres, year)",
                     "NDCG@10": per_user["ContentBased"].mean(),
                     "validation NDCG@10": val_content, "fit s": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    # the learned arrival prior alone: one list for every user, from the training log only
    share = 0.2
    for y in (False, True):
        itf = feats[y]
        vocab = cs["implicit"].items
        raw = itf.align(_union_vocab(vocab, itf)).matrix.tocsr()
        full = _union_vocab(vocab, itf)
        iidx = full.index(cs["implicit"].item_ids)
        _, log_rate = _arrival_rates(cs["implicit"].timestamps, iidx, raw, share)
        order = np.argsort(-log_rate[full.index(cs["new_items"])], kind="stable")
        vfull = _union_vocab(val["implicit"].items, itf)
        _, vrate = _arrival_rates(val["implicit"].timestamps,
                                  vfull.index(val["implicit"].item_ids),
                                  itf.align(vfull).matrix.tocsr(), share)
        vorder = np.argsort(-vrate[vfull.index(val["new_items"])], kind="stable")
        rows.append({"model": "Learned arrival prior alone, same list for every user "
                              f"(genres, year{', year as a number' if y else ''})",
                     "NDCG@10": _same_list_ndcg(order, cs),
                     "validation NDCG@10": _same_list_ndcg(vorder, val), "fit s": np.nan})
    rng = np.random.default_rng(0)
    idx_new = np.arange(len(cs["new_items"]))
    vals = [_ndcg_lists(np.stack([rng.permutation(idx_new)[:10] for _ in cs["users"]]), cs)
            for _ in range(20)]
    rows.append({"model": "Random (mean of 20 draws)", "NDCG@10": float(np.mean(vals)),
                 "validation NDCG@10": np.nan, "fit s": 0.0})
    year = pd.to_numeric(ml.items.set_index("item")["title"].str.extract(
        r"\((\d{4})\)\s*$", expand=False), errors="coerce")
    for name, split in (("test", cs), ("validation", val)):
        y = year.reindex(split["new_items"])
        split["newest"] = np.argsort(-y.fillna(y.median()).to_numpy(), kind="stable")
    per_user["Newest release first"] = _per_user(
        np.tile(cs["newest"][:10], (len(cs["users"]), 1)), cs)
    rows.append({"model": "Newest release first (no model, same list for every user)",
                 "NDCG@10": _same_list_ndcg(cs["newest"], cs),
                 "validation NDCG@10": _same_list_ndcg(val["newest"], val), "fit s": 0.0})
    # bounds read from the test period itself
    counts = cs["counts"].astype(np.float64)
    after = cs["after"]
    top = []
    for u in cs["users"]:
        own = np.searchsorted(cs["new_items"], after.loc[after["user"] == u, "item"].to_numpy())
        c = counts.copy()
        c[own] -= 1.0
        top.append(np.argsort(-c, kind="stable")[:10])
    rows.append({"model": "Oracle: test-period popularity of the new items (other users' "
                          "ratings), same list for every user",
                 "NDCG@10": _ndcg_lists(np.stack(top), cs), "validation NDCG@10": np.nan,
                 "fit s": np.nan})
    feat_rows = feats[True].align(_union_vocab(cs["implicit"].items, feats[True]))
    xf = feat_rows.matrix.tocsr()[_union_vocab(cs["implicit"].items, feats[True]).index(
        cs["new_items"])]
    rows.append({"model": "Oracle: the best feature-based list, a Poisson fit of the test-period "
                          "popularity on genres and year (in-sample)",
                 "NDCG@10": _same_list_ndcg(_poisson_order(xf, counts), cs),
                 "validation NDCG@10": np.nan, "fit s": np.nan})
    info: dict[str, Any] = {
        "new items": len(cs["new_items"]), "test users": len(cs["users"]),
        "test pairs": len(cs["after"]), "training ratings": len(cs["train"]),
        "validation new items": len(val["new_items"]),
        "validation users": len(val["users"]), "validation pairs": len(val["after"])}
    ci_rows = []
    for key in ("HybridMF BPR (chosen)", "HybridMF BPR (no cold-item options)",
                "Newest release first"):
        if key in per_user and "ContentBased" in per_user:
            ci = paired_ratio_interval(per_user[key], per_user["ContentBased"])
            ci_rows.append({"ratio of mean NDCG@10": f"{key} / ContentBased",
                            "ratio": ci["ratio"],
                            "95 % interval (paired bootstrap over users)":
                                f"{ci['low']:.2f} – {ci['high']:.2f}",
                            "share of resamples >= 2": ci["share >= 2"]})
    info["bootstrap"] = pd.DataFrame(ci_rows)
    return pd.DataFrame(rows).set_index("model"), info, pd.DataFrame(val_rows)


# -- cold start on the per-user temporal split (the protocol of bench_knn's content part) ---
def paired_ratio_interval(a: np.ndarray, b: np.ndarray, n_boot: int = 2000,
                          seed: int = 0) -> dict[str, float]:
    """Ratio of mean per-user scores ``mean(a) / mean(b)`` with a paired bootstrap over
    users: ``n_boot`` resamples of the users (with replacement), both models scored on the
    same resample; the 2.5 and 97.5 percentiles of the resampled ratios, and the share of
    resamples whose ratio is at least 2."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(a), (n_boot, len(a)))
    num, den = a[idx].mean(axis=1), b[idx].mean(axis=1)
    ratios = num / np.where(den > 0, den, np.nan)
    lo, hi = np.nanpercentile(ratios, [2.5, 97.5])
    return {"ratio": float(a.mean() / b.mean()), "low": float(lo), "high": float(hi),
            "share >= 2": float(np.nanmean(ratios >= 2.0))}


def user_coldstart_case(train: Interactions, test: Interactions) -> dict:
    """Cold-start items of a per-user split: test items that never occur in ``train``; the
    users (known in ``train``) who rated one, and their relevant cold items as positions into
    the sorted cold list. The same definition as ``bench_knn._cold_start_eval``."""
    cold = np.setdiff1d(np.unique(test.item_ids), train.items.ids)
    frame = test.to_pandas()
    rows = frame[frame["item"].isin(cold)]
    users = np.unique(rows["user"].to_numpy())
    users = users[train.users.index(users) >= 0]
    rel_pos = [np.searchsorted(cold, np.unique(rows.loc[rows["user"] == u, "item"].to_numpy()))
               for u in users]
    counts = rows.groupby("item").size().reindex(cold, fill_value=0).to_numpy()
    implicit = Interactions.from_arrays(train.user_ids, train.item_ids,
                                        timestamps=train.timestamps)
    return {"train": train, "implicit": implicit, "new_items": cold, "users": users,
            "rel_pos": rel_pos, "after": rows, "counts": counts}


def _per_user(top_pos: np.ndarray, cs: dict) -> np.ndarray:
    return np.asarray(ndcg_at_k(top_pos, cs["rel_pos"], 10), dtype=np.float64)


def _model_per_user(model, cs: dict) -> np.ndarray:
    recs = model.recommend(cs["users"], k=10, candidates=cs["new_items"], exclude_seen=True)
    pos = np.searchsorted(cs["new_items"], recs.item_ids.astype(cs["new_items"].dtype))
    return _per_user(pos, cs)


def _random_per_user(cs: dict, n_draws: int = 20) -> np.ndarray:
    """Per-user NDCG@10 of a random order of the cold items, averaged over ``n_draws``."""
    n = len(cs["new_items"])
    draws = []
    for seed in range(n_draws):
        rng = np.random.default_rng(seed)
        draws.append(_per_user(np.stack([rng.permutation(n)[:10] for _ in cs["users"]]), cs))
    return np.mean(draws, axis=0)


def latest_small_item_table() -> pd.DataFrame:
    """ml-latest-small's movies with genres, release year (from the title) and the words of
    their tags (``tags.csv``, as in bench_knn's content part: item side information)."""
    from bench_knn import LATEST

    movies = pd.read_csv(LATEST / "movies.csv").rename(columns={"movieId": "item"})
    tags = pd.read_csv(LATEST / "tags.csv")
    text = tags.groupby("movieId")["tag"].apply(lambda s: " ".join(map(str, s)))
    movies["tags"] = movies["item"].map(text).fillna("")
    movies["genres"] = movies["genres"].replace("(no genres listed)", np.nan)
    movies["year"] = movies["title"].str.extract(r"\((\d{4})\)\s*$", expand=False)
    return movies


#: item descriptions tried for every model on the per-user cold-start protocol
USER_CS_FEATURES = {
    "genres": dict(multi_valued=["genres"]),
    "genres, tags": dict(multi_valued=["genres"], text=["tags"]),
    "genres, year": dict(multi_valued=["genres"], categorical=["year"]),
    "genres, year, tags": dict(multi_valued=["genres"], categorical=["year"], text=["tags"]),
}

# HybridMF and the FM use the item description chosen for ContentBased on validation.
# cold_item_prior does not change training (the prior is fitted after the epochs): each
# trained model is scored with and without it. user_profile: users are also described by the
# attributes of the items they rated in training (see user_profile_features).
USER_CS_HYBRID_GRID = [
    dict(loss=loss, user_profile=up, item_id_dropout=d, n_epochs=30)
    for loss in ("bpr", "warp") for up in (False, True) for d in (0.0, 0.5)]
USER_CS_PRIORS = (0.0, 0.2)

USER_CS_FM_GRID = [dict(implicit_users=False, regularization=0.01, n_epochs=ep)
                   for ep in (10, 30)]
# --cs-grid small: the BPR hybrid with and without user profiles (no dropout), for a short run
USER_CS_HYBRID_SMALL = [p for p in USER_CS_HYBRID_GRID
                        if p["loss"] == "bpr" and p["item_id_dropout"] == 0.0]


def user_profile_features(log: Interactions, items: ItemFeatures) -> UserFeatures:
    """Each user of ``log`` described by the attributes of the items they interacted with:
    the mean of those items' attribute rows (``profile:<feature>`` columns; text columns such
    as tags left out, they would make every user row dense). Built from the training log only."""
    return UserFeatures.from_item_profiles(log, items, columns=["genres", "year"])


def load_user_coldstart() -> tuple[dict, dict, dict[str, ItemFeatures], pd.DataFrame]:
    """The per-user temporal split of bench_knn's content part (each user's latest 20 % of
    ratings to test, ``user_holdout(order="time")``) and its validation cut, made the same way
    from the training part."""
    from bench_knn import LATEST

    from chuchun.data.splits import user_holdout

    ratings = pd.read_csv(LATEST / "ratings.csv").rename(
        columns={"userId": "user", "movieId": "item"})
    data = Interactions.from_pandas(ratings, timestamp_col="timestamp", rating_scale=(0.5, 5.0))
    split = user_holdout(data, 0.2, order="time")
    inner = user_holdout(split.train, 0.2, order="time")
    table = latest_small_item_table()
    feats = {name: ItemFeatures.from_pandas(table, **kw) for name, kw in USER_CS_FEATURES.items()}
    test = user_coldstart_case(split.train, split.test)
    test["test"] = split.test
    val = user_coldstart_case(inner.train, inner.test)
    val["test"] = inner.test
    return test, val, feats, table


def _setting(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def bench_coldstart_users(hybrid_grid: list[dict] | None = None,
                          fm_grid: list[dict] | None = None,
                          n_factors: int = 32) -> tuple[list[tuple[str, str]], dict]:
    """Cold start on the per-user temporal split of ml-latest-small (185 test users): every
    setting chosen on the validation cut; validation and test NDCG@10 of every candidate;
    paired bootstrap intervals of the ratios to ContentBased."""
    from bench_knn import _cold_start_eval

    from chuchun.models.hybrid import _arrival_rates

    cs, val, feats, table = load_user_coldstart()
    hybrid_grid = USER_CS_HYBRID_GRID if hybrid_grid is None else hybrid_grid
    fm_grid = USER_CS_FM_GRID if fm_grid is None else fm_grid
    per_user: dict[str, np.ndarray] = {}
    rows: list[dict] = []

    # ContentBased, through bench_knn's own evaluation (same users, same relevant items)
    def content(case: dict, f: str, centering: bool) -> np.ndarray:
        m, users, rel, cold = _cold_start_eval(case["train"], case["test"], feats[f],
                                               centering=centering)
        assert np.array_equal(users, case["users"]) and np.array_equal(cold, case["new_items"])
        recs = m.recommend(users, k=10, candidates=cold)
        return np.asarray(ndcg_at_k(recs.item_idx, rel, 10), dtype=np.float64)

    cb_rows = []
    for f in USER_CS_FEATURES:
        for centering in (True, False):
            cb_rows.append({"features": f, "centering": centering,
                            "validation NDCG@10": float(content(val, f, centering).mean()),
                            "test NDCG@10": float(content(cs, f, centering).mean())})
    cb_grid = pd.DataFrame(cb_rows)
    best_cb = cb_grid.loc[cb_grid["validation NDCG@10"].idxmax()]
    t0 = time.perf_counter()
    per_user["content"] = content(cs, best_cb["features"], bool(best_cb["centering"]))
    rows.append({"model": f"ContentBased, chosen on validation ({best_cb['features']}, "
                          f"centering={best_cb['centering']})",
                 "validation NDCG@10": best_cb["validation NDCG@10"],
                 "NDCG@10": per_user["content"].mean(), "fit s": time.perf_counter() - t0})
    print(rows[-1], flush=True)
    item_set = str(best_cb["features"])

    def hybrid(params: dict, case: dict) -> list[tuple[dict, np.ndarray, float]]:
        """One fit per trained setting, scored with each cold_item_prior (the prior is an
        after-training step: the fit with the prior is the fit without it, plus the prior)."""
        t0 = time.perf_counter()
        m = HybridMF(loss=params["loss"], n_factors=n_factors, n_epochs=params["n_epochs"],
                     item_id_dropout=params["item_id_dropout"],
                     cold_item_prior=max(USER_CS_PRIORS), random_state=0, n_threads=2)
        itf = feats[item_set]
        uf = user_profile_features(case["implicit"], itf) if params["user_profile"] else None
        m.fit(case["implicit"], item_features=itf, user_features=uf)
        fit_s = time.perf_counter() - t0
        out = []
        for prior in sorted(USER_CS_PRIORS, reverse=True):
            if prior != max(USER_CS_PRIORS):
                if prior > 0:
                    raise ValueError("one fit serves one prior share and none")
                m.prior_coef_ = np.zeros(0, dtype=np.float32)
                m.item_prior_ = np.zeros_like(m.item_prior_)
                m._cache = {}
            out.append(({**params, "cold_item_prior": prior}, _model_per_user(m, case), fit_s))
        return out

    def fm(params: dict, case: dict) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        m = FactorizationMachine(task="ranking", n_factors=n_factors, learning_rate=0.05,
                                 regularization=params["regularization"],
                                 implicit_users=params["implicit_users"],
                                 n_epochs=params["n_epochs"], init_std=0.01, random_state=0,
                                 n_threads=2)
        m.fit(case["implicit"], item_features=feats[item_set])
        fit_s = time.perf_counter() - t0
        return [(params, _model_per_user(m, case), fit_s)]

    grids = {}
    for name, run, grid in (("HybridMF", hybrid, hybrid_grid),
                            ("FactorizationMachine ranking", fm, fm_grid)):
        g_rows = []
        if not grid:
            continue
        for params in grid:
            for (full, v, _), (_, t, fit_s) in zip(run(params, val), run(params, cs),
                                                   strict=True):
                per_user[f"{name} {_setting(full)}"] = t
                g_rows.append({**full, "validation NDCG@10": float(v.mean()),
                               "test NDCG@10": float(t.mean()), "fit s (test)": fit_s})
                print(name, g_rows[-1], flush=True)
        frame = pd.DataFrame(g_rows)
        grids[name] = frame
        best = frame.loc[frame["validation NDCG@10"].idxmax()]
        params = {k: best[k] for k in g_rows[0] if k in frame.columns
                  and k not in ("validation NDCG@10", "test NDCG@10", "fit s (test)")}
        key = f"{name} {_setting(params)}"
        per_user[name] = per_user[key]
        rows.append({"model": f"{name}, chosen on validation ({_setting(params)})",
                     "validation NDCG@10": best["validation NDCG@10"],
                     "NDCG@10": best["test NDCG@10"], "fit s": best["fit s (test)"]})
        print(rows[-1], flush=True)
    # the hybrid's most plain setting, for reference (not a choice)
    plain = next(({**p, "cold_item_prior": 0.0} for p in hybrid_grid
                  if p["item_id_dropout"] == 0.0 and p["loss"] == "bpr"
                  and p["n_epochs"] == max(q["n_epochs"] for q in hybrid_grid)
                  and not p["user_profile"]), None)
    if plain is not None and "HybridMF" in grids:
        g = grids["HybridMF"]
        r = g[(g[list(plain)] == pd.Series(plain)).all(axis=1)].iloc[0]
        per_user["HybridMF plain"] = per_user[f"HybridMF {_setting(plain)}"]
        rows.append({"model": f"HybridMF, no cold-item options ({_setting(plain)}; reference, "
                              "not chosen)",
                     "validation NDCG@10": r["validation NDCG@10"], "NDCG@10": r["test NDCG@10"],
                     "fit s": r["fit s (test)"]})
    # popularity-free and no-model references
    for name, case in (("test", cs), ("validation", val)):
        case["random"] = _random_per_user(case)
        year = pd.to_numeric(table.set_index("item")["year"], errors="coerce")
        y = year.reindex(case["new_items"])
        case["newest"] = np.argsort(-y.fillna(y.median()).to_numpy(), kind="stable")
        itf = feats["genres, year"]
        full = _union_vocab(case["implicit"].items, itf)
        _, rate = _arrival_rates(case["implicit"].timestamps,
                                 full.index(case["implicit"].item_ids),
                                 itf.align(full).matrix.tocsr(), 0.2)
        case["prior"] = np.argsort(-rate[full.index(case["new_items"])], kind="stable")
    per_user["random"] = cs["random"]
    rows.append({"model": "Random (mean of 20 draws)",
                 "validation NDCG@10": val["random"].mean(), "NDCG@10": cs["random"].mean(),
                 "fit s": 0.0})

    def same_list(order: np.ndarray, case: dict) -> np.ndarray:
        return _per_user(np.tile(order[:10], (len(case["users"]), 1)), case)

    per_user["newest"] = same_list(cs["newest"], cs)
    rows.append({"model": "Newest release first (no model, same list for every user)",
                 "validation NDCG@10": same_list(val["newest"], val).mean(),
                 "NDCG@10": per_user["newest"].mean(), "fit s": 0.0})
    per_user["prior"] = same_list(cs["prior"], cs)
    rows.append({"model": "Learned arrival prior alone (genres, year; HybridMF's "
                          "cold_item_prior=0.2 model), same list for every user",
                 "validation NDCG@10": same_list(val["prior"], val).mean(),
                 "NDCG@10": per_user["prior"].mean(), "fit s": np.nan})
    # bounds that read the test period
    counts = cs["counts"].astype(np.float64)
    top = []
    for u, rel in zip(cs["users"], cs["rel_pos"], strict=True):
        c = counts.copy()
        c[rel] -= 1.0
        top.append(np.argsort(-c, kind="stable")[:10])
    per_user["oracle popularity"] = _per_user(np.stack(top), cs)
    rows.append({"model": "Oracle: test-period popularity of the cold items (other users' "
                          "ratings), same list for every user",
                 "validation NDCG@10": np.nan, "NDCG@10": per_user["oracle popularity"].mean(),
                 "fit s": np.nan})
    itf = feats["genres, year"]
    full = _union_vocab(cs["implicit"].items, itf)
    xf = itf.align(full).matrix.tocsr()[full.index(cs["new_items"])]
    per_user["oracle features"] = same_list(_poisson_order(xf, counts), cs)
    rows.append({"model": "Oracle: the best feature-based list, a Poisson fit of the "
                          "test-period popularity on genres and year (in-sample)",
                 "validation NDCG@10": np.nan, "NDCG@10": per_user["oracle features"].mean(),
                 "fit s": np.nan})
    table_main = pd.DataFrame(rows).set_index("model")
    # paired bootstrap over the test users: ratios to ContentBased
    ci_rows = []
    for label, key in (("HybridMF (chosen) / ContentBased (chosen)", "HybridMF"),
                       ("HybridMF (plain) / ContentBased (chosen)", "HybridMF plain"),
                       ("FactorizationMachine ranking (chosen) / ContentBased (chosen)",
                        "FactorizationMachine ranking"),
                       ("Newest release first / ContentBased (chosen)", "newest"),
                       ("Learned arrival prior alone / ContentBased (chosen)", "prior"),
                       ("Random / ContentBased (chosen)", "random"),
                       ("ContentBased (chosen) / Random", None)):
        if key is not None and key not in per_user:
            continue
        a, b = ((per_user["content"], per_user["random"]) if key is None
                else (per_user[key], per_user["content"]))
        ci = paired_ratio_interval(a, b)
        ci_rows.append({"ratio of mean NDCG@10": label, "ratio": ci["ratio"],
                        "95 % interval (paired bootstrap over users)":
                            f"{ci['low']:.2f} – {ci['high']:.2f}",
                        "share of resamples >= 2": ci["share >= 2"]})
    info = {"cold items (test)": len(cs["new_items"]), "test users": len(cs["users"]),
            "test pairs": len(cs["after"]), "training ratings": len(cs["train"]),
            "validation cold items": len(val["new_items"]),
            "validation users": len(val["users"]), "validation pairs": len(val["after"])}
    out = [
        ("Cold-start items, per-user temporal split (the ContentBased protocol, 185 users)",
         ", ".join(f"{k}: {v:,}" for k, v in info.items()) + "\n\n"
         + markdown_table(table_main)),
        ("Ratios to ContentBased, paired bootstrap over the test users (2,000 resamples)",
         markdown_table(pd.DataFrame(ci_rows), index=False)),
        ("ContentBased candidates (validation and test)", markdown_table(cb_grid, index=False)),
    ]
    if "HybridMF" in grids:
        out.append((f"HybridMF candidates (validation and test; items: {item_set}, "
                    f"{n_factors} factors)", markdown_table(grids["HybridMF"], index=False)))
    if "FactorizationMachine ranking" in grids:
        out.append((f"FactorizationMachine ranking candidates (validation and test; items: "
                    f"{item_set}, {n_factors} factors)",
                    markdown_table(grids["FactorizationMachine ranking"], index=False)))
    return out, per_user


#: HybridMF settings of the ceiling section: the one validation chooses on the per-user
#: protocol, and the same without the cold-item prior (the best test score of the full grid)
CEILING_HYBRIDS = {
    "HybridMF (WARP, item_id_dropout=0.5, cold_item_prior=0.2; chosen)":
        dict(item_id_dropout=0.5, cold_item_prior=0.2),
    "HybridMF (WARP, item_id_dropout=0.5, no prior)": dict(item_id_dropout=0.5),
}
CEILING_ITEMS = "genres, year, tags"  # the description validation chose for ContentBased


def _scores(model, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The model's scores of ``items`` for ``users`` (known ids), as float64."""
    s = np.asarray(model._score(model.users_.index(users)), dtype=np.float64)
    return s[:, model.items_.index(items)]


def _top10(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :10]


def _release_age_scores(case: dict, year: pd.Series) -> np.ndarray:
    """Log-frequency of the release age (rating year - release year) among the training
    ratings, read at each user's latest training rating: one function for every user,
    shifted by the user's time; films released after that year score lowest."""
    def years(ts: np.ndarray) -> np.ndarray:
        return pd.DatetimeIndex(pd.to_datetime(np.asarray(ts), unit="s")).year.to_numpy()

    tr = case["train"].to_pandas()
    age = years(tr["timestamp"].to_numpy()) - year.reindex(tr["item"]).to_numpy()
    age = np.clip(age[~np.isnan(age)], -1, 80).astype(int)
    log_h = np.log((np.bincount(age + 1, minlength=82) + 1.0) / (len(age) + 82.0))
    t_u = tr.groupby("user")["timestamp"].max().reindex(case["users"]).to_numpy()
    ry = year.reindex(case["new_items"]).to_numpy()
    ry = np.where(np.isnan(ry), np.nanmedian(ry), ry)
    a = years(t_u)[:, None] - ry[None, :]
    s = log_h[np.clip(a, -1, 80).astype(int) + 1]
    return np.where(a < -1, log_h.min() - 1.0, s)


def bench_coldstart_ceiling(seeds: tuple[int, ...] = (0, 1, 2),
                            n_factors: int = 32) -> list[tuple[str, str]]:
    """How far the item attributes can take a cold-start ranker on the per-user protocol.

    1. Half-split oracle: for each test user with two or more cold test items, a random half
       (A) of those ratings joins the training log; the other half (B) is ranked among the
       cold items minus A. Each model is fitted with and without A; the fits without A are the
       baselines on exactly the same ranking problem. The oracle knows half of what each user
       chose in the test period, which no deployed model can.
    2. Other signals, each scored on validation and test: recency and rarity weighting of the
       ContentBased profile, the release age at the user's time, title words, and HybridMF
       trained on a popularity-discounted sample of the log.
    """
    cs, val, feats, table = load_user_coldstart()
    itf = feats[CEILING_ITEMS]
    year = pd.to_numeric(table.set_index("item")["year"], errors="coerce")

    def content(train: Interactions, features: ItemFeatures = itf) -> ContentBased:
        return ContentBased(centering=False).fit(train, item_features=features)

    def hybrid(train: Interactions, params: dict) -> HybridMF:
        implicit = Interactions.from_arrays(train.user_ids, train.item_ids,
                                            timestamps=train.timestamps)
        return HybridMF(**{"loss": "warp", "n_factors": n_factors, "n_epochs": 30,
                           "random_state": 0, "n_threads": 2, **params}
                        ).fit(implicit, item_features=itf)

    # 1. half-split oracle
    cold, after = cs["new_items"], cs["after"]
    keep = [j for j, rel in enumerate(cs["rel_pos"]) if len(rel) >= 2]
    users = cs["users"][keep]
    train_frame = cs["train"].to_pandas()
    per_seed: dict[str, list[np.ndarray]] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        halves = []
        for j in keep:
            rel = cs["rel_pos"][j]
            order = rng.permutation(len(rel))
            halves.append((rel[order[: len(rel) // 2]], rel[order[len(rel) // 2:]]))
        extra = pd.concat([after[(after["user"] == u) & after["item"].isin(cold[a])]
                           for u, (a, _) in zip(users, halves, strict=True)])
        with_a = Interactions.from_pandas(pd.concat([train_frame, extra[train_frame.columns]]),
                                          timestamp_col="timestamp", rating_scale=(0.5, 5.0))

        def ndcg_b(model) -> np.ndarray:
            s = _scores(model, users, cold)
            for r, (a, _) in enumerate(halves):
                s[r, a] = -np.inf
            return np.asarray(ndcg_at_k(_top10(s), [b for _, b in halves], 10), np.float64)

        fits = {"ContentBased (genres, year, tags; centering=False; chosen)": content}
        fits.update({name: (lambda d, p=p: hybrid(d, p)) for name, p in CEILING_HYBRIDS.items()})
        for name, fit in fits.items():
            per_seed.setdefault(f"{name}|training only", []).append(ndcg_b(fit(cs["train"])))
            per_seed.setdefault(f"{name}|training + half A", []).append(ndcg_b(fit(with_a)))
            print("ceiling", seed, name, {k: float(v[-1].mean()) for k, v in per_seed.items()
                                          if k.startswith(name)}, flush=True)
    mean = {k: np.mean(v, axis=0) for k, v in per_seed.items()}
    cb_key = next(k for k in mean if k.startswith("ContentBased") and "only" in k)
    oracle_rows = []
    for key, v in mean.items():
        model, data = key.split("|")
        ci = paired_ratio_interval(v, mean[cb_key])
        oracle_rows.append({"model": model, "fitted on": data,
                            "NDCG@10 of half B (mean of seeds)": float(v.mean()),
                            "per seed": ", ".join(f"{x.mean():.4f}" for x in per_seed[key]),
                            "ratio to ContentBased, training only": ci["ratio"],
                            "95 % interval": f"{ci['low']:.2f} – {ci['high']:.2f}",
                            "share of resamples >= 2": ci["share >= 2"]})

    # 2. other signals, validation and test on the full protocol
    def last_n(train: Interactions, n: int) -> Interactions:
        f = train.to_pandas().sort_values(["user", "timestamp"]).groupby("user").tail(n)
        return Interactions.from_pandas(f, timestamp_col="timestamp", rating_scale=(0.5, 5.0))

    def rarity(case: dict, beta: float) -> np.ndarray:
        m = ContentBased(centering=False, popularity_discount=beta).fit(case["train"],
                                                                        item_features=itf)
        return _scores(m, case["users"], case["new_items"])

    def discounted(case: dict, alpha: float, params: dict) -> np.ndarray:
        d = case["train"]
        pop = np.bincount(d.item_idx, minlength=d.n_items).astype(np.float64)[d.item_idx]
        p = pop ** -alpha
        kept = np.random.default_rng(0).random(len(d)) < p / p.max()
        sub = Interactions.from_arrays(d.user_ids[kept], d.item_ids[kept],
                                       timestamps=d.timestamps[kept])
        m = hybrid(sub, params)
        return _scores(m, case["users"], case["new_items"])

    titled = table.assign(title_words=table["title"].str.replace(r"\(\d{4}\)\s*$", "",
                                                                 regex=True))
    with_title = ItemFeatures.from_pandas(titled, multi_valued=["genres"], categorical=["year"],
                                          text=["tags", "title_words"])
    no_prior = CEILING_HYBRIDS["HybridMF (WARP, item_id_dropout=0.5, no prior)"]
    signals: dict[str, Any] = {
        "ContentBased (chosen; reference)":
            lambda c: _scores(content(c["train"]), c["users"], c["new_items"]),
        "ContentBased, profile from the last 20 training ratings":
            lambda c: _scores(content(last_n(c["train"], 20)), c["users"], c["new_items"]),
        "ContentBased, profile from the last 100 training ratings":
            lambda c: _scores(content(last_n(c["train"], 100)), c["users"], c["new_items"]),
        "ContentBased, popularity_discount=1 (weights / item popularity)":
            lambda c: rarity(c, 1.0),
        "ContentBased, popularity_discount=2 (weights / item popularity^2)":
            lambda c: rarity(c, 2.0),
        "ContentBased, title words added":
            lambda c: _scores(content(c["train"], with_title), c["users"], c["new_items"]),
        "Release age at the user's time alone": lambda c: _release_age_scores(c, year),
        "HybridMF (no prior) on a sample of the log kept with chance ~ 1/popularity^0.5":
            lambda c: discounted(c, 0.5, no_prior),
        "HybridMF (no prior) on a sample of the log kept with chance ~ 1/popularity":
            lambda c: discounted(c, 1.0, no_prior),
    }
    scores = {name: (f(val), f(cs)) for name, f in signals.items()}
    # ContentBased + lambda x release age, lambda chosen on validation
    ages = (_release_age_scores(val, year), _release_age_scores(cs, year))
    cb_v, cb_t = scores["ContentBased (chosen; reference)"]
    lam = max((0.01, 0.02, 0.05, 0.1, 0.2), key=lambda x: float(np.mean(ndcg_at_k(
        _top10(cb_v + x * ages[0]), val["rel_pos"], 10))))
    scores[f"ContentBased + {lam} x release age (weight chosen on validation)"] = (
        cb_v + lam * ages[0], cb_t + lam * ages[1])
    ref = np.asarray(ndcg_at_k(_top10(cb_t), cs["rel_pos"], 10), np.float64)
    signal_rows = []
    for name, (sv, st) in scores.items():
        t = np.asarray(ndcg_at_k(_top10(st), cs["rel_pos"], 10), np.float64)
        ci = paired_ratio_interval(t, ref)
        signal_rows.append({"model": name,
                            "validation NDCG@10": float(np.mean(ndcg_at_k(
                                _top10(sv), val["rel_pos"], 10))),
                            "test NDCG@10": float(t.mean()), "ratio to ContentBased": ci["ratio"],
                            "95 % interval": f"{ci['low']:.2f} – {ci['high']:.2f}"})
        print("signal", signal_rows[-1], flush=True)
    info = (f"{len(users)} test users with two or more cold test items; seeds "
            f"{', '.join(map(str, seeds))} (one random A/B halving each); items: {CEILING_ITEMS}; "
            f"{n_factors} factors")
    return [
        ("Half-split oracle: half of each user's test-period cold ratings given to the model",
         info + "\n\n" + markdown_table(pd.DataFrame(oracle_rows), index=False)),
        ("Other signals on the per-user protocol (185 test users, 181 validation users)",
         markdown_table(pd.DataFrame(signal_rows), index=False)),
    ]


def release_age_features(items: pd.DataFrame, t_end: float, genres: bool) -> ItemFeatures:
    """Genres (optional) and the film's age at the end of the training log, in buckets of
    years (0, 1, 2, 3-4, 5-9, 10-19, 20+): unlike a year one-hot, an age generalises to
    films released after the log ends (they are age 0 when they arrive)."""
    items = items.copy()
    items["genres"] = items["genres"].replace("(no genres listed)", np.nan)
    year = pd.to_numeric(items["title"].str.extract(r"\((\d{4})\)\s*$", expand=False),
                         errors="coerce")
    age = (pd.Timestamp(t_end, unit="s").year - year).clip(lower=0)
    items["age"] = pd.cut(age, [-1, 0, 1, 2, 4, 9, 19, 500]).astype(str).where(age.notna())
    return ItemFeatures.from_pandas(items, multi_valued=["genres"] if genres else (),
                                    categorical=["age"])


PRIOR_FEATURES = {
    "genres, year": lambda items, t_end: coldstart_features(items, False),
    "genres, year, year as a number": lambda items, t_end: coldstart_features(items, True),
    "release age": lambda items, t_end: release_age_features(items, t_end, False),
    "genres, release age": lambda items, t_end: release_age_features(items, t_end, True),
}


def bench_coldstart_prior(share: float = 0.2) -> tuple[pd.DataFrame, dict[str, str]]:
    """The learned arrival prior alone (one list for every user) for several item
    descriptions, chosen by the mean NDCG@10 over four rolling validation cuts of the
    training period (its 50, 60, 70 and 80 % time quantiles, the same protocol inside the
    training log), then scored once on the test split."""
    from chuchun.models.hybrid import _arrival_rates

    ml = load_dataset("ml-latest-small")
    cs = coldstart_split(ml.ratings.to_pandas())
    cuts = {q: coldstart_split(cs["before"], q) for q in (0.5, 0.6, 0.7, 0.8)}

    def prior_ndcg(name: str, split: dict) -> float:
        itf = PRIOR_FEATURES[name](ml.items, split["t_split"])
        full = _union_vocab(split["implicit"].items, itf)
        _, rate = _arrival_rates(split["implicit"].timestamps,
                                 full.index(split["implicit"].item_ids),
                                 itf.align(full).matrix.tocsr(), share)
        return _same_list_ndcg(np.argsort(-rate[full.index(split["new_items"])],
                                          kind="stable"), split)

    rows = []
    for name in PRIOR_FEATURES:
        vals = {f"validation q={q}": prior_ndcg(name, v) for q, v in cuts.items()}
        rows.append({"item description": name, **vals,
                     "validation mean": float(np.mean(list(vals.values()))),
                     "test NDCG@10": prior_ndcg(name, cs)})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows).set_index("item description")
    chosen = table["validation mean"].idxmax()
    info = {"chosen on validation": chosen,
            "validation users per cut": ", ".join(str(len(v["users"])) for v in cuts.values()),
            "test users": str(len(cs["users"]))}
    return table, info


def bench_coldstart_age() -> pd.DataFrame:
    """HybridMF BPR with genres, year and the release age (relative to the end of each
    training log) as item attributes, with and without the learned arrival prior, chosen by
    the mean NDCG@10 over the four rolling validation cuts of the training period."""
    ml = load_dataset("ml-latest-small")
    cs = coldstart_split(ml.ratings.to_pandas())
    cuts = {q: coldstart_split(cs["before"], q) for q in (0.5, 0.6, 0.7, 0.8)}

    def feats(t_end: float) -> ItemFeatures:
        items = ml.items.copy()
        items["genres"] = items["genres"].replace("(no genres listed)", np.nan)
        items["year"] = items["title"].str.extract(r"\((\d{4})\)\s*$", expand=False)
        year = pd.to_numeric(items["year"], errors="coerce")
        age = (pd.Timestamp(t_end, unit="s").year - year).clip(lower=0)
        items["age"] = pd.cut(age, [-1, 0, 1, 2, 4, 9, 19, 500]).astype(str).where(age.notna())
        return ItemFeatures.from_pandas(items, multi_valued=["genres"],
                                        categorical=["year", "age"])

    rows = []
    for prior in (0.0, 0.2):
        def fit(split: dict) -> float:
            m = HybridMF(loss="bpr", n_factors=64, n_epochs=30, random_state=0,
                         cold_item_prior=prior)
            m.fit(split["implicit"], item_features=feats(split["t_split"]))
            return _model_ndcg(m, split)

        vals = {f"validation q={q}": fit(v) for q, v in cuts.items()}
        t0 = time.perf_counter()
        test = fit(cs)
        rows.append({"HybridMF BPR (genres, year, release age)": f"cold_item_prior={prior}",
                     **vals, "validation mean": float(np.mean(list(vals.values()))),
                     "test NDCG@10": test, "fit s": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows).set_index("HybridMF BPR (genres, year, release age)")


def _union_vocab(vocab, features):
    from chuchun.data.vocabulary import Vocabulary

    return Vocabulary(np.union1d(vocab.ids, features.ids.ids))


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


def _read_rows(paths: list[str]) -> pd.DataFrame:
    rows = []
    for path in paths:
        with open(path) as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return pd.DataFrame(rows)


SELECTIONS = {
    "implicit blocks, their source chosen on validation (training fold only / all rated pairs)":
        [2, 3],
    "implicit blocks, source and rating day chosen on validation": [2, 3, 4, 5],
}


def assemble_rmse(test_paths: list[str], val_paths: list[str]) -> list[tuple[str, str]]:
    """Tables from the rows that ``--rows-out`` runs wrote: per fold, means, the validation
    RMSEs and, per fold, the feature set with the lowest validation RMSE scored on test."""
    test = _read_rows(test_paths).drop_duplicates(["features", "fold"], keep="last")
    val = _read_rows(val_paths).drop_duplicates(["features", "fold"], keep="last")
    names = list(FEATURE_SETS)
    order = {n: j for j, n in enumerate(names)}
    test = test.sort_values(["features", "fold"], key=lambda c: c.map(order) if c.name ==
                            "features" else c)
    cols = ["chuchun RMSE", "chuchun CPU s", "myFM RMSE", "myFM CPU s"]
    mean = test.groupby("features", sort=False)[cols].mean()
    mean.insert(0, "folds", test.groupby("features", sort=False)["fold"].apply(
        lambda f: ",".join(sorted(f))))
    mean["CPU ratio (chuchun / myFM)"] = mean["chuchun CPU s"] / mean["myFM CPU s"]
    per_fold = test.set_index("features")[["fold", *cols, "chuchun fit s", "myFM fit s",
                                           "load (1 min)"]]
    vt = val.pivot(index="fold", columns="features", values="validation RMSE")
    vt = vt[[n for n in names if n in vt.columns]]
    out = [("Mean over the folds (rank 10, 200 sweeps, clipped)", markdown_table(mean)),
           ("Per fold", markdown_table(per_fold))]
    sel_rows = []
    for label, idx in SELECTIONS.items():
        cands = [names[j] for j in idx if names[j] in vt.columns]
        if len(cands) < len(idx):
            continue
        for fold, vrow in vt[cands].iterrows():
            best = vrow.idxmin()
            hit = test[(test["features"] == best) & (test["fold"] == fold)]
            if hit.empty:
                continue
            sel_rows.append({"selection": label, "fold": fold, "chosen": best,
                             "validation RMSE": vrow[best],
                             "chuchun test RMSE": float(hit["chuchun RMSE"].iloc[0]),
                             "myFM test RMSE (same design)": hit["myFM RMSE"].iloc[0]})
    out.append(("Validation RMSE (random 10 % of each training fold; test folds unread)",
                markdown_table(vt)))
    if sel_rows:
        sel = pd.DataFrame(sel_rows)
        sel_mean = sel.groupby("selection", sort=False)[
            ["chuchun test RMSE", "myFM test RMSE (same design)"]].mean()
        out.append(("Chosen on validation, per fold", markdown_table(sel.set_index("selection"))))
        out.append(("Chosen on validation, mean over the folds", markdown_table(sel_mean)))
    return out


RMSE_NOTES = (
    "Runs (from the repository root, PYTHONPATH=src, each with nice -n 5): test rows "
    "`python benchmarks/bench_fm.py --sections rmse --folds F --feature-sets N "
    "--max-kept-samples 195 --rows-out ROWS` for N = 2 (training-fold blocks) and 3 (blocks "
    "from all rated pairs), folds 1-3 in one process per N and folds 4,5 in another; "
    "validation rows `python benchmarks/bench_fm.py --sections rmse_validation --folds "
    "1,2,3,4,5 --feature-sets 2,3 --max-kept-samples 195 --rows-out ROWS`; this file "
    "`python benchmarks/bench_fm.py --assemble TEST_ROWS VALIDATION_ROWS --topic "
    "fm_rmse_implicit`.\n\n"
    "Protocol: official folds u1..u5, rank 10, 200 Gibbs sweeps, burn-in 5, every "
    "post-burn-in sample kept by both (myFM n_kept_samples=195, chuchun "
    "max_kept_samples=195), predictions clipped to [1, 5], both libraries seeded with the "
    "fold number. myFM gets chuchun's user and item blocks as two RelationBlocks (Rendle "
    "2013) with the same prior groups (one per id block, attribute column and implicit "
    "block). Features: user id, age bucket, gender, occupation, item id, genres, and the "
    "implicit blocks: the user's rated items and the item's raters, each scaled by "
    "1/sqrt(n) (as in myFM's ml-100k examples and SVD++). 'All rated pairs': the blocks are "
    "built from every (user, item) pair of u.data with the test ratings hidden: which films "
    "a user rated in the test fold is known, not how (the convention of the Netflix prize "
    "data for which SVD++ was built, Koren 2008; myFM's example calls training-only blocks "
    "its 'stricter protocol'); on the validation cut, 'all rated pairs' are the pairs of the "
    "whole training fold, the validation ratings hidden. Wall-clock times are single fits "
    "on a 2-core machine shared with other jobs (load average 35-45, in the "
    "per-fold table), so read the CPU seconds (time.process_time) and their ratio; the "
    "first fold of each process includes loading the compiled kernels.")


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
    ap.add_argument("--rows-out", default=None,
                    help="append each rmse / rmse_validation row as JSON to this file")
    ap.add_argument("--assemble", nargs=2, metavar=("TEST_ROWS", "VALIDATION_ROWS"),
                    default=None, help="write the rmse tables from --rows-out files "
                    "(comma-separated lists) instead of running")
    ap.add_argument("--cs-grid", choices=("full", "small", "none"), default="full",
                    help="HybridMF candidates of the coldstart_users section (small: BPR with "
                         "and without user profiles, no dropout; none: ContentBased and the "
                         "references only, no HybridMF or FM)")
    ap.add_argument("--skip-myfm-features", action="store_true",
                    help="run myFM on the ids set only")
    args = ap.parse_args()
    folds = [int(x) for x in args.folds.split(",")]
    sections = args.sections.split(",")
    out = []
    if args.assemble:
        path = write_results(
            args.topic or "fm_rmse_implicit", "Factorization machines: implicit blocks on "
            "MovieLens 100K, chuchun vs myFM (relation blocks)",
            assemble_rmse(args.assemble[0].split(","), args.assemble[1].split(",")),
            libraries=["myfm"], notes=RMSE_NOTES)
        print(path)
        return
    if "rmse_validation" in sections:
        names = list(FEATURE_SETS)
        sets = [names[int(j)] for j in args.feature_sets.split(",")]
        table = bench_rmse_validation(folds, sets, args.max_kept_samples, args.rows_out)
        out.append(("Validation RMSE", markdown_table(table.set_index("features"))))
    if "rmse" in sections:
        run_myfm = {"ids"} if args.skip_myfm_features else {"ids", "ids + demographics + genres"}
        if args.no_myfm:
            run_myfm = set()
        names = list(FEATURE_SETS)
        sets = [names[int(j)] for j in args.feature_sets.split(",")]
        if not args.skip_myfm_features and not args.no_myfm:
            run_myfm = set(sets)
        per_fold, mean = bench_rmse(folds, run_myfm, sets, args.max_kept_samples,
                                    args.rows_out)
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
        table, info, grid = bench_coldstart(models="coldstart" in sections)
        boot = info.pop("bootstrap")
        out.append(("Cold-start items on ml-latest-small",
                    ", ".join(f"{k}: {v:,}" for k, v in info.items()) + "\n\n"
                    + markdown_table(table)))
        if len(boot):
            out.append(("Ratios to ContentBased, paired bootstrap over the test users "
                        "(2,000 resamples)", markdown_table(boot, index=False)))
        if len(grid):
            out.append(("HybridMF BPR cold-item options on the validation cold-start split",
                        markdown_table(grid, index=False)))
    if "coldstart_users" in sections:
        grid = {"full": USER_CS_HYBRID_GRID, "small": USER_CS_HYBRID_SMALL, "none": []}
        out += bench_coldstart_users(grid[args.cs_grid],
                                     [] if args.cs_grid == "none" else None)[0]
    if "coldstart_ceiling" in sections:
        out += bench_coldstart_ceiling()
    if "coldstart_age" in sections:
        out.append(("HybridMF with the release age on ml-latest-small (rolling validation)",
                    markdown_table(bench_coldstart_age())))
    if "coldstart_prior" in sections:
        table, info = bench_coldstart_prior()
        out.append(("Learned arrival prior alone on ml-latest-small (rolling validation)",
                    ", ".join(f"{k}: {v}" for k, v in info.items()) + "\n\n"
                    + markdown_table(table)))
    if "sparse" in sections:
        table, info = bench_sparse(args.sparse_items)
        out.append(("Defaults on a large sparse catalogue (synthetic)",
                    ", ".join(f"{k}: {v}" for k, v in info.items()) + "\n\n"
                    + markdown_table(table)))
    topic = args.topic or ("fm" if len(sections) == 4 else "fm_" + "_".join(sections))
    path = write_results(
        topic, "Factorization machines and HybridMF", out, libraries=["myfm"],
        notes="Times are single wall-clock fits on a 2-core machine shared with other jobs "
              "during the run (load average at the end of the run: "
              f"{os.getloadavg()[0]:.0f}): they are noisy, and the "
              "chuchun/myFM ratio, measured in the same process one fit after the other, is "
              "the number to read. chuchun's kernels are loaded from the numba cache.")
    print(path)


if __name__ == "__main__":
    main()
