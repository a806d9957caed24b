"""The ``chuchun`` command line, run for real in subprocesses."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import chuchun
from chuchun import _progress
from chuchun.cli import main
from chuchun.cli.demo import available_entries
from chuchun.datasets import load_movielens_latest_small
from chuchun.io import load_model

REPO = Path(__file__).resolve().parents[2]


def _command() -> list[str]:
    script = Path(sys.executable).with_name("chuchun")
    if script.exists():  # installed (make test, CI)
        return [str(script)]
    return [sys.executable, "-m", "chuchun"]


def run(
    *args: str | os.PathLike[str],
    timeout: float = 300,
    input_bytes: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """The installed ``chuchun`` script in a subprocess (``input_bytes`` on its stdin)."""
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), *filter(None, [environ.get("PYTHONPATH")])]
    )
    environ.setdefault("NUMBA_NUM_THREADS", "2")
    environ.update(env or {})
    proc = subprocess.run(
        [*_command(), *map(str, args)],
        capture_output=True, input=input_bytes if input_bytes is not None else b"",
        env=environ, timeout=timeout, check=False,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode("utf-8", "replace"),
                                       proc.stderr.decode("utf-8", "replace"))


def invoke(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess:
    """The same entry point run in this process (much faster than a subprocess); the CLI's
    process-wide settings (log handlers, progress, warning display) are restored afterwards."""
    logger = logging.getLogger("chuchun")
    saved = (list(logger.handlers), logger.level, logger.propagate, _progress._ENABLED,
             warnings.showwarning)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
        _progress._ENABLED = saved[3]
        warnings.showwarning = saved[4]
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("chuchun: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 users x 12 items with two taste groups, ratings 1-5 and timestamps."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(30):
        group = u % 2
        for i in rng.choice(12, size=8, replace=False):
            liked = (i % 2) == group
            rows.append((f"u{u:02d}", f"m{i:02d}", 5 if liked else 1, 1_000 + len(rows)))
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(ratings_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "baseline"
    proc = run("fit", "--data", ratings_csv, "--model", "BaselineOnly",
               "--param", "n_epochs=3", "--param", "item_regularization=2.5", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "fitted BaselineOnly on 240 interactions (30 users, 12 items)" in proc.stdout
    return out


# -- fit -> recommend -> info ---------------------------------------------------------------
def test_fit_writes_a_loadable_artifact(fitted: Path) -> None:
    model = chuchun.load(fitted)
    assert type(model).__name__ == "BaselineOnly"
    assert model.n_epochs == 3 and model.item_regularization == 2.5
    assert model.n_users_ == 30 and model.n_items_ == 12


def test_recommend_matches_python_api(fitted: Path) -> None:
    proc = run("recommend", "--model", fitted, "--user", "u00", "--user", "u01", "-k", "3",
               "--format", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    expected = load_model(fitted).recommend(["u00", "u01"], k=3).to_pandas()
    assert [r["item"] for r in records] == expected["item"].tolist()
    assert [r["user"] for r in records] == ["u00"] * 3 + ["u01"] * 3
    np.testing.assert_allclose([r["score"] for r in records], expected["score"], rtol=1e-6)


def test_recommend_table_and_csv(fitted: Path) -> None:
    table = run("recommend", "--model", fitted, "--user", "u03", "-k", "2")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["user", "rank", "item", "score"]
    assert len(lines) == 4 and lines[2].split()[:2] == ["u03", "1"]
    csv = run("recommend", "--model", fitted, "--user", "u03", "-k", "2", "--format", "csv")
    assert csv.stdout.splitlines()[0] == "user,rank,item,score"
    csv_items = [r.split(",")[2] for r in csv.stdout.splitlines()[1:]]
    assert [r.split()[2] for r in lines[2:]] == csv_items


def test_recommend_include_seen_and_unknown_policy(fitted: Path) -> None:
    seen = invoke("recommend", "--model", fitted, "--user", "u00", "-k", "12", "--include-seen",
               "--format", "json")
    assert len(json.loads(seen.stdout)) == 12
    unseen = invoke("recommend", "--model", fitted, "--user", "u00", "-k", "12", "--format", "json")
    assert len(json.loads(unseen.stdout)) == 4  # 12 items, 8 rated
    cold = invoke("recommend", "--model", fitted, "--user", "stranger", "--unknown", "fallback",
               "--format", "json")
    assert cold.returncode == 0 and len(json.loads(cold.stdout)) == 10
    default = invoke("recommend", "--model", fitted, "--user", "stranger", "--format", "json")
    assert json.loads(default.stdout) == json.loads(cold.stdout)  # fallback, as in Python
    error = invoke("recommend", "--model", fitted, "--user", "stranger", "--unknown", "error")
    assert error.returncode == 1
    line = one_error_line(error)
    assert "1 user id(s) not seen in training: 'stranger'" in line
    assert "pass --unknown fallback or empty" in line and "unknown=" not in line


def test_info(fitted: Path) -> None:
    proc = run("info", fitted)
    assert proc.returncode == 0, proc.stderr
    assert "model:            BaselineOnly" in proc.stdout
    assert "users x items:    30 x 12" in proc.stdout
    assert "  n_epochs = 3" in proc.stdout and "  item_regularization = 2.5" in proc.stdout
    manifest = json.loads(run("info", "--json", fitted).stdout)
    assert manifest["model_class"] == "BaselineOnly"
    assert manifest["params"]["n_epochs"] == 3


def test_fit_zip_artifact_and_movielens_directory(ml100k_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pop.zip"
    proc = run("fit", "--data", ml100k_dir, "--model", "popularity", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "(943 users, 1,682 items)" in proc.stdout
    assert out.is_file()
    recs = run("recommend", "--model", out, "--user", "1", "-k", "5", "--format", "json")
    items = [r["item"] for r in json.loads(recs.stdout)]
    assert items == load_model(out).recommend([1], k=5).to_lists()[0]


def test_fit_bundled_dataset_by_name_implicit(tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = run("fit", "--data", "ml-latest-small", "--model", "Popularity", "--implicit",
               "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "100,836 interactions (610 users, 9,724 items)" in proc.stdout
    assert load_model(out).rating_scale_ is None


def test_fit_parquet(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    frame = pd.DataFrame({"user": [1, 1, 2], "item": ["x", "y", "x"], "rating": [4.0, 2.0, 5.0]})
    frame.to_parquet(path)
    proc = invoke("fit", "--data", path, "--model", "GlobalMean", "--out", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    assert "3 interactions (2 users, 2 items)" in proc.stdout


def test_custom_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.tsv"
    path.write_text("who\twhat\tstars\na\tx\t4\na\ty\t2\nb\tx\t5\n")
    out = tmp_path / "m"
    proc = invoke("fit", "--data", path, "--user-col", "who", "--item-col", "what",
               "--rating-col", "stars", "--model", "GlobalMean", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert load_model(out).global_mean_ == pytest.approx(11 / 3)


# -- errors and exit codes --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "NoSuchModel"], "unknown model 'NoSuchModel'; known models are: "),
        (["--model", "BaselineOnly", "--param", "n_epoch=3"],
         "BaselineOnly has no parameter 'n_epoch'; did you mean 'n_epochs'?"),
        (["--model", "BaselineOnly", "--param", "n_epochs=many"],
         "n_epochs must be int >= 1 or None; got 'many'"),
        (["--model", "BaselineOnly", "--param", "n_epochs=0"],
         "n_epochs must be int >= 1 or None; got 0"),
        (["--model", "BaselineOnly", "--param", "method=newton"],
         "method must be one of 'als', 'sgd'; got 'newton'"),
        (["--model", "BaselineOnly", "--param", "n_epochs"],
         "--param expects NAME=VALUE; got 'n_epochs'"),
    ],
)
def test_fit_errors_exit_1_with_one_line(
    ratings_csv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    proc = invoke("fit", "--data", ratings_csv, *args, "--out", tmp_path / "out")
    assert proc.returncode == 1, proc.stderr
    assert message in one_error_line(proc)
    assert not (tmp_path / "out").exists()


def test_missing_data_file(tmp_path: Path) -> None:
    proc = run("fit", "--data", tmp_path / "missing.csv", "--model", "Popularity",
               "--out", tmp_path / "m")
    assert proc.returncode == 1
    assert "file not found: " in one_error_line(proc) and "missing.csv" in proc.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user,item,rating\n1,2,4\n1,3,lots\n", "ratings must be numeric"),
        ("user,item,rating\n1,2,4\n,3,5\n", "user column has 1 missing"),
        ("usr,item\n1,2\n", "user column 'user' not found; columns are ['usr', 'item']"),
        ("user,item\n", "empty input"),
        ("user,item\n1,2\n1,2\n", "1 duplicate (user, item) pairs"),
    ],
)
def test_bad_data_exit_1(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(content)
    proc = invoke("fit", "--data", path, "--model", "Popularity", "--out", tmp_path / "m")
    assert proc.returncode == 1
    assert message in one_error_line(proc)


def test_rating_scale_option(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("user,item,rating\n1,2,4\n2,2,7\n")
    proc = invoke("fit", "--data", path, "--model", "GlobalMean", "--rating-scale", "1", "5",
                  "--out", tmp_path / "m")
    assert proc.returncode == 1
    assert "ratings must lie in the declared scale [1.0, 5.0]" in one_error_line(proc)
    path.write_text("user,item,rating\n1,2,4\n2,2,5\n")
    proc = invoke("fit", "--data", path, "--model", "GlobalMean", "--rating-scale", "0.5", "5",
                  "--out", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    assert load_model(tmp_path / "m").rating_scale_ == [0.5, 5.0]


def test_duplicates_option(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("user,item,rating\n1,2,4\n1,2,2\n2,2,5\n")
    proc = invoke("fit", "--data", path, "--model", "GlobalMean", "--duplicates", "mean",
               "--out", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    assert load_model(tmp_path / "m").global_mean_ == pytest.approx(4.0)


def test_usage_errors_exit_2(ratings_csv: Path, tmp_path: Path) -> None:
    for args in (
        ["fit", "--data", ratings_csv, "--model", "Popularity"],  # --out missing
        ["fit", "--data", ratings_csv, "--model", "Popularity", "--out", "x", "--bogus"],
        ["recommend", "--model", tmp_path, "--user", "1", "-k", "0"],
        ["no-such-command"],
        ["evaluate", "--data", ratings_csv, "--model", "Popularity", "--split", "sideways"],
    ):
        proc = run(*args) if args[0] == "no-such-command" else invoke(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Usage: chuchun" in proc.stderr and "Traceback" not in proc.stderr


def test_artifact_errors_exit_1(fitted: Path, tmp_path: Path) -> None:
    proc = run("recommend", "--model", tmp_path / "nothing", "--user", "u00")
    assert proc.returncode == 1
    assert "nothing" in one_error_line(proc)
    broken = tmp_path / "broken"
    shutil.copytree(fitted, broken)
    arrays = broken / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-20])
    for command in (["recommend", "--model", broken, "--user", "u00"], ["info", broken]):
        proc = invoke(*command)
        assert proc.returncode == 1
        assert "does not match its checksum" in one_error_line(proc)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"format": "something-else"}')
    (foreign / "arrays.npz").write_bytes(b"")
    proc = invoke("info", foreign)
    assert proc.returncode == 1 and "not a chuchun model artifact" in one_error_line(proc)


def test_recommend_explain(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "knn"
    fit = invoke("fit", "--data", ratings_csv, "--model", "ItemKNN", "--param", "n_neighbors=5",
                 "--param", "similarity=cosine", "--out", out)
    assert fit.returncode == 0, fit.stderr
    # the ranking score's terms: the baseline, the neighbour support and the rated items
    proc = run("recommend", "--model", out, "--user", "u00", "-k", "2", "--explain",
               "--n-reasons", "6", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    model = load_model(out)
    for rec in records:
        expected = model.explain(["u00"], [rec["item"]], n_reasons=6)[0]
        got = rec["explanation"]
        assert got["summary"] == str(expected).splitlines()[0]
        assert [r["id"] for r in got["reasons"]] == [r.id for r in expected.reasons]
        items = [r for r in got["reasons"] if r["kind"] == "item"]
        assert items and all(r["detail"]["rating"] in (1.0, 5.0) for r in items)
        assert {r["kind"] for r in got["reasons"]} <= {"item", "bias"}
    table = invoke("recommend", "--model", out, "--user", "u00", "-k", "1", "--explain")
    assert f"user u00, rank 1, item {records[0]['item']}: " in table.stdout


def test_explain_baseline_terms(fitted: Path) -> None:
    proc = invoke("recommend", "--model", fitted, "--user", "u00", "-k", "1", "--explain",
                  "--n-reasons", "6", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(proc.stdout)
    reasons = record["explanation"]["reasons"]
    # BaselineOnly ranks by its prediction discounted by the item's rating support
    assert {r["id"] for r in reasons} == {"global mean", "user bias", "item bias",
                                          "rating support"}
    assert sum(r["contribution"] for r in reasons) == pytest.approx(record["score"], rel=1e-5)


def test_debug_shows_the_traceback(ratings_csv: Path, tmp_path: Path) -> None:
    proc = run("--debug", "fit", "--data", ratings_csv, "--model", "NoSuchModel",
               "--out", tmp_path / "m")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("chuchun: error: unknown model")


def test_output_directory_must_exist(ratings_csv: Path, tmp_path: Path) -> None:
    proc = invoke("fit", "--data", ratings_csv, "--model", "Popularity",
               "--out", tmp_path / "no" / "such" / "m")
    assert proc.returncode == 1
    assert "does not exist" in one_error_line(proc)


# -- models, version, logging -----------------------------------------------------------------
def test_models_listing_and_params() -> None:
    listing = invoke("models")
    assert listing.returncode == 0
    names = {line.split()[0] for line in listing.stdout.splitlines()[2:]}
    assert {"BaselineOnly", "GlobalMean", "Popularity", "Random"} <= names
    params = invoke("models", "baselineonly")
    assert params.returncode == 0
    assert "n_epochs" in params.stdout and "one of 'als', 'sgd'" in params.stdout
    assert invoke("models", "Nope").returncode == 1


def test_help_documents_exit_codes() -> None:
    proc = invoke("--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "Exit status: 0 success; 1 error in the data, configuration or an artifact" in text
    for command in ("demo", "fit", "recommend", "evaluate", "info", "models", "rules"):
        assert f" {command} " in text


def test_version_and_verbose_logging(ratings_csv: Path, tmp_path: Path) -> None:
    version = run("--version")
    assert version.returncode == 0 and chuchun.__version__ in version.stdout
    quiet = invoke("fit", "--data", ratings_csv, "--model", "Popularity", "--out", tmp_path / "a")
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = invoke("-v", "fit", "--data", ratings_csv, "--model", "Popularity",
               "--out", tmp_path / "b")
    assert loud.returncode == 0
    assert "INFO chuchun.cli.commands: loaded Interactions(240 rows" in loud.stderr


# -- evaluate ---------------------------------------------------------------------------------
def test_evaluate_temporal_and_holdout(ratings_csv: Path) -> None:
    for split in ("temporal", "holdout"):
        proc = run("--no-progress", "evaluate", "--data", ratings_csv, "--model", "BaselineOnly",
                   "--param", "n_epochs=3", "--split", split, "-k", "3")
        assert proc.returncode == 0, proc.stderr
        # warnings (e.g. test pairs unknown to training) arrive as single lines
        assert all(line.startswith("chuchun: warning: ") for line in proc.stderr.splitlines())
        values = dict(line.split()[:2] for line in proc.stdout.splitlines()[5:])
        assert float(values["rmse"]) > 0
        assert any(key.startswith("ndcg") for key in values)


def test_evaluate_selected_metrics(ratings_csv: Path) -> None:
    proc = invoke("evaluate", "--data", ratings_csv, "--model", "BaselineOnly",
                  "--metric", "rmse", "--metric", "ndcg", "-k", "5")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()[5:]]
    assert [n for n in names if not n.startswith(("n_", "fit_", "eval_"))] == [
        "params", "rmse", "ndcg@5"]
    bad = invoke("evaluate", "--data", ratings_csv, "--model", "Popularity", "--metric", "rmse")
    assert bad.returncode == 1
    assert "Popularity does not predict ratings" in bad.stderr.splitlines()[-1]


def test_evaluate_kfold(ratings_csv: Path) -> None:
    proc = invoke("evaluate", "--data", ratings_csv, "--model", "GlobalMean", "--split", "kfold",
               "--folds", "3")
    assert proc.returncode == 0, proc.stderr
    assert "split: kfold: 3 folds" in proc.stdout and "means over folds" in proc.stdout
    assert re.search(r"^rmse \(std\)\s+\d", proc.stdout, re.M)


def test_evaluate_temporal_needs_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("user,item,rating\n1,2,4\n1,3,5\n2,2,3\n")
    proc = invoke("evaluate", "--data", path, "--model", "GlobalMean")
    assert proc.returncode == 1
    assert "--split temporal needs timestamps" in one_error_line(proc)


# -- demo -------------------------------------------------------------------------------------
def test_demo_quick() -> None:
    # --quick on two models: the full demo below trains every model
    proc = run("--no-progress", "demo", "--quick", "--model", "popularity",
               "--model", "BaselineOnly")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "first 120 users" in out
    assert "temporal split: each user's latest 20% of ratings is test" in out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert header.split() == ["model", "fit", "s", "RMSE", "MAE", "P@10", "R@10", "NDCG@10"]
    models = [line.split()[0] for line in out.splitlines()[5:]
              if line.split() and line.split()[0] in {e.name for e in available_entries()}]
    assert models == ["Popularity", "BaselineOnly"]
    assert "top-10 for user 1" in out
    ranked = [line for line in out.splitlines() if line[:5].strip().rstrip(".").isdigit()]
    assert len(ranked) == 10
    titles = set(load_movielens_latest_small().items["title"])
    for line in ranked:  # "  3. * Title (year)": rank, a hit marker, a real movie title
        title = re.match(r"\s*\d+\. [ *] (.*)$", line).group(1)
        assert title in titles, line


def test_demo_full_run() -> None:
    proc = run("demo", "--user", "414")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "100,836 ratings, 610 users, 9,724 movies" in out
    entries = [e.name for e in available_entries()]
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split() and line.split()[0] in entries}
    assert set(rows) == set(entries) >= {"Popularity", "BaselineOnly"}
    assert rows["Popularity"][2:4] == ["-", "-"]  # no RMSE/MAE for a ranking model
    assert 0.8 < float(rows["BaselineOnly"][2]) < 1.1  # RMSE on the 0.5-5 scale
    assert "top-10 for user 414" in out
    assert out.count("         because: ") == 10  # the list shown, each movie with its reasons


def test_demo_rejects_unknown_model() -> None:
    proc = invoke("demo", "--quick", "--model", "Nope")
    assert proc.returncode == 1
    assert "unknown model(s) ['Nope']" in one_error_line(proc)
    proc = invoke("demo", "--quick", "--model", "Popularity", "--user", "99999")
    assert proc.returncode == 1
    assert "user 99999 has no training ratings in this split" in one_error_line(proc)


def test_demo_background_warm_up_fills_an_empty_kernel_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chuchun.cli._feedback import (
        cached_kernels,
        start_background_warm_up,
        stop_background_warm_up,
    )

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert cached_kernels() == set()
    proc = start_background_warm_up("chuchun.cli.demo", ["--quick", "FunkSVD"])
    assert proc is not None
    assert proc.wait(timeout=300) == 0
    assert any(name.startswith("mf.") for name in cached_kernels())  # compiled into the cache
    # a filled cache needs no second process
    assert start_background_warm_up("chuchun.cli.demo", ["FunkSVD"]) is None
    stop_background_warm_up(proc)  # already finished: a no-op


def test_demo_because_line_names_the_reasons_that_lift_the_score() -> None:
    from types import SimpleNamespace

    from chuchun.cli.demo import _because
    from chuchun.models._results import Reason

    ml = SimpleNamespace(
        items=pd.DataFrame({"item": [1, 2, 3], "title": ["Alien", "Heat", "Fargo"]}),
        titles=lambda ids: [{1: "Alien", 2: "Heat", 3: "Fargo"}[int(i)] for i in ids],
    )
    reasons = (
        Reason("bias", "neighbour support", 1.5),
        Reason("item", 1, -0.40),  # the largest named term pulls the score down
        Reason("item", 2, 0.05),
        Reason("item", 3, 0.30),
    )
    line = _because(SimpleNamespace(reasons=reasons), ml)
    assert line == "Fargo (+0.3); Heat (+0.05)"
    # with nothing named that lifts the score, the named reasons are still shown by size
    only_negative = (Reason("bias", "global mean", 3.0), Reason("item", 1, -0.4))
    assert _because(SimpleNamespace(reasons=only_negative), ml) == "Alien (-0.4)"
