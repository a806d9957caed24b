"""Synthetic sequences with a planted next-item rule, for tests of sequence models."""

from __future__ import annotations

import numpy as np

from chuchun._exceptions import ConfigError
from chuchun._random import RandomState, check_random_state
from chuchun.data.interactions import Interactions

__all__ = ["planted_sequences"]


def planted_sequences(
    n_users: int = 100,
    n_items: int = 20,
    n_runs: int = 2,
    run_length: int = 4,
    *,
    random_state: RandomState = 0,
) -> Interactions:
    """Each user's sequence is ``n_runs`` runs ``s, s+1, ..., s+run_length-1`` (mod
    ``n_items``) with random starts ``s``, at increasing timestamps (rows shuffled).

    The rule a sequence model must learn: inside a run, item ``k`` is followed by ``k + 1``.
    A history ``[r, r+1, a, a+1]`` continues with ``a + 2`` and ``[a, a+1, r, r+1]`` with
    ``r + 2``: the same set of items, different answers, so only a model that reads the
    order gets both right. A user's items are distinct; ids are ``"u0"``, ``"i0"``, ...
    """
    length = n_runs * run_length
    if run_length < 2 or n_runs < 1 or length > n_items // 2:
        raise ConfigError(
            f"need run_length >= 2, n_runs >= 1 and n_runs * run_length <= n_items / 2; got "
            f"{n_runs} runs of {run_length} with {n_items} items"
        )
    rng = check_random_state(random_state)
    users, items = [], []
    for u in range(n_users):
        taken: set[int] = set()
        for _ in range(n_runs):
            while True:
                start = int(rng.integers(n_items))
                run = [(start + j) % n_items for j in range(run_length)]
                if not taken & set(run):
                    break
            taken |= set(run)
            items.extend(run)
        users.extend([u] * length)
    users_a = np.array(users)
    stamps = 1_000_000 + users_a * 10_000 + np.tile(np.arange(length) * 60, n_users)
    perm = rng.permutation(len(users_a))
    return Interactions.from_arrays(
        np.array([f"u{u}" for u in users])[perm],
        np.array([f"i{i}" for i in items])[perm],
        timestamps=stamps[perm],
    )
