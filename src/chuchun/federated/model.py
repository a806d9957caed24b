"""Federated matrix factorisation as ordinary chuchun models.

:class:`FederatedMF` (explicit ratings) and :class:`FederatedImplicitMF` (implicit feedback)
train by Federated Collaborative Filtering (Ammad-ud-din et al. 2019): each user is a client
that keeps its ratings and its user factors, the server keeps the item factors and aggregates
the clients' item-side updates (:mod:`chuchun.federated.client`,
:mod:`chuchun.federated.strategy`). ``fit`` runs the in-process simulation
(:mod:`chuchun.federated.simulation`) through the same client and server code that
:mod:`chuchun.federated.flower` runs on Flower.

The fitted model is item factors (and item biases) plus the user factors the simulated clients
ended with; a deployment keeps those on the devices, and any user — trained or not — can be
scored from their history by fold-in (``recommend_for_history``), the same least-squares solve
the clients run. ``history_`` lists one record per round (cohort size, dropped, straggling and
rejected clients, bytes per client, seconds, training/validation error, privacy loss).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from chuchun._exceptions import ConfigError, DataError
from chuchun._params import Param, random_state_param
from chuchun._progress import progress
from chuchun._random import check_random_state
from chuchun.data.interactions import Interactions
from chuchun.federated import privacy
from chuchun.federated.client import GlobalState, implicit_solve_users
from chuchun.federated.simulation import InProcessTransport, clients_from_interactions
from chuchun.federated.strategy import FederatedServer, ServerConfig
from chuchun.models._results import Reason
from chuchun.models._base import Recommender
from chuchun.models._similar import cosine_rows
from chuchun.models.implicit import ImplicitALS
from chuchun.models.mf import _FactorModel, _require_ratings

__all__ = ["FederatedImplicitMF", "FederatedMF"]

#: ``callback(model, round, record)``; returning True stops training after that round
RoundCallback = Callable[[Any, int, dict[str, Any]], Any]


class _Federated:
    """Hyperparameters and the round loop both federated models share."""

    n_rounds = Param(int, 30, "Communication rounds (the round budget).", low=1)
    client_fraction = Param(float, 1.0, "Probability that a client takes part in a round "
                            "(Poisson sampling).", low=0, high=1, low_open=True)
    clip_norm = Param(float, None, "L2 bound C of each client's upload (None: no clipping).",
                      low=0, low_open=True, nullable=True)
    noise_multiplier = Param(float, 0.0, "Gaussian noise std on the sum, in units of "
                             "clip_norm (DP-FedAvg).", low=0)
    delta = Param(float, None, "delta of the reported (epsilon, delta) (None: 1 / n_users).",
                  low=0, high=1, low_open=True, high_open=True, nullable=True)
    secure_aggregation = Param(bool, False, "Mask uploads pairwise so the server sees sums "
                               "only.")
    secagg_neighbors = Param(int, 8, "Mask partners per client (SecAgg+ graph degree).", low=1)
    dropout_fraction = Param(float, 0.0, "Simulated share of cohort members that drop "
                             "mid-round.", low=0, high=1, high_open=True)
    straggler_fraction = Param(float, 0.0, "Simulated share of cohort members that reply "
                               "after the deadline (ignored).", low=0, high=1, high_open=True)
    random_state = random_state_param("Seed of the item factors, the clients and sampling.")
    verbose = Param(bool, False, "Show a progress bar over rounds.")

    # set by the subclasses / fit
    history_: list[dict[str, Any]]
    epsilon_: float
    delta_: float

    def _check_privacy(self) -> None:
        if float(self.noise_multiplier) > 0 and self.clip_norm is None:  # type: ignore[attr-defined]
            raise ConfigError("noise_multiplier > 0 needs clip_norm (the per-client sensitivity)")
        if self.dropout_fraction + self.straggler_fraction >= 1:  # type: ignore[attr-defined]
            raise ConfigError("dropout_fraction + straggler_fraction must stay below 1")

    def _server_config(self, kind: str, n_items: int, n_factors: int, **extra: Any) -> ServerConfig:
        p: Any = self
        return ServerConfig(
            kind=kind, n_items=n_items, n_factors=n_factors,
            client_fraction=float(p.client_fraction),
            clip_norm=None if p.clip_norm is None else float(p.clip_norm),
            noise_multiplier=float(p.noise_multiplier),
            secure_aggregation=bool(p.secure_aggregation),
            secagg_neighbors=int(p.secagg_neighbors),
            round_deadline=1.0, **extra)

    def _run(self, data: Interactions, server: FederatedServer,
             transport: InProcessTransport, *, stop_on_val: bool,
             publish: Callable[[], None], callbacks: Sequence[RoundCallback] | None) -> None:
        """Run the rounds; after each, ``callbacks`` get ``(model, round, record)`` with the
        model's fitted attributes set to the current state (returning True stops)."""
        p: Any = self
        for cb in callbacks or []:
            if not callable(cb):
                raise ConfigError(
                    f"callbacks must be callables cb(model, round, record); got {type(cb).__name__}")
        n = data.n_users
        delta = float(p.delta) if p.delta is not None else 1.0 / max(n, 2)
        history: list[dict[str, Any]] = []
        best = math.inf
        bad = 0
        for r in progress(range(p.n_rounds), total=p.n_rounds, desc=type(self).__name__,
                          verbose=p.verbose):
            record = server.run_round(transport, r)
            record.epsilon = privacy.epsilon(float(p.noise_multiplier), float(p.client_fraction),
                                             r + 1, delta)
            history.append(record.as_dict())
            if callbacks:
                publish()
                if any([bool(cb(self, r, history[-1])) for cb in callbacks]):
                    break
            if stop_on_val and not math.isnan(record.val_rmse):
                if record.val_rmse < best - 1e-6:
                    best, bad = record.val_rmse, 0
                else:
                    bad += 1
                target = getattr(self, "target_rmse", None)
                if (target is not None and record.val_rmse <= target) or bad >= p.patience:
                    break
        self.history_ = history
        self.delta_ = delta
        self.epsilon_ = float(history[-1]["epsilon"]) if history else 0.0


#: default server step of the fixed-denominator (DP) aggregation, see docs/federated.md
_COHORT_MEAN_LR = 1.0


class FederatedMF(_Federated, _FactorModel):
    """Biased matrix factorisation trained by federated SGD (explicit ratings).

    Prediction rule (as :class:`~chuchun.models.mf.FunkSVD`):

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i .

    Each round, every sampled client runs ``n_epochs`` passes of SGD over its own ratings on
    :math:`p_u, b_u` and a local copy of :math:`q_i, b_i` (the FunkSVD update), and uploads the
    change of :math:`q, b` and (for ``item_mean``) its per-item rating counts; the server
    applies the per-item data-weighted average of the changes times ``server_learning_rate``
    (``aggregation="item_mean"``, the default without noise), their sum divided by the
    expected cohort size (``"cohort_mean"``, the DP-FedAvg fixed-denominator step, the default
    with ``noise_multiplier > 0``) or their sum (``"sum"``), see :mod:`chuchun.federated.strategy`.
    Should the item state become non-finite, ``fit`` raises a ``ConfigError`` naming the
    settings to change.
    :math:`\\mu` comes from one secure sum of rating totals and counts before the first round
    (the midpoint of the rating scale under differential privacy, so that nothing is released
    outside the accounting). With ``validation_fraction > 0`` each client keeps that share of
    its ratings for local validation; the server sums the squared errors and stops once the
    validation RMSE reaches ``target_rmse`` or stops improving for ``patience`` rounds.

    Attributes
    ----------
    item_factors_, item_bias_, intercept_ : the server's model
    user_factors_, user_bias_ : the clients' private parameters (collected by the simulation)
    history_ : list of dict, one record per round (see :class:`~chuchun.federated.strategy.RoundRecord`)
    epsilon_, delta_ : the privacy loss of the whole fit (``inf`` without noise)

    References
    ----------
    H. B. McMahan et al. Communication-efficient learning of deep networks from decentralized
    data. AISTATS 2017. M. Ammad-ud-din et al. Federated collaborative filtering for
    privacy-preserving personalized recommendation system. arXiv:1901.09888, 2019.
    H. B. McMahan, D. Ramage, K. Talwar, L. Zhang. Learning differentially private recurrent
    language models. ICLR 2018. K. Bonawitz et al. Practical secure aggregation for
    privacy-preserving machine learning. CCS 2017.
    """

    n_factors = Param(int, 32, "Number of latent factors.", low=1)
    n_epochs = Param(int, 1, "Local SGD passes over a client's ratings per round.", low=1)
    learning_rate = Param(float, 0.005, "Client SGD step size.", low=0, low_open=True)
    regularization = Param(float, 0.02, "L2 weight of the factors.", low=0)
    bias_regularization = Param(float, None, "L2 weight of the biases (None: regularization).",
                                low=0, nullable=True)
    init_std = Param(float, 0.1, "Std of the normal factor initialisation.", low=0)
    server_learning_rate = Param(float, None, "Server step eta_s on the aggregated item "
                                 "update (None: 30 for item_mean and sum, "
                                 "1 for cohort_mean).", low=0, low_open=True,
                                 nullable=True)
    aggregation = Param(str, "auto", "Server aggregation of item updates ('auto': item_mean "
                        "without noise, cohort_mean with noise).",
                        choices=("auto", "item_mean", "cohort_mean", "sum"))
    validation_fraction = Param(float, 0.0, "Share of each client's ratings kept for local "
                                "validation (0: none).", low=0, high=1, high_open=True)
    target_rmse = Param(float, None, "Stop once the validation RMSE reaches this (None: "
                        "round budget only).", low=0, nullable=True)
    patience = Param(int, 3, "Rounds without validation improvement before stopping.", low=1)
    clip = Param(bool, True, "Clip predict() to the rating scale; recommend() ranks unclipped.")

    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 4, "n_rounds": 3,
                                               "server_learning_rate": 5.0}

    def _server_lr(self, aggregation: str) -> float:
        if self.server_learning_rate is not None:
            return float(self.server_learning_rate)
        return _COHORT_MEAN_LR if aggregation == "cohort_mean" else 30.0

    def _fit(self, data: Interactions, *,
             callbacks: Sequence[RoundCallback] | None = None) -> None:
        _require_ratings(data, "FederatedMF")
        self._check_privacy()
        rng = check_random_state(self.random_state)
        seeds = np.random.SeedSequence(int(rng.integers(2**63)))
        k = int(self.n_factors)
        item_factors = self._init_factors(rng, data.n_items, k)
        aggregation = str(self.aggregation)
        if aggregation == "auto":
            aggregation = "cohort_mean" if float(self.noise_multiplier) > 0 else "item_mean"
        reg = float(self.regularization)
        breg = reg if self.bias_regularization is None else float(self.bias_regularization)
        server = FederatedServer(
            self._server_config(
                "explicit", data.n_items, k,
                server_learning_rate=self._server_lr(aggregation),
                aggregation=aggregation,
                client_config={"n_epochs": int(self.n_epochs),
                               "learning_rate": float(self.learning_rate),
                               "regularization": reg, "bias_regularization": breg}),
            GlobalState(item_factors, np.zeros(data.n_items, dtype=np.float32)),
            np.random.default_rng(seeds.spawn(1)[0]))
        runtimes = clients_from_interactions(data, k, seeds.spawn(1)[0],
                                             float(self.validation_fraction))
        for rt in runtimes.values():
            rt.init_factors(float(self.init_std))
        transport = InProcessTransport(
            runtimes, dropout_fraction=float(self.dropout_fraction),
            straggler_fraction=float(self.straggler_fraction), deadline=1.0,
            rng=np.random.default_rng(seeds.spawn(1)[0]))
        if float(self.noise_multiplier) > 0:
            lo, hi = self.rating_scale_ if self.rating_scale_ else (0.0, 0.0)
            server.state.intercept = 0.5 * (float(lo) + float(hi))
        else:
            server.compute_intercept(transport)

        def publish() -> None:
            self.fit_bias_ = True
            self.intercept_ = float(server.state.intercept)
            self.item_factors_ = server.state.item_factors
            self.item_bias_ = server.state.item_bias
            self.user_factors_ = np.stack(
                [runtimes[u].states[u].factors for u in range(data.n_users)]).astype(np.float32)
            self.user_bias_ = np.array([runtimes[u].states[u].bias for u in range(data.n_users)],
                                       dtype=np.float32)

        self._run(data, server, transport, stop_on_val=float(self.validation_fraction) > 0,
                  publish=publish, callbacks=callbacks)
        publish()


class FederatedImplicitMF(_Federated, Recommender):
    """Implicit-feedback matrix factorisation trained federatedly (FCF, Ammad-ud-din et al.
    2019) on the ImplicitALS objective (Hu, Koren & Volinsky 2008):

    .. math::

        \\sum_{u,i} c_{ui} (p_{ui} - x_u^\\top y_i)^2
        + \\lambda \\Big(\\sum_u \\lVert x_u\\rVert^2 + \\sum_i \\lVert y_i\\rVert^2\\Big),
        \\qquad c_{ui} = 1 + \\alpha r_{ui}, \\quad p_{ui} = [r_{ui} > 0],

    scores :math:`\\hat p_{ui} = x_u^\\top y_i`. This is the objective
    :class:`~chuchun.models.ImplicitALS` minimises with its defaults (unobserved weight
    :math:`\\alpha_0 = 1`, regularisation exponent :math:`\\nu = 0`: one :math:`\\lambda` for
    every user and item, no frequency scaling), with the same default :math:`f`,
    :math:`\\lambda` and :math:`\\alpha`. Each round a sampled client solves its
    :math:`x_u` exactly with the item factors fixed (the ImplicitALS user half-step) and uploads
    the gradient statistics of its loss with respect to the item factors; the server takes a
    preconditioned gradient step of size ``server_learning_rate`` (see
    :mod:`chuchun.federated.strategy`). There are no local epochs: the client's step is an exact
    minimisation, so repeating it changes nothing. After the last round
    every client solves :math:`x_u` once more against the final item factors, so fold-in
    reproduces a training user's scores and ``explain`` is exactly additive (the ImplicitALS
    decomposition, Hu et al. 2008, sec. 5).

    Attributes
    ----------
    item_factors_ : ndarray float32 (n_items, n_factors), the server's model
    user_factors_ : ndarray float32, the clients' private factors (collected by the simulation)
    history_, epsilon_, delta_ : as in :class:`FederatedMF`

    References
    ----------
    M. Ammad-ud-din et al. Federated collaborative filtering for privacy-preserving
    personalized recommendation system. arXiv:1901.09888, 2019. Y. Hu, Y. Koren, C. Volinsky.
    Collaborative filtering for implicit feedback datasets. ICDM 2008.
    """

    n_factors = Param(int, 64, "Number of latent factors.", low=1)
    regularization = Param(float, 0.01, "L2 weight lambda of the factors.", low=0)
    alpha = Param(float, 1.0, "Confidence slope: c = 1 + alpha * r.", low=0)
    init_std = Param(float, 0.01, "Std of the normal item factor initialisation.", low=0)
    server_learning_rate = Param(float, 0.5, "Server step eta_s of the preconditioned "
                                 "gradient step (0.5: chosen on validation, see "
                                 "docs/federated.md).", low=0, low_open=True)
    n_rounds = Param(int, 15, "Communication rounds (the round budget).", low=1)

    supports_fold_in = True
    explain_is_additive = True
    explain_method = ("the user's items, each contributing confidence x W-similarity to the "
                      "item (Hu, Koren & Volinsky 2008, sec. 5); additive")
    _test_params: ClassVar[dict[str, Any]] = {"n_factors": 4, "n_rounds": 3}

    item_factors_: np.ndarray
    user_factors_: np.ndarray

    def _fit(self, data: Interactions, *,
             callbacks: Sequence[RoundCallback] | None = None) -> None:
        values = data.values
        if not np.isfinite(values).all() or (values < 0).any():
            raise DataError(
                "FederatedImplicitMF reads interaction values as non-negative feedback "
                f"strengths; got values such as {values[~np.isfinite(values) | (values < 0)][:3]}")
        self._check_privacy()
        rng = check_random_state(self.random_state)
        seeds = np.random.SeedSequence(int(rng.integers(2**63)))
        k = int(self.n_factors)
        item_factors = (rng.standard_normal((data.n_items, k)) * float(self.init_std)).astype(
            np.float32)
        server = FederatedServer(
            self._server_config(
                "implicit", data.n_items, k,
                server_learning_rate=float(self.server_learning_rate),
                regularization=float(self.regularization),
                client_config={"regularization": float(self.regularization),
                               "alpha": float(self.alpha)}),
            GlobalState(item_factors, np.zeros(data.n_items, dtype=np.float32)),
            np.random.default_rng(seeds.spawn(1)[0]))
        runtimes = clients_from_interactions(data, k, seeds.spawn(1)[0])
        transport = InProcessTransport(
            runtimes, dropout_fraction=float(self.dropout_fraction),
            straggler_fraction=float(self.straggler_fraction), deadline=1.0,
            rng=np.random.default_rng(seeds.spawn(1)[0]))
        histories = [(runtimes[u].users[u].items, runtimes[u].users[u].values)
                     for u in range(data.n_users)]

        def publish() -> None:
            # each client's solve against the current item factors
            self.item_factors_ = server.state.item_factors
            self.user_factors_ = implicit_solve_users(
                histories, self.item_factors_, float(self.regularization), float(self.alpha))

        self._run(data, server, transport, stop_on_val=False, publish=publish,
                  callbacks=callbacks)
        publish()

    def _score_history(self, history: Any) -> np.ndarray:
        rows = [(history.indices[history.indptr[r]:history.indptr[r + 1]],
                 history.data[history.indptr[r]:history.indptr[r + 1]])
                for r in range(history.shape[0])]
        X = implicit_solve_users(rows, self.item_factors_, float(self.regularization),
                                 float(self.alpha))
        return self._user_scores(X)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._user_scores(self.user_factors_[user_idx])

    def _user_scores(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors @ self.item_factors_.T, dtype=np.float32)

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        return cosine_rows(self.item_factors_, item_idx)

    def _user_similarities(self, user_idx: np.ndarray) -> np.ndarray:
        return cosine_rows(self.user_factors_, user_idx)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        return ImplicitALS._explain(self, user_idx, item_idx)  # type: ignore[arg-type]
