"""Alert records, channel health and tracker state on top of the :class:`StateStore`.

The engine, the API and (later) notifiers and the status wall read and write the same
records through this one typed wrapper, so key layout and JSON shapes live in one place:

=================  ===============================  ==========================================
namespace          key                              value
=================  ===============================  ==========================================
``alerts``         ``channel:detector[:label]``     the open :class:`Alert` (one per key)
``alert_history``  alert id                         a resolved :class:`Alert`, last ~200 kept
``channels``       channel id                       :class:`ChannelHealth`
``trackers``       ``channel:detector``             :class:`~alerting.intervals.TrackerState`
``dedup``          ``channel:seq:detector``         ``"1"`` with a TTL (replays page once)
``silences``       silence id                       :class:`~alerting.models.Silence`
``acks``           alert id                         :class:`~alerting.models.Acknowledgement`
``thumbnails``     channel id                       :class:`Thumbnail` (latest JPEG, base64)
``alert_pictures`` alert id                         the channel's :class:`Thumbnail` at opening
``measurements``   ``channel:detector``             :class:`Measurements` (newest readings)
=================  ===============================  ==========================================

Acknowledgements live beside the alerts rather than inside them: the API writes them while
the engine rewrites alerts, and neither may undo the other's write.

    store = AlertStore(MemoryStateStore())
    await store.put_active(alert)
    [a.id for a in await store.active(channel_id="news")]
"""

from __future__ import annotations

import base64
import binascii
import logging
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerting.intervals import IntervalTracker
from alerting.models import Acknowledgement, Alert, Silence
from monitor.core.state import StateStore

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

ALERTS = "alerts"
HISTORY = "alert_history"
CHANNELS = "channels"
TRACKERS = "trackers"
DEDUP = "dedup"
SILENCES = "silences"
ACKS = "acks"
THUMBNAILS = "thumbnails"
ALERT_PICTURES = "alert_pictures"
MEASUREMENTS = "measurements"

HISTORY_LIMIT = 200
HISTORY_TTL = 7 * 24 * 3600.0
DEDUP_TTL = 24 * 3600.0
SILENCE_KEEP = 24 * 3600.0


class ChannelStatus(StrEnum):
    OK = "ok"
    ALERTING = "alerting"
    DOWN = "down"
    UNKNOWN = "unknown"


class AdBreak(BaseModel):
    """An ad break ingest reported, by segment, placed on the stream's PTS timeline by the
    first detection of its first segment (and of the first segment after it)."""

    model_config = ConfigDict(extra="forbid")

    start_seq: int
    end_seq: int | None = None
    start: float | None = Field(default=None, description="Media seconds (PTS) it began.")
    end: float | None = Field(default=None, description="Media seconds (PTS) it ended.")

    def place(self, seq: int, media_start: float) -> bool:
        """Learn where the break lies from a detection of segment ``seq``; True if it did."""
        changed = False
        if self.start is None and seq >= self.start_seq:
            self.start, changed = media_start, True
        if self.end is None and self.end_seq is not None and seq >= self.end_seq:
            self.end, changed = media_start, True
        return changed


class ChannelHealth(BaseModel):
    """What alerting knows about a channel's delivery; wall-clock epoch seconds."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str
    up: bool | None = Field(default=None, description="None until the first tick decides.")
    last_segment_at: float | None = Field(default=None, description="Newest segment fetch time.")
    last_detection_at: float | None = Field(default=None, description="Newest detection time.")
    segment_duration: float | None = Field(
        default=None, description="Typical segment duration seen, seconds; sets when 'down'."
    )
    last_event: str | None = Field(default=None, description="Latest stream event kind.")
    last_event_at: float | None = None
    changed_at: float | None = Field(default=None, description="When ``up`` last changed.")
    ad_breaks: list[AdBreak] = Field(
        default_factory=list, description="The latest ad breaks the stream signalled, oldest first."
    )
    renditions: list[str] = Field(
        default_factory=list,
        description="Of a 'variant: all' channel: the sub-channels (news@720p) seen delivering, "
        "each checked for going down like a channel of its own.",
    )


class Measurements(BaseModel):
    """A detector's newest readings of a channel (loudness, say), for the status wall."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str
    detector: str
    values: dict[str, float]
    at: float = Field(description="Wall clock when the segment was fetched, epoch seconds.")


class Thumbnail(BaseModel):
    """The newest picture of a channel, for the status wall."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str
    jpeg_base64: str = Field(description="A small JPEG, base64.")
    seq: int = Field(description="Segment it was taken from.")
    at: float = Field(description="Wall clock when the segment was fetched, epoch seconds.")

    def jpeg(self) -> bytes | None:
        """The JPEG bytes; None when the stored base64 is damaged."""
        try:
            return base64.b64decode(self.jpeg_base64, validate=True)
        except (binascii.Error, ValueError):
            logger.warning(
                "thumbnail of %s (seq %d) is not valid base64", self.channel_id, self.seq
            )
            return None


def channel_status(health: ChannelHealth | None, active_alerts: int) -> ChannelStatus:
    """Down beats alerting beats ok; a channel nothing is known about is unknown."""
    if health is None or health.up is None:
        return ChannelStatus.ALERTING if active_alerts else ChannelStatus.UNKNOWN
    if not health.up:
        return ChannelStatus.DOWN
    return ChannelStatus.ALERTING if active_alerts else ChannelStatus.OK


def alert_key(channel_id: str, detector: str, label: str | None = None) -> str:
    return f"{channel_id}:{detector}" + (f":{label}" if label else "")


def tracker_key(channel_id: str, detector: str) -> str:
    return f"{channel_id}:{detector}"


class AlertStore:
    """Typed access to the alerting namespaces of a :class:`StateStore`."""

    def __init__(self, state: StateStore, history_limit: int = HISTORY_LIMIT) -> None:
        self.state = state
        self.history_limit = history_limit

    # -- idempotency ---------------------------------------------------------------------
    async def first_time(self, key: str, ttl: float = DEDUP_TTL) -> bool:
        """True only for the first caller with ``key`` within ``ttl`` (atomic in Redis too)."""
        return await self.state.set_if_absent(DEDUP, key, "1", ttl=ttl)

    async def forget(self, key: str) -> None:
        """Undo :meth:`first_time` when the work it guarded failed, so a retry can run."""
        await self.state.delete(DEDUP, key)

    # -- active alerts -------------------------------------------------------------------
    async def get_active(self, key: str) -> Alert | None:
        return _parse(Alert, await self.state.get(ALERTS, key), ALERTS, key)

    async def put_active(self, alert: Alert) -> None:
        await self.state.set(
            ALERTS,
            alert_key(alert.channel_id, alert.detector, alert.label),
            alert.model_dump_json(),
        )

    async def active(
        self, channel_id: str | None = None, detector: str | None = None
    ) -> list[Alert]:
        """Open alerts, newest first, optionally for one channel and/or detector."""
        alerts = await self._all(ALERTS)
        return _newest_first(_matching(alerts, channel_id, detector), by_resolve=False)

    # -- history -------------------------------------------------------------------------
    async def resolve(self, alert: Alert) -> None:
        """Move a resolved alert from the active set to the capped history."""
        await self.state.set(HISTORY, alert.id, alert.model_dump_json(), ttl=HISTORY_TTL)
        await self.state.delete(ALERTS, alert_key(alert.channel_id, alert.detector, alert.label))
        await self._trim_history()

    async def recent(
        self, channel_id: str | None = None, detector: str | None = None
    ) -> list[Alert]:
        """Resolved alerts, most recently resolved first."""
        alerts = await self._all(HISTORY)
        return _newest_first(_matching(alerts, channel_id, detector), by_resolve=True)

    async def _trim_history(self) -> None:
        items = await self.state.items(HISTORY)
        if len(items) <= self.history_limit:
            return
        alerts = _newest_first(await self._all(HISTORY), by_resolve=True)
        for stale in alerts[self.history_limit :]:
            await self.state.delete(HISTORY, stale.id)

    # -- channels ------------------------------------------------------------------------
    async def get_channel(self, channel_id: str) -> ChannelHealth | None:
        return _parse(
            ChannelHealth, await self.state.get(CHANNELS, channel_id), CHANNELS, channel_id
        )

    async def channel_ids(self) -> list[str]:
        """The ids of every channel with a health record (sub-channels included)."""
        return list(await self.state.items(CHANNELS))

    async def put_channel(self, health: ChannelHealth) -> None:
        # Other channels keep their old stored form, which an older release still reads.
        unset = None if health.renditions else {"renditions"}
        await self.state.set(CHANNELS, health.channel_id, health.model_dump_json(exclude=unset))

    # -- trackers ------------------------------------------------------------------------
    async def load_tracker(
        self,
        channel_id: str,
        detector: str,
        min_duration: float,
        recovery: float,
        label_min_durations: dict[str, float] | None = None,
    ) -> IntervalTracker:
        """The tracker of one channel and detector as last saved, or a fresh one."""
        key = tracker_key(channel_id, detector)
        data = await self.state.get(TRACKERS, key)
        try:
            return IntervalTracker.load(
                data, min_duration, recovery, label_min_durations=label_min_durations
            )
        except ValidationError:
            logger.warning("tracker state %s unreadable; starting afresh", key)
            return IntervalTracker(min_duration, recovery, label_min_durations=label_min_durations)

    async def save_tracker(self, channel_id: str, detector: str, tracker: IntervalTracker) -> None:
        await self.state.set(TRACKERS, tracker_key(channel_id, detector), tracker.dump())

    # -- silences ------------------------------------------------------------------------
    async def put_silence(self, silence: Silence) -> None:
        """Kept until a day after it ends (then it matters to nobody)."""
        ttl = None
        if silence.ends_at is not None:
            ttl = max(1.0, silence.ends_at - silence.created_at + SILENCE_KEEP)
        await self.state.set(SILENCES, silence.id, silence.model_dump_json(), ttl=ttl)

    async def silences(self) -> list[Silence]:
        """Every stored silence, soonest-starting first."""
        items = await self.state.items(SILENCES)
        parsed = (_parse(Silence, value, SILENCES, key) for key, value in items.items())
        found = [s for s in parsed if s is not None]
        return sorted(found, key=lambda s: (s.starts_at or s.created_at, s.id))

    async def get_silence(self, silence_id: str) -> Silence | None:
        return _parse(Silence, await self.state.get(SILENCES, silence_id), SILENCES, silence_id)

    async def delete_silence(self, silence_id: str) -> None:
        await self.state.delete(SILENCES, silence_id)

    # -- acknowledgements ----------------------------------------------------------------
    async def put_ack(self, ack: Acknowledgement) -> None:
        await self.state.set(ACKS, ack.alert_id, ack.model_dump_json(), ttl=HISTORY_TTL)

    async def with_acks(self, alerts: list[Alert]) -> list[Alert]:
        """The alerts with their acknowledgements filled in."""
        if not alerts:
            return alerts
        acks = {}
        for key, value in (await self.state.items(ACKS)).items():
            ack = _parse(Acknowledgement, value, ACKS, key)
            if ack is not None:
                acks[ack.alert_id] = ack
        out = []
        for alert in alerts:
            ack = acks.get(alert.id)
            if ack is not None:
                alert = alert.model_copy(
                    update={"acknowledged_at": ack.at, "acknowledged_by": ack.by or None}
                )
            out.append(alert)
        return out

    async def find(self, alert_id: str) -> Alert | None:
        """An alert by id, open or resolved."""
        for alert in await self.active():
            if alert.id == alert_id:
                return alert
        return _parse(Alert, await self.state.get(HISTORY, alert_id), HISTORY, alert_id)

    # -- thumbnails ----------------------------------------------------------------------
    async def put_thumbnail(self, thumbnail: Thumbnail) -> None:
        await self.state.set(THUMBNAILS, thumbnail.channel_id, thumbnail.model_dump_json())

    async def get_thumbnail(self, channel_id: str) -> Thumbnail | None:
        raw = await self.state.get(THUMBNAILS, channel_id)
        return _parse(Thumbnail, raw, THUMBNAILS, channel_id)

    async def keep_picture(self, alert: Alert) -> bool:
        """Keep the channel's newest picture as the alert's own, so a page shows what the
        channel showed when the alert opened, not whatever it shows when someone looks.
        False when the channel has no picture yet. Kept as long as the alert's history."""
        thumbnail = await self.get_thumbnail(alert.channel_id)
        if thumbnail is None:
            return False
        await self.state.set(ALERT_PICTURES, alert.id, thumbnail.model_dump_json(), ttl=HISTORY_TTL)
        return True

    async def get_picture(self, alert_id: str) -> Thumbnail | None:
        """The picture kept when the alert opened, if any."""
        raw = await self.state.get(ALERT_PICTURES, alert_id)
        return _parse(Thumbnail, raw, ALERT_PICTURES, alert_id)

    # -- measurements --------------------------------------------------------------------
    async def put_measurements(self, readings: Measurements) -> None:
        key = f"{readings.channel_id}:{readings.detector}"
        await self.state.set(MEASUREMENTS, key, readings.model_dump_json())

    async def measurements(self, channel_id: str) -> dict[str, dict[str, float]]:
        """The newest readings of each detector of the channel, by detector."""
        items = await self.state.items(MEASUREMENTS)
        out: dict[str, dict[str, float]] = {}
        for key, raw in items.items():
            if key.startswith(f"{channel_id}:"):
                readings = _parse(Measurements, raw, MEASUREMENTS, key)
                if readings is not None:
                    out[readings.detector] = readings.values
        return out

    async def _all(self, ns: str) -> list[Alert]:
        items = await self.state.items(ns)
        parsed = (_parse(Alert, value, ns, key) for key, value in items.items())
        return [a for a in parsed if a is not None]


def _parse(cls: type[T], data: str | None, ns: str, key: str) -> T | None:
    """Validate a stored record; a corrupt one is logged and treated as absent."""
    if data is None:
        return None
    try:
        return cls.model_validate_json(data)
    except ValidationError:
        logger.warning("unreadable %s record %s in %s; ignoring it", cls.__name__, key, ns)
        return None


def _matching(alerts: list[Alert], channel_id: str | None, detector: str | None) -> list[Alert]:
    return [
        a
        for a in alerts
        if (channel_id is None or a.channel_id == channel_id)
        and (detector is None or a.detector == detector)
    ]


def _newest_first(alerts: list[Alert], by_resolve: bool) -> list[Alert]:
    def when(a: Alert) -> float:
        return (a.resolved_at or a.updated_at) if by_resolve else a.opened_at

    return sorted(alerts, key=lambda a: (when(a), a.start, a.id), reverse=True)
