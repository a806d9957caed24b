"""MovieLens loaders: the 100K, 1M, 10M, 20M, 32M and latest(-small) file formats.

Harper, F. M. and Konstan, J. A. (2015). The MovieLens Datasets: History and Context. ACM
Transactions on Interactive Intelligent Systems 5(4), 19:1-19:19.

Every loader reads a local directory when given one (no network). Without one, the archive is
looked up in the cache directory (``$CHUCHUN_DATA``, else ``~/.cache/chuchun``) and, when absent,
downloaded from GroupLens, checked against its checksum and unpacked there. ml-latest-small
ships inside the package and never needs the network.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chuchun._exceptions import DataError
from chuchun.data.interactions import Interactions

__all__ = [
    "MOVIELENS",
    "MovieLens",
    "cache_dir",
    "download_movielens",
    "load_movielens",
    "load_movielens_100k",
    "load_movielens_1m",
    "load_movielens_10m",
    "load_movielens_20m",
    "load_movielens_32m",
    "load_movielens_latest_small",
]

logger = logging.getLogger(__name__)

_BASE_URL = "https://files.grouplens.org/datasets/movielens/"

#: Genre names of the 19 flag columns of ml-100k ``u.item`` (from its ``u.genre``).
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)


@dataclass(frozen=True)
class _Remote:
    url: str
    folder: str  # top-level folder inside the zip archive
    checksum: str | None  # "md5:<hex>" or "sha256:<hex>"
    rating_scale: tuple[float, float]


#: Known MovieLens releases: download address, folder inside the archive, checksum, rating scale.
#: The md5 sums are the ones GroupLens publishes beside each archive (``<name>.zip.md5``).
MOVIELENS: dict[str, _Remote] = {
    "ml-100k": _Remote(_BASE_URL + "ml-100k.zip", "ml-100k",
                       "md5:0e33842e24a9c977be4e0107933c0723", (1.0, 5.0)),
    "ml-latest-small": _Remote(_BASE_URL + "ml-latest-small.zip", "ml-latest-small", None,
                               (0.5, 5.0)),
    "ml-1m": _Remote(_BASE_URL + "ml-1m.zip", "ml-1m",
                     "md5:c4d9eecfca2ab87c1945afe126590906", (1.0, 5.0)),
    "ml-10m": _Remote(_BASE_URL + "ml-10m.zip", "ml-10M100K",
                      "md5:ce571fd55effeba0271552578f2648bd", (0.5, 5.0)),
    "ml-20m": _Remote(_BASE_URL + "ml-20m.zip", "ml-20m",
                      "md5:cd245b17a1ae2cc31bb14903e1204af3", (0.5, 5.0)),
    "ml-32m": _Remote(_BASE_URL + "ml-32m.zip", "ml-32m", None, (0.5, 5.0)),
}


@dataclass(frozen=True)
class MovieLens:
    """A MovieLens release as loaded by chuchun.

    Attributes
    ----------
    name : str
        ``"ml-100k"``, ``"ml-1m"``, ``"ml-latest-small"``, ... or the directory name.
    ratings : Interactions
        user, item (movie id), rating and timestamp (seconds since the epoch).
    items : pandas.DataFrame
        One row per movie: ``item``, ``title``, ``genres`` (genre names joined by ``|``, as in
        ``movies.csv``) and, for ml-100k, ``release_date`` and ``imdb_url``.
    users : pandas.DataFrame or None
        Demographics (ml-100k: ``user, age, gender, occupation, zip_code``; ml-1m: ``user,
        gender, age, occupation, zip_code``); ``None`` for releases without them.
    tags : pandas.DataFrame or None
        Free-text tags: ``user, item, tag, timestamp``; ``None`` when absent.
    links : pandas.DataFrame or None
        ``item, imdb_id, tmdb_id`` (``links.csv``); ``None`` when absent.
    """

    name: str
    ratings: Interactions
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    tags: pd.DataFrame | None = None
    links: pd.DataFrame | None = None

    def titles(self, item_ids: Any) -> list[str]:
        """Movie titles of ``item_ids`` (the id as text where a movie has no entry)."""
        lookup = dict(zip(self.items["item"].tolist(), self.items["title"].tolist(), strict=True))
        out = []
        for x in np.asarray(item_ids, dtype=object).reshape(-1):
            value = x.item() if hasattr(x, "item") else x
            out.append(str(lookup.get(value, value)))
        return out

    def labels(self) -> pd.Series:
        """Movie titles indexed by movie id (for ``set_item_labels`` and ``explain``)."""
        return pd.Series(self.items["title"].astype(str).to_numpy(),
                         index=self.items["item"].to_numpy(), name="title")

    def item_features(self, *, text: bool = True) -> Any:
        """Movie features: genres (multi-valued) and, with ``text``, TF-IDF over the title
        words and the users' free-text tags (:class:`~chuchun.data.ItemFeatures`)."""
        from chuchun.data.features import ItemFeatures

        items = self.items[["item", "title", "genres"]].copy()
        columns = ["title"]
        if self.tags is not None:
            tags = self.tags.groupby("item")["tag"].agg(lambda t: " ".join(map(str, t)))
            items["tags"] = items["item"].map(tags).fillna("")
            columns.append("tags")
        return ItemFeatures.from_pandas(items, id_col="item", multi_valued=["genres"],
                                        text=columns if text else [])

    def user_features(self) -> Any:
        """Demographics (age numeric; gender and occupation categorical) as
        :class:`~chuchun.data.UserFeatures`; ``None`` for releases without them."""
        if self.users is None:
            return None
        from chuchun.data.features import UserFeatures

        return UserFeatures.from_pandas(self.users, id_col="user", numeric=["age"],
                                        categorical=["gender", "occupation"])

    def __repr__(self) -> str:
        extras = [n for n in ("users", "tags", "links") if getattr(self, n) is not None]
        return (
            f"MovieLens({self.name!r}, ratings={self.ratings!r}, items={len(self.items)}"
            + "".join(f", {n}={len(getattr(self, n))}" for n in extras)
            + ")"
        )


# -- cache and download ----------------------------------------------------------------------
def cache_dir() -> Path:
    """Where downloaded data sets live: ``$CHUCHUN_DATA`` if set, else ``~/.cache/chuchun``."""
    env = os.environ.get("CHUCHUN_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "chuchun"


def download_movielens(
    name: str,
    *,
    cache: str | os.PathLike[str] | None = None,
    url: str | None = None,
    checksum: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """Make sure MovieLens release ``name`` is unpacked in the cache; return its directory.

    Nothing is fetched when the directory is already there. Otherwise the zip archive is
    downloaded (from ``url`` or GroupLens), its checksum verified, and it is unpacked atomically
    (into a temporary directory that is renamed into place).

    Parameters
    ----------
    name : str
        A key of :data:`MOVIELENS` (``"ml-100k"``, ``"ml-1m"``, ...).
    cache : path-like, optional
        Cache directory (default :func:`cache_dir`).
    url : str, optional
        Download address; any scheme ``urllib`` opens (``https://``, ``file://``).
    checksum : str, optional
        Expected digest ``"sha256:<hex>"`` or ``"md5:<hex>"`` (bare hex means sha256); defaults
        to the published one for ``name``. Without any, the archive's sha256 is only logged.
    timeout : float
        Seconds to wait for the server.

    Raises
    ------
    DataError
        Unknown name, no network / server unreachable, checksum mismatch, or a broken archive.
    """
    if name not in MOVIELENS:
        raise DataError(f"unknown MovieLens release {name!r}; known: {sorted(MOVIELENS)}")
    remote = MOVIELENS[name]
    root = Path(cache) if cache is not None else cache_dir()
    target = root / name
    if target.is_dir():
        return target
    url = url or remote.url
    if checksum is not None:
        expected: str | None = checksum
    else:  # the published checksum only applies to the published address
        expected = remote.checksum if url == remote.url else None
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / "archive.zip"
        _fetch(url, archive, timeout, name)
        _verify(archive, expected, url)
        unpacked = Path(tmp) / "unpacked"
        _extract(archive, unpacked, url)
        inner = unpacked / remote.folder
        if not inner.is_dir():
            entries = [p for p in unpacked.iterdir() if p.is_dir()]
            if len(entries) != 1:
                raise DataError(
                    f"archive from {url} does not hold the folder {remote.folder!r}"
                )
            inner = entries[0]
        try:
            inner.rename(target)
        except OSError:
            if not target.is_dir():  # lost a race with another process: fine if it's there
                raise
    return target


def _fetch(url: str, dest: Path, timeout: float, name: str) -> None:
    logger.info("downloading %s from %s", name, url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            raise DataError(
                f"cannot download {name} from {url}: the server answered HTTP {exc.code} "
                f"{exc.reason}; check the address, or pass a local directory instead"
            ) from None
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"cannot download {name} from {url} ({reason}); without network access, download "
            f"the archive elsewhere, unzip it and pass its directory instead"
        ) from None


def _verify(archive: Path, expected: str | None, url: str) -> None:
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    with open(archive, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
            md5.update(block)
    if expected is None:
        logger.info("sha256 of %s: %s (no checksum to compare with)", url, sha.hexdigest())
        return
    algo, _, digest = expected.partition(":") if ":" in expected else ("sha256", "", expected)
    algo = algo.lower()
    if algo not in ("sha256", "md5"):
        raise DataError(f"checksum must be 'sha256:<hex>' or 'md5:<hex>'; got {expected!r}")
    actual = sha.hexdigest() if algo == "sha256" else md5.hexdigest()
    if actual != digest.lower():
        raise DataError(
            f"checksum mismatch for {url}: expected {algo} {digest.lower()}, got {actual}; "
            "the download is corrupt or the file changed upstream (nothing was kept)"
        )


def _extract(archive: Path, dest: Path, url: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            base = dest.resolve()
            for member in zf.namelist():
                resolved = (dest / member).resolve()
                if not resolved.is_relative_to(base):
                    raise DataError(f"archive from {url} holds an unsafe path {member!r}")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"the file downloaded from {url} is not a valid zip archive: {exc}"
        ) from None


# -- readers ---------------------------------------------------------------------------------
def _need(directory: Path, *names: str) -> Path:
    for n in names:
        if (directory / n).is_file():
            return directory / n
    raise DataError(
        f"{names[0]!r} not found in {os.fspath(directory)!r}; expected a MovieLens directory "
        f"holding {', '.join(names)}"
    )


def _read(path: Path, what: str, **kwargs: Any) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"empty input: {os.fspath(path)!r} has no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        raise DataError(f"cannot read {what} file {os.fspath(path)!r}: {exc}") from None
    if len(frame) == 0:
        raise DataError(f"empty input: {os.fspath(path)!r} has no rows")
    return frame


def _check_columns(frame: pd.DataFrame, expected: list[str], path: Path) -> None:
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise DataError(
            f"{os.fspath(path)!r} lacks column(s) {missing}; expected {expected}, "
            f"got {list(frame.columns)}"
        )


def _read_double_colon(
    path: Path, names: list[str], what: str, dtype: dict[str, Any] | None = None
) -> pd.DataFrame:
    """``a::b::c`` files of ml-1m / ml-10m: ``::`` becomes a one-byte separator so the fast C
    parser reads them; quotes in titles are literal characters (``QUOTE_NONE``)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {what} file {os.fspath(path)!r}: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # ml-1m is latin-1
    return _read_buffer(io.StringIO(text.replace("::", "\x1f")), path, what, names, dtype)


def _read_buffer(
    buf: io.StringIO, path: Path, what: str, names: list[str], dtype: dict[str, Any] | None
) -> pd.DataFrame:
    try:
        frame = pd.read_csv(buf, sep="\x1f", header=None, names=names, quoting=csv.QUOTE_NONE,
                            dtype=dtype)
    except pd.errors.EmptyDataError:
        raise DataError(f"empty input: {os.fspath(path)!r} has no rows") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"cannot read {what} file {os.fspath(path)!r}: {exc}") from None
    if len(frame) == 0:
        raise DataError(f"empty input: {os.fspath(path)!r} has no rows")
    return frame


def _scale_for(name: str) -> tuple[float, float] | None:
    """Declared rating scale of a known release; for other directories none is declared."""
    return MOVIELENS[name].rating_scale if name in MOVIELENS else None


def _ratings(frame: pd.DataFrame, path: Path, scale: tuple[float, float] | None) -> Interactions:
    try:
        return Interactions.from_pandas(
            frame, user_col="user", item_col="item", rating_col="rating",
            timestamp_col="timestamp", rating_scale=scale,
        )
    except DataError as exc:
        raise DataError(f"{os.fspath(path)!r}: {exc}") from None


def _read_100k(directory: Path, name: str) -> MovieLens:
    path = _need(directory, "u.data")
    frame = _read(path, "ratings", sep="\t", header=None,
                  names=["user", "item", "rating", "timestamp"])
    ratings = _ratings(frame, path, MOVIELENS["ml-100k"].rating_scale)
    item_path = _need(directory, "u.item")
    cols = ["item", "title", "release_date", "video_release_date", "imdb_url", *GENRES_100K]
    raw = _read(item_path, "movie", sep="|", header=None, names=cols, encoding="latin-1")
    flags = raw[list(GENRES_100K)].fillna(0).to_numpy(dtype=bool)
    genres = ["|".join(g for g, on in zip(GENRES_100K, row, strict=True) if on) for row in flags]
    items = pd.DataFrame({
        "item": raw["item"].astype(np.int64),
        "title": raw["title"].astype(str),
        "genres": genres,
        "release_date": raw["release_date"],
        "imdb_url": raw["imdb_url"],
    })
    users = None
    if (directory / "u.user").is_file():
        users = _read(directory / "u.user", "user", sep="|", header=None,
                      names=["user", "age", "gender", "occupation", "zip_code"],
                      dtype={"zip_code": str})
    return MovieLens(name, ratings, items, users=users)


def _read_dat(directory: Path, name: str) -> MovieLens:
    path = _need(directory, "ratings.dat")
    frame = _read_double_colon(path, ["user", "item", "rating", "timestamp"], "ratings")
    ratings = _ratings(frame, path, _scale_for(name))
    items = _read_double_colon(_need(directory, "movies.dat"), ["item", "title", "genres"],
                               "movie")
    users = tags = None
    if (directory / "users.dat").is_file():
        users = _read_double_colon(directory / "users.dat",
                                   ["user", "gender", "age", "occupation", "zip_code"], "user",
                                   dtype={"zip_code": str})
    if (directory / "tags.dat").is_file():
        tags = _read_double_colon(directory / "tags.dat", ["user", "item", "tag", "timestamp"],
                                  "tag")
    return MovieLens(name, ratings, items, users=users, tags=tags)


def _read_csv_release(directory: Path, name: str) -> MovieLens:
    def optional(stem: str) -> Path | None:
        found = [directory / n for n in (f"{stem}.csv", f"{stem}.csv.gz")]
        return next((p for p in found if p.is_file()), None)

    rpath = _need(directory, "ratings.csv", "ratings.csv.gz")
    frame = _read(rpath, "ratings")
    _check_columns(frame, ["userId", "movieId", "rating", "timestamp"], rpath)
    frame = frame.rename(columns={"userId": "user", "movieId": "item"})
    ratings = _ratings(frame, rpath, _scale_for(name))
    mpath = _need(directory, "movies.csv", "movies.csv.gz")
    movies = _read(mpath, "movie")
    _check_columns(movies, ["movieId", "title", "genres"], mpath)
    items = movies.rename(columns={"movieId": "item"})
    tags = links = None
    tpath = optional("tags")
    if tpath is not None:
        tags = _read(tpath, "tag").rename(columns={"userId": "user", "movieId": "item"})
    lpath = optional("links")
    if lpath is not None:
        links = _read(lpath, "link", dtype={"imdbId": str, "tmdbId": "Int64"}).rename(
            columns={"movieId": "item", "imdbId": "imdb_id", "tmdbId": "tmdb_id"}
        )
    return MovieLens(name, ratings, items, tags=tags, links=links)


def _read_directory(directory: str | os.PathLike[str], name: str | None = None) -> MovieLens:
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"directory not found: {os.fspath(d)!r}")
    folders = {remote.folder: key for key, remote in MOVIELENS.items()}
    label = name or folders.get(d.name, d.name)
    if (d / "u.data").is_file():
        return _read_100k(d, label)
    if (d / "ratings.dat").is_file():
        return _read_dat(d, label)
    if (d / "ratings.csv").is_file() or (d / "ratings.csv.gz").is_file():
        return _read_csv_release(d, label)
    raise DataError(
        f"{os.fspath(d)!r} does not look like a MovieLens directory: expected u.data (100K), "
        f"ratings.dat (1M/10M) or ratings.csv (20M/25M/32M/latest); found "
        f"{sorted(p.name for p in d.iterdir())[:10]}"
    )


# -- public loaders --------------------------------------------------------------------------
def load_movielens(
    name_or_directory: str | os.PathLike[str],
    *,
    download: bool = True,
    cache: str | os.PathLike[str] | None = None,
    url: str | None = None,
    checksum: str | None = None,
) -> MovieLens:
    """Load a MovieLens release from a local directory or, by name, from the cache.

    Parameters
    ----------
    name_or_directory : str or path-like
        A directory holding a release (its format is recognised from the files: ``u.data``,
        ``ratings.dat`` or ``ratings.csv``), or a name from :data:`MOVIELENS`. The name
        ``"ml-latest-small"`` loads the copy bundled with chuchun (unless ``url`` is given).
    download : bool
        Whether a named release missing from the cache may be downloaded.
    cache, url, checksum
        See :func:`download_movielens`.

    Returns
    -------
    MovieLens
    """
    key = os.fspath(name_or_directory)
    if key in MOVIELENS and not Path(key).is_dir():
        if key == "ml-latest-small" and url is None:
            return load_movielens_latest_small()
        root = Path(cache) if cache is not None else cache_dir()
        if not (root / key).is_dir() and not download:
            raise DataError(
                f"{key} is not in the cache {os.fspath(root)!r} and download=False"
            )
        directory = download_movielens(key, cache=root, url=url, checksum=checksum)
        return _read_directory(directory, key)
    return _read_directory(key)


def load_movielens_100k(
    directory: str | os.PathLike[str] | None = None, **kwargs: Any
) -> MovieLens:
    """MovieLens 100K (943 users, 1,682 movies, 100,000 ratings 1-5).

    Reads ``u.data`` (tab-separated ``user item rating timestamp``), ``u.item`` (latin-1,
    ``|``-separated, 19 genre flags turned into ``|``-joined genre names) and ``u.user``.
    Without ``directory`` the release is taken from the cache or downloaded (``kwargs`` go to
    :func:`load_movielens`).
    """
    return _named("ml-100k", directory, kwargs)


def load_movielens_1m(
    directory: str | os.PathLike[str] | None = None, **kwargs: Any
) -> MovieLens:
    """MovieLens 1M (``::``-separated ``ratings.dat``, ``movies.dat``, ``users.dat``)."""
    return _named("ml-1m", directory, kwargs)


def load_movielens_10m(
    directory: str | os.PathLike[str] | None = None, **kwargs: Any
) -> MovieLens:
    """MovieLens 10M (``::``-separated ``ratings.dat``, ``movies.dat``, ``tags.dat``)."""
    return _named("ml-10m", directory, kwargs)


def load_movielens_20m(
    directory: str | os.PathLike[str] | None = None, **kwargs: Any
) -> MovieLens:
    """MovieLens 20M (``ratings.csv``, ``movies.csv``, ``tags.csv``, ``links.csv``)."""
    return _named("ml-20m", directory, kwargs)


def load_movielens_32m(
    directory: str | os.PathLike[str] | None = None, **kwargs: Any
) -> MovieLens:
    """MovieLens 32M (``ratings.csv``, ``movies.csv``, ``tags.csv``, ``links.csv``)."""
    return _named("ml-32m", directory, kwargs)


def _named(name: str, directory: Any, kwargs: dict[str, Any]) -> MovieLens:
    if directory is not None:
        return _read_directory(directory, name)
    return load_movielens(name, **kwargs)


def load_movielens_latest_small(directory: str | os.PathLike[str] | None = None) -> MovieLens:
    """MovieLens latest-small (2018-09-26): 100,836 ratings (0.5-5 in half stars) by 610 users
    on 9,742 movies, with 3,683 tags and links to IMDb / TMDb.

    Without ``directory`` the copy shipped inside chuchun is read (no network needed); its
    ``README.txt`` (usage licence and citation) is next to the data, see :func:`bundled_readme`.
    """
    if directory is not None:
        return _read_directory(directory, "ml-latest-small")
    ref = resources.files("chuchun.datasets") / "data" / "ml-latest-small"
    with resources.as_file(ref) as path:
        return _read_csv_release(Path(path), "ml-latest-small")


def bundled_readme() -> str:
    """The README.txt (terms of use, citation) of the bundled ml-latest-small."""
    ref = resources.files("chuchun.datasets") / "data" / "ml-latest-small" / "README.txt"
    return ref.read_text(encoding="utf-8")
