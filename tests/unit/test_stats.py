"""Statistics over per-user values: bootstrap intervals, paired tests against SciPy, Holm,
effect sizes and buckets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from chuchun import ConfigError, DataError
from chuchun.evaluation.stats import (
    activity_buckets,
    bootstrap_ci,
    format_p,
    holm,
    paired_tests,
    popularity_buckets,
    significance_mark,
    summarise_groups,
)

A = np.array([0.30, 0.10, 0.55, 0.20, 0.42, 0.00, 0.90, 0.35, 0.61, 0.12])
B = np.array([0.25, 0.05, 0.40, 0.22, 0.30, 0.00, 0.70, 0.20, 0.55, 0.15])
C = np.array([0.31, 0.12, 0.50, 0.25, 0.40, 0.03, 0.88, 0.30, 0.60, 0.10])


def test_paired_tests_match_scipy_directly() -> None:
    table = paired_tests({"A": A, "B": B, "C": C})
    assert list(zip(table["model_a"], table["model_b"], strict=True)) == [
        ("A", "B"), ("A", "C"), ("B", "C")]
    for (_, row), (x, y) in zip(table.iterrows(), [(A, B), (A, C), (B, C)], strict=True):
        t = stats.ttest_rel(x, y)
        w = stats.wilcoxon(x, y)
        assert row["t_statistic"] == pytest.approx(t.statistic)
        assert row["t_pvalue"] == pytest.approx(t.pvalue)
        assert row["wilcoxon_statistic"] == pytest.approx(w.statistic)
        assert row["wilcoxon_pvalue"] == pytest.approx(w.pvalue)
        d = x - y
        assert row["mean_diff"] == pytest.approx(d.mean())
        assert row["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
        assert row["n"] == 10
    assert table["t_pvalue_holm"].to_numpy() == pytest.approx(holm(table["t_pvalue"]))


def test_rank_biserial_by_hand() -> None:
    # differences 1, -2, 3 (one zero dropped): ranks of |d| 1, 2, 3 -> (1 + 3 - 2) / 6
    table = paired_tests({"x": [1.0, 0.0, 3.0, 5.0], "y": [0.0, 2.0, 0.0, 5.0]})
    assert table.loc[0, "rank_biserial"] == pytest.approx(2 / 6)
    assert table.loc[0, "n"] == 4


def test_paired_tests_edge_cases() -> None:
    same = paired_tests({"a": [0.1, 0.2, 0.3], "b": [0.1, 0.2, 0.3]})
    assert same.loc[0, "t_pvalue"] == 1.0 and same.loc[0, "wilcoxon_pvalue"] == 1.0
    with_nan = paired_tests({"a": [0.1, np.nan, 0.3, 0.5], "b": [0.2, 0.2, np.nan, 0.1]})
    assert with_nan.loc[0, "n"] == 2  # users missing for either model are left out
    with pytest.raises(DataError, match="aligned user for user; got lengths a: 2, b: 3"):
        paired_tests({"a": [1, 2], "b": [1, 2, 3]})
    with pytest.raises(ConfigError, match="no per-user values for 'z'"):
        paired_tests({"a": [1, 2], "b": [1, 2]}, pairs=[("a", "z")])


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone), back in input order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    got = holm([0.01, np.nan, 0.2])
    assert got[0] == pytest.approx(0.02) and np.isnan(got[1]) and got[2] == pytest.approx(0.2)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        holm([1.5])


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_more_users() -> None:
    rng = np.random.default_rng(0)
    small = rng.random(50)
    large = rng.random(5000)
    m, lo, hi = bootstrap_ci(small, random_state=1)
    assert lo < m < hi and m == pytest.approx(small.mean())
    _, lo2, hi2 = bootstrap_ci(large, random_state=1)
    assert hi2 - lo2 < (hi - lo) / 5  # width ~ 1/sqrt(n): 10x more users -> ~1/10
    # the 95 % interval is about mean +- 1.96 standard errors
    se = large.std(ddof=1) / np.sqrt(len(large))
    assert hi2 - lo2 == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert bootstrap_ci(small, random_state=3) == bootstrap_ci(small, random_state=3)
    assert np.isnan(bootstrap_ci([np.nan])).all()
    with pytest.raises(ConfigError, match="confidence"):
        bootstrap_ci(small, confidence=95)


def test_activity_buckets_are_quartiles_of_history_length() -> None:
    lengths = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    codes, names = activity_buckets(lengths)
    assert codes.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert names == ["Q1: 1-2 items", "Q2: 3-4 items", "Q3: 5-6 items", "Q4: 7-8 items"]
    codes, names = activity_buckets([5, 5, 5, 5, 9])  # equal lengths share a bucket
    assert len(names) == 2 and codes.tolist() == [0, 0, 0, 0, 1]


def test_popularity_buckets_split_interactions_head_mid_tail() -> None:
    pop = np.array([50, 20, 10, 8, 6, 3, 2, 1, 0])  # 100 interactions
    buckets = popularity_buckets(pop)
    # head: item 0 alone holds 50 % >= 20 %; tail: the least popular holding <= 20 %
    assert buckets.tolist() == [0, 1, 1, 2, 2, 2, 2, 2, 2]
    assert popularity_buckets(pop, head_share=0.6).tolist()[:2] == [0, 0]
    with pytest.raises(ConfigError, match="head_share"):
        popularity_buckets(pop, head_share=0.0)


def test_group_summary_and_formatting() -> None:
    table = summarise_groups([1.0, 2.0, 3.0, np.nan], [0, 0, 1, 1], ["a", "b", "c"])
    assert table.loc["a", "mean"] == pytest.approx(1.5) and table.loc["b", "n"] == 1
    assert table.loc["c", "n"] == 0 and np.isnan(table.loc["c", "mean"])
    assert format_p(0.0001) == "<0.001" and format_p(0.0123) == "0.012"
    assert [significance_mark(p) for p in (0.0001, 0.005, 0.03, 0.2)] == ["***", "**", "*", ""]
