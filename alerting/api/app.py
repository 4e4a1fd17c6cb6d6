"""The app factory: one FastAPI app per :class:`ApiContext`, one lifespan, no globals."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from alerting.api.auth import bearer, require_read, require_write
from alerting.api.context import ApiContext
from alerting.api.errors import http_error, validation_error
from alerting.api.guard import Guard
from alerting.api.routes import alerts, channels, feedback, labels, links, probes, silences
from alerting.api.schemas import ErrorResponse

logger = logging.getLogger(__name__)


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
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    metrics_app = make_asgi_app(registry=ctx.metrics.registry)
    # The mount serves /metrics/...; the exact route spares scrapers a redirect from /metrics.
    app.add_route("/metrics", _Asgi(metrics_app), include_in_schema=False)  # type: ignore[arg-type]
    app.mount("/metrics", metrics_app)
    app.include_router(probes.router)
    app.include_router(links.router)  # signed instead of token-checked: receivers fetch it
    read = [Depends(require_read)]
    if ctx.auth.api_read_token_required:
        read.append(Depends(bearer))  # declares the scheme on reads when they need it
    for module in (channels, alerts, silences, feedback, labels):
        app.include_router(module.read_router, dependencies=read)
    for module in (alerts, silences, feedback, labels):
        app.include_router(module.write_router, dependencies=[Depends(require_write)])
    app.mount("/static", StaticFiles(directory=probes.STATIC_DIR), name="static")
    app.add_middleware(Guard, settings=lambda: ctx.auth)  # type: ignore[arg-type]
    return app


class _Asgi:
    """An ASGI app as a route endpoint (Starlette calls class instances as raw ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
