"""Seeded synthetic implicit-feedback catalogue for the similarity scale benchmark.

Item popularity follows a Zipf-like law (weight of the item at rank r is 1 / (r + 10)^0.8),
user activity a log-normal law; (user, item) pairs are drawn independently from both, duplicates
dropped, until exactly ``n_interactions`` distinct pairs remain.

    python benchmarks/synthetic_catalogue.py   # prints the shape and a checksum
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp


def synthetic_catalogue(
    n_users: int = 50_000,
    n_items: int = 300_000,
    n_interactions: int = 2_000_000,
    seed: int = 0,
) -> sp.csr_matrix:
    """Users x items binary CSR (float32) with exactly ``n_interactions`` distinct entries."""
    rng = np.random.default_rng(seed)
    item_w = 1.0 / (np.arange(n_items) + 10.0) ** 0.8
    item_p = item_w / item_w.sum()
    item_perm = rng.permutation(n_items)  # popular items are not the low ids
    user_w = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
    user_p = user_w / user_w.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_interactions:
        need = int((n_interactions - len(keys)) * 1.1) + 1000
        u = rng.choice(n_users, size=need, p=user_p)
        i = item_perm[rng.choice(n_items, size=need, p=item_p)]
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
    keys = rng.permutation(keys)[:n_interactions]
    rows, cols = keys // n_items, keys % n_items
    m = sp.csr_matrix((np.ones(len(keys), dtype=np.float32), (rows, cols)),
                      shape=(n_users, n_items))
    m.sort_indices()
    return m


if __name__ == "__main__":
    x = synthetic_catalogue()
    digest = hashlib.sha256(x.indices.tobytes() + x.indptr.tobytes()).hexdigest()[:16]
    print(x.shape, x.nnz, digest)
