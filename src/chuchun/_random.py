"""Seeding: one way to turn ``random_state`` into generators and kernel seeds.

The global NumPy random state is never used.
"""

from __future__ import annotations

import numbers

import numpy as np

from chuchun._exceptions import ConfigError

RandomState = int | np.random.Generator | np.random.SeedSequence | None

__all__ = ["RandomState", "check_random_state", "kernel_seed", "spawn"]


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``random_state``.

    ``None`` gives fresh OS entropy, an integer or ``SeedSequence`` a reproducible generator, and
    a ``Generator`` is returned as is (so successive calls advance it).
    """
    if random_state is None or isinstance(random_state, np.random.SeedSequence):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if int(random_state) < 0:
            raise ConfigError(f"random_state must be a non-negative int; got {random_state}")
        return np.random.default_rng(int(random_state))
    raise ConfigError(
        "random_state must be None, a non-negative int, a numpy Generator or SeedSequence; "
        f"got {type(random_state).__name__}"
    )


def kernel_seed(rng: np.random.Generator) -> int:
    """Draw a 63-bit integer seed for a compiled kernel from ``rng``."""
    return int(rng.integers(0, 2**63 - 1, dtype=np.int64))


def spawn(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """Return ``n`` independent child generators of ``rng``."""
    return [np.random.default_rng(s) for s in rng.bit_generator.seed_seq.spawn(n)]  # type: ignore[attr-defined]
