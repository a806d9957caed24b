"""An evaluation report comparing several models on one split: one self-contained HTML file
(tables, SVG plots, model cards, sample users with explanations) or the same numbers as JSON.

:func:`report` fits every model on ``split.train`` (or takes them fitted), ranks the same test
users with each, and measures:

- accuracy at ``k`` with 95 % bootstrap confidence intervals over users and paired tests
  against the best model (Wilcoxon signed-rank and t-test, Holm-corrected), plus every pair on
  NDCG with effect sizes (:mod:`chuchun.evaluation.stats`);
- beyond-accuracy metrics (:mod:`chuchun.metrics.beyond`): novelty, intra-list diversity,
  serendipity against a popularity baseline, ARP, popularity lift, personalisation, Gini and
  coverage;
- metrics by ``k`` from 1 to ``max_k``, by user-activity quartile and by item-popularity bucket;
  the long-tail curve of what is recommended; per-epoch learning curves of models that report
  them through ``fit(..., callbacks=...)``; hyperparameter search traces when searches are
  given.

The report is a front-end: it uses the public estimator API only (``fit``, ``recommend``,
``predict``, ``explain``). Plots need matplotlib (the ``report`` extra); JSON does not.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import inspect
import io
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from chuchun._exceptions import ChuchunError, ConfigError, DataError
from chuchun._random import RandomState, check_random_state
from chuchun.data.splits import Split
from chuchun.evaluation._evaluate import evaluate, per_user_ranking_metrics, relevance_matrix
from chuchun.evaluation.stats import (
    POPULARITY_BUCKETS,
    activity_buckets,
    bootstrap_ci,
    format_p,
    paired_tests,
    popularity_buckets,
    significance_mark,
    summarise_groups,
)
from chuchun.metrics.beyond import (
    beyond_accuracy_per_user,
    gini_index_at_k,
    item_vectors_from_interactions,
)
from chuchun.metrics.ranking import catalog_coverage_at_k, ranking_metrics
from chuchun.models._base import Recommender, clone
from chuchun.models._labels import Labels, label_of

__all__ = ["EvaluationReport", "report"]

#: per-user accuracy metrics in the comparison table (at k)
ACCURACY = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
#: per-user beyond-accuracy metrics in the comparison table (at k), when available
BEYOND = ("novelty", "diversity", "serendipity", "arp", "popularity_lift", "personalisation")
#: metrics drawn for every cut-off from 1 to max_k
_CURVE_METRICS = ("precision", "recall", "ndcg")


# -- results -----------------------------------------------------------------------------------
@dataclass
class ModelResult:
    """Everything measured for one model (numbers only; plots are drawn from these)."""

    name: str
    card: dict[str, Any]
    summary: dict[str, dict[str, float]]
    per_user: pd.DataFrame
    by_k: dict[str, list[float]]
    rating: dict[str, float]
    catalogue: dict[str, float]
    by_activity: dict[str, dict[str, dict[str, float]]]
    by_popularity: dict[str, dict[str, dict[str, float]]]
    exposure: np.ndarray
    learning_curve: dict[str, list[float]]
    top_items: np.ndarray = field(repr=False)


@dataclass
class EvaluationReport:
    """The measured comparison; :meth:`to_html` and :meth:`to_dict` render it.

    Attributes
    ----------
    models : dict of name -> ModelResult
    comparisons : pandas.DataFrame
        Paired tests of every pair of models on the per-user NDCG@k
        (:func:`~chuchun.evaluation.stats.paired_tests`).
    versus_best : dict metric -> pandas.DataFrame
        Paired tests of each model against the best one on that metric (Holm within metric).
    meta : dict
        Data, split, k, users, the item popularity of the training part, timing.
    sample_users : list of dict
        History, test items and each model's top-10 with explanations, for a few users.
    searches : dict of name -> pandas.DataFrame
        The ``trials_`` tables of the searches given.
    """

    models: dict[str, ModelResult]
    comparisons: pd.DataFrame
    versus_best: dict[str, pd.DataFrame]
    meta: dict[str, Any]
    sample_users: list[dict[str, Any]]
    searches: dict[str, pd.DataFrame]
    train_popularity: np.ndarray = field(repr=False)

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The report's numbers as plain JSON-ready data (``NaN`` as ``None``)."""
        models = {}
        for name, r in self.models.items():
            models[name] = {
                "card": r.card,
                "metrics": r.summary,
                "rating_metrics": r.rating,
                "catalogue_metrics": r.catalogue,
                "metrics_by_k": r.by_k,
                "by_user_activity": r.by_activity,
                "by_item_popularity": r.by_popularity,
                "learning_curve": r.learning_curve,
            }
        out = {
            "meta": self.meta,
            "models": models,
            "paired_tests_ndcg": self.comparisons.to_dict(orient="records"),
            "versus_best": {m: t.to_dict(orient="records") for m, t in self.versus_best.items()},
            "sample_users": self.sample_users,
            "searches": {n: t.reset_index().to_dict(orient="records")
                         for n, t in self.searches.items()},
        }
        return _jsonable(out)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    # -- HTML -----------------------------------------------------------------------------------
    def to_html(self) -> str:
        """One self-contained HTML page (inline CSS and SVG; no scripts, no external assets)."""
        plots = _plots(self)
        return _render_html(self, plots)

    def save(self, path: str | os.PathLike[str],
             format: Literal["html", "json"] | None = None) -> Path:
        """Write the report atomically; the format follows ``format`` or the file suffix."""
        path = Path(path)
        fmt = format or ("json" if path.suffix.lower() == ".json" else "html")
        if fmt not in ("html", "json"):
            raise ConfigError(f"format must be 'html' or 'json'; got {fmt!r}")
        if not path.parent.is_dir():
            raise DataError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does "
                            "not exist")
        text = self.to_json() if fmt == "json" else self.to_html()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the report from others
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is pd.NA:
        return None
    return x


# -- measuring ---------------------------------------------------------------------------------
def report(
    models: Mapping[str, Recommender] | Sequence[Recommender],
    split: Split,
    output: str | os.PathLike[str] | None = None,
    *,
    k: int = 10,
    max_k: int = 50,
    relevance_threshold: float | None = None,
    fit: bool = True,
    labels: Labels = None,
    item_features: Any = None,
    searches: Mapping[str, Any] | None = None,
    n_sample_users: int = 3,
    format: Literal["html", "json"] | None = None,
    data_name: str = "",
    n_resamples: int = 1000,
    random_state: RandomState = 0,
) -> EvaluationReport:
    """Compare ``models`` on ``split`` and (with ``output``) write the report.

    Parameters
    ----------
    models : mapping name -> Recommender, or sequence of Recommender
        The models to compare (a sequence is named by class, numbered when repeated). With
        ``fit=True`` each is fitted in place on ``split.train``; models whose ``fit`` takes
        ``callbacks`` get one that records the per-epoch logs (the learning curves).
    split : Split
        Every model is fitted on ``split.train`` and ranks the same test users: those with at
        least one relevant test item (see :func:`~chuchun.evaluation.evaluate`).
    output : path, optional
        Write the report here (HTML, or JSON for a ``.json`` suffix or ``format="json"``).
    k : int
        Cut-off of the comparison table, the buckets and the beyond-accuracy metrics.
    max_k : int
        Largest cut-off of the metric-by-k curves (from 1).
    relevance_threshold : float, optional
        Only test ratings ``>=`` this are relevant.
    fit : bool
        Fit the models first (otherwise they must already be fitted on ``split.train``).
    labels : mapping, Series or callable, optional
        Item id -> title, for sample users and explanations.
    item_features : ItemFeatures or matrix, optional
        Item representation for intra-list diversity (e.g. genres); default: co-occurrence in
        the training interactions (:func:`~chuchun.metrics.item_vectors_from_interactions`).
    searches : mapping name -> fitted search, optional
        ``GridSearch`` / ``RandomSearch`` / ``BayesianSearch`` objects whose traces to plot.
    n_sample_users : int
        How many test users (drawn with ``random_state``) to show with lists and explanations.
    data_name : str
        Shown in the report's header.
    n_resamples : int
        Bootstrap resamples per confidence interval.
    random_state : int, Generator or None
        Seeds the bootstrap and the choice of sample users.

    Returns
    -------
    EvaluationReport
    """
    named = _named_models(models)
    if not isinstance(split, Split):
        raise DataError(f"report expects a chuchun Split; got {type(split).__name__}")
    for name, value in (("k", k), ("max_k", max_k)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be a positive int; got {value!r}")
    max_k = max(int(max_k), int(k))
    rng = check_random_state(random_state)
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=3)]
    started = time.perf_counter()

    fitted: dict[str, tuple[Recommender, float, dict[str, list[float]]]] = {}
    for name, model in named.items():
        fitted[name] = _fit(model, split, fit)
    first = next(iter(fitted.values()))[0]
    eval_user_ids, rel = relevance_matrix(first, split, relevance_threshold)
    if len(eval_user_ids) == 0:
        raise DataError("no test user has a relevant item; nothing to rank")
    for name, (model, _, _) in fitted.items():
        if model.fingerprint_ != first.fingerprint_:
            raise DataError(
                f"{name} was fitted on other data than {next(iter(fitted))}; every model must "
                "be fitted on split.train"
            )

    n_items = len(first.items_)
    popularity = first.item_popularity_.astype(np.float64)
    train_users = first.users_.index(eval_user_ids)
    history = _history(first.seen_, train_users)
    item_vectors = _item_vectors(item_features, first, split)
    baseline = _popularity_lists(first, history, max_k)
    act_codes, act_names = activity_buckets(np.diff(history.indptr).astype(np.float64))
    item_bucket = popularity_buckets(popularity)
    # test items unknown to training (columns past the catalogue) are long tail
    rel_bucket = np.r_[item_bucket, np.full(rel.shape[1] - n_items, 2)]

    results: dict[str, ModelResult] = {}
    for s_i, (name, (model, fit_seconds, curve)) in enumerate(fitted.items()):
        recs = model.recommend(eval_user_ids, max_k, exclude_seen=True, unknown="fallback")
        top = recs.item_idx
        per_user = per_user_ranking_metrics(top, rel, k, ACCURACY)
        beyond = beyond_accuracy_per_user(
            top, k, item_popularity=popularity, n_users=len(first.users_),
            item_vectors=item_vectors, history=history, relevant=rel, baseline_idx=baseline,
        )
        for key, values in beyond.items():
            per_user[f"{key}@{k}"] = values
        per_user.index = pd.Index(eval_user_ids, name="user")
        summary = {}
        for col in per_user.columns:
            if col == "n_relevant":
                continue
            mean, low, high = bootstrap_ci(per_user[col].to_numpy(), n_resamples=n_resamples,
                                           random_state=seeds[0] + s_i)
            summary[col] = {"mean": mean, "low": low, "high": high}
        by_k = {m: [ranking_metrics(top, rel, kk, [m])[f"{m}@{kk}"]
                    for kk in range(1, max_k + 1)] for m in _CURVE_METRICS}
        rating: dict[str, float] = {}
        if model.predicts_ratings and split.test.has_ratings:
            scored = evaluate(model, split, metrics=["rmse", "mae"], k=k, fit=False)
            rating = {"rmse": scored["rmse"], "mae": scored["mae"]}
        catalogue = {f"coverage@{k}": catalog_coverage_at_k(top, n_items, k),
                     f"gini@{k}": gini_index_at_k(top, n_items, k)}
        by_activity = {
            m: _frame_dict(summarise_groups(per_user[f"{m}@{k}"].to_numpy(), act_codes,
                                            act_names, random_state=seeds[1],
                                            n_resamples=n_resamples))
            for m in ("ndcg", "recall")
        }
        by_popularity = _popularity_breakdown(top, rel, rel_bucket, item_bucket, k, seeds[2],
                                              n_resamples)
        flat = top[:, :k][top[:, :k] >= 0]
        exposure = np.bincount(flat, minlength=n_items)
        card = _card(model, fit_seconds, curve)
        results[name] = ModelResult(
            name=name, card=card, summary=summary, per_user=per_user, by_k=by_k,
            rating=rating, catalogue=catalogue, by_activity=by_activity,
            by_popularity=by_popularity, exposure=exposure, learning_curve=curve,
            top_items=top[:, :10],
        )

    comparisons = paired_tests({n: r.per_user[f"ndcg@{k}"].to_numpy()
                                for n, r in results.items()}) if len(results) > 1 else (
        pd.DataFrame())
    versus_best = _versus_best(results, k) if len(results) > 1 else {}
    samples = _sample_users(fitted, eval_user_ids, rel, split, labels, n_sample_users,
                            check_random_state(seeds[2]), results)
    search_tables = {n: _trials_of(n, s) for n, s in (searches or {}).items()}
    from chuchun import __version__

    meta = {
        "title": "Evaluation report",
        "data": data_name,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "chuchun_version": __version__,
        "k": int(k), "max_k": int(max_k),
        "relevance_threshold": relevance_threshold,
        "n_train": len(split.train), "n_test": len(split.test),
        "n_users_evaluated": len(eval_user_ids),
        "n_items": n_items, "n_train_users": len(first.users_),
        "split": {k_: _jsonable(v) for k_, v in split.info.items()},
        "diversity_from": ("item features" if item_features is not None
                           else "co-occurrence in the training interactions"),
        "activity_buckets": act_names,
        "popularity_bucket_sizes": {b: int((item_bucket == j).sum())
                                    for j, b in enumerate(POPULARITY_BUCKETS)},
        "seconds": time.perf_counter() - started,
    }
    out = EvaluationReport(models=results, comparisons=comparisons, versus_best=versus_best,
                           meta=meta, sample_users=samples, searches=search_tables,
                           train_popularity=popularity)
    if output is not None:
        out.save(output, format=format)
    return out


def _named_models(models: Any) -> dict[str, Recommender]:
    if isinstance(models, Recommender):
        models = [models]
    if isinstance(models, Mapping):
        named = {str(n): m for n, m in models.items()}
    elif isinstance(models, Sequence) and not isinstance(models, (str, bytes)):
        named = {}
        for m in models:
            base = type(m).__name__
            name, j = base, 2
            while name in named:
                name, j = f"{base} ({j})", j + 1
            named[name] = m
    else:
        raise ConfigError(
            f"models must be a mapping name -> model or a list of models; got {models!r}"
        )
    if not named:
        raise ConfigError("report needs at least one model; got none")
    for name, m in named.items():
        if not isinstance(m, Recommender):
            raise ConfigError(f"{name!r} is a {type(m).__name__}, not a chuchun Recommender")
    return named


def _fit(model: Recommender, split: Split,
         fit: bool) -> tuple[Recommender, float, dict[str, list[float]]]:
    """Fit (recording per-epoch logs where the model reports them); returns the model, the
    fit time and the learning curve (metric name -> one value per epoch)."""
    curve: dict[str, list[float]] = {}
    if not fit:
        model._check_fitted()
        history = getattr(model, "history_", None)
        if isinstance(history, Mapping):
            curve = {str(n): [float(v) for v in vals] for n, vals in history.items()}
        return model, float("nan"), _drop_empty(curve)

    def record(m: Recommender, epoch: int, logs: Mapping[str, float]) -> bool:
        for name, value in logs.items():
            curve.setdefault(str(name), []).append(float(value))
        return False

    takes_callbacks = "callbacks" in inspect.signature(model._fit).parameters
    start = time.perf_counter()
    model.fit(split.train, **({"callbacks": [record]} if takes_callbacks else {}))
    return model, time.perf_counter() - start, _drop_empty(curve)


def _drop_empty(curve: dict[str, list[float]]) -> dict[str, list[float]]:
    return {n: v for n, v in curve.items()
            if v and any(math.isfinite(x) for x in v) and n != "learning_rate"}


def _history(seen: sp.csr_matrix, user_idx: np.ndarray) -> sp.csr_matrix:
    """Training rows of the evaluated users (empty for users unknown to training)."""
    known = user_idx >= 0
    safe = np.where(known, user_idx, 0)
    starts = np.where(known, seen.indptr[safe], 0)
    counts = np.where(known, seen.indptr[safe + 1] - seen.indptr[safe], 0).astype(np.int64)
    total = int(counts.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = seen.indices[np.repeat(starts, counts) + offsets]
    indptr = np.r_[0, np.cumsum(counts)]
    rows = sp.csr_matrix((np.ones(total, dtype=np.float32), cols, indptr),
                         shape=(len(user_idx), seen.shape[1]))
    rows.sort_indices()
    return rows


def _item_vectors(item_features: Any, model: Recommender, split: Split) -> Any:
    if item_features is None:
        return item_vectors_from_interactions(model.seen_)
    if hasattr(item_features, "align"):
        return item_features.align(model.items_).matrix
    matrix = item_features
    if matrix.shape[0] != len(model.items_):
        raise DataError(
            f"item_features has {matrix.shape[0]} rows but the catalogue has "
            f"{len(model.items_)} items"
        )
    return matrix


def _popularity_lists(model: Recommender, history: sp.csr_matrix, k: int) -> np.ndarray:
    """Each evaluated user's top-k by training popularity, their training items excluded (the
    primitive baseline of serendipity)."""
    order = np.lexsort((np.arange(len(model.item_popularity_)), -model.item_popularity_))
    out = np.full((history.shape[0], k), -1, dtype=np.int64)
    head = order[: k + int(np.diff(history.indptr).max(initial=0))]
    for u in range(history.shape[0]):
        seen = history.indices[history.indptr[u] : history.indptr[u + 1]]
        picks = head[~np.isin(head, seen)][:k]
        out[u, : len(picks)] = picks
    return out


def _frame_dict(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {str(idx): {str(c): _jsonable(v) for c, v in row.items()}
            for idx, row in frame.iterrows()}


def _popularity_breakdown(
    top: np.ndarray, rel: sp.csr_matrix, rel_bucket: np.ndarray, item_bucket: np.ndarray,
    k: int, seed: int, n_resamples: int,
) -> dict[str, dict[str, dict[str, float]]]:
    """Recall@k on the relevant items of each popularity bucket, and the share of the
    recommended items that falls in each bucket."""
    recall: dict[str, dict[str, float]] = {}
    share: dict[str, dict[str, float]] = {}
    lists = top[:, :k]
    in_list = lists[lists >= 0]
    for j, bucket in enumerate(POPULARITY_BUCKETS):
        sub = rel.multiply(sp.csr_matrix(rel_bucket == j, dtype=np.float32)).tocsr()
        sub.eliminate_zeros()
        values = per_user_ranking_metrics(top, sub, k, ["recall"])[f"recall@{k}"].to_numpy()
        mean, low, high = bootstrap_ci(values, n_resamples=n_resamples, random_state=seed)
        recall[bucket] = {"n": int(np.isfinite(values).sum()), "mean": mean, "low": low,
                          "high": high}
        share[bucket] = {"mean": float((item_bucket[in_list] == j).mean()) if len(in_list)
                         else float("nan")}
    return {"recall": recall, "share_of_recommendations": share}


def _versus_best(results: Mapping[str, ModelResult], k: int) -> dict[str, pd.DataFrame]:
    out = {}
    for metric in [f"{m}@{k}" for m in ACCURACY]:
        means = {n: r.summary[metric]["mean"] for n, r in results.items()}
        finite = {n: v for n, v in means.items() if math.isfinite(v)}
        if len(finite) < 2:
            continue
        best = max(finite, key=lambda n: finite[n])
        pairs = [(best, n) for n in results if n != best]
        out[metric] = paired_tests({n: r.per_user[metric].to_numpy()
                                    for n, r in results.items()}, pairs=pairs)
    return out


def _card(model: Recommender, fit_seconds: float,
          curve: Mapping[str, list[float]]) -> dict[str, Any]:
    from chuchun import __version__

    return {
        "class": type(model).__name__,
        "params": {n: _jsonable(v) for n, v in model.get_params().items()},
        "fit_seconds": fit_seconds,
        "data_fingerprint": model.fingerprint_,
        "chuchun_version": __version__,
        "n_users": len(model.users_), "n_items": len(model.items_),
        "reports_epochs": sorted(curve),
        "explain_method": type(model).explain_method,
    }


def _trials_of(name: str, search: Any) -> pd.DataFrame:
    table = getattr(search, "trials_", None)
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"search {name!r} has no trials_ table; fit it before reporting")
    metric = getattr(search, "metric_key", None)
    if metric is None or metric not in table:
        raise ConfigError(f"search {name!r} does not say which column holds its score")
    out = table.copy()
    out.attrs["metric"] = metric
    out.attrs["minimize"] = bool(getattr(search, "minimize", False))
    return out


def _sample_users(
    fitted: Mapping[str, tuple[Recommender, float, Any]], eval_user_ids: np.ndarray,
    rel: sp.csr_matrix, split: Split, labels: Labels, n: int, rng: np.random.Generator,
    results: Mapping[str, ModelResult],
) -> list[dict[str, Any]]:
    first = next(iter(fitted.values()))[0]
    known = np.flatnonzero(first.users_.index(eval_user_ids) >= 0)
    if n <= 0 or len(known) == 0:
        return []
    rows = np.sort(rng.choice(known, size=min(n, len(known)), replace=False))
    train = split.train
    out = []
    for row in rows:
        user = eval_user_ids[row]
        mask = train.user_ids == user
        items = train.item_ids[mask]
        values = train.values[mask] if train.has_ratings else np.ones(int(mask.sum()))
        if train.timestamps is not None:
            order = np.argsort(-train.timestamps[mask], kind="stable")
        else:
            order = np.argsort(-values, kind="stable")
        hist = [{"item": _jsonable(items[j]), "title": _title(labels, items[j]),
                 "value": float(values[j])} for j in order[:10]]
        truth = rel.indices[rel.indptr[row] : rel.indptr[row + 1]]
        truth = truth[truth < len(first.items_)]
        test_items = [{"item": _jsonable(first.items_.ids[t]),
                       "title": _title(labels, first.items_.ids[t])} for t in truth[:10]]
        lists = {}
        for name, (model, _, _) in fitted.items():
            top = results[name].top_items[row]
            top = top[top >= 0]
            ids = model.items_.ids[top]
            entries = []
            explanations = _explanations(model, user, ids, labels)
            for j, item in enumerate(ids):
                entries.append({
                    "item": _jsonable(item), "title": _title(labels, item),
                    "hit": bool(np.isin(top[j], truth)),
                    "explanation": explanations[j] if explanations else None,
                })
            lists[name] = entries
        out.append({"user": _jsonable(user), "n_history": int(mask.sum()), "history": hist,
                    "test_items": test_items, "n_test_items": int(len(truth)),
                    "recommendations": lists})
    return out


def _title(labels: Labels, item: Any) -> str:
    return label_of(labels, _jsonable(item)) if labels is not None else str(_jsonable(item))


def _explanations(model: Recommender, user: Any, items: np.ndarray,
                  labels: Labels) -> list[dict[str, Any]] | None:
    """Each item's explanation (the three strongest reasons), or None when the model cannot
    explain its scores."""
    if len(items) == 0 or type(model).explain is not Recommender.explain:
        return None  # only the contract's batch explain(users, items) is used
    try:
        expl = model.explain(np.full(len(items), user), items, labels=labels, n_reasons=3)
    except ChuchunError:
        return None
    return [
        {"score": e.score, "method": e.method, "additive": e.additive,
         "reasons": [{"kind": r.kind, "name": r.name, "contribution": r.contribution}
                     for r in e.reasons]}
        for e in expl
    ]


# -- plots -------------------------------------------------------------------------------------
def _matplotlib() -> Any:
    """matplotlib's ``Figure`` class. Figures are made without pyplot, so no backend or global
    figure state is touched; ``savefig`` renders SVG with matplotlib's own SVG backend."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ConfigError(
            "the HTML report draws its plots with matplotlib, which is not installed; install "
            "the report extra: pip install 'chuchun[report]' (JSON output needs no plots)"
        ) from exc
    return Figure


def _subplots(figure_cls: Any, ncols: int, figsize: tuple[float, float]) -> tuple[Any, Any]:
    fig = figure_cls(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.S)


def _svg(fig: Any, key: str) -> str:
    """The figure as inline SVG markup (ids salted per figure so that several can share a
    page; text kept as text, drawn in the page's own sans-serif font)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": key, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    text = _SVG_HEAD.sub("", buf.getvalue(), count=1)
    # natural size, shrinking with a narrow page (the viewBox keeps the aspect ratio)
    return text.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)


def _colors(names: Sequence[str]) -> dict[str, Any]:
    palette = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6d597a", "#00798c", "#8d6a9f",
               "#3d405b", "#e07a5f", "#81b29a"]
    return {n: palette[j % len(palette)] for j, n in enumerate(names)}


def _plots(rep: EvaluationReport) -> dict[str, str]:
    figure_cls = _matplotlib()
    import matplotlib

    names = list(rep.models)
    colors = _colors(names)
    k = rep.meta["k"]
    out: dict[str, str] = {}
    style: Any = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
             "axes.grid": True, "grid.alpha": 0.3}
    with matplotlib.rc_context(style):
        # metric by k
        fig, axes = _subplots(figure_cls, 3, (11, 3.2))
        ks = np.arange(1, rep.meta["max_k"] + 1)
        for ax, metric in zip(axes, _CURVE_METRICS, strict=True):
            for n in names:
                ax.plot(ks, rep.models[n].by_k[metric], label=n, color=colors[n], lw=1.6)
            ax.axvline(k, color="0.6", lw=0.8, ls="--")
            ax.set_xlabel("k")
            ax.set_title(f"{metric}@k")
        axes[0].legend(fontsize=8, frameon=False)
        out["by_k"] = _svg(fig, "by_k")

        # per-user NDCG distribution: empirical CDF
        fig, (ax,) = _subplots(figure_cls, 1, (5.5, 3.4))
        for n in names:
            v = np.sort(rep.models[n].per_user[f"ndcg@{k}"].dropna().to_numpy())
            ax.step(v, np.arange(1, len(v) + 1) / max(1, len(v)), where="post", label=n,
                    color=colors[n], lw=1.6)
        ax.set_xlabel(f"NDCG@{k} of a user")
        ax.set_ylabel("share of users at or below")
        ax.legend(fontsize=8, frameon=False, loc="lower right")
        out["ndcg_distribution"] = _svg(fig, "ndcg_distribution")

        # accuracy vs popularity bias
        fig, (ax,) = _subplots(figure_cls, 1, (5.5, 3.4))
        for n in names:
            summary = rep.models[n].summary
            x, y = summary[f"arp@{k}"], summary[f"ndcg@{k}"]
            ax.errorbar([x["mean"]], [y["mean"]],
                        xerr=[[x["mean"] - x["low"]], [x["high"] - x["mean"]]],
                        yerr=[[y["mean"] - y["low"]], [y["high"] - y["mean"]]],
                        fmt="o", color=colors[n], label=n, capsize=3)
        ax.set_xlabel(f"ARP@{k} (mean training count of recommended items)")
        ax.set_ylabel(f"NDCG@{k}")
        ax.legend(fontsize=8, frameon=False)
        out["accuracy_vs_popularity"] = _svg(fig, "accuracy_vs_popularity")

        # buckets
        fig, axes = _subplots(figure_cls, 3, (12, 3.6))
        groups = rep.meta["activity_buckets"]
        _bars(axes[0], names, colors, groups,
              {n: rep.models[n].by_activity["ndcg"] for n in names})
        axes[0].set_title(f"NDCG@{k} by user activity (training history quartile)")
        _bars(axes[1], names, colors, list(POPULARITY_BUCKETS),
              {n: rep.models[n].by_popularity["recall"] for n in names})
        axes[1].set_title(f"recall@{k} of relevant items, by item popularity")
        _bars(axes[2], names, colors, list(POPULARITY_BUCKETS),
              {n: rep.models[n].by_popularity["share_of_recommendations"] for n in names})
        axes[2].set_title("share of recommended items, by item popularity")
        axes[0].legend(fontsize=8, frameon=False)
        out["buckets"] = _svg(fig, "buckets")

        # long-tail curve
        fig, (ax,) = _subplots(figure_cls, 1, (6, 3.6))
        pop = rep.train_popularity
        order = np.lexsort((np.arange(len(pop)), -pop))
        # at most ~600 points per line, spaced evenly on the log axis
        at = np.unique(np.geomspace(1, len(pop), num=min(len(pop), 600)).astype(np.int64)) - 1
        share = (at + 1) / len(pop) * 100
        ax.plot(share, (np.cumsum(pop[order]) / max(pop.sum(), 1))[at], color="0.2", lw=2,
                label="training interactions")
        for n in names:
            e = rep.models[n].exposure.astype(np.float64)
            ax.plot(share, (np.cumsum(e[order]) / max(e.sum(), 1))[at], color=colors[n],
                    lw=1.4, label=f"{n} top-{k}")
        ax.set_xlabel("items, most popular first (% of catalogue)")
        ax.set_ylabel("cumulative share")
        ax.set_xscale("log")
        ax.legend(fontsize=8, frameon=False, loc="lower right")
        out["long_tail"] = _svg(fig, "long_tail")

        # learning curves
        curves = {n: r.learning_curve for n, r in rep.models.items() if r.learning_curve}
        if curves:
            series = sorted({s for c in curves.values() for s in c})
            fig, axes = _subplots(figure_cls, len(series), (5 * len(series), 3.2))
            for ax, line in zip(axes, series, strict=True):
                for n, c in curves.items():
                    if line in c:
                        ax.plot(np.arange(1, len(c[line]) + 1), c[line], marker=".", label=n,
                                color=colors[n])
                ax.set_xlabel("epoch")
                ax.set_title(line.replace("_", " "))
            axes[0].legend(fontsize=8, frameon=False)
            out["learning_curves"] = _svg(fig, "learning_curves")

        # search traces
        for sname, table in rep.searches.items():
            metric = table.attrs["metric"]
            fig, (ax,) = _subplots(figure_cls, 1, (6, 3.2))
            trial = table.index.to_numpy()
            score = table[metric].astype(float).to_numpy()
            state = table["state"] if "state" in table else pd.Series("complete",
                                                                       index=table.index)
            complete = (state == "complete").to_numpy()
            ax.scatter(trial[complete], score[complete], s=14, color="#1b6ca8",
                       label="trial")
            if (~complete).any():
                ax.scatter(trial[~complete], score[~complete], s=14, color="0.6",
                           marker="x", label="pruned / failed")
            best = pd.Series(np.where(complete, score, np.nan))
            best = best.cummin() if table.attrs["minimize"] else best.cummax()
            ax.step(trial, best.to_numpy(), where="post", color="#d1495b", label="best so far")
            ax.set_xlabel("trial")
            ax.set_ylabel(f"validation {metric}")
            ax.set_title(sname)
            ax.legend(fontsize=8, frameon=False)
            out[f"search:{sname}"] = _svg(fig, f"search_{sname}")
    return out


def _bars(ax: Any, names: Sequence[str], colors: Mapping[str, Any], groups: Sequence[str],
          values: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
    width = 0.8 / max(1, len(names))
    x = np.arange(len(groups))
    for j, n in enumerate(names):
        mean = np.array([_num(values[n].get(g, {}).get("mean")) for g in groups])
        low = np.array([_num(values[n].get(g, {}).get("low")) for g in groups])
        high = np.array([_num(values[n].get(g, {}).get("high")) for g in groups])
        err = None
        if np.isfinite(low).any():
            err = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
        ax.bar(x + (j - (len(names) - 1) / 2) * width, np.nan_to_num(mean), width,
               yerr=err, color=colors[n], label=n, capsize=2, error_kw={"lw": 0.8})
    ax.set_xticks(x, [g.split(":")[0] if ":" in g else g for g in groups])


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


# -- HTML --------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#fafafa;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:36px;border-bottom:2px solid #e3e6ea;
padding-bottom:4px}h3{margin:18px 0 6px}
.meta{color:#5a6270;font-size:.9em}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.86em;background:#fff}
th,td{border:1px solid #e0e3e8;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f0f2f5}td.l,th.l{text-align:left}
td.best{font-weight:600;background:#eef6ee}
.ci{color:#6b7280;font-size:.85em;white-space:nowrap}
.sig{color:#b42318;font-weight:600}
figure{margin:10px 0 18px;background:#fff;border:1px solid #e3e6ea;padding:8px}
figcaption{font-size:.85em;color:#5a6270;margin-top:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #e0e3e8;padding:10px 14px;flex:1 1 320px;font-size:.86em}
.card code{font-size:.95em}
.user{background:#fff;border:1px solid #e0e3e8;padding:10px 14px;margin:12px 0}
.lists{display:flex;flex-wrap:wrap;gap:14px}
.lists>div{flex:1 1 260px;font-size:.85em}
ol{padding-left:22px;margin:4px 0}li.hit{font-weight:600;color:#166534}
.why{color:#5a6270;font-size:.92em}
.note{font-size:.85em;color:#5a6270}
.wide{overflow-x:auto}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _f(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    x = float(x)
    if x != 0 and abs(x) < 10 ** -digits:
        return f"{x:.1e}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def _figure(plots: Mapping[str, str], key: str, caption: str) -> str:
    if key not in plots:
        return ""
    return f"<figure>{plots[key]}<figcaption>{_e(caption)}</figcaption></figure>"


def _render_html(rep: EvaluationReport, plots: Mapping[str, str]) -> str:
    m, k = rep.meta, rep.meta["k"]
    names = list(rep.models)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{_e(m['title'])}{' – ' + _e(m['data']) if m['data'] else ''}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(m['title'])}</h1>",
        f"<p class='meta'>{_e(m['data'] or 'data')}: {_f(m['n_train'])} training and "
        f"{_f(m['n_test'])} test interactions; {_f(m['n_users_evaluated'])} test users ranked, "
        f"{_f(m['n_items'])} items. Cut-off k = {k}. chuchun {_e(m['chuchun_version'])}, "
        f"{_e(m['created'])}.</p>",
        "<h2>Comparison</h2>",
        "<h3>Accuracy</h3>",
        _comparison_table(rep, ACCURACY, with_rating=True),
        "<h3>Beyond accuracy</h3>",
        _comparison_table(rep, BEYOND, with_rating=False),
        f"<p class='note'>Means over the ranked test users with 95&nbsp;% bootstrap confidence "
        f"intervals (over users). Bold: the best model on the metric. Stars mark models that "
        f"differ from the best one on the same users (accuracy metrics; Wilcoxon signed-rank test, "
        f"Holm-corrected over the comparisons with the best; * p&lt;0.05, ** p&lt;0.01, "
        f"*** p&lt;0.001). "
        f"Diversity is measured on {_e(m['diversity_from'])}; serendipity against the "
        f"popularity ranking; ARP is the mean training count of recommended items.</p>",
        _catalogue_table(rep),
        _pairs_table(rep),
        "<h2>Plots</h2>",
        _figure(plots, "by_k", f"Precision, recall and NDCG at every cut-off from 1 to "
                f"{m['max_k']} (dashed: k = {k})."),
        _figure(plots, "ndcg_distribution", f"Distribution of per-user NDCG@{k} (empirical "
                "CDF; a curve further right serves more users well)."),
        _figure(plots, "accuracy_vs_popularity", f"Accuracy against popularity bias: NDCG@{k} "
                f"against ARP@{k}, with 95 % intervals."),
        _figure(plots, "buckets", "By user activity (quartiles of training history length: "
                + "; ".join(m["activity_buckets"]) + ") and by item popularity (head: most "
                "popular items holding 20 % of training interactions, tail: least popular "
                "holding 20 %; " + ", ".join(f"{b} {n}" for b, n in
                                             m["popularity_bucket_sizes"].items()) + " items)."),
        _figure(plots, "long_tail", "Long-tail curve: cumulative share of training "
                f"interactions and of top-{k} recommendations over items sorted by training "
                "popularity (a curve close to the black one concentrates on the head)."),
    ]
    curves = [n for n, r in rep.models.items() if r.learning_curve]
    if curves:
        parts.append(_figure(plots, "learning_curves", "Learning curves reported by the models "
                             "per epoch (" + ", ".join(curves) + ")."))
    silent = [n for n, r in rep.models.items() if not r.learning_curve]
    if silent:
        parts.append(f"<p class='note'>No per-epoch logs from: {_e(', '.join(silent))} (these "
                     "models report no epochs through fit callbacks).</p>")
    for sname in rep.searches:
        parts.append(_figure(plots, f"search:{sname}", f"Hyperparameter search {sname}: "
                             "validation score per trial and the best so far."))
    parts.append("<h2>Models</h2><div class='cards'>")
    for n in names:
        parts.append(_card_html(n, rep.models[n]))
    parts.append("</div>")
    parts.append("<h2>Sample users</h2>")
    for user in rep.sample_users:
        parts.append(_user_html(user, names))
    parts.append(f"<p class='note'>Report built in {m['seconds']:.1f} s.</p>")
    parts.append("</main></body></html>")
    return "\n".join(p for p in parts if p)


def _comparison_table(rep: EvaluationReport, group: Sequence[str], with_rating: bool) -> str:
    k = rep.meta["k"]
    first = next(iter(rep.models.values()))
    metrics = [f"{x}@{k}" for x in group if f"{x}@{k}" in first.summary]
    rating = sorted({n for r in rep.models.values() for n in r.rating}) if with_rating else []
    head = "<tr><th class='l'>model</th>" + "".join(
        f"<th>{_e(x)}</th>" for x in [*rating, *metrics]) + "</tr>"
    best = {}
    for metric in metrics:
        vals = {n: r.summary[metric]["mean"] for n, r in rep.models.items()}
        finite = {n: v for n, v in vals.items() if math.isfinite(v)}
        if metric in rep.versus_best and finite:
            best[metric] = max(finite, key=lambda n: finite[n])
    body = []
    for n, r in rep.models.items():
        cells = [f"<td class='l'>{_e(n)}</td>"]
        for x in rating:
            best_r = min((rr.rating.get(x, math.inf) for rr in rep.models.values()))
            cls = " class='best'" if r.rating.get(x) == best_r else ""
            cells.append(f"<td{cls}>{_f(r.rating.get(x))}</td>")
        for metric in metrics:
            s = r.summary[metric]
            mark = ""
            if metric in rep.versus_best and best.get(metric) != n:
                t = rep.versus_best[metric]
                row = t[t["model_b"] == n]
                if len(row):
                    p = float(row["wilcoxon_pvalue_holm"].iloc[0])
                    mark = (f" <span class='sig' title='Holm-corrected Wilcoxon p = "
                            f"{format_p(p)} vs {_e(best[metric])}'>"
                            f"{significance_mark(p)}</span>")
            cls = " class='best'" if best.get(metric) == n else ""
            cells.append(f"<td{cls}>{_f(s['mean'])}{mark}<br><span class='ci'>"
                         f"[{_f(s['low'])}, {_f(s['high'])}]</span></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class='wide'><table>{head}{''.join(body)}</table></div>"


def _catalogue_table(rep: EvaluationReport) -> str:
    k = rep.meta["k"]
    cols = [f"coverage@{k}", f"gini@{k}"]
    rows = "".join(
        f"<tr><td class='l'>{_e(n)}</td>" + "".join(f"<td>{_f(r.catalogue[c])}</td>"
                                                    for c in cols)
        + f"<td>{_f(r.card['fit_seconds'], 2)}</td></tr>"
        for n, r in rep.models.items())
    return ("<h3>Catalogue</h3><table><tr><th class='l'>model</th>"
            + "".join(f"<th>{c}</th>" for c in cols) + "<th>fit s</th></tr>" + rows
            + "</table><p class='note'>Coverage: share of the catalogue in at least one "
            "top-k list; Gini index of exposure: 0 when every item is recommended equally "
            "often, near 1 when a few items take all the exposure.</p>")


def _pairs_table(rep: EvaluationReport) -> str:
    if rep.comparisons.empty:
        return ""
    k = rep.meta["k"]
    head = ("<h3>Paired tests on NDCG@{k}, every pair</h3><table><tr><th class='l'>A</th>"
            "<th class='l'>B</th><th>users</th><th>mean A − B</th><th>t-test p (Holm)</th>"
            "<th>Wilcoxon p (Holm)</th><th>Cohen's d<sub>z</sub></th>"
            "<th>rank-biserial r</th></tr>").format(k=k)
    rows = []
    for _, r in rep.comparisons.iterrows():
        rows.append(
            f"<tr><td class='l'>{_e(r['model_a'])}</td><td class='l'>{_e(r['model_b'])}</td>"
            f"<td>{_f(int(r['n']))}</td><td>{_f(r['mean_diff'])}</td>"
            f"<td>{format_p(r['t_pvalue_holm'])}</td>"
            f"<td>{format_p(r['wilcoxon_pvalue_holm'])} "
            f"<span class='sig'>{significance_mark(r['wilcoxon_pvalue_holm'])}</span></td>"
            f"<td>{_f(r['cohens_dz'], 3)}</td><td>{_f(r['rank_biserial'], 3)}</td></tr>")
    return head + "".join(rows) + ("</table><p class='note'>Paired over the same users; Holm's "
                                   "correction across all pairs, per test.</p>")


def _card_html(name: str, r: ModelResult) -> str:
    c = r.card
    params = ", ".join(f"{_e(p)}={_e(v)}" for p, v in c["params"].items())
    epochs = ", ".join(c["reports_epochs"]) or "none"
    return (f"<div class='card'><h3>{_e(name)}</h3>"
            f"<div><b>class</b> {_e(c['class'])}</div>"
            f"<div><b>parameters</b> <code>{params or '(none)'}</code></div>"
            f"<div><b>fit</b> {_f(c['fit_seconds'], 2)} s on {_f(c['n_users'])} users x "
            f"{_f(c['n_items'])} items</div>"
            f"<div><b>data fingerprint</b> <code>{_e(c['data_fingerprint'])}</code></div>"
            f"<div><b>chuchun</b> {_e(c['chuchun_version'])}</div>"
            f"<div><b>per-epoch logs</b> {_e(epochs)}</div>"
            f"<div><b>explanations</b> {_e(c['explain_method'] or 'not available')}</div>"
            "</div>")


def _user_html(user: Mapping[str, Any], names: Sequence[str]) -> str:
    hist = "".join(f"<li>{_e(h['title'])} <span class='why'>({_f(h['value'], 1)})</span></li>"
                   for h in user["history"])
    test = "".join(f"<li>{_e(t['title'])}</li>" for t in user["test_items"])
    lists = []
    for n in names:
        items = []
        for entry in user["recommendations"].get(n, []):
            why = ""
            ex = entry["explanation"]
            if ex and ex["reasons"]:
                why = "<div class='why'>because: " + "; ".join(
                    f"{_e(r['name'])} ({_f(r['contribution'], 3)})" for r in ex["reasons"]
                ) + "</div>"
            cls = " class='hit'" if entry["hit"] else ""
            items.append(f"<li{cls}>{_e(entry['title'])}{why}</li>")
        lists.append(f"<div><h4>{_e(n)}</h4><ol>{''.join(items)}</ol></div>")
    return (f"<div class='user'><h3>User {_e(user['user'])}</h3>"
            f"<div class='lists'><div><h4>Recent history ({user['n_history']} items)</h4>"
            f"<ol>{hist}</ol></div><div><h4>Test items ({user['n_test_items']})</h4>"
            f"<ol>{test}</ol></div></div><div class='lists'>{''.join(lists)}</div>"
            "<p class='note'>Green: a test item (a hit). Reasons: the three strongest, with "
            "their contribution to the score.</p></div>")
