"""The serving kernel: its NumPy twin, the general path's top-k order, float32 arithmetic."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chuchun.kernels.serving import (
    finish_scores,
    finish_scores_numpy,
    rank_top_k,
    rank_top_k_numpy,
)
from chuchun.models._base import _top_k


@st.composite
def _cases(draw: st.DrawFn) -> tuple[object, ...]:
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # few distinct values, so ties are common; some non-finite scores
    dot = rng.choice(np.float32([-2.5, -1, 0, 0.25, 1, 1, 3.75]), n).astype(np.float32)
    if draw(st.booleans()):
        dot += rng.normal(0, 1e-3, n).astype(np.float32)
    for value in draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), max_size=3)):
        dot[rng.integers(n)] = value
    item_add = rng.choice(np.float32([0, 0.5, -0.5]), n).astype(np.float32)
    support = rng.choice([0.0, 0.5, 1.0, 0.75], n)
    user_add = np.float32(draw(st.sampled_from([0.0, 0.125, -3.0])))
    floor = float(draw(st.sampled_from([0.0, 0.5])))
    mode = draw(st.integers(0, 7))
    seen = np.flatnonzero(rng.random(n) < 0.2).astype(np.int32)
    exclude = rng.permutation(np.flatnonzero(rng.random(n) < 0.1)).astype(np.int32)
    k = draw(st.integers(1, n + 3))
    return dot, item_add, user_add, floor, support, mode, seen, exclude, k


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_rank_top_k_matches_twin_and_general_top_k(case: tuple[object, ...]) -> None:
    dot, item_add, user_add, floor, support, mode, seen, exclude, k = case
    assert isinstance(dot, np.ndarray) and isinstance(k, int)
    outs = []
    for fn in (rank_top_k, rank_top_k_numpy):
        scores = dot.copy()
        idx = np.full(k, -7, np.int32)
        val = np.full(k, np.nan, np.float32)
        n = fn(scores, item_add, user_add, floor, support, mode, seen, exclude, k, idx, val)
        m = max(n, 0)  # -1: left to the general path (the buffers hold no answer)
        outs.append((n, idx[:m].tolist(), val[:m].tobytes(), scores.tobytes() if m else b""))
    assert outs[0] == outs[1]
    # the general path: finished scores, masked, top-k, padding dropped
    finished = np.empty_like(dot)
    finish_scores_numpy(dot, item_add, user_add, floor, support, mode, finished)
    excluded_inf = bool((finished[exclude] == np.inf).any())
    finished[seen] = -np.inf
    if excluded_inf or (finished == np.inf).any():  # left to the general path
        assert outs[0][0] == -1
        return
    finished[exclude] = -np.inf
    top_i, top_v = _top_k(finished[None, :], min(k, len(dot)))
    keep = top_i[0] >= 0
    n, idx, val, _ = outs[0]
    assert n == len(idx) >= 0
    assert idx == top_i[0][keep].tolist()
    assert val == top_v[0][keep].tobytes()


@settings(max_examples=200, deadline=None)
@given(_cases())
def test_finish_scores_matches_twin_bit_for_bit(case: tuple[object, ...]) -> None:
    dot, item_add, user_add, floor, support, mode, *_ = case
    assert isinstance(dot, np.ndarray)
    a, b = np.empty_like(dot), np.empty_like(dot)
    finish_scores(dot, item_add, user_add, floor, support, mode, a)
    finish_scores_numpy(dot, item_add, user_add, floor, support, mode, b)
    assert a.tobytes() == b.tobytes()


def test_finish_scores_is_numpys_float32_arithmetic() -> None:
    """The model's own expression (the factor models' ``_scores_from`` and the support
    discount) gives the same bits as the kernel, on values where rounding matters."""
    rng = np.random.default_rng(0)
    dot = rng.normal(0, 3, 5000).astype(np.float32)
    item_add = rng.normal(0, 1, 5000).astype(np.float32)
    bu, mu = np.float32(0.3127), 3.5012345678
    support = rng.random(5000)
    want = dot[None, :].copy()
    want += item_add[None, :]
    want += (np.array([bu], np.float32) + mu)[:, None]
    want = ((want.astype(np.float64) - 0.5) * support).astype(np.float32)[0]
    out = np.empty_like(dot)
    user_add = (np.array([bu], np.float32) + mu)[0]
    finish_scores(dot, item_add, user_add, 0.5, support, 7, out)
    assert out.tobytes() == want.tobytes()
    out2 = dot.copy()
    idx, val = np.empty(10, np.int32), np.empty(10, np.float32)
    assert rank_top_k(out2, item_add, user_add, 0.5, support, 7, np.empty(0, np.int32),
                      np.empty(0, np.int32), 10, idx, val) == 10
    order = np.lexsort((np.arange(5000), -want))[:10]
    assert idx.tolist() == order.tolist() and val.tobytes() == want[order].tobytes()
