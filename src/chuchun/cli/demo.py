"""``chuchun demo``: the bundled MovieLens data, a temporal split, every available model.

To show a new model in the demo add a :class:`DemoEntry` to :data:`DEMO_MODELS`; entries whose
class is not registered are skipped, so the list may name models that are not merged yet.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
import numpy as np

from chuchun._exceptions import ConfigError, DataError, DataWarning
from chuchun._progress import progress
from chuchun.cli._common import explain_pairs, format_table
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender

logger = logging.getLogger(__name__)

FitKwargs = Callable[[Any, Interactions], dict[str, Any]]


@dataclass(frozen=True)
class DemoEntry:
    """One model of the demo.

    Attributes
    ----------
    name : str
        Registered class name.
    params : dict
        Hyperparameters for the full demo.
    quick_params : dict
        Overrides for ``--quick`` (fewer epochs / factors).
    fit_kwargs : callable, optional
        ``(movielens, train) -> dict`` of extra ``fit`` arguments (e.g. item features).
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    quick_params: dict[str, Any] = field(default_factory=dict)
    fit_kwargs: FitKwargs | None = None


def _movie_features(ml: Any, train: Interactions) -> dict[str, Any]:
    """Genres (multi-valued), title words and the users' free-text tags of each movie."""
    return {"item_features": ml.item_features()}


#: The models the demo trains, in display order (skipped when not registered).
DEMO_MODELS: list[DemoEntry] = [
    DemoEntry("Popularity"),
    DemoEntry("BaselineOnly"),
    DemoEntry("ItemKNN", {"n_neighbors": 40}),
    DemoEntry("UserKNN", {"n_neighbors": 40}),
    DemoEntry("ImplicitItemKNN", {"n_neighbors": 50}),
    DemoEntry("ContentBased", fit_kwargs=_movie_features),
    DemoEntry("TruncatedSVD", {"n_factors": 20, "center": "baseline"}),
    DemoEntry("FunkSVD", {"n_factors": 50, "n_epochs": 20, "random_state": 0}, {"n_epochs": 5}),
    DemoEntry("SVDpp", {"n_factors": 20, "n_epochs": 10, "random_state": 0}, {"n_epochs": 3}),
    DemoEntry("ALS", {"n_factors": 50, "n_epochs": 15, "random_state": 0}, {"n_epochs": 3}),
    DemoEntry("ImplicitALS", {"n_factors": 64, "n_epochs": 15, "random_state": 0},
              {"n_epochs": 3}),
    DemoEntry("BPR", {"n_factors": 64, "n_epochs": 50, "random_state": 0}, {"n_epochs": 5}),
    DemoEntry("AssociationRules", {"min_support": 0.05, "max_len": 2}, {"min_support": 0.1}),
]

#: Users kept by ``--quick`` (the smallest ids), to make the run take seconds.
QUICK_USERS = 120


def available_entries(names: tuple[str, ...] = ()) -> list[DemoEntry]:
    """Entries whose model is registered, optionally restricted to ``names``."""
    from chuchun.models import registered_models

    registered = {n.lower(): n for n in registered_models()}
    entries = [e for e in DEMO_MODELS if e.name.lower() in registered]
    if names:
        wanted = [n.lower() for n in names]
        unknown = [n for n in names if n.lower() not in registered]
        if unknown:
            raise ConfigError(
                f"unknown model(s) {unknown}; registered: {sorted(registered.values())}"
            )
        known = {e.name.lower() for e in entries}
        entries = [e for e in entries if e.name.lower() in wanted]
        entries += [DemoEntry(registered[n]) for n in wanted if n not in known]
    return entries


def _params_for(entry: DemoEntry, cls: type[Recommender], quick: bool) -> dict[str, Any]:
    params = dict(entry.params)
    if quick:
        params.update(entry.quick_params)
    specs = cls.param_specs()
    dropped = sorted(set(params) - set(specs))
    if dropped:  # the demo list names a parameter the class no longer declares
        logger.warning("demo: %s has no parameter(s) %s; using defaults", entry.name, dropped)
    return {k: v for k, v in params.items() if k in specs}


@click.command("demo")
@click.option("--quick", is_flag=True,
              help=f"Only the first {QUICK_USERS} users and fewer epochs (a few seconds).")
@click.option("--model", "names", multiple=True, help="Only these models (repeatable).")
@click.option("--user", "user_id", type=int, default=None,
              help="Sample user for the top-10 (default: the smallest test user id).")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Cut-off of the ranking metrics and list length.")
def demo_command(quick: bool, names: tuple[str, ...], user_id: int | None, k: int) -> None:
    """Train every available model on the bundled MovieLens latest-small and compare them.

    Each user's most recent 20% of ratings form the test set. Prints RMSE/MAE (rating models)
    and precision/recall/NDCG@k (all models), then the top-k for a sample user with titles.
    """
    from chuchun.cli._feedback import (
        start_background_warm_up,
        stop_background_warm_up,
        warm_up,
    )

    entries = available_entries(names)
    # a fresh install compiles kernels: a second process warms the last models up meanwhile
    helper = start_background_warm_up(
        "chuchun.cli.demo", [*(["--quick"] if quick else []), *(e.name for e in entries)]
    )
    try:
        _run_demo(entries, quick, user_id, k, warm_up)
    finally:
        stop_background_warm_up(helper)


def _run_demo(
    entries: list[DemoEntry],
    quick: bool,
    user_id: int | None,
    k: int,
    warm_up: Callable[[Recommender, Interactions, dict[str, Any]], float],
) -> None:
    from chuchun.data.splits import user_holdout
    from chuchun.datasets import load_movielens_latest_small
    from chuchun.evaluation import evaluate
    from chuchun.models import get_model_class

    ml = load_movielens_latest_small()
    data = ml.ratings
    if quick:
        data = data.subset(data.user_idx < QUICK_USERS)
    with warnings.catch_warnings():  # the unknown-pair count is reported below instead
        warnings.simplefilter("ignore", DataWarning)
        split = user_holdout(data, test_fraction=0.2, order="time")
    train, test = split.train, split.test
    if user_id is None:
        user_id = int(test.users.ids.min())
    if user_id not in train.users:
        raise DataError(f"user {user_id} has no training ratings in this split")
    n_unknown = int(split.info.get("n_test_unknown", 0))
    click.echo(
        f"MovieLens latest-small{' (quick: first %d users)' % QUICK_USERS if quick else ''}: "
        f"{len(data):,} ratings, {data.n_users:,} users, {data.n_items:,} movies\n"
        f"temporal split: each user's latest 20% of ratings is test -> "
        f"{len(train):,} train / {len(test):,} test\n"
        f"({n_unknown:,} test ratings are of movies unseen in training: rating models score "
        "them with their fallback, and no model can recommend them)\n"
    )
    rows: list[dict[str, Any]] = []
    fitted: list[tuple[str, Any, dict[str, float]]] = []
    failures: list[str] = []
    labels = ml.labels()
    for entry in progress(entries, total=len(entries), desc="models"):
        cls = get_model_class(entry.name)
        model = cls(**_params_for(entry, cls, quick))
        try:
            extra = entry.fit_kwargs(ml, train) if entry.fit_kwargs is not None else {}
            warm_up(model, train, extra)  # kernel compilation is not part of the fit time
            start = time.perf_counter()
            model.fit(train, **extra)
            seconds = time.perf_counter() - start
            model.set_item_labels(labels)
            scores = evaluate(model, split, k=k, fit=False)
        except Exception as exc:  # keep the demo going; reported and exit status 1 below
            logger.debug("demo: %s failed", entry.name, exc_info=True)
            failures.append(f"{entry.name}: {type(exc).__name__}: {exc}")
            continue
        row = {"model": entry.name, "fit s": seconds}
        rating = cls.predicts_ratings
        row["RMSE"] = _metric(scores, "rmse", k) if rating else None
        row["MAE"] = _metric(scores, "mae", k) if rating else None
        row[f"P@{k}"] = _metric(scores, "precision", k)
        row[f"R@{k}"] = _metric(scores, "recall", k)
        row[f"NDCG@{k}"] = _metric(scores, "ndcg", k)
        rows.append(row)
        fitted.append((entry.name, model, scores))
    if rows:
        click.echo(format_table(rows, formats={"fit s": ".2f"}))
    if fitted:
        _show_sample(ml, train, test, fitted, user_id, k)
    if failures:
        for line in failures:
            click.echo(f"chuchun: demo: model failed: {line}", err=True)
        raise SystemExit(1)


def _metric(scores: dict[str, float], name: str, k: int) -> float | None:
    for key in (f"{name}@{k}", name):  # keys of chuchun.evaluation.evaluate
        if key in scores:
            return float(scores[key])
    return None


def _show_sample(
    ml: Any,
    train: Interactions,
    test: Interactions,
    fitted: list[tuple[str, Any, dict[str, float]]],
    user_id: int,
    k: int,
) -> None:
    u = int(train.users.index([user_id])[0])
    row = slice(int(train.csr.indptr[u]), int(train.csr.indptr[u + 1]))
    seen_items = train.items.ids[train.csr.indices[row]]
    seen_ratings = train.csr.data[row]
    test_rows = test.user_ids == user_id
    held_out = set(test.item_ids[test_rows].tolist())

    def best_key(entry: tuple[str, Any, dict[str, float]]) -> float:
        value = _metric(entry[2], "ndcg", k)
        return -math.inf if value is None or value != value else value

    # the list shown comes from the best model whose reasons name movies, users, features or
    # rules (reasons that are only a bias or popularity say little); the best overall otherwise
    ranked = sorted(fitted, key=lambda entry: -best_key(entry))
    chosen: tuple[str, Any, list[Any], list[Any]] | None = None
    for ename, emodel, _ in ranked:
        erecs = emodel.recommend([user_id], k=k)
        eitems = [_py(x) for x in erecs.item_ids[0] if x is not None]
        explained = explain_pairs(emodel, [user_id] * len(eitems), eitems, None) if eitems else []
        if chosen is None:
            chosen = (ename, emodel, eitems, explained)
        if any(r.kind in _NAMED_REASONS for e in explained for r in e.reasons):
            chosen = (ename, emodel, eitems, explained)
            break
    assert chosen is not None
    name, model, items, explanations = chosen
    click.echo(f"\nuser {user_id}: {len(seen_items)} training ratings, {len(held_out)} held out")
    top_seen = np.argsort(-seen_ratings, kind="stable")[:5]
    click.echo("  liked in training: " + "; ".join(
        f"{t} ({r:g})" for t, r in zip(ml.titles(seen_items[top_seen]),
                                       seen_ratings[top_seen], strict=True)
    ))
    why = f"best NDCG@{k}" if name == ranked[0][0] else (
        f"the best NDCG@{k} of the models whose reasons name movies, users, features or rules")
    click.echo(f"\ntop-{k} for user {user_id} from {name} ({why}; * = in the user's "
               "held-out ratings):")
    for rank, (item, title) in enumerate(zip(items, ml.titles(items), strict=True), start=1):
        mark = "*" if _py(item) in held_out else " "
        click.echo(f"  {rank:>2}. {mark} {title}")
        if explanations and explanations[rank - 1].reasons:
            click.echo(f"         because: {_because(explanations[rank - 1], ml)}")


_NAMED_REASONS = ("item", "user", "feature", "interaction", "rule")


def _because(explanation: Any, ml: Any) -> str:
    """The reasons of one explanation in a line, with titles for items and rules."""
    labels = {_py(i): t for i, t in zip(ml.items["item"], ml.items["title"], strict=True)}
    parts = []
    named = [r for r in explanation.reasons if r.kind in _NAMED_REASONS]
    # the two strongest reasons for the item: named ones that raise its score first, so a short
    # line never shows a rated movie that pulled the score down while a larger term lifted it
    supporting = sorted((r for r in named if r.contribution > 0), key=lambda r: -r.contribution)
    for reason in (supporting or named or list(explanation.reasons))[:2]:
        label = reason.label or (
            ml.titles([reason.id])[0] if reason.kind == "item" else str(reason.id)
        )
        if reason.kind == "rule":  # "{318, 356} -> 593": ids to titles
            label = re.sub(r"\d+", lambda m: labels.get(int(m.group()), m.group()), label)
        parts.append(f"{label} ({reason.contribution:+.3g})")
    return "; ".join(parts)


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _warm_up_in_background(argv: list[str]) -> None:
    """Entry of the background warm-up: each model, last first, on a small slice.

    ``argv`` is ``[--quick] name ...``, as :func:`demo_command` passes it. Each model is fitted
    and then used as the demo uses it (predict, recommend, explain), so that the kernels of
    every step are compiled into numba's on-disk cache; the models are thrown away.
    """
    from chuchun._progress import set_progress
    from chuchun.datasets import load_movielens_latest_small
    from chuchun.models import get_model_class

    set_progress(False)
    if hasattr(os, "nice"):
        os.nice(5)  # the demo itself comes first
    quick = "--quick" in argv
    names = tuple(a for a in argv if a != "--quick")
    ml = load_movielens_latest_small()
    small = ml.ratings.subset(ml.ratings.user_idx < 50)
    for entry in reversed(available_entries(names)):
        cls = get_model_class(entry.name)
        try:
            extra = entry.fit_kwargs(ml, small) if entry.fit_kwargs is not None else {}
            model = cls(**_params_for(entry, cls, quick)).fit(small, **extra)
            _use_like_the_demo(model, small)
        except Exception:  # a slice too small for some setting: the demo compiles it itself
            logger.debug("background warm-up of %s failed", entry.name, exc_info=True)


def _use_like_the_demo(model: Recommender, data: Interactions) -> None:
    """The calls the demo makes on a fitted model, on a few users of ``data``: the kernels
    that only scoring or explaining reach get compiled too."""
    users = data.users.ids[:4]
    if model.predicts_ratings:
        model.predict(data.user_ids[:8], data.item_ids[:8])
    recs = model.recommend(users, k=3)
    items = [_py(x) for x in recs.item_ids[0] if x is not None]
    if items:
        model.explain([_py(users[0])] * len(items), items)


if __name__ == "__main__":  # python -m chuchun.cli.demo: the background warm-up
    import sys

    _warm_up_in_background(sys.argv[1:])
