"""A model's serving view: what one known-user ``GET .../recommend`` needs, prepared at load.

Built once per loaded artifact (and again on reload), it holds

- the scoring operands: for factor models the user vectors' source, the item factors (the
  model's own contiguous array), the item term (bias), the user term (intercept + user bias)
  and the rating models' support discount, so that a request's scores are one BLAS product
  finished by a compiled kernel (:func:`chuchun.kernels.serving.rank_top_k`); for any other
  model the model's own ``_score`` of the user, finished by the same kernel with no terms;
- the seen-items CSR (the kernel masks a user's row in the same call);
- every item's JSON fragment ``,"item":ID,"label":LABEL,"score":`` as bytes, and the answer's
  fixed head, so the body is a join of bytes.

A view is only kept when it reproduces the model: at build time the finished scores of a spread
of users must equal ``model._score`` bit for bit (else the factor decomposition is dropped and
the model's own ``_score`` is used), and the top-k must equal ``model.recommend``'s lists.
``tests/serve/test_fast.py`` checks the whole answer, byte for byte, against the general path.
"""

from __future__ import annotations

import array
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from chuchun.kernels.serving import (
    MODE_ITEM,
    MODE_SUPPORT,
    MODE_USER,
    finish_scores,
    rank_top_k,
)
from chuchun.models._base import Recommender, _plain

__all__ = ["ServingView", "build_view"]

log = logging.getLogger(__name__)

_EMPTY = np.empty(0, dtype=np.int32)
_F64_EMPTY = np.empty(0, dtype=np.float64)


def _json(value: Any) -> bytes:
    return json.dumps(_plain(value), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


class ServingView:
    """Prepared operands and JSON fragments of one served model (see the module docstring)."""

    def __init__(self, model: Recommender, name: str, version: int,
                 labels: dict[str, str]) -> None:
        self.model = model
        n_items = len(model.items_)
        self.n_items = n_items
        seen = model.seen_.tocsr()
        self.seen_indptr = np.asarray(seen.indptr, dtype=np.int64)
        self.seen_indices = np.ascontiguousarray(seen.indices, dtype=np.int32)
        self.mode = 0
        self.item_add = np.empty(0, dtype=np.float32)
        self.user_add = np.empty(0, dtype=np.float32)
        self.floor = 0.0
        self.support = _F64_EMPTY
        self._dot: Callable[[int], np.ndarray] = self._model_scores
        self.factored = self._factor_operands(model)
        if self.factored and not self._reproduces(model):
            log.info("%s: factor view differs from _score; serving its _score",
                     type(model).__name__)
            self.mode, self._dot, self.factored = 0, self._model_scores, False
        # JSON fragments: ',"item":ID,"label":LABEL,"score":' per item, in one buffer
        ids = model.items_.ids
        parts = [b',"item":' + _json(i) + b',"label":' + _json(labels.get(str(_plain(i)), ""))
                 + b',"score":' for i in ids]
        self.item_json = b"".join(parts)
        offsets = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        self.item_offsets = array.array("q", offsets.tobytes())  # Python ints when indexed
        self.head = b'{"model":' + _json(name) + b',"version":' + _json(int(version)) + \
            b',"results":[{"user":'
        self.tail = b']}],"ignored":[]}'
        self._user_json: dict[int, bytes] = {}

    # -- scoring --------------------------------------------------------------------------
    def _model_scores(self, u: int) -> np.ndarray:
        # a copy, as the general path takes: the kernel writes into it
        return np.array(self.model._score(np.array([u], dtype=np.int32))[0],
                        dtype=np.float32, copy=True)

    def _factor_operands(self, model: Recommender) -> bool:
        """Decompose the model's ``_score`` into a product and terms, when its family is known.

        The factor models of :mod:`chuchun.models.mf` score ``pu @ Q.T + b_i + (b_u + mu)``
        in float32, then (rating models with ``ranking_damping``) discount in float64; the
        implicit factor models score ``p_u @ Q.T``.
        """
        from chuchun.models import baseline, implicit, mf

        cls: Any = type(model)
        if isinstance(model, mf._FactorModel) and (
            cls._score is mf._FactorModel._score
            and cls._scores_from is mf._FactorModel._scores_from
            and cls._rank_scores in (mf._FactorModel._rank_scores,
                                     baseline._SupportRanked._rank_scores)
        ):
            items = model.item_factors_
            ib, ub = model.item_bias_, model.user_bias_
            if items.dtype != np.float32 or ib.dtype != np.float32 or ub.dtype != np.float32:
                return False
            vectors = model._user_vectors
            qt = items.T
            self._dot = lambda u: (vectors(np.array([u], dtype=np.int32)) @ qt)[0]
            self.item_add = np.ascontiguousarray(ib)
            self.user_add = (ub.astype(np.float32) + float(model.intercept_)).astype(
                np.float32)
            self.mode = MODE_ITEM | MODE_USER
            damping = getattr(model, "ranking_damping", None)
            if (cls._rank_scores is baseline._SupportRanked._rank_scores
                    and damping is not None and float(damping) != 0):
                self.floor = float(model._rating_floor())  # type: ignore[attr-defined]
                self.support = np.ascontiguousarray(
                    model._support(), dtype=np.float64)  # type: ignore[attr-defined]
                self.mode |= MODE_SUPPORT
            return True
        if isinstance(model, implicit._FactorRecommender) and (
            cls._score is implicit._FactorRecommender._score
            and cls._user_scores is implicit._FactorRecommender._user_scores
        ):
            users, qt = model.user_factors_, model.item_factors_.T
            self._dot = lambda u: (users[np.array([u], dtype=np.int32)] @ qt)[0]
            self.mode = 0
            return True
        return False

    def _reproduces(self, model: Recommender, n_check: int = 32) -> bool:
        n_users = len(model.users_)
        for u in np.unique(np.linspace(0, n_users - 1, num=min(n_check, n_users)).astype(int)):
            mine = self.scores(int(u))
            theirs = np.asarray(model._score(np.array([u], dtype=np.int32))[0],
                                dtype=np.float32)
            if mine.tobytes() != theirs.tobytes():
                return False
        return True

    def scores(self, u: int) -> np.ndarray:
        """The finished scores of every item for known user ``u`` (no masking)."""
        dot = np.ascontiguousarray(self._dot(u), dtype=np.float32)
        out = np.empty(self.n_items, dtype=np.float32)
        finish_scores(dot, self.item_add, self._user_term(u), self.floor, self.support,
                      self.mode, out)
        return out

    def _user_term(self, u: int) -> np.float32:
        return self.user_add[u] if self.mode & MODE_USER else np.float32(0)

    def top_k(self, u: int, k: int, exclude_seen: bool,
              exclude: np.ndarray) -> tuple[list[int], list[float]] | None:
        """The ``k`` best items (indices, scores) of known user ``u``, leaving out the items
        the user has seen (when ``exclude_seen``) and ``exclude`` (int32 item indices); None
        when a score is ``+inf`` (the general path's answer is then the one to give)."""
        dot = self._dot(u)
        if dot.dtype != np.float32 or not dot.flags.c_contiguous:
            dot = np.ascontiguousarray(dot, dtype=np.float32)
        seen = (self.seen_indices[self.seen_indptr[u]:self.seen_indptr[u + 1]]
                if exclude_seen else _EMPTY)
        out_idx = np.empty(k, dtype=np.int32)
        out_val = np.empty(k, dtype=np.float32)
        n = rank_top_k(dot, self.item_add, self._user_term(u), self.floor, self.support,
                       self.mode, seen, exclude, k, out_idx, out_val)
        if n < 0:
            return None
        return out_idx[:n].tolist(), out_val[:n].tolist()

    # -- the answer -----------------------------------------------------------------------
    def user_json(self, u: int) -> bytes:
        text = self._user_json.get(u)
        if text is None:
            text = _json(self.model.users_.to_python(u))
            if len(self._user_json) < 1_000_000:
                self._user_json[u] = text
        return text

    def body(self, u: int, idx: list[int], scores: list[float]) -> bytes:
        """The JSON answer of the fast path for user ``u`` and its ranked items."""
        offsets, blob = self.item_offsets, self.item_json
        items = b",".join([
            b'{"rank":%d%s%s,"explanation":null}' % (r, blob[offsets[i]:offsets[i + 1]],
                                                     repr(s).encode())
            for r, (i, s) in enumerate(zip(idx, scores, strict=True), start=1)
        ])
        return b"".join((self.head, self.user_json(u), b',"known":true,"items":[', items,
                         self.tail))


def build_view(model: Recommender, name: str, version: int,
               labels: dict[str, str]) -> ServingView | None:
    """The model's serving view, or None when the model cannot have one (not fitted, no
    dense ``_score``)."""
    if not getattr(model, "is_fitted", False) or len(model.items_) == 0:
        return None
    try:
        view = ServingView(model, name, version, labels)
    except (NotImplementedError, AttributeError, TypeError, ValueError) as exc:
        log.info("no serving view for %s: %s", type(model).__name__, exc)
        return None
    if not _same_lists(view, model):
        log.warning("%s: the serving view's lists differ from recommend's; not used",
                    type(model).__name__)
        return None
    return view


def _same_lists(view: ServingView, model: Recommender, n_check: int = 8) -> bool:
    """The view's top-10 (seen items excluded or not) must be ``recommend``'s for one user,
    bit for bit."""
    n_users = len(model.users_)
    sample = np.unique(np.linspace(0, n_users - 1, num=min(n_check, n_users)).astype(np.int64))
    k = min(10, len(model.items_))
    for exclude_seen in (True, False):
        for u in sample:
            # one user per call, as the route asks (BLAS may round a batch's products
            # differently from one user's)
            recs = model.recommend(model.users_.ids[u:u + 1], k=k, exclude_seen=exclude_seen)
            top = view.top_k(int(u), k, exclude_seen, _EMPTY)
            if top is None:
                continue  # answered the general way
            idx, scores = top
            ok = recs.item_idx[0] >= 0
            if (idx != recs.item_idx[0][ok].tolist()
                    or np.asarray(scores, np.float32).tobytes()
                    != recs.scores[0][ok].astype(np.float32).tobytes()):
                return False
    return True
