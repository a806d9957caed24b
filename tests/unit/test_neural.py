"""MultVAE and LightGCN: training, NumPy scoring, fold-in, explanations, seeds, no torch at load."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from chuchun import ConfigError
from chuchun.models import LightGCN, MultVAE
from chuchun.testing import block_interactions

VAE = {"n_factors": 8, "n_hidden": 32, "n_epochs": 40, "batch_size": 16, "learning_rate": 3e-3}
GCN = {"n_factors": 16, "n_layers": 2, "n_epochs": 40, "batch_size": 128,
       "learning_rate": 2e-2}


@pytest.fixture(scope="module")
def data():
    return block_interactions(n_users=60, n_items=30, random_state=2)


@pytest.fixture(scope="module")
def vae(data):
    return MultVAE(**VAE).fit(data)


@pytest.fixture(scope="module")
def gcn(data):
    return LightGCN(**GCN).fit(data)


def _in_block_share(model, data) -> float:
    recs = model.recommend(data.users.ids[:30], k=3)
    users = np.array([int(str(u)[1:]) for u in recs.user_ids]) % 3
    items = np.vectorize(lambda i: int(str(i)[1:]))(recs.item_ids) % 3
    return float((items == users[:, None]).mean())


@pytest.mark.parametrize("which", ["vae", "gcn"])
def test_training_learns_the_blocks(which, request, data):
    model = request.getfixturevalue(which)
    assert model.loss_history_[-1] < model.loss_history_[0]
    assert _in_block_share(model, data) > 0.7  # chance: 1/3


def test_vae_scores_are_the_decoded_mean_in_numpy(vae, data):
    import torch

    u = np.array([0, 5])
    x = torch.from_numpy(vae.interactions_[u].toarray())
    x = x / x.norm(dim=1, keepdim=True)
    h = torch.tanh(x @ torch.from_numpy(vae.enc_weights_).T + torch.from_numpy(vae.enc_biases_))
    mu = (h @ torch.from_numpy(vae.enc_mu_weights_).T
          + torch.from_numpy(vae.enc_mu_biases_))[:, : vae.n_factors]
    d = torch.tanh(mu @ torch.from_numpy(vae.dec_hidden_weights_).T
                   + torch.from_numpy(vae.dec_hidden_biases_))
    logits = d @ torch.from_numpy(vae.dec_weights_).T + torch.from_numpy(vae.dec_biases_)
    np.testing.assert_allclose(vae._score(u), logits.numpy(), rtol=1e-4, atol=1e-5)


def test_vae_fold_in_is_exact(vae, data):
    users = data.users.ids[:5]
    hist = [list(data.items.ids[vae.interactions_[r].indices]) for r in data.users.index(users)]
    folded = vae.recommend_for_history(hist, k=5)
    direct = vae.recommend(users, k=5)
    np.testing.assert_array_equal(folded.item_idx, direct.item_idx)
    np.testing.assert_allclose(folded.scores, direct.scores, rtol=1e-5)


def test_vae_explain_is_leave_one_out(vae, data):
    user, item = data.users.ids[1], data.items.ids[4]
    e = vae.explain([user], [item], n_reasons=None)[0]
    assert not e.additive
    u = int(data.users.index([user])[0])
    hist = vae.interactions_[u].indices
    assert len(e.reasons) == len(hist)
    r = e.reasons[0]
    j = int(data.items.index([r.id])[0])
    row = vae.interactions_[u].toarray()
    row[0, j] = 0
    import scipy.sparse as sp

    without = vae._logits(sp.csr_matrix(row))[0, 4]
    assert r.contribution == pytest.approx(e.score - without, rel=1e-4, abs=1e-5)


def test_gcn_fold_in_approximates_training_users(gcn, data):
    # a training user's embedding minus its own ego term is what fold-in computes
    u = np.arange(10)
    folded = gcn._fold_in(gcn.interactions_[u])
    expected = gcn.user_factors_[u] - gcn.user_ego_[u] / (gcn.n_layers + 1)
    np.testing.assert_allclose(folded, expected, rtol=1e-4, atol=1e-5)
    users = data.users.ids[:20]
    hist = [list(data.items.ids[gcn.interactions_[r].indices]) for r in data.users.index(users)]
    overlap = (gcn.recommend_for_history(hist, k=3).item_idx
               == gcn.recommend(users, k=3).item_idx).mean()
    assert overlap > 0.4


def test_gcn_explain_adds_up_exactly(gcn, data):
    user = data.users.ids[3]
    recs = gcn.recommend([user], k=2)
    for item, score in zip(recs.item_ids[0], recs.scores[0], strict=True):
        e = gcn.explain([user], [item], n_reasons=None)[0]
        assert e.additive
        assert {r.kind for r in e.reasons} == {"user", "item"}
        assert sum(r.contribution for r in e.reasons) == pytest.approx(float(score), rel=1e-4)


def test_gcn_own_embedding_reason_is_labelled(gcn, data):
    from chuchun.models.neural.lightgcn import OWN_EMBEDDING

    user, item = data.users.ids[3], data.items.ids[0]
    e = gcn.explain([user], [item], n_reasons=None)[0]
    (own,) = [r for r in e.reasons if r.kind == "user"]
    assert own.id == user
    assert own.label == OWN_EMBEDDING
    assert own.name == OWN_EMBEDDING
    assert own.to_dict()["label"] == OWN_EMBEDDING
    assert own.detail["layer_weight"] == pytest.approx(1 / (gcn.n_layers + 1))
    # the contribution is the ego term of the layer mean, dotted with the item
    u, i = int(data.users.index([user])[0]), int(data.items.index([item])[0])
    expected = gcn.user_ego_[u] @ gcn.item_factors_[i] / (gcn.n_layers + 1)
    assert own.contribution == pytest.approx(float(expected), rel=1e-5)
    assert str(own).startswith(OWN_EMBEDDING)


@pytest.mark.parametrize("cls", [MultVAE, LightGCN])
def test_same_seed_same_weights_other_seed_differs(cls, data):
    params = {**cls._test_params, "n_threads": 1}
    a = cls(**params).fit(data)
    b = cls(**params).fit(data)
    c = cls(**{**params, "random_state": 7}).fit(data)
    key = "dec_weights_" if cls is MultVAE else "item_factors_"
    np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.allclose(getattr(a, key), getattr(c, key))


@pytest.mark.parametrize("cls", [MultVAE, LightGCN])
def test_unavailable_device_is_a_clear_error(cls, data):
    with pytest.raises(ConfigError, match="device"):
        cls(**cls._test_params, device="not-a-device").fit(data)


def test_loading_and_scoring_need_no_torch(vae, tmp_path):
    path = tmp_path / "vae.zip"
    vae.save(str(path))
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from chuchun.io import load_model\n"
        f"m = load_model({str(path)!r})\n"
        "print(m.recommend(m.users_.ids[:2], k=3).item_idx.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == str(vae.recommend(vae.users_.ids[:2], k=3).item_idx.tolist())


def test_gcn_cpu_propagation_matches_torch_sparse():
    # the CPU path multiplies through scipy; its forward and gradient must be torch.sparse.mm's
    import scipy.sparse as sp
    import torch

    from chuchun.models.neural.lightgcn import _scipy_spmm

    rng = np.random.default_rng(0)
    half = sp.random(12, 9, density=0.3, random_state=1, dtype=np.float32)
    adj = sp.bmat([[None, half], [half.T, None]]).tocsr().astype(np.float32)
    coo = adj.tocoo()
    ref = torch.sparse_coo_tensor(torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64)),
                                  torch.from_numpy(coo.data), adj.shape,
                                  check_invariants=True).coalesce()
    e = torch.tensor(rng.normal(size=(21, 4)), dtype=torch.float32, requires_grad=True)
    w = torch.tensor(rng.normal(size=(21, 4)), dtype=torch.float32)
    spmm = _scipy_spmm(torch, adj)
    (spmm(spmm(e)) * w).sum().backward()
    ours = e.grad.clone()
    e.grad = None
    (torch.sparse.mm(ref, torch.sparse.mm(ref, e)) * w).sum().backward()
    np.testing.assert_allclose(spmm(e).detach().numpy(),
                               torch.sparse.mm(ref, e).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.numpy(), e.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [MultVAE, LightGCN])
def test_a_short_fit_is_the_start_of_a_longer_one(cls, data):
    # the schedule counts updates (not a share of n_epochs), so the epoch-e checkpoint that a
    # callback sees is exactly the model fitted with n_epochs=e: learning curves need one fit
    params = {**cls._test_params, "n_threads": 1, "n_epochs": 6}
    if cls is MultVAE:
        params["anneal_steps"] = 10  # reaches the cap inside the longer fit
    key = "dec_weights_" if cls is MultVAE else "item_factors_"
    seen: dict[int, np.ndarray] = {}

    def record(model, epoch, logs):
        seen[epoch] = getattr(model, key).copy()
        assert np.isfinite(logs["loss"])

    long = cls(**params).fit(data, callbacks=[record])
    short = cls(**{**params, "n_epochs": 3}).fit(data)
    assert sorted(seen) == list(range(6))
    np.testing.assert_array_equal(seen[2], getattr(short, key))
    np.testing.assert_array_equal(seen[5], getattr(long, key))
    assert not np.array_equal(seen[2], seen[5])


@pytest.mark.parametrize("cls", [MultVAE, LightGCN])
def test_callback_scores_with_the_epoch_weights_and_can_stop(cls, data):
    users = data.users.ids[:4]
    lists = []

    def stop_after_two(model, epoch, logs):
        lists.append(model.recommend(users, k=3).item_idx.copy())
        return epoch == 1

    model = cls(**{**cls._test_params, "n_epochs": 10}).fit(data, callbacks=[stop_after_two])
    assert len(model.loss_history_) == 2 and len(lists) == 2
    np.testing.assert_array_equal(lists[-1], model.recommend(users, k=3).item_idx)
    with pytest.raises(ConfigError, match="callables"):
        cls(**cls._test_params).fit(data, callbacks=[3])


def test_vae_beta_rises_over_updates_then_stays_at_the_cap(data):
    betas = []
    # 60 users in batches of 16: 4 updates per epoch; logs carry the next update's beta
    MultVAE(**{**MultVAE._test_params, "n_epochs": 4, "anneal_steps": 8, "beta_cap": 0.4}).fit(
        data, callbacks=[lambda m, e, logs: betas.append(logs["beta"])])
    np.testing.assert_allclose(betas, [0.2, 0.4, 0.4, 0.4])
    fixed = MultVAE(**{**MultVAE._test_params, "anneal_steps": 0, "beta_cap": 0.3})
    assert fixed._beta(0) == pytest.approx(0.3)


def test_vae_recency_weights_the_encoder_input_and_folds_in_by_order(tmp_path):
    from chuchun.data import Interactions
    from chuchun.io import load_model

    rng = np.random.default_rng(3)
    pairs = rng.choice(20 * 15, size=150, replace=False)
    users, items = pairs // 15, pairs % 15
    stamps = rng.permutation(150)
    data = Interactions.from_arrays(users, items, timestamps=stamps)
    model = MultVAE(**MultVAE._test_params, recency_half_life=1.0).fit(data)
    u = int(data.users.index([users[0]])[0])
    mine = np.flatnonzero(users == users[0])
    latest_first = items[mine[np.argsort(-stamps[mine])]]
    row = model.profiles_[u]
    weights = dict(zip(data.items.ids[row.indices].tolist(), row.data.tolist(), strict=True))
    assert [weights[i] for i in latest_first] == [2.0**-r for r in range(len(mine))]
    np.testing.assert_allclose(model._score([u]), model._logits(model.profiles_[[u]]))
    assert not np.allclose(model._score([u]), model._logits(model.interactions_[[u]]))
    # fold-in reads the order given: histories oldest first reproduce the training users
    ids = data.users.ids[:6]
    hist = [list(items[np.flatnonzero(users == uid)][np.argsort(stamps[users == uid])])
            for uid in ids]
    folded = model.recommend_for_history(hist, k=4)
    direct = model.recommend(ids, k=4)
    np.testing.assert_array_equal(folded.item_idx, direct.item_idx)
    np.testing.assert_allclose(folded.scores, direct.scores, rtol=1e-5)
    reasons = model.explain([ids[0]], [data.items.ids[0]], n_reasons=None)[0].reasons
    assert sorted(r.detail["value"] for r in reasons) == sorted(
        model.profiles_[int(data.users.index([ids[0]])[0])].data.tolist())
    model.save(str(tmp_path / "vae.zip"))
    loaded = load_model(str(tmp_path / "vae.zip"))
    np.testing.assert_array_equal(loaded.recommend(ids, k=4).item_idx, direct.item_idx)
