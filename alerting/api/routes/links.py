"""Signed links that pages carry: the picture kept when an alert opened.

Slack, Teams and PagerDuty fetch a page's picture themselves and cannot send vqm's bearer
token, so this route is outside ``/api`` (whose reads may need the token) and asks for a
valid, unexpired signature instead (:class:`~alerting.links.LinkSigner`). Anything else, a
missing, tampered, expired or other channel's signature, or a process with no key, is 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.exceptions import HTTPException

from alerting.api.deps import Ctx, Store
from alerting.api.errors import documented
from alerting.api.routes.channels import jpeg_response
from alerting.links import PICTURE_ROUTE, LinkSigner

router = APIRouter(tags=["links"])

REFUSED = "this picture link is not valid (wrong signature, or expired)"


@router.get(
    PICTURE_ROUTE,
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **documented(403, 404)},
)
async def alert_picture(
    channel_id: str,
    alert_id: str,
    ctx: Ctx,
    store: Store,
    expires: Annotated[str | None, Query(max_length=32, description="Epoch seconds.")] = None,
    signature: Annotated[str | None, Query(max_length=128, description="The link's MAC.")] = None,
) -> Response:
    """The channel's picture when the alert opened, for a page's signed link (no token)."""
    signer = LinkSigner.from_settings(ctx.auth)
    if signer is None or not signer.valid(channel_id, alert_id, expires, signature, ctx.clock()):
        raise HTTPException(403, REFUSED)
    picture = await store.get_picture(alert_id)
    if picture is None or picture.channel_id != channel_id:
        raise HTTPException(404, f"no picture was kept for alert {alert_id!r}")
    return jpeg_response(picture, f"picture of alert {alert_id!r}")
