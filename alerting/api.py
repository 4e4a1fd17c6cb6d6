"""The HTTP API: health, readiness, Prometheus metrics, channels and alerts.

Everything the handlers need comes from one :class:`ApiContext` given to :func:`create_app`,
so there is no module-level state and tests build an app per case. Errors share one shape,
``{"error": {"code": "not_found", "message": "..."}}``, whatever raised them.

    app = create_app(ApiContext(config=config, state=state, metrics=metrics, readiness=ready))
    await serve(app, "127.0.0.1", 8080, stop)   # uvicorn inside this event loop
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from alerting.models import Alert
from alerting.store import AlertStore, ChannelHealth, ChannelStatus, channel_status
from monitor.config import ChannelConfig, VqmConfig
from monitor.metrics import Metrics
from monitor.state import StateStore

logger = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[dict[str, bool]]]

_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
    500: "internal",
    503: "not_ready",
}


class ModelInfo(BaseModel):
    """A loaded model as /readyz reports it."""

    name: str
    version: str
    providers: list[str] = Field(default_factory=list)


@dataclass
class ApiContext:
    """What the API serves from; built by the process that owns the clients.

    ``readiness`` answers a component map (``{"bus": True, "state": True, "models": False}``);
    without it only the state store is checked. ``models`` lists loaded models; without it
    they are read from the ``vqm_model_info`` metric the inference worker sets. ``lifespan``
    opens and closes clients the API alone owns (none in the one-process mode).
    """

    config: VqmConfig
    state: StateStore
    metrics: Metrics
    readiness: Readiness | None = None
    models: Callable[[], Sequence[ModelInfo]] | None = None
    lifespan: Callable[[], AbstractAsyncContextManager[None]] | None = None


# -- response shapes ---------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessReport(BaseModel):
    status: Literal["ready", "not_ready"]
    components: dict[str, bool]
    models: list[ModelInfo]


class ChannelView(BaseModel):
    id: str
    name: str
    severity: str
    status: ChannelStatus
    up: bool | None = None
    last_segment_at: float | None = Field(default=None, description="Epoch s of newest segment.")
    last_detection_at: float | None = None
    last_event: str | None = Field(default=None, description="Latest stream event kind.")
    active_alerts: list[Alert] = Field(default_factory=list)


class ChannelList(BaseModel):
    channels: list[ChannelView]


class AlertList(BaseModel):
    alerts: list[Alert]


# -- dependencies ------------------------------------------------------------------------
def get_context(request: Request) -> ApiContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[ApiContext, Depends(get_context)]


def get_store(ctx: Ctx) -> AlertStore:
    return AlertStore(ctx.state)


Store = Annotated[AlertStore, Depends(get_store)]


# -- the app -----------------------------------------------------------------------------
def create_app(ctx: ApiContext) -> FastAPI:
    """A FastAPI app serving ``ctx``; one lifespan, no globals."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if ctx.lifespan is not None:
                await stack.enter_async_context(ctx.lifespan())
            logger.debug("api started")
            yield

    app = FastAPI(
        title="vqm",
        summary="Video quality monitor: channel health and alerts.",
        lifespan=lifespan,
        responses={422: {"model": ErrorResponse}},
    )
    app.state.ctx = ctx
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    metrics_app = make_asgi_app(registry=ctx.metrics.registry)
    # The mount serves /metrics/...; the exact route spares scrapers a redirect from /metrics.
    app.add_route("/metrics", _Asgi(metrics_app), include_in_schema=False)  # type: ignore[arg-type]
    app.mount("/metrics", metrics_app)
    app.include_router(_routes())
    return app


class _Asgi:
    """An ASGI app as a route endpoint (Starlette calls class instances as raw ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _routes() -> APIRouter:
    router = APIRouter()
    not_found: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}

    @router.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """The process is alive (it answers); nothing else is checked."""
        return Health()

    @router.get(
        "/readyz",
        response_model=ReadinessReport,
        responses={503: {"model": ReadinessReport}},
        tags=["health"],
    )
    async def readyz(ctx: Ctx) -> JSONResponse:
        """Bus, state and models answer: 200 with the component map, else 503."""
        report = await _readiness(ctx)
        code = 200 if report.status == "ready" else 503
        return JSONResponse(report.model_dump(mode="json"), status_code=code)

    @router.get("/api/channels", response_model=ChannelList, tags=["channels"])
    async def list_channels(ctx: Ctx, store: Store) -> ChannelList:
        """Every configured channel with its status and open alerts."""
        active = await store.active()
        views = [await _channel_view(store, c, active) for c in ctx.config.channels]
        return ChannelList(channels=views)

    @router.get(
        "/api/channels/{channel_id}",
        response_model=ChannelView,
        responses=not_found,
        tags=["channels"],
    )
    async def get_channel(channel_id: str, ctx: Ctx, store: Store) -> ChannelView:
        """One channel; 404 when no configured channel has this id."""
        try:
            channel = ctx.config.channel(channel_id)
        except KeyError:
            raise HTTPException(404, f"no channel {channel_id!r}") from None
        return await _channel_view(store, channel, await store.active(channel_id))

    @router.get("/api/alerts", response_model=AlertList, tags=["alerts"])
    async def list_alerts(
        store: Store,
        state: Annotated[
            Literal["active", "recent", "all"], Query(description="Open, resolved, or both.")
        ] = "active",
        channel: Annotated[str | None, Query(description="Only this channel.")] = None,
        detector: Annotated[str | None, Query(description="Only this detector.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> AlertList:
        """Open alerts newest first, then (``recent``/``all``) the latest resolved ones."""
        alerts: list[Alert] = []
        if state in ("active", "all"):
            alerts += await store.active(channel, detector)
        if state in ("recent", "all"):
            alerts += await store.recent(channel, detector)
        return AlertList(alerts=alerts[:limit])

    return router


async def _readiness(ctx: ApiContext) -> ReadinessReport:
    try:
        if ctx.readiness is not None:
            components = dict(await ctx.readiness())
        else:
            components = {"state": await ctx.state.ready()}
    except Exception:
        logger.exception("readiness check failed")
        components = {"readiness_check": False}
    ready = bool(components) and all(components.values())
    return ReadinessReport(
        status="ready" if ready else "not_ready",
        components=components,
        models=list(ctx.models()) if ctx.models is not None else _models_from(ctx.metrics),
    )


def _models_from(metrics: Metrics) -> list[ModelInfo]:
    """Models as the inference worker announced them in ``vqm_model_info``."""
    found: dict[tuple[str, str], ModelInfo] = {}
    for family in metrics.model_info.collect():
        for sample in family.samples:
            if sample.value != 1:
                continue
            labels = sample.labels
            info = found.setdefault(
                (labels["model"], labels["version"]),
                ModelInfo(name=labels["model"], version=labels["version"]),
            )
            info.providers.append(labels["provider"])
    return list(found.values())


async def _channel_view(
    store: AlertStore, channel: ChannelConfig, active: list[Alert]
) -> ChannelView:
    mine = [a for a in active if a.channel_id == channel.id]
    health = await store.get_channel(channel.id) or ChannelHealth(channel_id=channel.id)
    return ChannelView(
        id=channel.id,
        name=channel.display_name,
        severity=channel.severity,
        status=channel_status(health, len(mine)),
        up=health.up,
        last_segment_at=health.last_segment_at,
        last_detection_at=health.last_detection_at,
        last_event=health.last_event,
        active_alerts=mine,
    )


# -- errors ------------------------------------------------------------------------------
def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=_ERROR_CODES.get(status, "error"), message=message))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return _error(422, "; ".join(parts) or "invalid request")


# -- serving -----------------------------------------------------------------------------
class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process owner sets ``stop`` instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


async def serve(app: FastAPI, host: str, port: int, stop: asyncio.Event) -> None:
    """Run ``app`` with uvicorn in the current event loop until ``stop`` is set.

    Raises :class:`RuntimeError` when the server cannot start (port taken, lifespan failed)
    or stops by itself.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = _Server(config)
    serving = asyncio.create_task(_run(server, f"{host}:{port}"), name="vqm-api-server")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        server.should_exit = True
    await serving
    if not stop.is_set():
        raise RuntimeError(f"API server on {host}:{port} stopped by itself")


async def _run(server: uvicorn.Server, where: str) -> None:
    """uvicorn exits the process when start-up fails; turn that into an error of this task.

    The catch must sit inside the task: a SystemExit escaping a task stops the event loop.
    """
    try:
        await server.serve()
    except SystemExit as exc:
        raise RuntimeError(f"API server could not start on {where}") from exc
