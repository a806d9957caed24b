"""evaluate(..., return_per_user=True): per-user values behind the averaged ranking metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from chuchun import DataWarning
from chuchun.data.splits import user_holdout
from chuchun.evaluation import evaluate
from chuchun.metrics import ndcg_at_k
from chuchun.models import Popularity
from chuchun.testing import block_interactions


def test_per_user_frame_matches_the_summary_and_the_metric_functions() -> None:
    data = block_interactions(n_users=40, n_items=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        split = user_holdout(data, test_fraction=0.3, random_state=0)
    model = Popularity()
    summary = evaluate(model, split, k=5)
    again, per_user = evaluate(model, split, k=5, fit=False, return_per_user=True)
    assert isinstance(per_user, pd.DataFrame)
    assert {k: v for k, v in again.items() if "seconds" not in k} == pytest.approx(
        {k: v for k, v in summary.items() if "seconds" not in k}, nan_ok=True)
    assert "coverage@5" not in per_user.columns and "n_relevant" in per_user.columns
    assert len(per_user) == summary["n_users_evaluated"]
    for name in ("precision@5", "recall@5", "ndcg@5", "map@5", "mrr@5", "hit_rate@5", "f1@5"):
        assert per_user[name].mean() == pytest.approx(summary[name])
    # rows are users, by external id, and agree with the per-user metric function
    recs = model.recommend(per_user.index.to_numpy(), 5)
    truth = [split.test.item_ids[split.test.user_ids == u] for u in per_user.index]
    relevant = [model.items_.index(np.asarray(t)) for t in truth]
    relevant = [r[r >= 0] for r in relevant]
    expected = ndcg_at_k(recs.item_idx, relevant, 5)
    assert per_user["ndcg@5"].to_numpy() == pytest.approx(expected)
    assert (per_user["n_relevant"].to_numpy() == [len(t) for t in truth]).all()
