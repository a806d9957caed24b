"""Id vocabularies: external ids (any hashable: ints, strings) <-> contiguous indices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from chuchun._exceptions import DataError
from chuchun._lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use; the fit path never needs it

__all__ = ["ID_TYPES", "Vocabulary", "ids_from_text"]

#: How ids read from text are typed: ``"str"`` keeps the text exactly (``"007"`` and ``"7"``
#: are two ids), ``"int"`` requires integers within int64, ``"auto"`` uses integers only when
#: every id is an integer written canonically (no sign, no leading zero) within int64.
ID_TYPES = ("str", "int", "auto")
_INT64_MAX = np.iinfo(np.int64).max
_FLOAT_EXACT = 2**53  # floats above this no longer hold every integer exactly
_CANONICAL_INT = r"-?(?:0|[1-9][0-9]{0,18})"


class Vocabulary:
    """A sorted set of distinct external ids; index ``i`` is the ``i``-th smallest id.

    Integer ids are kept as ``int64``, everything else as strings (``numpy.str_``), so a
    vocabulary can be stored without pickle. Lookups use a hash index.

    Parameters
    ----------
    ids : array-like
        Distinct ids in sorted order. Use :meth:`from_ids` to build one from raw ids.
    """

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self._index: pd.Index | None = None

    @classmethod
    def from_ids(cls, ids: Any, *, name: str = "id") -> Vocabulary:
        """Build the vocabulary of the distinct values in ``ids``."""
        arr = _as_id_array(ids, name)
        return cls(np.unique(arr))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __contains__(self, item: Any) -> bool:
        return bool(self.index([item])[0] >= 0)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.ids.dtype.kind == other.ids.dtype.kind
            and np.array_equal(self.ids, other.ids)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocabulary(n={len(self)}, dtype={self.ids.dtype})"

    @property
    def numeric(self) -> bool:
        """Whether the ids are integers."""
        return self.ids.dtype.kind in "iu"

    def _lookup(self) -> pd.Index:
        if self._index is None:
            self._index = pd.Index(self.ids)
        return self._index

    def index(self, ids: Any) -> np.ndarray:
        """Map external ids to indices (``int32``); ids not in the vocabulary give ``-1``."""
        arr = np.asarray(ids)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.size == 0:
            return np.empty(0, dtype=np.int32)
        if self.numeric:
            if arr.dtype.kind in "iu":
                query = arr.astype(np.int64, copy=False)
            elif arr.dtype.kind == "f":
                integral = np.isfinite(arr) & (arr == np.round(arr))
                out = np.full(arr.shape[0], -1, dtype=np.int32)
                if integral.any():
                    out[integral] = self.index(arr[integral].astype(np.int64))
                return out
            else:
                # strings that spell integers ("42") match integer ids
                query = pd.to_numeric(pd.Series(arr.astype(str)), errors="coerce").to_numpy()
                out = np.full(arr.shape[0], -1, dtype=np.int32)
                ok = np.isfinite(query)
                if ok.any():
                    out[ok] = self.index(query[ok].astype(np.int64))
                return out
        else:
            query = arr.astype(str) if arr.dtype.kind != "U" else arr
        if self.numeric:
            # sorted integer ids: binary search, no hash table needed
            n = len(self)
            pos = np.searchsorted(self.ids, query)
            inside = pos < n
            found = np.zeros(len(query), dtype=bool)
            found[inside] = self.ids[pos[inside]] == query[inside]
            return np.where(found, pos, -1).astype(np.int32)
        lookup: Any = self._lookup()
        return np.asarray(lookup.get_indexer(query)).astype(np.int32, copy=False)

    def to_ids(self, idx: Any) -> np.ndarray:
        """Map indices back to external ids."""
        return self.ids[np.asarray(idx, dtype=np.int64)]

    def to_python(self, idx: int) -> Any:
        """One external id as a plain Python value."""
        value = self.ids[idx]
        return value.item() if hasattr(value, "item") else value


def _as_id_array(ids: Any, name: str) -> np.ndarray:
    """Normalise raw ids to ``int64`` (all-integer input) or ``str`` arrays; reject missing ids."""
    if isinstance(ids, np.ndarray) and ids.ndim == 1:  # already typed: no round trip via pandas
        if ids.dtype.kind == "U":
            return ids
        if ids.dtype.kind == "i":
            return ids.astype(np.int64, copy=False)
    if isinstance(ids, (pd.Series, pd.Index)):
        series = pd.Series(ids)
    else:
        if not isinstance(ids, list) and np.ndim(ids) != 1:
            raise DataError(
                f"{name} ids must be one-dimensional; got an array of shape {np.shape(ids)}"
            )
        series = pd.Series(np.asarray(ids) if not isinstance(ids, list) else ids)
    if series.isna().any():
        n = int(series.isna().sum())
        raise DataError(f"{name} column has {n} missing (NaN/None) ids; every row needs an id")
    kind = series.dtype.kind
    if kind == "i":
        return series.to_numpy(dtype=np.int64)
    if kind == "u":
        values = series.to_numpy()
        if len(values) and values.max() > _INT64_MAX:
            # unsigned ids beyond int64 are kept exactly, as their decimal text
            return values.astype(str)
        return values.astype(np.int64)
    if kind == "b":
        raise DataError(f"{name} ids must be integers or strings; got booleans")
    if kind == "f":
        values = series.to_numpy()
        if not np.isfinite(values).all():
            raise DataError(f"{name} ids must be integers or strings; got infinite values")
        if not np.all(values == np.round(values)):
            raise DataError(f"{name} ids must be integers or strings; got non-integral floats")
        if len(values) and np.abs(values).max() > _FLOAT_EXACT:
            big = values[np.abs(values) > _FLOAT_EXACT][0]
            raise DataError(
                f"{name} ids are floating-point numbers as large as {big:.17g}, beyond 2**53 "
                "where floats no longer hold every integer exactly; pass them as integers or "
                "strings"
            )
        return values.astype(np.int64)
    values = series.to_numpy(dtype=object)
    types = {type(v) for v in values[: min(len(values), 100_000)]}
    if types and all(issubclass(t, (int, np.integer)) and not issubclass(t, bool) for t in types):
        try:
            return values.astype(np.int64)
        except OverflowError:  # Python ints beyond int64: kept exactly, as decimal text
            return np.array([str(int(v)) for v in values])
        except (TypeError, ValueError):  # not integers after all: ids as text
            pass
    return values.astype(str)


def ids_from_text(values: Any, id_type: str, name: str) -> np.ndarray:
    """Type ids read as text from a file (see :data:`ID_TYPES`); never changes an id.

    Raises
    ------
    DataError
        ``id_type="int"`` and an id is not an integer or lies outside int64; an unknown
        ``id_type``; missing ids.
    """
    if id_type not in ID_TYPES:
        raise DataError(f"id_type must be one of {ID_TYPES}; got {id_type!r}")
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if series.isna().any():
        n = int(series.isna().sum())
        raise DataError(f"{name} column has {n} missing (empty) ids; every row needs an id")
    codes, distinct = pd.factorize(series)  # the checks below run once per distinct id
    uniq = pd.Series(np.asarray(distinct, dtype=object).astype(str), dtype=object)
    if id_type == "str":
        return uniq.to_numpy(dtype=str)[codes]
    if id_type == "auto":
        if not uniq.str.fullmatch(_CANONICAL_INT).all():
            return uniq.to_numpy(dtype=str)[codes]
        numbers = [int(v) for v in uniq]
        if not all(-_INT64_MAX - 1 <= v <= _INT64_MAX for v in numbers):
            return uniq.to_numpy(dtype=str)[codes]  # a 19-digit id beyond int64: keep the text
    else:
        stripped = uniq.str.strip()
        bad = ~stripped.str.fullmatch(r"[+-]?[0-9]+")
        if bad.any():
            raise DataError(
                f"id_type='int' but {name} id {uniq[bad].iloc[0]!r} is not an integer; "
                "pass id_type='str' to keep ids as text"
            )
        numbers = [int(v) for v in stripped]
        for text_value, number in zip(uniq, numbers, strict=True):
            if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
                raise DataError(
                    f"id_type='int' but {name} id {text_value} lies outside the 64-bit integer "
                    "range; pass id_type='str' to keep such ids exactly"
                )
    return np.array(numbers, dtype=np.int64)[codes]
