"""The serving API: FastAPI app factory, routes, security, error handling and observability."""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from importlib.resources import files
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, fastpath, metrics
from .config import ApiKey, ApiSettings
from .logs import ACCESS_LOGGER, request_id_var
from .model_store import ModelLoadError, ModelStore
from .registry import NotFoundError, Registry, RegistryUnavailableError, first_line
from .validation import (
    InputLimits,
    InvalidInputError,
    MalformedBodyError,
    PredictRequest,
    parse_request,
    request_schema,
    to_frame,
)

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(ACCESS_LOGGER)

API_KEY_HEADER = "X-API-Key"
# A prediction body up to this size is decoded on the event loop (orjson: ~50 us for 16 KiB);
# a bigger one in a worker thread, one at a time per worker.
INLINE_DECODE_BYTES = 16 * 1024
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Per request, a dict the API-key check writes the accepted key's name into ("api_key"), for the
# access log and the request counter, and /predict the path that scored it ("scoring": "fast" or
# "general", see fastpath.py). A mutable holder, so what the dependency and the route set is seen
# by the middleware whatever context they ran in.
request_auth_var: ContextVar[dict[str, str] | None] = ContextVar("request_auth", default=None)


class PredictionError(Exception):
    """The model raised while scoring input that passed validation."""


class PredictResponse(BaseModel):
    predictions: list[Any]
    model_name: str
    model_version: str


class ErrorResponse(BaseModel):
    detail: str
    request_id: str | None = None


class ValidationErrorOut(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidRequestResponse(BaseModel):
    """422: the body is not a prediction request (``detail`` lists the errors, as FastAPI does),
    or it does not fit the model or the caps (``detail`` says why)."""

    detail: str | list[ValidationErrorOut]
    request_id: str | None = None


class BodyTooLargeError(Exception):
    """The request body is over the API's cap (OCI_MLOPS_MAX_BODY_BYTES)."""


class VersionOut(BaseModel):
    version: str
    aliases: list[str]
    status: str
    run_id: str | None
    source: str
    description: str
    creation_timestamp: int
    last_updated_timestamp: int
    tags: dict[str, str]


class ModelOut(BaseModel):
    name: str
    description: str
    aliases: dict[str, str] = Field(description="alias -> version")
    tags: dict[str, str]
    creation_timestamp: int
    last_updated_timestamp: int
    versions: list[VersionOut]


class ModelsOut(BaseModel):
    models: list[ModelOut]


class ObservabilityMiddleware:
    """Request id, Prometheus request metrics by route template, a JSON access log line, and the
    last-resort exception handler: an unexpected error is logged with its traceback and answered
    with a JSON 500 that carries the request id (never the traceback).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        inbound = dict(scope["headers"]).get(REQUEST_ID_HEADER.lower().encode(), b"").decode()
        request_id = inbound if _REQUEST_ID_RE.match(inbound) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        auth: dict[str, str] = {}
        auth_token = request_auth_var.set(auth)
        status = 500
        started_response = False
        logged = False

        def log_access() -> None:
            # Once per request, and BEFORE the response's last body message goes out: a client
            # that has the whole response finds its access log line and its metrics already there.
            nonlocal logged
            if logged:
                return
            logged = True
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            labels = {"method": scope["method"], "route": route, "status": str(status)}
            key_name = auth.get("api_key")
            metrics.HTTP_REQUESTS.labels(**labels, api_key=key_name or "").inc()
            metrics.HTTP_LATENCY.labels(**labels).observe(elapsed)
            client = scope.get("client")
            access_logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": client[0] if client else None,
                    "api_key": key_name,
                    **({"scoring": auth["scoring"]} if "scoring" in auth else {}),
                },
            )

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                log_access()
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            logger.exception("unhandled error")
            if started_response:
                raise
            await JSONResponse(
                {"detail": "internal server error; see the server log", "request_id": request_id},
                status_code=500,
            )(scope, receive, send_with_request_id)
        finally:
            # A response that never finished (client gone, error mid-body) is logged here.
            log_access()
            request_auth_var.reset(auth_token)
            request_id_var.reset(token)


API_KEY_SCHEME = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


class ApiKeyChecker:
    """A dependency that accepts a request only with one of the keys in ``X-API-Key``.

    The accepted key's name (never the key) goes to the access log and the request counter.
    """

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = tuple((key.name, key.key.encode()) for key in keys)

    async def __call__(self, supplied: Annotated[str | None, Security(API_KEY_SCHEME)]) -> str:
        candidate = (supplied or "").encode()
        matched: str | None = None
        for name, key in self._keys:  # compare with every key: the time does not tell which one
            if hmac.compare_digest(candidate, key):
                matched = name
        if matched is None:
            raise HTTPException(
                status_code=401,
                detail=f"missing or invalid API key (send it in the {API_KEY_HEADER} header)",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        auth = request_auth_var.get()
        if auth is not None:
            auth["api_key"] = matched
        return matched


def create_app(settings: ApiSettings) -> FastAPI:
    fastpath.quiet_feature_names_warning()
    registry = Registry(settings.mlflow.tracking_uri)
    store = ModelStore(
        registry,
        stage_aliases=dict(settings.stage_aliases),
        refresh_seconds=settings.alias_refresh_seconds,
        download_root=settings.download_dir,
    )
    index_html = files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
    probe_url = f"{settings.mlflow.tracking_uri}/api/2.0/mlflow/registered-models/search"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the readiness probe's own client: a short timeout and no retries, unlike MLflow's client
        async with httpx.AsyncClient(
            timeout=settings.mlflow.timeout_seconds, auth=settings.mlflow.basic_auth
        ) as probe:
            app.state.mlflow_probe = probe
            await store.start(settings.preload_models)
            _freeze_startup_objects()
            try:
                yield
            finally:
                await store.close()

    app = FastAPI(
        title="OCI MLOps model serving API",
        version=__version__,
        # Behind a reverse proxy at e.g. /api: requests match with or without the prefix (the
        # proxy may strip it or not), and /docs and the OpenAPI "servers" carry it.
        root_path=settings.root_path,
        lifespan=lifespan,
        responses={500: {"model": ErrorResponse}},
    )
    app.add_middleware(ObservabilityMiddleware)
    _add_exception_handlers(app)
    authorized = [Depends(ApiKeyChecker(settings.api_keys))]
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse} for code in (401, 404, 503)
    }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(index_html)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/ready",
        responses={
            200: {"description": 'ready, or "degraded" (serving from the cache) with the reasons'},
            503: {"description": "not ready, with the reasons"},
        },
    )
    async def ready(request: Request) -> JSONResponse:
        """Readiness: every preload model is loaded, and MLflow answers with our credentials or
        some model is cached. MLflow down with the models cached is 200 "degraded": this
        process still serves them, and a load balancer must keep sending it traffic."""
        mlflow_problem = None
        try:
            probe: httpx.AsyncClient = request.app.state.mlflow_probe
            answer = await probe.get(probe_url, params={"max_results": 1})
            if answer.status_code != 200:
                mlflow_problem = f"MLflow answered HTTP {answer.status_code} to a registry search"
        except httpx.HTTPError as exc:
            mlflow_problem = f"MLflow unreachable: {type(exc).__name__}: {exc}"
        missing = [f"model {ref}: {why}" for ref, why in store.preload_errors().items()]
        reasons = [mlflow_problem] if mlflow_problem else []
        reasons += missing
        reasons += [
            f"aliases of model {name} not refreshed, serving the cached versions: {why}"
            for name, why in store.refresh_problems().items()
        ]
        if missing or (mlflow_problem and not store.cached_versions()):
            return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
        models = store.resolved_preloads()
        if reasons:
            return JSONResponse({"status": "degraded", "reasons": reasons, "models": models})
        return JSONResponse({"status": "ready", "models": models})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    def require_served(name: str) -> None:
        """A name the operator did not list is refused before any MLflow call: a registered
        model's loader runs in this process when it loads, and any MLflow user may register one.
        """
        if name not in settings.served_models:
            raise NotFoundError(f"registered model {name!r} not found among the models served here")

    @app.get("/models", dependencies=authorized, responses=errors)
    async def list_models() -> ModelsOut:
        """The served registered models (OCI_MLOPS_SERVED_MODELS) that the service's MLflow user
        can read, with versions and aliases."""
        models = await run_in_threadpool(registry.list_models)
        return ModelsOut(
            models=[
                ModelOut.model_validate(m.to_dict())
                for m in models
                if m.name in settings.served_models
            ]
        )

    @app.get("/models/{name}", dependencies=authorized, responses=errors)
    async def get_model(name: str) -> ModelOut:
        require_served(name)
        model = await run_in_threadpool(registry.get_model, name)
        return ModelOut.model_validate(model.to_dict())

    limits = InputLimits(max_rows=settings.max_rows, max_columns=settings.max_columns)
    # Decoding a body holds the GIL whichever thread does it: one body at a time per worker
    # bounds the event loop's wait (and the memory of bodies being decoded) to one body's worth.
    decoding = asyncio.Lock()

    @app.post(
        "/predict/{name}/{ref}",
        dependencies=authorized,
        response_model=PredictResponse,
        responses={
            **errors,
            413: {"model": ErrorResponse, "description": "the body is over the size cap"},
            422: {"model": InvalidRequestResponse},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request_schema(limits)}},
            }
        },
    )
    async def predict(name: str, ref: str, request: Request) -> Response:
        """Score rows with ``name`` at ``ref``: an alias, a version number or a stage name.

        Only the models listed in OCI_MLOPS_SERVED_MODELS; any other name is a 404, before the
        body is read. The body (a ``PredictRequest``) is read up to the size cap and checked
        against the row and column caps, before the model is looked up."""
        require_served(name)
        body = await _read_body(request, settings.max_body_bytes)
        content_type = request.headers.get("content-type", "")
        # The fast path (fastpath.py) when the body and the model allow it; anything else, and
        # any doubt, goes to the general path below, which answers exactly as it always has.
        decoded = None
        if _is_json(content_type):
            if len(body) <= INLINE_DECODE_BYTES:
                decoded = fastpath.decode(body, limits)
            else:
                async with decoding:
                    decoded = await run_in_threadpool(_decode_fast, body, limits)
        if decoded is None:
            async with decoding:
                parsed = await run_in_threadpool(_parse_body, body, content_type, limits)
        else:
            parsed = None
        loaded = await store.get(name, ref)
        auth = request_auth_var.get() or {}
        key_name = auth.get("api_key", "")
        result: Any = None
        rows = 0
        scored = False
        if decoded is not None and loaded.fast is not None:
            scorer = loaded.fast
            try:
                if scorer.runs_inline(decoded):
                    result = _score_fast(scorer, decoded)
                else:
                    result = await run_in_threadpool(_score_fast, scorer, decoded)
                rows, scored = len(decoded.rows), True
            except fastpath.Fallback:
                pass
        auth["scoring"] = "fast" if scored else "general"
        if not scored:
            if parsed is None:
                assert decoded is not None
                parsed = decoded.to_request()
            frame = await run_in_threadpool(
                to_frame, parsed, loaded.input_schema, settings.max_rows
            )
            try:
                result = await run_in_threadpool(loaded.model.predict, frame)
            except MlflowException as exc:  # the pyfunc layer's own schema enforcement
                raise InvalidInputError(first_line(exc.message)) from exc
            except Exception as exc:
                raise PredictionError(f"{name} version {loaded.version}") from exc
            rows = len(frame)
        metrics.PREDICTION_REQUESTS.labels(
            model=name, version=loaded.version, api_key=key_name
        ).inc()
        metrics.PREDICTED_ROWS.labels(model=name, version=loaded.version).inc(rows)
        return Response(
            fastpath.encode({"model_name": name, "model_version": loaded.version}, result),
            media_type="application/json",
        )

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit`` bytes: from
    its Content-Length before reading any of it, else while it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(_too_large(limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(_too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return (
        f"the request body is over this API's limit of {limit} bytes "
        f"({limit / 2**20:.3g} MiB): send fewer rows per request"
    )


def _freeze_startup_objects() -> None:
    """Move what start-up created (the libraries, the preloaded models: ~260,000 objects with the
    iris model) out of the cyclic garbage collector's reach. A full collection walked all of them
    every few hundred requests, 135 ms each time with the iris model (measured 2026-12-03): the
    p99 latency of small requests. They live as long as the process anyway; reference counting
    still frees whatever of them is released (only reference cycles among them are kept)."""
    gc.collect()
    gc.freeze()


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The garbage collector paused while decoding a body: a large array of arrays otherwise
    triggers collection after collection of the whole heap (measured: 4x slower)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _decode_fast(body: bytes, limits: InputLimits) -> fastpath.Decoded | None:
    """``fastpath.decode`` with the garbage collector paused."""
    with _gc_paused():
        return fastpath.decode(body, limits)


def _score_fast(scorer: fastpath.FastScorer, decoded: fastpath.Decoded) -> Any:
    """The fast path's predictions; ``Fallback`` when the general path must answer, including
    when the estimator raises (the general path then raises, or answers, as it always has)."""
    features = scorer.prepare(decoded)
    try:
        return scorer.predict(features)
    except Exception as exc:
        raise fastpath.Fallback from exc


def _parse_body(body: bytes, content_type: str, limits: InputLimits) -> PredictRequest:
    """``parse_request`` as FastAPI would take a JSON body (its content type must say JSON),
    with the garbage collector paused (``_gc_paused``)."""
    if body and not _is_json(content_type):
        raise RequestValidationError(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": "Input should be a valid dictionary or object to extract fields "
                    "from (send the body as JSON, Content-Type: application/json)",
                }
            ]
        )
    try:
        with _gc_paused():
            return parse_request(body, limits)
    except MalformedBodyError as exc:
        raise RequestValidationError(exc.errors) from None


def _add_exception_handlers(app: FastAPI) -> None:
    def error(status: int, detail: str) -> JSONResponse:
        return JSONResponse(
            {"detail": detail, "request_id": request_id_var.get()}, status_code=status
        )

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return error(404, str(exc))

    async def invalid_input(_: Request, exc: Exception) -> JSONResponse:
        return error(422, str(exc))

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return error(503, str(exc))

    async def too_large(_: Request, exc: Exception) -> JSONResponse:
        return error(413, str(exc))

    async def prediction_failed(_: Request, exc: Exception) -> JSONResponse:
        logger.error("prediction failed: %s", exc, exc_info=exc.__cause__ or exc)
        return error(500, f"the model failed to score the input ({exc}); see the server log")

    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(InvalidInputError, invalid_input)
    app.add_exception_handler(BodyTooLargeError, too_large)
    app.add_exception_handler(RegistryUnavailableError, unavailable)
    app.add_exception_handler(ModelLoadError, unavailable)
    app.add_exception_handler(PredictionError, prediction_failed)


def app_factory() -> FastAPI:
    """Entry for ``uvicorn --factory oci_mlops_app.api:app_factory`` (settings from the env)."""
    logging.captureWarnings(True)  # libraries' warnings become JSON log lines too
    return create_app(ApiSettings.from_env())
