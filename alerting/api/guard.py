"""The API's outer wall, a plain ASGI middleware in front of FastAPI.

* **Authentication before parsing**: a changing call (any method but GET, HEAD, OPTIONS) under
  ``/api``, and a read there when reads need the token, is refused (401/403) before a byte of
  its body is read.
* **Bounded bodies**: a body over ``max_body`` bytes is refused with 413, whether it announces
  its length or streams it in chunks.
* **Browser hardening**: every response says ``X-Content-Type-Options: nosniff`` and
  ``X-Frame-Options: DENY``; the status wall, its labelling page and their static files carry
  a Content Security Policy that allows only the API's own origin (the pages are
  self-contained: their scripts and style sheets, pictures fetched as blobs).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerting.api.auth import refusal
from alerting.api.errors import error_response
from monitor.core.settings import Settings

MAX_BODY_BYTES = 64 * 1024  # the largest body the API takes (a silence or an ack is ~1 KB)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WALL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
WALL_PAGES = frozenset({"/", "/label.html"})  # the status wall and its labelling page
_HARDENING = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]


class _TooLarge(Exception):
    pass


class Guard:
    """See the module docstring; ``settings`` is called per request (tests swap them)."""

    def __init__(
        self, app: ASGIApp, settings: Callable[[], Settings], max_body: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.settings = settings
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._refusal(scope)
        if refused is not None:
            await self._reply(scope, receive, send, refused)
            return
        if _content_length(scope) > self.max_body:
            await self._reply(scope, receive, send, self._too_large())
            return
        if scope["method"] not in SAFE_METHODS:
            try:
                receive = await self._buffered(receive)
            except _TooLarge:
                await self._reply(scope, receive, send, self._too_large())
                return
        await self.app(scope, receive, _hardened(scope, send))

    def _refusal(self, scope: Scope) -> HTTPException | None:
        if not scope["path"].startswith("/api/"):
            return None
        authorization = _header(scope, b"authorization")
        write = scope["method"] not in SAFE_METHODS
        return refusal(self.settings(), authorization, write=write)

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"request body over the {self.max_body}-byte limit")

    async def _buffered(self, receive: Receive) -> Receive:
        """Read the whole body first, at most ``max_body`` bytes (a streamed body announces no
        length), and hand the app a receive that replays it."""
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise _TooLarge
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return replay

    async def _reply(self, scope: Scope, receive: Receive, send: Send, exc: HTTPException) -> None:
        response = error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))
        await response(scope, receive, _hardened(scope, send))


def _hardened(scope: Scope, send: Send) -> Send:
    path = scope["path"]
    wall = path in WALL_PAGES or path.startswith("/static/")

    async def with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            headers += [(k, v) for k, v in _HARDENING if k not in names]
            if wall:
                headers.append((b"content-security-policy", WALL_CSP.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return with_headers


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _content_length(scope: Scope) -> int:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else 0
