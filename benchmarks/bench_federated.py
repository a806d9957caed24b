"""Federated matrix factorisation against the centralised models with the same factors.

MovieLens 100K, each user a client (in-process simulation, :mod:`chuchun.federated`):

* explicit: ``FederatedMF`` vs ``FunkSVD`` (same ``n_factors``, FunkSVD defaults otherwise) on
  the official folds, test RMSE per round (clients' factors and the server's item state after
  each round), bytes per client per round, seconds per round; the same with 20 % of the cohort
  dropping out each round;
* implicit: ``FederatedImplicitMF`` vs ``ImplicitALS`` (64 factors, 15 rounds / sweeps, the
  ImplicitALS defaults otherwise) on the temporal split (each user's latest 20 % are test),
  NDCG@10 with the user's training items excluded;
* privacy: ``FederatedMF`` with DP-FedAvg (clip norm C, client sampling q, noise multipliers
  sigma), test RMSE and (epsilon, delta = 1/n_users) from the RDP accountant of dp-accounting.

* implicit-tune: the protocol's own settings of ``FederatedImplicitMF`` (server step, client
  fraction, rounds) chosen on a validation cut of the temporal split's training part (each
  user's latest 20 % of training interactions), every candidate also scored on test, then the
  chosen setting against ImplicitALS (``results/federated_implicit.md``).

Each part can run alone (``--parts``); the implicit comparison runs on the selected folds
with ``--implicit-on folds`` or ``both`` (NDCG@10 against each fold's test ratings, training
items excluded). Per fold the script prints the test RMSE as it goes; the 1-minute load average after
each fold is recorded beside the times, which are noisy on a shared machine.

Usage::

    PYTHONPATH=src nice -n 5 python benchmarks/bench_federated.py --folds 1 2 3 4 5
    PYTHONPATH=src nice -n 5 python benchmarks/bench_federated.py --parts privacy
    PYTHONPATH=src nice -n 5 python benchmarks/bench_federated.py --parts implicit-tune --jobs 2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    markdown_table,
    ml100k_folds,
    ml100k_temporal_split,
    write_results,
)

from chuchun.evaluation import evaluate  # noqa: E402
from chuchun.federated import FederatedImplicitMF, FederatedMF  # noqa: E402
from chuchun.models import FunkSVD, ImplicitALS  # noqa: E402

N_FACTORS = 32


def rmse(model, test) -> float:
    pred = model.predict(test.user_ids, test.item_ids)
    return float(np.sqrt(np.mean((pred - test.values) ** 2)))


def _load() -> float:
    return float(os.getloadavg()[0])


def explicit_fold(fold: int, n_rounds: int) -> tuple[dict, dict]:
    """FunkSVD, FederatedMF and FederatedMF with 20 % dropout on fold ``u{fold}``: the
    table row and the gap to FunkSVD after every round of each federated run."""
    name, split = f"u{fold}", ml100k_folds()[fold - 1]
    t = time.perf_counter()
    central = FunkSVD(n_factors=N_FACTORS, random_state=0).fit(split.train)
    central_s = time.perf_counter() - t
    res = {"fold": name, "FunkSVD RMSE": rmse(central, split.test), "FunkSVD fit s": central_s}
    curve = {}
    for label, kw in RUNS:
        per_round: list[float] = []
        model = FederatedMF(n_factors=N_FACTORS, n_rounds=n_rounds, random_state=0, **kw)
        model.fit(split.train, callbacks=[
            lambda m, r, rec, acc=per_round: acc.append(rmse(m, split.test))])
        res[f"{label} RMSE"] = per_round[-1]
        res[f"{label} gap"] = per_round[-1] - res["FunkSVD RMSE"]
        hist = pd.DataFrame(model.history_)
        res[f"{label} s/round"] = float(hist["seconds"].median())
        if label == "federated":
            res["KiB down/client/round"] = hist["bytes_down_per_client"].iloc[-1] / 1024
            res["KiB up/client/round"] = hist["bytes_up_per_client"].iloc[-1] / 1024
        else:
            res["dropped/round (mean)"] = float(hist["dropped"].mean())
        curve[label] = np.asarray(per_round) - res["FunkSVD RMSE"]
        print(f"{name} {label}: RMSE {per_round[-1]:.4f} (FunkSVD {res['FunkSVD RMSE']:.4f},"
              f" gap {res[f'{label} gap']:+.4f}), {res[f'{label} s/round']:.2f} s/round",
              flush=True)
    res["load"] = _load()
    return res, curve


RUNS = (("federated", {}), ("20% dropout", {"dropout_fraction": 0.2}))


def explicit(folds: list[int], n_rounds: int, jobs: int = 1,
             meanwhile: Callable[[], Any] | None = None) -> tuple[str, str, str, Any]:
    """:func:`explicit_fold` on each fold (``jobs`` folds at a time in worker processes, while
    ``meanwhile()`` runs here); then the mean row. Returns the table, the per-round table
    (mean and largest gap over the folds), a summary line and what ``meanwhile`` returned."""
    extra = None
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(explicit_fold, f, n_rounds) for f in folds]
            if meanwhile is not None:
                extra = meanwhile()
            results = [fut.result() for fut in futures]
    else:
        results = [explicit_fold(f, n_rounds) for f in folds]
        if meanwhile is not None:
            extra = meanwhile()
    rows = [res for res, _ in results]
    curves = [c for _, c in results]
    names = [r["fold"] for r in rows]
    frame = pd.DataFrame(rows).set_index("fold")
    gaps = frame[["federated gap", "20% dropout gap"]]
    if len(frame) > 1:
        frame.loc["mean"] = frame.mean(numeric_only=True)
    print(markdown_table(frame), flush=True)
    worst = float(gaps.to_numpy().max())
    summary = (f"Mean gap over {len(names)} fold(s): {gaps['federated gap'].mean():.4f} "
               f"without dropout, {gaps['20% dropout gap'].mean():.4f} with 20 % dropout; "
               f"largest single-fold gap {worst:.4f} (target: within 0.01 on every fold: "
               f"**{'met' if worst <= 0.01 else 'not met'}**).")
    rounds = pd.DataFrame({"round": np.arange(1, n_rounds + 1)})
    for label, _ in RUNS:
        stack = np.stack([c[label] for c in curves])
        rounds[f"{label}: mean gap"] = stack.mean(axis=0)
        rounds[f"{label}: largest gap"] = stack.max(axis=0)
    step = max(1, n_rounds // 10)
    rounds = rounds[(rounds["round"] % step == 0) | (rounds["round"] == 1)]
    return markdown_table(frame), markdown_table(rounds.set_index("round")), summary, extra


def implicit(splits, n_rounds: int) -> str:
    """FederatedImplicitMF vs ImplicitALS (64 factors, ``n_rounds`` rounds / sweeps) on each
    of ``splits`` (name, Split): NDCG@10 and Recall@10 with the training items excluded."""
    rows = []
    for name, split in splits:
        t = time.perf_counter()
        central = evaluate(ImplicitALS(n_factors=64, n_epochs=n_rounds, random_state=0), split,
                           metrics=["ndcg", "recall"], k=10)
        central_s = time.perf_counter() - t
        t = time.perf_counter()
        model = FederatedImplicitMF(n_factors=64, n_rounds=n_rounds, random_state=0)
        fed = evaluate(model, split, metrics=["ndcg", "recall"], k=10)
        fed_s = time.perf_counter() - t
        hist = pd.DataFrame(model.history_)
        rows.append({"split": name, "ImplicitALS NDCG@10": central["ndcg@10"],
                     "federated NDCG@10": fed["ndcg@10"],
                     "ratio": fed["ndcg@10"] / central["ndcg@10"],
                     "ImplicitALS Recall@10": central["recall@10"],
                     "federated Recall@10": fed["recall@10"],
                     "ImplicitALS fit+eval s": central_s, "federated fit+eval s": fed_s,
                     "federated s/round": float(hist["seconds"].median()),
                     "KiB down/client/round": hist["bytes_down_per_client"].iloc[-1] / 1024,
                     "KiB up/client/round": hist["bytes_up_per_client"].iloc[-1] / 1024,
                     "load": _load()})
        print(f"implicit {name}: NDCG@10 {fed['ndcg@10']:.4f} vs {central['ndcg@10']:.4f} "
              f"(ratio {rows[-1]['ratio']:.3f})", flush=True)
    frame = pd.DataFrame(rows).set_index("split")
    worst = float(frame["ratio"].min())
    if len(frame) > 1:
        frame.loc["mean"] = frame.mean(numeric_only=True)
    return markdown_table(frame) + (
        f"\n\nFederated / centralised NDCG@10, smallest ratio: {worst:.3f} (target >= 0.95: "
        f"**{'met' if worst >= 0.95 else 'not met'}**).")


def _implicit_curve(task: tuple[str, float, float, int, int]) -> dict[str, Any]:
    """One FederatedImplicitMF fit (worker process, one thread): NDCG@10 and Recall@10 of the
    published model after every round on the split named ``task[0]`` ("validation": the last
    20 % of each user's training interactions held out of the training part; "test")."""
    which, eta, q, n_rounds, seed = task
    from threadpoolctl import threadpool_limits

    split = _implicit_splits()[which]
    ndcg: list[float] = []
    recall: list[float] = []

    def record(m: Any, r: int, rec: dict[str, Any]) -> None:
        res = evaluate(m, split, metrics=["ndcg", "recall"], k=10, fit=False)
        ndcg.append(res["ndcg@10"])
        recall.append(res["recall@10"])

    model = FederatedImplicitMF(n_factors=64, n_rounds=n_rounds, server_learning_rate=eta,
                                client_fraction=q, random_state=seed)
    t = time.perf_counter()
    with threadpool_limits(limits=1):
        model.fit(split.train, callbacks=[record])
    hist = pd.DataFrame(model.history_)
    return {"which": which, "eta": eta, "q": q, "seed": seed, "ndcg": ndcg, "recall": recall,
            "fit s": time.perf_counter() - t, "s/round": float(hist["seconds"].median()),
            "sampled/round": float(hist["sampled"].mean()),
            "KiB down": float(hist["bytes_down_per_client"].max()) / 1024,
            "KiB up": float(hist["bytes_up_per_client"].max()) / 1024, "load": _load()}


def _implicit_final(task: tuple[float, float, int, int]) -> dict[str, Any]:
    """The chosen setting fitted on the temporal split's training part (worker process, one
    thread) and scored on its test part."""
    eta, q, n_rounds, seed = task
    from threadpoolctl import threadpool_limits

    t = time.perf_counter()
    model = FederatedImplicitMF(n_factors=64, n_rounds=n_rounds, server_learning_rate=eta,
                                client_fraction=q, random_state=seed)
    with threadpool_limits(limits=1):
        res = evaluate(model, _implicit_splits()["test"], metrics=["ndcg", "recall"], k=10)
    hist = pd.DataFrame(model.history_)
    return {**res, "times": {
        "federated fit+eval s": time.perf_counter() - t,
        "federated s/round": float(hist["seconds"].median()),
        "KiB down/client/round": hist["bytes_down_per_client"].max() / 1024,
        "KiB up/client/round": hist["bytes_up_per_client"].max() / 1024, "load": _load()}}


_SPLITS: dict[str, Any] = {}


def _implicit_splits() -> dict[str, Any]:
    """The temporal split ("test") and its validation cut ("validation"): the latest 20 % of
    each user's training interactions (by time) held out of the training part."""
    if not _SPLITS:
        import warnings

        from chuchun._exceptions import DataWarning
        from chuchun.data.splits import user_holdout

        test = ml100k_temporal_split()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            _SPLITS["validation"] = user_holdout(test.train, test_fraction=0.2, order="time")
        _SPLITS["test"] = test
    return _SPLITS


#: rounds at which candidates are compared (the per-round curves are reported in full)
_CHECKPOINTS = (5, 10, 15, 20, 25, 30)


def implicit_tune(etas: list[float], fractions: list[float], n_rounds: int, jobs: int,
                  seeds: list[int]) -> list[tuple[str, str]]:
    """Tune what the federated protocol owns (server step, client fraction, rounds) for
    FederatedImplicitMF on the validation cut of the temporal split's training part; every
    candidate is also fitted on the whole training part and scored on test (reported, never
    used to choose). Then the chosen setting against ImplicitALS (seeds ``seeds``)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    splits = _implicit_splits()
    central: dict[tuple[str, int], dict[str, float]] = {}
    for which in ("validation", "test"):
        for seed in seeds:
            t = time.perf_counter()
            res = evaluate(ImplicitALS(n_factors=64, random_state=seed, n_threads=1),
                           splits[which], metrics=["ndcg", "recall"], k=10)
            central[which, seed] = dict(res, seconds=time.perf_counter() - t)
            print(f"ImplicitALS seed {seed} {which}: NDCG@10 {res['ndcg@10']:.4f}", flush=True)
    tasks = [(which, eta, q, n_rounds, seeds[0]) for eta in etas for q in fractions
             for which in ("validation", "test")]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        out = []
        for res in pool.map(_implicit_curve, tasks):
            print(f"eta {res['eta']} q {res['q']} {res['which']}: NDCG@10 by round "
                  + " ".join(f"{v:.4f}" for v in res["ndcg"]), flush=True)
            out.append(res)
        curves = {(r["which"], r["eta"], r["q"]): r for r in out}
        rows = []
        for eta in etas:
            for q in fractions:
                val, test = curves["validation", eta, q], curves["test", eta, q]
                for r in [c for c in _CHECKPOINTS if c < n_rounds] + [n_rounds]:
                    rows.append({"server step": eta, "client fraction": q, "rounds": r,
                                 "validation NDCG@10": val["ndcg"][r - 1],
                                 "test NDCG@10": test["ndcg"][r - 1],
                                 "test Recall@10": test["recall"][r - 1],
                                 "s/round": test["s/round"],
                                 "clients/round": test["sampled/round"],
                                 "KiB down/client/round": test["KiB down"],
                                 "KiB up/client/round": test["KiB up"]})
        grid = pd.DataFrame(rows)
        best = grid.loc[grid["validation NDCG@10"].idxmax()]
        eta, q, r = (float(best["server step"]), float(best["client fraction"]),
                     int(best["rounds"]))
        print(f"chosen on validation: eta {eta}, q {q}, {r} rounds", flush=True)
        # the chosen setting refitted with exactly its round budget, with each seed
        fits = list(pool.map(_implicit_final, [(eta, q, r, seed) for seed in seeds]))
    grid["chosen"] = ["**yes**" if (g["server step"], g["client fraction"], g["rounds"])
                      == (eta, q, r) else "" for _, g in grid.iterrows()]
    final = []
    for seed, fit in zip(seeds, fits, strict=True):
        cen = central["test", seed]
        final.append({"seed": seed, "ImplicitALS NDCG@10": cen["ndcg@10"],
                      "federated NDCG@10": fit["ndcg@10"],
                      "ratio": fit["ndcg@10"] / cen["ndcg@10"],
                      "ImplicitALS Recall@10": cen["recall@10"],
                      "federated Recall@10": fit["recall@10"],
                      "ImplicitALS fit+eval s": cen["seconds"], **fit["times"]})
        print(f"chosen seed {seed}: {fit['ndcg@10']:.4f} vs {cen['ndcg@10']:.4f} "
              f"(ratio {final[-1]['ratio']:.3f})", flush=True)
    final_frame = pd.DataFrame(final).set_index("seed")
    ratio0 = float(final_frame["ratio"].iloc[0])
    if len(final_frame) > 1:
        final_frame.loc["mean"] = final_frame.mean(numeric_only=True)
    per_round = pd.DataFrame({"round": np.arange(1, n_rounds + 1)})
    for eta_ in etas:
        for q_ in fractions:
            for which in ("validation", "test"):
                per_round[f"{which} eta={eta_} q={q_}"] = curves[which, eta_, q_]["ndcg"]
    als = pd.DataFrame([{"seed": s, "validation NDCG@10": central["validation", s]["ndcg@10"],
                         "test NDCG@10": central["test", s]["ndcg@10"]} for s in seeds])
    return [
        ("Implicit: the chosen setting against ImplicitALS (temporal split, test)",
         markdown_table(final_frame) + (
             f"\n\nChosen on validation: server step {eta}, client fraction {q}, {r} rounds. "
             f"Federated / centralised NDCG@10 with random_state={seeds[0]}: {ratio0:.3f} "
             f"(target >= 0.95: **{'met' if ratio0 >= 0.95 else 'not met'}**).")),
        ("Implicit: validation and test of every candidate",
         markdown_table(grid.set_index("server step"))
         + "\n\nValidation: the temporal split's training part with each user's latest 20 % "
           "held out; test: fitted on the whole training part. Choice by validation NDCG@10 "
           f"only; rounds compared at {', '.join(map(str, _CHECKPOINTS))}. Every fit 64 "
           f"factors, lambda 0.01, alpha 1 (ImplicitALS's defaults), random_state={seeds[0]}."),
        ("Implicit: NDCG@10 after every round", markdown_table(per_round.set_index("round"))),
        ("Implicit: ImplicitALS reference (64 factors, 15 sweeps, defaults)",
         markdown_table(als.set_index("seed"))),
    ]


def privacy(split, n_rounds: int, q: float, clip: float, sigmas: list[float]) -> str:
    mean = float(np.mean(split.train.values))
    baseline = float(np.sqrt(np.mean((mean - split.test.values) ** 2)))
    rows = []
    # the clipped noise-free run with either aggregation, then the noisy runs (default: auto)
    runs = [(0.0, "item_mean"), (0.0, "cohort_mean"), *((s, "cohort_mean") for s in sigmas)]
    for sigma, aggregation in runs:
        model = FederatedMF(n_factors=N_FACTORS, n_rounds=n_rounds, client_fraction=q,
                            clip_norm=clip, noise_multiplier=sigma, aggregation=aggregation,
                            random_state=0)
        t = time.perf_counter()
        model.fit(split.train)
        seconds = time.perf_counter() - t
        finite = bool(np.isfinite(model.item_factors_).all())
        rows.append({"noise multiplier": sigma,
                     "aggregation": aggregation,
                     "test RMSE": rmse(model, split.test) if finite else math.nan,
                     "global-mean RMSE": baseline, "fit s": seconds,
                     "epsilon": model.epsilon_, "delta": model.delta_,
                     "clipped share": float(pd.DataFrame(model.history_)["clipped"].sum()
                                            / max(1, pd.DataFrame(model.history_)["accepted"]
                                                  .sum()))})
        print("dp", sigma, rows[-1], flush=True)
    return markdown_table(pd.DataFrame(rows).set_index("noise multiplier"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[1], choices=range(1, 6))
    parser.add_argument("--parts", nargs="+", default=["explicit", "implicit", "privacy"],
                        choices=["explicit", "implicit", "privacy", "implicit-tune"],
                        help="what to run; 'privacy' alone writes results/federated_privacy.md, "
                             "'implicit-tune' alone results/federated_implicit.md")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--implicit-rounds", type=int, default=15)
    parser.add_argument("--implicit-on", choices=["temporal", "folds", "both"],
                        default="temporal",
                        help="the implicit comparison's splits: the temporal split (the "
                             "issue's target), the selected folds, or both")
    parser.add_argument("--topic", default=None,
                        help="results file benchmarks/results/<topic>.md (default: federated, "
                             "or federated_privacy for --parts privacy)")
    parser.add_argument("--dp-rounds", type=int, default=60)
    parser.add_argument("--dp-fraction", type=float, default=0.1)
    parser.add_argument("--dp-clip", type=float, default=0.5)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--etas", type=float, nargs="+", default=[0.5, 0.7, 1.0],
                        help="implicit-tune: server steps eta_s")
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.5],
                        help="implicit-tune: client fractions")
    parser.add_argument("--tune-rounds", type=int, default=30,
                        help="implicit-tune: round budget of each candidate's curve")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="implicit-tune: seeds of the final comparison (the first one is "
                             "the tuning seed)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="folds of the explicit part run this many at a time in worker "
                             "processes (the implicit part runs meanwhile)")
    args = parser.parse_args()
    folds = [(f"u{f}", s) for f, s in zip(range(1, 6), ml100k_folds(), strict=True)
             if f in args.folds]
    start_load = _load()
    privacy_heading = (f"Privacy: DP-FedAvg on {folds[0][0]} (client sampling "
                       f"q={args.dp_fraction}, clip C={args.dp_clip}, {args.dp_rounds} rounds)")
    sections = []
    implicit_section = None
    if "implicit" in args.parts:
        splits = ([("temporal", ml100k_temporal_split())]
                  if args.implicit_on in ("temporal", "both") else [])
        if args.implicit_on in ("folds", "both"):
            splits += folds
        what = {"temporal": "temporal split: each user's latest 20 % are test",
                "folds": "the official folds, every test rating relevant",
                "both": "temporal split (each user's latest 20 % are test), then the folds"}

        def implicit_section() -> tuple[str, str]:
            return (f"Implicit: FederatedImplicitMF vs ImplicitALS ({what[args.implicit_on]}"
                    f"; 64 factors, {args.implicit_rounds} rounds / sweeps)",
                    implicit(splits, args.implicit_rounds))
    if "explicit" in args.parts:
        table, rounds, summary, imp = explicit(sorted(args.folds), args.rounds, args.jobs,
                                               implicit_section)
        sections += [
            ("Explicit: FederatedMF vs FunkSVD, test RMSE", table + "\n\n" + summary + (
                "\n\nGap = federated minus FunkSVD on the same fold. Both with n_factors=32 "
                f"and random_state=0; FederatedMF with its defaults ({args.rounds} rounds, 1 "
                "local epoch, client learning rate 0.005, server learning rate 30, per-item "
                "averaging), every user a client; '20% dropout': each cohort member drops "
                "mid-round with probability 0.2. 'load': 1-minute load average after the "
                f"fold ({args.jobs} fold(s) at a time in separate processes).")),
            (f"Gap to FunkSVD per round (mean and largest over {', '.join(n for n, _ in folds)})",
             rounds),
        ]
        if imp is not None:
            sections.append(imp)
    elif implicit_section is not None:
        sections.append(implicit_section())
    if "privacy" in args.parts:
        sections.append((privacy_heading, privacy(folds[0][1], args.dp_rounds, args.dp_fraction,
                                                  args.dp_clip, args.sigmas)))
    notes = ("Times are from one run on a 2-core machine shared with other work (1-minute load "
             f"average {start_load:.1f} at the start, {_load():.1f} at the end): treat seconds "
             "as noisy. Bytes are the float64 arrays of one message (the broadcast item state "
             "down; one dense update vector up), without framing. dp_accounting "
             f"{_version('dp-accounting')}.")
    if "implicit-tune" in args.parts:
        tune = implicit_tune(args.etas, args.fractions, args.tune_rounds, args.jobs, args.seeds)
        if args.parts == ["implicit-tune"]:
            path = write_results(
                args.topic or "federated_implicit",
                "Federated implicit MF: protocol tuning on validation (chuchun.federated)",
                tune,
                notes=("Times are from a 2-core machine shared with other work (1-minute load "
                       f"average {start_load:.1f} at the start, {_load():.1f} at the end; "
                       "candidates ran two at a time in one-thread worker processes): treat "
                       "seconds as noisy. Bytes are the float64 arrays of one message (the "
                       "broadcast item state down; one dense update vector up), without "
                       "framing."))
            print(path)
            return
        sections += tune
    only_privacy = args.parts == ["privacy"]
    path = write_results(
        args.topic or ("federated_privacy" if only_privacy else "federated"),
        "Federated matrix factorisation" + (" under DP-FedAvg" if only_privacy else "")
        + " (chuchun.federated)", sections, libraries=["dp_accounting"], notes=notes)
    print(path)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
