"""Hyperparameters declared once.

A model declares each hyperparameter as a class attribute::

    class FunkSVD(Recommender):
        n_factors = Param(int, 100, "Number of latent factors.", low=1)

From that one declaration the class gets a keyword-only ``__init__`` (unknown or misspelt names
are a :class:`ConfigError`, never silently dropped), ``get_params`` / ``set_params``, a JSON-able
config for artifacts, CLI option parsing and validation in ``fit``.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Self, overload

from chuchun._exceptions import ConfigError

__all__ = ["HasParams", "Param", "n_threads_param", "random_state_param"]

_MISSING = object()


class Param:
    """Declaration of one hyperparameter.

    Parameters
    ----------
    kind : type or tuple of types
        Accepted Python type(s): ``int``, ``float``, ``bool``, ``str``. ``float`` also accepts
        integers; ``int`` never accepts ``bool``.
    default : object
        Default value (must itself be valid).
    doc : str
        One-line description.
    low, high : float, optional
        Inclusive bounds for numbers (exclusive when ``low_open`` / ``high_open``).
    choices : sequence, optional
        Allowed values.
    nullable : bool
        Whether ``None`` is allowed.
    replaced : dict, optional
        Old values still accepted for one release, with a :class:`DeprecationWarning`, and the
        value each now stands for (e.g. ``{0: None}`` when ``None`` took over from ``0``).
    """

    def __init__(
        self,
        kind: type | tuple[type, ...],
        default: Any,
        doc: str,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        choices: Sequence[Any] | None = None,
        nullable: bool = False,
        replaced: dict[Any, Any] | None = None,
    ) -> None:
        self.kinds: tuple[type, ...] = kind if isinstance(kind, tuple) else (kind,)
        self.default = default
        self.doc = doc
        self.low = low
        self.high = high
        self.low_open = low_open
        self.high_open = high_open
        self.choices = tuple(choices) if choices is not None else None
        self.nullable = nullable
        self.replaced = dict(replaced or {})
        self.name = ""

    def __repr__(self) -> str:
        return f"Param({self.expected()}, default={self.default!r}): {self.doc}"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Param: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Any: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        # Values live in the instance __dict__, which wins over this non-data descriptor;
        # this only runs for class access (returns the declaration) and types values as Any.
        if obj is None:
            return self
        return obj.__dict__.get(self.name, self.default)

    # -- validation ---------------------------------------------------------------------------
    def _type_ok(self, value: Any) -> bool:
        for kind in self.kinds:
            if kind is bool and isinstance(value, bool):
                return True
            if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
                return True
            if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
                return True
            if kind is str and isinstance(value, str):
                return True
            if kind not in (bool, int, float, str) and isinstance(value, kind):
                return True
        return False

    def expected(self) -> str:
        """Human-readable description of the accepted values."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = " or ".join(k.__name__ for k in self.kinds)
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {self.low}")
            if self.high is not None:
                bounds.append(f"{'<' if self.high_open else '<='} {self.high}")
            if bounds:
                text += " " + " and ".join(bounds)
        if self.nullable:
            text += " or None"
        return text

    def validate(self, value: Any) -> None:
        """Raise :class:`ConfigError` when ``value`` is not acceptable."""
        if value is None and self.nullable:
            return
        bad = not self._type_ok(value)
        if not bad and self.choices is not None:
            bad = value not in self.choices
        if not bad and isinstance(value, numbers.Real) and not isinstance(value, bool):
            number = float(value)
            if not math.isfinite(number):
                bad = True  # NaN and infinities are never a setting
            if self.low is not None and (
                number < self.low or (self.low_open and number == self.low)
            ):
                bad = True
            if self.high is not None and (
                number > self.high or (self.high_open and number == self.high)
            ):
                bad = True
        if bad:
            hint = (" (a finite number)" if isinstance(value, numbers.Real)
                    and not math.isfinite(value) else "")
            raise ConfigError(f"{self.name} must be {self.expected()}{hint}; got {value!r}")

    def parse(self, text: str) -> Any:
        """Parse a command-line string into a value of this parameter's type (no ``eval``)."""
        text = text.strip()
        if self.nullable and text.lower() in ("none", "null"):
            return None
        errors = []
        for kind in self.kinds:
            try:
                if kind is bool:
                    low = text.lower()
                    if low in ("true", "1", "yes", "on"):
                        return True
                    if low in ("false", "0", "no", "off"):
                        return False
                    raise ValueError(text)
                if kind is int:
                    return int(text)
                if kind is float:
                    return float(text)
                if kind is str:
                    return text
            except ValueError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{self.name} must be {self.expected()}; got {text!r}")


def random_state_param(doc: str, default: int | None = 0) -> Param:
    """The ``random_state`` declaration every model shares: an int seed, ``None`` (fresh OS
    entropy) or a :class:`numpy.random.Generator` (used as is, so successive fits advance it)."""
    import numpy as np

    return Param((int, np.random.Generator), default,
                 f"{doc} An int seed, None (fresh entropy) or a numpy Generator.",
                 low=0, nullable=True)


def n_threads_param(doc: str, default: int | None = None) -> Param:
    """The ``n_threads`` declaration every model shares: a positive count, or ``None`` for all
    cores (``0``, the former spelling of "all cores", is accepted with a DeprecationWarning)."""
    return Param(int, default, f"{doc} None: all cores.", low=1, nullable=True,
                 replaced={0: None})


class HasParams:
    """Mixin that turns :class:`Param` class attributes into a keyword-only constructor."""

    _params: ClassVar[dict[str, Param]] = {}
    #: old parameter names still accepted for one release (with a DeprecationWarning)
    _renamed_params: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params: dict[str, Param] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Param):
                    params[name] = value
        cls._params = params
        for p in params.values():
            if p.default is not None or not p.nullable:
                p.validate(p.default)
        cls.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=p.default)
                for n, p in params.items()
            ]
        )

    def __init__(self, **params: Any) -> None:
        params = self._upgrade(params)
        self._check_names(params)
        for name, p in self._params.items():
            setattr(self, name, params.get(name, p.default))

    @classmethod
    def _upgrade(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Translate deprecated parameter names and values, warning once per use."""
        out = dict(params)
        for old, new in cls._renamed_params.items():
            if old in out:
                warnings.warn(
                    f"{cls.__name__}: parameter {old!r} is now called {new!r}; the old name "
                    "will be removed in the next release",
                    DeprecationWarning, stacklevel=4,
                )
                value = out.pop(old)
                out.setdefault(new, value)
        for name, value in list(out.items()):
            p = cls._params.get(name)
            if p is None or not p.replaced or isinstance(value, bool):
                continue
            try:
                hit = value in p.replaced
            except TypeError:  # unhashable value: never a replaced one
                hit = False
            if hit:
                warnings.warn(
                    f"{cls.__name__}: {name}={value!r} is deprecated; use "
                    f"{name}={p.replaced[value]!r} (same meaning)",
                    DeprecationWarning, stacklevel=4,
                )
                out[name] = p.replaced[value]
        return out

    @classmethod
    def _check_names(cls, params: dict[str, Any]) -> None:
        for name in params:
            if name not in cls._params:
                hint = difflib.get_close_matches(name, list(cls._params), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                known = ", ".join(cls._params) or "none"
                raise ConfigError(
                    f"{cls.__name__} has no parameter {name!r}{extra} Parameters are: {known}"
                )

    @classmethod
    def param_specs(cls) -> dict[str, Param]:
        """The declared hyperparameters, in declaration order."""
        return dict(cls._params)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Current hyperparameter values (scikit-learn's signature; hyperparameters are plain
        values, so ``deep`` changes nothing)."""
        return {name: getattr(self, name) for name in self._params}

    def set_params(self, **params: Any) -> Self:
        """Set hyperparameters (validated in ``fit``); unknown names are an error."""
        params = self._upgrade(params)
        self._check_names(params)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        for name, p in self._params.items():
            p.validate(getattr(self, name))

    def __repr__(self) -> str:
        changed = [
            f"{n}={getattr(self, n)!r}"
            for n, p in self._params.items()
            if getattr(self, n) != p.default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"
