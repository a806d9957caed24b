"""The exception and warning tree of chuchun.

Every error raised on purpose by the library derives from :class:`ChuchunError`, so a caller
can catch the whole family at once, while the built-in base classes (``ValueError``,
``KeyError``, ``AttributeError``) keep working for code that already catches those.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ChuchunError",
    "ChuchunWarning",
    "ConfigError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "NotFittedError",
    "SearchSpaceWarning",
    "UnknownIdError",
]


class ChuchunError(Exception):
    """Base class of every error chuchun raises on purpose."""


class DataError(ChuchunError, ValueError):
    """Input data is malformed: missing columns, NaN ids, ratings off the scale, empty input."""


class ConfigError(ChuchunError, ValueError):
    """A hyperparameter or option is unknown, of the wrong type or out of its range."""


class NotFittedError(ChuchunError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class ArtifactError(ChuchunError):
    """A saved model is truncated, tampered with, of a foreign format or of an unknown class."""


class UnknownIdError(DataError, KeyError):
    """A user or item id is not in the model's vocabulary and the policy says ``"error"``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ChuchunWarning(UserWarning):
    """Base class of chuchun's warnings."""


class DataWarning(ChuchunWarning):
    """Data is usable but suspicious (e.g. test pairs unknown to training)."""


class ConvergenceWarning(ChuchunWarning):
    """An iterative solver stopped before it converged or diverged."""


class SearchSpaceWarning(ChuchunWarning):
    """A combinatorial search (e.g. frequent-itemset mining) is about to explode or was cut short."""
