"""Spark splits and metrics against chuchun.data.splits and chuchun.evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from chuchun.data import splits as local_splits
from chuchun.evaluation import evaluate as local_evaluate
from chuchun.io import load_model
from chuchun.models import BaselineOnly as LocalBaseline
from chuchun.models import Popularity as LocalPopularity
from chuchun.spark import BaselineOnly, Popularity, SparkInteractions
from chuchun.spark import evaluation as spark_eval


@pytest.fixture(scope="module")
def data(spark, small_log):
    return SparkInteractions.from_local(small_log, spark=spark).persist()


def _pairs(frame):
    table = frame.toPandas() if hasattr(frame, "toPandas") else frame
    return set(zip(table["user_id"] if "user_id" in table else table["user"],
                   table["item_id"] if "item_id" in table else table["item"]))


def test_deterministic_splits_select_the_local_rows(data, small_log):
    ours = spark_eval.user_holdout(data, test_fraction=0.25, order="time")
    ref = local_splits.user_holdout(small_log, test_fraction=0.25, order="time")
    assert _pairs(ours.test) == _pairs(ref.test.to_pandas())
    assert ours.train.to_local().fingerprint() == ref.train.fingerprint()
    ours = spark_eval.temporal_split(data, test_fraction=0.3)
    ref = local_splits.temporal_split(small_log, test_fraction=0.3)
    assert _pairs(ours.test) == _pairs(ref.test.to_pandas())
    random = spark_eval.holdout(data, test_fraction=0.2, random_state=4)
    assert random.info["n_test"] == round(len(small_log) * 0.2)


def test_metrics_equal_local_definitions(data, small_log):
    ours_split = spark_eval.user_holdout(data, test_fraction=0.3, order="time")
    ref_split = local_splits.user_holdout(small_log, test_fraction=0.3, order="time")
    for spark_model, local_model in ((Popularity(), LocalPopularity()),
                                     (BaselineOnly(n_epochs=3, ranking_damping=0.0),
                                      LocalBaseline(n_epochs=3, ranking_damping=0.0))):
        ours = spark_eval.evaluate(spark_model, ours_split, k=5)
        ref = local_evaluate(local_model, ref_split, k=5)
        for name in ref:
            if name.endswith("seconds") or name not in ours:
                continue
            assert ours[name] == pytest.approx(ref[name], rel=1e-9, abs=1e-12), name
        assert "ndcg@5" in ours and "map@5" in ours


def test_cli_fit_and_evaluate_with_the_spark_engine(spark, small_log, tmp_path):
    from chuchun.cli import cli

    path = tmp_path / "log.parquet"
    small_log.to_pandas().to_parquet(path)
    runner = CliRunner()
    out = tmp_path / "model"
    result = runner.invoke(cli, ["fit", "--engine", "spark", "--spark-master", "local[2]",
                                 "--data", str(path), "--model", "Popularity", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "on Spark" in result.output
    model = load_model(out)
    np.testing.assert_array_equal(model.item_popularity_,
                                  LocalPopularity().fit(small_log).item_popularity_)
    result = runner.invoke(cli, ["evaluate", "--engine", "spark", "--data", str(path),
                                 "--model", "Popularity", "-k", "5", "--metric", "recall"])
    assert result.exit_code == 0, result.output
    assert "recall@5" in result.output
    result = runner.invoke(cli, ["fit", "--engine", "spark", "--data", str(path),
                                 "--model", "FunkSVD", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "no Spark implementation" in str(result.exception or
                                                                       result.output)
