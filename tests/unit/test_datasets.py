"""Data set loaders and the input-validation paths of Interactions.

Known facts come from ``../shared/datasets/README.md`` (checked there against each data set's
own documentation).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chuchun import DataError, Interactions
from chuchun.datasets import (
    MovieLens,
    bundled_readme,
    cache_dir,
    download_movielens,
    load_baskets,
    load_dataset,
    load_interactions,
    load_movielens,
    load_movielens_1m,
    load_movielens_10m,
    load_movielens_20m,
    load_movielens_100k,
    load_movielens_latest_small,
)


@pytest.fixture(scope="module")
def ml100k(ml100k_dir: Path) -> MovieLens:
    return load_movielens_100k(ml100k_dir)


@pytest.fixture(scope="module")
def bundled() -> MovieLens:
    return load_movielens_latest_small()


# -- MovieLens 100K ---------------------------------------------------------------------------
def test_ml100k_known_facts(ml100k: MovieLens) -> None:
    r = ml100k.ratings
    assert len(r) == 100_000
    assert r.n_users == 943
    assert r.n_items == 1682
    first = r.to_pandas().iloc[0].tolist()
    assert first == [196, 242, 3.0, 881250949]
    assert r.rating_scale == (1.0, 5.0)
    assert set(np.unique(r.ratings)) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_ml100k_items_and_users(ml100k: MovieLens) -> None:
    items = ml100k.items
    assert len(items) == 1682
    toy = items.set_index("item").loc[1]
    assert toy.title == "Toy Story (1995)"
    assert toy.genres == "Animation|Children's|Comedy"
    # latin-1 titles decode (e.g. accented characters)
    assert items["title"].str.contains("é").any()
    users = ml100k.users
    assert users is not None and len(users) == 943
    assert list(users.columns) == ["user", "age", "gender", "occupation", "zip_code"]
    assert users.iloc[0].tolist() == [1, 24, "M", "technician", "85711"]
    assert ml100k.titles([1, 2]) == ["Toy Story (1995)", "GoldenEye (1995)"]


def test_load_movielens_detects_100k_format(ml100k_dir: Path) -> None:
    ml = load_movielens(ml100k_dir)
    assert ml.name == "ml-100k" and len(ml.ratings) == 100_000


# -- latest-small (bundled) -------------------------------------------------------------------
def test_bundled_latest_small_known_facts(bundled: MovieLens) -> None:
    r = bundled.ratings
    assert len(r) == 100_836
    assert r.n_users == 610
    assert r.n_items == 9724
    assert r.rating_scale == (0.5, 5.0)
    assert set(np.unique(r.ratings)) == {x / 2 for x in range(1, 11)}
    stamps = pd.to_datetime(r.timestamps, unit="s")
    assert str(stamps.min().date()) == "1996-03-29"
    assert str(stamps.max().date()) == "2018-09-24"
    genres = set("|".join(bundled.items["genres"]).split("|"))
    assert len(genres) == 20 and "(no genres listed)" in genres
    assert len(bundled.items) == 9742
    assert bundled.tags is not None and len(bundled.tags) == 3683
    assert list(bundled.tags.columns) == ["user", "item", "tag", "timestamp"]
    assert bundled.links is not None and bundled.links.iloc[0].imdb_id == "0114709"


def test_bundled_equals_shared_copy(bundled: MovieLens, datasets_dir: Path) -> None:
    shared = load_movielens(datasets_dir / "ml-latest-small")
    assert shared.ratings.fingerprint() == bundled.ratings.fingerprint()
    assert np.array_equal(shared.ratings.timestamps, bundled.ratings.timestamps)
    pd.testing.assert_frame_equal(shared.items, bundled.items)


def test_bundled_readme_ships_with_the_data() -> None:
    text = bundled_readme()
    assert "MovieLens" in text and "Harper" in text


def test_load_dataset_by_name(bundled: MovieLens) -> None:
    ml = load_dataset("ml-latest-small")
    assert ml.ratings.fingerprint() == bundled.ratings.fingerprint()
    assert load_movielens("ml-latest-small").ratings.n_users == 610


def test_load_dataset_unknown_name() -> None:
    with pytest.raises(DataError, match=r"unknown data set 'ml-5k'; available: .*ml-100k"):
        load_dataset("ml-5k")


# -- groceries / baskets ----------------------------------------------------------------------
def test_groceries_known_facts(datasets_dir: Path) -> None:
    baskets = load_baskets(datasets_dir / "groceries" / "groceries.csv")
    assert len(baskets) == 9835
    assert sum(len(b) for b in baskets) == 43_367
    assert max(len(b) for b in baskets) == 32
    counts = Counter(item for b in baskets for item in b)
    assert len(counts) == 169
    assert counts.most_common(5) == [
        ("whole milk", 2513), ("other vegetables", 1903), ("rolls/buns", 1809),
        ("soda", 1715), ("yogurt", 1372),
    ]
    assert baskets[0] == ["citrus fruit", "semi-finished bread", "margarine", "ready soups"]


def test_baskets_strip_whitespace_and_skip_blank_lines(tmp_path: Path) -> None:
    f = tmp_path / "b.txt"
    f.write_text(" milk , bread,\n\n   \nbeer;x ,, eggs \n")
    assert load_baskets(f) == [["milk", "bread"], ["beer;x", "eggs"]]
    assert load_baskets(f, sep=";") == [["milk , bread,"], ["beer", "x ,, eggs"]]


def test_baskets_gzip(tmp_path: Path) -> None:
    f = tmp_path / "b.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("a,b\nc\n")
    assert load_baskets(f) == [["a", "b"], ["c"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty input"), (b"\n  \n,,\n", "empty input"), (b"\xff\xfe\xfa", "cannot read")],
)
def test_baskets_errors(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "b.csv"
    f.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_baskets(f)


def test_baskets_missing_file_and_bad_sep(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_baskets(tmp_path / "none.csv")
    (tmp_path / "b.csv").write_text("a\n")
    with pytest.raises(DataError, match="sep must be a non-empty string"):
        load_baskets(tmp_path / "b.csv", sep="")


# -- generic files ----------------------------------------------------------------------------
FRAME = pd.DataFrame(
    {"u": ["a", "a", "b"], "i": [10, 20, 10], "rating": [4.0, 2.5, 5.0], "timestamp": [3, 1, 2]}
)


@pytest.mark.parametrize("name", ["x.csv", "x.tsv", "x.csv.gz", "x.parquet", "x.pq"])
def test_load_interactions_by_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if "parquet" in name or name.endswith(".pq"):
        FRAME.to_parquet(path)
    else:
        FRAME.to_csv(path, sep="\t" if name.endswith(".tsv") else ",", index=False)
    data = load_interactions(path, user_col="u", item_col="i")
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    assert list(data.users.ids) == ["a", "b"]
    np.testing.assert_array_equal(data.ratings, [4.0, 2.5, 5.0])
    np.testing.assert_array_equal(data.timestamps, [3, 1, 2])


def test_load_interactions_dat_with_separator_and_no_header(tmp_path: Path) -> None:
    path = tmp_path / "r.dat"
    path.write_text("1::10::5::100\n2::10::3::200\n")
    with pytest.raises(DataError, match=r"cannot tell the field separator .* pass sep"):
        load_interactions(path)
    data = load_interactions(path, sep="::", header=False,
                             names=["user", "item", "rating", "timestamp"])
    assert len(data) == 2 and data.rating_scale is None


def test_load_interactions_column_choices(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    FRAME.to_csv(path, index=False)
    implicit = load_interactions(path, user_col="u", item_col="i", rating_col=None,
                                 timestamp_col=None)
    assert implicit.ratings is None and implicit.timestamps is None
    with pytest.raises(DataError, match=r"user column 'user' not found; columns are "
                                        r"\['u', 'i', 'rating', 'timestamp'\]"):
        load_interactions(path)
    with pytest.raises(DataError, match="rating column 'score' not found"):
        load_interactions(path, user_col="u", item_col="i", rating_col="score")


def test_load_interactions_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    path.write_text("u,i\n")
    with pytest.raises(DataError, match=r"unknown file type '\.xlsx'"):
        load_interactions(path)


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("user,item,rating\n", {}, "empty input"),
        ("", {}, "empty input"),
        ("user,item,rating\n1,2,4\n,3,5\n", {}, r"user column has 1 missing \(empty\) ids"),
        ("user,item,rating\n1,2,4\n1,,5\n", {}, r"item column has 1 missing"),
        ("user,item,rating\n1,2,4\n1,3,\n", {}, "ratings must be finite numbers; got 1 NaN"),
        ("user,item,rating\n1,2,4\n1,3,good\n", {},
         "ratings must be numeric; got 1 non-numeric values such as 'good'"),
        ("user,item,rating\n1,2,4\n1,3,9\n", {"rating_scale": (1, 5)},
         r"ratings must lie in the declared scale \[1, 5\]; got 1 outside it"),
        ("user,item,rating\n1,2,4\n1,2,5\n", {},
         r"1 duplicate \(user, item\) pairs, e.g. user 1 item 2"),
        ("user,item,timestamp\n1,2,yesterday\n", {},
         "timestamps must be numbers or dates; got values such as 'yesterday'"),
        ('user,item\n1,"2\n', {}, "cannot parse"),
    ],
)
def test_load_interactions_content_errors(
    tmp_path: Path, content: str, kwargs: dict, message: str
) -> None:
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_interactions(path, **kwargs)


def test_load_interactions_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_interactions(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="file not found"):
        load_interactions(tmp_path / "missing.parquet")
    bad_gz = tmp_path / "x.csv.gz"
    bad_gz.write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match="cannot read .*x.csv.gz"):
        load_interactions(bad_gz)
    bad_pq = tmp_path / "x.parquet"
    bad_pq.write_bytes(b"PAR1 truncated")
    with pytest.raises(DataError, match="cannot read Parquet file"):
        load_interactions(bad_pq)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("user,item\nJos\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="cannot parse .* as delimited text"):
        load_interactions(latin)
    assert list(load_interactions(latin, encoding="latin-1").users.ids) == ["José"]
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="not a file"):
        load_interactions(folder)


# -- Interactions error paths (arrays and tables) ---------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Interactions.from_arrays([1, 2], [1]), "length mismatch: 2 user ids but 1 item"),
        (lambda: Interactions.from_arrays([1, 2], [1, 2], [3.0]),
         "length mismatch: 2 ids but 1 ratings"),
        (lambda: Interactions.from_arrays([1, 2], [1, 2], timestamps=[1]),
         "length mismatch: 2 ids but 1 timestamps"),
        (lambda: Interactions.from_arrays([], []), "empty input: the interaction log has no rows"),
        (lambda: Interactions.from_arrays([1, 2], [1, 2], duplicates="avg"),
         "duplicates must be one of .*got 'avg'"),
        (lambda: Interactions.from_arrays([1], [1], [3.0], rating_scale=(5, 1)),
         r"rating_scale must be \(min, max\) with min < max"),
        (lambda: Interactions.from_arrays([1], [1], [0.0], rating_scale=(0.5, 5)),
         r"ratings must lie in the declared scale \[0.5, 5\]"),
        (lambda: Interactions.from_arrays([1], [1], [np.inf]), "NaN or infinite"),
        (lambda: Interactions.from_arrays([1, 2], [1, 2], timestamps=[1, None]),
         "timestamps must not be missing; got 1 NaN"),
        (lambda: Interactions.from_arrays([True, False], [1, 2]),
         "user ids must be integers or strings; got booleans"),
        (lambda: Interactions.from_arrays([1.5, 2.0], [1, 2]),
         "user ids must be integers or strings; got non-integral floats"),
        (lambda: Interactions.from_arrays([1.0, np.inf], [1, 2]), "got infinite values"),
        (lambda: Interactions.from_arrays([1, 2], [None, 2]), "item column has 1 missing"),
        (lambda: Interactions.from_arrays(np.ones((2, 2)), [1, 2]),
         r"user ids must be one-dimensional; got an array of shape \(2, 2\)"),
        (lambda: Interactions.from_pandas([1, 2]), "expected a pandas DataFrame"),
        (lambda: Interactions.from_pandas(pd.DataFrame({"user": [1]}), item_col="item"),
         r"item column 'item' not found; columns are \['user'\]"),
        (lambda: Interactions.from_pandas(pd.DataFrame({"user": [1], "item": [1]}),
                                          timestamp_col="t"), "timestamp column 't' not found"),
    ],
)
def test_interactions_errors(call, message: str) -> None:
    with pytest.raises(DataError, match=message):
        call()


def test_interactions_constructor_checks() -> None:
    data = Interactions.from_arrays([1, 2], [1, 2])
    with pytest.raises(DataError, match="length mismatch: user_idx has 2 rows but item_idx has 1"):
        Interactions(data.users, data.items, np.array([0, 1]), np.array([0]))
    with pytest.raises(DataError, match="user_idx holds indices outside the user vocabulary"):
        Interactions(data.users, data.items, np.array([0, 5]), np.array([0, 1]))
    with pytest.raises(DataError, match="item_idx holds indices outside the item vocabulary"):
        Interactions(data.users, data.items, np.array([0, 1]), np.array([-1, 1]))


def test_interactions_timestamps_from_dates() -> None:
    naive = pd.Series(pd.to_datetime(["2020-01-01", "2021-01-01"]))
    aware = naive.dt.tz_localize("Europe/Paris")
    strings = ["2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"]
    expected = [1577836800, 1609459200]
    np.testing.assert_array_equal(Interactions.from_arrays([1, 2], [1, 2],
                                                           timestamps=naive).timestamps, expected)
    np.testing.assert_array_equal(Interactions.from_arrays([1, 2], [1, 2],
                                                           timestamps=strings).timestamps, expected)
    np.testing.assert_array_equal(
        Interactions.from_arrays([1, 2], [1, 2], timestamps=aware).timestamps,
        [e - 3600 for e in expected],
    )


@pytest.mark.parametrize(
    ("policy", "ratings", "stamps"),
    [("first", [2.0, 3.0], [1, 7]), ("last", [1.0, 3.0], [5, 7]),
     ("mean", [1.5, 3.0], [5, 7]), ("sum", [3.0, 3.0], [5, 7])],
)
def test_interactions_duplicate_policies(policy: str, ratings: list, stamps: list) -> None:
    data = Interactions.from_arrays([1, 1, 2], [1, 1, 2], [1.0, 2.0, 3.0], [5, 1, 7],
                                    duplicates=policy)
    frame = data.to_pandas().sort_values(["user", "item"])
    assert frame["rating"].tolist() == ratings
    assert frame["timestamp"].tolist() == stamps


# -- MovieLens file formats in miniature ------------------------------------------------------
def _write_dat_release(d: Path, with_users: bool) -> None:
    d.mkdir()
    (d / "ratings.dat").write_text(
        "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n"
    )
    (d / "movies.dat").write_bytes(
        '10::Caf\xe9 "Noir" (1999)::Drama|Film-Noir\n20::Toy Story (1995)::Animation\n'
        .encode("latin-1")
    )
    if with_users:
        (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::07030\n")
    else:
        (d / "tags.dat").write_text("1::10::noir::1139045764\n")


def test_movielens_1m_format(tmp_path: Path) -> None:
    _write_dat_release(tmp_path / "ml-1m", with_users=True)
    ml = load_movielens_1m(tmp_path / "ml-1m")
    assert ml.name == "ml-1m" and len(ml.ratings) == 3
    assert ml.ratings.rating_scale == (1.0, 5.0)
    assert ml.titles([10]) == ['Café "Noir" (1999)']
    assert ml.items.iloc[0].genres == "Drama|Film-Noir"
    assert ml.users is not None and ml.users.zip_code.tolist() == ["48067", "07030"]


def test_movielens_10m_format(tmp_path: Path) -> None:
    _write_dat_release(tmp_path / "ml-10M100K", with_users=False)
    ml = load_movielens_10m(tmp_path / "ml-10M100K")
    assert ml.name == "ml-10m" and ml.ratings.rating_scale == (0.5, 5.0)
    assert load_movielens(tmp_path / "ml-10M100K").name == "ml-10m"  # archive folder name
    assert ml.tags is not None and ml.tags.tag.tolist() == ["noir"]
    assert ml.users is None


def test_movielens_csv_format_and_errors(tmp_path: Path) -> None:
    d = tmp_path / "ml-20m"
    d.mkdir()
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n")
    with pytest.raises(DataError, match=r"'movies.csv' not found in .*ml-20m"):
        load_movielens_20m(d)
    (d / "movies.csv").write_text('movieId,title,genres\n2,"Jumanji, The (1995)",Adventure\n')
    ml = load_movielens_20m(d)
    assert ml.titles([2]) == ["Jumanji, The (1995)"] and ml.tags is None
    (d / "ratings.csv").write_text("userId,movieId,stars\n1,2,3\n")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['rating', 'timestamp'\]"):
        load_movielens(d)
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,7,1\n")
    with pytest.raises(DataError, match=r"ratings.csv': ratings must lie in the declared scale"):
        load_movielens(d)


def test_movielens_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="directory not found"):
        load_movielens(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="does not look like a MovieLens directory"):
        load_movielens(tmp_path)
    d = tmp_path / "ml-100k"
    d.mkdir()
    (d / "u.data").write_text("1\t2\t3\t4\n")
    with pytest.raises(DataError, match="'u.item' not found"):
        load_movielens_100k(d)
    (d / "u.data").write_text("")
    with pytest.raises(DataError, match="empty input"):
        load_movielens_100k(d)


# -- download to cache ------------------------------------------------------------------------
U_ITEM = (
    "242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)"
    "|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "302|L.A. Confidential (1997)|01-Jan-1997||http://us.imdb.com/x"
    "|0|0|0|0|0|0|1|0|0|0|1|0|0|1|0|0|1|0|0\n"
)


def _tiny_100k_zip(path: Path, folder: str = "ml-100k") -> str:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{folder}/u.item", U_ITEM)
        zf.writestr(f"{folder}/u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_from_local_url_with_checksum(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    digest = _tiny_100k_zip(archive)
    cache = tmp_path / "cache"
    ml = load_movielens("ml-100k", cache=cache, url=archive.as_uri(), checksum=f"sha256:{digest}")
    assert len(ml.ratings) == 2 and ml.name == "ml-100k"
    assert (cache / "ml-100k" / "u.data").is_file()
    assert [p.name for p in cache.iterdir()] == ["ml-100k"]  # no temporary leftovers
    archive.unlink()  # second call is served from the cache, no download
    assert len(load_movielens_100k(cache=cache, url=archive.as_uri()).ratings) == 2


def test_download_md5_checksum_and_bare_sha256(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    _tiny_100k_zip(archive)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    d = download_movielens("ml-100k", cache=tmp_path / "c1", url=archive.as_uri(),
                           checksum=f"md5:{md5}")
    assert (d / "u.data").is_file()
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert download_movielens("ml-100k", cache=tmp_path / "c2", url=archive.as_uri(),
                              checksum=sha.upper()).is_dir()


def test_download_checksum_mismatch_keeps_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    _tiny_100k_zip(archive)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"checksum mismatch for file://.*expected sha256 0{64}"):
        load_movielens("ml-100k", cache=cache, url=archive.as_uri(), checksum="0" * 64)
    assert list(cache.iterdir()) == []


def test_download_checksum_mismatch_over_http(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    _tiny_100k_zip(archive)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):  # keep test output quiet
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip"
        with pytest.raises(DataError, match="checksum mismatch"):
            download_movielens("ml-100k", cache=tmp_path / "c", url=url, checksum="md5:" + "1" * 32)
        with pytest.raises(DataError, match=r"from .*/gone.zip: the server answered HTTP 404"):
            download_movielens("ml-100k", cache=tmp_path / "c", url=url.replace("ml-100k", "gone"))
        ml = load_movielens("ml-100k", cache=tmp_path / "c", url=url)  # no checksum: only logged
        assert len(ml.ratings) == 2
    finally:
        server.shutdown()
        server.server_close()


def test_download_without_network_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    with pytest.raises(DataError, match=r"cannot download ml-100k from http://127\.0\.0\.1.*"
                                        r"pass its directory instead"):
        load_movielens_100k(cache=tmp_path / "cache", url=url, checksum=None)


def test_download_refusals(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not in the cache .* and download=False"):
        load_movielens("ml-1m", cache=tmp_path, download=False)
    with pytest.raises(DataError, match="unknown MovieLens release 'ml-7m'"):
        download_movielens("ml-7m", cache=tmp_path)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="is not a valid zip archive"):
        download_movielens("ml-100k", cache=tmp_path / "c", url=junk.as_uri())
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataError, match="unsafe path"):
        download_movielens("ml-100k", cache=tmp_path / "c", url=evil.as_uri())
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(DataError, match="checksum must be 'sha256:<hex>' or 'md5:<hex>'"):
        download_movielens("ml-100k", cache=tmp_path / "c", url=junk.as_uri(), checksum="crc:1")


def test_cache_dir_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUCHUN_DATA", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("CHUCHUN_DATA")
    assert cache_dir() == Path.home() / ".cache" / "chuchun"


def test_downloaded_archive_items(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    _tiny_100k_zip(archive)
    ml = load_movielens("ml-100k", cache=tmp_path / "c", url=archive.as_uri())
    assert ml.titles([242, 302]) == ["Kolya (1996)", "L.A. Confidential (1997)"]
    assert ml.items.set_index("item").loc[302].genres == "Crime|Film-Noir|Mystery|Thriller"
    assert ml.users is None
