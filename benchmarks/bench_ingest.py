"""Reading an interaction CSV: chuchun's id-safe reader against plain pandas.

``Interactions.from_csv`` reads the id columns as text and types them by ``id_type`` (so no id
is merged or changed); the reference is what a pandas user writes: ``pd.read_csv`` (ids parsed
as integers) then ``Interactions.from_pandas``. Same file, one process, runs interleaved,
median of ``--repeats``.

    python benchmarks/bench_ingest.py --rows 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from chuchun.data import Interactions


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    users = rng.integers(1, rows // 50 + 2, rows)
    items = rng.zipf(1.3, rows) % (rows // 20 + 1)
    frame = pd.DataFrame({"user": users, "item": items,
                          "rating": rng.integers(1, 6, rows), "timestamp": np.arange(rows)})
    frame.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ratings.csv"
        make_csv(path, args.rows)
        runs: dict[str, list[float]] = {"pandas + from_pandas": [], "from_csv str": [],
                                        "from_csv auto": [], "from_csv int": []}
        shapes = {}
        for _ in range(args.repeats):  # interleaved: machine noise hits every variant alike
            for name in runs:
                start = time.perf_counter()
                if name.startswith("pandas"):
                    data = Interactions.from_pandas(pd.read_csv(path), duplicates="last")
                else:
                    data = Interactions.from_csv(path, id_type=name.split()[-1],
                                                 duplicates="last")
                runs[name].append(time.perf_counter() - start)
                shapes[name] = (data.n_users, data.n_items, len(data))
    base = statistics.median(runs["pandas + from_pandas"])
    print(f"{args.rows:,} rows, median of {args.repeats} interleaved runs")
    print("| reader | median s | ratio to pandas | users | items | interactions |")
    print("|---|---|---|---|---|---|")
    for name, times in runs.items():
        med = statistics.median(times)
        u, i, n = shapes[name]
        print(f"| {name} | {med:.2f} | {med / base:.2f}x | {u:,} | {i:,} | {n:,} |")


if __name__ == "__main__":
    main()
