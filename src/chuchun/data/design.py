"""The feature space of feature-aware models: relation blocks over users, items and context.

A factorization machine sees each interaction as a sparse feature vector. Most of that vector
belongs to the user (their id, their attributes, the items they rated) or to the item (its id,
its attributes, its raters), so :class:`FeatureSpace` stores those parts once per user and once
per item, as two CSR *relation blocks* (Rendle 2013), and only the context (per-interaction
columns of the log) per row. The vector of interaction :math:`n` is the concatenation

.. math:: x_n = \\big[\\, U_{u(n)} \\;\\big|\\; I_{i(n)} \\;\\big|\\; C_n \\,\\big]

with these column blocks, each a *group* (hyperpriors and regularisation are per group):

``user``     one-hot user id (users seen in training only);
``<column>`` user attributes, as built by :class:`~chuchun.data.UserFeatures`;
``rated``    the user's rated items, each :math:`1/\\sqrt{|N(u)|}` (the SVD++ implicit block);
``item``     one-hot item id (items seen in training only);
``<column>`` item attributes (:class:`~chuchun.data.ItemFeatures`);
``raters``   the item's raters, each :math:`1/\\sqrt{|N(i)|}`;
``<column>`` context: one-hot for categorical columns (strings, integers, booleans), min-max
             scaled for float columns.

Feature names are readable (``"user=196"``, ``"occupation=engineer"``, ``"rated=50"``,
``"genres=Sci-Fi"``, ``"device=mobile"``) so explanations can cite them. The same object maps
new users and items (attributes and/or a history, no id feature) and new context values
(unknown categories get no feature) at prediction time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError
from chuchun.data.features import ItemFeatures, UserFeatures
from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary

__all__ = ["FeatureSpace"]


@dataclass
class FeatureSpace:
    """User block, item block and context encoding of an FM (see the module docstring).

    Build one with :meth:`build`. Attributes: ``users`` and ``items`` (vocabularies: the
    training ids plus the ids that only have features), ``user_block`` (users x ``n_user_features``
    CSR), ``item_block``, ``feature_names`` and ``feature_groups`` (index into ``group_names``)
    over all features, user block first, then item block, then context; ``context_spec``
    describes each context column.
    """

    users: Vocabulary
    items: Vocabulary
    user_block: sp.csr_matrix
    item_block: sp.csr_matrix
    feature_names: np.ndarray
    feature_groups: np.ndarray
    group_names: list[str]
    context_spec: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        data: Interactions,
        *,
        user_features: UserFeatures | None = None,
        item_features: ItemFeatures | None = None,
        context: list[str] | tuple[str, ...] | None = None,
        ids: bool = True,
        implicit_users: bool = False,
        implicit_items: bool = False,
        implicit_from: Interactions | None = None,
    ) -> FeatureSpace:
        """Encode ``data`` and its side information.

        Parameters
        ----------
        data : Interactions
        user_features, item_features : UserFeatures / ItemFeatures, optional
            Attribute rows; their ids join the vocabularies (cold users and items).
        context : list of str, optional
            Names of context columns of ``data`` (``data.context``).
        ids : bool
            One-hot id features for training users and items.
        implicit_users : bool
            Add the ``rated`` block (each user's items, :math:`1/\\sqrt n`).
        implicit_items : bool
            Add the ``raters`` block (each item's users, :math:`1/\\sqrt n`).
        implicit_from : Interactions, optional
            The log whose (user, item) pairs define the implicit blocks (default ``data``),
            e.g. all pairs known to exist when only their ratings are held out.
        """
        if not isinstance(data, Interactions):
            raise DataError(f"FeatureSpace.build expects Interactions; got {type(data).__name__}")
        _check_features(user_features, UserFeatures, "user_features", data.users)
        _check_features(item_features, ItemFeatures, "item_features", data.items)
        users = _union(data.users, user_features)
        items = _union(data.items, item_features)
        seen_u = np.zeros(len(users), dtype=bool)
        seen_u[users.index(data.users.ids)] = True
        seen_i = np.zeros(len(items), dtype=bool)
        seen_i[items.index(data.items.ids)] = True
        pairs = implicit_from if implicit_from is not None else data
        if implicit_from is not None and not isinstance(implicit_from, Interactions):
            raise DataError(f"implicit_from must be Interactions; got {type(implicit_from).__name__}")
        iu = users.index(pairs.user_ids)
        ii = items.index(pairs.item_ids)
        keep = (iu >= 0) & (ii >= 0)
        rated = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (iu[keep], ii[keep])),
                              shape=(len(users), len(items)))
        rated.sum_duplicates()
        rated.data[:] = 1.0

        groups: list[str] = []
        names: list[str] = []
        fgroups: list[int] = []

        def add(block_names: list[str], group_of: list[str]) -> None:
            for nm, g in zip(block_names, group_of, strict=True):
                if g not in groups:
                    groups.append(g)
                names.append(nm)
                fgroups.append(groups.index(g))

        ublocks: list[sp.csr_matrix] = []
        if ids:
            ublocks.append(_one_hot(seen_u))
            add([f"user={_txt(x)}" for x in users.ids[seen_u]], ["user"] * int(seen_u.sum()))
        if user_features is not None:
            ublocks.append(user_features.align(users).matrix)
            add(list(user_features.feature_names), list(user_features.feature_columns))
        if implicit_users:
            ublocks.append(_sqrt_normalised(rated))
            add([f"rated={_txt(x)}" for x in items.ids], ["rated"] * len(items))
        pu = len(names)
        iblocks: list[sp.csr_matrix] = []
        if ids:
            iblocks.append(_one_hot(seen_i))
            add([f"item={_txt(x)}" for x in items.ids[seen_i]], ["item"] * int(seen_i.sum()))
        if item_features is not None:
            iblocks.append(item_features.align(items).matrix)
            add(list(item_features.feature_names),
                [_side_group(c, groups[:]) for c in item_features.feature_columns])
        if implicit_items:
            iblocks.append(_sqrt_normalised(rated.T.tocsr()))
            add([f"raters={_txt(x)}" for x in users.ids], ["raters"] * len(users))
        if not ublocks and not iblocks:
            raise ConfigError("the feature space is empty: enable ids or pass features")
        spec = []
        for col in list(context or []):
            if col not in data.context:
                raise DataError(
                    f"context column {col!r} not found; the interactions carry "
                    f"{sorted(data.context)} (build them with context_cols=[...])"
                )
            values = data.context[col]
            if values.dtype.kind == "f":
                finite = values[np.isfinite(values)]
                lo = float(finite.min()) if len(finite) else 0.0
                hi = float(finite.max()) if len(finite) else 0.0
                spec.append({"column": col, "kind": "numeric", "low": lo, "high": hi})
                add([col], [col])
            else:
                cats = sorted({_txt(v) for v in values})
                spec.append({"column": col, "kind": "categorical", "values": cats})
                add([f"{col}={c}" for c in cats], [col] * len(cats))
        return cls(
            users=users,
            items=items,
            user_block=_hstack(ublocks, len(users)),
            item_block=_hstack(iblocks, len(items)),
            feature_names=np.asarray(names, dtype=str),
            feature_groups=np.asarray(fgroups, dtype=np.int32),
            group_names=groups,
            context_spec=spec,
            options={"ids": ids, "implicit_users": implicit_users,
                     "implicit_items": implicit_items, "n_user_features": pu},
        )

    # -- sizes ------------------------------------------------------------------------------
    @property
    def n_user_features(self) -> int:
        return int(self.user_block.shape[1])

    @property
    def n_item_features(self) -> int:
        return int(self.item_block.shape[1])

    @property
    def n_context_features(self) -> int:
        return len(self.feature_names) - self.n_user_features - self.n_item_features

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def context_columns(self) -> list[str]:
        return [s["column"] for s in self.context_spec]

    # -- transforms -------------------------------------------------------------------------
    def context_rows(self, data: Interactions | dict[str, Any] | None, n: int) -> sp.csr_matrix:
        """Context block of ``n`` rows from ``data.context`` (or a dict of columns).

        Categories not seen in training get no feature; numeric values use the training
        min-max scaling. Missing columns are an error when the space has context.
        """
        cols = data.context if isinstance(data, Interactions) else (data or {})
        blocks = []
        for s in self.context_spec:
            col = s["column"]
            if col not in cols:
                raise DataError(
                    f"context column {col!r} is needed (the model was fitted with it); got "
                    f"{sorted(cols)}"
                )
            v = np.asarray(cols[col]).reshape(-1)
            if len(v) != n:
                raise DataError(f"context column {col!r} has {len(v)} values; expected {n}")
            if s["kind"] == "numeric":
                x = v.astype(np.float64)
                span = s["high"] - s["low"]
                x = (x - s["low"]) / span if span > 0 else np.zeros(n)
                x[~np.isfinite(x)] = 0.0
                blocks.append(sp.csr_matrix(x[:, None].astype(np.float32)))
            else:
                pos = {c: j for j, c in enumerate(s["values"])}
                j = np.array([pos.get(_txt(x), -1) for x in v], dtype=np.int64)
                ok = j >= 0
                blocks.append(sp.csr_matrix(
                    (np.ones(int(ok.sum()), np.float32), (np.flatnonzero(ok), j[ok])),
                    shape=(n, len(s["values"]))))
        return _hstack(blocks, n)

    def new_user_rows(
        self,
        user_features: UserFeatures | None = None,
        history: sp.csr_matrix | None = None,
        n: int | None = None,
    ) -> sp.csr_matrix:
        """User-block rows of users unseen in training: attributes and/or a history.

        ``user_features`` rows (matched to the training feature names; unknown names are
        dropped) and ``history`` (rows x ``len(items)``, only the pattern matters) fill the
        attribute and ``rated`` parts; the id part stays empty.
        """
        rows = n if n is not None else (
            len(user_features) if user_features is not None
            else (history.shape[0] if history is not None else 0))
        return self._new_rows("user", user_features, history, rows)

    def new_item_rows(self, item_features: ItemFeatures, n: int | None = None) -> sp.csr_matrix:
        """Item-block rows of items unseen in training from their attributes."""
        rows = n if n is not None else len(item_features)
        return self._new_rows("item", item_features, None, rows)

    def _new_rows(self, side: str, features: Any, history: sp.csr_matrix | None,
                  n: int) -> sp.csr_matrix:
        lo = 0 if side == "user" else self.n_user_features
        hi = self.n_user_features if side == "user" else self.n_features - self.n_context_features
        names = self.feature_names[lo:hi]
        pos = {nm: j for j, nm in enumerate(names)}
        parts = []
        if features is not None:
            fm = features.matrix.tocoo()
            cols = np.array([pos.get(str(nm), -1) for nm in features.feature_names])
            c = cols[fm.col]
            ok = c >= 0
            parts.append(sp.csr_matrix((fm.data[ok], (fm.row[ok], c[ok])), shape=(n, hi - lo)))
        if history is not None and side == "user" and self.options.get("implicit_users"):
            h = sp.csr_matrix(history)
            if h.shape[1] != len(self.items):
                raise DataError(f"history must have {len(self.items)} item columns; got "
                                f"{h.shape[1]}")
            h = h.copy()
            h.data[:] = 1.0
            start = pos[f"rated={_txt(self.items.ids[0])}"] if len(self.items) else 0
            blk = _sqrt_normalised(h)
            parts.append(sp.hstack([sp.csr_matrix((n, start)), blk,
                                    sp.csr_matrix((n, hi - lo - start - h.shape[1]))]).tocsr())
        m = _empty(n, hi - lo)
        for p in parts:
            m = m + p
        m = sp.csr_matrix(m, dtype=np.float32)
        m.sort_indices()
        return m

    # -- persistence ------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """Arrays and JSON that :meth:`from_state` rebuilds the space from."""
        return {
            "fs_users_": self.users, "fs_items_": self.items,
            "fs_user_block_": self.user_block, "fs_item_block_": self.item_block,
            "feature_names_": self.feature_names, "feature_groups_": self.feature_groups,
            "fs_meta_": {"group_names": list(self.group_names),
                         "context_spec": self.context_spec, "options": self.options},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureSpace:
        meta = state["fs_meta_"]
        return cls(
            users=state["fs_users_"], items=state["fs_items_"],
            user_block=sp.csr_matrix(state["fs_user_block_"], dtype=np.float32),
            item_block=sp.csr_matrix(state["fs_item_block_"], dtype=np.float32),
            feature_names=np.asarray(state["feature_names_"], dtype=str),
            feature_groups=np.asarray(state["feature_groups_"], dtype=np.int32),
            group_names=list(meta["group_names"]), context_spec=list(meta["context_spec"]),
            options=dict(meta["options"]),
        )

    def __repr__(self) -> str:
        return (f"FeatureSpace({len(self.users)} users, {len(self.items)} items, "
                f"{self.n_user_features}+{self.n_item_features}+{self.n_context_features} "
                f"features, groups {self.group_names})")


def _txt(x: Any) -> str:
    return str(x.item() if isinstance(x, np.generic) else x)


def _check_features(f: Any, kind: type, name: str, vocab: Vocabulary) -> None:
    if f is None:
        return
    if not isinstance(f, kind):
        raise DataError(f"{name} must be chuchun.data.{kind.__name__}; got {type(f).__name__}")
    ids: Vocabulary = getattr(f, "ids")  # noqa: B009 - narrowed by the isinstance check
    a, b = ids.ids.dtype.kind in "iu", vocab.ids.dtype.kind in "iu"
    if a != b:
        raise DataError(
            f"ids of {name} ({ids.ids.dtype}) and of the interactions ({vocab.ids.dtype}) "
            "are of different kinds"
        )


def _union(vocab: Vocabulary, features: Any) -> Vocabulary:
    if features is None:
        return vocab
    return Vocabulary(np.union1d(vocab.ids, features.ids.ids))


def _one_hot(mask: np.ndarray) -> sp.csr_matrix:
    rows = np.flatnonzero(mask)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))),
                         shape=(len(mask), len(rows)))


def _sqrt_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32)
    counts = np.diff(m.indptr)
    scale = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0).astype(np.float32)
    return (sp.diags(scale) @ m).tocsr()


def _empty(n: int, m: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.zeros(0, np.float32), np.zeros(0, np.int32),
                          np.zeros(n + 1, np.int64)), shape=(n, m))


def _hstack(blocks: list[sp.csr_matrix], n: int) -> sp.csr_matrix:
    if not blocks:
        m = _empty(n, 0)
    else:
        m = sp.hstack(blocks, format="csr", dtype=np.float32)
    m.sort_indices()
    m.indptr = m.indptr.astype(np.int64)
    m.indices = m.indices.astype(np.int32)
    return m


def _side_group(column: str, taken: list[str]) -> str:
    """Item attribute group name, prefixed when a user attribute has the same column name."""
    return f"item:{column}" if column in taken and column not in ("item",) else str(column)
