"""Hyperparameter search over a model's declared ``Param``\\s: grid, random and Bayesian.

Every search is given *training* data only. It cuts a validation split out of it (by default a
random 20 % hold-out; pass ``validation=`` a fraction or a function returning a
:class:`~chuchun.data.splits.Split`), fits one fresh clone of the model per trial on the
validation split's training part, scores it with :func:`~chuchun.evaluation.evaluate` on the
validation part, and finally refits the best configuration on all the training data. The test
fold of an outer evaluation is therefore never seen by the search.

``scoring`` names a metric of :func:`~chuchun.evaluation.evaluate`: ``"rmse"``, ``"mae"`` and
``"mse"`` are minimised, ranking metrics (``"ndcg"``, ``"precision"``, ... at ``k``) maximised.

:class:`BayesianSearch` fits a Gaussian-process surrogate (Matérn 5/2 kernel with one length
scale per encoded dimension, hyperparameters by maximum marginal likelihood) to the trials so
far and picks the next configuration by expected improvement (Jones, Schonlau & Welch, "Efficient
global optimization of expensive black-box functions", J. Global Optim. 13, 1998; Snoek,
Larochelle & Adams, "Practical Bayesian optimization of machine learning algorithms",
NeurIPS 2012).
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy.optimize import minimize
from scipy.stats import norm

from chuchun._exceptions import ChuchunError, ConfigError, DataError
from chuchun._progress import progress
from chuchun._random import RandomState, check_random_state
from chuchun.data.interactions import Interactions
from chuchun.data.splits import Split, holdout
from chuchun.evaluation._evaluate import RATING_METRICS, evaluate
from chuchun.metrics.ranking import RANKING_METRICS
from chuchun.models._base import Recommender, clone

__all__ = [
    "BayesianOptimizer",
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

    Values are encoded into ``n_features`` numbers in ``[0, 1]`` for the surrogate model;
    :meth:`decode` maps any point of the unit cube back to a valid value.
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


# -- Gaussian-process surrogate and expected improvement -------------------------------------
def _matern52(a: np.ndarray, b: np.ndarray, lengths: np.ndarray, variance: float) -> np.ndarray:
    """Matérn 5/2 kernel :math:`\\sigma^2 (1 + \\sqrt5 r + \\tfrac53 r^2) e^{-\\sqrt5 r}` with
    :math:`r^2 = \\sum_d (a_d - b_d)^2 / \\ell_d^2`."""
    d = (a[:, None, :] - b[None, :, :]) / lengths
    r = np.sqrt(np.maximum((d * d).sum(axis=-1), 0.0))
    s5r = math.sqrt(5.0) * r
    return variance * (1.0 + s5r + 5.0 / 3.0 * r * r) * np.exp(-s5r)


class _GaussianProcess:
    """GP regression on standardised targets; hyperparameters by maximum likelihood."""

    # bounds of log length scale, log signal variance, log noise variance
    _BOUNDS = ((math.log(0.03), math.log(5.0)), (math.log(0.05), math.log(20.0)),
               (math.log(1e-6), math.log(0.5)))

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> _GaussianProcess:
        self.x = x
        self.y_mean = float(y.mean())
        self.y_std = float(y.std()) or 1.0
        self.y = (y - self.y_mean) / self.y_std
        dim = x.shape[1]
        bounds = [self._BOUNDS[0]] * dim + [self._BOUNDS[1], self._BOUNDS[2]]
        starts = [np.r_[np.full(dim, math.log(0.5)), 0.0, math.log(1e-3)]]
        starts += [np.array([rng.uniform(lo, hi) for lo, hi in bounds]) for _ in range(2)]
        best: tuple[float, np.ndarray] | None = None
        for theta0 in starts:
            res = minimize(self._nll, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 200})
            if np.isfinite(res.fun) and (best is None or res.fun < best[0]):
                best = (float(res.fun), res.x)
        theta = best[1] if best is not None else starts[0]
        self._set(theta)
        return self

    def _set(self, theta: np.ndarray) -> None:
        dim = self.x.shape[1]
        self.lengths = np.exp(theta[:dim])
        self.variance = float(np.exp(theta[dim]))
        self.noise = float(np.exp(theta[dim + 1]))
        k = _matern52(self.x, self.x, self.lengths, self.variance)
        k[np.diag_indices_from(k)] += self.noise + 1e-9
        self.chol = sla.cho_factor(k, lower=True)
        self.alpha = sla.cho_solve(self.chol, self.y)

    def _nll(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log marginal likelihood (up to a constant) and its gradient in ``theta``.

        With :math:`W = K^{-1} - \\alpha\\alpha^T`,
        :math:`\\partial\\,\\mathrm{NLL} / \\partial\\theta
        = \\tfrac12 \\mathrm{tr}(W\\,\\partial K/\\partial\\theta)`; for the Matérn 5/2
        kernel :math:`\\partial k / \\partial \\log\\ell_d = \\sigma^2 \\tfrac53 (1 + \\sqrt5 r)
        e^{-\\sqrt5 r} \\Delta_d^2 / \\ell_d^2` (Rasmussen & Williams 2006, eq. 5.9).
        """
        dim = self.x.shape[1]
        lengths = np.exp(theta[:dim])
        variance = float(np.exp(theta[dim]))
        noise = float(np.exp(theta[dim + 1]))
        sq = ((self.x[:, None, :] - self.x[None, :, :]) / lengths) ** 2  # (n, n, dim)
        r = np.sqrt(sq.sum(axis=-1))
        e = np.exp(-math.sqrt(5.0) * r)
        k_f = variance * (1.0 + math.sqrt(5.0) * r + 5.0 / 3.0 * r * r) * e
        k = k_f + (noise + 1e-9) * np.eye(len(r))
        try:
            c, low = sla.cho_factor(k, lower=True)
        except np.linalg.LinAlgError:
            return 1e25, np.zeros_like(theta)
        alpha = sla.cho_solve((c, low), self.y)
        nll = float(0.5 * self.y @ alpha + np.log(np.diag(c)).sum())
        w = sla.cho_solve((c, low), np.eye(len(r))) - np.outer(alpha, alpha)
        g_len = 0.5 * np.einsum("ij,ijd->d", w * (variance * 5.0 / 3.0 * (1.0 + math.sqrt(5.0) * r)
                                                  * e), sq)
        grad = np.r_[g_len, 0.5 * (w * k_f).sum(), 0.5 * noise * np.trace(w)]
        return nll, grad

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation, in the original units of ``y``."""
        ks = _matern52(x, self.x, self.lengths, self.variance)
        mean = ks @ self.alpha
        v = sla.cho_solve(self.chol, ks.T)
        var = np.maximum(self.variance - (ks * v.T).sum(axis=1), 1e-12)
        return mean * self.y_std + self.y_mean, np.sqrt(var) * self.y_std


def _single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS to one thread while fitting the surrogate: its matrices are tiny and
    multi-threaded BLAS makes each call several times slower (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed-up
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def expected_improvement(
    mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.01
) -> np.ndarray:
    """Expected improvement below ``best`` for a minimisation problem.

    .. math:: \\mathrm{EI}(x) = (f^* - \\mu(x) - \\xi)\\,\\Phi(z) + \\sigma(x)\\,\\varphi(z),
              \\qquad z = \\frac{f^* - \\mu(x) - \\xi}{\\sigma(x)}
    """
    std = np.maximum(std, 1e-12)
    gap = best - mean - xi
    z = gap / std
    return np.maximum(gap * norm.cdf(z) + std * norm.pdf(z), 0.0)


class BayesianOptimizer:
    """Ask/tell minimiser over a dict of :class:`Dimension`\\s with a GP surrogate and EI.

    The first ``n_initial`` points are drawn at random from the space; after that each
    :meth:`ask` fits the GP to every told (point, loss) and returns the candidate with the
    largest expected improvement among ``n_candidates`` random points and as many Gaussian
    perturbations of the best points so far (encoded in the unit cube, then decoded to valid
    values, so integers and choices stay discrete). Failed trials (``loss`` NaN) are told as
    the worst loss seen so far.
    """

    def __init__(
        self,
        space: Mapping[str, Dimension],
        *,
        n_initial: int = 5,
        n_candidates: int = 1000,
        xi: float = 0.01,
        random_state: RandomState = 0,
    ) -> None:
        if not space:
            raise ConfigError("the search space is empty; give at least one dimension")
        self.space = {name: _as_dimension(name, d) for name, d in space.items()}
        self.n_initial = _positive_int(n_initial, "n_initial")
        self.n_candidates = _positive_int(n_candidates, "n_candidates")
        self.xi = float(xi)
        self.rng = check_random_state(random_state)
        self.points: list[dict[str, Any]] = []
        self.losses: list[float] = []

    def _encode(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.hstack([d.encode([p[n] for p in points]) for n, d in self.space.items()])

    def _decode(self, unit: np.ndarray) -> list[dict[str, Any]]:
        cols, start = {}, 0
        for name, d in self.space.items():
            cols[name] = d.decode(unit[:, start : start + d.n_features])
            start += d.n_features
        return [{n: cols[n][r] for n in self.space} for r in range(unit.shape[0])]

    def _random(self, n: int) -> list[dict[str, Any]]:
        cols = {name: d.sample(self.rng, n) for name, d in self.space.items()}
        return [{name: cols[name][r] for name in self.space} for r in range(n)]

    def ask(self) -> dict[str, Any]:
        """The next point to evaluate."""
        finite = [v for v in self.losses if math.isfinite(v)]
        if len(self.points) < self.n_initial or len(finite) < 2:
            return self._random(1)[0]
        worst = max(finite)
        y = np.array([v if math.isfinite(v) else worst for v in self.losses])
        x = self._encode(self.points)
        with _single_threaded_blas():
            gp = _GaussianProcess().fit(x, y, self.rng)
        best_rows = x[np.argsort(y)[: min(5, len(y))]]
        local = best_rows[self.rng.integers(0, len(best_rows), self.n_candidates)]
        local = np.clip(local + self.rng.normal(0.0, 0.1, local.shape), 0.0, 1.0)
        candidates = self._random(self.n_candidates) + self._decode(local)
        cx = self._encode(candidates)
        mean, std = gp.predict(cx)
        ei = expected_improvement(mean, std, float(y.min()), self.xi)
        seen = {tuple(np.round(row, 9)) for row in x}
        fresh = np.array([tuple(np.round(row, 9)) not in seen for row in cx])
        if fresh.any():
            ei = np.where(fresh, ei, -1.0)
        return candidates[int(np.argmax(ei))]

    def tell(self, point: Mapping[str, Any], loss: float) -> None:
        """Record the loss (lower is better; NaN for a failed trial) of ``point``."""
        self.points.append(dict(point))
        self.losses.append(float(loss))


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
        if scores.isna().all():
            raise ConfigError(
                f"every trial failed; the first error was: {table['error'].iloc[0]}"
            )
        table["rank"] = scores.rank(ascending=self.minimize, method="min").astype("Int64")
        self.trials_ = table
        best = int(str(scores.idxmin() if self.minimize else scores.idxmax()))
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
    """Sequential model-based search: a GP surrogate with expected improvement.

    ``space`` is as ``param_distributions`` in :class:`RandomSearch`. The first ``n_initial``
    trials are random; each later one maximises expected improvement under a Gaussian process
    fitted to the trials so far (see :class:`BayesianOptimizer`). Other options and the fitted
    attributes are as in :class:`GridSearch`; ``random_state`` also seeds the optimiser.
    """

    def __init__(self, model: Recommender, space: Mapping[str, Any], n_trials: int = 20,
                 n_initial: int = 5, **options: Any) -> None:
        super().__init__(model, **options)
        specs = self._check_names(list(space))
        self.space = {n: _as_dimension(n, d) for n, d in space.items()}
        _check_space(self.space, specs)
        self.n_trials = _positive_int(n_trials, "n_trials")
        self.n_initial = _positive_int(n_initial, "n_initial")

    def fit(self, data: Interactions) -> Self:
        """Run ``n_trials`` sequential trials on a validation split; returns ``self``."""
        split = self._validation_split(data)
        opt = BayesianOptimizer(self.space, n_initial=self.n_initial,
                                random_state=check_random_state(self.random_state))
        rows = []
        for _ in progress(range(self.n_trials), total=self.n_trials, desc="bayes",
                          verbose=self.verbose):
            params = opt.ask()
            row = self._trial(params, split)
            rows.append(row)
            opt.tell(params, self._loss(row))
        return self._finish(rows, data, list(self.space))


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
