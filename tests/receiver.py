"""A local HTTP receiver standing in for Alertmanager, PagerDuty, Slack, Teams, Opsgenie,
Grafana or a webhook."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def route(self) -> str:
        """The path without its query."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


# Answers a request with (status, JSON body): a receiver with state of its own (Grafana's
# annotations) instead of scripted statuses.
Handler = Callable[[Request], tuple[int, Any]]


@dataclass
class Receiver:
    """A local HTTP/1.1 server that records requests and answers scripted statuses.

    ``statuses`` are used one per request, then ``default_status``; a status may come with
    the headers to answer it with, ``(503, {"Retry-After": "30"})``. ``accepted`` holds the
    requests answered 2xx. Start it late to play a receiver that refuses connections. A
    ``handler`` answers instead, status and JSON body, for receivers whose answer depends on
    the request (Grafana's annotations).
    """

    port: int = field(default_factory=free_port)
    statuses: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    default_status: int = 202
    requests: list[Request] = field(default_factory=list)
    accepted: list[Request] = field(default_factory=list)
    handler: Handler | None = None
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:] if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers, body)
            status, answer, extra = self._answer(request)
            self.requests.append(request)
            if 200 <= status < 300:
                self.accepted.append(request)
            reply = json.dumps(answer).encode()
            more = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{more}"
                f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
                + reply
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        if self.handler is not None:
            return (*self.handler(request), {})
        scripted = self.statuses.pop(0) if self.statuses else self.default_status
        status, headers = scripted if isinstance(scripted, tuple) else (scripted, {})
        return status, {"status": "ok"}, headers
