"""NDCG@10 of the explicit kNN defaults against Popularity on the bundled data's temporal split.

Each user's latest 20% of ratings are test (ml-latest-small, bundled). Prints a markdown table.
The damping default was chosen on a validation cut of the training part only (each user's latest
20% of training ratings), never on this test split.

Run from the repository root: ``python benchmarks/bench_knn_ranking.py``
"""

from __future__ import annotations

import warnings

from chuchun.data.splits import user_holdout
from chuchun.datasets import load_dataset
from chuchun.evaluation import evaluate
from chuchun.models import ItemKNN, Popularity, UserKNN


def main() -> None:
    warnings.simplefilter("ignore")
    ml = load_dataset("ml-latest-small")
    split = user_holdout(ml.ratings, test_fraction=0.2, order="time")
    print("| model | NDCG@10 | RMSE |")
    print("|---|---|---|")
    for name, model in [
        ("Popularity", Popularity()),
        ("ItemKNN() (damping=1)", ItemKNN()),
        ("UserKNN() (damping=1)", UserKNN()),
        ("ItemKNN(damping=0) (before)", ItemKNN(damping=0.0)),
        ("UserKNN(damping=0) (before)", UserKNN(damping=0.0)),
    ]:
        r = evaluate(model, split, k=10)
        print(f"| {name} | {r['ndcg@10']:.4f} | {r.get('rmse', float('nan')):.4f} |", flush=True)


if __name__ == "__main__":
    main()
