"""Serving the app with uvicorn inside the caller's event loop, stopped by its stop event."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from fastapi import FastAPI


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
