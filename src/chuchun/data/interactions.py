"""Interaction logs: (user, item, rating or weight, timestamp) rows as indices and sparse matrices."""

from __future__ import annotations

import hashlib
import os
import warnings
import zlib
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import DataError
from chuchun._lazy import LazyModule
from chuchun.data.vocabulary import Vocabulary, _as_id_array

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
    context : mapping of str to ndarray, optional
        Named per-interaction columns (a device, a time-of-day bucket, any categorical or
        numeric value of the event), one value per row. Feature-aware models (factorization
        machines) use them as context features; the others ignore them. Build them with
        ``from_pandas(..., context_cols=[...])`` or ``from_arrays(..., context={...})``.
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
        for name, arr in (("item_idx", item_idx), ("ratings", ratings), ("timestamps", timestamps)):
            if arr is not None and len(arr) != n:
                raise DataError(
                    f"length mismatch: user_idx has {n} rows but {name} has {len(arr)}"
                )
        self.users = users
        self.items = items
        self._user_idx: np.ndarray | None = np.ascontiguousarray(user_idx, dtype=np.int32)
        self.item_idx = np.ascontiguousarray(item_idx, dtype=np.int32)
        self.ratings = None if ratings is None else np.ascontiguousarray(ratings, dtype=np.float32)
        self.timestamps = (
            None if timestamps is None else np.ascontiguousarray(timestamps, dtype=np.int64)
        )
        self.rating_scale = rating_scale
        self.context: dict[str, np.ndarray] = _as_context(context, n)
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
        context : mapping of column name to array-like, optional
            Per-interaction context columns (see the class docstring); combined duplicates keep
            the context of the row they keep (the latest one for ``"mean"`` and ``"sum"``).
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
        user_vocab, u_idx = np.unique(u_raw, return_inverse=True)
        item_vocab, i_idx = np.unique(i_raw, return_inverse=True)
        u_idx = u_idx.astype(np.int32)
        i_idx = i_idx.astype(np.int32)
        ctx = _as_context(context, n)
        u_idx, i_idx, r, t, kept = _resolve_duplicates(
            u_idx, i_idx, r, t, len(item_vocab), duplicates, u_raw, i_raw
        )
        if kept is not None:
            ctx = {name: col[kept] for name, col in ctx.items()}
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
        context_cols: list[str] | tuple[str, ...] = (),
    ) -> Interactions:
        """Build from a table (pandas, or anything with ``to_pandas()`` such as pyarrow/polars).

        ``rating_col`` and ``timestamp_col`` default to ``"rating"`` and ``"timestamp"`` when
        those columns exist; pass ``None`` to ignore a column, or a name to require it.
        ``context_cols`` names per-interaction columns kept as :attr:`context`.
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
                raise DataError(f"{role} column {col!r} not found; columns are {columns}")
            return frame[col]

        users = need(user_col, "user")
        items = need(item_col, "item")
        if rating_col is AUTO:
            rating_col = "rating" if "rating" in frame.columns else None
        if timestamp_col is AUTO:
            timestamp_col = "timestamp" if "timestamp" in frame.columns else None
        ratings = need(rating_col, "rating") if rating_col is not None else None
        stamps = need(timestamp_col, "timestamp") if timestamp_col is not None else None
        if isinstance(context_cols, str):
            raise DataError(f"context_cols must be a list of column names; got {context_cols!r}")
        context = {str(c): need(c, "context").to_numpy() for c in context_cols}
        return cls.from_arrays(
            users, items, ratings, stamps, duplicates=duplicates, rating_scale=rating_scale,
            context=context,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        sep: str = ",",
        header: bool = True,
        names: list[str] | None = None,
        encoding: str = "utf-8",
        **kwargs: Any,
    ) -> Interactions:
        """Read a delimited text file; ``kwargs`` go to :meth:`from_pandas` (column names, ...).

        Without a header pass ``header=False`` and ``names`` (e.g.
        ``["user", "item", "rating", "timestamp"]``).
        """
        frame = _read_table(path, sep=sep, header=header, names=names, encoding=encoding)
        return cls.from_pandas(frame, **kwargs)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str], **kwargs: Any) -> Interactions:
        """Read a Parquet file; ``kwargs`` go to :meth:`from_pandas`."""
        try:
            frame = pd.read_parquet(path)
        except FileNotFoundError:
            raise DataError(f"file not found: {os.fspath(path)!r}") from None
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DataError(f"cannot read Parquet file {os.fspath(path)!r}: {exc}") from None
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
        for name, col in self.context.items():
            cols.setdefault(name, col)
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
            context={name: col[sel] for name, col in self.context.items()},
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


def _read_table(
    path: str | os.PathLike[str],
    *,
    sep: str,
    header: bool,
    names: list[str] | None,
    encoding: str,
) -> pd.DataFrame:
    path_str = os.fspath(path)
    if not os.path.exists(path_str):
        raise DataError(f"file not found: {path_str!r}")
    if not os.path.isfile(path_str):
        raise DataError(f"not a file: {path_str!r}")
    try:
        return pd.read_csv(
            path_str,
            sep=sep,
            header=0 if header else None,
            names=names,
            encoding=encoding,
            engine="c" if len(sep) == 1 else "python",
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"empty input: {path_str!r} has no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot parse {path_str!r} as delimited text: {exc}") from None
    except (OSError, EOFError, zlib.error) as exc:  # unreadable, corrupt or truncated .gz/.bz2
        raise DataError(f"cannot read {path_str!r}: {exc}") from None


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


def _as_context(context: Any, n: int) -> dict[str, np.ndarray]:
    """Validated per-interaction context columns: names are strings, one value per row."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise DataError(f"context must be a dict of column name -> values; got "
                        f"{type(context).__name__}")
    out: dict[str, np.ndarray] = {}
    for name, values in context.items():
        if not isinstance(name, str) or not name:
            raise DataError(f"context column names must be non-empty strings; got {name!r}")
        arr = np.asarray(values)
        if arr.ndim != 1 or len(arr) != n:
            raise DataError(
                f"context column {name!r} must hold one value per interaction ({n}); got "
                f"shape {arr.shape}"
            )
        if arr.dtype.kind not in "biufUSO":
            raise DataError(f"context column {name!r} has unsupported dtype {arr.dtype}")
        out[name] = arr
    return out


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
    """Combine repeated pairs; the last value is the rows kept (None when nothing changed)."""
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
