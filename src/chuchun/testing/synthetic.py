"""Synthetic interaction logs whose structure is known in advance."""

from __future__ import annotations

import numpy as np

from chuchun._random import check_random_state
from chuchun.data.interactions import Interactions

__all__ = ["block_interactions"]


def block_interactions(
    n_users: int = 40,
    n_items: int = 24,
    n_blocks: int = 3,
    density: float = 0.5,
    *,
    string_ids: bool = True,
    random_state: int = 0,
) -> Interactions:
    """Block-diagonal preferences: users of block ``b`` rate items of block ``b`` 4-5 and the
    few other items they meet 1-2.

    Each user rates about ``density`` of their block's items and a quarter as many outside it,
    with increasing timestamps. Ids are strings (``"u7"``, ``"i3"``) unless ``string_ids`` is
    false, so callers exercise non-integer vocabularies by default.
    """
    rng = check_random_state(random_state)
    user_block = np.arange(n_users) % n_blocks
    item_block = np.arange(n_items) % n_blocks
    users, items, ratings = [], [], []
    for u in range(n_users):
        inside = np.flatnonzero(item_block == user_block[u])
        outside = np.flatnonzero(item_block != user_block[u])
        n_in = max(2, int(round(density * len(inside))))
        n_out = max(1, int(round(density * len(outside) / 4)))
        chosen_in = rng.choice(inside, size=min(n_in, len(inside)), replace=False)
        chosen_out = rng.choice(outside, size=min(n_out, len(outside)), replace=False)
        for i in chosen_in:
            users.append(u)
            items.append(i)
            ratings.append(rng.choice([4.0, 5.0]))
        for i in chosen_out:
            users.append(u)
            items.append(i)
            ratings.append(rng.choice([1.0, 2.0]))
    u_arr = np.asarray(users)
    i_arr = np.asarray(items)
    stamps = np.arange(len(users), dtype=np.int64) * 60 + 1_600_000_000
    if string_ids:
        return Interactions.from_arrays(
            np.char.add("u", u_arr.astype(str)), np.char.add("i", i_arr.astype(str)),
            ratings, stamps, rating_scale=(1.0, 5.0),
        )
    return Interactions.from_arrays(u_arr, i_arr, ratings, stamps, rating_scale=(1.0, 5.0))
