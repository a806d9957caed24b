"""Item and user side features: each column kind, alignment and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chuchun import ConfigError, DataError, Vocabulary
from chuchun.data import ItemFeatures, UserFeatures
from chuchun.data.features import tokenize


@pytest.fixture()
def movies() -> pd.DataFrame:
    return pd.DataFrame({
        "item": [1, 2, 3],
        "genres": ["Animation|Children", "Action", np.nan],
        "studio": ["Pixar", "Fox", "Pixar"],
        "year": [1995, 2005, np.nan],
        "tags": ["funny toy story", "action explosions", "funny"],
    })


def test_each_kind_of_column(movies: pd.DataFrame) -> None:
    f = ItemFeatures.from_pandas(movies, categorical=["studio"], multi_valued=["genres"],
                                 numeric=["year"], text=["tags"])
    names = f.feature_names.tolist()
    assert names[:5] == ["studio=Fox", "studio=Pixar", "genres=Action", "genres=Animation",
                         "genres=Children"]
    assert "year" in names and "tags:funny" in names and "tags:toy" in names
    m = f.matrix.toarray()
    col = {n: j for j, n in enumerate(names)}
    # multi-hot block scaled to unit length
    assert m[0, col["genres=Animation"]] == pytest.approx(1 / np.sqrt(2))
    assert m[2, col["genres=Action"]] == 0.0  # missing genres: no feature
    # min-max scaled numbers, missing -> 0
    assert m[:, col["year"]].tolist() == pytest.approx([0.0, 1.0, 0.0])
    # TF-IDF with smoothed idf, rows of the block unit length
    idf_funny = np.log(4 / 3) + 1
    idf_toy = np.log(4 / 2) + 1
    row0 = np.array([idf_funny, idf_toy, idf_toy])  # funny, toy, story
    assert m[0, col["tags:funny"]] == pytest.approx(idf_funny / np.linalg.norm(row0), rel=1e-5)
    assert m[2, col["tags:funny"]] == pytest.approx(1.0)
    assert f.feature_columns[col["tags:toy"]] == "tags"
    assert f.n_features == len(names) and len(f) == 3


def test_standard_scaling_weights_and_min_df(movies: pd.DataFrame) -> None:
    f = ItemFeatures.from_pandas(movies, numeric=["year"], text=["tags"],
                                 numeric_scaling="standard", min_df=2, weights={"tags": 2.0})
    assert f.feature_names.tolist() == ["year", "tags:funny"]
    m = f.matrix.toarray()
    assert m[:2, 0].tolist() == pytest.approx([-1.0, 1.0])
    assert m[0, 1] == pytest.approx(2.0)


def test_alignment_to_a_vocabulary(movies: pd.DataFrame) -> None:
    vocab = Vocabulary(np.array([2, 3, 4], dtype=np.int64))
    f = ItemFeatures.from_pandas(movies, categorical=["studio"], vocabulary=vocab)
    assert f.ids == vocab
    m = f.matrix.toarray()
    assert m[0].tolist() == [1.0, 0.0]  # id 2: Fox
    assert m[2].tolist() == [0.0, 0.0]  # id 4: no row in the table
    rows = f.rows([3, 99]).toarray()
    assert rows[0].tolist() == [0.0, 1.0] and rows[1].tolist() == [0.0, 0.0]
    assert set(f.to_pandas().columns) == {"id", "feature", "value"}


def test_per_column_separator(movies: pd.DataFrame) -> None:
    frame = movies.assign(genres=movies.genres.str.replace("|", ";"))
    f = ItemFeatures.from_pandas(frame, multi_valued={"genres": ";"})
    assert f.feature_names.tolist() == ["genres=Action", "genres=Animation", "genres=Children"]


def test_user_features_and_string_ids() -> None:
    users = pd.DataFrame({"user": ["u1", "u2"], "age": [20, 40], "job": ["a", "b"]})
    f = UserFeatures.from_pandas(users, numeric=["age"], categorical=["job"])
    assert f.ids.ids.tolist() == ["u1", "u2"]
    assert f.matrix.toarray().tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]


def test_tokenizer() -> None:
    assert tokenize("Sci-Fi, a Toy_Story 2!") == ["sci", "fi", "toy", "story"]


def test_bad_inputs(movies: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"column\(s\) \['genre'\] not found; columns are"):
        ItemFeatures.from_pandas(movies, multi_valued=["genre"])
    with pytest.raises(DataError, match="empty input"):
        ItemFeatures.from_pandas(movies.iloc[:0], categorical=["studio"])
    with pytest.raises(ConfigError, match="no feature columns"):
        ItemFeatures.from_pandas(movies)
    with pytest.raises(ConfigError, match="more than one feature kind"):
        ItemFeatures.from_pandas(movies, categorical=["studio"], text=["studio"])
    with pytest.raises(ConfigError, match="list of column names"):
        ItemFeatures.from_pandas(movies, categorical="studio")
    with pytest.raises(DataError, match="non-numeric"):
        ItemFeatures.from_pandas(movies, numeric=["studio"])
    dup = pd.concat([movies, movies.iloc[:1]])
    with pytest.raises(DataError, match="duplicated ids"):
        ItemFeatures.from_pandas(dup, categorical=["studio"])
    nan_ids = movies.assign(item=[1, None, 3])
    with pytest.raises(DataError, match="missing ids"):
        ItemFeatures.from_pandas(nan_ids, categorical=["studio"])
    with pytest.raises(ConfigError, match="numeric_scaling"):
        ItemFeatures.from_pandas(movies, numeric=["year"], numeric_scaling="log")
    with pytest.raises(ConfigError, match="weights given"):
        ItemFeatures.from_pandas(movies, numeric=["year"], weights={"tags": 1.0})
    with pytest.raises(ConfigError, match="min_df"):
        ItemFeatures.from_pandas(movies, text=["tags"], min_df=0)
    with pytest.raises(DataError, match="DataFrame"):
        ItemFeatures.from_pandas([1, 2], categorical=["studio"])
    with pytest.raises(DataError, match="Vocabulary"):
        ItemFeatures.from_pandas(movies, categorical=["studio"]).align([1, 2])
