"""GRU4Rec and SASRec learn a planted next-item rule, use order, explain, stop early, save."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from chuchun import ConfigError
from chuchun.data import leave_last_out
from chuchun.io import load_model
from chuchun.models import GRU4Rec, SASRec
from chuchun.testing.sequences import planted_sequences

N_ITEMS = 20
FAST = {
    GRU4Rec: dict(n_factors=16, n_epochs=6, batch_size=16, learning_rate=0.02, n_threads=1),
    SASRec: dict(n_factors=16, n_epochs=8, max_len=8, n_blocks=1, batch_size=16,
                 learning_rate=0.01, dropout=0.0, n_threads=1),
}


def _windows():
    """Histories [r, r+1, a, a+1] and [a, a+1, r, r+1] (the same set in two orders) and the
    items the planted rule says come next (a+2 and r+2)."""
    hist, want = [], []
    for r in range(0, N_ITEMS, 2):
        a = (r + 7) % N_ITEMS
        for x, y in ((r, a), (a, r)):
            hist.append([f"i{x}", f"i{(x + 1) % N_ITEMS}", f"i{y}", f"i{(y + 1) % N_ITEMS}"])
            want.append(f"i{(y + 2) % N_ITEMS}")
    return hist, np.array(want)


@pytest.fixture(scope="module")
def data():
    return planted_sequences(n_users=100, n_items=N_ITEMS)


@pytest.fixture(scope="module", params=[GRU4Rec, SASRec], ids=lambda c: c.__name__)
def fitted(request, data):
    cls = request.param
    return cls(**FAST[cls]).fit(data)


def test_learns_the_planted_next_item(fitted):
    hist, want = _windows()
    got = fitted.recommend_for_history(hist, k=1).item_ids[:, 0]
    # each set appears in both orders with different answers: a set-based model scores <= 0.5
    assert np.mean(got == want) >= 0.8


def test_recommend_uses_each_users_training_sequence(fitted, data):
    users = data.users.ids
    recs = fitted.recommend(users, k=1).item_ids[:, 0]
    # every training sequence ends a run, so its next item is a fresh start: what the model
    # must not do is recommend from an older point of the sequence
    first = [fitted.items_.ids[fitted._user_sequence(u)[0]] for u in range(len(users))]
    after_first = np.array([f"i{(int(x[1:]) + 4) % N_ITEMS}" for x in first])
    assert np.mean(recs == after_first) <= 0.2
    sequences = [list(fitted.items_.ids[fitted._user_sequence(u)]) for u in range(len(users))]
    folded = fitted.recommend_for_history(sequences, k=1).item_ids[:, 0]
    assert np.array_equal(folded, recs)


def test_explain_names_recent_items(fitted, data):
    user = data.users.ids[0]
    seq = fitted.items_.ids[fitted._user_sequence(0)]
    item = fitted.recommend([user], k=1).item_ids[0, 0]
    exp = fitted.explain([user], [item], n_reasons=None)[0]
    assert exp.reasons and {r.id for r in exp.reasons} <= set(seq.tolist())
    assert np.isclose(exp.score, fitted.predict([user], [item])[0], atol=1e-5)
    assert not exp.additive
    if isinstance(fitted, SASRec):
        assert np.isclose(sum(r.contribution for r in exp.reasons), 1.0, atol=1e-4)
    else:
        # occluding the latest item hurts the planted next item most
        top = max(exp.reasons, key=lambda r: r.contribution)
        assert top.id == seq[-1] and top.contribution > 0


def test_save_load_restores_the_network(fitted, data):
    users = data.users.ids[:10]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.zip")
        fitted.save(path)
        loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict(users, data.items.ids[:10]),
                               fitted.predict(users, data.items.ids[:10]), rtol=1e-5)
    hist, _ = _windows()
    assert np.array_equal(loaded.recommend_for_history(hist, k=3).item_idx,
                          fitted.recommend_for_history(hist, k=3).item_idx)


@pytest.mark.parametrize("cls,extra", [
    (GRU4Rec, {"loss": "bpr-max", "n_negatives": 4}),
    (GRU4Rec, {"loss": "ce", "n_negatives": 4}),
    (SASRec, {"loss": "bce", "n_negatives": 2}),
    (SASRec, {"loss": "ce", "n_negatives": 4}),
])
def test_sampled_losses_learn_too(cls, extra, data):
    model = cls(**{**FAST[cls], "n_epochs": FAST[cls]["n_epochs"] + 4, **extra}).fit(data)
    hist, want = _windows()
    got = model.recommend_for_history(hist, k=3).item_ids
    assert np.mean([w in row for w, row in zip(want, got, strict=True)]) >= 0.8


@pytest.mark.parametrize("cls,extra", [
    (GRU4Rec, {"bptt": 4}),
    (GRU4Rec, {"bptt": 4, "tie_embeddings": True}),
    (GRU4Rec, {"training": "windows", "max_len": 6, "stride": 2, "n_epochs": 10}),
    (GRU4Rec, {"training": "windows", "max_len": 6, "n_epochs": 10, "loss": "bpr-max",
               "n_negatives": 4}),
    (SASRec, {"stride": 1}),
    (SASRec, {"stride": 3}),
], ids=["gru4rec-bptt4", "gru4rec-tied", "gru4rec-windows", "gru4rec-windows-bprmax",
        "sasrec-stride1", "sasrec-stride3"])
def test_training_variants_learn_too(cls, extra, data):
    """GRU4Rec with gradients through several steps, one item table for inputs and outputs,
    or trained on shuffled windows; overlapping SASRec windows (every target seen with a
    full context)."""
    model = cls(**{**FAST[cls], **extra}).fit(data)
    hist, want = _windows()
    got = model.recommend_for_history(hist, k=1).item_ids[:, 0]
    assert np.mean(got == want) >= 0.8


def test_gru4rec_bptt_one_is_the_one_step_update(data):
    """bptt=1 is the paper's update: the same weights as before the option existed would
    give; a longer chunk trains a different model from the same seed."""
    a = GRU4Rec(**{**FAST[GRU4Rec], "n_epochs": 1}).fit(data)
    b = GRU4Rec(**{**FAST[GRU4Rec], "n_epochs": 1, "bptt": 1}).fit(data)
    c = GRU4Rec(**{**FAST[GRU4Rec], "n_epochs": 1, "bptt": 3}).fit(data)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert not np.allclose(a.weights_, c.weights_)


def test_early_stopping_keeps_the_best_epoch_and_calls_back(data):
    split = leave_last_out(data)
    seen = []
    model = SASRec(**{**FAST[SASRec], "n_epochs": 12, "patience": 2}).fit(
        split.train, validation=split.validation,
        callbacks=[lambda m, epoch, logs: seen.append((epoch, logs["val_ndcg"]))],
    )
    hist = model.history_
    assert len(seen) == len(hist["loss"]) and all(np.isfinite(v) for _, v in seen)
    assert model.best_epoch_ == int(np.argmax(hist["val_ndcg"]))
    stopped_early = len(hist["loss"]) < 12
    assert stopped_early or model.best_epoch_ >= 10
    assert hist["val_ndcg"][model.best_epoch_] > 0.5
    with pytest.raises(ConfigError, match="loss"):
        SASRec(loss="bpr-max").fit(data)


def test_same_seed_same_model(data):
    a = GRU4Rec(**{**FAST[GRU4Rec], "n_epochs": 2}).fit(data)
    b = GRU4Rec(**{**FAST[GRU4Rec], "n_epochs": 2}).fit(data)
    np.testing.assert_array_equal(a.weights_, b.weights_)


@pytest.mark.parametrize("max_len", [1, 3, 7, 50])
@pytest.mark.parametrize("stride", [None, 1, 2, 5])
def test_sasrec_windows_cover_every_transition_once(max_len, stride):
    """windows="all": every (item, next item) pair of every sequence is a trained target
    exactly once, seen with up to max_len items of context; windows="last": only the latest
    max_len pairs of each sequence."""
    from chuchun.data import Interactions
    from chuchun.data.sequences import user_sequences

    rng = np.random.default_rng(max_len)
    lengths = rng.integers(1, 40, size=30)
    users = np.repeat(np.arange(30), lengths)
    stamps = np.concatenate([np.arange(n) for n in lengths])
    items = np.concatenate([rng.permutation(500)[:n] for n in lengths])
    seqs = user_sequences(Interactions.from_arrays(users, items, timestamps=stamps))
    lo, hi = seqs.indptr[:-1], seqs.indptr[1:]
    first = np.repeat(lo, hi - lo)  # each position's sequence start
    targets_of = {}
    for mode in ("all", "last"):
        starts, ends, n_train = SASRec(max_len=max_len, windows=mode,
                                       stride=stride)._windows(seqs)
        assert np.all(ends - starts <= max_len + 1) and np.all(ends - starts >= 2)
        assert np.all(n_train >= 1) and np.all(n_train <= ends - starts - 1)
        # trained target positions of a window: its last n_train items
        trained = np.concatenate(
            [np.arange(e - n, e) for e, n in zip(ends, n_train, strict=True)])
        targets_of[mode] = np.sort(trained)
        if mode == "all":
            # a trained target sees at least max_len + 1 - stride earlier items (all of them
            # near the sequence's start), and exactly max_len with stride 1
            S = max_len if stride is None else min(stride, max_len)
            context = np.concatenate(
                [np.arange(e - n, e) - s for s, e, n in zip(starts, ends, n_train, strict=True)])
            floor = np.minimum(max_len + 1 - S, trained - first[trained])
            assert np.all(context >= floor) and np.all(context <= max_len)
            if S == 1:
                np.testing.assert_array_equal(context,
                                              np.minimum(max_len, trained - first[trained]))
    every = np.sort(np.concatenate([np.arange(a + 1, b) for a, b in zip(lo, hi, strict=True)]))
    latest = np.sort(np.concatenate(
        [np.arange(max(a + 1, b - max_len), b) for a, b in zip(lo, hi, strict=True)]))
    np.testing.assert_array_equal(targets_of["all"], every)
    np.testing.assert_array_equal(targets_of["last"], latest)


def test_sasrec_length_batches_cover_every_window_once_and_pad_little():
    rng = np.random.default_rng(3)
    lengths = rng.integers(2, 202, size=1000)
    model = SASRec(batch_size=32, max_len=200)
    batches = model._length_batches(lengths, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    assert all(1 <= len(b) <= 32 for b in batches)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    # random batches of 32 would pad nearly every window to ~200 (about 2x the real length)
    assert padded < 1.2 * lengths.sum()
    again = model._length_batches(lengths, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_sasrec_narrow_input_gives_the_full_width_states():
    """A batch padded to its longest window (positions offset) computes what the max_len-wide
    input computes for every real item."""
    import torch

    from chuchun.models.neural._nets import SASRecNet

    torch.manual_seed(0)
    net = SASRecNet(30, 8, 12, 2, 2, 0.3).eval()
    seqs = [np.array([3, 5, 7]), np.array([1, 2, 3, 4, 9]), np.array([8])]
    model = SASRec(max_len=12)
    with torch.no_grad():
        full, _ = net(torch.from_numpy(model._inputs(seqs).astype(np.int64)))
        narrow, _ = net(torch.from_numpy(model._inputs(seqs, 5).astype(np.int64)), offset=7)
    for r, s in enumerate(seqs):
        np.testing.assert_allclose(narrow[r, -len(s):].numpy(), full[r, -len(s):].numpy(),
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="max_len"):
        net(torch.ones(1, 5, dtype=torch.long), offset=8)


def test_sasrec_scores_match_full_width_inputs(data):
    """Scoring sorts sequences by length and pads each chunk to its longest one: the scores
    are those of max_len-wide inputs, in the caller's order."""
    import torch

    model = SASRec(**{**FAST[SASRec], "n_epochs": 1, "max_len": 6}).fit(data)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, N_ITEMS, size=n) for n in (9, 1, 4, 6, 2, 3)]
    net = model._module()
    with torch.no_grad():
        h, _ = net(torch.from_numpy(model._inputs(seqs).astype(np.int64)))
        want = (h[:, -1] @ net.item_table().T).numpy()
        got = model._forward_scores(net, seqs).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
