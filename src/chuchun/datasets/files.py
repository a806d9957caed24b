"""Generic file loaders: interaction tables (CSV, TSV, Parquet) and basket-per-line transactions."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import IO, Any

from chuchun._exceptions import DataError
from chuchun.data.interactions import Interactions

__all__ = ["load_baskets", "load_interactions"]

_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None, ".dat": None,
                  ".data": None}
#: ``fmt`` of :func:`load_interactions` for sources without a suffix (standard input)
FORMATS = {"csv": ",", "tsv": "\t", "parquet": None}
_PARQUET_SUFFIXES = (".parquet", ".pq")


def load_interactions(
    path: str | os.PathLike[str] | IO[bytes],
    *,
    fmt: str | None = None,
    id_type: str = "auto",
    context_cols: list[str] | tuple[str, ...] = (),
    user_col: str = "user",
    item_col: str = "item",
    rating_col: Any = "auto",
    timestamp_col: Any = "auto",
    sep: str | None = None,
    header: bool = True,
    names: list[str] | None = None,
    encoding: str = "utf-8",
    duplicates: str = "error",
    rating_scale: tuple[float, float] | None = None,
) -> Interactions:
    """Read an interaction table from a file, choosing the reader by the file's suffix.

    ``.csv`` (comma), ``.tsv`` / ``.tab`` (tab), ``.txt`` / ``.dat`` / ``.data`` (``sep``
    required, e.g. ``"::"`` for MovieLens 1M, ``"\t"`` for 100K's ``u.data``), each optionally
    gzip-compressed (``.csv.gz``), and ``.parquet`` / ``.pq``.

    Parameters
    ----------
    path : path-like or binary file object
        The file; a file object (standard input) needs ``fmt``.
    fmt : {"csv", "tsv", "parquet"}, optional
        The format, overriding the suffix (required for file objects).
    id_type : {"str", "int", "auto"}
        How ids of text files are typed (see :meth:`Interactions.from_csv`); Parquet ids keep
        their column type.
    context_cols : list of str
        Columns kept as per-interaction context.
    user_col, item_col : str
        Names of the user and item id columns.
    rating_col, timestamp_col : str, None or "auto"
        ``"auto"`` uses a ``rating`` / ``timestamp`` column when there is one; ``None`` ignores
        it; a name requires it.
    sep : str, optional
        Field separator of text files; overrides the one implied by the suffix.
    header, names : bool, list of str
        Text files without a header row: ``header=False`` and the column ``names``.
    encoding : str
        Text encoding.
    duplicates, rating_scale
        Passed to :meth:`Interactions.from_arrays`.

    Returns
    -------
    Interactions

    Raises
    ------
    DataError
        The file is missing, unreadable, of an unknown suffix, or its content is invalid
        (missing columns, NaN ids, non-numeric ratings, ratings off ``rating_scale``, no rows).
    """
    stream = not isinstance(path, (str, os.PathLike))
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"fmt must be one of {sorted(FORMATS)}; got {fmt!r}")
    if stream and fmt is None:
        raise DataError("reading from a stream needs its format: fmt='csv', 'tsv' or 'parquet'")
    p = Path("-" if stream else path)  # type: ignore[arg-type]
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    suffix = f".{fmt}" if fmt is not None else (suffixes[-1] if suffixes else "")
    if fmt == "tsv":
        suffix = ".tsv"
    # a stream (standard input) is read whole: Parquet needs to seek, text is scanned twice
    source: Any = io.BytesIO(path.read()) if stream else p  # type: ignore[union-attr]
    columns: dict[str, Any] = {"user_col": user_col, "item_col": item_col,
                               "context_cols": list(context_cols)}
    if rating_col != "auto":
        columns["rating_col"] = rating_col
    if timestamp_col != "auto":
        columns["timestamp_col"] = timestamp_col
    options: dict[str, Any] = {"duplicates": duplicates, "rating_scale": rating_scale}
    if suffix in _PARQUET_SUFFIXES:
        return Interactions.from_parquet(source, **columns, **options)
    if suffix in _TEXT_SUFFIXES:
        chosen = sep if sep is not None else _TEXT_SUFFIXES[suffix]
        if chosen is None:
            raise DataError(
                f"cannot tell the field separator of {os.fspath(p)!r} from its suffix "
                f"{suffix!r}; pass sep=..."
            )
        return Interactions.from_csv(
            source, sep=chosen, header=header, names=names, encoding=encoding,
            id_type=id_type, **columns, **options,  # type: ignore[arg-type]
        )
    raise DataError(
        f"unknown file type {suffix or '(none)'!r} for {os.fspath(p)!r}; expected one of "
        f"{sorted([*_TEXT_SUFFIXES, *_PARQUET_SUFFIXES])} (optionally .gz)"
    )


def load_baskets(
    path: str | os.PathLike[str], sep: str = ",", *, encoding: str = "utf-8"
) -> list[list[str]]:
    """Read transactions stored one basket per line (e.g. the Groceries data set).

    Each line is one basket: items separated by ``sep``. Whitespace around each item is
    stripped, empty items (from ``"a,,b"`` or a trailing separator) are dropped, and blank lines
    are skipped, so a basket is never empty. Items keep their order within the line; repeats are
    kept (deduplicate with ``dict.fromkeys`` if needed). No header is expected. A ``.gz`` file
    is decompressed on the fly.

    Parameters
    ----------
    path : path-like
        The file.
    sep : str
        Item separator within a line.
    encoding : str
        Text encoding.

    Returns
    -------
    list of list of str
        The baskets in file order.

    Raises
    ------
    DataError
        The file is missing, not text in ``encoding``, or holds no basket at all.
    """
    p = Path(path)
    if not sep:
        raise DataError("sep must be a non-empty string")
    if not p.is_file():
        raise DataError(f"file not found: {os.fspath(p)!r}")
    opener: Any = gzip.open if p.suffix.lower() == ".gz" else open
    baskets: list[list[str]] = []
    try:
        with opener(p, "rt", encoding=encoding) as fh:
            for line in fh:
                items = [x.strip() for x in line.split(sep)]
                items = [x for x in items if x]
                if items:
                    baskets.append(items)
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"cannot read {os.fspath(p)!r} as {encoding} text: {exc}") from None
    if not baskets:
        raise DataError(
            f"empty input: {os.fspath(p)!r} holds no items (only blank lines or separators)"
        )
    return baskets
