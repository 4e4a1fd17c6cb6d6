"""The HTTP API: health, readiness, Prometheus metrics, channels, alerts, acknowledgements,
silences, thumbnails, and the NOC status wall at ``/``.

Everything the handlers need comes from one :class:`ApiContext` given to :func:`create_app`,
so there is no module-level state and tests build an app per case. Errors share one shape,
``{"error": {"code": "not_found", "message": "..."}}``, whatever raised them.

Who may do what: calls that change something (ack, silences) need ``Authorization: Bearer
<VQM_API_TOKEN>``. Without a configured token they are refused (403) unless the environment
is ``local``, where a developer's loopback API is trusted. Reads under ``/api`` are open
unless ``VQM_API_READ_TOKEN_REQUIRED`` is set; ``/healthz``, ``/readyz``, ``/metrics`` and the
status page's static files are always open (probes and scrapers carry no token; the page
holds no data and sends the token it is given in its URL fragment).

    app = create_app(ApiContext(config=config, state=state, metrics=metrics, readiness=ready))
    await serve(app, "127.0.0.1", 8080, stop)   # uvicorn inside this event loop
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from alerting.models import Acknowledgement, Alert, AlertState, Silence, SilenceSpec
from alerting.store import AlertStore, ChannelHealth, ChannelStatus, channel_status
from monitor.app.config import ChannelConfig, Settings, VqmConfig
from monitor.core.messages import now
from monitor.core.metrics import Metrics
from monitor.core.state import StateStore

logger = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[dict[str, bool]]]

STATIC_DIR = Path(str(files("alerting") / "static"))
NO_TOKEN_MESSAGE = (
    "changing calls are disabled because no API token is configured: set VQM_API_TOKEN "
    "and send 'Authorization: Bearer <token>' (or run with VQM_ENVIRONMENT=local)"
)

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
    ``settings`` gives the API token rules; without it the defaults apply (local, no token).
    """

    config: VqmConfig
    state: StateStore
    metrics: Metrics
    readiness: Readiness | None = None
    models: Callable[[], Sequence[ModelInfo]] | None = None
    lifespan: Callable[[], AbstractAsyncContextManager[None]] | None = None
    settings: Settings | None = None
    clock: Callable[[], float] = now

    @property
    def auth(self) -> Settings:
        # model_construct: the defaults, without reading the environment
        return self.settings if self.settings is not None else Settings.model_construct()


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
    last_thumbnail: str | None = Field(
        default=None, description="URL of the newest thumbnail JPEG; None before the first."
    )
    thumbnail_at: float | None = Field(
        default=None, description="Fetch time of the segment it shows, epoch s."
    )


class ChannelList(BaseModel):
    channels: list[ChannelView]


class AlertList(BaseModel):
    alerts: list[Alert]


class AckRequest(BaseModel):
    """Body of an acknowledgement; both fields are for the people reading it later."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(default="", max_length=200, description="Who acknowledges.")
    comment: str = Field(default="", max_length=2000)


class SilenceView(Silence):
    active_now: bool = Field(description="Whether it matches alerts at this moment.")


class SilenceList(BaseModel):
    silences: list[SilenceView]


# -- dependencies ------------------------------------------------------------------------
def get_context(request: Request) -> ApiContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[ApiContext, Depends(get_context)]


def get_store(ctx: Ctx) -> AlertStore:
    return AlertStore(ctx.state)


Store = Annotated[AlertStore, Depends(get_store)]


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials else None


def _check_token(request: Request, token: str) -> None:
    given = _bearer(request)
    if given is None or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401,
            "missing or wrong bearer token (send 'Authorization: Bearer <VQM_API_TOKEN>')",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_read(ctx: Ctx, request: Request) -> None:
    """Reads are open unless ``api_read_token_required``; then they need the token."""
    settings = ctx.auth
    if settings.api_read_token_required and settings.api_token:
        _check_token(request, settings.api_token)


def require_write(ctx: Ctx, request: Request) -> None:
    """Changes need the token; with none configured only a local environment may change."""
    settings = ctx.auth
    if settings.api_token:
        _check_token(request, settings.api_token)
    elif settings.environment != "local":
        raise HTTPException(403, NO_TOKEN_MESSAGE)


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
    app.include_router(_read_routes(), dependencies=[Depends(require_read)])
    app.include_router(_write_routes(), dependencies=[Depends(require_write)])
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class _Asgi:
    """An ASGI app as a route endpoint (Starlette calls class instances as raw ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _routes() -> APIRouter:
    """Always open: probes, the status page."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def status_wall() -> FileResponse:
        """The NOC status wall: one tile per channel, refreshed every two seconds."""
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

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

    return router


def _read_routes() -> APIRouter:
    """What the status wall and dashboards read; open unless reads need the token."""
    router = APIRouter()
    not_found: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}

    @router.get("/api/channels", response_model=ChannelList, tags=["channels"])
    async def list_channels(ctx: Ctx, store: Store) -> ChannelList:
        """Every configured channel with its status and open alerts."""
        active = await store.with_acks(await store.active())
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
        active = await store.with_acks(await store.active(channel_id))
        return await _channel_view(store, channel, active)

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
        return AlertList(alerts=await store.with_acks(alerts[:limit]))

    @router.get(
        "/api/channels/{channel_id}/thumbnail.jpg",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}, **not_found},
        tags=["channels"],
    )
    async def channel_thumbnail(channel_id: str, store: Store) -> Response:
        """The channel's newest picture (one frame of a recent segment), small JPEG."""
        thumbnail = await store.get_thumbnail(channel_id)
        if thumbnail is None:
            raise HTTPException(404, f"no thumbnail for channel {channel_id!r} yet")
        try:
            jpeg = base64.b64decode(thumbnail.jpeg_base64, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(404, f"thumbnail of {channel_id!r} is unreadable") from None
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @router.get("/api/silences", response_model=SilenceList, tags=["silences"])
    async def list_silences(ctx: Ctx, store: Store) -> SilenceList:
        """Silences not yet forgotten (a day after they end), soonest-starting first."""
        at = ctx.clock()
        views = [
            SilenceView(**s.model_dump(), active_now=s.active(at)) for s in await store.silences()
        ]
        return SilenceList(silences=views)

    return router


def _write_routes() -> APIRouter:
    """Acknowledge and silence; each needs the bearer token (see the module docstring)."""
    router = APIRouter()
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse} for code in (401, 403, 404, 409)
    }

    @router.post(
        "/api/alerts/{alert_id}/ack", response_model=Alert, responses=errors, tags=["alerts"]
    )
    async def acknowledge(
        alert_id: str,
        ctx: Ctx,
        store: Store,
        body: Annotated[AckRequest | None, Body()] = None,
    ) -> Alert:
        """Mark an open alert as seen by someone; it stays open and shown as acknowledged."""
        alert = await store.find(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        if alert.state is AlertState.RESOLVED:
            raise HTTPException(409, f"alert {alert_id!r} is already resolved")
        request = body or AckRequest()
        ack = Acknowledgement(
            alert_id=alert_id, by=request.by, comment=request.comment, at=ctx.clock()
        )
        await store.put_ack(ack)
        logger.info("alert %s acknowledged by %s", alert_id, ack.by or "someone")
        [acked] = await store.with_acks([alert])
        return acked

    @router.post(
        "/api/silences",
        response_model=Silence,
        status_code=201,
        responses={**errors, 422: {"model": ErrorResponse}},
        tags=["silences"],
    )
    async def create_silence(spec: SilenceSpec, ctx: Ctx, store: Store) -> Silence:
        """Silence a channel, a detector, both, or everything, now or for a window.

        Silenced alerts are still recorded and shown; they are not paged, and one still open
        when its silence ends is paged then.
        """
        at = ctx.clock()
        if spec.channel_id is not None and not _configured(ctx.config, spec.channel_id):
            raise HTTPException(422, f"channel_id: no configured channel {spec.channel_id!r}")
        if spec.ends_at is not None and spec.ends_at <= at:
            raise HTTPException(422, f"ends_at: {spec.ends_at} is in the past")
        silence = Silence(**spec.model_dump(), id=uuid.uuid4().hex[:12], created_at=at)
        await store.put_silence(silence)
        logger.info("silence %s created: %s", silence.id, silence.model_dump(exclude_none=True))
        return silence

    @router.delete(
        "/api/silences/{silence_id}", status_code=204, responses=errors, tags=["silences"]
    )
    async def delete_silence(silence_id: str, store: Store) -> Response:
        """End a silence now; alerts it held back that are still open are paged."""
        if await store.get_silence(silence_id) is None:
            raise HTTPException(404, f"no silence {silence_id!r}")
        await store.delete_silence(silence_id)
        logger.info("silence %s deleted", silence_id)
        return Response(status_code=204)

    return router


def _configured(config: VqmConfig, channel_id: str) -> bool:
    return any(c.id == channel_id for c in config.channels)


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
    thumbnail = await store.get_thumbnail(channel.id)
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
        last_thumbnail=f"/api/channels/{channel.id}/thumbnail.jpg" if thumbnail else None,
        thumbnail_at=thumbnail.at if thumbnail else None,
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
