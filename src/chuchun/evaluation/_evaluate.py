"""Evaluate a model on a split, and cross-validate it over several splits."""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun._progress import progress
from chuchun._random import RandomState
from chuchun.data.interactions import Interactions
from chuchun.data.splits import Split, kfold
from chuchun.metrics import rating as rating_metrics
from chuchun.metrics.ranking import (
    _FROM_HITS,
    RANKING_METRICS,
    _check_k,
    _hits,
    ranking_metrics,
)
from chuchun.models._base import Recommender, clone

__all__ = ["cross_validate", "evaluate", "per_user_ranking_metrics", "relevance_matrix"]

RATING_METRICS = ("rmse", "mae", "mse")
UnknownHandling = Literal["fallback", "skip"]


def _split_metric_names(
    metrics: Any, model: Recommender, test: Interactions
) -> tuple[list[str], list[str]]:
    """Return (rating names, ranking names) after checking each name makes sense here."""
    if metrics is None:
        rating = ["rmse", "mae"] if model.predicts_ratings and test.has_ratings else []
        return rating, list(RANKING_METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    names = [str(m).lower() for m in metrics]
    known = RATING_METRICS + RANKING_METRICS
    bad = [m for m in names if m not in known]
    if bad:
        raise ConfigError(f"unknown metric(s) {bad}; known metrics are {list(known)}")
    rating = [m for m in names if m in RATING_METRICS]
    ranking = [m for m in names if m in RANKING_METRICS]
    if rating and not model.predicts_ratings:
        raise ConfigError(
            f"{type(model).__name__} does not predict ratings, so {rating} are undefined; "
            f"ask for ranking metrics {list(RANKING_METRICS)}"
        )
    if rating and not test.has_ratings:
        raise DataError(f"{rating} need ratings, but the test part has no rating column")
    return rating, ranking


@overload
def evaluate(
    model: Recommender, split: Split, metrics: Sequence[str] | None = ..., k: int = ...,
    fit: bool = ..., relevance_threshold: float | None = ..., *,
    unknown: UnknownHandling = ..., fit_params: Mapping[str, Any] | None = ...,
    return_per_user: Literal[False] = ...,
) -> dict[str, float]: ...


@overload
def evaluate(
    model: Recommender, split: Split, metrics: Sequence[str] | None = ..., k: int = ...,
    fit: bool = ..., relevance_threshold: float | None = ..., *,
    unknown: UnknownHandling = ..., fit_params: Mapping[str, Any] | None = ...,
    return_per_user: Literal[True],
) -> tuple[dict[str, float], pd.DataFrame]: ...


def evaluate(
    model: Recommender,
    split: Split,
    metrics: Sequence[str] | None = None,
    k: int = 10,
    fit: bool = True,
    relevance_threshold: float | None = None,
    *,
    unknown: UnknownHandling = "fallback",
    fit_params: Mapping[str, Any] | None = None,
    return_per_user: bool = False,
) -> dict[str, float] | tuple[dict[str, float], pd.DataFrame]:
    """Fit ``model`` on ``split.train`` (unless ``fit=False``) and score it on ``split.test``.

    Rating metrics (``rmse``, ``mae``, ``mse``; for models with ``predicts_ratings``) compare
    ``model.predict`` with the test ratings over the test pairs. Ranking metrics (see
    :mod:`chuchun.metrics.ranking`) compare each test user's top-``k`` list from
    ``model.recommend(users, k, exclude_seen=True)`` (so the user's training items are never
    recommended) with that user's relevant test items; users without relevant test items are
    skipped, and the per-user values are averaged over the rest. Coverage is relative to the
    model's catalogue (its training items).

    Test pairs whose user or item the model never saw are handled by ``unknown``:

    ``"fallback"`` (default)
        rating pairs get the model's fallback estimate (``predict(..., unknown="fallback")``,
        e.g. the baseline or global mean), unknown users get the fallback top-``k`` list
        (the most popular training items), and unknown test items stay relevant (they count in
        :math:`|T_u|`, lowering recall, but can never be hit);
    ``"skip"``
        those pairs are left out of every metric.

    Either way the counts are returned, so nothing is dropped or kept silently.

    Parameters
    ----------
    model : Recommender
    split : Split
    metrics : sequence of str, optional
        Names from ``("rmse", "mae", "mse")`` and :data:`chuchun.metrics.RANKING_METRICS`.
        Default: ``rmse`` and ``mae`` for rating models (when the test part has ratings) plus
        every ranking metric.
    k : int >= 1
        List length for the ranking metrics.
    fit : bool
        Fit ``model`` (in place) on ``split.train`` first; otherwise it must be fitted already.
    relevance_threshold : float, optional
        Only test rows with a rating ``>=`` this are relevant for the ranking metrics (default:
        every test row is relevant). Rating metrics always use every test pair.
    unknown : {"fallback", "skip"}
    fit_params : mapping, optional
        Extra keyword arguments for ``model.fit`` (e.g. side features).
    return_per_user : bool
        Also return the per-user values behind the ranking metrics (for confidence intervals
        and paired tests, see :mod:`chuchun.evaluation.stats`).

    Returns
    -------
    dict, or (dict, pandas.DataFrame) with ``return_per_user=True``
        Metric values keyed ``"rmse"``, ``"mae"``, ``"precision@10"``, ... followed by counts:
        ``n_train``, ``n_test``, ``n_test_unknown_user``, ``n_test_unknown_item``,
        ``n_test_unknown`` (pairs with either, relative to the model's vocabularies),
        ``n_rating_pairs`` and ``n_rating_fallback`` (pairs scored, and of those scored by the
        fallback), ``n_users_evaluated`` and ``n_users_unknown`` (ranking users, and of those
        unseen in training), and timings ``fit_seconds`` (when fitting) and ``eval_seconds``.
        The per-user frame has one row per evaluated user (index: external user ids, in
        increasing order of the test part's user index), one column per ranking metric except
        coverage (``"ndcg@10"``, ...) and ``n_relevant``; its column means are the dict's
        values.
    """
    if not isinstance(model, Recommender):
        raise ConfigError(f"evaluate expects a chuchun Recommender; got {type(model).__name__}")
    if not isinstance(split, Split):
        raise DataError(
            f"evaluate expects a chuchun.data.splits.Split; got {type(split).__name__}. "
            "Make one with holdout(), user_holdout(), temporal_split() or kfold()"
        )
    k = _check_k(k)
    if unknown not in ("fallback", "skip"):
        raise ConfigError(f"unknown must be 'fallback' or 'skip'; got {unknown!r}")
    test = split.test
    if relevance_threshold is not None:
        if isinstance(relevance_threshold, bool) or not isinstance(
            relevance_threshold, numbers.Real
        ):
            raise ConfigError(
                f"relevance_threshold must be a number or None; got {relevance_threshold!r}"
            )
        if not test.has_ratings:
            raise DataError(
                "relevance_threshold needs ratings, but the test part has no rating column"
            )
    rating_names, ranking_names = _split_metric_names(metrics, model, test)

    result: dict[str, float] = {}
    timings: dict[str, float] = {}
    if fit:
        start = time.perf_counter()
        model.fit(split.train, **dict(fit_params or {}))
        timings["fit_seconds"] = time.perf_counter() - start
    else:
        model._check_fitted()
    start = time.perf_counter()

    user_ids, item_ids = test.user_ids, test.item_ids
    u = model.users_.index(user_ids)
    i = model.items_.index(item_ids)
    user_unknown, item_unknown = u < 0, i < 0
    pair_unknown = user_unknown | item_unknown
    counts: dict[str, float] = {
        "n_train": len(split.train),
        "n_test": len(test),
        "n_test_unknown_user": int(user_unknown.sum()),
        "n_test_unknown_item": int(item_unknown.sum()),
        "n_test_unknown": int(pair_unknown.sum()),
    }

    if rating_names:
        scored = ~pair_unknown if unknown == "skip" else np.ones(len(test), dtype=bool)
        counts["n_rating_pairs"] = int(scored.sum())
        counts["n_rating_fallback"] = int((scored & pair_unknown).sum())
        if scored.any():
            pred = model.predict(user_ids[scored], item_ids[scored], unknown="fallback")
            truth = test.values[scored]
            for name in rating_names:
                result[name] = getattr(rating_metrics, name)(truth, pred)
        else:
            result.update({name: float("nan") for name in rating_names})

    per_user = pd.DataFrame()
    if ranking_names:
        eval_user_ids, rel = relevance_matrix(model, split, relevance_threshold, unknown)
        n_items = len(model.items_)
        counts["n_users_evaluated"] = len(eval_user_ids)
        counts["n_users_unknown"] = int((model.users_.index(eval_user_ids) < 0).sum())
        if len(eval_user_ids):
            recs = model.recommend(eval_user_ids, k, exclude_seen=True, unknown="fallback")
            result.update(
                ranking_metrics(recs.item_idx, rel, k, ranking_names, n_items=n_items)
            )
            if return_per_user:
                per_user = per_user_ranking_metrics(recs.item_idx, rel, k, ranking_names)
                per_user.index = pd.Index(eval_user_ids, name="user")
        else:
            result.update({f"{name}@{k}": float("nan") for name in ranking_names})

    timings["eval_seconds"] = time.perf_counter() - start
    summary = {**result, **counts, **timings}
    return (summary, per_user) if return_per_user else summary


def relevance_matrix(
    model: Recommender,
    split: Split,
    relevance_threshold: float | None = None,
    unknown: UnknownHandling = "fallback",
) -> tuple[np.ndarray, sp.csr_matrix]:
    """The users :func:`evaluate` ranks for and their relevant test items.

    Returns the external ids of the test users with at least one relevant item (in increasing
    order of the test part's user index) and a CSR matrix, row for row, whose columns are the
    fitted ``model``'s item indices; relevant test items unknown to the model get columns past
    the catalogue (relevant, never hit), or are dropped with ``unknown="skip"``.
    """
    test = split.test
    i = model.items_.index(test.item_ids)
    relevant = np.ones(len(test), dtype=bool)
    if relevance_threshold is not None:
        relevant &= test.values >= relevance_threshold
    if unknown == "skip":
        relevant &= (model.users_.index(test.user_ids) >= 0) & (i >= 0)
    rows = np.flatnonzero(relevant)
    eval_users, user_pos = np.unique(test.user_idx[rows], return_inverse=True)
    n_items = len(model.items_)
    cols = i[rows].astype(np.int64)
    extra = cols < 0
    if extra.any():
        _, extra_code = np.unique(test.item_idx[rows][extra], return_inverse=True)
        cols[extra] = n_items + extra_code
    n_cols = n_items + (int(cols[extra].max()) - n_items + 1 if extra.any() else 0)
    rel = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (user_pos, cols)),
        shape=(len(eval_users), n_cols),
    )
    return test.users.ids[eval_users], rel


def per_user_ranking_metrics(
    recommended_idx: np.ndarray, relevant: sp.csr_matrix, k: int,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-user values of the ranking metrics (all but coverage) at ``k``, plus ``n_relevant``;
    ``NaN`` rows for users without relevant items."""
    hits, n_rel, k = _hits(recommended_idx, relevant, k)
    names = [m for m in (metrics or RANKING_METRICS) if m != "coverage"]
    cols: dict[str, np.ndarray] = {}
    for name in names:
        values = _FROM_HITS[name](hits, n_rel, k).astype(np.float64)
        values[n_rel == 0] = np.nan
        cols[f"{name}@{k}"] = values
    cols["n_relevant"] = n_rel
    return pd.DataFrame(cols)


def cross_validate(
    model: Recommender,
    splits: Sequence[Split] | Interactions,
    metrics: Sequence[str] | None = None,
    k: int = 10,
    relevance_threshold: float | None = None,
    *,
    unknown: UnknownHandling = "fallback",
    fit_params: Mapping[str, Any] | None = None,
    n_folds: int = 5,
    random_state: RandomState = 0,
    verbose: bool = False,
) -> pd.DataFrame:
    """Evaluate a fresh clone of ``model`` on every split.

    Parameters
    ----------
    model : Recommender
        Left untouched: each fold fits ``clone(model)`` (same class and hyperparameters).
    splits : sequence of Split, or Interactions
        The folds (e.g. :func:`~chuchun.data.splits.movielens_100k_folds` or
        :func:`~chuchun.data.splits.kfold`); an ``Interactions`` is cut with
        ``kfold(splits, n_folds, random_state)``.
    metrics, k, relevance_threshold, unknown, fit_params
        As in :func:`evaluate`.
    verbose : bool
        Show a progress bar over folds.

    Returns
    -------
    pandas.DataFrame
        One row per fold (index ``"fold 1"``, ``"fold 2"``, ...) then ``"mean"`` and ``"std"``
        (sample standard deviation over folds, ``ddof=1``; ``NaN`` for a single fold); one
        column per metric, count and timing of :func:`evaluate`.
    """
    if isinstance(splits, Interactions):
        splits = kfold(splits, n_folds=n_folds, random_state=random_state)
    if isinstance(splits, Split):
        splits = [splits]
    splits = list(splits)
    if not splits:
        raise DataError("cross_validate needs at least one split; got none")
    for f, s in enumerate(splits):
        if not isinstance(s, Split):
            raise DataError(f"split {f + 1} is a {type(s).__name__}, not a chuchun Split")
    rows = []
    for split in progress(splits, total=len(splits), desc="folds", verbose=verbose):
        rows.append(
            evaluate(
                clone(model),
                split,
                metrics,
                k,
                fit=True,
                relevance_threshold=relevance_threshold,
                unknown=unknown,
                fit_params=fit_params,
            )
        )
    table = pd.DataFrame(rows, index=[f"fold {f + 1}" for f in range(len(rows))], dtype=float)
    summary = pd.DataFrame([table.mean(), table.std(ddof=1)], index=["mean", "std"])
    return pd.concat([table, summary])
