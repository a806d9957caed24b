"""User-level differential privacy for federated training (DP-FedAvg, McMahan et al. 2018).

Each client's whole upload vector :math:`\\Delta_k` is clipped to L2 norm :math:`C`,

.. math:: \\bar\\Delta_k = \\Delta_k \\min\\big(1, C / \\lVert \\Delta_k \\rVert_2\\big),

and the server adds Gaussian noise :math:`\\mathcal N(0, \\sigma^2 C^2 I)` to the sum of the
clipped uploads of the round's cohort, which is drawn by Poisson sampling (every client
independently with probability :math:`q`). Adding or removing one user changes the sum by at
most :math:`C`, so each round is the sampled Gaussian mechanism with noise multiplier
:math:`\\sigma` and sampling rate :math:`q`; :func:`epsilon` composes the rounds with the Rényi
DP accountant of Google's ``dp-accounting`` library (Mironov 2017; Mironov, Talwar & Zhang
2019) and converts to :math:`(\\varepsilon, \\delta)`. Everything computed from the noisy sums
(the item factors, the whole model) is post-processing and carries the same guarantee; the
user factors never leave the clients and are not released.

``dp-accounting`` was chosen over Opacus's accountant because it is the maintained library
behind TensorFlow Privacy, has the sampled-Gaussian RDP and PLD accountants without a torch
dependency, and is small.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from chuchun._exceptions import ConfigError

__all__ = ["add_noise", "clip", "epsilon"]


def clip(update: np.ndarray, clip_norm: float) -> tuple[np.ndarray, bool]:
    """``update`` scaled to L2 norm at most ``clip_norm``; also whether it was scaled."""
    norm = float(np.linalg.norm(update))
    if norm <= clip_norm or norm == 0.0:
        return update, False
    return update * (clip_norm / norm), True


def add_noise(total: np.ndarray, clip_norm: float, noise_multiplier: float,
              rng: np.random.Generator) -> np.ndarray:
    """``total`` plus Gaussian noise of standard deviation ``noise_multiplier * clip_norm``."""
    if noise_multiplier <= 0:
        return total
    return total + rng.normal(0.0, noise_multiplier * clip_norm, size=total.shape)


def epsilon(noise_multiplier: float, sampling_rate: float, n_rounds: int, delta: float) -> float:
    """The :math:`\\varepsilon` at ``delta`` of ``n_rounds`` of the Poisson-sampled Gaussian
    mechanism (RDP accountant of ``dp-accounting``); ``inf`` without noise."""
    if noise_multiplier <= 0 or n_rounds <= 0:
        return math.inf if n_rounds > 0 else 0.0
    if not 0 < delta < 1:
        raise ConfigError(f"delta must lie in (0, 1); got {delta}")
    try:
        import dp_accounting
        from dp_accounting import rdp
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "privacy accounting needs the 'dp-accounting' package; install chuchun[federated]"
        ) from exc
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            float(sampling_rate), dp_accounting.GaussianDpEvent(float(noise_multiplier))),
        int(n_rounds))
    accountant = rdp.RdpAccountant()
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # orders that fail to converge are skipped, with a warning each
    try:
        accountant.compose(event)
        return float(accountant.get_epsilon(float(delta)))
    finally:
        absl.setLevel(level)
