"""Channels as the status wall and dashboards read them: status, open alerts, thumbnail."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.exceptions import HTTPException

from alerting.api.deps import Ctx, Store
from alerting.api.errors import documented
from alerting.api.schemas import ChannelList, ChannelView
from alerting.api.subchannels import seen_channel_ids, sub_channel_ids
from alerting.models import Alert
from alerting.store import AlertStore, ChannelHealth, Thumbnail, channel_status
from monitor.core.channels import ChannelConfig, parent_channel_id

read_router = APIRouter(tags=["channels"])


@read_router.get("/api/channels", response_model=ChannelList)
async def list_channels(ctx: Ctx, store: Store) -> ChannelList:
    """Every configured channel with its status and open alerts, each followed by the
    sub-channels seen of it (``variant: all``) with theirs."""
    active = await store.with_acks(await store.active())
    seen = await seen_channel_ids(store, active)
    views = []
    for channel in ctx.config.channels:
        subs = sub_channel_ids(channel, seen)
        views.append(await channel_view(store, channel, active, sub_channels=subs))
        views += [await channel_view(store, ctx.config.channel(s), active) for s in subs]
    return ChannelList(channels=views)


@read_router.get(
    "/api/channels/{channel_id}", response_model=ChannelView, responses=documented(404)
)
async def get_channel(channel_id: str, ctx: Ctx, store: Store) -> ChannelView:
    """One channel or sub-channel (``news@720p``); 404 when no configured channel has
    this id (or, for a sub-channel, follows every variant)."""
    try:
        channel = ctx.config.channel(channel_id)
    except KeyError:
        raise HTTPException(404, f"no channel {channel_id!r}") from None
    active = await store.with_acks(await store.active(channel_id))
    subs = sub_channel_ids(channel, await seen_channel_ids(store, await store.active()))
    return await channel_view(store, channel, active, sub_channels=subs)


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
    store: AlertStore,
    channel: ChannelConfig,
    active: list[Alert],
    sub_channels: list[str] | None = None,
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
        parent=parent_channel_id(channel.id),
        sub_channels=sub_channels or [],
    )
