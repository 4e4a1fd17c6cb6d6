"""Silences: listing them (read), creating and ending one (write)."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Response
from starlette.exceptions import HTTPException

from alerting.api.deps import Ctx, Store
from alerting.api.errors import documented
from alerting.api.schemas import SilenceList, SilenceView
from alerting.engine import STREAM_DETECTOR
from alerting.models import Silence, SilenceSpec
from monitor.core.channels import Channels
from monitor.core.redact import log_safe

logger = logging.getLogger(__name__)

read_router = APIRouter(tags=["silences"])
write_router = APIRouter(tags=["silences"])


@read_router.get("/api/silences", response_model=SilenceList)
async def list_silences(ctx: Ctx, store: Store) -> SilenceList:
    """Silences not yet forgotten (a day after they end), soonest-starting first."""
    at = ctx.clock()
    views = [SilenceView(**s.model_dump(), active_now=s.active(at)) for s in await store.silences()]
    return SilenceList(silences=views)


@write_router.post(
    "/api/silences",
    response_model=Silence,
    status_code=201,
    responses=documented(400, 401, 403, 404, 409, 413, 422),
)
async def create_silence(spec: SilenceSpec, ctx: Ctx, store: Store) -> Silence:
    """Silence a channel, a detector, both, or everything, now or for a window.

    Silenced alerts are still recorded and shown; they are not paged, and one still open
    when its silence ends is paged then.
    """
    at = ctx.clock()
    if spec.channel_id is not None and not _configured(ctx.config, spec.channel_id):
        raise HTTPException(422, f"channel_id: no configured channel {spec.channel_id!r}")
    known = _detectors(ctx.config)
    if spec.detector is not None and spec.detector not in known:
        names = ", ".join(sorted(known))
        raise HTTPException(422, f"detector: {spec.detector!r} is none of {names}")
    if spec.ends_at is not None and spec.ends_at <= at:
        raise HTTPException(422, f"ends_at: {spec.ends_at} is in the past")
    silence = Silence(**spec.model_dump(), id=uuid.uuid4().hex[:12], created_at=at)
    await store.put_silence(silence)
    logger.info(
        "silence %s created: %s", silence.id, log_safe(silence.model_dump(exclude_none=True))
    )
    return silence


@write_router.delete(
    "/api/silences/{silence_id}", status_code=204, responses=documented(401, 403, 404, 409, 413)
)
async def delete_silence(silence_id: str, store: Store) -> Response:
    """End a silence now; alerts it held back that are still open are paged."""
    if await store.get_silence(silence_id) is None:
        raise HTTPException(404, f"no silence {silence_id!r}")
    await store.delete_silence(silence_id)
    logger.info("silence %s deleted", log_safe(silence_id))
    return Response(status_code=204)


def _configured(config: Channels, channel_id: str) -> bool:
    return any(c.id == channel_id for c in config.channels)


def _detectors(config: Channels) -> set[str]:
    """What a silence may name: every detector some channel runs, and ``stream``."""
    names = set(config.detectors_for_defaults()) | {STREAM_DETECTOR}
    for channel in config.channels:
        names |= set(config.detectors_for(channel))
    return names
