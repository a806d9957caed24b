"""Bayesian hyperparameter search engines on one fixed tuning task (same trial budget).

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_search.py --label LABEL [--seeds 0,1,2]
        [--n-trials 25] [--pruner none|median]

The task: tune FunkSVD (``n_factors``, ``learning_rate``, ``regularization``, ``n_epochs``) for
RMSE with :class:`chuchun.evaluation.BayesianSearch` on the MovieLens 100K ``u1.base`` training
file; the search cuts its own random 20 % validation split from it (seeded), so the test file
``u1.test`` is used only to score the refitted best configuration afterwards. Each seed is one
complete search (``n_trials`` trials, ``n_initial = 8`` random start-up trials).

Every run is appended under its ``--label`` to ``benchmarks/results/search_runs.json`` and the
table ``benchmarks/results/search.md`` is rewritten from all recorded runs, so engines measured
at different commits (the Gaussian-process engine before it was replaced, the Optuna engine
after) sit side by side with the commit each ran at.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from common import RESULTS_DIR, ML100K, markdown_table, read_ml100k_file, write_results

from chuchun.evaluation import BayesianSearch, Integer, Real, evaluate
from chuchun.data.splits import Split
from chuchun.models import FunkSVD

RUNS = RESULTS_DIR / "search_runs.json"
SPACE = {
    "n_factors": Integer(8, 128, log=True),
    "learning_rate": Real(0.002, 0.03, log=True),
    "regularization": Real(0.005, 0.2, log=True),
    "n_epochs": Integer(5, 40),
}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def run(seed: int, n_trials: int, pruner: str | None) -> dict[str, Any]:
    train = read_ml100k_file(ML100K / "u1.base")
    test = read_ml100k_file(ML100K / "u1.test")
    options: dict[str, Any] = {}
    if pruner is not None:
        options["pruner"] = None if pruner == "none" else pruner
    search = BayesianSearch(FunkSVD(), SPACE, n_trials=n_trials, n_initial=8, scoring="rmse",
                            random_state=seed, refit=True, **options)
    start = time.perf_counter()
    search.fit(train)
    wall = time.perf_counter() - start
    outer = evaluate(search.best_model_, Split(train, test, {}), metrics=["rmse"], fit=False)
    trials = search.trials_
    pruned = int((trials["state"] == "pruned").sum()) if "state" in trials else 0
    return {
        "seed": seed, "n_trials": n_trials, "best_validation_rmse": search.best_score_,
        "test_rmse_of_best": outer["rmse"], "search_seconds": wall,
        "fit_seconds_sum": float(trials["fit_seconds"].sum()), "pruned_trials": pruned,
        "best_params": {k: (round(v, 5) if isinstance(v, float) else v)
                        for k, v in search.best_params_.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", required=True, help="engine name recorded with the runs")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-trials", type=int, default=25)
    ap.add_argument("--pruner", choices=["none", "median"], default=None,
                    help="passed to BayesianSearch(pruner=...) (Optuna engine only)")
    args = ap.parse_args()
    FunkSVD(n_factors=2, n_epochs=1).fit(read_ml100k_file(ML100K / "u1.test"))  # warm kernels
    runs = json.loads(RUNS.read_text()) if RUNS.exists() else {}
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row = run(seed, args.n_trials, args.pruner)
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    runs[args.label] = {"commit": _commit(), "command": " ".join(sys.argv), "runs": rows}
    tmp = RUNS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(runs, indent=1))
    os.replace(tmp, RUNS)
    write_table(runs)


def write_table(runs: dict[str, Any]) -> None:
    per_seed, summary = [], []
    for label, rec in runs.items():
        frame = pd.DataFrame(rec["runs"])
        for row in rec["runs"]:
            per_seed.append({"engine": label, "seed": row["seed"],
                             "best validation RMSE": row["best_validation_rmse"],
                             "test RMSE of best": row["test_rmse_of_best"],
                             "search s": row["search_seconds"],
                             "pruned trials": row["pruned_trials"],
                             "best params": ", ".join(f"{k}={v}" for k, v in
                                                      row["best_params"].items())})
        summary.append({"engine": label, "commit": rec["commit"],
                        "median best validation RMSE": frame["best_validation_rmse"].median(),
                        "median test RMSE of best": frame["test_rmse_of_best"].median(),
                        "median search s": frame["search_seconds"].median(),
                        "trials per search": int(frame["n_trials"].iloc[0])})
    notes = (
        "FunkSVD on MovieLens 100K `u1.base`, RMSE on the search's own 20 % validation cut "
        "(seeded by the search's `random_state`); `test RMSE of best` scores the refitted best "
        "configuration on `u1.test`, which no search sees. Search seconds include every trial's "
        "fit and validation scoring and the final refit. The machine's 2 cores were shared "
        "with other work during these runs, so wall times are noisy (medians over seeds); each "
        "engine's runs were recorded by the `--label` given, at the commit shown.\n\n"
        + "\n".join(f"- {label}: `python benchmarks/bench_search.py "
                    f"{' '.join(rec['command'].split()[1:])}` at {rec['commit']}"
                    for label, rec in runs.items())
    )
    write_results(
        "search", "Bayesian search engines: same task, same trial budget",
        [("Summary (medians over seeds)", markdown_table(pd.DataFrame(summary), index=False)),
         ("Per seed", markdown_table(pd.DataFrame(per_seed), index=False))],
        notes=notes,
    )


if __name__ == "__main__":
    main()
