"""Who may call what: reads are open unless configured otherwise, changes need the token.

Changes (acknowledge, silence) need ``Authorization: Bearer <VQM_API_TOKEN>``; without a
configured token they are refused, unless the API listens on loopback *and* the environment is
``local`` (a developer's own machine). Reads under ``/api`` are open unless
``api_read_token_required``. The check runs twice by design: in :class:`~alerting.api.guard.
Guard`, before a request body is read (an unauthenticated caller cannot make the API parse
anything), and as the routers' dependency, which also declares the bearer scheme in OpenAPI.
Both call :func:`refusal`.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from alerting.api.deps import Ctx
from monitor.core.settings import Settings

NO_TOKEN_MESSAGE = (
    "changing calls are disabled because no API token is configured: set VQM_API_TOKEN "
    "and send 'Authorization: Bearer <token>' (or, on a developer machine, run with "
    "VQM_ENVIRONMENT=local and the API on loopback)"
)
WRONG_TOKEN_MESSAGE = "missing or wrong bearer token (send 'Authorization: Bearer <VQM_API_TOKEN>')"
CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(auto_error=False, description="VQM_API_TOKEN")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials else None


def refusal(settings: Settings, authorization: str | None, *, write: bool) -> HTTPException | None:
    """Why a call with this ``Authorization`` header is refused, or None when it may go on."""
    token = settings.api_token
    if not write and not settings.api_read_token_required:
        return None
    if token:
        given = bearer_token(authorization)
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            return HTTPException(401, WRONG_TOKEN_MESSAGE, headers=CHALLENGE)
        return None
    if write and not settings.open_for_changes:
        return HTTPException(403, NO_TOKEN_MESSAGE)
    return None


def require_read(ctx: Ctx, request: Request) -> None:
    """Reads are open unless ``api_read_token_required``; then they need the token."""
    refused = refusal(ctx.auth, request.headers.get("authorization"), write=False)
    if refused is not None:
        raise refused


def require_write(ctx: Ctx, request: Request, _: Credentials) -> None:
    """Changes need the token; with none configured only a local loopback API may change."""
    refused = refusal(ctx.auth, request.headers.get("authorization"), write=True)
    if refused is not None:
        raise refused
