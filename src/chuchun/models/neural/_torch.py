"""PyTorch plumbing shared by the neural models: the lazy import, devices, threads, seeds.

Torch is imported when a neural model is fitted, never when chuchun or a fitted model is
loaded: trained weights are kept as NumPy arrays and scoring runs in NumPy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from chuchun._exceptions import ConfigError
from chuchun._random import kernel_seed

__all__ = ["import_torch", "make_generator", "resolve_device", "torch_threads"]


def import_torch() -> Any:
    """``torch``, or a :class:`ConfigError` saying how to install it."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is installed where tests run
        raise ConfigError(
            "this model needs PyTorch; install the optional extra: pip install 'chuchun[deep]'"
        ) from exc
    return torch


def resolve_device(torch: Any, device: str) -> Any:
    """The ``torch.device`` named by ``device``; an unavailable accelerator is an error."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device must name a torch device such as 'cpu' or 'cuda:0'; "
                          f"got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} asked for, but torch sees no CUDA device "
                          f"(torch {torch.__version__})")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={device!r} asked for, but MPS is not available")
    return dev


def make_generator(torch: Any, rng: np.random.Generator, device: Any) -> Any:
    """A torch generator on ``device`` seeded from ``rng`` (never torch's global state)."""
    g = torch.Generator(device=device)
    g.manual_seed(kernel_seed(rng))
    return g


@contextlib.contextmanager
def torch_threads(torch: Any, n_threads: int | None) -> Iterator[None]:
    """Run torch's CPU operators on ``n_threads`` threads (None: leave torch's setting)."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
