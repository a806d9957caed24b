"""Time of ``chuchun.evaluation.report`` with five models on the bundled ml-latest-small.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_report.py [--repeat 2]

The split is the temporal one of ``chuchun report --split temporal`` (each user's latest 20 %).
Kernels are warmed first (every model fitted once on a small slice), so the times are those of
a warm process: fitting the five models, ranking the 610 test users with each, the statistics
(bootstrap intervals, paired tests), the plots and the HTML file. Wall time and process CPU
time (all threads) are reported; the machine is shared, so CPU time is the steadier number.
There is no reference library for this step, so there is no ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
from common import markdown_table, write_results

from chuchun import DataWarning
from chuchun.data.features import ItemFeatures
from chuchun.data.splits import user_holdout
from chuchun.datasets import load_dataset
from chuchun.evaluation import report
from chuchun.models import BPR, FunkSVD, ImplicitALS, ImplicitItemKNN, Popularity
from chuchun.testing import block_interactions


def models() -> dict[str, object]:
    return {"Popularity": Popularity(), "ImplicitItemKNN": ImplicitItemKNN(),
            "ImplicitALS": ImplicitALS(), "BPR": BPR(), "FunkSVD": FunkSVD(n_epochs=10)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    warnings.simplefilter("ignore", DataWarning)
    ml = load_dataset("ml-latest-small")
    split = user_holdout(ml.ratings, test_fraction=0.2, order="time")
    labels = dict(zip(ml.items["item"], ml.items["title"], strict=True))
    features = ItemFeatures.from_pandas(ml.items, multi_valued=["genres"])
    small = block_interactions(n_users=30, n_items=20, random_state=0)
    for m in models().values():  # warm the compiled kernels
        m.fit(small)  # type: ignore[attr-defined]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.repeat + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            rep = report(models(), split, Path(tmp) / "report.html", labels=labels,  # type: ignore[arg-type]
                         item_features=features, data_name="ml-latest-small")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            fits = sum(r.card["fit_seconds"] for r in rep.models.values())
            rows.append({"run": run, "wall s": wall, "CPU s": cpu, "of which fits (wall) s": fits,
                         "measuring + plots + HTML (wall) s": wall - fits})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows).set_index("run")
    write_results(
        "report", "Evaluation report: five models on ml-latest-small",
        [("Time of report(...) in a warm process", markdown_table(table, digits=1))],
        libraries=["matplotlib"],
        notes="Models: Popularity, ImplicitItemKNN, ImplicitALS, BPR (defaults) and FunkSVD "
              "(10 epochs); temporal split, k = 10, max_k = 50, 1000 bootstrap resamples per "
              "interval, 3 sample users with explanations. The 2-core machine was shared with "
              "other work (load average far above 2 during the runs), so wall times are "
              "inflated; the CPU time is the work itself.",
    )


if __name__ == "__main__":
    main()
