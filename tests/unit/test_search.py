"""Hyperparameter search: spaces, the Optuna engine, and the three searches on tiny data."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from chuchun import ConfigError, DataError, DataWarning, Interactions
from chuchun.data.splits import Split, user_holdout
from chuchun.evaluation import (
    BayesianSearch,
    Choice,
    GridSearch,
    Integer,
    RandomSearch,
    Real,
    evaluate,
)
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


# -- the Optuna engine ------------------------------------------------------------------------


def test_dimensions_map_to_optuna_distributions() -> None:
    import optuna

    real = Real(1e-3, 1.0, log=True).to_optuna()
    assert isinstance(real, optuna.distributions.FloatDistribution) and real.log
    ints = Integer(2, 9).to_optuna()
    assert isinstance(ints, optuna.distributions.IntDistribution)
    assert (ints.low, ints.high, ints.log) == (2, 9, False)
    marker = object()
    choice = Choice(["als", None, marker])
    assert choice.to_optuna().choices == (0, 1, 2)
    assert [choice.from_optuna(j) for j in (0, 1, 2)] == ["als", None, marker]


def _ratings(n_users: int = 60, n_items: int = 40, seed: int = 0) -> Interactions:
    """Low-rank ratings on a 1-5 scale, 40 % of the pairs observed."""
    rng = np.random.default_rng(seed)
    p, q = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    u, i = np.nonzero(rng.random((n_users, n_items)) < 0.4)
    r = np.clip(np.round(3 + (p[u] * q[i]).sum(axis=1) + rng.normal(0, 0.3, len(u))), 1, 5)
    frame = pd.DataFrame({"user": u, "item": i, "rating": r})
    return Interactions.from_pandas(frame, rating_scale=(1.0, 5.0))


def test_bayesian_search_is_seeded_and_uses_tpe(data: Interactions) -> None:
    import optuna

    space = {"user_regularization": Real(0.01, 100.0, log=True), "method": ["als", "sgd"]}
    a = BayesianSearch(BaselineOnly(), space, n_trials=7, n_initial=3, random_state=5,
                       refit=False).fit(data)
    b = BayesianSearch(BaselineOnly(), space, n_trials=7, n_initial=3, random_state=5,
                       refit=False).fit(data)
    cols = ["user_regularization", "method", "rmse"]
    assert a.trials_[cols].equals(b.trials_[cols])
    assert isinstance(a.study_.sampler, optuna.samplers.TPESampler)
    assert len(a.study_.trials) == 7 and a.trials_["state"].eq("complete").all()
    c = BayesianSearch(BaselineOnly(), space, n_trials=7, n_initial=3, random_state=6,
                       refit=False).fit(data)
    assert not a.trials_[cols].equals(c.trials_[cols])


def test_tpe_finds_a_better_region_than_its_random_start(data: Interactions) -> None:
    # user/item regularisation of BaselineOnly: the optimum is a small interior region
    space = {"user_regularization": Real(0.01, 1000.0, log=True),
             "item_regularization": Real(0.01, 1000.0, log=True)}
    search = BayesianSearch(BaselineOnly(), space, n_trials=24, n_initial=6, random_state=0,
                            refit=False).fit(data)
    scores = search.trials_["rmse"].to_numpy()
    assert scores[6:].mean() < scores[:6].mean()  # proposals beat the random start-up draws


def test_pruning_stops_weak_trials_through_the_model_callbacks() -> None:
    from chuchun.models import FunkSVD

    ratings = _ratings()
    space = {"learning_rate": Real(1e-4, 0.05, log=True)}
    model = FunkSVD(n_factors=4, n_epochs=12, random_state=0)
    search = BayesianSearch(model, space, n_trials=14, n_initial=3, random_state=0,
                            pruner="median", refit=False).fit(ratings)
    table = search.trials_
    pruned = table[table["state"] == "pruned"]
    assert len(pruned) >= 1 and (pruned["epochs"] < 12).all()
    assert (table.loc[table["state"] == "complete", "epochs"] == 12).all()
    assert search.trials_.loc[search.trials_["rank"] == 1, "state"].item() == "complete"
    assert pruned["rank"].isna().all()  # never chosen
    states = {t.state.name for t in search.study_.trials}
    assert states == {"COMPLETE", "PRUNED"}
    # intermediate values: the validation RMSE after epochs 1, 2, 4 and 8
    first = search.study_.trials[0]
    assert sorted(first.intermediate_values) == [0, 1, 3, 7]
    check = FunkSVD(n_factors=4, n_epochs=8, random_state=0,
                    learning_rate=table.loc[1, "learning_rate"])
    split = search._validation_split(ratings)
    assert first.intermediate_values[7] == pytest.approx(
        evaluate(check, split, metrics=["rmse"])["rmse"])
    unpruned = BayesianSearch(model, space, n_trials=5, n_initial=3, refit=False).fit(ratings)
    assert unpruned.trials_["state"].eq("complete").all()


def test_without_optuna_the_search_says_how_to_install_it(
    data: Interactions, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    with pytest.raises(ConfigError, match=r"install the tune extra: pip install 'chuchun\[tune\]'"):
        BayesianSearch(BaselineOnly(), {"user_regularization": Real(0.1, 1.0)})
    # grid and random search need nothing extra
    GridSearch(BaselineOnly(), {"method": ["als"]}, refit=False).fit(data)


def test_bayesian_search_option_errors() -> None:
    space = {"user_regularization": Real(0.1, 1.0)}
    with pytest.raises(ConfigError, match="sampler must be 'tpe', 'random' or an optuna"):
        BayesianSearch(BaselineOnly(), space, sampler="gp")
    with pytest.raises(ConfigError, match="pruner must be 'median', None or an optuna pruner"):
        BayesianSearch(BaselineOnly(), space, pruner="hyperband")


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
