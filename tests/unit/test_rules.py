"""Frequent itemsets and association rules (chuchun.rules) and their kernels."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun._exceptions import ConfigError, DataError, SearchSpaceWarning
from chuchun.kernels import rules as K
from chuchun.rules import (
    Apriori,
    FPGrowth,
    Transactions,
    association_rules,
    read_baskets,
    resolve_min_count,
)

# the textbook example (Tan, Steinbach & Kumar, Table 6.1)
SHOP = [
    ["bread", "milk"],
    ["bread", "diapers", "beer", "eggs"],
    ["milk", "diapers", "beer", "cola"],
    ["bread", "milk", "diapers", "beer"],
    ["bread", "milk", "diapers", "cola"],
]
SHOP_AT_3 = {
    frozenset({"bread"}): 4,
    frozenset({"milk"}): 4,
    frozenset({"diapers"}): 4,
    frozenset({"beer"}): 3,
    frozenset({"bread", "milk"}): 3,
    frozenset({"bread", "diapers"}): 3,
    frozenset({"milk", "diapers"}): 3,
    frozenset({"diapers", "beer"}): 3,
}

MINERS = [FPGrowth, Apriori]


# ---- hand-checked case ----------------------------------------------------------------------


@pytest.mark.parametrize("miner", MINERS)
def test_itemsets_by_hand(miner):
    found = miner(min_support=3).mine(SHOP)
    assert found.to_dict() == SHOP_AT_3
    # fraction 0.6 of 5 transactions is the same threshold
    assert miner(min_support=0.6).mine(SHOP).to_dict() == SHOP_AT_3
    assert found.min_count == 3 and found.n_transactions == 5 and found.complete
    np.testing.assert_allclose(found.support, found.counts / 5)


@pytest.mark.parametrize("miner", MINERS)
def test_canonical_order(miner):
    found = miner(min_support=1).mine(SHOP)
    lengths = found.lengths
    assert np.all(np.diff(lengths) >= 0)
    for s in range(len(found)):
        row = found.indices[found.indptr[s] : found.indptr[s + 1]]
        assert np.all(np.diff(row) > 0)


def test_rules_by_hand():
    rules = FPGrowth(min_support=3).mine(SHOP).rules(min_confidence=0.0)
    table = {(r["antecedent"], r["consequent"]): r for _, r in rules.to_pandas().iterrows()}
    row = table[(frozenset({"diapers"}), frozenset({"beer"}))]
    assert row["support"] == pytest.approx(3 / 5)
    assert row["confidence"] == pytest.approx(3 / 4)
    assert row["lift"] == pytest.approx((3 / 4) / (3 / 5))
    assert row["leverage"] == pytest.approx(3 / 5 - (4 / 5) * (3 / 5))
    assert row["conviction"] == pytest.approx((1 - 3 / 5) / (1 - 3 / 4))
    exact = table[(frozenset({"beer"}), frozenset({"diapers"}))]
    assert exact["confidence"] == 1.0 and math.isinf(exact["conviction"])
    # 4 frequent pairs, 2 rules each
    assert len(rules) == 8


def test_rule_filters_and_sort():
    itemsets = FPGrowth(min_support=3).mine(SHOP)
    strong = itemsets.rules(min_confidence=0.8)
    assert (
        len(strong) == 1
        and strong.antecedent(0) == ["beer"]
        and strong.consequent(0) == ["diapers"]
    )
    lifted = itemsets.rules(min_lift=1.2)
    assert np.all(lifted.lift >= 1.2) and len(lifted) == 2
    ordered = itemsets.rules().sort("lift", top=3)
    assert len(ordered) == 3 and np.all(np.diff(ordered.lift) <= 0)
    text = strong.describe(0)
    assert text == "beer → diapers, confidence 1, lift 1.25"


def test_describe_formats_sets():
    baskets = [["yogurt", "whole milk", "butter"]] * 2 + [["yogurt", "whole milk"]] * 6
    rules = FPGrowth(min_support=2).mine(baskets).rules()
    table = rules.to_pandas()
    r = int(
        np.flatnonzero(
            (table["antecedent"] == frozenset({"yogurt", "whole milk"}))
            & (table["consequent"] == frozenset({"butter"}))
        )[0]
    )
    assert rules.describe(r) == "{yogurt, whole milk} → butter, confidence 0.25, lift 1"


# ---- inputs ---------------------------------------------------------------------------------


def test_inputs_agree(tmp_path):
    frame = pd.DataFrame(
        [(t, item) for t, basket in enumerate(SHOP) for item in basket],
        columns=["order", "product"],
    )
    path = tmp_path / "shop.csv"
    path.write_text("\n".join(" , ".join(b) for b in SHOP) + "\n\n")
    sources = [
        SHOP,
        (set(b) for b in SHOP),
        frame,
        Transactions.from_frame(frame.assign(extra=1), transaction_col="order", item_col="product"),
        read_baskets(path),
    ]
    for source in sources:
        assert FPGrowth(min_support=3).mine(source).to_dict() == SHOP_AT_3


def test_read_baskets_strips_and_skips(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("  milk ;bread;;milk \n\n   \neggs;\n")
    tx = read_baskets(path, sep=";")
    assert tx.baskets() == [["milk", "bread"], ["eggs"]]


def test_duplicates_count_once_and_any_hashable():
    baskets = [[1, 1, ("a", 2)], [1, ("a", 2), "x"], [("a", 2)]]
    found = Apriori(min_support=2).mine(baskets).to_dict()
    assert found == {frozenset({1}): 2, frozenset({("a", 2)}): 3, frozenset({1, ("a", 2)}): 2}


@pytest.mark.parametrize("miner", MINERS)
def test_max_len(miner):
    found = miner(min_support=1, max_len=2).mine(SHOP)
    assert found.lengths.max() == 2
    full = miner(min_support=1).mine(SHOP).to_dict()
    assert found.to_dict() == {k: v for k, v in full.items() if len(k) <= 2}


def test_min_count_resolution():
    assert resolve_min_count(0.07, 100) == 7  # 0.07 * 100 is 7.000000000000001 in floats
    assert resolve_min_count(0.0701, 100) == 8
    assert resolve_min_count(1.0, 9) == 9
    assert resolve_min_count(1, 9) == 1
    assert resolve_min_count(np.int64(4), 9) == 4


# ---- reference: mlxtend on Groceries ----------------------------------------------------------


def test_matches_mlxtend_on_groceries(datasets_dir):
    from mlxtend.frequent_patterns import association_rules as mlx_rules
    from mlxtend.frequent_patterns import fpgrowth as mlx_fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    tx = read_baskets(datasets_dir / "groceries" / "groceries.csv")
    assert tx.n_transactions == 9835 and tx.n_items == 169 and tx.indices.shape[0] == 43367
    baskets = tx.baskets()
    encoder = TransactionEncoder()
    onehot = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)
    ref = mlx_fpgrowth(onehot, min_support=0.01, use_colnames=True)
    ref_counts = {k: round(s * tx.n_transactions) for k, s in zip(ref["itemsets"], ref["support"])}

    for miner in MINERS:
        found = miner(min_support=0.01).mine(tx)
        assert len(found) == 333
        assert found.to_dict() == ref_counts

    ref_rules = mlx_rules(
        ref, num_itemsets=tx.n_transactions, metric="confidence", min_threshold=0.1
    )
    ours = FPGrowth(min_support=0.01).mine(tx).rules(min_confidence=0.1).to_pandas()
    assert len(ours) == len(ref_rules) == 460
    keys = list(zip(ours["antecedent"], ours["consequent"]))
    ref_row = {
        key: r for r, key in enumerate(zip(ref_rules["antecedents"], ref_rules["consequents"]))
    }
    assert set(keys) == set(ref_row)
    ref_keyed = ref_rules.iloc[[ref_row[key] for key in keys]]
    keyed = ours
    for ours_col, ref_col in [
        ("antecedent_support", "antecedent support"),
        ("consequent_support", "consequent support"),
        ("support", "support"),
        ("confidence", "confidence"),
        ("lift", "lift"),
        ("leverage", "leverage"),
        ("conviction", "conviction"),
    ]:
        np.testing.assert_allclose(
            keyed[ours_col].to_numpy(), ref_keyed[ref_col].to_numpy(), rtol=1e-9
        )


def test_groceries_known_facts(datasets_dir):
    tx = read_baskets(datasets_dir / "groceries" / "groceries.csv")
    counts = dict(zip(tx.items.tolist(), tx.item_counts().tolist()))
    assert counts["whole milk"] == 2513 and counts["yogurt"] == 1372
    assert np.diff(tx.indptr).max() == 32


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "no transactions"),
        ([["a"], []], "basket 1 is empty"),
        (["ab", "c"], "basket 0 is a str"),
        ([["a"], 3], "basket 1 is a int"),
        ([["a", None]], "missing item"),
        ("baskets.csv", "read_baskets"),
        (42, "expected a list of baskets"),
        (pd.DataFrame({"t": [1], "i": ["a"], "x": [0]}), "pass transaction_col and item_col"),
        (pd.DataFrame({"t": [], "i": []}), "no rows"),
        (pd.DataFrame({"t": [1, None], "i": ["a", "b"]}), "missing value"),
    ],
)
def test_bad_data(data, message):
    with pytest.raises(DataError, match=message):
        FPGrowth(min_support=1).mine(data)


def test_bad_frame_columns():
    frame = pd.DataFrame({"t": [1], "i": ["a"]})
    with pytest.raises(DataError, match=r"item column 'item' not found; columns are \['t', 'i'\]"):
        Transactions.from_frame(frame, transaction_col="t", item_col="item")


def test_bad_files(tmp_path):
    blank = tmp_path / "blank.csv"
    blank.write_text("\n , \n")
    with pytest.raises(DataError, match="holds no items"):
        read_baskets(blank)
    with pytest.raises(DataError, match="sep must be a non-empty string"):
        read_baskets(blank, sep="")


@pytest.mark.parametrize(
    "min_support, message",
    [
        (0.0, r"fraction in \(0, 1\].*got 0.0"),
        (1.5, r"got 1.5"),
        (-0.1, r"got -0.1"),
        (float("nan"), r"got nan"),
        (5.0, r"pass the int 5"),
        (0, r"min_support=0 is read as a transaction count and must be >= 1"),
        (6, r"min_support=6 transactions is above the number of transactions \(5\)"),
        (True, r"got True \(bool\)"),
        ("0.1", r"got '0.1' \(str\)"),
    ],
)
def test_bad_min_support(min_support, message):
    for miner in MINERS:
        with pytest.raises(ConfigError, match=message):
            miner(min_support=min_support).mine(SHOP)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_len": 0}, "max_len must be an integer >= 1 or None; got 0"),
        ({"max_len": 2.5}, "max_len must be"),
        ({"max_itemsets": 0}, "max_itemsets must be an integer >= 1; got 0"),
    ],
)
def test_bad_miner_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FPGrowth(min_support=1, **kwargs).mine(SHOP)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_confidence": 1.5}, r"min_confidence must be a number in \[0, 1\]; got 1.5"),
        ({"min_lift": -1.0}, r"min_lift must be a number in \[0, inf\]; got -1.0"),
        ({"max_rules": 0}, "max_rules must be an integer >= 1; got 0"),
    ],
)
def test_bad_rule_options(kwargs, message):
    itemsets = FPGrowth(min_support=3).mine(SHOP)
    with pytest.raises(ConfigError, match=message):
        association_rules(itemsets, **kwargs)
    with pytest.raises(ConfigError, match="unknown rule metric 'lyft'"):
        itemsets.rules().sort("lyft")
    with pytest.raises(DataError, match="expected FrequentItemsets"):
        association_rules(SHOP)  # type: ignore[arg-type]


@pytest.mark.parametrize("miner", MINERS)
def test_search_space_guard(miner):
    wide = [list(range(22))] * 3 + [[0, 1]]
    with pytest.warns(SearchSpaceWarning) as record:
        found = miner(min_support=2, max_itemsets=1000).mine(wide)
    messages = [str(w.message) for w in record]
    assert any("at least 4,194,303 itemsets" in m and "set max_len" in m for m in messages)
    assert any(
        "mining stopped after max_itemsets=1,000" in m and "incomplete" in m for m in messages
    )
    assert len(found) == 1000 and not found.complete
    # the advice works: max_len bounds the answer and silences the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", SearchSpaceWarning)
        bounded = miner(min_support=2, max_len=2).mine(wide)
    assert len(bounded) == 22 + 22 * 21 // 2 and bounded.complete


def test_max_consequent_len():
    itemsets = FPGrowth(min_support=1).mine(SHOP)
    every = itemsets.rules().to_pandas()
    single = itemsets.rules(max_consequent_len=1).to_pandas()
    two = itemsets.rules(max_consequent_len=2).to_pandas()
    expected = every[every["consequent"].map(len) == 1]
    assert set(zip(single["antecedent"], single["consequent"])) == set(
        zip(expected["antecedent"], expected["consequent"])
    )
    assert len(single) < len(two) < len(every)
    assert two["consequent"].map(len).max() == 2
    with pytest.raises(
        ConfigError, match="max_consequent_len must be an integer >= 1 or None; got 0"
    ):
        itemsets.rules(max_consequent_len=0)


def test_rule_guard():
    itemsets = FPGrowth(min_support=1).mine(SHOP)
    with pytest.warns(SearchSpaceWarning, match="stopped after max_rules=5"):
        rules = itemsets.rules(max_rules=5)
    assert len(rules) == 5 and not rules.complete


# ---- kernels agree with their twins -------------------------------------------------------------


@st.composite
def ranked_transactions(draw):
    n_items = draw(st.integers(1, 9))
    rows = draw(
        st.lists(st.sets(st.integers(0, n_items - 1), max_size=n_items), min_size=1, max_size=25)
    )
    indptr = np.zeros(len(rows) + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    items = np.array([i for r in rows for i in sorted(r)], dtype=np.int32)
    min_count = draw(st.integers(1, 4))
    max_len = draw(st.integers(1, 10))
    return indptr, items, n_items, min_count, max_len


def _as_dict(indptr, items, counts):
    return {
        tuple(sorted(items[indptr[s] : indptr[s + 1]].tolist())): int(counts[s])
        for s in range(len(counts))
    }


@settings(max_examples=60, deadline=None)
@given(ranked_transactions())
def test_mining_kernels_match_twin(case):
    indptr, items, n_items, min_count, max_len = case
    ref = K.frequent_itemsets_python(indptr, items, n_items, min_count, max_len, 10**9)
    for kernel in (K.fpgrowth_itemsets, K.apriori_itemsets):
        out = kernel(indptr, items, n_items, min_count, max_len, 10**9)
        assert out[3] == ref[3] == 0
        assert _as_dict(out[0], out[1], out[2]) == _as_dict(ref[0], ref[1], ref[2])


@settings(max_examples=40, deadline=None)
@given(ranked_transactions(), st.floats(0, 1), st.floats(0, 3), st.sampled_from([1, 2, 2**31 - 1]))
def test_rule_kernel_matches_twin(case, min_confidence, min_lift, max_consequent):
    indptr, items, n_items, min_count, max_len = case
    found = K.frequent_itemsets_python(indptr, items, n_items, min_count, max_len, 10**9)
    from chuchun.rules.mining import _canonical

    c_indptr, c_items, c_counts = _canonical(found[1], found[0], found[2], n_items)
    n = len(indptr) - 1
    args = (c_indptr, c_items, c_counts, n, min_confidence, min_lift, max_consequent, 10**9)
    got = K.rule_candidates(*args)
    ref = K.rule_candidates_python(*args)
    for a, b in zip(got[:4], ref[:4]):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(ranked_transactions(), st.integers(0, 2**31 - 1))
def test_score_kernel_matches_twin(case, seed):
    indptr, items, n_items, _, _ = case
    rng = np.random.default_rng(seed)
    n_rules = int(rng.integers(0, 12))
    ant = [
        np.sort(rng.choice(n_items, size=int(rng.integers(1, n_items + 1)), replace=False))
        for _ in range(n_rules)
    ]
    ant_indptr = np.zeros(n_rules + 1, np.int64)
    ant_indptr[1:] = np.cumsum([len(a) for a in ant])
    ant_indices = np.concatenate(ant).astype(np.int32) if ant else np.zeros(0, np.int32)
    consequent = rng.integers(0, n_items, size=n_rules).astype(np.int32)
    confidence = rng.random(n_rules)
    prior = rng.random(n_items) * 0.5
    first = ant_indices[ant_indptr[:-1]] if n_rules else np.zeros(0, np.int32)
    order = np.argsort(first, kind="stable").astype(np.int64)
    first_indptr = np.zeros(n_items + 1, np.int64)
    first_indptr[1:] = np.cumsum(np.bincount(first, minlength=n_items))
    got = np.empty((len(indptr) - 1, n_items), np.float32)
    ref = np.empty_like(got)
    args = (
        indptr,
        items,
        first_indptr,
        order,
        ant_indptr,
        ant_indices,
        consequent,
        confidence,
        prior,
    )
    K.score_baskets(*args, got)
    K.score_baskets_python(*args, ref)
    np.testing.assert_array_equal(got, ref)


# ---- command line -------------------------------------------------------------------------------


def test_cli_rules(tmp_path):
    from click.testing import CliRunner

    from chuchun.cli.rules import rules_command

    data = tmp_path / "shop.csv"
    data.write_text("\n".join(",".join(b) for b in SHOP) + "\n")
    runner = CliRunner()
    result = runner.invoke(
        rules_command,
        [
            "--data",
            str(data),
            "--min-support",
            "3",
            "--min-confidence",
            "0.7",
            "--sort",
            "confidence",
            "--top",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == [
        "antecedent",
        "consequent",
        "support",
        "confidence",
        "lift",
        "leverage",
        "conviction",
        "count",
    ]
    assert lines[1].split()[:4] == ["beer", "diapers", "0.6", "1"]
    assert len(lines) == 3
    out = tmp_path / "rules.csv"
    result = runner.invoke(
        rules_command,
        [
            "--data",
            str(data),
            "--min-support",
            "0.6",
            "--min-confidence",
            "0.8",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0
    assert pd.read_csv(out)[["antecedent", "consequent"]].values.tolist() == [["beer", "diapers"]]
    bad = runner.invoke(rules_command, ["--data", str(data), "--min-support", "7"])
    assert bad.exit_code != 0 and "above the number of transactions (5)" in bad.output


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=8), min_size=1, max_size=30),
    st.integers(0, 2**31 - 1),
)
def test_row_kernels_match_twins(rows, seed):
    indptr = np.zeros(len(rows) + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    items = np.array([i for r in rows for i in r], dtype=np.int32)
    bits, per_key = 6, 3
    n_keys = -(-max(len(r) for r in rows) // per_key)
    got_items, ref_items = items.copy(), items.copy()
    got_keys = np.empty((n_keys, len(rows)), np.uint64)
    ref_keys = np.empty_like(got_keys)
    K.sort_rows_and_pack(indptr, got_items, bits, per_key, got_keys)
    K.sort_rows_and_pack_python(indptr, ref_items, bits, per_key, ref_keys)
    np.testing.assert_array_equal(got_items, ref_items)
    np.testing.assert_array_equal(got_keys, ref_keys)
    take = np.random.default_rng(seed).integers(0, len(rows), size=len(rows))
    for a, b in zip(K.take_rows(indptr, items, take), K.take_rows_python(indptr, items, take)):
        np.testing.assert_array_equal(a, b)


def test_cli_rules_is_registered(tmp_path):
    from click.testing import CliRunner

    from chuchun.cli import cli

    data = tmp_path / "shop.csv"
    data.write_text("\n".join(",".join(b) for b in SHOP) + "\n")
    result = CliRunner().invoke(
        cli, ["rules", "--data", str(data), "--min-support", "3", "--sort", "lift"]
    )
    assert result.exit_code == 0, result.output
    assert "beer" in result.stdout and "lift" in result.stdout.splitlines()[0]
