"""Seeded synthetic explicit-rating logs: power-law items, heavy-tailed users, ratings 1-5.

``explicit_log(n_users, n_items, n_ratings, seed)`` draws the distinct (user, item) pairs with
:func:`synthetic.generate` (Zipf-Mandelbrot item popularity, log-normal user activity) and gives
each pair a rating on the 1-5 scale,

.. math:: r_{ui} = \\operatorname{clip}_{[1, 5]} \\operatorname{round}(3.6 + b_u + b_i +
          p_u^\\top q_i + \\varepsilon_{ui})

with :math:`b_u \\sim N(0, 0.4^2)`, :math:`b_i \\sim N(0, 0.5^2)`, 4-dimensional taste vectors
:math:`p_u, q_i \\sim N(0, 0.5^2 I)` and noise :math:`\\varepsilon \\sim N(0, 0.8^2)`, so biases and
neighbourhoods both carry signal and most items of a large catalogue have fewer than 5 ratings.
Returns a pandas table with columns ``user``, ``item``, ``rating``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthetic import generate

__all__ = ["explicit_log"]


def explicit_log(
    n_users: int = 22_000, n_items: int = 300_000, n_ratings: int = 1_000_000, seed: int = 0
) -> pd.DataFrame:
    """A seeded explicit log; see the module docstring."""
    users, items = generate(n_users, n_items, n_ratings, seed)
    rng = np.random.default_rng(seed + 1)
    bu = rng.normal(0.0, 0.4, n_users)
    bi = rng.normal(0.0, 0.5, n_items)
    pu = rng.normal(0.0, 0.5, (n_users, 4))
    qi = rng.normal(0.0, 0.5, (n_items, 4))
    taste = np.einsum("ij,ij->i", pu[users], qi[items])
    raw = 3.6 + bu[users] + bi[items] + taste + rng.normal(0.0, 0.8, len(users))
    ratings = np.clip(np.rint(raw), 1, 5).astype(np.float32)
    return pd.DataFrame({"user": users, "item": items, "rating": ratings})
