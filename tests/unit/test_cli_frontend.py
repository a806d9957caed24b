"""The command line as a complete front-end: ids, files, side data, everyday commands, feedback.

Each behaviour is checked once through the real ``chuchun`` script in a subprocess (``run``);
variants go through the same entry point in this process (``invoke``), which is much faster.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chuchun.cli._common import load_data
from chuchun.cli.commands import recommend_command
from chuchun.data import Interactions
from chuchun.io import load_model
from chuchun.models import ItemKNN, Recommender
from test_cli import invoke, one_error_line, run

HUGE = ["9223372036854775808", "18446744073709551615", "100000000000000000000000"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frontend")


@pytest.fixture(scope="module")
def movies(work: Path) -> dict[str, Path]:
    """40 users x 16 movies in two taste groups, with genres, descriptions and titles."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(40):
        for i in rng.choice(16, size=8, replace=False):
            liked = (i % 2) == (u % 2)
            rows.append((f"u{u:02d}", f"m{i:02d}", 5 if liked else 1, 10 * len(rows)))
    ratings = work / "ratings.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).to_csv(ratings,
                                                                            index=False)
    items = pd.DataFrame({
        "item": [f"m{i:02d}" for i in range(16)],
        "genres": ["Drama|Romance" if i % 2 else "Action|Sci-Fi" for i in range(16)],
        "plot": ["a quiet love story" if i % 2 else "space battles and robots"
                 for i in range(16)],
        "title": [f"Movie number {i}" for i in range(16)],
    })
    features = work / "items.csv"
    items.to_csv(features, index=False)
    return {"ratings": ratings, "features": features}


@pytest.fixture(scope="module")
def movielens_dir(work: Path) -> Path:
    """A tiny directory in the MovieLens latest format (ratings, movies, tags)."""
    d = work / "ml-tiny"
    d.mkdir()
    rng = np.random.default_rng(5)
    rows = [(u, int(i), float(4 + (u + i) % 2), 1000 + 7 * u + int(i))
            for u in range(1, 31) for i in rng.choice(np.arange(1, 21), 8, replace=False)]
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        d / "ratings.csv", index=False)
    pd.DataFrame({"movieId": range(1, 21), "title": [f"Film {i} (2001)" for i in range(1, 21)],
                  "genres": ["Comedy|Drama" if i % 2 else "Horror" for i in range(1, 21)]}
                 ).to_csv(d / "movies.csv", index=False)
    pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "tag": ["funny", "scary"],
                  "timestamp": [1, 2]}).to_csv(d / "tags.csv", index=False)
    return d


# -- ids are never corrupted ------------------------------------------------------------------
def test_ids_beyond_int64_round_trip_exactly(work: Path) -> None:
    path = work / "huge.csv"
    path.write_text("user,item,rating\n" + "".join(
        f"{u},{i},{r}\n" for u, i, r in [(HUGE[0], HUGE[1], 5), (HUGE[1], HUGE[2], 4),
                                         (HUGE[2], HUGE[0], 3), ("1", HUGE[0], 2)]))
    out = work / "huge-model"
    fit = run("fit", "--data", path, "--model", "Popularity", "--out", out)
    assert fit.returncode == 0, fit.stderr
    model = load_model(out)
    assert sorted(model.users_.ids.tolist()) == sorted([*HUGE, "1"])
    assert sorted(model.items_.ids.tolist()) == sorted(HUGE)
    rec = invoke("recommend", "--model", out, "--user", HUGE[2], "--user", HUGE[1],
                 "--include-seen", "--format", "json")
    records = json.loads(rec.stdout)
    assert {r["user"] for r in records} == {HUGE[2], HUGE[1]}
    assert {r["item"] for r in records} == set(HUGE)
    # asked for integers, such ids are refused with the flag to use, never wrapped
    refused = run("fit", "--data", path, "--model", "Popularity", "--id-type", "int",
                  "--out", work / "never")
    assert refused.returncode == 1
    line = one_error_line(refused)
    assert "user id 9223372036854775808 lies outside the 64-bit integer range" in line
    assert "--id-type str" in line and not (work / "never").exists()
    # auto keeps such ids as text too
    auto = invoke("fit", "--data", path, "--model", "Popularity", "--id-type", "auto",
                  "--out", work / "auto")
    assert auto.returncode == 0, auto.stderr
    assert set(HUGE) <= set(load_model(work / "auto").users_.ids.tolist())


def test_python_ids_beyond_int64_kept_or_refused() -> None:
    big = np.array([2**64 - 1, 2**63, 5], dtype=np.uint64)
    data = Interactions.from_arrays(big, [1, 2, 3])
    assert sorted(data.users.ids.tolist()) == sorted(["18446744073709551615",
                                                      "9223372036854775808", "5"])
    py = Interactions.from_arrays([10**23, 7], ["a", "b"])
    assert "100000000000000000000000" in py.users.ids.tolist()
    ints = Interactions.from_arrays(np.array([3, 7], dtype=np.int64), [1, 2])
    assert ints.users.ids.dtype == np.int64  # in-memory dtypes are kept
    with pytest.raises(Exception, match="beyond 2\\*\\*53"):
        Interactions.from_arrays(np.array([1e23, 1.0]), [1, 2])


def test_leading_zero_ids_stay_distinct(work: Path) -> None:
    path = work / "zeros.csv"
    path.write_text("user,item,rating\n007,10,5\n7,010,4\n7,10,3\n")
    out = work / "zeros-model"
    proc = run("fit", "--data", path, "--model", "Popularity", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "(2 users, 2 items)" in proc.stdout
    model = load_model(out)
    assert sorted(model.users_.ids.tolist()) == ["007", "7"]
    assert sorted(model.items_.ids.tolist()) == ["010", "10"]
    auto = invoke("fit", "--data", path, "--model", "Popularity", "--id-type", "auto",
                  "--out", work / "zeros-auto")
    assert "(2 users, 2 items)" in auto.stdout  # not plain integers: kept as text
    merged = invoke("fit", "--data", path, "--model", "Popularity", "--id-type", "int",
                    "--duplicates", "last", "--out", work / "zeros-int")
    assert "(1 users, 1 items)" in merged.stdout  # asked for integers: 007 is 7
    for id_type, users in (("str", ["007", "7"]), ("auto", ["007", "7"]), ("int", [7])):
        data = Interactions.from_csv(path, id_type=id_type, duplicates="last")
        assert sorted(data.users.ids.tolist()) == users
    swapped = Interactions.from_csv(path, id_type="auto", user_col="item", item_col="user")
    assert sorted(swapped.users.ids.tolist()) == ["010", "10"]


def test_separator_hint_and_short_row(work: Path) -> None:
    semi = work / "semi.csv"
    semi.write_text("user;item;rating\n1;2;3\n")
    proc = run("fit", "--data", semi, "--model", "Popularity", "--out", work / "x")
    assert proc.returncode == 1
    assert "pass --sep ';'" in one_error_line(proc)
    tab = work / "tab.csv"
    tab.write_text("user\titem\n1\t2\n")
    assert "pass --sep '\\t'" in one_error_line(
        invoke("fit", "--data", tab, "--model", "Popularity", "--out", work / "x"))
    short = work / "short.csv"
    short.write_text("user,item,rating\n1,2,3\n\n1,3\n")
    proc = invoke("fit", "--data", short, "--model", "Popularity", "--out", work / "x")
    line = one_error_line(proc)
    assert "short row at line 4" in line and "2 field(s) where the header has 3" in line
    assert "finite" not in line


# -- reading real files -----------------------------------------------------------------------
def test_headerless_data_file_with_escaped_tab(work: Path) -> None:
    path = work / "u.data"
    path.write_text("".join(f"{u}\t{i}\t{1 + (u * i) % 5}\t{100 + u}\n"
                            for u in range(1, 6) for i in range(1, 5)))
    proc = run("fit", "--data", path, "--sep", "\\t", "--no-header",
               "--names", "user,item,rating,timestamp", "--model", "BaselineOnly",
               "--out", work / "udata")
    assert proc.returncode == 0, proc.stderr
    assert "on 20 interactions (5 users, 4 items)" in proc.stdout
    missing = invoke("fit", "--data", path, "--sep", "tab", "--no-header", "--model",
                     "Popularity", "--out", work / "x")
    assert "--no-header needs the column names: --names" in one_error_line(missing)


def test_standard_input(work: Path, movies: dict[str, Path]) -> None:
    text = movies["ratings"].read_bytes()
    proc = run("fit", "--data", "-", "--data-format", "csv", "--model", "Popularity",
               "--out", work / "stdin", input_bytes=text)
    assert proc.returncode == 0, proc.stderr
    assert "(40 users, 16 items)" in proc.stdout
    buf = io.BytesIO()
    pd.read_csv(movies["ratings"]).to_parquet(buf)
    parquet = run("fit", "--data", "-", "--data-format", "parquet", "--model", "Popularity",
                  "--out", work / "stdin-pq", input_bytes=buf.getvalue())
    assert parquet.returncode == 0, parquet.stderr
    assert "(40 users, 16 items)" in parquet.stdout
    unsaid = run("fit", "--data", "-", "--model", "Popularity", "--out", work / "x",
                 input_bytes=text)
    assert "--data-format csv, tsv or parquet" in one_error_line(unsaid)


def test_item_features_and_labels_from_files(work: Path, movies: dict[str, Path]) -> None:
    out = work / "content"
    proc = run("fit", "--data", movies["ratings"], "--model", "ContentBased",
               "--item-features", movies["features"], "--multi-valued", "genres=|",
               "--text", "plot", "--labels", movies["features"], "--label-col", "title",
               "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "with item labels" in proc.stdout
    model = load_model(out)
    assert model.item_labels_[model.items_.index(["m03"])[0]] == "Movie number 3"
    explain = run("explain", "--model", out, "--user", "u00", "--item", "m02",
                  "--format", "json")
    assert explain.returncode == 0, explain.stderr
    record = json.loads(explain.stdout)[0]
    assert record["label"] == "Movie number 2"
    assert {r["kind"] for r in record["reasons"]} <= {"feature", "item", "bias", "interaction"}
    assert any("Movie number" in r["label"] or "genres=" in str(r["id"])
               for r in record["reasons"])
    # features given by flag to a model that cannot use them: an error naming the flag
    bad = invoke("fit", "--data", movies["ratings"], "--model", "Popularity",
                 "--item-features", movies["features"], "--categorical", "genres",
                 "--out", work / "x")
    assert "Popularity does not use item features; drop --item-features" in one_error_line(bad)
    stray = invoke("fit", "--data", movies["ratings"], "--model", "ContentBased",
                   "--item-features", movies["features"], "--numeric", "nope",
                   "--out", work / "x")
    assert "feature column(s) ['nope'] are in none of the feature tables" in one_error_line(
        stray)


def test_movielens_directory_brings_features_and_titles(work: Path, movielens_dir: Path) -> None:
    out = work / "ml-content"
    proc = run("fit", "--data", movielens_dir, "--model", "ContentBased", "--out", out)
    assert proc.returncode == 0, proc.stderr
    rec = invoke("recommend", "--model", out, "--user", "1", "-k", "3", "--format", "json")
    records = json.loads(rec.stdout)
    assert len(records) == 3
    assert all(r["label"] == f"Film {r['item']} (2001)" for r in records)
    loaded = load_data(str(movielens_dir))
    assert loaded.item_features is not None and loaded.labels is not None
    assert any(n.startswith("genres=") for n in loaded.item_features.feature_names)
    assert any(n.startswith("tags:") for n in loaded.item_features.feature_names)


def test_movielens_100k_brings_user_demographics(work: Path) -> None:
    d = work / "ml-100k"
    d.mkdir()
    (d / "u.data").write_text("1\t1\t5\t10\n2\t2\t3\t11\n1\t2\t4\t12\n")
    flags = "|".join(["0"] * 19)
    (d / "u.item").write_text(f"1|Alpha (1990)|01-Jan-1990||http://x|{flags}\n"
                              f"2|Beta (1991)|01-Jan-1991||http://y|{flags}\n")
    (d / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    loaded = load_data(str(d))
    assert loaded.user_features is not None
    assert "gender=F" in loaded.user_features.feature_names.tolist()
    assert loaded.labels is not None and loaded.labels[2] == "Beta (1991)"
    # the command line passes them, without flags, to a model that takes user features
    out = work / "ml-100k-hybrid"
    proc = run("fit", "--data", d, "--model", "HybridMF:n_factors=2,n_epochs=2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "with item labels" in proc.stdout
    names = load_model(out).feature_names_.tolist()
    assert {"gender=F", "gender=M", "occupation=technician"} <= set(names)


def test_user_features_from_a_file(work: Path, movies: dict[str, Path]) -> None:
    users = work / "users.csv"
    pd.DataFrame({"user": [f"u{u:02d}" for u in range(40)],
                  "side": ["odd" if u % 2 else "even" for u in range(40)],
                  "age": [20 + u for u in range(40)]}).to_csv(users, index=False)
    out = work / "hybrid"
    proc = run("fit", "--data", movies["ratings"], "--model", "HybridMF:n_factors=4,n_epochs=5",
               "--user-features", users, "--categorical", "side", "--numeric", "age",
               "--item-features", movies["features"], "--multi-valued", "genres=|",
               "--out", out)
    assert proc.returncode == 0, proc.stderr
    names = set(load_model(out).feature_names_.tolist())
    assert {"side=odd", "side=even", "age", "genres=Drama", "genres=Sci-Fi"} <= names
    explain = run("explain", "--model", out, "--user", "u01", "--item", "m03", "--n-reasons",
                  "50", "--format", "json")
    assert explain.returncode == 0, explain.stderr
    ids = {str(r["id"]) for r in json.loads(explain.stdout)[0]["reasons"]}
    assert any("side=odd" in i for i in ids)  # the user's own feature takes part in the score


def test_bundled_dataset_brings_genres_tags_and_titles(work: Path) -> None:
    out = work / "bundled-content"
    proc = run("fit", "--data", "ml-latest-small", "--model", "ContentBased", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "with item labels" in proc.stdout
    model = load_model(out)
    assert "Toy Story (1995)" in set(model.item_labels_.tolist())
    rec = run("recommend", "--model", out, "--user", "1", "-k", "2", "--format", "json")
    assert rec.returncode == 0, rec.stderr
    records = json.loads(rec.stdout)
    titles = set(model.item_labels_.tolist())
    assert len(records) == 2 and all(r["label"] in titles for r in records)


def test_context_columns(work: Path) -> None:
    path = work / "ctx.csv"
    path.write_text("user,item,device\na,x,phone\na,y,tv\nb,x,phone\n")
    loaded = load_data(str(path), context=("device",))
    assert loaded.context == ["device"]
    assert loaded.data.context["device"].tolist() == ["phone", "tv", "phone"]
    proc = invoke("fit", "--data", path, "--context", "device", "--model", "Popularity",
                  "--out", work / "x")
    assert "Popularity does not use per-interaction context; drop --context" in \
        one_error_line(proc)
    missing = invoke("fit", "--data", path, "--context", "weather", "--model", "Popularity",
                     "--out", work / "x")
    assert "context column 'weather' not found" in one_error_line(missing)


# -- everyday commands ------------------------------------------------------------------------
def test_evaluate_compares_models_on_one_split(work: Path, movies: dict[str, Path]) -> None:
    out = work / "cmp.json"
    proc = run("evaluate", "--data", movies["ratings"], "--model", "ItemKNN:n_neighbors=5",
               "--model", "BaselineOnly", "--model", "Popularity", "--param", "n_epochs=3",
               "-k", "5", "--format", "json", "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    payload = json.loads(out.read_text())
    assert payload["split"].startswith("temporal: each user's latest 20%")
    results = payload["results"]
    assert [r["model"] for r in results] == ["ItemKNN", "BaselineOnly", "Popularity"]
    assert results[0]["params"] == "n_neighbors=5" and results[1]["params"] == "n_epochs=3"
    assert len({r["n_test"] for r in results}) == 1  # the same split for every model
    assert all(isinstance(r["n_test"], int) for r in results)
    assert "rmse" in results[1] and "rmse" not in results[2]
    table = invoke("evaluate", "--data", movies["ratings"], "--model", "ItemKNN:n_neighbors=5",
                   "--model", "Popularity", "-k", "5")
    lines = table.stdout.splitlines()
    assert lines[1].startswith("split: temporal")
    assert lines[3].split() == ["metric", "ItemKNN", "Popularity"]
    n_test = next(line for line in lines if line.startswith("n_test "))
    assert re.fullmatch(r"n_test\s+\d+\s+\d+", n_test)  # counts print as integers
    csv = invoke("evaluate", "--data", movies["ratings"], "--model", "Popularity",
                 "--model", "Random", "--split", "holdout", "--format", "csv")
    frame = pd.read_csv(io.StringIO(csv.stdout))
    assert frame["model"].tolist() == ["Popularity", "Random"]
    nobody = invoke("evaluate", "--data", movies["ratings"], "--model", "Popularity",
                    "--model", "Random", "--param", "n_factors=3")
    assert "none of the models" in one_error_line(nobody)


def test_evaluate_a_content_model_with_features_from_flags(movies: dict[str, Path]) -> None:
    proc = run("evaluate", "--data", movies["ratings"], "--model", "ContentBased",
               "--item-features", movies["features"], "--multi-valued", "genres=|",
               "--text", "plot", "-k", "5", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert [r["model"] for r in results] == ["ContentBased"]
    assert 0.0 <= results[0]["ndcg@5"] <= 1.0


def test_tune_searches_on_training_data_and_saves_the_best(work: Path,
                                                           movies: dict[str, Path]) -> None:
    out = work / "tuned"
    proc = run("tune", "--data", movies["ratings"], "--model", "ItemKNN",
               "--param", "n_neighbors=2,5,10", "--search", "grid", "--metric", "ndcg@5",
               "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "grid search over n_neighbors of ItemKNN: 3 trials on a 20% validation split" \
        in proc.stdout
    best = re.search(r"best: n_neighbors=(\d+) \(ndcg@5 ([\d.]+)\)", proc.stdout)
    assert best is not None
    assert load_model(out).n_neighbors == int(best.group(1))
    assert load_model(out).n_users_ == 40  # refitted on all of --data
    rand = invoke("tune", "--data", movies["ratings"], "--model", "FunkSVD",
                  "--param", "learning_rate=0.001:0.05:log", "--param", "n_factors=2:8",
                  "--param", "n_epochs=3", "--search", "random", "--trials", "3",
                  "--metric", "rmse", "--format", "json")
    assert rand.returncode == 0, rand.stderr
    trials = json.loads(rand.stdout)["trials"]
    assert len(trials) == 3
    assert all(0.001 <= t["learning_rate"] <= 0.05 and 2 <= t["n_factors"] <= 8
               and isinstance(t["n_factors"], int) for t in trials)
    bayes = invoke("tune", "--data", movies["ratings"], "--model", "ItemKNN",
                   "--param", "n_neighbors=2:12", "--search", "bayesian", "--trials", "3",
                   "--format", "csv")
    assert bayes.returncode == 0, bayes.stderr
    assert len(pd.read_csv(io.StringIO(bayes.stdout))) == 3
    grid_range = invoke("tune", "--data", movies["ratings"], "--model", "ItemKNN",
                        "--param", "n_neighbors=2:12", "--search", "grid")
    assert "--search grid needs the values of n_neighbors listed" in one_error_line(grid_range)


@pytest.fixture(scope="module")
def knn_model(work: Path, movies: dict[str, Path]) -> Path:
    out = work / "knn"
    proc = invoke("fit", "--data", movies["ratings"], "--model", "ItemKNN:n_neighbors=5",
                  "--labels", movies["features"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_similar_items_and_users(work: Path, knn_model: Path, movies: dict[str, Path]) -> None:
    proc = run("similar", "--model", knn_model, "--item", "m02", "-k", "3", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    expected = load_model(knn_model).similar_items(["m02"], k=3)
    assert [r["item"] for r in records] == expected.to_lists()[0]
    assert all(r["item"] != "m02" for r in records)
    assert all(r["label"] == f"Movie number {int(r['item'][1:])}" for r in records)
    assert records[0]["query_label"] == "Movie number 2"
    table = invoke("similar", "--model", knn_model, "--item", "m02", "-k", "3")
    assert table.stdout.startswith("m02: Movie number 2")
    user_model = work / "uknn"
    invoke("fit", "--data", movies["ratings"], "--model", "ALS:n_factors=4,n_epochs=3",
           "--out", user_model)
    users = invoke("similar", "--model", user_model, "--user", "u00", "-k", "2",
                   "--format", "csv")
    assert users.returncode == 0, users.stderr
    frame = pd.read_csv(io.StringIO(users.stdout))
    assert frame.columns.tolist() == ["query", "rank", "user", "similarity"]
    assert "u00" not in frame["user"].tolist()
    no_users = invoke("similar", "--model", knn_model, "--user", "u00")
    assert "ItemKNN has no user representation to compare" in one_error_line(no_users)
    unknown = invoke("similar", "--model", knn_model, "--item", "zzz", "--unknown", "error")
    assert "--unknown fallback" in one_error_line(unknown)


def test_recommend_for_a_new_users_history(work: Path, movies: dict[str, Path]) -> None:
    implicit = work / "iknn"
    assert invoke("fit", "--data", movies["ratings"], "--model", "ImplicitItemKNN",
                  "--out", implicit).returncode == 0
    proc = run("recommend", "--model", implicit, "--history", "m00,m02,m01", "-k", "3",
               "--format", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    expected = load_model(implicit).recommend_for_history([["m00", "m02", "m01"]], k=3)
    assert [r["item"] for r in records] == expected.to_lists()[0]
    assert {"m00", "m01", "m02"}.isdisjoint(r["item"] for r in records)
    history = work / "history.txt"
    history.write_text("# a new user\nm00\nm02\nm01\n")
    from_file = invoke("recommend", "--model", implicit, "--history-file", history, "-k", "3",
                       "--format", "json")
    assert json.loads(from_file.stdout) == records
    rating = work / "baseline"
    invoke("fit", "--data", movies["ratings"], "--model", "BaselineOnly", "--out", rating)
    unrated = invoke("recommend", "--model", rating, "--history", "m00,m02")
    assert "needs their ratings" in one_error_line(unrated)
    rated = invoke("recommend", "--model", rating, "--history", "m00=5,m02=1", "-k", "2",
                   "--format", "json")
    expected = load_model(rating).recommend_for_history([["m00", "m02"]], ratings=[[5, 1]], k=2)
    assert [r["item"] for r in json.loads(rated.stdout)] == expected.to_lists()[0]
    both = invoke("recommend", "--model", implicit, "--history", "m00", "--user", "u01")
    assert both.returncode == 2


def test_recommend_among_candidates_and_notes_on_unknown_ids(work: Path,
                                                           movies: dict[str, Path]) -> None:
    content = work / "content"
    assert invoke("fit", "--data", movies["ratings"], "--model", "ContentBased",
                  "--item-features", movies["features"], "--multi-valued", "genres=|",
                  "--out", content).returncode == 0
    model = load_model(content)
    pool = ["m03", "m04", "m05", "m06"]
    proc = run("recommend", "--model", content, "--user", "u00", "-k", "2", "--candidates",
               ",".join(pool + ["nope"]), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    expected = model.recommend(["u00"], k=2, candidates=pool).to_lists()[0]
    assert [r["item"] for r in json.loads(proc.stdout)] == expected
    assert set(expected) <= set(pool)
    assert "1 candidate item(s) not in the model, left out: nope" in proc.stderr
    listed = work / "candidates.txt"
    listed.write_text("# new items\nm03\nm04\nm05\nm06\n")
    from_file = invoke("recommend", "--model", content, "--history", "m00,m02,zzz", "-k", "2",
                       "--candidates-file", listed, "--format", "json")
    assert from_file.returncode == 0, from_file.stderr
    folded = model.recommend_for_history([["m00", "m02"]], k=2, candidates=pool).to_lists()[0]
    assert [r["item"] for r in json.loads(from_file.stdout)] == folded
    assert "1 history item(s) not in the model, left out: zzz" in from_file.stderr
    both = invoke("recommend", "--model", content, "--user", "u00", "--candidates", "m03",
                  "--candidates-file", listed)
    assert both.returncode == 2
    similar = invoke("similar", "--model", content, "--item", "qqq", "-k", "2")
    assert similar.returncode == 0
    assert "1 item(s) not in the model, answered with popular items: qqq" in similar.stderr


def test_cli_errors_name_flags_not_python_calls(movies: dict[str, Path], work: Path) -> None:
    no_features = invoke("fit", "--data", movies["ratings"], "--model", "ContentBased",
                         "--out", work / "never")
    line = one_error_line(no_features)
    assert line.endswith("ContentBased needs item features at fit time: --item-features FILE")
    assert not (work / "never").exists()


def test_unknown_policy_default_matches_python(knn_model: Path) -> None:
    option = next(p for p in recommend_command.params if p.name == "unknown")
    python_default = inspect.signature(Recommender.recommend).parameters["unknown"].default
    assert option.default == python_default == "fallback"
    # an unknown user gets the fallback list by default, as in Python
    proc = run("recommend", "--model", knn_model, "--user", "nobody", "-k", "3",
               "--format", "json")
    assert proc.returncode == 0, proc.stderr
    expected = load_model(knn_model).recommend(["nobody"], k=3).to_lists()[0]
    assert [r["item"] for r in json.loads(proc.stdout)] == expected and len(expected) == 3
    refused = run("recommend", "--model", knn_model, "--user", "nobody", "--unknown", "error")
    assert refused.returncode == 1
    line = one_error_line(refused)
    assert "--unknown" in line and "unknown=" not in line  # the flag, not the Python keyword


def test_recommend_explain_csv_has_the_reasons(knn_model: Path) -> None:
    # enough reasons that the rated neighbour items show beside the bias terms
    proc = run("recommend", "--model", knn_model, "--user", "u00", "-k", "2", "--explain",
               "--n-reasons", "8", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(io.StringIO(proc.stdout))
    assert {"reason_kind", "reason_id", "reason_label", "reason_contribution"} <= set(frame)
    assert set(frame["rank"]) == {1, 2} and frame.groupby("rank").size().max() <= 8
    model = load_model(knn_model)
    first = frame[frame["rank"] == 1]
    expected = model.explain("u00", first["item"].iloc[0], n_reasons=8)[0]
    assert first["reason_id"].astype(str).tolist() == [str(r.id) for r in expected.reasons]
    items = first[first["reason_kind"] == "item"]
    assert len(items) and items["reason_label"].str.startswith("Movie number").all()


def test_demo_explains_the_list_it_shows() -> None:
    proc = run("--no-progress", "demo", "--quick", "--model", "ItemKNN", "--model", "Popularity")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = next(j for j, line in enumerate(lines) if line.startswith("top-10 for user"))
    assert "from ItemKNN" in lines[start]
    ranked = [j for j, line in enumerate(lines) if re.match(r"\s+\d+\. [ *] ", line)]
    assert len(ranked) == 10
    for j in ranked:  # each recommendation is followed by its reasons, with titles
        assert lines[j + 1].strip().startswith("because: ")
        assert re.search(r"\(\d{4}\) \([+-]", lines[j + 1])


# -- feedback on long work --------------------------------------------------------------------
def test_progress_lines_when_stderr_is_not_a_terminal(movies: dict[str, Path],
                                                      work: Path) -> None:
    proc = run("--log-every", "0", "fit", "--data", movies["ratings"], "--model", "FunkSVD",
               "--param", "n_epochs=4", "--param", "n_factors=4", "--out", work / "funk")
    assert proc.returncode == 0, proc.stderr
    epochs = [line for line in proc.stderr.splitlines() if line.startswith("chuchun: FunkSVD: ")]
    assert [line.split()[2] for line in epochs[-5:-1]] == ["1/4,", "2/4,", "3/4,", "4/4,"]
    assert all(re.search(r"s elapsed, train [\d.]+", line) for line in epochs[:-1])
    quiet = invoke("--no-progress", "fit", "--data", movies["ratings"], "--model", "FunkSVD",
                   "--param", "n_epochs=4", "--out", work / "funk2")
    assert "FunkSVD:" not in quiet.stderr


def test_kernel_compilation_is_announced_once(movies: dict[str, Path], work: Path,
                                              tmp_path: Path) -> None:
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    args = ("fit", "--data", movies["ratings"], "--model", "BaselineOnly",
            "--param", "method=sgd", "--out", work / "sgd")
    first = run(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "chuchun: compiling kernels, first run only" in first.stderr
    assert re.search(r"compiled \d+ kernel\(s\) for BaselineOnly in [\d.]+ s "
                     r"\(not counted in fit times\)", first.stderr)
    second = run(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "compil" not in second.stderr


def test_labels_survive_save_and_reach_explain(movies: dict[str, Path]) -> None:
    data = Interactions.from_csv(movies["ratings"], id_type="str")
    model = ItemKNN(n_neighbors=5).fit(data)
    titles = pd.read_csv(movies["features"]).set_index("item")["title"]
    model.set_item_labels(titles)
    assert model.item_labels_.shape == (data.n_items,)
    with pytest.raises(Exception, match="align with the model's 16 items"):
        model.set_item_labels(["just one"])
    model.set_item_labels(None)
    assert not hasattr(model, "item_labels_")
    model.set_item_labels(titles.to_dict())
    assert os.fspath(model.item_labels_[0]) == "Movie number 0"


def test_context_follows_duplicates_and_subsets() -> None:
    frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "x", "y"],
                          "timestamp": [2, 1, 3], "device": ["tv", "phone", "tv"]})
    data = Interactions.from_pandas(frame, duplicates="last", context_cols=["device"])
    table = data.to_pandas().sort_values(["user", "item"])
    assert table["device"].tolist() == ["tv", "tv"]  # the latest of the two (a, x) rows
    first = Interactions.from_pandas(frame, duplicates="first", context_cols=["device"])
    assert sorted(first.context["device"].tolist()) == ["phone", "tv"]
    sub = data.subset(data.user_idx == data.users.index(["b"])[0])
    assert sub.context["device"].tolist() == ["tv"]
