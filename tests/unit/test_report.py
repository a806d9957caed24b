"""The evaluation report: its numbers, its HTML (opened in headless Chromium), JSON, the CLI."""

from __future__ import annotations

import json
import re
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from chuchun import ConfigError, DataWarning
from chuchun.cli import main
from chuchun.data.splits import user_holdout
from chuchun.evaluation import BayesianSearch, Real, evaluate, report
from chuchun.evaluation.report import EvaluationReport
from chuchun.models import BaselineOnly, FunkSVD, ImplicitItemKNN, Popularity
from chuchun.testing import block_interactions


@pytest.fixture(scope="module")
def split():  # type: ignore[no-untyped-def]
    data = block_interactions(n_users=60, n_items=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return user_holdout(data, test_fraction=0.25, order="time")


@pytest.fixture(scope="module")
def rep(split) -> EvaluationReport:  # type: ignore[no-untyped-def]
    search = BayesianSearch(BaselineOnly(), {"user_regularization": Real(0.1, 50.0, log=True)},
                            n_trials=4, n_initial=2, refit=False).fit(split.train)
    models = {"Popularity": Popularity(), "ItemKNN": ImplicitItemKNN(n_neighbors=10),
              "FunkSVD": FunkSVD(n_factors=4, n_epochs=6, random_state=0)}
    labels = {f"i{j}": f"Title {j}" for j in range(40)}
    return report(models, split, k=5, max_k=12, labels=labels, searches={"BaselineOnly": search},
                  n_resamples=300, n_sample_users=2, data_name="blocks")


def test_numbers_agree_with_evaluate(rep: EvaluationReport, split) -> None:  # type: ignore[no-untyped-def]
    for name, model in (("Popularity", Popularity()), ("FunkSVD", FunkSVD(n_factors=4,
                                                                         n_epochs=6,
                                                                         random_state=0))):
        expected = evaluate(model, split, k=5)
        got = rep.models[name].summary
        for metric in ("precision@5", "recall@5", "ndcg@5", "map@5", "mrr@5"):
            assert got[metric]["mean"] == pytest.approx(expected[metric])
            assert got[metric]["low"] <= got[metric]["mean"] <= got[metric]["high"]
        assert rep.models[name].catalogue["coverage@5"] == pytest.approx(expected["coverage@5"])
        assert rep.models[name].by_k["ndcg"][4] == pytest.approx(expected["ndcg@5"])
    assert rep.models["FunkSVD"].rating["rmse"] == pytest.approx(
        evaluate(FunkSVD(n_factors=4, n_epochs=6, random_state=0), split)["rmse"])
    assert rep.meta["n_users_evaluated"] == len(rep.models["Popularity"].per_user)
    assert len(rep.models["Popularity"].by_k["recall"]) == 12


def test_beyond_accuracy_statistics_and_learning_curves(rep: EvaluationReport) -> None:
    pop = rep.models["Popularity"]
    # the popularity ranking is its own serendipity baseline: nothing unexpected
    assert pop.summary["serendipity@5"]["mean"] == 0.0
    assert rep.models["ItemKNN"].summary["novelty@5"]["mean"] > pop.summary["novelty@5"]["mean"]
    assert set(rep.comparisons["model_a"] + "/" + rep.comparisons["model_b"]) == {
        "Popularity/ItemKNN", "Popularity/FunkSVD", "ItemKNN/FunkSVD"}
    assert (rep.comparisons["wilcoxon_pvalue_holm"] >= rep.comparisons["wilcoxon_pvalue"]).all()
    assert set(rep.versus_best) >= {"ndcg@5", "recall@5"}
    # learning curves come only from models that report epochs through fit callbacks
    curve = rep.models["FunkSVD"].learning_curve
    assert list(curve) == ["train_rmse"] and len(curve["train_rmse"]) == 6
    assert rep.models["Popularity"].learning_curve == {}
    assert rep.models["FunkSVD"].card["data_fingerprint"] == rep.models["ItemKNN"].card[
        "data_fingerprint"]
    buckets = rep.models["ItemKNN"].by_activity["ndcg"]
    assert sum(b["n"] for b in buckets.values()) == rep.meta["n_users_evaluated"]
    shares = rep.models["Popularity"].by_popularity["share_of_recommendations"]
    assert sum(v["mean"] for v in shares.values()) == pytest.approx(1.0)
    user = rep.sample_users[0]
    assert len(user["recommendations"]["ItemKNN"]) == 10 and user["history"]  # top-10
    assert user["history"][0]["title"].startswith("Title ")
    for name in ("Popularity", "ItemKNN", "FunkSVD"):  # every model explains its top-10
        first = user["recommendations"][name][0]["explanation"]
        assert first["reasons"] and first["method"]
    item_reasons = [r for e in user["recommendations"]["ItemKNN"]
                    for r in e["explanation"]["reasons"] if r["kind"] == "item"]
    assert item_reasons and all(r["name"].startswith("Title ") for r in item_reasons)


def test_json_is_plain_and_complete(rep: EvaluationReport, tmp_path: Path) -> None:
    path = rep.save(tmp_path / "report.json")
    data = json.loads(path.read_text())
    assert set(data["models"]) == {"Popularity", "ItemKNN", "FunkSVD"}
    assert data["models"]["ItemKNN"]["metrics"]["ndcg@5"]["mean"] == pytest.approx(
        rep.models["ItemKNN"].summary["ndcg@5"]["mean"])
    assert len(data["paired_tests_ndcg"]) == 3 and data["searches"]["BaselineOnly"]
    assert data["meta"]["k"] == 5


@pytest.fixture(scope="module")
def html_path(rep: EvaluationReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rep.save(tmp_path_factory.mktemp("report") / "report.html")


def _count_plots(rep: EvaluationReport) -> int:
    # by k, NDCG distribution, accuracy vs popularity, buckets, long tail, learning curves,
    # one per search
    return 6 + len(rep.searches)


def test_html_is_self_contained(rep: EvaluationReport, html_path: Path) -> None:
    text = html_path.read_text()
    assert text.count("<svg") == _count_plots(rep)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "url(http" not in text and "<script" not in text and "@import" not in text
    assert "Title " in text  # labels, not raw ids
    for name in ("Popularity", "ItemKNN", "FunkSVD"):
        assert name in text


def test_report_opens_in_headless_chromium(rep: EvaluationReport, html_path: Path,
                                           tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    path = html_path
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            n_svg = page.locator("main svg").count()
            sizes = page.eval_on_selector_all(
                "main svg", "els => els.map(e => e.getBoundingClientRect().width)")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [path.as_uri()]  # nothing fetched besides the page itself
    assert n_svg == _count_plots(rep)
    assert all(w > 100 for w in sizes)  # every plot laid out with a real size
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_report_errors_and_matplotlib_missing(rep: EvaluationReport, split,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="at least one model"):
        report({}, split)
    with pytest.raises(ConfigError, match="'x' is a str, not a chuchun Recommender"):
        report({"x": "Popularity"}, split)  # type: ignore[dict-item]
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ConfigError, match=r"install the report extra: pip install 'chuchun\[report\]'"):
        rep.to_html()
    assert json.loads(rep.to_json())["meta"]["k"] == 5  # JSON needs no plots


def test_cli_report_writes_html_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = block_interactions(n_users=40, n_items=30, random_state=1)
    csv = tmp_path / "log.csv"
    data.to_pandas().to_csv(csv, index=False)
    out = tmp_path / "cmp.json"
    args = ["report", "--data", str(csv), "--model", "Popularity", "--model",
            "ImplicitItemKNN:n_neighbors=5", "--split", "temporal", "-k", "5", "--max-k", "8",
            "--samples", "1", "--output", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    payload = json.loads(out.read_text())
    assert list(payload["models"]) == ["Popularity", "ImplicitItemKNN:n_neighbors=5"]
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--data", str(csv), "--model", ":x=1", "--output", str(out)])
    assert exit_info.value.code == 1
