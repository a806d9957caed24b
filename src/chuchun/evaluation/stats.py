"""Statistics over per-user metric values: bootstrap confidence intervals, paired tests between
models with Holm's correction, effect sizes, and user-activity / item-popularity buckets.

Every model in a comparison is evaluated on the same users, so per-user values are paired:
the test of a difference between two models runs on the per-user differences
:math:`d_u = m^A_u - m^B_u`. Users whose value is ``NaN`` for either model are left out of
that pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from chuchun._exceptions import ConfigError, DataError
from chuchun._random import RandomState, check_random_state

__all__ = [
    "POPULARITY_BUCKETS",
    "activity_buckets",
    "bootstrap_ci",
    "format_p",
    "holm",
    "paired_tests",
    "popularity_buckets",
    "significance_mark",
    "summarise_groups",
]


def _vector(values: Any, what: str = "values") -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise DataError(f"{what} must be a 1-D array of per-user values; got {v.ndim} dims")
    return v


def bootstrap_ci(
    values: Any,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    random_state: RandomState = 0,
) -> tuple[float, float, float]:
    """Mean of per-user values and its percentile bootstrap confidence interval over users.

    Draws ``n_resamples`` samples of the users with replacement, takes each sample's mean
    :math:`\\bar m^{*b}`, and returns :math:`(\\bar m, q_{\\alpha/2}, q_{1-\\alpha/2})` with
    :math:`q` the quantiles of the resampled means and :math:`\\alpha = 1 - ` ``confidence``
    (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13). ``NaN`` values
    (users for whom the metric is undefined) are dropped first; all ``NaN`` with no user.
    """
    v = _vector(values)
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be strictly between 0 and 1; got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ConfigError(f"n_resamples must be a positive int; got {n_resamples!r}")
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = check_random_state(random_state)
    means = np.empty(n_resamples)
    step = max(1, 5_000_000 // len(v))  # resamples per block, bounded memory
    for start in range(0, n_resamples, step):
        stop = min(n_resamples, start + step)
        means[start:stop] = v[rng.integers(0, len(v), size=(stop - start, len(v)))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(v.mean()), float(low), float(high)


def holm(pvalues: Any) -> np.ndarray:
    """Holm's step-down adjustment of p-values for multiple comparisons.

    With the :math:`m` p-values sorted, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`,

    .. math:: \\tilde p_{(j)} = \\min\\Bigl(1, \\max_{l \\le j} (m - l + 1)\\, p_{(l)}\\Bigr)

    returned in the original order; rejecting where :math:`\\tilde p \\le \\alpha` controls the
    family-wise error rate at :math:`\\alpha` (Holm, "A simple sequentially rejective multiple
    test procedure", Scand. J. Statist. 6, 1979). ``NaN`` entries are ignored and stay ``NaN``.
    """
    p = _vector(pvalues, "pvalues")
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise DataError("p-values must lie in [0, 1]")
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def _rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (Kerby, "The simple difference formula",
    Comprehensive Psychology 3, 2014): (R+ - R-) / (R+ + R-) over the ranks of |d|, zeros
    dropped as in Wilcoxon's test."""
    from scipy import stats

    nz = d[d != 0]
    if len(nz) == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(nz))
    pos, neg = ranks[nz > 0].sum(), ranks[nz < 0].sum()
    return float((pos - neg) / (pos + neg))


def paired_tests(
    per_user: Mapping[str, Any],
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Paired comparisons of models on the same users for one metric.

    Parameters
    ----------
    per_user : mapping model name -> per-user values
        Arrays of the same length, aligned user for user (e.g. the columns of the per-user
        frames of :func:`~chuchun.evaluation.evaluate` for one metric).
    pairs : sequence of (name, name), optional
        The comparisons to run (default: every pair, in the mapping's order).

    Returns
    -------
    pandas.DataFrame
        One row per pair ``(a, b)``: ``n`` users with both values, ``mean_a``, ``mean_b``,
        ``mean_diff`` (:math:`\\bar d`, a minus b); the paired t-test
        (:func:`scipy.stats.ttest_rel`) ``t_statistic``, ``t_pvalue`` and ``t_pvalue_holm``;
        the Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`, zero differences
        dropped; p = 1 when every difference is zero) ``wilcoxon_statistic``,
        ``wilcoxon_pvalue`` and ``wilcoxon_pvalue_holm``; and the effect sizes ``cohens_dz``
        (:math:`\\bar d / s_d`, Cohen 1988) and ``rank_biserial`` (Kerby 2014). The Holm
        adjustment (:func:`holm`) runs over all rows of the table, per test.
    """
    from scipy import stats  # imported here: scipy.stats is slow to import

    names = list(per_user)
    vectors = {n: _vector(per_user[n], f"per-user values of {n!r}") for n in names}
    lengths = {len(v) for v in vectors.values()}
    if len(lengths) > 1:
        raise DataError(
            "per-user values must be aligned user for user; got lengths "
            + ", ".join(f"{n}: {len(v)}" for n, v in vectors.items())
        )
    if pairs is None:
        pairs = list(itertools.combinations(names, 2))
    rows = []
    for a, b in pairs:
        for n in (a, b):
            if n not in vectors:
                raise ConfigError(f"no per-user values for {n!r}; models are {names}")
        x, y = vectors[a], vectors[b]
        both = np.isfinite(x) & np.isfinite(y)
        x, y = x[both], y[both]
        d = x - y
        row: dict[str, Any] = {"model_a": a, "model_b": b, "n": int(len(d)),
                               "mean_a": _mean(x), "mean_b": _mean(y), "mean_diff": _mean(d)}
        if len(d) >= 2 and np.ptp(d) > 0:
            t = stats.ttest_rel(x, y)
            row["t_statistic"], row["t_pvalue"] = float(t.statistic), float(t.pvalue)
        elif len(d) >= 2 and d[0] == 0:  # identical values: no evidence of a difference
            row["t_statistic"], row["t_pvalue"] = 0.0, 1.0
        else:
            row["t_statistic"] = row["t_pvalue"] = float("nan")
        if len(d) >= 1 and (d != 0).any():
            w = stats.wilcoxon(x, y)
            row["wilcoxon_statistic"], row["wilcoxon_pvalue"] = (float(w.statistic),
                                                                 float(w.pvalue))
        elif len(d) >= 1:
            row["wilcoxon_statistic"], row["wilcoxon_pvalue"] = 0.0, 1.0
        else:
            row["wilcoxon_statistic"] = row["wilcoxon_pvalue"] = float("nan")
        sd = float(np.std(d, ddof=1)) if len(d) >= 2 else float("nan")
        row["cohens_dz"] = row["mean_diff"] / sd if sd > 0 else float("nan")
        row["rank_biserial"] = _rank_biserial(d) if len(d) else float("nan")
        rows.append(row)
    columns = ["model_a", "model_b", "n", "mean_a", "mean_b", "mean_diff", "t_statistic",
               "t_pvalue", "t_pvalue_holm", "wilcoxon_statistic", "wilcoxon_pvalue",
               "wilcoxon_pvalue_holm", "cohens_dz", "rank_biserial"]
    table = pd.DataFrame(rows, columns=[c for c in columns if not c.endswith("_holm")])
    table["t_pvalue_holm"] = holm(table["t_pvalue"].to_numpy(dtype=float))
    table["wilcoxon_pvalue_holm"] = holm(table["wilcoxon_pvalue"].to_numpy(dtype=float))
    return table[columns]


def _mean(v: np.ndarray) -> float:
    return float(v.mean()) if len(v) else float("nan")


def activity_buckets(history_lengths: Any, n_buckets: int = 4) -> tuple[np.ndarray, list[str]]:
    """Users by training-history length: quantile buckets (quartiles by default).

    With :math:`q_1 \\le \\dots \\le q_{n-1}` the quantiles of the lengths at
    :math:`j / n` (``n_buckets``), a user of length :math:`\\ell` goes to the first bucket
    :math:`j` with :math:`\\ell \\le q_j` (the last bucket when none). Users of equal length
    always share a bucket, so buckets can be uneven (and empty buckets are dropped from the
    names when quantiles coincide).

    Returns
    -------
    (codes, names)
        ``codes[u]`` indexes ``names``; names read ``"Q1: 20-35 items"``.
    """
    lengths = _vector(history_lengths, "history_lengths")
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, int) or n_buckets < 1:
        raise ConfigError(f"n_buckets must be a positive int; got {n_buckets!r}")
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.int64), []
    edges = np.unique(np.quantile(lengths, np.arange(1, n_buckets) / n_buckets))
    raw = np.searchsorted(edges, lengths, side="left")
    used = np.unique(raw)
    codes = np.searchsorted(used, raw)
    names = []
    for j, b in enumerate(used):
        members = lengths[raw == b]
        names.append(f"Q{j + 1}: {_count(members.min())}-{_count(members.max())} items")
    return codes.astype(np.int64), names


def _count(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


POPULARITY_BUCKETS = ("head", "mid", "tail")


def popularity_buckets(
    item_popularity: Any, *, head_share: float = 0.2, tail_share: float = 0.2
) -> np.ndarray:
    """Items by training popularity: 0 = head, 1 = mid, 2 = long tail.

    The head is the smallest set of most popular items that together hold ``head_share`` of
    the training interactions; the tail the largest set of least popular items that together
    hold at most ``tail_share`` of them (items never interacted with are tail); the rest is mid
    (Abdollahpouri et al., "The unfairness of popularity bias in recommendation", RMSE workshop
    at RecSys 2019). Ties are broken by item index.
    """
    pop = _vector(item_popularity, "item_popularity")
    if not (0 < head_share < 1 and 0 <= tail_share < 1 and head_share + tail_share <= 1):
        raise ConfigError(
            "head_share must be in (0, 1) and tail_share in [0, 1) with head_share + "
            f"tail_share <= 1; got {head_share!r} and {tail_share!r}"
        )
    if (pop < 0).any() or not np.isfinite(pop).all():
        raise DataError("item_popularity must hold finite, non-negative training counts")
    total = pop.sum()
    out = np.ones(len(pop), dtype=np.int64)
    if total == 0:
        out[:] = 2
        return out
    desc = np.lexsort((np.arange(len(pop)), -pop))
    before = np.r_[0.0, np.cumsum(pop[desc])[:-1]] / total
    out[desc[before < head_share]] = 0
    asc = desc[::-1]
    through = np.cumsum(pop[asc]) / total
    tail = asc[(through <= tail_share + 1e-12) & (out[asc] != 0)]
    out[tail] = 2
    out[pop == 0] = 2
    return out


def summarise_groups(
    values: Any, groups: Any, names: Sequence[str], *, random_state: RandomState = 0,
    n_resamples: int = 1000,
) -> pd.DataFrame:
    """Mean and bootstrap 95 % interval of per-user ``values`` within each group.

    ``groups[u]`` indexes ``names``; returns one row per name (``n``, ``mean``, ``low``,
    ``high``), ``NaN`` for empty groups.
    """
    v = _vector(values)
    g = np.asarray(groups).reshape(-1)
    if len(g) != len(v):
        raise DataError(f"length mismatch: {len(v)} values but {len(g)} group codes")
    rows = []
    for j, name in enumerate(names):
        inside = v[(g == j) & np.isfinite(v)]
        mean, low, high = bootstrap_ci(inside, n_resamples=n_resamples,
                                       random_state=random_state)
        rows.append({"group": name, "n": int(len(inside)), "mean": mean, "low": low,
                     "high": high})
    return pd.DataFrame(rows).set_index("group")


def format_p(p: float) -> str:
    """A p-value as text: ``"<0.001"`` below one in a thousand, three digits otherwise."""
    if p != p:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def significance_mark(p: float) -> str:
    """``***`` (p < 0.001), ``**`` (< 0.01), ``*`` (< 0.05) or ``""``."""
    if p != p:
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""

