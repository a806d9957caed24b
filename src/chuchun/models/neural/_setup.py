"""What MultVAE and LightGCN share around their training loops: the binary interaction matrix,
the torch set-up of a fit, the per-epoch callbacks and the cosine item similarities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import DataError
from chuchun._random import check_random_state
from chuchun.models.neural._epochs import EpochCallback, check_callbacks

__all__ = ["FitSetup", "binary_interactions", "cosine_similarities", "fit_setup",
           "notify_callbacks"]


def binary_interactions(csr: sp.csr_matrix, model: str) -> sp.csr_matrix:
    """``csr`` as a float32 0/1 matrix with sorted indices (stored zeros dropped); negative
    values are a :class:`DataError` naming ``model``."""
    x = sp.csr_matrix(csr, dtype=np.float32, copy=True)
    if x.nnz and (x.data < 0).any():
        raise DataError(f"{model} reads interactions as implicit feedback; negative values "
                        f"such as {x.data[x.data < 0][:3].tolist()} are not allowed")
    x.data = (x.data > 0).astype(np.float32)
    x.eliminate_zeros()
    x.sort_indices()
    return x


@dataclass(frozen=True)
class FitSetup:
    """Everything a training loop needs before its first update."""

    torch: Any
    device: Any
    interactions: sp.csr_matrix
    rng: np.random.Generator
    generator: Any
    callbacks: list[EpochCallback]


def fit_setup(model: str, csr: sp.csr_matrix, *, device: str, random_state: Any,
              callbacks: Sequence[EpochCallback] | None) -> FitSetup:
    """Check the callbacks and the device, binarise the interactions, and seed NumPy's and
    torch's generators from ``random_state`` (in that order, so a seed gives one fit)."""
    from chuchun.models.neural._torch import import_torch, make_generator, resolve_device

    cbs = check_callbacks(callbacks)
    torch = import_torch()
    dev = resolve_device(torch, device)
    x = binary_interactions(csr, model)
    rng = check_random_state(random_state)
    return FitSetup(torch=torch, device=dev, interactions=x, rng=rng,
                    generator=make_generator(torch, rng, dev), callbacks=cbs)


def notify_callbacks(callbacks: Sequence[EpochCallback], model: Any, epoch: int,
                     logs: dict[str, float]) -> bool:
    """Call every callback (none is skipped) and say whether one of them asked to stop."""
    answers = [bool(cb(model, epoch, logs)) for cb in callbacks]
    return any(answers)


def cosine_similarities(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Cosine similarities of the rows ``idx`` of ``vectors`` to every row."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return unit[np.asarray(idx)] @ unit.T
