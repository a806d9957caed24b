"""Rating-prediction error metrics (arrays in, floats out)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chuchun._exceptions import DataError

__all__ = ["mae", "mse", "rmse"]


def _errors(y_true: Any, y_pred: Any) -> np.ndarray:
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise DataError(
            f"length mismatch: {t.shape[0]} true ratings but {p.shape[0]} predictions"
        )
    if t.size == 0:
        raise DataError("cannot compute an error metric on zero ratings")
    bad = ~(np.isfinite(t) & np.isfinite(p))
    if bad.any():
        raise DataError(
            f"ratings and predictions must be finite; got {int(bad.sum())} NaN or infinite "
            "values (score unknown pairs with a fallback or drop them first)"
        )
    return p - t


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error.

    .. math:: \\mathrm{MSE} = \\frac{1}{n} \\sum_{j=1}^{n} (\\hat r_j - r_j)^2

    Raises
    ------
    DataError
        Different lengths, no values, or NaN / infinite values.
    """
    e = _errors(y_true, y_pred)
    return float(np.mean(e * e))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error.

    .. math:: \\mathrm{RMSE} = \\sqrt{\\frac{1}{n} \\sum_{j=1}^{n} (\\hat r_j - r_j)^2}
    """
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error.

    .. math:: \\mathrm{MAE} = \\frac{1}{n} \\sum_{j=1}^{n} |\\hat r_j - r_j|
    """
    return float(np.mean(np.abs(_errors(y_true, y_pred))))
