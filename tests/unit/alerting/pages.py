"""What paging tests share: an alert, its opening and resolve, the links pages carry, and a
frozen segment's detection to open an alert with."""

from __future__ import annotations

import base64
import time

from alerting.links import LinkSigner, PageLinks
from alerting.models import Alert, AlertEvent, AlertState, AlertTransition
from monitor.core.messages import DefectSpan, DetectionMessage

OPENED_AT = 1_714_564_800.0  # 2024-05-01T12:00:00Z
PUBLIC_URL = "https://vqm.example/noc"
LINK_KEY = b"a link key that is long enough"
LINK_TTL = 3600.0


def make_alert(alert_id: str = "news:black:1", severity: str = "critical", **kw: object) -> Alert:
    fields: dict[str, object] = {
        "id": alert_id,
        "channel_id": "news",
        "detector": "black",
        "severity": severity,
        "start": 10.0,
        "end": 14.0,
        "confidence": 0.99,
        "opened_at": OPENED_AT,
        "updated_at": OPENED_AT + 4,
        "summary": "Black picture",
    }
    fields.update(kw)
    return Alert.model_validate(fields)


def opened(alert: Alert | None = None) -> AlertEvent:
    return AlertEvent(transition=AlertTransition.OPENED, alert=alert or make_alert())


def resolved(alert: Alert | None = None) -> AlertEvent:
    alert = (alert or make_alert()).model_copy(
        update={"state": AlertState.RESOLVED, "resolved_at": OPENED_AT + 80.5}
    )
    return AlertEvent(transition=AlertTransition.RESOLVED, alert=alert)


def page_links(signed: bool = True, public_url: str = PUBLIC_URL) -> PageLinks:
    """Links under ``public_url``, signing pictures unless ``signed`` is False (no key)."""
    signer = LinkSigner(LINK_KEY) if signed else None
    return PageLinks(public_url, signer, LINK_TTL, clock=lambda: OPENED_AT + 5)


def with_picture(alert: Alert | None = None) -> Alert:
    """An alert whose opening kept a picture of the channel."""
    return (alert or make_alert()).model_copy(update={"picture": True})


WALL = f"{PUBLIC_URL}/#channel=news"


def frozen(seq: int, channel_id: str = "news", picture: bytes | None = None) -> DetectionMessage:
    """Segment ``seq`` (2 s each) frozen throughout, carrying ``picture`` as its thumbnail."""
    return flagged("freeze", seq, channel_id, picture)


def flagged(
    detector: str, seq: int, channel_id: str = "news", picture: bytes | None = None
) -> DetectionMessage:
    """Segment ``seq`` (2 s each) flagged by ``detector`` throughout."""
    start = seq * 2.0
    return DetectionMessage(
        channel_id=channel_id,
        seq=seq,
        detector=detector,
        media_start=start,
        media_end=start + 2.0,
        spans=[DefectSpan(start=start, end=start + 2.0, confidence=0.9)],
        fetched_at=time.time(),
        thumbnail_jpeg=base64.b64encode(picture).decode() if picture is not None else None,
    )
