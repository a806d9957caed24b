"""Seeded synthetic implicit-feedback logs with power-law item popularity.

``generate(n_users, n_items, n_interactions, seed)`` returns distinct (user, item) pairs as two
int32 arrays, exactly ``n_interactions`` of them, sorted by user then item:

- item popularity follows a Zipf-Mandelbrot power law, ``P(item of rank k) ∝ (k + 50)^-1``
  (the offset keeps the head item below a third of a percent of all interactions, so no item
  saturates the user base); ranks are shuffled over item ids;
- user activity is log-normal (sigma 1), so a few users are very active;
- pairs are drawn independently from the two distributions, duplicates are dropped and the
  shortfall is drawn again until the target count is reached.

Run as a script to write an ``.npz`` (``user``, ``item``, ``n_users``, ``n_items``)::

    python benchmarks/synthetic.py --n-interactions 10000000 --out /tmp/synthetic_10m.npz
"""

from __future__ import annotations

import argparse

import numpy as np

__all__ = ["generate"]


def generate(
    n_users: int = 100_000,
    n_items: int = 20_000,
    n_interactions: int = 10_000_000,
    seed: int = 0,
    *,
    exponent: float = 1.0,
    offset: float = 50.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs; see the module docstring."""
    if n_interactions > n_users * n_items // 2:
        raise ValueError(
            f"n_interactions must be at most half of n_users * n_items = {n_users * n_items}; "
            f"got {n_interactions}"
        )
    rng = np.random.default_rng(seed)
    item_w = (np.arange(n_items) + 1.0 + offset) ** -exponent
    item_w = item_w[rng.permutation(n_items)]
    item_cdf = np.cumsum(item_w / item_w.sum())
    user_w = rng.lognormal(0.0, 1.0, n_users)
    user_cdf = np.cumsum(user_w / user_w.sum())
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_interactions:
        need = int((n_interactions - len(keys)) * 1.05) + 1000
        u = np.searchsorted(user_cdf, rng.random(need) * user_cdf[-1], side="right")
        i = np.searchsorted(item_cdf, rng.random(need) * item_cdf[-1], side="right")
        u = np.minimum(u, n_users - 1)
        i = np.minimum(i, n_items - 1)
        fresh = u.astype(np.int64) * n_items + i
        keys = np.unique(np.concatenate([keys, fresh]))
    if len(keys) > n_interactions:
        keys = np.sort(rng.choice(keys, n_interactions, replace=False))
    return (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-users", type=int, default=100_000)
    ap.add_argument("--n-items", type=int, default=20_000)
    ap.add_argument("--n-interactions", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    u, i = generate(args.n_users, args.n_items, args.n_interactions, args.seed)
    np.savez(args.out, user=u, item=i, n_users=args.n_users, n_items=args.n_items)


if __name__ == "__main__":
    main()
