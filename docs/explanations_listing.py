"""Write ``docs/explanations.md``: what ``explain`` returns, per model, for one real user.

Every registered model is fitted on the training part of the bundled ml-latest-small temporal
split (each user's latest 20% of ratings held out) with the side data the ``chuchun`` command
line gives it for a MovieLens source (genres, title words and tags as item features; titles as
stored labels), and explains its own top recommendation for one user. The listing also says
whether the model folds in new users (and what it recommends from the user's training history
given as a new user, in time order) and lists the items most similar to one popular movie.

It checks what it prints and stops with an error when a check fails: the explained score is the
score ``recommend`` ranks by; the contributions of an additive model's reasons add up to the
score (to 1e-5, relative to 1 + |score|); every item reason is one of the user's own training
items and carries its title.

The default (fast) mode overrides a few parameters of the slow models (fewer epochs, samples or
rounds), stated beside each model in the generated file, so the whole listing takes a few
minutes of one core; ``--full`` fits every model with its defaults (over half an hour).

Run from the repository root::

    python docs/explanations_listing.py            # writes docs/explanations.md
    python docs/explanations_listing.py --full --out /tmp/explanations_full.md
    python docs/explanations_listing.py --only ALS,SASRec --out /tmp/some.md
"""

from __future__ import annotations

import os

# one core: BLAS and OpenMP pools are sized when numpy and torch load, so set them first
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import chuchun  # noqa: E402
from chuchun.models._results import _fmt, _plain  # noqa: E402
from chuchun.cli._common import Loaded, fit_arguments  # noqa: E402
from chuchun.data.interactions import Interactions  # noqa: E402
from chuchun.data.splits import user_holdout  # noqa: E402
from chuchun.datasets import load_dataset  # noqa: E402
from chuchun.models import Recommender, registered_models  # noqa: E402

#: The user every model explains: 108 training ratings (the median user has 57) given over
#: almost seven years, from 1 to 5 stars, mostly science fiction and action: a history short
#: enough for title-level reasons to be read and long enough for every model to use.
DEFAULT_USER = 15

#: Fast-mode overrides of the slow models: parameters and why. Everything else is the default.
FAST: dict[str, tuple[dict[str, Any], str]] = {
    "AssociationRules": ({"min_support": 0.1, "max_len": 2},
                         "pairs of items chosen by at least 10% of users (default 1%, triples)"),
    "FactorizationMachine": ({"n_epochs": 30, "max_kept_samples": 20},
                             "30 MCMC sweeps, 20 kept (default 200 and 50)"),
    "FederatedImplicitMF": ({"n_rounds": 3, "n_factors": 16},
                            "3 rounds, 16 factors (default 15 and 64)"),
    "FederatedMF": ({"n_rounds": 5}, "5 rounds (default 30)"),
    "GRU4Rec": ({"n_epochs": 2}, "2 epochs (default 10)"),
    "HybridMF": ({"n_epochs": 10}, "10 epochs (default 30)"),
    "Item2Vec": ({"n_epochs": 5}, "5 epochs (default 10)"),
    "LightGCN": ({"n_epochs": 5}, "5 epochs (default 100)"),
    "MultVAE": ({"n_epochs": 15}, "15 epochs (default 100)"),
    "SASRec": ({"n_epochs": 3}, "3 epochs (default 30)"),
    "SLIM": ({"max_sweeps": 10}, "10 coordinate-descent sweeps per item at most (default 50)"),
}

_TOL = 1e-5


class ListingError(AssertionError):
    """A check of the listing failed: an explanation is wrong."""


@dataclass
class Setup:
    """What every model is fitted on and asked about."""

    loaded: Loaded
    train: Interactions
    titles: dict[Any, str]
    user: Any
    history: list[Any]  # the user's training items, oldest first
    ratings: list[float]
    query: Any  # the movie whose similar items are listed


def prepare(user: int | None, query: int | None) -> Setup:
    ml = load_dataset("ml-latest-small")
    split = user_holdout(ml.ratings, test_fraction=0.2, order="time")
    train = split.train
    loaded = Loaded(train, item_features=ml.item_features(), user_features=ml.user_features(),
                    labels=ml.labels(), name=ml.name)
    titles = {k: str(v) for k, v in ml.labels().items()}
    u = DEFAULT_USER if user is None else user
    row = train.users.index(np.asarray([u]))[0]
    if row < 0:
        raise ListingError(f"user {u} has no training ratings")
    mask = train.user_idx == row
    items = train.items.ids[train.item_idx[mask]]
    order = np.lexsort((items, train.timestamps[mask]))
    ratings = train.ratings[mask] if train.ratings is not None else np.ones(int(mask.sum()))
    counts = np.bincount(train.item_idx, minlength=train.n_items)
    q = train.items.ids[int(np.argmax(counts))] if query is None else query
    return Setup(loaded, train, titles, u, [_plain(x) for x in items[order]],
                 [float(r) for r in ratings[order]], _plain(q))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def model_section(name: str, cls: type[Recommender], s: Setup, fast: bool, n_threads: int,
                  n_reasons: int) -> tuple[list[str], dict[str, Any]]:
    params, why = FAST.get(name, ({}, "")) if fast else ({}, "")
    params = dict(params)
    if "n_threads" in cls._params:
        params["n_threads"] = n_threads
    model = cls(**params)
    extra = fit_arguments(model, s.loaded)
    start = time.process_time()
    model.fit(s.train, **extra)
    fit_cpu = time.process_time() - start
    model.set_item_labels(s.loaded.labels)

    top = model.recommend([s.user], k=1)
    item = _plain(top.item_ids[0, 0])
    ranked = float(top.scores[0, 0])
    full = model.explain([s.user], [item], n_reasons=None)[0]
    e = model.explain([s.user], [item], n_reasons=n_reasons)[0]
    problems = check(name, model, full, ranked, s)

    kind = "additive" if e.additive else "not additive"
    fold = cls.supports_fold_in
    sim = cls.has_similar_items()
    shown = [f"`{k}={v!r}`" for k, v in params.items()]
    lines = [f"## {name}", "", f"*{e.method}*", "",
             f"- {kind}; fold-in: {'yes' if fold else 'no'}; "
             f"`similar_items`: {'yes' if sim else 'no'}",
             f"- parameters: {', '.join(shown) if shown else 'defaults'}"
             + (f" (fast mode: {why})" if why else ""),
             f"- side data passed to `fit`: {', '.join(sorted(extra)) or 'none'}",
             f"- top recommendation: **{e.label or item}** (score {e.score:.4g})", "",
             "| kind | reason | contribution | detail |", "|---|---|---|---|"]
    if problems:
        lines[4:4] = [f"- **CHECK FAILED**: {p}" for p in problems]
    for r in e.reasons:
        detail = ", ".join(f"{k} {_fmt(v)}" for k, v in r.detail.items()
                           if k not in ("antecedent", "consequent"))
        lines.append(f"| {r.kind} | {_cell(r.name)} | {r.contribution:.4g} | {_cell(detail)} |")
    if e.additive:
        rest = len(full.reasons) - len(e.reasons)
        lines.append(f"| | ({rest} other reasons) | {e.remainder:.4g} | |")
    lines.append("")
    if e.additive:
        lines += [f"All {len(full.reasons)} contributions sum to the score "
                  f"(checked to {_TOL:g}).", ""]
    folded = ""
    if fold:
        got = model.recommend_for_history(
            [s.history], k=1,
            ratings=[s.ratings] if model.predicts_ratings else None)
        f_item = _plain(got.item_ids[0, 0])
        folded = s.titles.get(f_item, str(f_item))
        same = "the same item" if f_item == item else "another item"
        lines += [f"Fold-in: the user's {len(s.history)} training items given as a new user "
                  f"(oldest first{', with their ratings' if model.predicts_ratings else ''}) "
                  f"-> **{folded}** ({same} as the known user's top recommendation).", ""]
    similar = ""
    if sim:
        res = model.similar_items([s.query], k=5)
        pairs = [(s.titles.get(_plain(i), str(i)), float(v))
                 for i, v, ok in zip(res.item_ids[0], res.scores[0], res.item_idx[0] >= 0,
                                     strict=True) if ok]
        similar = "; ".join(f"{t} ({v:.3g})" for t, v in pairs)
        lines += [f"Most similar to *{s.titles.get(s.query, s.query)}*: "
                  f"{similar or '(no positive similarity)'}.", ""]
    row = {"name": name, "additive": e.additive, "fold": fold, "sim": sim,
           "top": e.label or str(item), "kinds": sorted({r.kind for r in e.reasons}),
           "fit_cpu": fit_cpu, "n_reasons": len(full.reasons), "problems": problems}
    return lines, row


def check(name: str, model: Recommender, e: Any, ranked: float, s: Setup) -> list[str]:
    """What is wrong with an explanation, given what the model declares (empty: nothing)."""
    out = []
    if abs(e.score - ranked) > 1e-4 * (1 + abs(ranked)):
        out.append(f"{name}: explained score {e.score} is not the ranking score {ranked}")
    if e.additive:
        total = float(sum(r.contribution for r in e.reasons))
        if abs(total - e.score) > _TOL * (1 + abs(e.score)):
            out.append(f"{name}: declared additive, but the {len(e.reasons)} "
                       f"contributions sum to {total!r}, the score is {e.score!r}")
    if not e.label:
        out.append(f"{name}: the explained item {e.item!r} carries no title")
    own = set(s.history)
    for r in e.reasons:
        if r.kind == "item" and r.id not in own:
            out.append(f"{name}: item reason {r.id!r} ({r.label}) is not one of "
                       f"user {s.user}'s training items")
        if r.kind == "item" and not r.label:
            out.append(f"{name}: item reason {r.id!r} carries no title")
    return out


def listing(user: int | None = None, query: int | None = None, *, fast: bool = True,
            only: list[str] | None = None, n_threads: int = 1,
            n_reasons: int = 5) -> tuple[str, list[str]]:
    """The markdown text and the failed checks (empty when every explanation passed)."""
    started = time.process_time()
    s = prepare(user, query)
    models = registered_models()
    if only:
        unknown = sorted(set(only) - set(models))
        if unknown:
            raise SystemExit(f"unknown model(s) {unknown}; registered: {sorted(models)}")
        models = {k: v for k, v in models.items() if k in only}
    sections: list[str] = []
    rows = []
    for name, cls in models.items():
        t0 = time.process_time()
        try:
            lines, row = model_section(name, cls, s, fast, n_threads, n_reasons)
        except Exception as exc:  # noqa: BLE001 - reported with the others, loudly, at the end
            problem = f"{name}: {type(exc).__name__}: {exc}"
            lines = [f"## {name}", "", f"- **CHECK FAILED**: {problem}", ""]
            row = {"name": name, "additive": cls.explain_is_additive,
                   "fold": cls.supports_fold_in, "sim": cls.has_similar_items(),
                   "top": "(failed)", "kinds": [], "fit_cpu": float("nan"),
                   "problems": [problem]}
        print(f"{name}: {time.process_time() - t0:.1f} s CPU", file=sys.stderr)
        sections += lines
        rows.append(row)
    total = time.process_time() - started
    recent = ", ".join(s.titles.get(i, str(i)) for i in s.history[-5:])
    mode = ("fast mode: the slow models run with the fewer epochs, samples or rounds stated "
            "beside them" if fast else "full mode: every model with its defaults")
    head = [
        "# What `explain` returns, per model",
        "",
        f"Generated by `python docs/explanations_listing.py` (chuchun {chuchun.__version__}; "
        f"{mode}; every model with an `n_threads` parameter runs with `n_threads={n_threads}`; "
        f"{total:.0f} s of CPU in all, fits included). Each registered model is fitted on the "
        "training part of the bundled ml-latest-small temporal split (each user's latest 20% "
        "of ratings held out) with the side data the `chuchun` command line passes for a "
        "MovieLens source (genres, title words and tags as item features), stores the titles "
        f"with `set_item_labels`, and explains its own top recommendation for user {s.user} "
        f"({len(s.history)} training ratings; the latest: {recent}), showing the "
        f"{n_reasons} strongest reasons (`n_reasons={n_reasons}`).",
        "",
        "*Additive* models' contributions add up to the score (the reasons not shown are the "
        "remainder); the others' reasons are evidence, not a decomposition. The script checks "
        "that the explained score is the ranking score, that additive contributions sum to it "
        f"(to {_TOL:g}), and that every item reason is one of the user's own training items "
        "and carries its title. *Fold-in* gives the user's training history to "
        "`recommend_for_history` as a new user's (oldest first: sequence models read the "
        "order). *Similar items* are the five most similar to the most rated training movie, "
        f"*{s.titles.get(s.query, s.query)}*.",
        "",
        "| model | additive | fold-in | similar items | top recommendation | reason kinds | "
        "fit CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head.append(f"| [{r['name']}](#{r['name'].lower()}) | {'yes' if r['additive'] else 'no'}"
                    f" | {'yes' if r['fold'] else 'no'} | {'yes' if r['sim'] else 'no'} | "
                    f"{_cell(r['top'])} | {', '.join(r['kinds'])} | {r['fit_cpu']:.1f} |")
    problems = [p for r in rows for p in r["problems"]]
    return "\n".join([*head, "", *sections]).rstrip() + "\n", problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--user", type=int, default=None,
                        help=f"user to explain (default {DEFAULT_USER})")
    parser.add_argument("--item", type=int, default=None,
                        help="movie whose similar items are listed (default: the most rated)")
    parser.add_argument("--full", action="store_true",
                        help="fit every model with its defaults (slow)")
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--threads", type=int, default=1,
                        help="n_threads of the models that have one (default 1)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                                      "explanations.md"))
    args = parser.parse_args(argv)
    only = [m.strip() for m in args.only.split(",") if m.strip()] or None
    text, problems = listing(args.user, args.item, fast=not args.full, only=only,
                             n_threads=args.threads)
    folder = os.path.dirname(os.path.abspath(args.out))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".md.tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, args.out)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"wrote {args.out}", file=sys.stderr)
    if problems:
        raise ListingError("explanations failed their checks (marked CHECK FAILED in "
                           f"{args.out}):\n  " + "\n  ".join(problems))


if __name__ == "__main__":
    main()
