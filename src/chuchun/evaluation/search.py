"""Hyperparameter search over a model's declared ``Param``\\s: grid, random and Bayesian.

Every search is given *training* data only. It cuts a validation split out of it (by default a
random 20 % hold-out; pass ``validation=`` a fraction or a function returning a
:class:`~chuchun.data.splits.Split`), fits one fresh clone of the model per trial on the
validation split's training part, scores it with :func:`~chuchun.evaluation.evaluate` on the
validation part, and finally refits the best configuration on all the training data. The test
fold of an outer evaluation is therefore never seen by the search.

``scoring`` names a metric of :func:`~chuchun.evaluation.evaluate`: ``"rmse"``, ``"mae"`` and
``"mse"`` are minimised, ranking metrics (``"ndcg"``, ``"precision"``, ... at ``k``) maximised.

:class:`BayesianSearch` runs on Optuna (the ``tune`` extra): the tree-structured Parzen
estimator (TPE) proposes each next configuration from the trials so far (Bergstra, Bardenet,
Bengio & Kégl, "Algorithms for hyper-parameter optimization", NeurIPS 2011; Akiba et al.,
"Optuna: a next-generation hyperparameter optimization framework", KDD 2019), and trials of
models that report per-epoch progress through ``fit(..., callbacks=...)`` are pruned early when
their validation score falls behind the median of earlier trials at the same epoch.
"""

from __future__ import annotations

import abc
import contextlib
import inspect
import itertools
import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Self, cast

import numpy as np
import pandas as pd

from chuchun._exceptions import ChuchunError, ConfigError, DataError
from chuchun._progress import progress
from chuchun._random import RandomState, check_random_state
from chuchun.data.interactions import Interactions
from chuchun.data.splits import Split, holdout
from chuchun.evaluation._evaluate import RATING_METRICS, evaluate
from chuchun.metrics.ranking import RANKING_METRICS
from chuchun.models._base import Recommender, clone

__all__ = [
    "BayesianSearch",
    "Choice",
    "Dimension",
    "GridSearch",
    "Integer",
    "RandomSearch",
    "Real",
]


# -- search spaces -----------------------------------------------------------------------------
class Dimension(abc.ABC):
    """One searchable hyperparameter range.

    Values are encoded into ``n_features`` numbers in ``[0, 1]``; :meth:`decode` maps any point
    of the unit cube back to a valid value. :meth:`to_optuna` gives the matching Optuna
    distribution and :meth:`from_optuna` maps its values back.
    """

    n_features: int = 1

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> list[Any]:
        """``n`` values drawn from the dimension's prior."""

    @abc.abstractmethod
    def encode(self, values: Sequence[Any]) -> np.ndarray:
        """Values -> array ``(len(values), n_features)`` in ``[0, 1]``."""

    @abc.abstractmethod
    def decode(self, unit: np.ndarray) -> list[Any]:
        """Array ``(n, n_features)`` -> the nearest valid values."""

    def values(self) -> list[Any] | None:
        """All values when the dimension is finite, else ``None``."""
        return None

    @abc.abstractmethod
    def to_optuna(self) -> Any:
        """The equivalent ``optuna.distributions`` object."""

    def from_optuna(self, value: Any) -> Any:
        """A value drawn from :meth:`to_optuna`'s distribution, as a value of this dimension."""
        return value


def _check_bounds(low: Any, high: Any, log: bool, who: str, integral: bool) -> None:
    kind = (numbers.Integral,) if integral else (numbers.Real,)
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):
            what = "an int" if integral else "a finite number"
            raise ConfigError(f"{who} {name} must be {what}; got {v!r}")
    if not low < high:
        raise ConfigError(f"{who} needs low < high; got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise ConfigError(f"{who} with log=True needs low > 0; got low={low!r}")


class Real(Dimension):
    """A continuous range ``[low, high]``, uniform or log-uniform (``log=True``)."""

    def __init__(self, low: float, high: float, *, log: bool = False) -> None:
        _check_bounds(low, high, log, "Real", integral=False)
        self.low, self.high, self.log = float(low), float(high), bool(log)

    def _fwd(self, x: np.ndarray) -> np.ndarray:
        return np.log(x) if self.log else x

    def sample(self, rng: np.random.Generator, n: int) -> list[Any]:
        return self.decode(rng.random((n, 1)))

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        lo, hi = self._fwd(np.array([self.low, self.high]))
        return ((self._fwd(x) - lo) / (hi - lo)).reshape(-1, 1)

    def decode(self, unit: np.ndarray) -> list[Any]:
        u = np.clip(np.asarray(unit, dtype=np.float64).reshape(-1), 0.0, 1.0)
        if self.log:
            x = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return [float(v) for v in np.clip(x, self.low, self.high)]

    def to_optuna(self) -> Any:
        return _optuna().distributions.FloatDistribution(self.low, self.high, log=self.log)

    def from_optuna(self, value: Any) -> Any:
        return float(value)

    def __repr__(self) -> str:
        return f"Real({self.low!r}, {self.high!r}{', log=True' if self.log else ''})"


class Integer(Dimension):
    """Integers ``low, ..., high`` (inclusive), uniform or log-uniform (``log=True``)."""

    def __init__(self, low: int, high: int, *, log: bool = False) -> None:
        _check_bounds(low, high, log, "Integer", integral=True)
        self.low, self.high, self.log = int(low), int(high), bool(log)
        # an integer v owns [v - 0.5, v + 0.5) of the continuous range, so each is reachable
        self._real = Real(self.low - 0.5 if not log else self.low * 0.5 ** 0.5,
                          self.high + 0.5 if not log else self.high * 2 ** 0.5, log=log)

    def sample(self, rng: np.random.Generator, n: int) -> list[Any]:
        return self.decode(rng.random((n, 1)))

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        return self._real.encode(values)

    def decode(self, unit: np.ndarray) -> list[Any]:
        x = np.asarray(self._real.decode(unit))
        if self.log:  # round in log space: geometric midpoints between integers
            lo = np.floor(x)
            x = np.where(x >= np.sqrt(lo * (lo + 1)), lo + 1, lo)
        return [int(v) for v in np.clip(np.round(x), self.low, self.high)]

    def values(self) -> list[Any] | None:
        return list(range(self.low, self.high + 1))

    def to_optuna(self) -> Any:
        return _optuna().distributions.IntDistribution(self.low, self.high, log=self.log)

    def from_optuna(self, value: Any) -> Any:
        return int(value)

    def __repr__(self) -> str:
        return f"Integer({self.low!r}, {self.high!r}{', log=True' if self.log else ''})"


class Choice(Dimension):
    """One of a finite set of options (any values: strings, numbers, booleans, ``None``)."""

    def __init__(self, options: Sequence[Any]) -> None:
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
            raise ConfigError(f"Choice needs a list of options; got {options!r}")
        if len(options) == 0:
            raise ConfigError("Choice needs at least one option; got an empty list")
        self.options = list(options)
        self.n_features = len(self.options)

    def _position(self, value: Any) -> int:
        for j, option in enumerate(self.options):
            if option is value or (type(option) is type(value) and option == value):
                return j
        for j, option in enumerate(self.options):  # e.g. numpy scalars read back from a table
            if option == value:
                return j
        raise ConfigError(f"{value!r} is not one of the options {self.options}")

    def sample(self, rng: np.random.Generator, n: int) -> list[Any]:
        return [self.options[j] for j in rng.integers(0, len(self.options), size=n)]

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        out = np.zeros((len(values), self.n_features))
        for r, v in enumerate(values):
            out[r, self._position(v)] = 1.0
        return out

    def decode(self, unit: np.ndarray) -> list[Any]:
        u = np.asarray(unit, dtype=np.float64).reshape(-1, self.n_features)
        return [self.options[j] for j in np.argmax(u, axis=1)]

    def values(self) -> list[Any] | None:
        return list(self.options)

    def to_optuna(self) -> Any:
        # options may be any objects; Optuna stores only plain values, so it sees positions
        # (TPE treats categorical choices as unordered, so nothing is lost)
        return _optuna().distributions.CategoricalDistribution(list(range(len(self.options))))

    def from_optuna(self, value: Any) -> Any:
        return self.options[int(value)]

    def __repr__(self) -> str:
        return f"Choice({self.options!r})"


def _as_dimension(name: str, spec: Any) -> Dimension:
    if isinstance(spec, Dimension):
        return spec
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        return Choice(spec)
    raise ConfigError(
        f"search space for {name!r} must be Real(...), Integer(...), Choice([...]) or a list of "
        f"values; got {spec!r}"
    )


# -- Optuna ----------------------------------------------------------------------------------
def _optuna() -> Any:
    """Import Optuna, or say how to install it."""
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError(
            "BayesianSearch runs on Optuna, which is not installed; install the tune extra: "
            "pip install 'chuchun[tune]' (or pip install optuna)"
        ) from exc
    return optuna


@contextlib.contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    """Silence Optuna's per-trial INFO logging for the duration of a search only."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _seed_of(random_state: RandomState) -> int | None:
    """An integer seed for Optuna's sampler from chuchun's ``random_state``."""
    if random_state is None:
        return None
    rng = check_random_state(random_state)  # validates
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(rng.integers(0, 2**31 - 1))


def _accepts_callbacks(model: Recommender) -> bool:
    return "callbacks" in inspect.signature(model._fit).parameters


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive int; got {value!r}")
    return int(value)


# -- searches ----------------------------------------------------------------------------------
class _Search:
    """Shared machinery: validation split, one trial per configuration, the trial table."""

    def __init__(
        self,
        model: Recommender,
        *,
        scoring: str | None = None,
        k: int = 10,
        validation: float | Callable[[Interactions], Split] = 0.2,
        relevance_threshold: float | None = None,
        refit: bool = True,
        random_state: RandomState = 0,
        fit_params: Mapping[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(model, Recommender):
            raise ConfigError(
                f"{type(self).__name__} expects a chuchun Recommender; got {type(model).__name__}"
            )
        self.model = model
        self.k = _positive_int(k, "k")
        self.scoring, self.metric_key, self.minimize = _parse_scoring(scoring, model, self.k)
        if not (callable(validation) or isinstance(validation, numbers.Real)) or isinstance(
            validation, bool
        ):
            raise ConfigError(
                "validation must be a fraction in (0, 1) or a function taking Interactions and "
                f"returning a Split; got {validation!r}"
            )
        self.validation = validation
        self.relevance_threshold = relevance_threshold
        self.refit = bool(refit)
        self.random_state = random_state
        self.fit_params = dict(fit_params or {})
        self.verbose = verbose

    def _check_names(self, names: Sequence[str]) -> dict[str, Any]:
        specs = type(self.model).param_specs()
        if not names:
            raise ConfigError("the search space is empty; give at least one hyperparameter")
        for name in names:
            if name not in specs:
                raise ConfigError(
                    f"{type(self.model).__name__} has no parameter {name!r}; "
                    f"parameters are: {', '.join(specs)}"
                )
        return specs

    def _validation_split(self, data: Interactions) -> Split:
        if not isinstance(data, Interactions):
            raise DataError(
                f"{type(self).__name__}.fit expects the training Interactions (the search cuts "
                f"its own validation split from them); got {type(data).__name__}"
            )
        if callable(self.validation):
            split = self.validation(data)
            if not isinstance(split, Split):
                raise ConfigError(
                    f"the validation function must return a Split; got {type(split).__name__}"
                )
            return split
        return holdout(data, test_fraction=self.validation, random_state=self.random_state)

    def _trial(self, params: Mapping[str, Any], split: Split) -> dict[str, Any]:
        row: dict[str, Any] = dict(params)
        try:
            model = clone(self.model).set_params(**params)
            result = evaluate(
                model,
                split,
                metrics=[self.scoring],
                k=self.k,
                relevance_threshold=self.relevance_threshold,
                fit_params=self.fit_params,
            )
        except ChuchunError as exc:  # an invalid combination fails one trial, not the search
            row.update({self.metric_key: float("nan"), "fit_seconds": float("nan"),
                        "error": str(exc)})
            return row
        row.update({self.metric_key: result[self.metric_key],
                    "fit_seconds": result.get("fit_seconds", float("nan")), "error": ""})
        return row

    def _loss(self, row: Mapping[str, Any]) -> float:
        value = float(row[self.metric_key])
        return value if self.minimize else -value

    def _finish(self, rows: list[dict[str, Any]], data: Interactions, names: list[str]) -> Self:
        table = pd.DataFrame(rows)
        table.index = pd.RangeIndex(1, len(table) + 1, name="trial")
        scores = table[self.metric_key].astype(float)
        if "state" in table:  # pruned trials stopped early: their scores are not comparable
            scores = scores.where(table["state"] == "complete")
        if scores.isna().all():
            raise ConfigError(
                f"every trial failed; the first error was: {table['error'].iloc[0]}"
            )
        table["rank"] = scores.rank(ascending=self.minimize, method="min").astype("Int64")
        self.trials_ = table
        best = int(cast(Any, scores.idxmin() if self.minimize else scores.idxmax()))
        self.best_params_ = {n: _plain(rows[best - 1][n]) for n in names}
        self.best_score_ = float(scores.loc[best])
        if self.refit:
            self.best_model_ = clone(self.model).set_params(**self.best_params_)
            self.best_model_.fit(data, **self.fit_params)
        return self


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _parse_scoring(scoring: Any, model: Recommender, k: int) -> tuple[str, str, bool]:
    if scoring is None:
        scoring = "rmse" if model.predicts_ratings else "ndcg"
    if not isinstance(scoring, str):
        raise ConfigError(f"scoring must be a metric name; got {scoring!r}")
    name = scoring.lower().split("@")[0]
    if name in RATING_METRICS:
        if not model.predicts_ratings:
            raise ConfigError(
                f"scoring={scoring!r} needs a rating model; {type(model).__name__} does not "
                f"predict ratings (use a ranking metric: {list(RANKING_METRICS)})"
            )
        return name, name, True
    if name in RANKING_METRICS:
        if "@" in scoring and scoring.split("@")[1] != str(k):
            raise ConfigError(f"scoring={scoring!r} does not match k={k}")
        return name, f"{name}@{k}", False
    raise ConfigError(
        f"unknown scoring {scoring!r}; use one of {list(RATING_METRICS + RANKING_METRICS)}"
    )


class GridSearch(_Search):
    """Exhaustive search over every combination of the listed values.

    Parameters
    ----------
    model : Recommender
        Template; each trial fits a clone with some parameters replaced.
    param_grid : mapping of str to list
        Values per hyperparameter (each checked against the model's ``Param`` up front).
    scoring : str, optional
        Metric to optimise (see the module docstring); default ``"rmse"`` for rating models,
        ``"ndcg"`` (at ``k``) for the others.
    k : int
        List length for ranking metrics.
    validation : float or callable
        Fraction of the training data held out at random for validation, or a function
        ``Interactions -> Split`` (e.g. ``lambda d: user_holdout(d, order="time")``).
    relevance_threshold : float, optional
        Passed to :func:`~chuchun.evaluation.evaluate`.
    refit : bool
        Refit the best configuration on all the data given to :meth:`fit`.
    random_state : int, Generator or None
        Seed of the validation hold-out.
    fit_params : mapping, optional
        Extra keyword arguments for ``model.fit``.
    verbose : bool
        Progress bar over trials.

    Attributes
    ----------
    trials_ : pandas.DataFrame
        One row per trial: the parameters, the score, ``fit_seconds``, ``error`` (empty when
        the trial ran) and ``rank`` (1 = best).
    best_params_ : dict
    best_score_ : float
    best_model_ : Recommender
        The best configuration refitted on all the data (when ``refit``).
    """

    def __init__(self, model: Recommender, param_grid: Mapping[str, Sequence[Any]],
                 **options: Any) -> None:
        super().__init__(model, **options)
        specs = self._check_names(list(param_grid))
        grid: dict[str, list[Any]] = {}
        for name, values in param_grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ConfigError(
                    f"param_grid[{name!r}] must be a non-empty list of values; got {values!r}"
                )
            for v in values:
                specs[name].validate(v)
            grid[name] = list(values)
        self.param_grid = grid

    def fit(self, data: Interactions) -> Self:
        """Run every combination on a validation split of ``data``; returns ``self``."""
        split = self._validation_split(data)
        names = list(self.param_grid)
        combos = list(itertools.product(*self.param_grid.values()))
        rows = [
            self._trial(dict(zip(names, combo, strict=True)), split)
            for combo in progress(combos, total=len(combos), desc="grid", verbose=self.verbose)
        ]
        return self._finish(rows, data, names)


class RandomSearch(_Search):
    """``n_trials`` configurations drawn at random from the given distributions.

    ``param_distributions`` maps each hyperparameter to a :class:`Real`, :class:`Integer`,
    :class:`Choice` or a plain list (a uniform choice). Other options and the fitted
    attributes are as in :class:`GridSearch`; ``random_state`` also seeds the draws.
    """

    def __init__(self, model: Recommender, param_distributions: Mapping[str, Any],
                 n_trials: int = 20, **options: Any) -> None:
        super().__init__(model, **options)
        specs = self._check_names(list(param_distributions))
        self.space = {n: _as_dimension(n, d) for n, d in param_distributions.items()}
        _check_space(self.space, specs)
        self.n_trials = _positive_int(n_trials, "n_trials")

    def fit(self, data: Interactions) -> Self:
        """Run ``n_trials`` random configurations on a validation split; returns ``self``."""
        split = self._validation_split(data)
        rng = check_random_state(self.random_state)
        draws = {n: d.sample(rng, self.n_trials) for n, d in self.space.items()}
        rows = []
        for t in progress(range(self.n_trials), total=self.n_trials, desc="random",
                          verbose=self.verbose):
            rows.append(self._trial({n: draws[n][t] for n in self.space}, split))
        return self._finish(rows, data, list(self.space))


class BayesianSearch(_Search):
    """Sequential model-based search on Optuna: TPE proposals and pruning of weak trials.

    ``space`` is as ``param_distributions`` in :class:`RandomSearch`. The first ``n_initial``
    trials are drawn at random; each later one is proposed by the ``sampler`` from all trials
    so far. Trials run exactly as in the other searches (a clone fitted on the validation
    split's training part, scored on its validation part).

    Pruning (``pruner="median"``): when the model reports per-epoch progress (its ``fit`` takes ``callbacks``, e.g.
    :class:`~chuchun.models.FunkSVD`, :class:`~chuchun.models.SVDpp`,
    :class:`~chuchun.models.ALS`), the trial's ``scoring`` metric is measured on the validation
    part after epochs 1, 2, 4, 8, ... (each check is a full validation pass) and reported to
    the ``pruner``; a trial it prunes stops fitting, is recorded with ``state == "pruned"`` and
    the score of its last check, and is never chosen as best. Other models run every trial to
    the end.

    Parameters
    ----------
    model, space, n_trials
        As in :class:`RandomSearch`.
    n_initial : int
        Random start-up trials before the sampler models the results (TPE's
        ``n_startup_trials``; also the trials the median pruner waits for).
    sampler : {"tpe", "random"} or optuna sampler
        ``"tpe"`` (default): :class:`optuna.samplers.TPESampler`; ``"random"``: Optuna's random
        sampler; or any ``optuna.samplers.BaseSampler`` (then seeding is up to it).
    pruner : {"median"} or optuna pruner or None
        ``None`` (default): every trial runs to the end; ``"median"``:
        :class:`optuna.pruners.MedianPruner` (after ``n_initial`` complete trials and one
        warm-up epoch). Pruning pays when an epoch costs much more than a validation pass; it
        is off by default because it also stops slow starters (small learning rates) that
        would have ended best (see ``benchmarks/results/search.md``).
    **options
        ``scoring``, ``k``, ``validation``, ``relevance_threshold``, ``refit``,
        ``random_state`` (also seeds the sampler), ``fit_params``, ``verbose``: as in
        :class:`GridSearch`.

    Attributes
    ----------
    trials_, best_params_, best_score_, best_model_
        As in :class:`GridSearch`; ``trials_`` also has ``state`` (``"complete"``,
        ``"pruned"`` or ``"failed"``) and ``epochs`` (epochs run, for models with callbacks).
    study_ : optuna.Study
        The Optuna study (every trial with its intermediate values).

    Raises
    ------
    ConfigError
        When Optuna is not installed (install the ``tune`` extra).
    """

    def __init__(self, model: Recommender, space: Mapping[str, Any], n_trials: int = 20,
                 n_initial: int = 5, *, sampler: Any = "tpe", pruner: Any = None,
                 **options: Any) -> None:
        super().__init__(model, **options)
        optuna = _optuna()
        specs = self._check_names(list(space))
        self.space = {n: _as_dimension(n, d) for n, d in space.items()}
        _check_space(self.space, specs)
        self.n_trials = _positive_int(n_trials, "n_trials")
        self.n_initial = _positive_int(n_initial, "n_initial")
        if not (sampler in ("tpe", "random")
                or isinstance(sampler, optuna.samplers.BaseSampler)):
            raise ConfigError(
                f"sampler must be 'tpe', 'random' or an optuna sampler; got {sampler!r}"
            )
        if not (pruner is None or pruner == "median"
                or isinstance(pruner, optuna.pruners.BasePruner)):
            raise ConfigError(
                f"pruner must be 'median', None or an optuna pruner; got {pruner!r}"
            )
        self.sampler = sampler
        self.pruner = pruner

    def _make_study(self, optuna: Any) -> Any:
        seed = _seed_of(self.random_state)
        if self.sampler == "tpe":
            sampler = optuna.samplers.TPESampler(n_startup_trials=self.n_initial, seed=seed)
        elif self.sampler == "random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        else:
            sampler = self.sampler
        if self.pruner == "median":
            pruner = optuna.pruners.MedianPruner(n_startup_trials=self.n_initial,
                                                 n_warmup_steps=1)
        elif self.pruner is None:
            pruner = optuna.pruners.NopPruner()
        else:
            pruner = self.pruner
        return optuna.create_study(direction="minimize" if self.minimize else "maximize",
                                   sampler=sampler, pruner=pruner)

    def fit(self, data: Interactions) -> Self:
        """Run ``n_trials`` sequential trials on a validation split; returns ``self``."""
        optuna = _optuna()
        split = self._validation_split(data)
        distributions = {n: d.to_optuna() for n, d in self.space.items()}
        prunable = self.pruner is not None and _accepts_callbacks(self.model)
        rows = []
        with _quiet_optuna(optuna):
            study = self._make_study(optuna)
            for _ in progress(range(self.n_trials), total=self.n_trials, desc="bayes",
                              verbose=self.verbose):
                trial = study.ask(distributions)
                params = {n: d.from_optuna(trial.params[n]) for n, d in self.space.items()}
                if prunable:
                    row = self._pruned_trial(params, split, trial)
                else:
                    row = self._trial(params, split)
                    row["state"] = "complete" if not row["error"] else "failed"
                rows.append(row)
                if row["state"] == "complete":
                    study.tell(trial, float(row[self.metric_key]))
                elif row["state"] == "pruned":
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.study_ = study
        return self._finish(rows, data, list(self.space))

    def _pruned_trial(self, params: Mapping[str, Any], split: Split,
                      trial: Any) -> dict[str, Any]:
        """One trial whose model reports each epoch: score the validation part after every
        epoch, report it to the pruner, stop the fit when the pruner says so."""
        row: dict[str, Any] = dict(params)
        state = {"pruned": False, "epochs": 0, "last": float("nan")}

        def report(model: Recommender, epoch: int, logs: Mapping[str, float]) -> bool:
            state["epochs"] = epoch + 1
            if (epoch + 1) & epoch:  # score after epochs 1, 2, 4, 8, ... only: each costs
                return False         # a full validation pass
            value = evaluate(model, split, metrics=[self.scoring], k=self.k, fit=False,
                             relevance_threshold=self.relevance_threshold)[self.metric_key]
            state["last"] = value
            trial.report(float(value), epoch)
            if trial.should_prune():
                state["pruned"] = True
                return True
            return False

        fit_params = dict(self.fit_params)
        fit_params["callbacks"] = [*fit_params.get("callbacks", []), report]
        try:
            model = clone(self.model).set_params(**params)
            start = time.perf_counter()
            model.fit(split.train, **fit_params)
            fit_seconds = time.perf_counter() - start
            if state["pruned"]:
                score = float(state["last"])
            else:
                score = evaluate(model, split, metrics=[self.scoring], k=self.k, fit=False,
                                 relevance_threshold=self.relevance_threshold)[self.metric_key]
        except ChuchunError as exc:
            row.update({self.metric_key: float("nan"), "fit_seconds": float("nan"),
                        "error": str(exc), "state": "failed", "epochs": state["epochs"]})
            return row
        row.update({self.metric_key: score, "fit_seconds": fit_seconds, "error": "",
                    "state": "pruned" if state["pruned"] else "complete",
                    "epochs": state["epochs"]})
        return row


def _check_space(space: Mapping[str, Dimension], specs: Mapping[str, Any]) -> None:
    """Check every dimension can only produce values its ``Param`` accepts."""
    for name, dim in space.items():
        spec = specs[name]
        if isinstance(dim, Real) and float not in spec.kinds:
            raise ConfigError(
                f"{name} takes {spec.expected()}; a continuous Real range does not fit it "
                "(use Integer or Choice)"
            )
        ends = [dim.low, dim.high] if isinstance(dim, (Real, Integer)) else dim.values()
        for v in ends or []:
            spec.validate(v)
        if isinstance(dim, Integer) and int not in spec.kinds and float not in spec.kinds:
            raise ConfigError(f"{name} takes {spec.expected()}; an Integer range does not fit it")
