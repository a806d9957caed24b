"""Hyperparameter search: spaces, the GP/EI optimiser, and the three searches on tiny data."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

from chuchun import ConfigError, DataError, DataWarning, Interactions
from chuchun.data.splits import Split, user_holdout
from chuchun.evaluation import (
    BayesianOptimizer,
    BayesianSearch,
    Choice,
    GridSearch,
    Integer,
    RandomSearch,
    Real,
)
from chuchun.evaluation.search import _GaussianProcess, expected_improvement
from chuchun.models import BaselineOnly, Popularity, Random
from chuchun.testing import block_interactions


@pytest.fixture(scope="module")
def data() -> Interactions:
    return block_interactions(n_users=45, n_items=24, random_state=0)


@pytest.fixture(autouse=True)
def _quiet_unknown_pairs():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        yield


# -- spaces -----------------------------------------------------------------------------------


def test_dimensions_sample_within_bounds_and_round_trip() -> None:
    rng = np.random.default_rng(0)
    real = Real(1e-3, 10.0, log=True)
    xs = real.sample(rng, 500)
    assert min(xs) >= 1e-3 and max(xs) <= 10.0
    assert np.median(np.log10(xs)) == pytest.approx(-1.0, abs=0.3)  # log-uniform
    assert real.decode(real.encode([0.5, 2.0])) == pytest.approx([0.5, 2.0])
    ints = Integer(1, 4)
    draws = ints.sample(rng, 400)
    assert set(draws) == {1, 2, 3, 4} and all(isinstance(v, int) for v in draws)
    assert ints.decode(ints.encode([1, 2, 3, 4])) == [1, 2, 3, 4]
    log_ints = Integer(1, 1000, log=True)
    assert log_ints.decode(log_ints.encode([1, 7, 1000])) == [1, 7, 1000]
    choice = Choice(["als", "sgd", None])
    assert choice.decode(choice.encode([None, "sgd"])) == [None, "sgd"]
    assert set(choice.sample(rng, 100)) == {"als", "sgd", None}


def test_dimension_errors() -> None:
    with pytest.raises(ConfigError, match="Real needs low < high; got low=2, high=1"):
        Real(2, 1)
    with pytest.raises(ConfigError, match="log=True needs low > 0; got low=0"):
        Real(0, 1, log=True)
    with pytest.raises(ConfigError, match="Integer low must be an int; got 0.5"):
        Integer(0.5, 3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Real high must be a finite number; got inf"):
        Real(0, math.inf)
    with pytest.raises(ConfigError, match="at least one option"):
        Choice([])
    with pytest.raises(ConfigError, match="Choice needs a list of options; got 'ab'"):
        Choice("ab")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is not one of the options"):
        Choice([1, 2]).encode([3])


# -- surrogate and acquisition ----------------------------------------------------------------


def test_gp_interpolates_and_is_uncertain_far_from_data() -> None:
    x = np.linspace(0, 0.5, 8)[:, None]
    y = np.sin(6 * x[:, 0])
    gp = _GaussianProcess().fit(x, y, np.random.default_rng(0))
    mean, std = gp.predict(x)
    np.testing.assert_allclose(mean, y, atol=0.05)
    _, std_far = gp.predict(np.array([[1.0]]))
    assert std_far[0] > 5 * std.max()


def test_gp_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    gp = _GaussianProcess()
    gp.x, gp.y = rng.random((12, 3)), rng.normal(size=12)
    for _ in range(3):
        theta = rng.normal(size=5) * 0.5
        numeric = approx_fprime(theta, lambda t: gp._nll(t)[0], 1e-6)
        np.testing.assert_allclose(gp._nll(theta)[1], numeric, rtol=1e-4, atol=1e-5)


def test_expected_improvement_by_formula() -> None:
    ei = expected_improvement(np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 1e-15]), best=1.0,
                              xi=0.0)
    # mean 0, std 1, best 1: z = 1 -> 1 * Phi(1) + phi(1)
    assert ei[0] == pytest.approx(0.8413447460685429 + 0.24197072451914337)
    assert ei[1] == pytest.approx(1 / math.sqrt(2 * math.pi))  # z = 0 -> phi(0)
    assert ei[2] == 0.0  # certain and worse than best


def _toy(p: dict) -> float:  # type: ignore[type-arg]
    return (math.log10(p["x"]) + 2) ** 2 + (p["y"] - 3) ** 2 / 4 + (p["c"] != "b")


def test_bayesian_optimizer_beats_random_on_a_known_function() -> None:
    space = {"x": Real(1e-4, 1.0, log=True), "y": Integer(0, 10), "c": Choice(["a", "b", "c"])}

    def run(n_initial: int) -> BayesianOptimizer:
        opt = BayesianOptimizer(space, n_initial=n_initial, n_candidates=300, random_state=1)
        for _ in range(16):
            point = opt.ask()
            opt.tell(point, _toy(point))
        return opt

    bayes, rand = run(5), run(100)  # n_initial >= trials: pure random search
    assert min(bayes.losses) < 0.1 < min(rand.losses)
    best = bayes.points[int(np.argmin(bayes.losses))]
    assert best["y"] == 3 and best["c"] == "b" and 0.005 < best["x"] < 0.02
    again = run(5)
    assert again.points == bayes.points  # seeded


def test_bayesian_optimizer_tolerates_failed_trials() -> None:
    opt = BayesianOptimizer({"x": Real(0, 1)}, n_initial=2, n_candidates=50, random_state=0)
    for loss in (float("nan"), 1.0, 0.5, float("nan")):
        opt.tell(opt.ask(), loss)
    assert 0.0 <= opt.ask()["x"] <= 1.0
    with pytest.raises(ConfigError, match="search space is empty"):
        BayesianOptimizer({})
    with pytest.raises(ConfigError, match="n_initial must be a positive int; got 0"):
        BayesianOptimizer({"x": Real(0, 1)}, n_initial=0)


# -- searches on a tiny model -----------------------------------------------------------------


def test_grid_search_picks_the_best_validation_score(data: Interactions) -> None:
    grid = {"user_regularization": [0.0, 5.0, 50.0], "item_regularization": [1.0, 20.0]}
    search = GridSearch(BaselineOnly(), grid, scoring="rmse").fit(data)
    table = search.trials_
    assert len(table) == 6 and list(table.index) == [1, 2, 3, 4, 5, 6]
    assert {"user_regularization", "item_regularization", "rmse", "fit_seconds", "error",
            "rank"} <= set(table.columns)
    best = table["rmse"].idxmin()
    assert search.best_score_ == table.loc[best, "rmse"] and table.loc[best, "rank"] == 1
    assert search.best_params_ == {
        "user_regularization": table.loc[best, "user_regularization"],
        "item_regularization": table.loc[best, "item_regularization"],
    }
    # the refit uses all the data passed to fit
    assert search.best_model_.fingerprint_ == data.fingerprint()
    assert search.best_model_.user_regularization == search.best_params_["user_regularization"]


def test_ranking_scores_are_maximised_and_default_scoring(data: Interactions) -> None:
    search = GridSearch(Random(), {"random_state": [1, 2, 3]}, k=5, refit=False).fit(data)
    assert search.metric_key == "ndcg@5"  # default for ranking models
    assert search.best_score_ == search.trials_["ndcg@5"].max()
    assert not hasattr(search, "best_model_")


def test_validation_function_sees_only_the_training_data(data: Interactions) -> None:
    seen: list[Interactions] = []

    def validation(d: Interactions) -> Split:
        seen.append(d)
        return user_holdout(d, test_fraction=0.25, order="time")

    search = RandomSearch(BaselineOnly(), {"item_regularization": Real(0.1, 50.0, log=True)},
                          n_trials=3, validation=validation, refit=False).fit(data)
    assert len(seen) == 1 and seen[0] is data
    assert len(search.trials_) == 3


def test_random_search_is_seeded_and_in_bounds(data: Interactions) -> None:
    space = {"user_regularization": Real(0.01, 100.0, log=True), "method": ["als", "sgd"],
             "n_epochs": Integer(1, 6)}
    a = RandomSearch(BaselineOnly(), space, n_trials=5, random_state=3, refit=False).fit(data)
    b = RandomSearch(BaselineOnly(), space, n_trials=5, random_state=3, refit=False).fit(data)
    cols = ["user_regularization", "method", "n_epochs"]
    assert a.trials_[cols].equals(b.trials_[cols])
    assert a.trials_["n_epochs"].between(1, 6).all()
    assert a.trials_["user_regularization"].between(0.01, 100.0).all()


def test_bayesian_search_on_a_tiny_case(data: Interactions) -> None:
    space = {"user_regularization": Real(0.01, 100.0, log=True),
             "item_regularization": Real(0.01, 100.0, log=True)}
    search = BayesianSearch(BaselineOnly(), space, n_trials=8, n_initial=4).fit(data)
    assert len(search.trials_) == 8 and search.trials_["error"].eq("").all()
    assert search.best_score_ == search.trials_["rmse"].min()
    assert search.best_model_.is_fitted


class _Picky(BaselineOnly):
    """Refuses strong user regularisation at fit time (a combination invalid only in fit)."""

    def _fit(self, data: Interactions) -> None:
        if self.user_regularization is not None and self.user_regularization > 10:
            raise ConfigError("user_regularization > 10 is not supported here")
        super()._fit(data)


def test_failed_trials_are_recorded_not_fatal(data: Interactions) -> None:
    search = GridSearch(_Picky(), {"user_regularization": [1.0, 20.0, 5.0]}).fit(data)
    table = search.trials_
    assert math.isnan(table.loc[2, "rmse"]) and "not supported here" in table.loc[2, "error"]
    assert table.loc[[1, 3], "error"].eq("").all() and pd.isna(table.loc[2, "rank"])
    assert sorted(table.loc[[1, 3], "rank"].tolist()) == [1, 2]
    assert search.best_params_["user_regularization"] in (1.0, 5.0)
    with pytest.raises(ConfigError, match="every trial failed; the first error was: user_reg"):
        GridSearch(_Picky(), {"user_regularization": [20.0, 30.0]}).fit(data)
    sgd_fail = RandomSearch(BaselineOnly(), {"n_epochs": Integer(1, 3)}, n_trials=2,
                            fit_params={"no_such_argument": 1}, refit=False)
    with pytest.raises(ConfigError, match="unexpected argument 'no_such_argument'"):
        sgd_fail.fit(data)


def test_search_errors(data: Interactions) -> None:
    with pytest.raises(ConfigError, match="BaselineOnly has no parameter 'n_factors'"):
        GridSearch(BaselineOnly(), {"n_factors": [1, 2]})
    with pytest.raises(ConfigError, match="method must be one of 'als', 'sgd'; got 'adam'"):
        GridSearch(BaselineOnly(), {"method": ["als", "adam"]})
    with pytest.raises(ConfigError, match="must be a non-empty list of values"):
        GridSearch(BaselineOnly(), {"method": []})
    with pytest.raises(ConfigError, match="search space is empty"):
        GridSearch(BaselineOnly(), {})
    with pytest.raises(ConfigError, match="a continuous Real range does not fit it"):
        RandomSearch(BaselineOnly(), {"n_epochs": Real(1, 5)})
    with pytest.raises(ConfigError, match="user_regularization must be float >= 0"):
        BayesianSearch(BaselineOnly(), {"user_regularization": Real(-1.0, 5.0)})
    with pytest.raises(ConfigError, match="scoring='rmse' needs a rating model"):
        GridSearch(Random(), {"random_state": [1]}, scoring="rmse")
    with pytest.raises(ConfigError, match="unknown scoring 'auc'"):
        GridSearch(BaselineOnly(), {"method": ["als"]}, scoring="auc")
    with pytest.raises(ConfigError, match="scoring='ndcg@5' does not match k=10"):
        GridSearch(BaselineOnly(), {"method": ["als"]}, scoring="ndcg@5")
    with pytest.raises(ConfigError, match="n_trials must be a positive int; got 0"):
        RandomSearch(BaselineOnly(), {"method": ["als"]}, n_trials=0)
    with pytest.raises(ConfigError, match="validation must be a fraction"):
        GridSearch(BaselineOnly(), {"method": ["als"]}, validation="20%")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expects a chuchun Recommender; got str"):
        GridSearch("BaselineOnly", {"method": ["als"]})  # type: ignore[arg-type]
    search = GridSearch(BaselineOnly(), {"method": ["als"]})
    with pytest.raises(DataError, match="expects the training Interactions .* got Split"):
        search.fit(Split(data, data, {}))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="test_fraction must be a number strictly between"):
        GridSearch(BaselineOnly(), {"method": ["als"]}, validation=1.5).fit(data)
    bad_fn = GridSearch(BaselineOnly(), {"method": ["als"]}, validation=lambda d: (d, d))
    with pytest.raises(ConfigError, match="must return a Split; got tuple"):
        bad_fn.fit(data)
