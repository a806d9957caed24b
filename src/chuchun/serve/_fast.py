"""The fast path of ``GET /v1/models/{name}/recommend``: the service's busiest request, answered
before FastAPI's routing.

The general route costs several milliseconds of CPU per request, nearly all of it outside the
model: FastAPI's parameter validation, two hops to a worker thread (the sync endpoint and its
response validation) and the response model's validation and serialisation
(``benchmarks/profile_serve.py`` measures the pieces). This path parses the query string itself,
computes the list with the same :class:`~chuchun.serve.app.Service` code the route uses, and
writes the JSON bytes directly.

For a model with a serving view (:mod:`chuchun.serve._view`, prepared at load) and no
``candidates``, a request is an index lookup, one BLAS product, one compiled pass that finishes
the scores, masks seen and excluded items and keeps the top ``k``
(:func:`chuchun.kernels.serving.rank_top_k`), and a join of prepared JSON bytes. Without a
view (the ANN index, ``candidates``) it computes the list with the same
:class:`~chuchun.serve.app.Service` code the route uses.

It only answers what it can answer exactly as the route would: a served model, a known user,
every parameter present at most once (lists excepted) and spelled in its plainest valid form,
no explanations. Anything else (unknown model or user, a value the route would refuse or that
needs coercion, ``explain=true``, an error from the model) falls through to the FastAPI route,
which gives the answer or the error. ``tests/serve/test_fast.py`` checks that both paths give
the same answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import numpy as np
from starlette.concurrency import run_in_threadpool

from chuchun._exceptions import ChuchunError
from chuchun.serve.schemas import MAX_K, MAX_LIST

if TYPE_CHECKING:
    from chuchun.serve._registry import ServedModel
    from chuchun.serve.app import Service

__all__ = ["INLINE_MAX_ITEMS", "ROUTE", "FastRecommend"]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: the route template the fast path answers (metrics and access logs use it too)
ROUTE = "/v1/models/{name}/recommend"
#: catalogues up to this size are scored on the event loop (tens of microseconds); larger ones
#: (and the ANN index) in a worker thread, so one slow list never stalls the other connections
INLINE_MAX_ITEMS = 100_000

_PREFIX, _SUFFIX = "/v1/models/", "/recommend"
_K = re.compile(r"[1-9][0-9]{0,3}")
_N_REASONS = re.compile(r"0|[1-9][0-9]?|100")
_INT_ID = re.compile(r"-?[0-9]{1,18}")  # within int64, parsed by int() as pandas parses it
_BOOL = {"true": True, "false": False, "1": True, "0": False}
_UNKNOWN = ("fallback", "empty", "error")
_SCALARS = ("user", "k", "exclude_seen", "explain", "n_reasons", "unknown")
_HEADERS = [(b"content-type", b"application/json")]
_NONE = np.empty(0, dtype=np.int32)


@dataclass
class _Query:
    user: str
    k: int
    exclude_seen: bool
    unknown: str
    candidates: list[str] | None
    exclude: list[str] | None


def _pairs(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True)``; without ``%`` or ``+`` nothing needs
    decoding, so a plain split gives the same pairs."""
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    return [(key, value) for key, _, value in (part.partition("=")
                                               for part in text.split("&") if part)]


def parse_query(query_string: bytes) -> _Query | None:
    """The parameters of a recommend request, or None when the route must judge them.

    Starlette decodes query strings with ``parse_qsl(latin-1 text, keep_blank_values=True)``;
    so does this, so both paths see the same values.
    """
    scalars: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for key, value in _pairs(query_string.decode("latin-1")):
        if key in ("candidates", "exclude"):
            lists.setdefault(key, []).append(value)
        elif key in _SCALARS:
            if key in scalars:
                return None
            scalars[key] = value
        # any other key: the route ignores it, so does this
    user = scalars.get("user")
    if user is None or not 1 <= len(user) <= 200:
        return None
    k = scalars.get("k", "10")
    if not _K.fullmatch(k) or int(k) > MAX_K:
        return None
    exclude_seen = _BOOL.get(scalars.get("exclude_seen", "true"))
    explain = _BOOL.get(scalars.get("explain", "false"))
    if exclude_seen is None or explain is None or explain:
        return None
    if not _N_REASONS.fullmatch(scalars.get("n_reasons", "3")):
        return None
    unknown = scalars.get("unknown", "fallback")
    if unknown not in _UNKNOWN:
        return None
    if any(len(v) > MAX_LIST for v in lists.values()):
        return None
    return _Query(user=user, k=int(k), exclude_seen=exclude_seen, unknown=unknown,
                  candidates=lists.get("candidates") or None,
                  exclude=lists.get("exclude") or None)


def user_index(sm: ServedModel, user: str) -> int:
    """The user's row in the model (``-1`` when unknown), found as the route finds it.

    :meth:`Vocabulary.index` maps text to integer ids through ``pandas.to_numeric``; integer
    ids spelled as plain integers are looked up here by a binary search over the sorted ids
    instead (the same match: ``int`` reads ``"007"`` as 7 as ``pandas.to_numeric`` does).
    Anything else goes through :meth:`Vocabulary.index`.
    """
    users = sm.model.users_
    if users.numeric and _INT_ID.fullmatch(user):
        ids = users.ids
        value = int(user)
        pos = int(np.searchsorted(ids, value))
        return pos if pos < len(ids) and int(ids[pos]) == value else -1
    return int(users.index(np.asarray([user]))[0])


class FastRecommend:
    """Answers ``GET /v1/models/{name}/recommend`` for known users without FastAPI; see the
    module docstring for what it leaves to the route."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def match(self, scope: MutableMapping[str, Any]) -> tuple[ServedModel, _Query] | None:
        path: str = scope["path"]
        if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
            return None
        name = path[len(_PREFIX):-len(_SUFFIX)]
        if not name or "/" in name:
            return None
        sm = self.service.registry.get(name)
        if sm is None:
            return None
        query = parse_query(scope.get("query_string", b""))
        if query is None:
            return None
        return sm, query

    def answer(self, sm: ServedModel, query: _Query) -> bytes | None:
        """The JSON body the route would send, or None to leave the request to the route."""
        u = user_index(sm, query.user)
        if u < 0:
            return None  # unknown users: the policy (fallback, empty, error) is the route's
        model = sm.model
        service = self.service
        view = sm.view
        if view is not None and query.candidates is None:
            drop = service._drop(sm, query.exclude)
            exclude = np.fromiter(drop, dtype=np.int32, count=len(drop)) if drop else _NONE
            top = view.top_k(u, query.k, query.exclude_seen, exclude)
            if top is not None:
                return view.body(u, *top)
        try:
            drop = service._drop(sm, query.exclude)
            native = model.users_.ids[u:u + 1]
            (item_ids, scores, idx), = service._rows(
                sm, native, query.k, query.exclude_seen, query.candidates, query.unknown, drop)
            items = service._items(sm, item_ids, scores, idx, query.k, drop)
        except ChuchunError:
            return None
        for x in items:
            x["explanation"] = None
        body = {"model": sm.name, "version": sm.version,
                "results": [{"user": model.users_.to_python(u), "known": True, "items": items}],
                "ignored": []}
        return json.dumps(body, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")

    async def handle(self, scope: MutableMapping[str, Any], send: Send) -> bool:
        """Answer the request when the fast path can (then True), else leave it (False)."""
        if scope.get("method") != "GET":
            return False
        matched = self.match(scope)
        if matched is None:
            return False
        sm, query = matched
        if sm.index is None and len(sm.model.items_) <= INLINE_MAX_ITEMS:
            body = self.answer(sm, query)
        else:
            body = await run_in_threadpool(self.answer, sm, query)
        if body is None:
            return False
        scope["path_params"] = {"name": sm.name}
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return True
