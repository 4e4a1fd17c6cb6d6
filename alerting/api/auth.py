"""Who may call what: reads are open unless configured otherwise, changes need the token.

``require_read`` and ``require_write`` are router dependencies (:mod:`alerting.api.app`
attaches them): a route never checks a token itself.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.exceptions import HTTPException

from alerting.api.deps import Ctx

NO_TOKEN_MESSAGE = (
    "changing calls are disabled because no API token is configured: set VQM_API_TOKEN "
    "and send 'Authorization: Bearer <token>' (or run with VQM_ENVIRONMENT=local)"
)


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
