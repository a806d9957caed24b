"""Building blocks of the models' ``_explain`` hooks: bias terms and history decompositions."""

from __future__ import annotations

from typing import Any

import numpy as np

from chuchun.models._results import Reason

__all__ = ["bias_reasons", "history_reasons", "plain", "ridge_history_weights"]


def plain(x: Any) -> Any:
    """NumPy scalars as Python scalars (ids in reasons are plain values)."""
    return x.item() if isinstance(x, np.generic) else x


def bias_reasons(**terms: float) -> list[Reason]:
    """One ``kind="bias"`` reason per named term, e.g. ``bias_reasons(global_mean=3.5)``
    gives the reason ``"global mean"`` with contribution 3.5."""
    return [
        Reason(kind="bias", id=name.replace("_", " "), contribution=float(value))
        for name, value in terms.items()
    ]


def history_reasons(
    item_ids: np.ndarray, contributions: np.ndarray, **details: np.ndarray
) -> list[Reason]:
    """One ``kind="item"`` reason per history item, with per-item detail arrays."""
    return [
        Reason(
            kind="item",
            id=plain(item_ids[j]),
            contribution=float(contributions[j]),
            detail={name: float(values[j]) for name, values in details.items()},
        )
        for j in range(len(item_ids))
    ]


def ridge_history_weights(
    history_factors: np.ndarray, user_vector: np.ndarray, item_vector: np.ndarray,
    ridge: float = 1e-2,
) -> tuple[np.ndarray, np.ndarray]:
    """Share of the user-item interaction :math:`p_u^T q_i` carried by each history item.

    The user vector is written as a ridge-regularised combination of the factor vectors
    :math:`q_j` of the user's history items,

    .. math:: a = \\arg\\min_a \\lVert p_u - Q_N^T a \\rVert^2 + \\lambda \\lVert a \\rVert^2
              = Q_N (Q_N^T Q_N + \\lambda I)^{-1} p_u,

    so that :math:`p_u^T q_i \\approx \\sum_{j \\in N(u)} a_j\\, q_j^T q_i`; item ``j``
    contributes :math:`a_j q_j^T q_i` (a representer-style decomposition, as the closed-form
    explanation of Hu, Koren & Volinsky 2008, sec. 5, applied to a fitted SGD vector).
    :math:`\\lambda` is ``ridge`` times the mean eigenvalue of :math:`Q_N^T Q_N`, so the weights
    do not depend on the scale of the factors. The part of :math:`p_u` outside the span of the
    history is left unexplained, which is why these models' explanations are not additive.

    Returns ``(contributions, weights)``, both of length ``len(history_factors)``.
    """
    qn = np.asarray(history_factors, dtype=np.float64)
    if qn.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    gram = qn.T @ qn
    lam = ridge * max(float(np.trace(gram)) / gram.shape[0], 1e-12)
    gram[np.diag_indices_from(gram)] += lam
    weights = qn @ np.linalg.solve(gram, np.asarray(user_vector, dtype=np.float64))
    contributions = weights * (qn @ np.asarray(item_vector, dtype=np.float64))
    return contributions, weights
