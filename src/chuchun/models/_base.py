"""The estimator contract every chuchun model follows.

A model is a :class:`Recommender` subclass that declares its hyperparameters with
:class:`~chuchun._params.Param` and implements a few hooks:

``_fit(data)``
    learn from an :class:`~chuchun.data.Interactions` (validated and mapped already);
``_score(user_idx)``
    dense scores ``(len(user_idx), n_items)`` for known users (used by ``recommend``);
``_predict_pairs(user_idx, item_idx)``
    scores or ratings of known (user, item) pairs; the default gathers from ``_score``;
``_fallback_pairs(user_idx, item_idx)``
    estimates for pairs whose user or item (index ``-1``) is unknown;
``_score_history(history)``
    scores for users not seen in training, from a CSR of their interactions (fold-in); models
    that support it set ``supports_fold_in = True``;
``_score_sequences(sequences)``
    scores for users not seen in training from their *ordered* histories (a list of item-index
    arrays, oldest first); sequence models set ``uses_order = True`` and
    ``recommend_for_history`` then calls this hook instead of ``_score_history``;
``_explain(user_idx, item_idx)``
    the score of one known pair and every reason behind it (:class:`Reason` records with
    external ids); ``explain`` sorts them, keeps the strongest and adds labels. Models whose
    reasons add up to the score set ``explain_is_additive = True``;
``_item_similarities(item_idx)`` / ``_user_similarities(user_idx)``
    similarity rows ``(len(idx), n_items)`` (dense or CSR; larger is more similar) of models
    that have an item (user) representation; ``similar_items`` / ``similar_users`` drop the
    query itself, keep the ``k`` best positive ones and package them.

The public methods take and return arrays of external ids and handle id mapping, unknown ids,
seen-item exclusion, candidate restriction, batching and top-k selection once, here.

Unknown-id policy (argument ``unknown`` of ``predict`` and ``recommend``):

``"fallback"`` (default)
    ``predict`` returns the model's fallback estimate (baseline or global mean for rating models,
    ``NaN`` for ranking-only models); ``recommend`` ranks items by that fallback estimate for
    rating models that have one (e.g. :math:`\\mu + b_i`), else by training popularity.
``"empty"``
    ``predict`` returns ``NaN``; ``recommend`` returns an empty (fully padded) row.
``"error"``
    raise :class:`~chuchun.UnknownIdError` naming the unknown ids.
"""

from __future__ import annotations

import abc
import difflib
import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from chuchun._exceptions import ConfigError, DataError, NotFittedError, UnknownIdError
from chuchun._params import HasParams
from chuchun.data.interactions import Interactions
from chuchun.data.vocabulary import Vocabulary
from chuchun.models._labels import Labels, label_of
from chuchun.models._results import (
    Explanation,
    Explanations,
    Reason,
    Recommendations,
    SimilarItems,
)

__all__ = ["Recommender", "clone", "get_model_class", "registered_models"]

UnknownPolicy = Literal["fallback", "empty", "error"]
_POLICIES = ("fallback", "empty", "error")
_SCORE_BUDGET = 50_000_000  # floats per scoring chunk (~200 MB)

#: registered model classes by module-qualified name ("chuchun.models.mf.ALS")
_REGISTRY: dict[str, type[Recommender]] = {}
_BUILTIN_PREFIX = "chuchun."


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _register(cls: type[Recommender]) -> None:
    if cls.__name__.startswith("_") or "<locals>" in cls.__qualname__:
        return  # private bases and classes local to a function are not loadable by name
    key = _qualified(cls)
    taken = _REGISTRY.get(key)
    if taken is not None and taken is not cls:
        raise ConfigError(
            f"a model class named {key!r} is already registered; give the new class another "
            "name or module"
        )
    _REGISTRY[key] = cls


def get_model_class(name: str) -> type[Recommender]:
    """Look up a registered model class.

    ``name`` is a module-qualified name (``"chuchun.models.mf.ALS"``, exact) or a class name
    (``"ALS"``, case-insensitive). A class name means the built-in model of that name when
    there is one, so a user's subclass that reuses a built-in's name never shadows it; other
    class names must be unambiguous.
    """
    from chuchun.models import _import_all

    _import_all()  # registers every built-in model
    if name in _REGISTRY:
        return _REGISTRY[name]
    matches = [cls for cls in _REGISTRY.values() if cls.__name__.lower() == name.lower()]
    builtin = [cls for cls in matches if _qualified(cls).startswith(_BUILTIN_PREFIX)]
    if len(builtin) == 1:
        return builtin[0]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(sorted(_qualified(c) for c in matches))
        raise ConfigError(f"model name {name!r} is ambiguous; use one of: {listed}")
    known = ", ".join(sorted(registered_models()))
    raise ConfigError(f"unknown model {name!r}; known models are: {known}")


def clone(model: Recommender) -> Recommender:
    """A new, unfitted model of the same class with the same hyperparameters."""
    return type(model)(**model.get_params())


def registered_models() -> dict[str, type[Recommender]]:
    """Registered model classes by class name: the built-in models, and other registered
    classes whose name no built-in uses (under their module-qualified name otherwise)."""
    from chuchun.models import _import_all

    _import_all()
    out: dict[str, type[Recommender]] = {}
    for key, cls in _REGISTRY.items():
        if key.startswith(_BUILTIN_PREFIX):
            out[cls.__name__] = cls
    for key, cls in _REGISTRY.items():
        if not key.startswith(_BUILTIN_PREFIX):
            out[key if cls.__name__ in out else cls.__name__] = cls
    return dict(sorted(out.items()))


def _counts(idx: np.ndarray, n: int, chunk: int = 1 << 18) -> np.ndarray:
    """``np.bincount(idx, minlength=n)`` in chunks: bincount casts an int32 index array to
    int64 first, a transient copy twice the size of the log's item column."""
    out = np.zeros(n, dtype=np.int64)
    for lo in range(0, len(idx), chunk):
        out += np.bincount(idx[lo:lo + chunk], minlength=n)
    return out


class Recommender(HasParams, abc.ABC):
    """Base class of all chuchun models (see the module docstring for the contract)."""

    #: whether ``predict`` estimates ratings on the training scale (RMSE/MAE make sense)
    predicts_ratings: ClassVar[bool] = False
    #: whether ``recommend_for_history`` can score users unseen in training
    supports_fold_in: ClassVar[bool] = False
    #: whether ``recommend_for_history`` passes ordered histories to ``_score_sequences``
    uses_order: ClassVar[bool] = False
    #: whether the contributions of all reasons returned by ``_explain`` sum to the score
    explain_is_additive: ClassVar[bool] = False
    #: one line saying how ``explain`` derives its reasons (shown with every explanation)
    explain_method: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, data: Interactions, **fit_params: Any) -> Self:
        """Learn from ``data``; a refit starts from scratch. Returns ``self``.

        A fit that raises leaves the model exactly as it was before the call (unfitted, or
        fitted on the previous data), so a failed fit can never be used or saved.
        """
        if not isinstance(data, Interactions):
            raise DataError(
                f"fit expects a chuchun.data.Interactions; got {type(data).__name__}. "
                "Build one with Interactions.from_pandas(...) or from_csv(...)"
            )
        if len(data) == 0:
            raise DataError("cannot fit on an empty interaction log")
        self._validate_params()
        self._check_fit_params(fit_params)
        before = dict(vars(self))
        try:
            for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
                delattr(self, name)
            self._set_data_state(data)
            self._fit(data, **fit_params)
            self._check_finite_state()
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise
        return self

    def _check_finite_state(self) -> None:
        """Refuse a fit whose learned numbers are not all finite (a diverged optimiser): such a
        model would score NaN, recommend nothing and still save. One float64 sum per array
        (NaN and infinity survive a sum), so no copy of a large state is made."""
        for name, value in vars(self).items():
            if not name.endswith("_") or name.startswith("_"):
                continue
            data = getattr(value, "data", None) if sp.issparse(value) else value
            if not isinstance(data, np.ndarray) or data.dtype.kind not in "fc" or not data.size:
                continue
            if np.isfinite(data.sum(dtype=np.complex128 if data.dtype.kind == "c"
                                    else np.float64)):
                continue
            bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
            hints = [f"{p}={getattr(self, p)!r}" for p in ("learning_rate", "regularization")
                     if p in self._params]
            raise ConfigError(
                f"{type(self).__name__}'s fit diverged: {name} holds {bad} non-finite "
                f"value(s) (NaN or infinity) after training"
                + (f"; lower the learning rate or raise the regularization (now "
                   f"{', '.join(hints)})" if hints else "; check the parameters and the data")
            )

    def _set_data_state(self, data: Interactions) -> None:
        """The fitted attributes every model has: vocabularies, seen items, popularity."""
        self.users_: Vocabulary = data.users
        self.items_: Vocabulary = data.items
        self.seen_: sp.csr_matrix = data.csr
        values = data.values
        self.global_mean_ = float(values.mean()) if data.has_ratings else 1.0
        self.item_popularity_ = _counts(data.item_idx, data.n_items).astype(np.float32)
        self.rating_scale_ = (
            list(data.rating_scale) if data.rating_scale is not None
            else ([float(values.min()), float(values.max())] if data.has_ratings else None)
        )
        self.fingerprint_ = data.fingerprint()

    @abc.abstractmethod
    def _fit(self, data: Interactions) -> None:
        """Learn from ``data`` (validated, with ``users_``/``items_``/``seen_`` already set)."""

    def _check_fit_params(self, fit_params: dict[str, Any]) -> None:
        sig = inspect.signature(self._fit)
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            return
        accepted = [n for n in sig.parameters if n != "data"]
        for name in fit_params:
            if name not in accepted:
                hint = difflib.get_close_matches(name, accepted, n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                listed = ", ".join(accepted) or "none"
                raise ConfigError(
                    f"{type(self).__name__}.fit got an unexpected argument {name!r}{extra} "
                    f"Arguments besides the data: {listed}"
                )

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "items_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(interactions) first"
            )

    @property
    def n_users_(self) -> int:
        self._check_fitted()
        return len(self.users_)

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return len(self.items_)

    # -- hooks with defaults ------------------------------------------------------------------
    @abc.abstractmethod
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense scores ``(len(user_idx), n_items)`` of known users."""

    def _predict_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        out = np.empty(len(user_idx), dtype=np.float64)
        order = np.argsort(user_idx, kind="stable")
        uniq, starts = np.unique(user_idx[order], return_index=True)
        bounds = np.r_[starts, len(order)]
        step = self._chunk_size()
        for c in range(0, len(uniq), step):
            users = uniq[c : c + step]
            scores = self._score(users)
            for j in range(len(users)):
                rows = order[bounds[c + j] : bounds[c + j + 1]]
                out[rows] = scores[j, item_idx[rows]]
        return out

    def _fallback_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        fill = self.global_mean_ if self.predicts_ratings else np.nan
        return np.full(len(user_idx), fill, dtype=np.float64)

    def _fallback_ranking(self) -> np.ndarray:
        """Scores of every item for a user unseen in training: the fallback estimate of each
        item for rating models (e.g. the baseline :math:`\\mu + b_i`), popularity otherwise."""
        if self.predicts_ratings:
            n = len(self.items_)
            est = self._fallback_pairs(np.full(n, -1, dtype=np.int32), np.arange(n, dtype=np.int32))
            if np.isfinite(est).all() and np.ptp(est) > 0:
                return est.astype(np.float32)
        return self.item_popularity_.astype(np.float32).copy()

    def _score_history(self, history: sp.csr_matrix) -> np.ndarray:
        raise ConfigError(f"{type(self).__name__} cannot score users unseen in training")

    def _chunk_size(self) -> int:
        return max(1, min(4096, _SCORE_BUDGET // max(1, len(self.items_))))

    # -- id mapping ---------------------------------------------------------------------------
    def _map(self, vocab: Vocabulary, ids: Any, what: str, unknown: str) -> np.ndarray:
        if unknown not in _POLICIES:
            raise ConfigError(f"unknown must be one of {_POLICIES}; got {unknown!r}")
        idx = vocab.index(ids)
        if unknown == "error" and (idx < 0).any():
            bad = np.asarray(ids).reshape(-1)[idx < 0]
            shown = ", ".join(repr(x.item() if hasattr(x, "item") else x) for x in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise UnknownIdError(
                f"{len(bad)} {what} id(s) not seen in training: {shown}{more} "
                "(pass unknown='fallback' or 'empty' to score them anyway)"
            )
        return idx

    # -- public API ---------------------------------------------------------------------------
    def predict(
        self, users: Any, items: Any, *, unknown: UnknownPolicy = "fallback"
    ) -> np.ndarray:
        """Predicted rating (rating models) or score of each (user, item) pair.

        Parameters
        ----------
        users, items : array-like of external ids, same length
        unknown : {"fallback", "empty", "error"}
            Policy for pairs whose user or item was not in training (see module docs).

        Returns
        -------
        ndarray of float64, shape (n_pairs,)
        """
        self._check_fitted()
        users = np.asarray(users).reshape(-1)
        items = np.asarray(items).reshape(-1)
        if len(users) != len(items):
            raise DataError(
                f"length mismatch: {len(users)} users but {len(items)} items in predict"
            )
        u = self._map(self.users_, users, "user", unknown)
        i = self._map(self.items_, items, "item", unknown)
        known = (u >= 0) & (i >= 0)
        out = np.full(len(u), np.nan, dtype=np.float64)
        if known.any():
            out[known] = self._predict_pairs(u[known], i[known])
        if unknown == "fallback" and not known.all():
            out[~known] = self._fallback_pairs(u[~known], i[~known])
        return out

    def recommend(
        self,
        users: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Any = None,
        unknown: UnknownPolicy = "fallback",
    ) -> Recommendations:
        """Top-``k`` items for each user, best first.

        Parameters
        ----------
        users : array-like of external user ids
        k : int
            List length; rows are padded when fewer items qualify.
        exclude_seen : bool
            Drop items the user interacted with in training.
        candidates : array-like of item ids, optional
            Rank only these items (unknown ones follow ``unknown``: ignored or an error).
        unknown : {"fallback", "empty", "error"}
            Policy for users not seen in training (see module docs).
        """
        self._check_fitted()
        _check_k(k)
        user_ids = np.asarray(users).reshape(-1)
        u = self._map(self.users_, user_ids, "user", unknown)
        allowed = self._candidate_mask(candidates, unknown)
        k_eff = min(k, len(self.items_))
        idx = np.full((len(u), k), -1, dtype=np.int32)
        vals = np.full((len(u), k), np.nan, dtype=np.float32)
        known_rows = np.flatnonzero(u >= 0)
        step = self._chunk_size()
        for c in range(0, len(known_rows), step):
            rows = known_rows[c : c + step]
            scores = np.array(self._score(u[rows]), dtype=np.float32, copy=True)
            if exclude_seen:
                _mask_seen(scores, self.seen_, u[rows])
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            idx[rows, :k_eff], vals[rows, :k_eff] = _top_k(scores, k_eff)
        cold = np.flatnonzero(u < 0)
        if len(cold) and unknown == "fallback":
            pop = self._fallback_ranking()
            if allowed is not None:
                pop[~allowed] = -np.inf
            top_i, top_v = _top_k(pop[None, :], k_eff)
            idx[cold, :k_eff] = top_i[0]
            vals[cold, :k_eff] = top_v[0]
        return self._package(user_ids, idx, vals)

    def recommend_for_history(
        self,
        histories: Any,
        k: int = 10,
        *,
        ratings: Any = None,
        exclude_seen: bool = True,
        candidates: Any = None,
    ) -> Recommendations:
        """Top-``k`` items for users unseen in training, from interactions given now (fold-in).

        Parameters
        ----------
        histories : list of lists of item ids, or Interactions
            Each entry is one new user's items. Items unknown to the model are ignored.
        ratings : list of lists of float, optional
            Ratings parallel to ``histories`` (ignored when ``histories`` is Interactions).
        """
        self._check_fitted()
        _check_k(k)
        if not self.supports_fold_in:
            raise ConfigError(
                f"{type(self).__name__} cannot recommend for users unseen in training; "
                "models with supports_fold_in=True can"
            )
        if self.predicts_ratings and (
            ratings is None
            if not isinstance(histories, Interactions)
            else not histories.has_ratings
        ):
            raise DataError(
                f"{type(self).__name__} predicts ratings, so folding in a user needs their "
                "ratings: pass ratings=[[...], ...] parallel to the histories"
            )
        user_ids, history = self._history_matrix(histories, ratings)
        ordered = self._history_sequences(histories) if self._orders_histories() else None
        allowed = self._candidate_mask(candidates, "fallback")
        k_eff = min(k, len(self.items_))
        idx = np.full((history.shape[0], k), -1, dtype=np.int32)
        vals = np.full((history.shape[0], k), np.nan, dtype=np.float32)
        step = self._chunk_size()
        for c in range(0, history.shape[0], step):
            block = history[c : c + step]
            raw = (
                self._score_history(block) if ordered is None
                else self._score_sequences(ordered[c : c + step])
            )
            scores = np.array(raw, dtype=np.float32, copy=True)
            if exclude_seen:
                _mask_seen(scores, block, np.arange(block.shape[0]))
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            idx[c : c + step, :k_eff], vals[c : c + step, :k_eff] = _top_k(scores, k_eff)
        return self._package(user_ids, idx, vals)

    def _orders_histories(self) -> bool:
        """Whether fold-in reads histories in order (``_score_sequences``): ``uses_order`` by
        default; a model whose use of order depends on its hyperparameters overrides this."""
        return type(self).uses_order

    def _history_matrix(self, histories: Any, ratings: Any) -> tuple[np.ndarray, sp.csr_matrix]:
        if isinstance(histories, Interactions):
            i = self.items_.index(histories.item_ids)
            keep = i >= 0
            m = sp.csr_matrix(
                (histories.values[keep], (histories.user_idx[keep], i[keep])),
                shape=(histories.n_users, len(self.items_)),
                dtype=np.float32,
            )
            m.sum_duplicates()
            return histories.users.ids, m
        if ratings is not None and len(ratings) != len(histories):
            raise DataError(
                f"length mismatch: {len(histories)} histories but {len(ratings)} rating lists"
            )
        rows, cols, vals = [], [], []
        for r, items in enumerate(histories):
            idx = self.items_.index(np.asarray(list(items)))
            if ratings is not None:
                rr = np.asarray(ratings[r], dtype=np.float32)
                if len(rr) != len(idx):
                    raise DataError(
                        f"history {r} has {len(idx)} items but {len(rr)} ratings"
                    )
            else:
                rr = np.ones(len(idx), dtype=np.float32)
            keep = idx >= 0
            rows.append(np.full(int(keep.sum()), r, dtype=np.int32))
            cols.append(idx[keep])
            vals.append(rr[keep])
        n = len(histories)
        m = sp.csr_matrix(
            (
                np.concatenate(vals) if vals else np.empty(0, np.float32),
                (
                    np.concatenate(rows) if rows else np.empty(0, np.int32),
                    np.concatenate(cols) if cols else np.empty(0, np.int32),
                ),
            ),
            shape=(n, len(self.items_)),
            dtype=np.float32,
        )
        m.sort_indices()
        return np.arange(n), m

    def _history_sequences(self, histories: Any) -> list[np.ndarray]:
        """Each history as item indices in the order given (Interactions: by timestamp, see
        :func:`chuchun.data.sequences.user_sequences`); items unknown to the model dropped."""
        if isinstance(histories, Interactions):
            from chuchun.data.sequences import user_sequences

            seqs = user_sequences(histories)
            remap = self.items_.index(seqs.item_vocab.ids)
            mapped = [remap[seqs[s]] for s in range(len(seqs))]
        else:
            mapped = [self.items_.index(np.asarray(list(items))) for items in histories]
        return [m[m >= 0].astype(np.int32) for m in mapped]

    def _score_sequences(self, sequences: list[np.ndarray]) -> np.ndarray:
        raise ConfigError(f"{type(self).__name__} does not score ordered histories")

    def _candidate_mask(self, candidates: Any, unknown: str) -> np.ndarray | None:
        if candidates is None:
            return None
        c = self._map(self.items_, candidates, "candidate item", unknown)
        mask = np.zeros(len(self.items_), dtype=bool)
        mask[c[c >= 0]] = True
        return mask

    def _package(self, user_ids: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> Recommendations:
        vals = np.where(idx >= 0, vals, np.nan).astype(np.float32)
        if (idx < 0).any():
            items = np.empty(idx.shape, dtype=object)
            ok = idx >= 0
            items[ok] = self.items_.ids[idx[ok]]
        else:
            items = self.items_.ids[idx]
        return Recommendations(user_ids=user_ids, item_ids=items, scores=vals, item_idx=idx)

    # -- labels -------------------------------------------------------------------------------
    def set_item_labels(self, labels: Any) -> Self:
        """Store readable item names (titles) in the fitted model as ``item_labels_``.

        ``item_labels_`` is a string array aligned with ``items_.ids`` (``""`` where an item
        has no label); it is saved with the artifact, and :meth:`explain` uses it when no
        ``labels`` are passed. Call after ``fit`` (a refit starts without labels).

        Parameters
        ----------
        labels : mapping, pandas Series, callable, array-like or None
            Item id -> name (a Series indexed by id, a dict, a function), or a sequence of
            names aligned with ``items_.ids``. ``None`` removes stored labels.
        """
        self._check_fitted()
        if labels is None:
            self.__dict__.pop("item_labels_", None)
            return self
        ids = self.items_.ids
        if isinstance(labels, (list, tuple, np.ndarray)):
            names = np.asarray(labels, dtype=object).reshape(-1)
            if len(names) != len(ids):
                raise DataError(
                    f"labels as a sequence must align with the model's {len(ids)} items; "
                    f"got {len(names)} labels (pass a mapping id -> label instead)"
                )
            out = np.array(["" if v is None else str(v) for v in names], dtype=str)
        else:
            if callable(labels) and not hasattr(labels, "__getitem__"):
                def get(key: Any) -> str:
                    return str(labels(key))
            else:
                def get(key: Any) -> str:
                    try:
                        value = labels[key]
                    except (KeyError, IndexError, TypeError):
                        return ""
                    return "" if value is None or value != value else str(value)
            out = np.array([get(_plain(x)) for x in ids], dtype=str)
        self.item_labels_: np.ndarray = out
        return self

    def _stored_labels(self) -> dict[Any, str] | None:
        """``item_labels_`` as an id -> label mapping (None without labels)."""
        stored = getattr(self, "item_labels_", None)
        if stored is None:
            return None
        cached = self.__dict__.get("_label_lookup")
        if cached is not None and cached[0] is stored:
            return cached[1]  # type: ignore[no-any-return]
        lookup = {_plain(i): str(t) for i, t in zip(self.items_.ids, stored, strict=True) if t}
        self.__dict__["_label_lookup"] = (stored, lookup)
        return lookup

    # -- explanations and neighbours ----------------------------------------------------------
    @abc.abstractmethod
    def _explain(self, user_idx: int, item_idx: int) -> tuple[float, list[Reason]]:
        """Score of a known (user, item) pair (the number ``recommend`` ranks by) and all the
        reasons behind it, as :class:`Reason` records carrying external ids."""

    def explain(
        self,
        users: Any,
        items: Any,
        *,
        labels: Labels = None,
        n_reasons: int | None = 5,
    ) -> Explanations:
        """Why each ``items[j]`` is scored as it is for ``users[j]``.

        Parameters
        ----------
        users, items : array-like of external ids, same length (a scalar is a batch of one)
        labels : mapping, pandas Series or callable, optional
            Item id -> readable name (e.g. titles), used for item reasons and the item itself;
            default: the labels stored with :meth:`set_item_labels` (``item_labels_``).
        n_reasons : int or None
            Keep this many reasons with the largest absolute contribution (None: all); reasons
            other than bias terms are kept first, and bias terms fill the places left.

        Returns
        -------
        Explanations
            One :class:`Explanation` per pair, in the order asked. Users and items must have
            been seen in training (:class:`~chuchun.UnknownIdError` otherwise).
        """
        self._check_fitted()
        if n_reasons is not None and (
            isinstance(n_reasons, bool) or not isinstance(n_reasons, (int, np.integer))
            or n_reasons < 0
        ):
            raise ConfigError(f"n_reasons must be a non-negative int or None; got {n_reasons!r}")
        user_ids = np.asarray(users).reshape(-1)
        item_ids = np.asarray(items).reshape(-1)
        if len(user_ids) != len(item_ids):
            raise DataError(
                f"length mismatch: {len(user_ids)} users but {len(item_ids)} items in explain"
            )
        u = self._map(self.users_, user_ids, "user", "error")
        i = self._map(self.items_, item_ids, "item", "error")
        if labels is None:
            labels = self._stored_labels()
        out = []
        for j in range(len(u)):
            score, reasons = self._explain(int(u[j]), int(i[j]))
            reasons = sorted(reasons, key=lambda r: -abs(r.contribution))
            if n_reasons is None:
                shown = reasons
            else:
                # reasons that name an item, a feature or a factor first; bias terms (a global
                # mean and the offsets that cancel it can outweigh everything) fill what is left
                named = [r for r in reasons if r.kind != "bias"]
                keep = {id(r) for r in (named + [r for r in reasons if r.kind == "bias"])
                        [:n_reasons]}
                shown = [r for r in reasons if id(r) in keep]
            shown = [_with_label(r, labels) for r in shown]
            additive = type(self).explain_is_additive
            remainder = (
                float(score) - float(sum(r.contribution for r in shown)) if additive
                else float("nan")
            )
            item = _plain(item_ids[j])
            out.append(Explanation(
                user=_plain(user_ids[j]), item=item, score=float(score), reasons=tuple(shown),
                additive=additive, remainder=remainder, method=type(self).explain_method,
                label=label_of(labels, item) if labels is not None else "",
            ))
        return Explanations(tuple(out))

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """Similarity rows ``(len(item_idx), n_items)`` of known items."""
        raise ConfigError(f"{type(self).__name__} has no item representation to compare")

    def _user_similarities(self, user_idx: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """Similarity rows ``(len(user_idx), n_users)`` of known users."""
        raise ConfigError(f"{type(self).__name__} has no user representation to compare")

    @classmethod
    def has_similar_items(cls) -> bool:
        """Whether the model can answer :meth:`similar_items`."""
        return cls._item_similarities is not Recommender._item_similarities

    @classmethod
    def has_similar_users(cls) -> bool:
        """Whether the model can answer :meth:`similar_users`."""
        return cls._user_similarities is not Recommender._user_similarities

    def similar_items(
        self, items: Any, k: int = 10, *, unknown: UnknownPolicy = "fallback"
    ) -> SimilarItems:
        """The ``k`` items most similar to each of ``items`` (the query itself left out).

        Unknown query items follow ``unknown``: ``"fallback"`` lists the most popular items,
        ``"empty"`` gives an empty (padded) row, ``"error"`` raises
        :class:`~chuchun.UnknownIdError`. Only positive similarities are listed.
        """
        self._check_fitted()
        return self._similar(self.items_, items, k, unknown, "item", self._item_similarities)

    def similar_users(
        self, users: Any, k: int = 10, *, unknown: UnknownPolicy = "fallback"
    ) -> SimilarItems:
        """The ``k`` users most similar to each of ``users`` (``item_ids`` holds user ids).

        Unknown query users follow ``unknown`` as in :meth:`similar_items` (``"fallback"``
        gives an empty row: there is no popularity order of users).
        """
        self._check_fitted()
        return self._similar(self.users_, users, k, unknown, "user", self._user_similarities)

    def _similar(
        self, vocab: Vocabulary, ids: Any, k: int, unknown: str, what: str,
        rows_of: Callable[[np.ndarray], np.ndarray | sp.csr_matrix],
    ) -> SimilarItems:
        _check_k(k)
        query = np.asarray(ids).reshape(-1)
        q = self._map(vocab, query, what, unknown)
        n = len(vocab)
        k_eff = min(k, n)
        idx = np.full((len(q), k), -1, dtype=np.int32)
        vals = np.full((len(q), k), np.nan, dtype=np.float32)
        known = np.flatnonzero(q >= 0)
        step = max(1, min(4096, _SCORE_BUDGET // max(1, n)))
        for c in range(0, len(known), step):
            rows = known[c : c + step]
            sims = rows_of(q[rows])
            dense = sims.toarray() if sp.issparse(sims) else np.asarray(sims)
            scores = np.array(dense, dtype=np.float32, copy=True)
            scores[scores <= 0] = -np.inf
            scores[np.arange(len(rows)), q[rows]] = -np.inf
            idx[rows, :k_eff], vals[rows, :k_eff] = _top_k(scores, k_eff)
        cold = np.flatnonzero(q < 0)
        if len(cold) and unknown == "fallback" and what == "item":
            top_i, top_v = _top_k(self.item_popularity_[None, :].astype(np.float32), k_eff)
            idx[cold, :k_eff] = top_i[0]
            vals[cold, :k_eff] = np.nan
        vals = np.where(idx >= 0, vals, np.nan).astype(np.float32)
        if (idx < 0).any():
            out = np.empty(idx.shape, dtype=object)
            ok = idx >= 0
            out[ok] = vocab.ids[idx[ok]]
        else:
            out = vocab.ids[idx]
        return SimilarItems(query_ids=query, item_ids=out, scores=vals, item_idx=idx)

    # -- artifacts ----------------------------------------------------------------------------
    def save(self, path: str, *, format: Literal["dir", "zip"] | None = None) -> None:
        """Save the fitted model as a safe artifact (see :func:`chuchun.io.save_model`)."""
        from chuchun.io import save_model

        save_model(self, path, format=format)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _with_label(reason: Reason, labels: Labels) -> Reason:
    if labels is None:
        return reason
    if reason.kind == "item" and not reason.label:
        return replace(reason, label=label_of(labels, reason.id))
    if reason.kind == "rule" and "antecedent" in reason.detail:
        names = [label_of(labels, a) for a in reason.detail["antecedent"]]
        head = names[0] if len(names) == 1 else "{" + ", ".join(names) + "}"
        then = label_of(labels, reason.detail["consequent"])
        return replace(reason, label=f"{head} \u2192 {then}")
    if not reason.label and "item" in reason.detail and "item_feature" in reason.detail:
        # a term that names an item by its id feature ("user=15 × item=7153"): show its label
        name = label_of(labels, reason.detail["item"])
        return replace(reason, label=str(reason.id).replace(str(reason.detail["item_feature"]),
                                                            name))
    return reason


def _check_k(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive int; got {k!r}")


def _mask_seen(scores: np.ndarray, seen: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set ``scores[j, item] = -inf`` for each item in row ``rows[j]`` of ``seen``."""
    indptr, indices = seen.indptr, seen.indices
    starts, ends = indptr[rows], indptr[rows + 1]
    counts = (ends - starts).astype(np.int64)
    if counts.sum() == 0:
        return
    r = np.repeat(np.arange(len(rows)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = indices[np.repeat(starts, counts) + offs]
    scores[r, cols] = -np.inf


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest finite scores per row (ties: lower index first);
    fewer finite scores give ``-1`` / ``NaN`` padding."""
    n, m = scores.shape
    if n == 1 and k < m:
        return _top_k_row(scores[0], k)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    if k < m:
        # argpartition picks arbitrary members of a tie at the k-th score; keep the lowest
        # indices among them so the documented tie rule holds for the whole list
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_vals = np.take_along_axis(scores, part, axis=1)
        kth = part_vals.min(axis=1, keepdims=True)
        tied = scores == kth
        split_tie = np.flatnonzero(tied.sum(axis=1) > (part_vals == kth).sum(axis=1))
        if len(split_tie):
            s, t = scores[split_tie], tied[split_tie]
            need = k - (s > kth[split_tie]).sum(axis=1, keepdims=True)
            chosen = (s > kth[split_tie]) | (t & (np.cumsum(t, axis=1) <= need))
            part[split_tie] = np.nonzero(chosen)[1].reshape(len(split_tie), k)
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    part_vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int32)
    vals = np.take_along_axis(part_vals, order, axis=1).astype(np.float32)
    bad = ~np.isfinite(vals)
    idx[bad] = -1
    vals[bad] = np.nan
    return idx, vals


def _top_k_row(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_top_k` of one row (``k`` < the row's length), with the same result: fewer
    passes over the row and less per-call overhead, for single-user requests."""
    nan = np.isnan(s)
    if nan.any():
        s = np.where(nan, -np.inf, s)
    part = np.argpartition(-s, k - 1)[:k]
    part_vals = s[part]
    kth = part_vals.min()
    at_kth = s == kth
    n_kth = int(np.count_nonzero(at_kth))
    if n_kth > int(np.count_nonzero(part_vals == kth)):
        # a tie split at the cutoff: everything above it, then the lowest tied indices
        above = np.flatnonzero(s > kth)
        part = np.concatenate([above, np.flatnonzero(at_kth)[: k - len(above)]])
        part_vals = s[part]
    order = np.lexsort((part, -part_vals))
    idx = part[order].astype(np.int32)
    vals = part_vals[order].astype(np.float32)
    bad = ~np.isfinite(vals)
    idx[bad] = -1
    vals[bad] = np.nan
    return idx[None, :], vals[None, :]
