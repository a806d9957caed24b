"""Interaction logs: (user, item, rating or weight, timestamp) rows as indices and sparse matrices."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import warnings
import zlib
from collections.abc import Sequence
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import DataError
from chuchun._lazy import LazyModule
from chuchun.data.vocabulary import ID_TYPES, Vocabulary, _as_id_array, ids_from_text

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use; the fit path never needs it

__all__ = ["Interactions"]

DuplicatePolicy = Literal["error", "first", "last", "mean", "sum"]
_DUPLICATE_POLICIES = ("error", "first", "last", "mean", "sum")


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()


class Interactions:
    """An interaction log mapped to contiguous indices.

    Rows hold a user index, an item index, optionally a rating (explicit feedback, or a weight
    such as a play count) and optionally a timestamp. User and item ids of any kind are mapped
    through sorted :class:`Vocabulary` objects. ``csr`` (users x items) and ``csc`` views are built
    once on first use, with ``float32`` values (``1.0`` for logs without ratings), ``int32``
    indices and ``int64`` index pointers.

    Build one with :meth:`from_pandas`, :meth:`from_arrays`, :meth:`from_csv` or
    :meth:`from_parquet`; the constructor takes already-mapped arrays.

    Parameters
    ----------
    users, items : Vocabulary
        Id vocabularies.
    user_idx, item_idx : ndarray of int32
        Row indices into ``users`` and ``items``.
    ratings : ndarray of float32, optional
        Rating or weight of each row; ``None`` for pure implicit feedback.
    timestamps : ndarray of int64, optional
        Time of each row (seconds since the epoch when converted from datetimes).
    rating_scale : (float, float), optional
        Declared (min, max) of the ratings, kept for models that clip predictions.
    context : dict of str to ndarray, optional
        Per-interaction context columns (e.g. device, time of day), one value per row, for
        models whose ``fit`` takes ``context=[column names]``.
    """

    def __init__(
        self,
        users: Vocabulary,
        items: Vocabulary,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        ratings: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
        *,
        rating_scale: tuple[float, float] | None = None,
        context: dict[str, np.ndarray] | None = None,
    ) -> None:
        n = len(user_idx)
        context = {str(k): np.asarray(v) for k, v in (context or {}).items()}
        checks = [("item_idx", item_idx), ("ratings", ratings), ("timestamps", timestamps),
                  *((f"context column {k!r}", v) for k, v in context.items())]
        for name, arr in checks:
            if arr is not None and len(arr) != n:
                raise DataError(
                    f"length mismatch: user_idx has {n} rows but {name} has {len(arr)}"
                )
        self.context = context
        self.users = users
        self.items = items
        self._user_idx: np.ndarray | None = np.ascontiguousarray(user_idx, dtype=np.int32)
        self.item_idx = np.ascontiguousarray(item_idx, dtype=np.int32)
        self.ratings = None if ratings is None else np.ascontiguousarray(ratings, dtype=np.float32)
        self.timestamps = (
            None if timestamps is None else np.ascontiguousarray(timestamps, dtype=np.int64)
        )
        self.rating_scale = rating_scale
        if n and (self._user_idx.min() < 0 or self._user_idx.max() >= len(users)):
            raise DataError("user_idx holds indices outside the user vocabulary")
        if n and (self.item_idx.min() < 0 or self.item_idx.max() >= len(items)):
            raise DataError("item_idx holds indices outside the item vocabulary")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        users: Any,
        items: Any,
        ratings: Any = None,
        timestamps: Any = None,
        *,
        duplicates: DuplicatePolicy = "error",
        rating_scale: tuple[float, float] | None = None,
        context: dict[str, Any] | None = None,
    ) -> Interactions:
        """Build from parallel arrays of user ids, item ids and optional ratings / timestamps.

        Parameters
        ----------
        duplicates : {"error", "first", "last", "mean", "sum"}
            What to do with repeated (user, item) pairs: raise (default), keep the first or the
            last (by timestamp when there are timestamps, else by row order), or combine the
            ratings by mean or sum (the latest timestamp is kept).
        rating_scale : (min, max), optional
            Ratings outside this closed range are an error.
        context : dict of str to array-like, optional
            Per-interaction context columns, parallel to the ids.
        """
        if duplicates not in _DUPLICATE_POLICIES:
            raise DataError(
                f"duplicates must be one of {_DUPLICATE_POLICIES}; got {duplicates!r}"
            )
        u_raw = _as_id_array(users, "user")
        i_raw = _as_id_array(items, "item")
        n = u_raw.shape[0]
        if i_raw.shape[0] != n:
            raise DataError(f"length mismatch: {n} user ids but {i_raw.shape[0]} item ids")
        if n == 0:
            raise DataError("empty input: the interaction log has no rows")
        r = None if ratings is None else _as_ratings(ratings, n, rating_scale)
        t = None if timestamps is None else _as_timestamps(timestamps, n)
        user_vocab, u_idx = _unique_inverse(u_raw)
        item_vocab, i_idx = _unique_inverse(i_raw)
        u_idx = u_idx.astype(np.int32)
        i_idx = i_idx.astype(np.int32)
        ctx = {str(k): _as_context(v, n, str(k)) for k, v in (context or {}).items()}
        u_idx, i_idx, r, t, rows = _resolve_duplicates(
            u_idx, i_idx, r, t, len(item_vocab), duplicates, u_raw, i_raw
        )
        if rows is not None:
            ctx = {k: v[rows] for k, v in ctx.items()}
        return cls(
            Vocabulary(user_vocab),
            Vocabulary(item_vocab),
            u_idx,
            i_idx,
            r,
            t,
            rating_scale=rating_scale,
            context=ctx,
        )

    @classmethod
    def from_sparse(
        cls,
        matrix: Any,
        *,
        user_ids: Any = None,
        item_ids: Any = None,
        ratings: bool = True,
        rating_scale: tuple[float, float] | None = None,
    ) -> Interactions:
        """Wrap an existing users x items sparse matrix without copying its rows into a table.

        Parameters
        ----------
        matrix : scipy sparse matrix or array
            Stored entries are interactions (explicit zeros are dropped; duplicates summed).
        user_ids, item_ids : array-like, optional
            External ids of the rows / columns (default ``0..n-1``); must be distinct.
        ratings : bool
            Whether the stored values are ratings or weights (``True``) or mere presence.
        """
        if not sp.issparse(matrix):
            raise DataError(
                f"from_sparse expects a scipy sparse matrix; got {type(matrix).__name__}"
            )
        source: Any = matrix
        m = sp.csr_matrix(source, dtype=np.float32)
        m.sum_duplicates()
        m.eliminate_zeros()
        if m.nnz == 0:
            raise DataError("empty input: the matrix has no stored entries")
        if not np.isfinite(m.data).all():
            raise DataError("ratings must be finite numbers; the matrix holds NaN or infinity")
        users, row_order = _axis_vocabulary(user_ids, m.shape[0], "user")
        items, col_order = _axis_vocabulary(item_ids, m.shape[1], "item")
        if row_order is not None:
            m = m[row_order]
        if col_order is not None:
            m = m[:, col_order]
        m.sort_indices()
        m.indptr = m.indptr.astype(np.int64, copy=False)
        m.indices = m.indices.astype(np.int32, copy=False)
        if rating_scale is not None:
            _as_ratings(m.data, m.nnz, rating_scale)
        if not ratings:
            m.data = np.ones_like(m.data)
        out = cls.__new__(cls)
        out.users, out.items = users, items
        out._user_idx = None  # derived from the CSR when first asked for (saves memory)
        out.item_idx = m.indices
        out.ratings = m.data if ratings else None
        out.timestamps = None
        out.rating_scale = rating_scale
        out.context = {}
        out.__dict__["csr"] = m  # the cached view is the given matrix itself
        return out

    @classmethod
    def from_pandas(
        cls,
        frame: pd.DataFrame,
        *,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = AUTO,
        timestamp_col: str | None = AUTO,
        duplicates: DuplicatePolicy = "error",
        rating_scale: tuple[float, float] | None = None,
        context_cols: Sequence[str] = (),
        id_type: Literal["str", "int", "auto"] | None = None,
    ) -> Interactions:
        """Build from a table (pandas, or anything with ``to_pandas()`` such as pyarrow/polars).

        ``rating_col`` and ``timestamp_col`` default to ``"rating"`` and ``"timestamp"`` when
        those columns exist; pass ``None`` to ignore a column, or a name to require it.
        ``context_cols`` names columns kept as per-interaction context (:attr:`context`).
        Ids keep the dtype of their column (integers beyond int64 are kept as their decimal
        text, never wrapped) unless ``id_type`` asks to type them from their text as
        :meth:`from_csv` does.
        """
        if not isinstance(frame, pd.DataFrame):
            if hasattr(frame, "to_pandas"):
                frame = frame.to_pandas()
            else:
                raise DataError(
                    f"expected a pandas DataFrame (or an object with to_pandas()); "
                    f"got {type(frame).__name__}"
                )
        columns = list(frame.columns)

        def need(col: str, role: str) -> Any:
            if col not in frame.columns:
                hint = _separator_hint(columns)
                raise DataError(f"{role} column {col!r} not found; columns are {columns}{hint}")
            return frame[col]

        users = need(user_col, "user")
        items = need(item_col, "item")
        if id_type is not None:
            users = ids_from_text(users, id_type, "user")
            items = ids_from_text(items, id_type, "item")
        if rating_col is AUTO:
            rating_col = "rating" if "rating" in frame.columns else None
        if timestamp_col is AUTO:
            timestamp_col = "timestamp" if "timestamp" in frame.columns else None
        ratings = need(rating_col, "rating") if rating_col is not None else None
        stamps = need(timestamp_col, "timestamp") if timestamp_col is not None else None
        if isinstance(context_cols, str):
            context_cols = [context_cols]
        ctx = {str(c): need(c, "context").to_numpy() for c in context_cols}
        return cls.from_arrays(
            users, items, ratings, stamps, duplicates=duplicates, rating_scale=rating_scale,
            context=ctx,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str] | IO[bytes],
        *,
        sep: str = ",",
        header: bool = True,
        names: list[str] | None = None,
        encoding: str = "utf-8",
        id_type: Literal["str", "int", "auto"] = "auto",
        **kwargs: Any,
    ) -> Interactions:
        """Read a delimited text file (a path or a binary file object such as standard input);
        ``kwargs`` go to :meth:`from_pandas` (column names, ...).

        Without a header pass ``header=False`` and ``names`` (e.g.
        ``["user", "item", "rating", "timestamp"]``).

        Ids are read as text and typed by ``id_type``: ``"str"`` keeps them exactly as written
        (``"007"`` and ``"7"`` are two users); ``"int"`` requires integers within int64 (an id
        outside it is an error); ``"auto"`` (default) uses integers only when every id is an
        integer written canonically within int64 and keeps the text otherwise, so no id is ever
        merged with another or changed.
        """
        if id_type not in ID_TYPES:
            raise DataError(f"id_type must be one of {ID_TYPES}; got {id_type!r}")
        id_cols = [kwargs.get("user_col", "user"), kwargs.get("item_col", "item")]
        frame = _read_table(path, sep=sep, header=header, names=names, encoding=encoding,
                            id_cols=id_cols)
        return cls.from_pandas(frame, id_type=id_type, **kwargs)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str] | IO[bytes], **kwargs: Any) -> Interactions:
        """Read a Parquet file (a path or a binary file object); ``kwargs`` go to
        :meth:`from_pandas`. Ids keep the column's type."""
        where = _name_of(path)
        try:
            frame = pd.read_parquet(path)
        except FileNotFoundError:
            raise DataError(f"file not found: {where}") from None
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DataError(f"cannot read Parquet file {where}: {exc}") from None
        return cls.from_pandas(frame, **kwargs)

    # -- views --------------------------------------------------------------------------------
    @property
    def user_idx(self) -> np.ndarray:
        """User index of each row (``int32``)."""
        if self._user_idx is None:
            csr = self.csr
            self._user_idx = np.repeat(
                np.arange(csr.shape[0], dtype=np.int32), np.diff(csr.indptr)
            )
        return self._user_idx

    def __len__(self) -> int:
        return int(self.item_idx.shape[0])

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self)

    @property
    def has_ratings(self) -> bool:
        """Whether rows carry ratings / weights (otherwise every value is 1)."""
        return self.ratings is not None

    @property
    def values(self) -> np.ndarray:
        """Ratings, or ones for logs without ratings (``float32``)."""
        if self.ratings is None:
            return np.ones(len(self), dtype=np.float32)
        return self.ratings

    @cached_property
    def csr(self) -> sp.csr_matrix:
        """Users x items matrix of values (``float32``, sorted indices, no duplicates)."""
        m = sp.csr_matrix(
            (self.values, (self.user_idx, self.item_idx)),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sort_indices()
        m.indptr = m.indptr.astype(np.int64)
        m.indices = m.indices.astype(np.int32)
        return m

    @cached_property
    def csc(self) -> sp.csc_matrix:
        """Items-major view of :attr:`csr`."""
        m = self.csr.tocsc()
        m.sort_indices()
        m.indptr = m.indptr.astype(np.int64)
        m.indices = m.indices.astype(np.int32)
        return m

    @property
    def user_ids(self) -> np.ndarray:
        """External user id of each row."""
        return self.users.to_ids(self.user_idx)

    @property
    def item_ids(self) -> np.ndarray:
        """External item id of each row."""
        return self.items.to_ids(self.item_idx)

    def to_pandas(self) -> pd.DataFrame:
        """The log as a table with columns user, item and, when present, rating, timestamp."""
        cols: dict[str, Any] = {"user": self.user_ids, "item": self.item_ids}
        if self.ratings is not None:
            cols["rating"] = self.ratings
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        cols.update(self.context)
        return pd.DataFrame(cols)

    def fingerprint(self) -> str:
        """SHA-256 over the vocabularies and the users x items matrix (identifies the training
        data, whatever the order of its rows)."""
        h = hashlib.sha256()
        csr = self.csr  # row order does not matter: the same log gives the same hash
        for arr in (self.users.ids, self.items.ids, csr.indptr, csr.indices, csr.data):
            h.update(np.ascontiguousarray(arr).data.cast("B"))  # no copy
        return h.hexdigest()

    def subset(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or index array, with vocabularies compacted to the
        users and items that remain."""
        sel = np.asarray(mask_or_index)
        u = self.user_idx[sel]
        i = self.item_idx[sel]
        u_keep, u_new = np.unique(u, return_inverse=True)
        i_keep, i_new = np.unique(i, return_inverse=True)
        return Interactions(
            Vocabulary(self.users.ids[u_keep]),
            Vocabulary(self.items.ids[i_keep]),
            u_new.astype(np.int32),
            i_new.astype(np.int32),
            None if self.ratings is None else self.ratings[sel],
            None if self.timestamps is None else self.timestamps[sel],
            rating_scale=self.rating_scale,
            context={k: v[sel] for k, v in self.context.items()},
        )

    def __repr__(self) -> str:
        kind = "ratings" if self.has_ratings else "implicit"
        stamps = ", timestamps" if self.timestamps is not None else ""
        return (
            f"Interactions({len(self)} rows, {self.n_users} users, {self.n_items} items, "
            f"{kind}{stamps})"
        )


def _axis_vocabulary(
    ids: Any, n: int, name: str
) -> tuple[Vocabulary, np.ndarray | None]:
    """Vocabulary of one matrix axis and the permutation that sorts it (None when sorted)."""
    if ids is None:
        return Vocabulary(np.arange(n, dtype=np.int64)), None
    arr = _as_id_array(ids, name)
    if arr.shape[0] != n:
        raise DataError(f"length mismatch: the matrix has {n} {name} rows/columns but "
                        f"{arr.shape[0]} {name} ids")
    order = np.argsort(arr, kind="stable")
    sorted_ids = arr[order]
    if n > 1 and (sorted_ids[1:] == sorted_ids[:-1]).any():
        raise DataError(f"{name} ids of a matrix must be distinct")
    if np.array_equal(order, np.arange(n)):
        return Vocabulary(sorted_ids), None
    return Vocabulary(sorted_ids), order


def _unique_inverse(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)``, sorting only the distinct ids (hashing first:
    much faster for string ids, where a log has far more rows than distinct ids)."""
    if ids.dtype.kind != "U":
        return np.unique(ids, return_inverse=True)  # type: ignore[no-any-return]
    codes, distinct = pd.factorize(ids)
    distinct = np.asarray(distinct, dtype=ids.dtype)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[codes]


def _name_of(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return "standard input" if getattr(source, "name", None) in (None, "<stdin>") else repr(
        source.name
    )


def _read_table(
    path: str | os.PathLike[str] | IO[bytes],
    *,
    sep: str,
    header: bool,
    names: list[str] | None,
    encoding: str,
    id_cols: Sequence[str] = (),
) -> pd.DataFrame:
    """Read delimited text with id columns as text; blank lines are skipped, and a row with
    fewer fields than the header is an error naming its line."""
    if isinstance(path, (str, os.PathLike)):
        path_str = os.fspath(path)
        if not os.path.exists(path_str):
            raise DataError(f"file not found: {path_str!r}")
        if not os.path.isfile(path_str):
            raise DataError(f"not a file: {path_str!r}")
        source: Any = path_str
    elif isinstance(path, io.BytesIO):
        source = path
    else:  # a stream (standard input) is read once into memory so it can be scanned again
        source = io.BytesIO(path.read())
    where = _name_of(path)
    if not header and names is None:
        raise DataError(f"{where} has no header row: give the column names (names=[...])")
    try:
        frame = pd.read_csv(
            source,
            sep=sep,
            header=0 if header else None,
            names=names,
            encoding=encoding,
            engine="c" if len(sep) == 1 else "python",
            dtype={c: object for c in id_cols},  # text, kept as Python strings
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"empty input: {where} has no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot parse {where} as delimited text: {exc}") from None
    except (OSError, EOFError, zlib.error) as exc:  # unreadable, corrupt or truncated .gz/.bz2
        raise DataError(f"cannot read {where}: {exc}") from None
    missing = frame.isna()
    if missing.to_numpy().any():
        blank = missing.all(axis=1).to_numpy()
        short = _first_short_row(source, sep, encoding, len(frame.columns), header)
        if short is not None:
            line, n_fields = short
            raise DataError(
                f"short row at line {line} of {where}: {n_fields} field(s) where the header "
                f"has {len(frame.columns)} ({', '.join(map(str, frame.columns))})"
            )
        if blank.any():
            frame = frame.loc[~blank].reset_index(drop=True)
    if len(frame) == 0:
        raise DataError(f"empty input: {where} has no rows")
    return frame


def _first_short_row(
    source: Any, sep: str, encoding: str, n_columns: int, header: bool
) -> tuple[int, int] | None:
    """Line number and field count of the first non-blank row with too few fields."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
        raw: Any = io.TextIOWrapper(source, encoding=encoding, newline="")
    else:
        opener: Any = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}.get(
            os.path.splitext(source)[1].lower()
        )
        if opener is None:
            raw = open(source, encoding=encoding, newline="")  # noqa: SIM115
        else:
            import importlib

            raw = importlib.import_module(opener).open(source, "rt", encoding=encoding,
                                                       newline="")
    with raw:
        rows: Any = csv.reader(raw, delimiter=sep) if len(sep) == 1 else (
            line.rstrip("\r\n").split(sep) for line in raw
        )
        for number, fields in enumerate(rows, start=1):
            if header and number == 1:
                continue
            if not fields or fields == [""]:
                continue
            if len(fields) < n_columns:
                return number, len(fields)
    return None


def _separator_hint(columns: list[Any]) -> str:
    """A hint to pass the separator when a file was read as one column holding another one."""
    if len(columns) != 1:
        return ""
    for sep, shown in ((";", "';'"), ("\t", "'\\t'"), ("|", "'|'"), ("::", "'::'")):
        if sep in str(columns[0]):
            return (f"; the file was read as one column, its fields look separated by {shown}: "
                    f"pass sep={shown}")
    return ""


def _as_context(values: Any, n: int, name: str) -> np.ndarray:
    arr = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"context column {name!r} must hold one value per row ({n}); "
                        f"got shape {arr.shape}")
    if arr.dtype.kind == "O":
        arr = arr.astype(str)
    return arr


def _as_ratings(values: Any, n: int, scale: tuple[float, float] | None) -> np.ndarray:
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    if len(series) != n:
        raise DataError(f"length mismatch: {n} ids but {len(series)} ratings")
    if series.dtype.kind not in "iuf":
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            example = series[bad].iloc[0]
            raise DataError(
                f"ratings must be numeric; got {int(bad.sum())} non-numeric values "
                f"such as {example!r}"
            )
        series = converted
    arr = series.to_numpy(dtype=np.float64)
    n_bad = int(np.count_nonzero(~np.isfinite(arr)))
    if n_bad:
        raise DataError(f"ratings must be finite numbers; got {n_bad} NaN or infinite values")
    if scale is not None:
        low, high = scale
        if not low < high:
            raise DataError(f"rating_scale must be (min, max) with min < max; got {scale}")
        off = (arr < low) | (arr > high)
        if off.any():
            raise DataError(
                f"ratings must lie in the declared scale [{low}, {high}]; "
                f"got {int(off.sum())} outside it (min {arr.min()}, max {arr.max()})"
            )
    return arr.astype(np.float32)


def _as_timestamps(values: Any, n: int) -> np.ndarray:
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    if len(series) != n:
        raise DataError(f"length mismatch: {n} ids but {len(series)} timestamps")
    if series.isna().any():
        raise DataError(f"timestamps must not be missing; got {int(series.isna().sum())} NaN")
    if series.dtype.kind == "M":
        if getattr(series.dt, "tz", None) is not None:  # timezone-aware: seconds since the epoch (UTC)
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return (series.astype("datetime64[s]").astype(np.int64)).to_numpy()
    if series.dtype.kind in "iu":
        return series.to_numpy(dtype=np.int64)
    if series.dtype.kind == "f":
        return np.floor(series.to_numpy()).astype(np.int64)
    try:
        with warnings.catch_warnings():  # "could not infer format" is noise before our error
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(series, utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"timestamps must be numbers or dates; got values such as {series.iloc[0]!r}"
        ) from exc
    return parsed.astype("datetime64[s, UTC]").astype(np.int64).to_numpy()


def _resolve_duplicates(
    u: np.ndarray,
    i: np.ndarray,
    r: np.ndarray | None,
    t: np.ndarray | None,
    n_items: int,
    policy: str,
    u_raw: np.ndarray,
    i_raw: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Apply the duplicate policy; the last element is the rows kept (None: all of them)."""
    key = u.astype(np.int64) * n_items + i
    # stable order: by key, then by time (or row order) so "last" means latest
    order = np.lexsort((t, key)) if t is not None else np.argsort(key, kind="stable")
    key_sorted = key[order]
    first = np.ones(len(key_sorted), dtype=bool)
    first[1:] = key_sorted[1:] != key_sorted[:-1]
    if first.all():
        return u, i, r, t, None
    n_dup = int(len(first) - first.sum())
    if policy == "error":
        pos = order[np.flatnonzero(~first)[0]]
        raise DataError(
            f"{n_dup} duplicate (user, item) pairs, e.g. user {u_raw[pos].item()!r} "
            f"item {i_raw[pos].item()!r}; "
            "pass duplicates='last', 'first', 'mean' or 'sum' to combine them"
        )
    starts = np.flatnonzero(first)
    if policy == "first":
        take = order[starts]
    else:
        ends = np.r_[starts[1:], len(order)] - 1
        take = order[ends]
    u_new, i_new = u[take], i[take]
    t_new = None if t is None else t[order][np.r_[starts[1:], len(order)] - 1]
    if t is not None and policy == "first":
        t_new = t[take]
    r_new = None
    if r is not None:
        if policy in ("mean", "sum"):
            sums = np.add.reduceat(r[order].astype(np.float64), starts)
            if policy == "mean":
                sums /= np.diff(np.r_[starts, len(order)])
            r_new = sums.astype(np.float32)
        else:
            r_new = r[take]
    elif policy == "sum":
        r_new = np.diff(np.r_[starts, len(order)]).astype(np.float32)
    return u_new, i_new, r_new, t_new, take
