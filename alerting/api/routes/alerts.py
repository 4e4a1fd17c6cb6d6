"""Alerts: open and recent ones (read), and acknowledging one (write)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from starlette.exceptions import HTTPException

from alerting.api.deps import Ctx, Store
from alerting.api.errors import documented
from alerting.api.schemas import AckRequest, AlertList
from alerting.models import Acknowledgement, Alert, AlertState
from monitor.core.redact import log_safe

logger = logging.getLogger(__name__)

read_router = APIRouter(tags=["alerts"])
write_router = APIRouter(tags=["alerts"])


@read_router.get("/api/alerts", response_model=AlertList)
async def list_alerts(
    store: Store,
    state: Annotated[
        Literal["active", "recent", "all"], Query(description="Open, resolved, or both.")
    ] = "active",
    channel: Annotated[str | None, Query(description="Only this channel.")] = None,
    detector: Annotated[str | None, Query(description="Only this detector.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AlertList:
    """Open alerts newest first, then (``recent``/``all``) the latest resolved ones."""
    alerts: list[Alert] = []
    if state in ("active", "all"):
        alerts += await store.active(channel, detector)
    if state in ("recent", "all"):
        alerts += await store.recent(channel, detector)
    return AlertList(alerts=await store.with_acks(alerts[:limit]))


@write_router.post(
    "/api/alerts/{alert_id}/ack",
    response_model=Alert,
    responses=documented(400, 401, 403, 404, 409, 413),
)
async def acknowledge(
    alert_id: str,
    ctx: Ctx,
    store: Store,
    body: Annotated[AckRequest | None, Body()] = None,
) -> Alert:
    """Mark an open alert as seen by someone; it stays open and shown as acknowledged."""
    alert = await store.find(alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    if alert.state is AlertState.RESOLVED:
        raise HTTPException(409, f"alert {alert_id!r} is already resolved")
    request = body or AckRequest()
    ack = Acknowledgement(alert_id=alert_id, by=request.by, comment=request.comment, at=ctx.clock())
    await store.put_ack(ack)
    logger.info("alert %s acknowledged by %s", log_safe(alert_id), log_safe(ack.by or "someone"))
    [acked] = await store.with_acks([alert])
    return acked
