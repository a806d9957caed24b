"""Top-N models (EASE, RP3beta, SLIM, revisited iALS, MultVAE, LightGCN) on temporal splits,
with Cornac's EASE, VAECF and LightGCN side by side where Cornac imports.

Protocol (the one of ``bench_implicit.py``): per user, interactions sorted by (timestamp, item
id), the last floor(n/5) are test; every rating is an interaction (value 1); top-10 lists
exclude the user's training items; NDCG@10 averaged over users with test items. Every
hyperparameter is chosen on a validation split cut from the training part the same way (the last
floor(n/5) of each user's training interactions): each candidate is fitted on the rest of the
training part and scored on the validation part, and also refitted on the whole training part and
scored on the test part, so both numbers are reported for every candidate; the chosen one is the
best on validation. Fit times are of the refit on the whole training part (median of three for
the chosen settings when a fit takes under 5 s, else one fit; BLAS limited to one thread,
kernels and torch to two), on a machine shared with other jobs: read them as rough.

The item-item models (EASE, SLIM, RP3beta) are also run with ``recency_half_life`` (each
user's history weighted by 2^(-rank/h), rank 0 the latest training interaction); the training
Interactions carry the timestamps for that. Cornac has no such option, so its side runs only the
unweighted candidates.

Measured candidates are kept in a JSON file (``--cache``): a tuning run resumes where it stopped,
the validation and test sides of slow candidates can run in two processes (``--part``) whose
files are merged, and ``--cached-only`` tabulates what the file holds without fitting. Fit times
are those of the run that measured the candidate.

``--curve`` measures the neural models (MultVAE, LightGCN) by learning curves: one fit per
setting, scored at each checkpoint of its epoch list through a fit callback. Their schedules count
updates (MultVAE anneals beta over a fixed number of updates), so the epoch-e checkpoint is exactly
the model fitted with n_epochs=e and the same seed, and each checkpoint is a candidate like any
other; its fit time is the training time up to that epoch (scoring excluded). The validation and
test curves of a setting are two fits (``--part``), on the validation cut and the whole training
part. RecBole's LightGCN module (Cornac's needs DGL, which does not load with torch 2.13) runs
the same curve beside chuchun's: see ``run_recbole_curve``.

Datasets: MovieLens 100K (``../shared/datasets/ml-100k``) and the bundled ml-latest-small.

Usage::

    PYTHONPATH=src nice -n 5 python benchmarks/bench_topn.py [--datasets ml-100k ml-latest-small]
        [--models EASE RP3beta ...] [--no-reference] [--cache runs.json [--part test]
        [--cached-only]] [--long] [--curve [--threads N] [--curve-settings JSON]
        [--stop-at HH:MM]] [--seeds 1 2] [--merge part1.json part2.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from bench_implicit import K, Problem, load_ml100k, ndcg_at_k, temporal_split  # noqa: E402
from common import write_results  # noqa: E402

THREADS = 2

# Small grids: the machine is two shared cores.
_HALF_LIVES = (4.0, 8.0, 16.0, 32.0)  # recency_half_life candidates, in interactions
GRIDS: dict[str, list[dict[str, Any]]] = {
    "EASE": [{"regularization": r} for r in (50.0, 100.0, 200.0, 400.0, 800.0)]
    + [{"regularization": r, "recency_half_life": h} for r in (100.0, 200.0, 400.0)
       for h in _HALF_LIVES]
    + [{"regularization": 800.0, "recency_half_life": h} for h in (4.0, 8.0, 16.0)]
    + [{"regularization": 1600.0, "recency_half_life": h} for h in (4.0, 8.0)],
    "RP3beta": [{"alpha": a, "beta": b} for a in (0.2, 0.4, 0.6) for b in (0.5, 0.6)]
    + [{"alpha": a, "beta": 0.6, "recency_half_life": h} for a in (0.2, 0.4)
       for h in (4.0, 8.0, 16.0)]
    + [{"alpha": 0.4, "beta": 0.6, "recency_half_life": 2.0},
       {"alpha": 0.6, "beta": 0.6, "recency_half_life": 4.0}],
    "SLIM": [{"l1_regularization": 1.0, "l2_regularization": 50.0},
             {"l1_regularization": 3.0, "l2_regularization": 20.0},
             {"l1_regularization": 1.0, "l2_regularization": 50.0, "recency_half_life": 8.0},
             {"l1_regularization": 3.0, "l2_regularization": 20.0, "recency_half_life": 8.0}],
    "ImplicitALS": [
        {"alpha": 5.0, "regularization": 0.1},
        {"alpha": 1.0, "regularization": 0.001, "regularization_exponent": 1.0,
         "unobserved_weight": 0.1},
        {"alpha": 1.0, "regularization": 0.002, "regularization_exponent": 1.0,
         "unobserved_weight": 0.1},
        {"alpha": 1.0, "regularization": 0.002, "regularization_exponent": 1.0,
         "unobserved_weight": 0.03},
        # revisited iALS: frequency-scaled regularisation (nu = 1) over lambda and alpha_0
        *({"alpha": 1.0, "regularization": r, "regularization_exponent": 1.0,
           "unobserved_weight": w0} for w0 in (0.1, 0.3) for r in (0.005, 0.01, 0.02)),
        # the classic objective, stronger regularisation
        {"alpha": 5.0, "regularization": 10.0},
        {"alpha": 10.0, "regularization": 10.0},
        {"alpha": 2.0, "regularization": 1.0},
        *({"alpha": 1.0, "regularization": 0.01, "regularization_exponent": 1.0,
           "unobserved_weight": w0} for w0 in (0.5, 1.0)),
        *({"alpha": 1.0, "regularization": r, "regularization_exponent": 1.0,
           "unobserved_weight": 1.0} for r in (0.005, 0.02)),
        {"alpha": 2.0, "regularization": 0.01, "regularization_exponent": 1.0,
         "unobserved_weight": 0.3},
    ],
    "MultVAE": [{"n_epochs": 50, "beta_cap": b} for b in (0.2, 0.5)],
    "LightGCN": [{"n_epochs": 60, "regularization": 1e-4}],
}
# --long: longer training of the neural models (943 users make 8 updates per MultVAE epoch)
LONG: dict[str, list[dict[str, Any]]] = {
    "MultVAE": [{"n_epochs": e, "beta_cap": 0.2} for e in (50, 100, 200)],
    "LightGCN": [{"n_epochs": 80, "regularization": 1e-4}],
}
# --single: one candidate per neural model (the published defaults), for a loaded machine
SINGLE: dict[str, list[dict[str, Any]]] = {
    "MultVAE": [{"n_epochs": 50, "beta_cap": 0.2}],
    "LightGCN": [{"n_epochs": 80, "regularization": 1e-4}],
}
# --curve: one fit per setting measures every epoch count in its checkpoint list. The neural
# models' schedules count updates (MultVAE anneals beta over anneal_steps updates), so the
# epoch-e checkpoint seen by a fit callback is exactly the model fitted with n_epochs=e; each
# checkpoint is then a candidate like any other (validation and test NDCG, fit seconds up to it).
_VAE_EPOCHS = (10, 20, 30, 40, 50, 75, 100, 150)
_GCN_EPOCHS = (20, 40, 60, 80, 100, 125, 150, 200)
_VAE_PAPER: dict[str, Any] = {"n_hidden": 600, "n_factors": 200, "batch_size": 500,
                              "beta_cap": 0.2, "anneal_steps": 200_000, "dropout": 0.5,
                              "learning_rate": 1e-3}
_VAE_PAPER_EPOCHS = (25, 50, 100, 150, 200, 300, 400)
CURVES: dict[str, list[tuple[dict[str, Any], tuple[int, ...]]]] = {
    "MultVAE": [
        # beta fixed at 0.2 from the first update (Cornac VAECF's setting)
        ({"beta_cap": 0.2, "anneal_steps": 0}, _VAE_EPOCHS),
        # the encoder reads recency-weighted histories (as EASE, SLIM, RP3beta can)
        ({"beta_cap": 0.2, "anneal_steps": 0, "recency_half_life": 8.0}, _VAE_EPOCHS),
        # the paper's schedule: beta rises over 200,000 updates (8 per epoch here)
        ({"beta_cap": 0.2, "anneal_steps": 200_000}, _VAE_EPOCHS),
        # half the capacity ([300 -> 100]), beta fixed at 0.2
        ({"beta_cap": 0.2, "anneal_steps": 0, "n_hidden": 300, "n_factors": 100}, _VAE_EPOCHS),
        # the paper's settings in full: [600 -> 200], batch 500 (two updates per epoch here),
        # beta annealed to 0.2 over 200,000 updates, input dropout 0.5, Adam 1e-3
        (_VAE_PAPER, _VAE_PAPER_EPOCHS),
        # the same at half the capacity ([300 -> 100])
        ({**_VAE_PAPER, "n_hidden": 300, "n_factors": 100}, _VAE_PAPER_EPOCHS),
    ],
    "LightGCN": [
        # 10 updates per epoch at Adam step 1e-2
        ({"batch_size": 8192, "learning_rate": 1e-2, "regularization": 1e-4}, _GCN_EPOCHS),
        # the paper's batch (40 updates per epoch), a larger step than its 1e-3
        ({"batch_size": 2048, "learning_rate": 5e-3, "regularization": 1e-4},
         (10, 20, 30, 40, 50, 75, 100)),
        # the paper's settings: batch 2048, 3 layers, 64 factors, Adam 1e-3, lambda 1e-4
        ({"batch_size": 2048, "learning_rate": 1e-3, "regularization": 1e-4},
         (50, 100, 150, 200, 250, 300)),
    ],
}
# --reduced (the larger catalogue of ml-latest-small on two shared cores): fewer candidates
REDUCED: dict[str, list[dict[str, Any]]] = {
    "EASE": [{"regularization": 200.0}, {"regularization": 400.0, "recency_half_life": 8.0}],
    "RP3beta": [{"alpha": a, "beta": 0.5} for a in (0.2, 0.4)],
    "SLIM": [{"l1_regularization": 1.0, "l2_regularization": 50.0}],
    "ImplicitALS": [GRIDS["ImplicitALS"][0], GRIDS["ImplicitALS"][2],
                    {"alpha": 1.0, "regularization": 0.01, "regularization_exponent": 1.0,
                     "unobserved_weight": 0.3},
                    {"alpha": 1.0, "regularization": 0.01, "regularization_exponent": 1.0,
                     "unobserved_weight": 1.0}],
    "MultVAE": [GRIDS["MultVAE"][0]],
    "LightGCN": [{"n_epochs": 40, "regularization": 1e-4}],
}
FIXED: dict[str, dict[str, Any]] = {
    "EASE": {"n_threads": 1},
    "RP3beta": {},
    "SLIM": {"n_threads": THREADS},
    "ImplicitALS": {"n_factors": 64, "n_epochs": 15, "n_threads": THREADS,
                    "random_state": 0, "solver": "cholesky"},
    "MultVAE": {"n_threads": THREADS, "random_state": 0},
    "LightGCN": {"n_threads": THREADS, "random_state": 0, "batch_size": 8192},
}
ACTIVE: dict[str, list[dict[str, Any]]] = {}
CORNAC = {"EASE": "EASE", "MultVAE": "VAECF", "LightGCN": "LightGCN"}


# -- data --------------------------------------------------------------------------------------
def load(name: str) -> np.ndarray:
    """(user, item, timestamp) integer rows."""
    if name == "ml-100k":
        return load_ml100k()
    from chuchun.datasets import load_dataset

    r = load_dataset(name).ratings
    return np.c_[r.users.ids[r.user_idx], r.items.ids[r.item_idx], r.timestamps].astype(np.int64)


def problems(rows: np.ndarray) -> tuple[Problem, Problem]:
    train, test = temporal_split(rows)
    sub, val = temporal_split(rows[train])
    return _timed(rows[train][sub], rows[train][val]), _timed(rows[train], rows[test])


def _timed(train_rows: np.ndarray, test_rows: np.ndarray) -> Problem:
    """A Problem whose training Interactions carry the timestamps (for recency_half_life);
    the vocabularies, hence every index, are those of the plain Problem."""
    from chuchun.data import Interactions

    problem = Problem(train_rows, test_rows)
    timed = Interactions.from_arrays(train_rows[:, 0], train_rows[:, 1],
                                     timestamps=train_rows[:, 2])
    assert (timed.csr != problem.csr).nnz == 0
    problem.data = timed
    return problem


# -- chuchun -----------------------------------------------------------------------------------
def run_chuchun(name: str, problem: Problem, params: dict[str, Any]) -> tuple[float, float]:
    from chuchun.models import get_model_class

    model = get_model_class(name)(**{**FIXED[name], **params})
    t0 = time.perf_counter()
    model.fit(problem.data)
    elapsed = time.perf_counter() - t0
    return elapsed, problem.ndcg_chuchun(model)


def run_curve(name: str, problem: Problem, params: dict[str, Any],
              checkpoints: tuple[int, ...],
              record: Callable[[int, float, float], None]) -> None:
    """One fit of ``max(checkpoints)`` epochs; at each checkpoint e, ``record(e, seconds,
    ndcg)`` with the training seconds up to epoch e (the evaluations excluded)."""
    from chuchun.models import get_model_class

    model = get_model_class(name)(**{**FIXED[name], **params, "n_epochs": max(checkpoints)})
    clock = {"start": time.perf_counter(), "eval": 0.0}

    def checkpoint(m: Any, epoch: int, logs: dict[str, float]) -> bool:
        if epoch + 1 in checkpoints:
            t = time.perf_counter()
            seconds = t - clock["start"] - clock["eval"]
            ndcg = problem.ndcg_chuchun(m)
            record(epoch + 1, seconds, ndcg)
            print(f"    {name} {params} epoch {epoch + 1}: ndcg {ndcg:.4f} "
                  f"({seconds:.1f} s, loss {logs['loss']:.4f})", flush=True)
            clock["eval"] += time.perf_counter() - t
        return _past_stop()

    model.fit(problem.data, callbacks=[checkpoint])


# -- Cornac ------------------------------------------------------------------------------------
def cornac_available() -> str | None:
    try:
        import cornac
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None
    return str(cornac.__version__)


def cornac_model(name: str, params: dict[str, Any]) -> Any:
    import cornac.models as cm

    if name == "EASE":
        return cm.EASE(lamb=params["regularization"], posB=False, verbose=False)
    if name == "MultVAE":
        return cm.VAECF(k=200, autoencoder_structure=[600], act_fn="tanh",
                        n_epochs=params["n_epochs"], batch_size=128,
                        learning_rate=1e-3, beta=params["beta_cap"], likelihood="mult",
                        seed=0, verbose=False, use_gpu=False)  # beta: fixed KL weight
    return cm.LightGCN(emb_size=64, num_epochs=params["n_epochs"], num_layers=3,
                       learning_rate=1e-2, batch_size=8192, lambda_reg=params["regularization"],
                       seed=0, verbose=False)


def run_cornac(name: str, problem: Problem, params: dict[str, Any]) -> tuple[float, float]:
    from cornac.data import Dataset

    d = problem.data
    triples = list(zip(d.user_idx.tolist(), d.item_idx.tolist(), [1.0] * len(d), strict=True))
    train_set = Dataset.from_uir(triples, seed=0)
    model = cornac_model(name, params)
    t0 = time.perf_counter()
    model.fit(train_set)
    elapsed = time.perf_counter() - t0
    # map cornac's internal indices back to chuchun's
    u_map = np.array([train_set.uid_map[u] for u in range(d.n_users)])
    i_order = np.array([train_set.iid_map[i] for i in range(d.n_items)])
    users = problem.users
    scores = np.vstack([model.score(int(u_map[u])) for u in users])[:, i_order]
    seen = problem.csr[users]
    for r in range(len(users)):
        scores[r, seen.indices[seen.indptr[r] : seen.indptr[r + 1]]] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return elapsed, ndcg_at_k(top, [problem.relevant[u] for u in users])


# -- RecBole LightGCN (Cornac's needs DGL, which does not load with torch 2.13) ---------------
#: the first LightGCN setting of ``CURVES`` (after ``--curve-settings``) also runs through
#: RecBole's model, side by side, with the same checkpoints
RECBOLE_CURVES: dict[str, list[tuple[dict[str, Any], tuple[int, ...]]]] = {}


def _match_reference() -> None:
    RECBOLE_CURVES["LightGCN"] = [CURVES["LightGCN"][0]]


def run_recbole_curve(name: str, problem: Problem, params: dict[str, Any],
                      checkpoints: tuple[int, ...],
                      record: Callable[[int, float, float], None]) -> None:
    """RecBole 1.2.1's ``LightGCN`` module (its graph normalisation, propagation, Xavier
    initialisation, BPR and embedding losses; ``require_pow=True``, so ``reg_weight`` is the
    same lambda as chuchun's) trained by the loop chuchun's LightGCN uses: each epoch one
    triple per interaction (uniform positive pair, uniform unseen negative), Adam, the same
    batch size, step and epochs. RecBole's own trainer and data pipeline are not used."""
    import torch
    from recbole.model.general_recommender.lightgcn import LightGCN as RecBoleLightGCN

    from chuchun.models.neural.lightgcn import _negatives

    assert name == "LightGCN"
    if not hasattr(sp.dok_matrix, "_update"):
        # RecBole 1.2.1 fills its adjacency through dok_matrix._update, which scipy 1.15
        # removed; the same bulk insert into the DOK's dict
        sp.dok_matrix._update = lambda self, entries: self._dict.update(entries)
    x = problem.csr.astype(np.float32)
    x.data[:] = 1.0
    n_users, n_items = x.shape

    class _Dataset:
        def num(self, field: str) -> int:
            return n_users if field == "user_id" else n_items

        def inter_matrix(self, form: str = "coo") -> Any:
            return x.tocoo()

    config = {"USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "NEG_PREFIX": "neg_",
              "device": torch.device("cpu"), "embedding_size": 64, "n_layers": 3,
              "reg_weight": params["regularization"], "require_pow": True}
    threads = FIXED[name]["n_threads"]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    model = RecBoleLightGCN(config, _Dataset())
    opt = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
    coo = x.tocoo()
    pos_u, pos_i = coo.row.astype(np.int64), coo.col.astype(np.int64)
    seen_keys = np.sort(pos_u * n_items + pos_i)
    eval_s = 0.0
    try:
        for epoch in range(max(checkpoints)):
            model.train()
            pick = rng.integers(0, len(pos_u), size=len(pos_u))
            u_all, i_all = pos_u[pick], pos_i[pick]
            j_all = _negatives(rng, u_all, seen_keys, n_items)
            for start in range(0, len(u_all), params["batch_size"]):
                sl = slice(start, start + params["batch_size"])
                batch = {"user_id": torch.from_numpy(u_all[sl]),
                         "item_id": torch.from_numpy(i_all[sl]),
                         "neg_item_id": torch.from_numpy(j_all[sl])}
                opt.zero_grad()
                model.calculate_loss(batch).backward()
                opt.step()
            if epoch + 1 in checkpoints:
                t = time.perf_counter()
                model.eval()
                with torch.no_grad():
                    users, items = model.forward()
                ndcg = problem.ndcg_factors(users.numpy(), items.numpy())
                record(epoch + 1, t - t0 - eval_s, ndcg)
                print(f"    RecBole {name} {params} epoch {epoch + 1}: ndcg {ndcg:.4f} "
                      f"({t - t0 - eval_s:.1f} s)", flush=True)
                eval_s += time.perf_counter() - t
                if _past_stop():
                    break
    finally:
        torch.set_num_threads(previous)


# -- the run -----------------------------------------------------------------------------------
CACHE: dict[str, Any] = {"path": None, "runs": {}, "part": "both", "cached_only": False,
                         "curve": False, "stop": None}


def _past_stop() -> bool:
    """Whether ``--stop-at`` has passed."""
    return CACHE["stop"] is not None and time.time() >= CACHE["stop"]


def _cache_key(dataset: str, label: str, params: dict[str, Any]) -> str:
    return f"{dataset}|{label}|{json.dumps(params, sort_keys=True)}"


def _cached_run(runner: Callable[[str, Problem, dict[str, Any]], tuple[float, float]],
                name: str, validation: Problem, final: Problem, key: str
                ) -> tuple[float, float, float] | None:
    """(validation NDCG, test NDCG, refit seconds) of one candidate, from the cache file when
    an earlier run measured it (so an interrupted tuning run resumes where it stopped); None
    for a candidate not in the cache under ``--cached-only``."""
    runs = CACHE["runs"]
    if CACHE["cached_only"] and not {"val", "test"} <= set(runs.get(key, {})):
        return None
    entry = runs.setdefault(key, {})
    params = json.loads(key.split("|", 2)[2])
    if "val" not in entry and CACHE["part"] in ("both", "validation"):
        entry["val"] = runner(name, validation, params)[1]
        _save_cache()
    if "test" not in entry and CACHE["part"] in ("both", "test"):
        entry["fit"], entry["test"] = runner(name, final, params)
        _save_cache()
    return (float(entry.get("val", np.nan)), float(entry.get("test", np.nan)),
            float(entry.get("fit", np.nan)))


def _save_cache() -> None:
    if CACHE["path"] is not None:
        path = Path(CACHE["path"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(CACHE["runs"], indent=1, sort_keys=True))
        tmp.replace(path)


def evaluate(runner: Callable[[str, Problem, dict[str, Any]], tuple[float, float]], name: str,
             validation: Problem, final: Problem, lines: list[str], label: str,
             dataset: str = "", grid: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    grid = ACTIVE[name] if grid is None else grid
    if runner is run_cornac:  # the reference has no recency weighting
        grid = [p for p in grid if "recency_half_life" not in p]
    rows = []
    for params in grid:
        measured = _cached_run(runner, name, validation, final,
                               _cache_key(dataset, label, params))
        if measured is None:
            continue
        val, test, fit_s = measured
        rows.append((params, val, test, fit_s))
        print(f"  {label} {params} val {val:.4f} test {test:.4f} fit {fit_s:.2f}s", flush=True)
    if not rows:
        raise LookupError("no measured candidate in the cache")
    best = max(range(len(rows)), key=lambda r: rows[r][1])
    lines += [f"**{label}**", "", "| setting | validation NDCG@10 | test NDCG@10 | fit (s) |",
              "|---|---|---|---|"]
    for r, (params, val, test, fit_s) in enumerate(rows):
        mark = " (chosen)" if r == best else ""
        setting = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in params.items())
        lines.append(f"| {setting}{mark} | {val:.4f} | {test:.4f} | {fit_s:.2f} |")
    lines.append("")
    params = rows[best][0]
    times = [rows[best][3]]
    if times[0] < 5.0 and not CACHE["cached_only"] and not CACHE["curve"]:  # slow: timed once
        times += [runner(name, final, params)[0] for _ in range(2)]
    return {"params": params, "val": rows[best][1], "test": rows[best][2],
            "fit": statistics.median(times)}


def run_curves(name: str, dataset: str, validation: Problem, final: Problem,
               reference: bool = False) -> None:
    """Fill the cache with every checkpoint of ``CURVES[name]`` (``RECBOLE_CURVES`` with
    ``reference``) on the sides ``--part`` asks for; a curve whose checkpoints are all cached
    is skipped."""
    label = f"RecBole {name}" if reference else f"chuchun {name}"
    runner = run_recbole_curve if reference else run_curve
    curves = RECBOLE_CURVES[name] if reference else CURVES[name]
    warmed = reference
    for params, checkpoints in curves:
        keys = {e: _cache_key(dataset, label, {**params, "n_epochs": e}) for e in checkpoints}
        for side, problem in (("val", validation), ("test", final)):
            if CACHE["part"] not in ("both", "validation" if side == "val" else "test"):
                continue
            if all(side in CACHE["runs"].get(k, {}) for k in keys.values()):
                continue

            def record(e: int, seconds: float, ndcg: float, side: str = side) -> None:
                entry = CACHE["runs"].setdefault(keys[e], {})
                entry[side] = ndcg
                if side == "test":
                    entry["fit"] = seconds
                _save_cache()

            if _past_stop():
                print(f"  --stop-at passed: {label} {params} ({side}) not run", flush=True)
                continue
            if not warmed:  # the first fit of a process pays torch's start-up: untimed
                run_chuchun(name, validation, {**params, "n_epochs": 1})
                warmed = True
            runner(name, problem, params, checkpoints, record)


def curve_grid(curves: list[tuple[dict[str, Any], tuple[int, ...]]]) -> list[dict[str, Any]]:
    return [{**params, "n_epochs": e} for params, checkpoints in curves for e in checkpoints]


def reference_table(name: str, dataset: str) -> list[str]:
    """chuchun's and RecBole's checkpoints of ``RECBOLE_CURVES[name]`` side by side (the
    cached ones), with the differences and the fit-time ratio."""
    rows = []
    for params in curve_grid(RECBOLE_CURVES[name]):
        ours = CACHE["runs"].get(_cache_key(dataset, f"chuchun {name}", params), {})
        theirs = CACHE["runs"].get(_cache_key(dataset, f"RecBole {name}", params), {})
        if all({"val", "test", "fit"} <= set(e) for e in (ours, theirs)):
            rows.append((params["n_epochs"], ours, theirs))
    if not rows:
        return []
    setting = _fmt(RECBOLE_CURVES[name][0][0])
    lines = [f"**chuchun {name} and RecBole {name} side by side** ({setting}; differences "
             "chuchun minus RecBole)", "",
             "| epochs | validation: chuchun | RecBole | Δ | test: chuchun | RecBole | Δ "
             "| fit (s): chuchun | RecBole | ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    for epochs, a, b in rows:
        lines.append(f"| {epochs} | {a['val']:.4f} | {b['val']:.4f} | {a['val'] - b['val']:+.4f} "
                     f"| {a['test']:.4f} | {b['test']:.4f} | {a['test'] - b['test']:+.4f} "
                     f"| {a['fit']:.1f} | {b['fit']:.1f} | {a['fit'] / b['fit']:.2f} |")
    worst = max(max(abs(a["val"] - b["val"]), abs(a["test"] - b["test"])) for _, a, b in rows)
    lines += ["", f"Largest difference over these checkpoints: {worst:.4f} NDCG@10.", ""]
    return lines


def not_cached(name: str, problem: Problem, params: dict[str, Any]) -> tuple[float, float]:
    raise LookupError(f"{name} {params}: a curve checkpoint missing from the cache")


def seed_runs(name: str, chosen: dict[str, Any], seeds: list[int], dataset: str,
              validation: Problem, final: Problem, lines: list[str]) -> None:
    """The chosen setting refitted with other seeds (``random_state``): validation and test
    NDCG per seed and their mean with its standard error, seed 0 being the tuning run."""
    label = f"chuchun {name}"
    base = {k: v for k, v in chosen["params"].items() if k != "random_state"}
    rows = [(FIXED[name].get("random_state", 0), chosen["val"], chosen["test"], chosen["fit"])]
    for seed in seeds:
        measured = _cached_run(run_chuchun, name, validation, final,
                               _cache_key(dataset, label, {**base, "random_state": seed}))
        if measured is not None:
            rows.append((seed, *measured))
    vals = np.array([r[1] for r in rows])
    tests = np.array([r[2] for r in rows])
    lines += [f"**{label}, {_fmt(base)}: seeds**", "",
              "| random_state | validation NDCG@10 | test NDCG@10 | fit (s) |", "|---|---|---|---|"]
    lines += [f"| {seed} | {v:.4f} | {t:.4f} | {f:.2f} |" for seed, v, t, f in rows]
    if len(rows) > 1:
        n = np.sqrt(len(rows))
        lines.append(f"| mean ± s.e. ({len(rows)} seeds) | {vals.mean():.4f} ± "
                     f"{vals.std(ddof=1) / n:.4f} | {tests.mean():.4f} ± "
                     f"{tests.std(ddof=1) / n:.4f} | |")
    lines.append("")
    SEEDS[f"{dataset}|{name}"] = (len(rows), float(vals.mean()), float(tests.mean()))


SEEDS: dict[str, tuple[int, float, float]] = {}


def ease_timing(rounds: int) -> None:
    """EASE fit times on the whole ml-100k training part, chuchun and Cornac interleaved."""
    _, final = problems(load("ml-100k"))
    # one untimed fit each first: the first call pays lazy imports and BLAS start-up
    run_chuchun("EASE", final, {"regularization": 200.0})
    if cornac_available():
        run_cornac("EASE", final, {"regularization": 200.0})
    load_before = os.getloadavg()[0]
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(run_chuchun("EASE", final, {"regularization": 200.0})[0])
        if cornac_available():
            theirs.append(run_cornac("EASE", final, {"regularization": 200.0})[0])
    body = [f"EASE (regularization 200) on the ml-100k training part "
            f"({final.data.n_items} items), {rounds} interleaved rounds after one untimed warm-up fit each, BLAS on one thread "
            f"(1-minute load average {load_before:.2f} before the run, "
            f"{os.getloadavg()[0]:.2f} after, on {os.cpu_count()} logical cores):",
            "", "| library | median fit (s) | all fits (s) |", "|---|---|---|",
            f"| chuchun EASE | {statistics.median(ours):.3f} | "
            + ", ".join(f"{t:.2f}" for t in ours) + " |"]
    if theirs:
        body.append(f"| Cornac EASE | {statistics.median(theirs):.3f} | "
                    + ", ".join(f"{t:.2f}" for t in theirs) + " |")
        body += ["", f"Ratio chuchun / Cornac (medians): "
                 f"{statistics.median(ours) / statistics.median(theirs):.2f}"]
    write_results("topn_ease_timing", "EASE fit time on MovieLens 100K",
                  [("Interleaved fits", "\n".join(body))], libraries=["cornac"])
    print("\n".join(body), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-latest-small"])
    ap.add_argument("--models", nargs="+", default=list(GRIDS))
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--topic", default="topn")
    ap.add_argument("--reduced", action="store_true", help="fewer candidates per model")
    ap.add_argument("--ease-timing", type=int, default=0, metavar="ROUNDS",
                    help="only time EASE fits (chuchun and Cornac interleaved)")
    ap.add_argument("--reference-only", action="store_true",
                    help="run only the Cornac side (its chuchun rows come from another run)")
    ap.add_argument("--cache", default=None, metavar="JSON",
                    help="read and extend this file of measured candidates (resumable tuning)")
    ap.add_argument("--part", choices=("both", "validation", "test"), default="both",
                    help="fit only the validation or only the test side of each candidate "
                         "(two processes with separate --cache files, merged afterwards)")
    ap.add_argument("--cached-only", action="store_true",
                    help="tabulate only the candidates already in --cache (no fits)")
    ap.add_argument("--long", action="store_true",
                    help="the longer-training candidates of the neural models")
    ap.add_argument("--single", action="store_true",
                    help="one candidate per neural model (MultVAE, LightGCN)")
    ap.add_argument("--curve", action="store_true",
                    help="the neural models' candidates from one fit per setting (CURVES)")
    ap.add_argument("--curve-settings", default=None, metavar="JSON",
                    help='replace CURVES, e.g. \'{"MultVAE": [[{"beta_cap": 0.2}, [50, 100]]]}\'')
    ap.add_argument("--stop-at", default=None, metavar="HH:MM",
                    help="a curve's fit stops at its first checkpoint after this UTC time, "
                         "keeping the checkpoints measured (curves not begun are skipped)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch and kernel threads of the chuchun fits (default 2)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[], metavar="SEED",
                    help="refit each model's chosen setting with these random_state values")
    ap.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                    help="merge these cache files into --cache (entry by entry) and stop")
    args = ap.parse_args()
    if args.threads is not None:
        for fixed in FIXED.values():
            if "n_threads" in fixed:
                fixed["n_threads"] = args.threads
    if args.merge:
        merged = json.loads(Path(args.cache).read_text()) if Path(args.cache).exists() else {}
        for extra in args.merge:
            for key, entry in json.loads(Path(extra).read_text()).items():
                merged.setdefault(key, {}).update(entry)
        CACHE["path"], CACHE["runs"] = args.cache, merged
        _save_cache()
        return
    if args.ease_timing:
        ease_timing(args.ease_timing)
        return
    CACHE["part"] = args.part
    CACHE["cached_only"] = args.cached_only
    if args.cache:
        CACHE["path"] = args.cache
        if Path(args.cache).exists():
            CACHE["runs"] = {k: v if isinstance(v, dict) else dict(zip(("val", "test", "fit"), v))
                             for k, v in json.loads(Path(args.cache).read_text()).items()}
    ACTIVE.update(REDUCED if args.reduced else GRIDS)
    if args.single:
        ACTIVE.update(SINGLE)
    if args.long:
        ACTIVE.update(LONG)
    if args.curve_settings:
        for name, curves in json.loads(args.curve_settings).items():
            CURVES[name] = [(dict(params), tuple(epochs)) for params, epochs in curves]
    _match_reference()
    if args.stop_at:
        hours, minutes = (int(v) for v in args.stop_at.split(":"))
        now = time.gmtime()
        CACHE["stop"] = time.time() + ((hours - now.tm_hour) * 60 + minutes - now.tm_min) * 60
    if args.curve:
        CACHE["curve"] = True
        ACTIVE.update({name: curve_grid(curves) for name, curves in CURVES.items()})
    cornac_version = None if args.no_reference else cornac_available()
    summary = ["| data | model | chosen on validation | validation | test | fit (s) |",
               "|---|---|---|---|---|---|"]
    sections: list[tuple[str, str]] = []
    best: dict[str, tuple[str, float, float, str]] = {}

    def chosen() -> str:
        return "\n".join(
            [*summary, ""] + [f"Best chuchun model on {d}'s validation cut: {m} ({p}), "
                              f"validation {v:.4f}, test {t:.4f}." for d, (m, v, t, p)
                              in best.items() if m])

    def save() -> None:
        # rewritten after every model so an interrupted run still leaves its tables
        write_results(args.topic, "Top-N models on temporal splits (NDCG@10)",
                      [("Protocol", __doc__.split("Usage::")[0].strip()
                        + ("\n\nReference: Cornac " + cornac_version if cornac_version else
                           "\n\nReference: Cornac not run.")),
                       ("Chosen settings", chosen()), *sections],
                      libraries=["torch", "cornac"])

    for ds in args.datasets:
        rows = load(ds)
        validation, final = problems(rows)
        best[ds] = ("", -1.0, -1.0, "")
        lines: list[str] = []
        title = f"{ds}: {final.data.n_users} users, {final.data.n_items} items in training"
        sections.append((title + ", every candidate", ""))
        print(ds, flush=True)
        for name in args.models:
            if not args.reference_only:
                if name in ("EASE", "RP3beta", "SLIM", "ImplicitALS") and not args.cached_only:
                    run_chuchun(name, validation, ACTIVE[name][0])  # compile / warm up
                if args.curve and name in CURVES and not args.cached_only:
                    run_curves(name, ds, validation, final)
                try:
                    res = evaluate(run_chuchun, name, validation, final, lines,
                                   f"chuchun {name}", ds)
                except LookupError:
                    lines += [f"chuchun {name}: no candidate measured in this table's cache.", ""]
                else:
                    summary.append(f"| {ds} | chuchun {name} | {_fmt(res['params'])} | "
                                   f"{res['val']:.4f} | {res['test']:.4f} | {res['fit']:.2f} |")
                    if res["val"] > best[ds][1]:
                        best[ds] = (name, res["val"], res["test"], _fmt(res["params"]))
                    if args.seeds and "random_state" in FIXED[name]:
                        seed_runs(name, res, args.seeds, ds, validation, final, lines)
                        n, v, t = SEEDS[f"{ds}|{name}"]
                        summary.append(f"| {ds} | chuchun {name}, mean of {n} seeds | "
                                       f"{_fmt(res['params'])} | {v:.4f} | {t:.4f} | |")
                sections[-1] = (sections[-1][0], "\n".join(lines))
                save()
            if args.curve and name in RECBOLE_CURVES and not args.no_reference:
                if not args.cached_only:
                    run_curves(name, ds, validation, final, reference=True)
                try:
                    ref = evaluate(not_cached, name, validation, final, lines,
                                   f"RecBole {name}", ds, curve_grid(RECBOLE_CURVES[name]))
                except LookupError:
                    lines += [f"RecBole {name}: no candidate measured in this table's cache.", ""]
                else:
                    summary.append(f"| {ds} | RecBole {name} | {_fmt(ref['params'])} | "
                                   f"{ref['val']:.4f} | {ref['test']:.4f} | {ref['fit']:.2f} |")
                    lines += reference_table(name, ds)
                sections[-1] = (sections[-1][0], "\n".join(lines))
                save()
            if cornac_version and name in CORNAC and not args.curve:
                try:
                    ref = evaluate(run_cornac, name, validation, final, lines,
                                   f"Cornac {CORNAC[name]}", ds)
                except LookupError:
                    lines += [f"Cornac {CORNAC[name]}: no candidate measured in this table's "
                              "cache.", ""]
                except Exception as exc:  # noqa: BLE001 - report and continue
                    lines += [f"Cornac {CORNAC[name]} failed: `{type(exc).__name__}: {exc}`", ""]
                else:
                    summary.append(f"| {ds} | Cornac {CORNAC[name]} | {_fmt(ref['params'])} | "
                                   f"{ref['val']:.4f} | {ref['test']:.4f} | {ref['fit']:.2f} |")
                sections[-1] = (sections[-1][0], "\n".join(lines))
                save()


def _fmt(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    # BLAS on one thread for every library: on a shared machine a spinning multi-threaded
    # BLAS measures the neighbours, not the code
    with threadpool_limits(1):
        main()
