"""Sequences, sessions, baskets, padding and the leave-last-out / session splits."""

from __future__ import annotations

import numpy as np
import pytest

from chuchun import ConfigError, DataError, DataWarning
from chuchun.data import Interactions
from chuchun.data.sequences import (
    baskets,
    leave_last_out,
    pad_sequences,
    session_split,
    sessions,
    user_sequences,
)
from chuchun.rules.baskets import Transactions
from chuchun.testing.sequences import planted_sequences


def _log(rows):
    users, items, stamps = zip(*rows, strict=True)
    return Interactions.from_arrays(list(users), list(items), timestamps=list(stamps))


def test_sequences_follow_time_with_ties_by_item_id():
    data = _log([("a", "z", 30), ("a", "x", 10), ("a", "y", 20), ("a", "w", 20),
                 ("b", "q", 5), ("b", "p", 1)])
    seqs = user_sequences(data)
    assert seqs.item_ids(0).tolist() == ["x", "w", "y", "z"]  # w before y: same time, id order
    assert seqs.item_ids(1).tolist() == ["p", "q"]
    assert seqs.owners.tolist() == ["a", "b"]
    assert seqs.lengths.tolist() == [4, 2]


def test_sequences_do_not_depend_on_row_order():
    data = planted_sequences(n_users=10, n_items=20, n_runs=1, run_length=5, random_state=1)
    perm = np.random.default_rng(0).permutation(len(data))
    shuffled = Interactions.from_arrays(data.user_ids[perm], data.item_ids[perm],
                                        timestamps=data.timestamps[perm])
    assert user_sequences(data).to_lists() == user_sequences(shuffled).to_lists()
    for s, seq in enumerate(user_sequences(data).to_lists()):
        start = int(seq[0][1:])
        assert seq == [f"i{(start + j) % 20}" for j in range(5)], s


def test_without_timestamps_row_order_is_kept_with_a_warning():
    data = Interactions.from_arrays(["a", "a", "a"], ["z", "x", "y"])
    with pytest.warns(DataWarning, match="no timestamps"):
        seqs = user_sequences(data)
    assert seqs.item_ids(0).tolist() == ["z", "x", "y"]


def test_sessions_cut_at_gaps():
    data = _log([("a", "x", 0), ("a", "y", 100), ("a", "z", 5000), ("b", "x", 50)])
    seqs, of_row = sessions(data, gap=1800)
    assert seqs.to_lists() == [["x", "y"], ["z"], ["x"]]
    assert seqs.owners.tolist() == ["a", "a", "b"]
    assert of_row.tolist() == [0, 0, 1, 2]
    with pytest.raises(ConfigError, match="gap"):
        sessions(data, gap=0)
    with pytest.raises(DataError, match="no timestamps"):
        sessions(Interactions.from_arrays(["a"], ["x"]), gap=10)


def test_baskets_from_lists_transactions_and_interactions():
    lists = [["milk", "bread", "milk"], ["beer"]]
    a = baskets(lists)
    b = baskets(Transactions.from_baskets(lists))
    assert a.to_lists() == b.to_lists() == [["bread", "milk"], ["beer"]]
    c = baskets(Interactions.from_arrays([1, 1, 2], ["milk", "bread", "beer"]))
    assert c.to_lists() == [["bread", "milk"], ["beer"]]
    with pytest.raises(DataError, match="iterable of baskets"):
        baskets("milk")


def test_padding_and_truncation_keep_the_most_recent_items():
    padded = pad_sequences([np.array([1, 2, 3, 4]), np.array([7]), np.array([], int)], 3)
    assert padded.tolist() == [[2, 3, 4], [-1, -1, 7], [-1, -1, -1]]
    seqs = user_sequences(_log([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 1)]))
    short = seqs.truncated(2)
    assert short.to_lists() == [["y", "z"], ["x"]]
    assert short.timestamps.tolist() == [2, 3, 1]
    assert seqs.padded(2).tolist() == [[1, 2], [-1, 0]]
    with pytest.raises(ConfigError, match="max_len"):
        pad_sequences([], 0)


def test_leave_last_out_holds_out_the_last_two_items():
    data = _log([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("a", "w", 4),
                 ("b", "x", 1), ("b", "y", 2)])
    split = leave_last_out(data)

    def pairs(part):
        return sorted(zip(part.user_ids.tolist(), part.item_ids.tolist(), strict=True))

    assert pairs(split.test) == [("a", "w")]
    assert pairs(split.validation) == [("a", "z")]
    assert pairs(split.train) == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    assert pairs(split.train_validation) == sorted(pairs(split.train) + [("a", "z")])
    assert split.info["n_users_evaluated"] == 1 and split.info["n_users_train_only"] == 1
    assert split.train.items is data.items  # shared vocabularies: indices agree
    with pytest.raises(DataError, match="at least 5 items"):
        leave_last_out(data, min_length=5)


def test_session_split_by_time_and_seeded_random():
    data = planted_sequences(n_users=30, n_items=12, n_runs=1, run_length=6)  # a session each
    late = session_split(data, gap=600, test_fraction=0.2)
    assert late.info["n_test_sessions"] == 6 and len(late.train) == 24 * 6
    stamps = data.timestamps
    cutoff = np.sort(np.unique(stamps // 10_000))[-6]
    assert (late.train.timestamps // 10_000 < cutoff).all()
    a = session_split(data, gap=600, by="random", random_state=3)
    b = session_split(data, gap=600, by="random", random_state=3)
    assert a.test_sessions == b.test_sessions
    assert all(len(s) == 6 for s in a.test_sessions)
    with pytest.raises(ConfigError, match="test_fraction"):
        session_split(data, test_fraction=1.5)
