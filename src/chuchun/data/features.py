"""Side features of items or users as a sparse matrix aligned to an id vocabulary.

A table with one row per id is turned into a CSR matrix (ids x features) from four kinds of
columns:

- **categorical**: one-hot, feature ``"col=value"``;
- **multi-valued**: multi-hot over the values of a separated string (``"Animation|Children"``),
  feature ``"col=value"``;
- **numeric**: min-max scaled to [0, 1] (or standardised), feature ``"col"``; missing values
  become 0 (min-max) or the mean (standardised);
- **free text**: TF-IDF over lower-cased word tokens, feature ``"col:token"``, with
  :math:`\\text{tfidf}(t, d) = \\text{tf}(t, d) \\cdot (\\ln\\frac{1 + N}{1 + \\text{df}(t)} + 1)`
  (smoothed idf, as in most IR toolkits).

Each categorical, multi-valued and text column is a block whose rows are scaled to unit L2 norm
(so a movie with five genres does not outweigh one with a single genre) and then multiplied by
the column's weight (``weights``, default 1). Numeric columns are used as scaled.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun.data.vocabulary import Vocabulary, ids_from_text

__all__ = ["ItemFeatures", "UserFeatures", "read_table", "tokenize"]

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits; tokens of one character are dropped."""
    return [t for t in _TOKEN.findall(text.lower()) if len(t) > 1]


class _Features:
    """Shared implementation of :class:`ItemFeatures` and :class:`UserFeatures`."""

    _default_id_col = "id"

    def __init__(
        self,
        ids: Vocabulary,
        matrix: sp.csr_matrix,
        feature_names: Sequence[str],
        columns: Sequence[str] | None = None,
    ) -> None:
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        names = np.asarray(list(feature_names), dtype=str)
        if matrix.shape != (len(ids), len(names)):
            raise DataError(
                f"feature matrix has shape {matrix.shape}; expected ({len(ids)}, {len(names)}) "
                "for the given ids and feature names"
            )
        self.ids = ids
        self.matrix = matrix
        self.feature_names = names
        #: source column of each feature
        self.feature_columns = (
            np.asarray(list(columns), dtype=str) if columns is not None
            else np.array([n.split("=")[0].split(":")[0] for n in names], dtype=str)
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_features(self) -> int:
        return int(self.matrix.shape[1])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, n_features={self.n_features})"

    @classmethod
    def from_pandas(
        cls,
        frame: pd.DataFrame,
        *,
        id_col: str | None = None,
        categorical: Sequence[str] = (),
        multi_valued: Sequence[str] | Mapping[str, str] = (),
        numeric: Sequence[str] = (),
        text: Sequence[str] = (),
        separator: str = "|",
        numeric_scaling: Literal["minmax", "standard"] = "minmax",
        min_df: int = 1,
        weights: Mapping[str, float] | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> Self:
        """Build features from a table with one row per id.

        Parameters
        ----------
        frame : pandas.DataFrame
        id_col : str
            Column of ids (default ``"item"`` for items, ``"user"`` for users).
        categorical, multi_valued, numeric, text : sequence of str
            Columns of each kind (see the module docstring). Several text columns may be given
            (e.g. the joined tags and a description); each is its own block.
            ``multi_valued`` may also map each column to its own separator.
        separator : str
            Separator of multi-valued columns (unless given per column).
        numeric_scaling : {"minmax", "standard"}
        min_df : int
            Text tokens in fewer rows than this are dropped.
        weights : mapping column -> float, optional
            Weight of each column's block (default 1).
        vocabulary : Vocabulary, optional
            Align rows to these ids: ids missing from the table get an all-zero row, ids not in
            the vocabulary are dropped. Default: the table's own ids.
        """
        id_col = id_col or cls._default_id_col
        separators = (
            {str(c): str(sep) for c, sep in multi_valued.items()}
            if isinstance(multi_valued, Mapping) else {}
        )
        multi_valued = list(multi_valued)
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"features expect a pandas DataFrame; got {type(frame).__name__}")
        if len(frame) == 0:
            raise DataError("empty input: the feature table has no rows")
        groups = {"categorical": categorical, "multi_valued": multi_valued, "numeric": numeric,
                  "text": text}
        for kind, cols in groups.items():
            if isinstance(cols, str):
                raise ConfigError(f"{kind} must be a list of column names; got the string {cols!r}")
        wanted = [id_col, *categorical, *multi_valued, *numeric, *text]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise DataError(
                f"column(s) {missing} not found; columns are {list(map(str, frame.columns))}"
            )
        used = [c for cols in groups.values() for c in cols]
        if not used:
            raise ConfigError("no feature columns given: pass categorical=, multi_valued=, "
                              "numeric= and/or text=")
        dup = sorted({c for c in used if used.count(c) > 1})
        if dup:
            raise ConfigError(f"column(s) {dup} are listed under more than one feature kind")
        if numeric_scaling not in ("minmax", "standard"):
            raise ConfigError(
                f"numeric_scaling must be 'minmax' or 'standard'; got {numeric_scaling!r}"
            )
        if isinstance(min_df, bool) or not isinstance(min_df, int) or min_df < 1:
            raise ConfigError(f"min_df must be an int >= 1; got {min_df!r}")
        weights = dict(weights or {})
        unknown_w = sorted(set(weights) - set(used))
        if unknown_w:
            raise ConfigError(f"weights given for column(s) {unknown_w} that are not features")
        raw_ids = frame[id_col]
        if raw_ids.isna().any():
            raise DataError(f"id column {id_col!r} holds {int(raw_ids.isna().sum())} missing ids")
        if raw_ids.duplicated().any():
            dups = raw_ids[raw_ids.duplicated()].unique()[:5].tolist()
            raise DataError(
                f"id column {id_col!r} holds duplicated ids (one row per id expected): {dups}"
            )
        table_vocab = Vocabulary.from_ids(raw_ids.to_numpy(), name=id_col)
        row_of = table_vocab.index(raw_ids.to_numpy())
        blocks: list[sp.csr_matrix] = []
        names: list[str] = []
        columns: list[str] = []
        n = len(table_vocab)
        for col in categorical:
            values = [[str(v)] if not _missing(v) else [] for v in frame[col]]
            _add_bag(blocks, names, columns, col, values, row_of, n, weights.get(col, 1.0), "=")
        for col in multi_valued:
            values = [
                [s.strip() for s in str(v).split(separators.get(col, separator)) if s.strip()]
                if not _missing(v)
                else [] for v in frame[col]
            ]
            _add_bag(blocks, names, columns, col, values, row_of, n, weights.get(col, 1.0), "=")
        for col in numeric:
            vals = pd.to_numeric(frame[col], errors="coerce")
            bad = vals.isna() & frame[col].notna()
            if bad.any():
                raise DataError(
                    f"numeric column {col!r} holds non-numeric values, e.g. "
                    f"{frame[col][bad].iloc[0]!r}"
                )
            v = vals.to_numpy(dtype=np.float64)
            finite = np.isfinite(v)
            if numeric_scaling == "minmax":
                lo = np.nanmin(v) if finite.any() else 0.0
                hi = np.nanmax(v) if finite.any() else 0.0
                scaled = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
                scaled[~finite] = 0.0
            else:
                mean = np.nanmean(v) if finite.any() else 0.0
                std = np.nanstd(v) if finite.any() else 0.0
                scaled = (v - mean) / std if std > 0 else np.zeros_like(v)
                scaled[~finite] = 0.0
            col_vals = np.zeros(n)
            col_vals[row_of] = scaled * weights.get(col, 1.0)
            blocks.append(sp.csr_matrix(col_vals[:, None]))
            names.append(str(col))
            columns.append(str(col))
        for col in text:
            docs = [tokenize(str(v)) if not _missing(v) else [] for v in frame[col]]
            _add_tfidf(blocks, names, columns, col, docs, row_of, n, weights.get(col, 1.0),
                       min_df)
        empty: Any = (n, 0)
        matrix = sp.hstack(blocks, format="csr", dtype=np.float32) if blocks else sp.csr_matrix(
            empty, dtype=np.float32
        )
        out = cls(table_vocab, matrix, names, columns)
        return out.align(vocabulary) if vocabulary is not None else out

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        id_col: str | None = None,
        sep: str | None = None,
        id_type: Literal["str", "int", "auto"] = "auto",
        **kwargs: Any,
    ) -> Self:
        """Read a feature table (``.csv``, ``.tsv``, ``.parquet``, optionally ``.gz``) and build
        features with :meth:`from_pandas` (``kwargs``: ``categorical``, ``multi_valued``, ...).

        The id column is read as text and typed by ``id_type`` as in
        :meth:`~chuchun.data.Interactions.from_csv`, so ids match those of the interactions
        read the same way.
        """
        id_col = id_col or cls._default_id_col
        frame = read_table(path, sep=sep, text_cols=[id_col])
        if id_col not in frame.columns:
            raise DataError(
                f"id column {id_col!r} not found in {os.fspath(path)!r}; columns are "
                f"{list(map(str, frame.columns))}"
            )
        frame[id_col] = ids_from_text(frame[id_col], id_type, id_col)
        return cls.from_pandas(frame, id_col=id_col, **kwargs)

    def align(self, vocabulary: Vocabulary) -> Self:
        """The same features with rows for ``vocabulary``'s ids (zero rows for unknown ids)."""
        if not isinstance(vocabulary, Vocabulary):
            raise DataError(f"align expects a Vocabulary; got {type(vocabulary).__name__}")
        src = self.ids.index(vocabulary.ids)
        have = src >= 0
        pick = sp.csr_matrix(
            (np.ones(int(have.sum()), np.float32), (np.flatnonzero(have), src[have])),
            shape=(len(vocabulary), len(self.ids)),
        )
        return type(self)(vocabulary, (pick @ self.matrix).tocsr(), list(self.feature_names),
                          list(self.feature_columns))

    def rows(self, ids: Any) -> sp.csr_matrix:
        """Feature rows of external ``ids`` (all-zero rows for ids without features)."""
        idx = self.ids.index(ids)
        out = self.matrix[np.maximum(idx, 0)].tocsr()
        if (idx < 0).any():
            out = sp.diags((idx >= 0).astype(np.float32)) @ out
        return out.tocsr()

    def to_pandas(self) -> pd.DataFrame:
        """Long table of the non-zero features: id, feature, value."""
        coo = self.matrix.tocoo()
        return pd.DataFrame({
            "id": self.ids.ids[coo.row],
            "feature": self.feature_names[coo.col],
            "value": coo.data,
        })


class ItemFeatures(_Features):
    """Item side features (ids x features CSR); see the module docstring.

    Attributes
    ----------
    ids : Vocabulary
    matrix : scipy.sparse.csr_matrix of float32, shape (len(ids), n_features)
    feature_names : ndarray of str
    feature_columns : ndarray of str, the source column of each feature
    """

    _default_id_col = "item"


class UserFeatures(_Features):
    """User side features (ids x features CSR); see :class:`ItemFeatures`."""

    _default_id_col = "user"

    @classmethod
    def from_item_profiles(
        cls, data: Any, item_features: ItemFeatures, columns: Sequence[str] | None = None,
    ) -> Self:
        """Users described by the items they interacted with: the mean attribute row.

        .. math:: x_u = \\frac{1}{|N(u)|} \\sum_{i \\in N(u)} a_i

        over the distinct items :math:`N(u)` of each user of ``data`` (an
        :class:`~chuchun.data.Interactions`; build it from the training log only) and the rows
        :math:`a_i` of ``item_features`` (items without features count as zero rows). Features
        are named ``"profile:<item feature>"``, their source columns ``"profile:<column>"``, so
        that a feature-aware model learns separate weights for "the user watches Dramas" and
        "the item is a Drama". ``columns`` keeps only those source columns of
        ``item_features`` (e.g. ``["genres", "year"]``; a text block makes every row dense).
        """
        if not isinstance(item_features, ItemFeatures):
            raise DataError(f"item_features must be ItemFeatures; got "
                            f"{type(item_features).__name__}")
        for attr in ("users", "items", "user_ids", "item_ids"):
            if not hasattr(data, attr):
                raise DataError(f"from_item_profiles expects Interactions; got "
                                f"{type(data).__name__}")
        keep = np.arange(item_features.n_features)
        if columns is not None:
            unknown = sorted(set(columns) - set(item_features.feature_columns.tolist()))
            if unknown:
                raise ConfigError(f"columns {unknown} are not item feature columns; they are "
                                  f"{sorted(set(item_features.feature_columns.tolist()))}")
            keep = np.flatnonzero(np.isin(item_features.feature_columns, list(columns)))
        users, items = data.users, data.items
        A = item_features.align(items).matrix.tocsr()[:, keep].astype(np.float64)
        R = sp.csr_matrix(
            (np.ones(len(data.user_ids)), (users.index(data.user_ids),
                                           items.index(data.item_ids))),
            shape=(len(users), len(items)))
        R.data[:] = 1.0
        n = np.asarray(R.sum(axis=1)).ravel()
        P = sp.diags(1.0 / np.maximum(n, 1.0)) @ R @ A
        return cls(Vocabulary(users.ids), sp.csr_matrix(P),
                   [f"profile:{x}" for x in item_features.feature_names[keep]],
                   [f"profile:{c}" for c in item_features.feature_columns[keep]])


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA


def _l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    return (sp.diags(scale) @ m).tocsr()


def _add_bag(blocks: list[sp.csr_matrix], names: list[str], columns: list[str], col: str,
             values: list[list[str]], row_of: np.ndarray, n: int, weight: float,
             sep: str) -> None:
    vocab = sorted({v for vs in values for v in vs})
    pos = {v: j for j, v in enumerate(vocab)}
    rows = [row_of[r] for r, vs in enumerate(values) for v in set(vs)]
    cols = [pos[v] for vs in values for v in set(vs)]
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(vocab)))
    blocks.append(_l2_rows(m) * weight)
    names.extend(f"{col}{sep}{v}" for v in vocab)
    columns.extend(str(col) for _ in vocab)


def _add_tfidf(blocks: list[sp.csr_matrix], names: list[str], columns: list[str], col: str,
               docs: list[list[str]], row_of: np.ndarray, n: int, weight: float,
               min_df: int) -> None:
    df: Counter[str] = Counter()
    for d in docs:
        df.update(set(d))
    vocab = sorted(t for t, c in df.items() if c >= min_df)
    pos = {t: j for j, t in enumerate(vocab)}
    n_docs = len(docs)
    idf = np.array([np.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in vocab])
    rows, cols, vals = [], [], []
    for r, d in enumerate(docs):
        for t, c in Counter(d).items():
            if t in pos:
                rows.append(row_of[r])
                cols.append(pos[t])
                vals.append(c * idf[pos[t]])
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n, len(vocab)))
    blocks.append(_l2_rows(m) * weight)
    names.extend(f"{col}:{t}" for t in vocab)
    columns.extend(str(col) for _ in vocab)


def read_table(
    path: str | os.PathLike[str], *, sep: str | None = None, text_cols: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a side table (features, labels) by suffix: ``.parquet``/``.pq``, else delimited text
    (``.tsv``/``.tab`` tab, otherwise comma unless ``sep``); ``text_cols`` are read as text."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise DataError(f"file not found: {p!r}")
    stem = p.lower().removesuffix(".gz").removesuffix(".bz2").removesuffix(".xz")
    try:
        if stem.endswith((".parquet", ".pq")):
            return pd.read_parquet(p)
        chosen = sep or ("\t" if stem.endswith((".tsv", ".tab")) else ",")
        return pd.read_csv(p, sep=chosen, dtype={c: str for c in text_cols},
                           engine="c" if len(chosen) == 1 else "python")
    except pd.errors.EmptyDataError:
        raise DataError(f"empty input: {p!r} has no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataError(f"cannot read {p!r}: {exc}") from None
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"cannot read {p!r}: {exc}") from None
