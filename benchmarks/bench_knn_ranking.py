"""Ranking and rating quality of the explicit kNN defaults, on and off MovieLens.

Writes ``benchmarks/results/contract.md`` (through ``common.write_results``):

validation  ``ranking_damping`` of ItemKNN/UserKNN on a validation cut of the bundled data's
            training part (each user's latest 20% of training ratings): the default is chosen
            here, never on the test split.
test        NDCG@10 and RMSE of the defaults against Popularity and BaselineOnly on the bundled
            ml-latest-small temporal split (each user's latest 20% of ratings are test).
sparse      RMSE of the defaults against BaselineOnly on a sparse explicit log
            (``benchmarks/synthetic_explicit.py``: 300,000 ratings, 7,000 users, a 100,000-item
            catalogue, most items with fewer than 5 ratings), random 80/20 split.
ml100k      RMSE of the defaults against BaselineOnly on MovieLens 100K u1..u5.
rating      ``ranking_damping`` of the explicit rating models (BaselineOnly, ALS, FunkSVD,
            SVDpp) on the same validation cut, then NDCG@10 and RMSE on the test split with
            and without the support discount.

Run from the repository root: ``PYTHONPATH=src nice -n 5 python benchmarks/bench_knn_ranking.py``
(``--quick``: ml-100k fold u1 only, a smaller sparse log, a shorter validation sweep;
``--only rating``: run the rating-model sections alone and replace them in the results file).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from chuchun import Interactions  # noqa: E402
from chuchun.data.splits import holdout, user_holdout  # noqa: E402
from chuchun.datasets import load_dataset  # noqa: E402
from chuchun.evaluation import evaluate  # noqa: E402
from chuchun.models import (  # noqa: E402
    ALS,
    BaselineOnly,
    FunkSVD,
    ItemKNN,
    Popularity,
    SVDpp,
    UserKNN,
)

RATING_MODELS = (BaselineOnly, ALS, FunkSVD, SVDpp)
RATING_HEADINGS = ("Rating models: choosing `ranking_damping` on validation",
                   "Rating models: ranking and RMSE on the bundled data (test split)")


def _rmse(model, split) -> float:  # type: ignore[no-untyped-def]
    return float(evaluate(model, split, metrics=["rmse"])["rmse"])


def _damping_grid(ml: Interactions, grid: list[float],
                  models: tuple[type, ...]) -> tuple[str, float]:
    """Validation NDCG@10 of each model by ``ranking_damping`` (a markdown table; each model is
    fitted once on the validation cut's training part and re-ranked per value), and Popularity's
    NDCG@10 on the same cut."""
    split = user_holdout(ml, test_fraction=0.2, order="time")
    val = user_holdout(split.train, test_fraction=0.2, order="time")
    rows = ["| model | " + " | ".join(f"{g:g}" for g in grid) + " |",
            "|---|" + "---|" * len(grid)]
    pop = evaluate(Popularity(), val, metrics=["ndcg"], k=10)["ndcg@10"]
    for cls in models:
        m = cls().fit(val.train)
        cells = []
        for g in grid:
            m.set_params(ranking_damping=g)
            cells.append(evaluate(m, val, metrics=["ndcg"], k=10, fit=False)["ndcg@10"])
        rows.append(f"| {cls.__name__} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
        print(rows[-1], flush=True)
    return "\n".join(rows), pop


def validation_section(ml: Interactions, grid: list[float]) -> str:
    table, pop = _damping_grid(ml, grid, (ItemKNN, UserKNN))
    return ("NDCG@10 on the validation cut (the training part of the temporal split, each "
            "user's latest 20% of training ratings held out) by `ranking_damping`; every other "
            f"parameter at its default. Popularity there: {pop:.4f}.\n\n" + table)


def test_section(ml: Interactions) -> str:
    split = user_holdout(ml, test_fraction=0.2, order="time")
    rows = ["| model | NDCG@10 | RMSE |", "|---|---|---|"]
    for name, model in [
        ("Popularity", Popularity()),
        ("BaselineOnly()", BaselineOnly()),
        ("ItemKNN()", ItemKNN()),
        ("UserKNN()", UserKNN()),
        ("ItemKNN(ranking_damping=0): rank by the predicted rating", ItemKNN(ranking_damping=0.0)),
        ("UserKNN(ranking_damping=0)", UserKNN(ranking_damping=0.0)),
        ("ItemKNN(damping=0, ranking_damping=0)", ItemKNN(damping=0.0, ranking_damping=0.0)),
        ("UserKNN(damping=0, ranking_damping=0)", UserKNN(damping=0.0, ranking_damping=0.0)),
    ]:
        r = evaluate(model, split, k=10)
        rows.append(f"| {name} | {r['ndcg@10']:.4f} | {r.get('rmse', float('nan')):.4f} |")
        print(rows[-1], flush=True)
    return ("Bundled ml-latest-small, temporal split (each user's latest 20% of ratings are "
            "test); test items unseen in training are scored with each model's fallback.\n\n"
            + "\n".join(rows))


def sparse_section(quick: bool) -> str:
    from synthetic_explicit import explicit_log

    n_users, n_items, n_ratings = (2_000, 30_000, 60_000) if quick else (
        7_000, 100_000, 300_000)
    df = explicit_log(n_users, n_items, n_ratings, seed=0)
    counts = df.item.value_counts()
    data = Interactions.from_pandas(df, timestamp_col=None, rating_scale=(1, 5))
    split = holdout(data, 0.2, random_state=0)
    rows = ["| model | RMSE |", "|---|---|"]
    for name, model in [("BaselineOnly()", BaselineOnly()), ("ItemKNN()", ItemKNN()),
                        ("UserKNN()", UserKNN()),
                        ("ItemKNN(damping=0)", ItemKNN(damping=0.0))]:
        rows.append(f"| {name} | {_rmse(model, split):.4f} |")
        print(rows[-1], flush=True)
    return (f"`benchmarks/synthetic_explicit.py` (seed 0): {len(df):,} ratings (1-5) by "
            f"{df.user.nunique():,} users over {df.item.nunique():,} items, "
            f"{(counts < 5).mean():.0%} of them with fewer than 5 ratings; random 80/20 split "
            "(`holdout`, seed 0); test pairs with an unseen user or item get each model's "
            "fallback.\n\n" + "\n".join(rows))


def ml100k_section(folds: list[int]) -> str:
    splits = common.ml100k_folds()
    rows = ["| model | RMSE (mean) | per fold |", "|---|---|---|"]
    for name, make in [("BaselineOnly()", BaselineOnly), ("ItemKNN()", ItemKNN),
                       ("UserKNN()", UserKNN)]:
        values = [_rmse(make(), splits[f - 1]) for f in folds]
        rows.append(f"| {name} | {np.mean(values):.4f} | "
                    + ", ".join(f"{v:.4f}" for v in values) + " |")
        print(rows[-1], flush=True)
    names = ", ".join(f"u{f}" for f in folds)
    return f"MovieLens 100K folds {names}.\n\n" + "\n".join(rows)


def rating_validation_section(ml: Interactions, grid: list[float]) -> str:
    table, pop = _damping_grid(ml, grid, RATING_MODELS)
    return ("NDCG@10 on the validation cut (each user's latest 20% of training ratings held "
            "out) by `ranking_damping` λ_n; every other parameter at its default. Popularity "
            f"there: {pop:.4f}.\n\n" + table)


def rating_test_section(ml: Interactions) -> str:
    split = user_holdout(ml, test_fraction=0.2, order="time")
    rows = ["| model | NDCG@10, λ_n = 0 (by the predicted rating) | NDCG@10, default λ_n | "
            "RMSE |", "|---|---|---|---|"]
    pop = evaluate(Popularity(), split, metrics=["ndcg"], k=10)["ndcg@10"]
    for cls in RATING_MODELS:
        m = cls().fit(split.train)
        default = evaluate(m, split, k=10, fit=False)
        m.set_params(ranking_damping=0.0)
        plain = evaluate(m, split, k=10, fit=False)
        rows.append(f"| {cls.__name__} | {plain['ndcg@10']:.4f} | {default['ndcg@10']:.4f} | "
                    f"{default.get('rmse', float('nan')):.4f} |")
        print(rows[-1], flush=True)
    return ("Bundled ml-latest-small, temporal split, as above; one fit per model, ranked "
            "both ways (`predict`, hence RMSE, does not depend on `ranking_damping`). "
            f"Popularity: {pop:.4f}.\n\n" + "\n".join(rows))


def rating_sections(ml: Interactions, quick: bool) -> list[tuple[str, str]]:
    grid = [0.0, 10.0, 300.0] if quick else [0.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0,
                                             3000.0]
    bodies = [rating_validation_section(ml, grid), rating_test_section(ml)]
    return list(zip(RATING_HEADINGS, bodies, strict=True))


def splice(path: Path, sections: list[tuple[str, str]]) -> None:
    """Replace (or append) ``sections`` in an existing results file, each with the command
    and date that produced it, keeping the rest of the file."""
    text = path.read_text()
    notes_at = text.find("\n`recommend` of the explicit kNN models")
    head, notes = (text, "") if notes_at < 0 else (text[:notes_at], text[notes_at:])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for heading, body in sections:
        block = (f"### {heading}\n\nCommand: `{common.command_line()}` ({now})\n\n"
                 f"{body.strip()}\n\n")
        start = head.find(f"### {heading}\n")
        if start < 0:
            head = head.rstrip("\n") + "\n\n" + block
        else:
            end = head.find("\n### ", start + 1)
            head = head[:start] + block + ("" if end < 0 else head[end + 1:])
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(head.rstrip("\n") + "\n" + notes)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=("all", "rating"), default="all")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    ml = load_dataset("ml-latest-small").ratings
    if args.only == "rating":
        path = common.RESULTS_DIR / "contract.md"
        splice(path, rating_sections(ml, args.quick))
        print(f"updated {path}")
        return
    grid = [0.0, 10.0, 50.0] if args.quick else [0.0, 2.0, 5.0, 10.0, 20.0, 50.0]
    sections = [
        ("Choosing `ranking_damping` on validation", validation_section(ml, grid)),
        ("Ranking on the bundled data (test split)", test_section(ml)),
        ("A sparse explicit log off MovieLens", sparse_section(args.quick)),
        ("Rating accuracy on MovieLens 100K", ml100k_section([1] if args.quick
                                                              else [1, 2, 3, 4, 5])),
        *rating_sections(ml, args.quick),
    ]
    path = common.write_results(
        "contract", "Model contract: ranking and rating quality of the explicit kNN defaults",
        sections, notes=NOTES)
    print(f"wrote {path}")


NOTES = """
`recommend` of the explicit kNN models ranks by the unclipped prediction discounted by its
neighbour support, (r̂_ui − r_min) · w_ui / (w_ui + λ_r) with
w_ui the similarity mass of the neighbours the prediction used and
λ_r = `ranking_damping` (default 10, chosen on the validation cut above):
a rating predictor alone favours rarely rated items that one neighbour pushes up, the support
term favours items the user's neighbourhood actually backs. `predict` is unchanged (damped
towards the baseline when the similarity mass is small, `damping`, Koren 2010). The
Surprise-identical configuration (`damping=0, ranking_damping=0, max_stored=None`) is
cross-checked live against Surprise in `tests/unit/test_knn.py::test_matches_surprise_on_a_subset`
and `benchmarks/bench_knn.py` (see `knn.md`). The machine is shared with other jobs
(load average 20-35 on 2 cores); this file reports quality only, no timings.
"""


if __name__ == "__main__":
    main()
