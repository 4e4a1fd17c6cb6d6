"""Channels as the status wall and dashboards read them: status, open alerts, thumbnail."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.exceptions import HTTPException

from alerting.api.deps import Ctx, Store
from alerting.api.errors import documented
from alerting.api.schemas import ChannelList, ChannelView
from alerting.models import Alert
from alerting.store import AlertStore, ChannelHealth, Thumbnail, channel_status
from monitor.core.channels import ChannelConfig

read_router = APIRouter(tags=["channels"])


@read_router.get("/api/channels", response_model=ChannelList)
async def list_channels(ctx: Ctx, store: Store) -> ChannelList:
    """Every configured channel with its status and open alerts."""
    active = await store.with_acks(await store.active())
    views = [await channel_view(store, c, active) for c in ctx.config.channels]
    return ChannelList(channels=views)


@read_router.get(
    "/api/channels/{channel_id}", response_model=ChannelView, responses=documented(404)
)
async def get_channel(channel_id: str, ctx: Ctx, store: Store) -> ChannelView:
    """One channel; 404 when no configured channel has this id."""
    try:
        channel = ctx.config.channel(channel_id)
    except KeyError:
        raise HTTPException(404, f"no channel {channel_id!r}") from None
    active = await store.with_acks(await store.active(channel_id))
    return await channel_view(store, channel, active)


@read_router.get(
    "/api/channels/{channel_id}/thumbnail.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **documented(404)},
)
async def channel_thumbnail(channel_id: str, store: Store) -> Response:
    """The channel's newest picture (one frame of a recent segment), small JPEG."""
    thumbnail = await store.get_thumbnail(channel_id)
    if thumbnail is None:
        raise HTTPException(404, f"no thumbnail for channel {channel_id!r} yet")
    return jpeg_response(thumbnail, f"thumbnail of {channel_id!r}")


def jpeg_response(thumbnail: Thumbnail, what: str) -> Response:
    """The picture as ``image/jpeg``, never cached (the next one replaces it); 404 if damaged."""
    jpeg = thumbnail.jpeg()
    if jpeg is None:
        raise HTTPException(404, f"{what} is unreadable")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def channel_view(
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
        measurements=await store.measurements(channel.id),
    )
