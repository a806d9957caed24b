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

Usage::

    PYTHONPATH=src nice -n 5 python benchmarks/bench_federated.py [--folds 1 2 3 4 5]
    PYTHONPATH=src nice -n 5 python benchmarks/bench_federated.py --only privacy
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

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


def explicit(folds, n_rounds: int) -> tuple[str, str, str]:
    rows, curve = [], {}
    for name, split in folds:
        t = time.perf_counter()
        central = FunkSVD(n_factors=N_FACTORS, random_state=0).fit(split.train)
        central_s = time.perf_counter() - t
        res = {"fold": name, "FunkSVD RMSE": rmse(central, split.test),
               "FunkSVD fit s": central_s}
        for label, kw in (("federated", {}), ("federated, 20% dropout", {"dropout_fraction": 0.2})):
            per_round: list[float] = []
            model = FederatedMF(n_factors=N_FACTORS, n_rounds=n_rounds, random_state=0, **kw)
            t = time.perf_counter()
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
            curve[(name, label)] = per_round
            print(name, label, per_round[-1], flush=True)
        rows.append(res)
    frame = pd.DataFrame(rows).set_index("fold")
    if len(frame) > 1:
        frame.loc["mean"] = frame.mean(numeric_only=True)
    first = folds[0][0]
    rounds = pd.DataFrame({"round": np.arange(1, n_rounds + 1),
                           "test RMSE": curve[(first, "federated")],
                           "test RMSE, 20% dropout": curve[(first, "federated, 20% dropout")]})
    step = max(1, n_rounds // 10)
    rounds = rounds[(rounds["round"] % step == 0) | (rounds["round"] == 1)]
    return markdown_table(frame), markdown_table(rounds.set_index("round")), first


def implicit(n_rounds: int) -> str:
    split = ml100k_temporal_split()
    t = time.perf_counter()
    central = evaluate(ImplicitALS(n_factors=64, n_epochs=n_rounds, random_state=0), split,
                       metrics=["ndcg", "recall"], k=10)
    central_s = time.perf_counter() - t
    t = time.perf_counter()
    model = FederatedImplicitMF(n_factors=64, n_rounds=n_rounds, random_state=0)
    fed = evaluate(model, split, metrics=["ndcg", "recall"], k=10)
    fed_s = time.perf_counter() - t
    hist = pd.DataFrame(model.history_)
    frame = pd.DataFrame([
        {"model": "ImplicitALS", "NDCG@10": central["ndcg@10"],
         "Recall@10": central["recall@10"], "fit+eval s": central_s},
        {"model": "FederatedImplicitMF", "NDCG@10": fed["ndcg@10"],
         "Recall@10": fed["recall@10"], "fit+eval s": fed_s,
         "s/round": float(hist["seconds"].median()),
         "KiB down/client/round": hist["bytes_down_per_client"].iloc[-1] / 1024,
         "KiB up/client/round": hist["bytes_up_per_client"].iloc[-1] / 1024},
    ]).set_index("model")
    ratio = fed["ndcg@10"] / central["ndcg@10"]
    return markdown_table(frame) + (
        f"\n\nFederated / centralised NDCG@10: {ratio:.3f} (target >= 0.95: "
        f"**{'met' if ratio >= 0.95 else 'not met'}**).")


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
    parser.add_argument("--folds", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--implicit-rounds", type=int, default=15)
    parser.add_argument("--dp-rounds", type=int, default=60)
    parser.add_argument("--dp-fraction", type=float, default=0.1)
    parser.add_argument("--dp-clip", type=float, default=0.5)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--only", choices=["privacy"], default=None,
                        help="run one part alone (written to results/federated_privacy.md)")
    args = parser.parse_args()
    folds = [(f"u{f}", s) for f, s in zip(range(1, 6), ml100k_folds(), strict=True)
             if f in args.folds]
    notes = ("Times are from one run on a machine shared with other work (load average "
             "around 20-35 during the run): treat seconds as noisy. Bytes are the float64 "
             "arrays of one message (the broadcast item state down; one dense update vector "
             "up), without framing.")
    privacy_heading = (f"Privacy: DP-FedAvg on {folds[0][0]} (client sampling "
                       f"q={args.dp_fraction}, clip C={args.dp_clip}, {args.dp_rounds} rounds)")
    if args.only == "privacy":
        body = privacy(folds[0][1], args.dp_rounds, args.dp_fraction, args.dp_clip, args.sigmas)
        path = write_results("federated_privacy", "Federated matrix factorisation under "
                             "DP-FedAvg (chuchun.federated)", [(privacy_heading, body)],
                             libraries=["dp_accounting"], notes=notes)
        print(path)
        return
    table, rounds, first = explicit(folds, args.rounds)
    sections = [
        ("Explicit: FederatedMF vs FunkSVD, test RMSE", table + (
            "\n\nGap = federated minus FunkSVD (target: within 0.01, also with 20 % "
            "dropout). Both with n_factors=32; FederatedMF with its defaults "
            f"({args.rounds} rounds, 1 local epoch, client learning rate 0.005, server "
            "learning rate 30, per-item averaging).")),
        (f"Test RMSE per round ({first})", rounds),
        ("Implicit: FederatedImplicitMF vs ImplicitALS, temporal split", implicit(
            args.implicit_rounds)),
        (privacy_heading,
         privacy(folds[0][1], args.dp_rounds, args.dp_fraction, args.dp_clip, args.sigmas)),
    ]
    path = write_results("federated", "Federated matrix factorisation (chuchun.federated)",
                         sections, libraries=["dp_accounting"], notes=notes)
    print(path)


if __name__ == "__main__":
    main()
