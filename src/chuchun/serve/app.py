"""The HTTP service: a FastAPI application over a :class:`ModelRegistry`.

Every route calls the public estimator API (``recommend``, ``recommend_for_history``,
``predict``, ``similar_items``, ``explain``, ``get_params``); the service adds id parsing,
labels, error statuses, metrics and logs, never model logic.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import importlib.resources
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import numpy as np
from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from chuchun._exceptions import (
    ArtifactError,
    ChuchunError,
    ConfigError,
    DataError,
    NotFittedError,
    UnknownIdError,
)
from chuchun.serve import schemas as S
from chuchun.serve._fast import ROUTE as FAST_ROUTE
from chuchun.serve._fast import FastRecommend, user_index
from chuchun.serve._registry import ModelRegistry, ServedModel, read_labels
from chuchun.serve.logs import BatchedStreamHandler, flush_access_log
from chuchun.serve.metrics import Metrics

__all__ = ["FastEntry", "ServeConfig", "ServiceApp", "app_from_env", "create_app",
           "limit_native_threads"]

log = logging.getLogger("chuchun.serve")
access_log = logging.getLogger("chuchun.serve.access")

ENV_CONFIG = "CHUCHUN_SERVE_CONFIG"
ENV_TOKEN = "CHUCHUN_ADMIN_TOKEN"


@dataclass
class ServeConfig:
    """What a service process serves and how.

    Attributes
    ----------
    models : dict
        Model name -> artifact path (read-only; requests never name a path).
    labels_path : str, optional
        CSV of item labels (id and label columns), added to labels the artifacts carry.
    index : {"exact", "ann"}
        Top-k search for factor models (``"ann"``: an HNSW index, see :mod:`chuchun.serve.ann`).
    ann_options : dict
        ``M``, ``ef_construction``, ``ef_search`` of the ANN index.
    admin_token_file : str, optional
        File holding the bearer token of the admin routes (else the environment variable
        ``CHUCHUN_ADMIN_TOKEN``; with neither the admin routes are off).
    max_body_bytes : int
        Larger request bodies are refused with 413.
    fast_path : bool
        Answer plain ``GET .../recommend`` requests for known users before routing (see
        :mod:`chuchun.serve._fast`; same answers, a fraction of the CPU).
    serving_view : bool
        Prepare each model's serving view at load (:mod:`chuchun.serve._view`), which the fast
        path answers from with one compiled kernel and a join of prepared JSON bytes.
    freeze_heap : bool
        Once the models are loaded (and after each reload), move every live object to the
        garbage collector's permanent generation (:func:`gc.freeze`), so that its full
        collections no longer walk the models and the framework: shorter pauses in the latency
        tail. ``chuchun serve`` turns it on.
    """

    models: dict[str, str]
    labels_path: str | None = None
    index: str = "exact"
    ann_options: dict[str, Any] = field(default_factory=dict)
    admin_token_file: str | None = None
    max_body_bytes: int = 1 << 20
    fast_path: bool = True
    serving_view: bool = True
    freeze_heap: bool = False

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(ENV_CONFIG)
        if not raw:
            raise ConfigError(f"{ENV_CONFIG} is not set; start the service with `chuchun serve`")
        return cls(**json.loads(raw))

    def admin_token(self) -> str | None:
        if self.admin_token_file:
            try:
                with open(self.admin_token_file, encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read admin token file {self.admin_token_file!r}: "
                    f"{exc.strerror or exc}"
                ) from None
            if not token:
                raise ConfigError(f"admin token file {self.admin_token_file!r} is empty")
            return token
        return os.environ.get(ENV_TOKEN) or None


# -- errors -----------------------------------------------------------------------------------
class ServeError(Exception):
    """An error with its HTTP status and JSON body ``{"error": ..., "detail": ...}``."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def _error(status: int, error: str, detail: Any = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


_HTTP_NAMES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "body_too_large", 415: "unsupported_media_type"}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return _error(exc.status, exc.error, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_body", "the request body is not valid JSON")
        detail = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))}
            for e in errors
        ]
        if any(e["type"] in ("model_attributes_type", "dict_type") and e["loc"] == ["body"]
               for e in detail):
            return _error(400, "malformed_body", "the request body must be a JSON object")
        return _error(422, "invalid_parameter", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _HTTP_NAMES.get(exc.status_code, "http_error")
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path}"
        if exc.status_code == 400 and "parsing the body" in str(detail):
            name, detail = "malformed_body", "the request body could not be read"
        return _error(exc.status_code, name, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "an internal error; the service log has details")


def _model_errors(exc: Exception) -> ServeError:
    """Map the library's exceptions to statuses: unknown ids 404, bad values 422."""
    text = " ".join(str(exc).split())
    if isinstance(exc, UnknownIdError):
        return ServeError(404, "unknown_id", text)
    if isinstance(exc, (ConfigError, DataError, NotFittedError)):
        return ServeError(422, "invalid_request", text)
    raise exc


# -- ASGI middleware: body limit, metrics and access log ------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _observe(metrics: Metrics, scope: Scope, start: float, status: int, template: str) -> None:
    """Count and time a request; log its access line."""
    elapsed = time.perf_counter() - start
    metrics.observe(scope["method"], template, status, elapsed)
    if access_log.isEnabledFor(logging.INFO):
        line = _access_line(scope, template, status, elapsed)
        handlers = access_log.handlers
        if (len(handlers) == 1 and isinstance(handlers[0], BatchedStreamHandler)
                and handlers[0].plain and not handlers[0].filters and not access_log.filters):
            handlers[0].queue_line(line)  # the service's own handler: no LogRecord needed
        else:
            access_log.info("%s", line)


def _json_text(value: Any) -> str:
    return "null" if value is None else _encode_string(str(value))


def _access_line(scope: Scope, template: str, status: int, elapsed: float) -> str:
    """The request's access record as one JSON object (``json.dumps`` of the same dict gives
    the same text)."""
    client = scope.get("client") or ("", 0)
    model = (scope.get("path_params") or {}).get("name")
    return (f'{{"ts": {round(time.time(), 3)!r}, "method": {_json_text(scope.get("method"))}, '
            f'"path": {_json_text(scope.get("path"))}, "route": {_json_text(template)}, '
            f'"status": {int(status)}, "ms": {round(elapsed * 1000, 3)!r}, '
            f'"model": {_json_text(model)}, '
            f'"client": {_encode_string(f"{client[0]}:{client[1]}")}, "pid": {_PID}}}')


_encode_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_PID = os.getpid()


def _new_pid() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_new_pid)
_INTERNAL_ERROR = (500, "internal_error", "an internal error; the service log has details")


class FastEntry:
    """The fast path in front of the whole application (see :class:`ServiceApp`): a plain
    ``GET .../recommend`` it can answer is answered, counted and logged here; anything else is
    left to the application. An unexpected exception gives the same JSON 500 as the routes."""

    def __init__(self, fast: FastRecommend, metrics: Metrics) -> None:
        self.fast = fast
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if scope["method"] != "GET":
            return False
        for key, _ in scope["headers"]:
            if key == b"content-length":  # a body: the limits and the route judge it
                return False
        start = time.perf_counter()
        try:
            answered = await self.fast.handle(scope, send)
        except Exception:
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            if "path_params" not in scope:  # set just before the answer starts
                await _error(*_INTERNAL_ERROR)(scope, receive, send)
            _observe(self.metrics, scope, start, 500, FAST_ROUTE)
            return True
        if answered:
            _observe(self.metrics, scope, start, 200, FAST_ROUTE)
        return answered


class ServiceApp(FastAPI):
    """The FastAPI application with :class:`FastEntry` in front of its middleware stack: the
    service's busiest request skips FastAPI's and Starlette's per-request machinery."""

    fast_entry: FastEntry | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self.fast_entry
        if entry is not None and scope["type"] == "http" and await entry(scope, receive, send):
            return
        await super().__call__(scope, receive, send)  # type: ignore[arg-type]


class ObserveMiddleware:
    """Refuses bodies over the limit (413), counts and times every request, logs one JSON line
    per request."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int,
                 fast: FastRecommend | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = max_body_bytes
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        started = [False]
        fast_route = None

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                started[0] = True
            await send(message)

        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = False
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                too_big = False
        seen = [0]

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        try:
            if too_big:
                resp = _error(413, "body_too_large",
                              f"request body larger than {self.limit} bytes")
                await resp(scope, receive, send_wrapper)
            elif (self.fast is not None and scope.get("method") == "GET"
                  and await self.fast.handle(scope, send_wrapper)):
                fast_route = FAST_ROUTE  # a GET with a body FastEntry left here
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge:
            if not started[0]:
                resp = _error(413, "body_too_large",
                              f"request body larger than {self.limit} bytes")
                await resp(scope, receive, send_wrapper)
        finally:
            template = fast_route or getattr(scope.get("route"), "path", None) or "unmatched"
            _observe(self.metrics, scope, start, status[0], template)


# -- the routes' work -------------------------------------------------------------------------
def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _score(v: Any) -> float | None:
    f = float(v)
    return f if np.isfinite(f) else None


class _LabelMap(dict[str, str]):
    """Labels keyed by the id's text, looked up with ids of any type."""

    def __getitem__(self, key: Any) -> str:
        return super().__getitem__(str(_plain(key)))


class Service:
    """The operations behind the routes, on one registry."""

    def __init__(self, registry: ModelRegistry, *, freeze_heap: bool = False) -> None:
        self.registry = registry
        self.freeze_heap = freeze_heap

    def served(self, name: str) -> ServedModel:
        sm = self.registry.get(name)
        if sm is None:
            raise ServeError(404, "unknown_model",
                             f"no model named {name!r}; models are {self.registry.names()}")
        return sm

    @staticmethod
    def _labels(sm: ServedModel) -> _LabelMap | None:
        return _LabelMap(sm.labels) if sm.labels else None

    def _items(self, sm: ServedModel, item_ids: Any, scores: Any, idx: Any,
               k: int, drop: set[int]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for item, score, i in zip(item_ids, scores, idx, strict=True):
            if i < 0 or int(i) in drop:
                continue
            out.append({"rank": len(out) + 1, "item": _plain(item), "label": sm.label(item),
                        "score": _score(score)})
            if len(out) == k:
                break
        return out

    def _drop(self, sm: ServedModel, exclude: list[Any] | None) -> set[int]:
        if not exclude:
            return set()
        idx = sm.model.items_.index(np.asarray(exclude))
        return {int(i) for i in idx if i >= 0}

    def _rows(self, sm: ServedModel, users: Any, k: int, exclude_seen: bool,
              candidates: list[Any] | None, unknown: str,
              drop: set[int]) -> list[tuple[Any, Any, Any]]:
        """(item ids, scores, item indices) per user: ``k + len(drop)`` of them, best first."""
        model = sm.model
        if sm.index is not None and candidates is None:
            return self._recommend_ann(sm, users, k, exclude_seen, unknown, drop)
        recs = model.recommend(
            np.asarray(users), k=min(k + len(drop), len(model.items_)),
            exclude_seen=exclude_seen, candidates=candidates,
            unknown=unknown,  # type: ignore[arg-type]
        )
        return list(zip(recs.item_ids, recs.scores, recs.item_idx, strict=True))

    def recommend(self, name: str, req: S.RecommendRequest) -> dict[str, Any]:
        sm = self.served(name)
        model = sm.model
        drop = self._drop(sm, req.exclude)
        users = list(req.users)
        u_idx = [user_index(sm, str(user)) if isinstance(user, str)
                 else int(model.users_.index([user])[0]) for user in users]
        # every user known: the model gets its own ids (mapped by a binary search, not the
        # text-to-number conversion again); else the request's, so errors name them as sent
        query_users: Any = (model.users_.ids[np.asarray(u_idx, dtype=np.int64)]
                            if min(u_idx, default=-1) >= 0 else users)
        try:
            rows = self._rows(sm, query_users, req.k, req.exclude_seen, req.candidates,
                              req.unknown, drop)
            results = []
            for user, u, (item_ids, scores, idx) in zip(users, u_idx, rows, strict=True):
                uid, known = (model.users_.to_python(u), True) if u >= 0 else (user, False)
                items = self._items(sm, item_ids, scores, idx, req.k, drop)
                if req.explain and known and items:
                    exps = model.explain([uid] * len(items), [x["item"] for x in items],
                                         labels=self._labels(sm), n_reasons=req.n_reasons)
                    for x, e in zip(items, exps.to_records(), strict=True):
                        x["explanation"] = _json_safe(e)
                results.append({"user": uid, "known": known, "items": items})
        except ChuchunError as exc:
            raise _model_errors(exc) from None
        return {"model": name, "version": sm.version, "results": results}

    def _recommend_ann(self, sm: ServedModel, users: Any, k: int, exclude_seen: bool,
                       unknown: str, drop: set[int]) -> list[tuple[Any, Any, Any]]:
        model, index = sm.model, sm.index
        u_idx = model.users_.index(np.asarray(users))
        rows: list[tuple[Any, Any, Any]] = []
        dropped = np.fromiter(drop, dtype=np.int64, count=len(drop))
        for user, u in zip(users, u_idx, strict=True):
            n_seen = int(model.seen_.indptr[u + 1] - model.seen_.indptr[u]) if u >= 0 else 0
            if u < 0 or 2 * (k + len(drop) + n_seen) > len(model.items_) // 4:
                # unknown users, and lists that reach deep into the catalogue: exact search
                recs = model.recommend([user], k=min(k + len(drop), len(model.items_)),
                                       exclude_seen=exclude_seen,
                                       unknown=unknown)  # type: ignore[arg-type]
                rows.append((recs.item_ids[0], recs.scores[0], recs.item_idx[0]))
                continue
            excl = dropped
            if exclude_seen:
                seen = model.seen_
                excl = np.union1d(excl, seen.indices[seen.indptr[u]:seen.indptr[u + 1]])
            idx, scores = index.recommend(int(u), k, exclude=excl)
            rows.append((model.items_.ids[idx], scores, idx))
        return rows

    def recommend_for_history(self, name: str, req: S.HistoryRequest) -> dict[str, Any]:
        sm = self.served(name)
        model = sm.model
        drop = self._drop(sm, req.exclude)
        known = model.items_.index(np.asarray(req.items)) if req.items else np.empty(0)
        ignored = [_plain(x) for x, i in zip(req.items, known, strict=True) if i < 0]
        try:
            recs = model.recommend_for_history(
                [list(req.items)], k=min(req.k + len(drop), len(model.items_)),
                ratings=None if req.ratings is None else [list(req.ratings)],
                exclude_seen=req.exclude_seen, candidates=req.candidates,
            )
        except ChuchunError as exc:
            raise _model_errors(exc) from None
        items = self._items(sm, recs.item_ids[0], recs.scores[0], recs.item_idx[0], req.k, drop)
        return {"model": name, "version": sm.version,
                "results": [{"user": None, "known": False, "items": items}], "ignored": ignored}

    def similar(self, name: str, item: str, k: int, unknown: str) -> dict[str, Any]:
        sm = self.served(name)
        try:
            res = sm.model.similar_items([item], k, unknown=unknown)  # type: ignore[arg-type]
        except ChuchunError as exc:
            raise _model_errors(exc) from None
        i = int(sm.model.items_.index([item])[0])
        query = sm.model.items_.to_python(i) if i >= 0 else item
        items = self._items(sm, res.item_ids[0], res.scores[0], res.item_idx[0], k, set())
        return {"model": name, "version": sm.version, "item": query,
                "label": sm.label(query) if i >= 0 else "", "known": i >= 0, "items": items}

    def predict(self, name: str, req: S.PredictRequest) -> dict[str, Any]:
        sm = self.served(name)
        if len(req.users) != len(req.items):
            raise ServeError(422, "invalid_request",
                             f"users and items must have the same length; got "
                             f"{len(req.users)} users and {len(req.items)} items")
        try:
            est = sm.model.predict(np.asarray(req.users), np.asarray(req.items),
                                   unknown=req.unknown)
        except ChuchunError as exc:
            raise _model_errors(exc) from None
        preds = [{"user": u, "item": i, "score": _score(s)}
                 for u, i, s in zip(req.users, req.items, est, strict=True)]
        return {"model": name, "version": sm.version, "predictions": preds}

    def explain(self, name: str, user: str, item: str, n_reasons: int) -> dict[str, Any]:
        sm = self.served(name)
        try:
            exps = sm.model.explain([user], [item], labels=self._labels(sm),
                                    n_reasons=n_reasons)
        except ChuchunError as exc:
            raise _model_errors(exc) from None
        return {"model": name, "version": sm.version,
                "explanation": _json_safe(exps.to_records()[0])}

    def reload(self, names: list[str]) -> tuple[int, dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for n in names:
            try:
                sm = self.registry.reload(n)
                results.append({"name": n, "ok": True, "version": sm.version, "error": None})
            except (ArtifactError, ConfigError) as exc:
                old = self.registry.get(n)
                log.warning("reload of %r failed, still serving version %s: %s", n,
                            old.version if old else None, exc)
                results.append({"name": n, "ok": False,
                                "version": old.version if old else None,
                                "error": " ".join(str(exc).split())})
        if self.freeze_heap:
            freeze_heap()
        status = 200 if all(r["ok"] for r in results) else 409
        return status, {"results": results}


def _json_safe(value: Any) -> Any:
    """NaN and infinities as ``null``; NumPy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    value = _plain(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# -- the application --------------------------------------------------------------------------
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": S.ErrorResponse, "description": text}
    for code, text in ((400, "Malformed body"), (404, "Unknown model or id"),
                       (413, "Body too large"), (422, "Invalid parameter"))
}

UserQ = Annotated[str, Query(min_length=1, max_length=200, description="External user id.")]
ItemQ = Annotated[str, Query(min_length=1, max_length=200, description="External item id.")]
KQ = Annotated[int, Query(ge=1, le=S.MAX_K, description="List length.")]
ListQ = Annotated[list[str] | None, Query(max_length=S.MAX_LIST)]


def create_app(config: ServeConfig, registry: ModelRegistry | None = None) -> FastAPI:
    """The service's ASGI application; loads every model before returning."""
    from chuchun import __version__

    if registry is None:
        labels = read_labels(config.labels_path) if config.labels_path else None
        registry = ModelRegistry(config.models, labels=labels, index=config.index,
                                 serving_views=config.serving_view,
                                 ann_options=config.ann_options)
        registry.load_all()
    token = config.admin_token()
    service = Service(registry, freeze_heap=config.freeze_heap)
    metrics = Metrics()
    state = {"stopping": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def on_hup() -> None:
            log.info("SIGHUP: reloading %s", registry.names())
            fut = loop.run_in_executor(None, service.reload, list(registry.paths))
            fut.add_done_callback(lambda f: log.info("SIGHUP reload: %s", f.result()[1]))

        try:
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
        if config.freeze_heap:
            freeze_heap()
        yield
        state["stopping"] = True
        log.info("shutting down")
        flush_access_log()

    app = ServiceApp(
        title="chuchun", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None,  # their pages load assets from a CDN; the service is offline
        description="Recommendations, explanations and similar items from saved chuchun models.",
        responses=_ERRORS,
    )
    fast = FastRecommend(service) if config.fast_path else None
    app.add_middleware(ObserveMiddleware, metrics=metrics,  # type: ignore[arg-type]
                       max_body_bytes=config.max_body_bytes, fast=fast)
    app.fast_entry = FastEntry(fast, metrics) if fast is not None else None
    _install_error_handlers(app)
    app.state.service = service

    static = importlib.resources.files("chuchun.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Alive (the process answers)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": S.ErrorResponse}})
    async def readyz() -> Response:
        """Ready: every model is loaded and the process is not shutting down."""
        if state["stopping"] or not registry.ready:
            return _error(503, "not_ready", "shutting down" if state["stopping"]
                          else "models are still loading")
        return JSONResponse({"status": "ready", "models": {
            n: sm.version for n, sm in registry.snapshot().items()}})

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        """Request counts and latency histograms per route and status; model versions."""
        versions = {n: (type(sm.model).__name__, sm.version)
                    for n, sm in registry.snapshot().items()}
        return PlainTextResponse(metrics.render(versions),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models", response_model=S.ModelList, tags=["models"])
    def models() -> dict[str, Any]:
        """Every served model's card."""
        return {"models": [sm.card() for sm in registry.snapshot().values()]}

    @app.get("/v1/models/{name}", response_model=S.ModelCard, tags=["models"])
    def model_card(name: str) -> dict[str, Any]:
        """Class, parameters, data fingerprint, users, items, when it was trained."""
        return service.served(name).card()

    @app.get("/v1/models/{name}/items", response_model=S.ItemSearchResponse, tags=["models"])
    def search_items(
        name: str, q: Annotated[str, Query(max_length=200, description="Text to find.")] = "",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        """Items whose label (title) or id contains ``q``, most popular first."""
        sm = service.served(name)
        return {"model": name, "items": sm.search_items(q, limit)}

    @app.get("/v1/models/{name}/recommend", response_model=S.RecommendResponse,
             tags=["recommend"])
    def recommend_one(
        name: str, user: UserQ, k: KQ = 10, exclude_seen: bool = True,
        candidates: ListQ = None, exclude: ListQ = None, explain: bool = False,
        n_reasons: Annotated[int, Query(ge=0, le=100)] = 3,
        unknown: S.UnknownPolicy = "fallback",
    ) -> dict[str, Any]:
        """Top-k items for one user."""
        req = S.RecommendRequest(users=[user], k=k, exclude_seen=exclude_seen,
                                 candidates=list(candidates) if candidates else None,
                                 exclude=list(exclude) if exclude else None, explain=explain,
                                 n_reasons=n_reasons, unknown=unknown)
        return service.recommend(name, req)

    @app.post("/v1/models/{name}/recommend", response_model=S.RecommendResponse,
              tags=["recommend"])
    def recommend_batch(name: str, req: Annotated[S.RecommendRequest, Body()]) -> dict[str, Any]:
        """Top-k items for a batch of users."""
        return service.recommend(name, req)

    @app.post("/v1/models/{name}/recommend-for-history", response_model=S.RecommendResponse,
              tags=["recommend"])
    def recommend_history(name: str, req: Annotated[S.HistoryRequest, Body()]) -> dict[str, Any]:
        """Top-k items for a new user from their items (and ratings), by fold-in."""
        return service.recommend_for_history(name, req)

    @app.get("/v1/models/{name}/similar-items", response_model=S.SimilarResponse,
             tags=["recommend"])
    def similar_items(name: str, item: ItemQ, k: KQ = 10,
                      unknown: S.UnknownPolicy = "fallback") -> dict[str, Any]:
        """The items most similar to one item (the item itself left out)."""
        return service.similar(name, item, k, unknown)

    @app.post("/v1/models/{name}/predict", response_model=S.PredictResponse,
              tags=["recommend"])
    def predict(name: str, req: Annotated[S.PredictRequest, Body()]) -> dict[str, Any]:
        """Scores (or predicted ratings) of (user, item) pairs."""
        return service.predict(name, req)

    @app.get("/v1/models/{name}/explain", response_model=S.ExplainResponse,
             tags=["recommend"])
    def explain(name: str, user: UserQ, item: ItemQ,
                n_reasons: Annotated[int, Query(ge=0, le=100)] = 5) -> dict[str, Any]:
        """Why an item is scored as it is for a user: the reasons, with labels."""
        return service.explain(name, user, item, n_reasons)

    @app.post("/v1/admin/reload", response_model=S.ReloadResponse, tags=["admin"],
              responses={401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse},
                         409: {"model": S.ReloadResponse}})
    async def reload(request: Request,
                     req: Annotated[S.ReloadRequest | None, Body()] = None) -> Response:
        """Load a model's artifact again and swap it in atomically (bearer token required).

        Requests in flight finish on the old model; when the new artifact cannot be loaded the
        old one keeps serving and the reply says why (409).
        """
        if token is None:
            raise ServeError(403, "admin_disabled",
                             f"admin routes are off: set {ENV_TOKEN} or --admin-token-file")
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), token):
            return _error(401, "unauthorized", "a valid bearer token is required",
                          headers={"WWW-Authenticate": "Bearer"})
        names = [req.name] if req is not None and req.name is not None else list(registry.paths)
        for n in names:
            if n not in registry.paths:
                raise ServeError(404, "unknown_model",
                                 f"no model named {n!r}; models are {sorted(registry.paths)}")
        status, body = await run_in_threadpool(service.reload, names)
        return JSONResponse(body, status_code=status)

    return app


def freeze_heap() -> None:
    """Collect garbage, then move the live objects to the permanent generation (gc.freeze):
    long-lived state (models, the application) is no longer walked by full collections."""
    gc.collect()
    gc.freeze()


def limit_native_threads(n: int = 1) -> None:
    """One BLAS thread per request thread: the service answers many small requests at once,
    and a multi-threaded BLAS under each of them oversubscribes the cores (spinning threads
    turn milliseconds into seconds on a busy machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without threadpoolctl the BLAS keeps its own setting
        return
    threadpool_limits(limits=n)


def app_from_env() -> FastAPI:
    """Application factory for worker processes (``--workers N``): config from the environment."""
    from chuchun.serve.logs import configure_logging

    limit_native_threads()
    configure_logging(os.environ.get("CHUCHUN_SERVE_LOG_LEVEL", "info"),
                      access=os.environ.get("CHUCHUN_SERVE_ACCESS_LOG", "1") == "1")
    app = create_app(ServeConfig.from_env())
    # this worker's slot among the connection counts, claimed once it can serve
    from chuchun.serve._balance import worker_balance

    worker_balance()
    return app
