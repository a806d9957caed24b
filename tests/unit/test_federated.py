"""Federated collaborative filtering: protocol, secure aggregation, privacy, robustness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chuchun._exceptions import ConfigError
from chuchun.data import Interactions
from chuchun.federated import FederatedImplicitMF, FederatedMF, privacy, secagg
from chuchun.federated.client import (
    ClientData,
    ClientState,
    ExplicitConfig,
    GlobalState,
    ImplicitConfig,
    UpdateLayout,
    explicit_update,
    implicit_update,
)
from chuchun.federated.simulation import InProcessTransport, clients_from_interactions
from chuchun.federated.strategy import FederatedServer, ServerConfig
from chuchun.models import ImplicitALS
from chuchun.testing import block_interactions


@pytest.fixture(scope="module")
def data():
    return block_interactions(n_users=30, n_items=18, random_state=1)


def _server(data, kind="explicit", f=3, **cfg):
    client_config = ({"n_epochs": 1, "learning_rate": 0.01, "regularization": 0.02,
                      "bias_regularization": 0.02} if kind == "explicit"
                     else {"regularization": 0.1, "alpha": 2.0})
    rng = np.random.default_rng(0)
    state = GlobalState((rng.standard_normal((data.n_items, f)) * 0.1).astype(np.float32),
                        np.zeros(data.n_items, dtype=np.float32), 3.0)
    server = FederatedServer(
        ServerConfig(kind=kind, n_items=data.n_items, n_factors=f, client_config=client_config,
                     server_learning_rate=5.0 if kind == "explicit" else 1.0,
                     regularization=0.1, **cfg), state, rng)
    runtimes = clients_from_interactions(data, f, np.random.SeedSequence(3))
    for rt in runtimes.values():
        rt.init_factors(0.1)
    return server, runtimes


# -- secure aggregation ------------------------------------------------------------------------
def test_pairwise_masks_cancel_exactly_and_hide_each_update():
    rng = np.random.default_rng(0)
    updates = {c: rng.normal(size=50) for c in range(6)}
    keys = {c: secagg.KeyPair() for c in updates}
    graph = secagg.mask_graph(updates, 2, round_seed=5)
    assert all(len(v) >= 2 for v in graph.values())
    masked = {c: secagg.masked_update(updates[c], c, keys[c],
                                      {p: keys[p].public for p in graph[c]}, b"ctx")
              for c in updates}
    total = np.zeros(50, dtype=np.uint64)
    for c in masked:
        total += masked[c]
        assert not np.array_equal(masked[c], secagg.encode(updates[c]))
        # a masked vector alone decodes to noise, far from the update
        assert np.abs(secagg.decode(masked[c]) - updates[c]).max() > 1e3
    exact = np.zeros(50, dtype=np.uint64)
    for u in updates.values():
        exact += secagg.encode(u)
    assert np.array_equal(total, exact)
    np.testing.assert_allclose(secagg.decode(total), sum(updates.values()), atol=1e-6)


def test_dropped_client_masks_are_removed_with_the_survivors_secrets():
    rng = np.random.default_rng(1)
    updates = {c: rng.normal(size=20) for c in range(5)}
    keys = {c: secagg.KeyPair() for c in updates}
    graph = secagg.mask_graph(updates, 10, round_seed=1)
    masked = {c: secagg.masked_update(updates[c], c, keys[c],
                                      {p: keys[p].public for p in graph[c]}, b"r0")
              for c in updates}
    gone = 3
    total = np.zeros(20, dtype=np.uint64)
    for c in masked:
        if c != gone:
            total += masked[c]
    assert np.abs(secagg.decode(total) - sum(updates[c] for c in updates if c != gone)).max() > 1
    for c in graph[gone]:
        total += secagg.unmask_correction(c, gone, keys[c].shared_secret(keys[gone].public),
                                          b"r0", 20)
    np.testing.assert_allclose(secagg.decode(total),
                               sum(updates[c] for c in updates if c != gone), atol=1e-6)


def test_server_receives_only_item_updates_of_the_declared_shape(data):
    server, runtimes = _server(data, "explicit")
    transport = InProcessTransport(runtimes)
    transport.record = True
    server.run_round(transport, 0)
    layout = UpdateLayout.explicit(data.n_items, 3)
    replies = [r for kind, _, _, r in transport.log if kind == "train"]
    assert len(replies) == data.n_users
    for reply in replies:
        assert set(reply) <= {"update", "metrics", "clipped"}
        assert reply["update"].shape == (layout.size,) == (data.n_items * (3 + 2),)
        assert reply["metrics"].shape == (4,)
    # the user factors stayed on the clients and moved there
    assert all(np.abs(rt.states[u].factors).sum() > 0 for u, rt in runtimes.items())


def test_with_secure_aggregation_the_server_sees_masked_vectors_summing_to_the_plain_sum(
        data, monkeypatch):
    server, runtimes = _server(data, "implicit", secure_aggregation=True, secagg_neighbors=4)
    plain: list[np.ndarray] = []
    real = secagg.masked_update

    def spy(update, *args, **kwargs):
        out = real(update, *args, **kwargs)
        if update.size > 4:
            plain.append(np.asarray(update, dtype=np.float64))
        return out

    monkeypatch.setattr(secagg, "masked_update", spy)
    seen: list[np.ndarray] = []
    real_sum = server.secure_sum

    def record_sum(*args, **kwargs):
        total, metrics, accepted = real_sum(*args, **kwargs)
        seen.append(total)
        return total, metrics, accepted

    transport = InProcessTransport(runtimes)
    transport.record = True
    monkeypatch.setattr(server, "secure_sum", record_sum)
    server.run_round(transport, 0)
    masked = [r["update"] for kind, _, _, r in transport.log if kind == "train"]
    assert len(masked) == data.n_users and all(m.dtype == np.uint64 for m in masked)
    wire = np.zeros_like(masked[0])
    for m in masked:
        wire += m
    exact = np.zeros_like(masked[0])
    for p in plain:
        exact += secagg.encode(p)
    assert np.array_equal(wire, exact), "masked uploads must sum to the encoded plain uploads"
    np.testing.assert_allclose(seen[0], np.sum(plain, axis=0), atol=data.n_users * 2.0**-23)
    for m, p in zip(masked, plain, strict=True):
        assert np.abs(secagg.decode(m) - p).max() > 1e3


def test_secure_aggregation_with_dropouts_trains_the_same_model_as_plain(data):
    kw = dict(n_factors=3, n_rounds=3, dropout_fraction=0.25, random_state=4)
    plain = FederatedImplicitMF(**kw).fit(data)
    masked = FederatedImplicitMF(secure_aggregation=True, secagg_neighbors=4, **kw).fit(data)
    assert sum(r["unmasked_pairs"] for r in masked.history_) > 0
    assert [r["accepted"] for r in plain.history_] == [r["accepted"] for r in masked.history_]
    np.testing.assert_allclose(masked.item_factors_, plain.item_factors_, atol=1e-4)


# -- robustness --------------------------------------------------------------------------------
class _Faulty:
    def __init__(self, inner, mode):
        self.inner, self.mode = inner, mode

    def handle(self, kind, request):
        reply = self.inner.handle(kind, request)
        if kind == "train" and self.mode == "nan":
            reply = dict(reply, update=np.full_like(reply["update"], np.nan))
        elif kind == "train" and self.mode == "shape":
            reply = dict(reply, update=reply["update"][:-3])
        return reply


def test_nan_and_wrong_shape_updates_are_rejected_and_the_round_goes_on(data):
    server, runtimes = _server(data, "explicit")
    runtimes[0] = _Faulty(runtimes[0], "nan")
    runtimes[1] = _Faulty(runtimes[1], "shape")
    before = server.state.item_factors.copy()
    record = server.run_round(InProcessTransport(runtimes), 0)
    assert record.rejected == 2 and record.accepted == data.n_users - 2 and record.applied
    assert np.isfinite(server.state.item_factors).all()
    assert not np.allclose(server.state.item_factors, before)


def test_dropouts_and_stragglers_are_counted_and_ignored(data):
    server, runtimes = _server(data, "explicit", round_deadline=1.0)
    transport = InProcessTransport(runtimes, dropout_fraction=0.3, straggler_fraction=0.2,
                                   deadline=1.0, rng=np.random.default_rng(2))
    record = server.run_round(transport, 0)
    assert record.dropped > 0 and record.stragglers > 0
    assert record.accepted + record.dropped + record.stragglers == data.n_users


def test_training_converges_with_dropouts():
    data = block_interactions(n_users=60, n_items=24, density=0.6, random_state=2)
    split = np.arange(len(data)) % 5 == 0
    train, test = data.subset(~split), data.subset(split)
    kw = dict(n_factors=4, n_rounds=15, learning_rate=0.05, n_epochs=2,
              server_learning_rate=5.0, random_state=0)
    full = FederatedMF(**kw).fit(train)
    dropping = FederatedMF(dropout_fraction=0.2, **kw).fit(train)

    def rmse(m):
        return float(np.sqrt(np.mean((m.predict(test.user_ids, test.item_ids)
                                      - test.values) ** 2)))

    mean_rmse = float(np.sqrt(np.mean((train.values.mean() - test.values) ** 2)))
    assert rmse(full) < 0.8 * mean_rmse
    assert rmse(dropping) < 0.8 * mean_rmse
    assert sum(r["dropped"] for r in dropping.history_) > 0
    assert dropping.history_[-1]["train_rmse"] < dropping.history_[0]["train_rmse"]


# -- privacy -----------------------------------------------------------------------------------
def test_clipping_bounds_every_upload_and_noise_is_accounted(data):
    server, runtimes = _server(data, "explicit", clip_norm=0.05, noise_multiplier=1.0)
    transport = InProcessTransport(runtimes)
    transport.record = True
    record = server.run_round(transport, 0)
    norms = [np.linalg.norm(r["update"]) for k, _, _, r in transport.log if k == "train"]
    assert max(norms) <= 0.05 + 1e-9 and record.clipped > 0
    assert math.isnan(record.train_rmse), "no per-round metrics are released under DP"


def test_epsilon_comes_from_the_rdp_accountant_and_shrinks_with_more_noise(data):
    import dp_accounting
    from dp_accounting import rdp

    eps = [privacy.epsilon(s, 0.1, 20, 1e-5) for s in (0.8, 1.5, 3.0)]
    assert eps[0] > eps[1] > eps[2] > 0
    acc = rdp.RdpAccountant()
    acc.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(
        0.1, dp_accounting.GaussianDpEvent(1.5)), 20))
    assert eps[1] == pytest.approx(acc.get_epsilon(1e-5))
    assert privacy.epsilon(0.0, 0.1, 20, 1e-5) == math.inf
    model = FederatedImplicitMF(n_factors=3, n_rounds=2, clip_norm=1.0, noise_multiplier=1.0,
                                client_fraction=0.5).fit(data)
    assert model.epsilon_ == pytest.approx(privacy.epsilon(1.0, 0.5, 2, 1 / data.n_users))
    assert model.delta_ == pytest.approx(1 / data.n_users)
    assert all(0 < r["sampled"] < data.n_users for r in model.history_)


def test_noise_without_clipping_is_a_config_error(data):
    with pytest.raises(ConfigError, match="clip_norm"):
        FederatedMF(noise_multiplier=1.0).fit(data)


# -- the client computations -------------------------------------------------------------------
def test_explicit_client_sends_the_funksvd_sgd_change_of_the_whole_catalogue():
    from chuchun.kernels.mf import sgd_epoch_numpy

    rng = np.random.default_rng(4)
    n_items, f = 9, 3
    Q0 = (rng.standard_normal((n_items, f)) * 0.3).astype(np.float32)
    b0 = (rng.standard_normal(n_items) * 0.2).astype(np.float32)
    items = np.array([7, 2, 5, 2], dtype=np.int32)  # a repeated item, unsorted
    values = np.array([4.0, 2.0, 5.0, 3.0], dtype=np.float32)
    p0 = (rng.standard_normal(f) * 0.3).astype(np.float32)
    config = ExplicitConfig(2, 0.05, 0.02, 0.01)
    state = ClientState(p0.copy(), 0.25)
    parts, metrics = explicit_update(GlobalState(Q0, b0, 3.5), ClientData(items, values), state,
                                     config, np.random.default_rng(8))
    # the reference: the same two epochs on a copy of the whole catalogue
    Q, b = Q0.copy(), b0.copy()
    P, bu = p0[None, :].copy(), np.array([0.25], dtype=np.float32)
    order = np.random.default_rng(8)
    sse = np.zeros(1)
    for _ in range(2):
        rows = order.permutation(len(items)).astype(np.int64)
        sgd_epoch_numpy(np.zeros(4, np.int32), items, values, rows, np.array([0, 4]), 1, 3.5,
                        bu, b, P, Q, 0.05, 0.05, 0.01, 0.02, True, sse)
    np.testing.assert_allclose(parts["item_factors"], Q.astype(np.float64) - Q0, atol=1e-6)
    np.testing.assert_allclose(parts["item_bias"], b.astype(np.float64) - b0, atol=1e-6)
    unrated = np.setdiff1d(np.arange(n_items), items)
    assert not parts["item_factors"][unrated].any() and not parts["item_bias"][unrated].any()
    assert parts["item_factors"].shape == (n_items, f)
    np.testing.assert_array_equal(parts["item_counts"], np.bincount(items, minlength=n_items))
    np.testing.assert_allclose(state.factors, P[0], atol=1e-6)
    assert state.bias == pytest.approx(float(bu[0]), abs=1e-6)
    assert metrics["train_sse"] == pytest.approx(float(sse[0]), rel=1e-5)
    layout = UpdateLayout.explicit(n_items, f)
    total = np.full(layout.size, 0.5)
    layout.add_into(total, parts)
    np.testing.assert_array_equal(total, 0.5 + layout.flatten(parts))


def test_implicit_client_solves_like_implicit_als_and_sends_the_true_gradient():
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(7, 3)).astype(np.float32)
    items = np.array([1, 4, 5], dtype=np.int32)
    values = np.array([1.0, 3.0, 2.0], dtype=np.float32)
    state = ClientState(np.zeros(3, dtype=np.float32))
    parts, _ = implicit_update(GlobalState(Y, np.zeros(7, np.float32)),
                               ClientData(items, values), state, ImplicitConfig(0.5, 2.0))
    ref = ImplicitALS(n_factors=3, regularization=0.5, alpha=2.0)
    ref.item_factors_ = Y
    import scipy.sparse as sp

    hist = sp.csr_matrix((values, (np.zeros(3, int), items)), shape=(1, 7))
    np.testing.assert_allclose(state.factors, ref._solve_users(hist)[0], rtol=1e-4, atol=1e-5)
    x = state.factors.astype(np.float64)
    conf = np.ones(7)
    pref = np.zeros(7)
    conf[items] += 2.0 * values
    pref[items] = 1.0

    def loss(Yf):
        return float(np.sum(conf * (pref - Yf @ x) ** 2))

    grad = np.zeros((7, 3))
    eps = 1e-6
    for i in range(7):
        for a in range(3):
            Yp = Y.astype(np.float64).copy()
            Yp[i, a] += eps
            Ym = Y.astype(np.float64).copy()
            Ym[i, a] -= eps
            grad[i, a] = (loss(Yp) - loss(Ym)) / (2 * eps)
    np.testing.assert_allclose(parts["item_factors"], -0.5 * grad, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(parts["gram"], np.outer(x, x), rtol=1e-6)


def test_federated_implicit_beats_popularity(data):
    liked = data.subset(data.values >= 4)
    u = liked.user_idx
    last = np.r_[np.diff(u) != 0, True]  # the last liked item of each user is held out
    train = Interactions.from_arrays(liked.user_ids[~last], liked.item_ids[~last])
    test_users, test_items = liked.user_ids[last], liked.item_ids[last]
    model = FederatedImplicitMF(n_factors=4, n_rounds=12, regularization=0.1, alpha=4.0).fit(
        train)
    recs = model.recommend(test_users, k=3)
    pop = np.argsort(-model.item_popularity_, kind="stable")
    hits = np.mean([t in row for t, row in zip(test_items, recs.item_ids, strict=True)])
    seen = [set(train.item_ids[train.user_ids == uu].tolist()) for uu in test_users]
    pop_lists = [[model.items_.ids[j] for j in pop if model.items_.ids[j] not in s][:3]
                 for s in seen]
    pop_hits = np.mean([t in row for t, row in zip(test_items, pop_lists, strict=True)])
    assert hits > pop_hits + 0.15, (hits, pop_hits)
    again = model.recommend_for_history([list(s) for s in seen[:3]], k=3)
    np.testing.assert_array_equal(again.item_ids, recs.item_ids[:3])


def test_flower_records_round_trip():
    from chuchun.federated.flower import decode, encode

    request = {"update": np.arange(4, dtype=np.uint64), "x": np.ones((2, 3), np.float32),
               "kind": "implicit", "me": 3, "peer_keys": [b"ab", b"cd"], "clip_norm": None,
               "lr": 0.5}
    back = decode(encode(request))
    assert back["update"].dtype == np.uint64 and np.array_equal(back["update"], request["update"])
    assert np.array_equal(back["x"], request["x"])
    assert back["peer_keys"] == [b"ab", b"cd"] and back["me"] == 3 and "clip_norm" not in back


# -- DP-FedAvg server step and divergence guard ------------------------------------------------
def test_cohort_mean_divides_the_count_free_sum_by_the_expected_cohort(data):
    server, runtimes = _server(data, "explicit", aggregation="cohort_mean")
    transport = InProcessTransport(runtimes)
    transport.record = True
    before = server.state.item_factors.astype(np.float64).copy()
    server.run_round(transport, 0)
    uploads = [server.layout.split(r["update"]) for k, _, _, r in transport.log if k == "train"]
    assert all(not u["item_counts"].any() for u in uploads), "no counts ride in the upload"
    mean = sum(u["item_factors"] for u in uploads) / len(runtimes)
    np.testing.assert_allclose(server.state.item_factors, before + 5.0 * mean, rtol=1e-5,
                               atol=1e-6)


def test_dp_fit_stays_finite_and_beats_the_global_mean():
    rng = np.random.default_rng(0)
    n_users, n_items, per_user = 200, 30, 10
    item_effect = rng.normal(0, 0.8, n_items)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False)
                            for _ in range(n_users)])
    ratings = np.clip(3.5 + rng.normal(0, 0.3, n_users)[users] + item_effect[items]
                      + rng.normal(0, 0.3, len(users)), 1, 5)
    test = rng.random(len(users)) < 0.2
    train = Interactions.from_arrays(users[~test], items[~test], ratings[~test])
    model = FederatedMF(n_factors=2, n_rounds=6, client_fraction=0.5, clip_norm=0.5,
                        noise_multiplier=1.0, learning_rate=0.05, random_state=0).fit(train)
    assert np.isfinite(model.item_factors_).all() and np.isfinite(model.item_bias_).all()
    rmse = np.sqrt(np.mean((model.predict(users[test], items[test]) - ratings[test]) ** 2))
    baseline = np.sqrt(np.mean((ratings[~test].mean() - ratings[test]) ** 2))
    assert rmse < baseline - 0.05
    assert math.isfinite(model.epsilon_) and model.epsilon_ > 0


def test_non_finite_item_state_raises_naming_the_setting(data):
    server, runtimes = _server(data, "explicit", clip_norm=0.5, noise_multiplier=1.0,
                               aggregation="item_mean")
    server.config.server_learning_rate = 1e300
    with pytest.raises(ConfigError, match="server_learning_rate.*cohort_mean"):
        server.run_round(InProcessTransport(runtimes), 0)
    model = FederatedMF(n_factors=2, n_rounds=2, server_learning_rate=1e300, random_state=0)
    with pytest.raises(ConfigError, match="diverged"):
        model.fit(data)
    assert not hasattr(model, "item_factors_"), "a failed fit leaves the model unfitted"


def _implicit_objective(model, regularization, alpha):
    """Hu, Koren & Volinsky's objective (ImplicitALS with its defaults) at a model's factors."""
    R = model.seen_.toarray().astype(np.float64)
    C = 1.0 + alpha * R
    P = (R > 0).astype(np.float64)
    X = model.user_factors_.astype(np.float64)
    Y = model.item_factors_.astype(np.float64)
    return float(np.sum(C * (P - X @ Y.T) ** 2)
                 + regularization * (np.sum(X ** 2) + np.sum(Y ** 2)))


def test_federated_implicit_minimises_the_implicit_als_objective(data):
    # the objective ImplicitALS minimises with its defaults: c = 1 + alpha r (unobserved
    # weight 1) and one lambda for every row (no frequency scaling)
    ref = ImplicitALS()
    assert (ref.unobserved_weight, ref.regularization_exponent) == (1.0, 0.0)
    fed = FederatedImplicitMF()
    assert (fed.n_factors, fed.regularization, fed.alpha) == (
        ref.n_factors, ref.regularization, ref.alpha)
    lam, alpha = 0.1, 2.0
    als = ImplicitALS(n_factors=4, regularization=lam, alpha=alpha, solver="cholesky",
                      n_epochs=50, random_state=0).fit(data)
    values = []
    for n_rounds in (5, 30):
        model = FederatedImplicitMF(n_factors=4, regularization=lam, alpha=alpha,
                                    n_rounds=n_rounds, server_learning_rate=1.0,
                                    random_state=0).fit(data)
        values.append(_implicit_objective(model, lam, alpha))
    best = _implicit_objective(als, lam, alpha)
    assert values[1] < values[0]
    assert best <= values[1] <= 1.01 * best, (values, best)
