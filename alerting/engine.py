"""The alert state machine: detections and stream events in, alert transitions out.

Each (channel, detector) pair has an :class:`~alerting.intervals.IntervalTracker` whose state
lives in the state store, not in this object, so a restarted (or rebalanced) alerting
process carries on with the same open defects and never opens them twice. Every transition
is persisted first and then handed to the listeners (console, the paging outbox), which
are the seam for paging.

Two things keep on-call from being paged needlessly. A recovered alert is held open for
``alerting.flap_window`` seconds and carries on if its defect comes back within them, so a
flapping defect is one alert and one page. An alert a silence matches is recorded and shown
but its events say so (``AlertEvent.pages`` is False), and it pages when the silence ends
while it is still open. On a channel with ``ad_breaks: suppress``, black and silence that begin
inside an ad break the stream signals (``ad_break_start``/``ad_break_end`` stream events name
its segments; the first detections of those segments place it on the PTS timeline) are held
back the same way, by the break instead of a silence, and page only if they outlast it.

    engine = AlertEngine(config, MemoryStateStore(), Metrics(), [print_alert])
    await engine.start()
    await engine.handle_detection(detection)   # idempotent on (channel, seq, detector)
    await engine.handle_stream_event(event)
    await engine.tick()                        # about once a second: channels gone quiet
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from alerting.config import AlertingView
from alerting.intervals import IntervalChange
from alerting.models import Alert, AlertEvent, AlertState, AlertTransition, Silence
from alerting.store import (
    AdBreak,
    AlertStore,
    ChannelHealth,
    Measurements,
    Thumbnail,
    alert_key,
)
from monitor.core.channels import ChannelConfig, parent_channel_id
from monitor.core.logs import log_context, trace_id_for
from monitor.core.messages import DetectionMessage, StreamEvent, StreamEventKind, now
from monitor.core.metrics import Metrics
from monitor.core.state import StateStore

logger = logging.getLogger(__name__)

Listener = Callable[[AlertEvent], Awaitable[None]]

STREAM_DETECTOR = "stream"
# Ingest findings that mean viewers get nothing: the alert resolves once segments flow again
# (or at ``recovered``). The rest are recorded on the channel only (counted errors such as
# continuity_error are metrics: their effect on the picture is the detectors' to judge).
STREAM_ALERT_KINDS = frozenset(
    {
        StreamEventKind.STALE_PLAYLIST,
        StreamEventKind.HTTP_ERROR,
        StreamEventKind.TIMEOUT,
        StreamEventKind.PLAYLIST_PARSE,
        StreamEventKind.INPUT_LOSS,
        StreamEventKind.TS_SYNC_LOSS,
    }
)
# What an ad break may make: black and silence between programme and ads are the break, not
# a fault. They are held back when they begin within the break (or this long before its
# splice point: a fade to black ahead of the cue) and page if they outlast it by more.
AD_BREAK_DETECTORS = frozenset({"black", "silence"})
AD_BREAK_SLACK = 1.0
AD_BREAK_SILENCE = "ad-break"
# Renditions kept per ``variant: all`` channel (packagers list a handful; a bound all the same).
_MAX_RENDITIONS = 32
KEPT_AD_BREAKS = 8

# Transport conditions a stream can have while its segments keep coming (TR 101 290: no PAT,
# no PMT, the audio or video PID gone): the alert lasts until ``recovered``, which the TS
# sources send once every condition has cleared.
STREAM_CONDITION_KINDS = frozenset(
    {StreamEventKind.PAT_ERROR, StreamEventKind.PMT_ERROR, StreamEventKind.PID_ERROR}
)
_CONDITION_LABELS = frozenset(k.value for k in STREAM_CONDITION_KINDS)
DEFAULT_SEGMENT_SECONDS = 6.0
DOWN_AFTER_SEGMENTS = 3.0
# Weight of the newest analysed span in the typical segment duration (an EWMA).
_DURATION_WEIGHT = 0.2


def alert_id(channel_id: str, detector: str, label: str | None, start: float) -> str:
    """Stable for one defect: a replay or a restart finds the same id (notifier dedup key)."""
    text = f"{channel_id}|{detector}|{label or ''}|{start:.3f}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def dedup_key(msg: DetectionMessage) -> str:
    """The message's idempotency key plus its media start.

    A replay repeats both; an encoder restart that starts the media sequence again at 0
    within the key's TTL repeats only the sequence number, and must not be mistaken for one.
    """
    return f"{msg.idempotency_key}:{msg.media_start:.3f}"


class AlertEngine:
    """Turns detections and stream events into persisted alerts and listener calls.

    One caller at a time feeds it (the alerting worker); a lock keeps that true when a
    later feature (an API action) calls in from another task.
    """

    def __init__(
        self,
        config: AlertingView,
        state: StateStore,
        metrics: Metrics,
        listeners: Sequence[Listener] = (),
        *,
        clock: Callable[[], float] = now,
    ) -> None:
        self.config = config
        self.store = AlertStore(state)
        self.metrics = metrics
        self.listeners: list[Listener] = list(listeners)
        self.listener_errors = 0
        self.flap_window = config.alerting.flap_window
        self._clock = clock
        self._lock = asyncio.Lock()
        self._started_at: float | None = None

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    async def start(self) -> None:
        """Set the active-alert gauges from the store (they start at zero in a new process)."""
        counts = Counter((a.channel_id, a.detector, a.severity) for a in await self.store.active())
        for (channel_id, detector, severity), count in counts.items():
            self.metrics.active_alerts.labels(
                channel=channel_id, detector=detector, severity=severity
            ).set(count)
        self._started_at = self._clock()

    # -- detections ----------------------------------------------------------------------
    async def handle_detection(self, msg: DetectionMessage) -> None:
        """Feed one detector result; a replay of a handled one does nothing."""
        trace = trace_id_for(msg.channel_id, msg.seq)
        with log_context(
            channel=msg.channel_id, seq=msg.seq, detector=msg.detector, trace_id=trace
        ):
            await self._handle_detection(msg)

    async def _handle_detection(self, msg: DetectionMessage) -> None:
        channel = self._channel(msg.channel_id)
        if channel is None:
            return
        key = dedup_key(msg)
        if not await self.store.first_time(key):
            logger.debug("detection %s already handled; skipping", key)
            return
        try:
            async with self._lock:
                await self._apply_detection(channel, msg)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.forget(key)  # let the redelivery try again
            raise

    async def _apply_detection(self, channel: ChannelConfig, msg: DetectionMessage) -> None:
        await self._segment_seen(
            channel.id, msg.fetched_at, msg.media_end - msg.media_start, placed=msg
        )
        if msg.thumbnail_jpeg:
            await self._keep_thumbnail(msg)
        if msg.measurements:
            await self._keep_measurements(msg)
        if msg.error:
            logger.info(
                "%s seq %d: %s gave no verdict: %s", channel.id, msg.seq, msg.detector, msg.error
            )
            return  # neither clean nor defective: the tracker never hears of it
        settings = self.config.detectors_for(channel).get(msg.detector)
        if settings is None:
            logger.warning(
                "%s: detection from unknown or disabled detector %r; skipping",
                channel.id,
                msg.detector,
            )
            return
        tracker = await self.store.load_tracker(
            channel.id,
            msg.detector,
            settings.min_duration,
            settings.recovery,
            settings.label_min_durations(),
        )
        changes = tracker.feed(msg.media_start, msg.media_end, msg.spans)
        severity = settings.severity or channel.severity
        for change in changes:
            await self._apply_change(channel, msg.detector, severity, change)
        await self.store.save_tracker(channel.id, msg.detector, tracker)

    async def _apply_change(
        self, channel: ChannelConfig, detector: str, severity: str, change: IntervalChange
    ) -> None:
        existing = await self.store.get_active(alert_key(channel.id, detector, change.label))
        if change.transition is AlertTransition.RESOLVED:
            if existing is not None:
                await self._recovered(existing, change.end)
            return
        if existing is None:
            await self._open(channel, detector, severity, change)
        elif existing.resolving_since is not None:
            await self._update(existing, change.end, change.confidence, notify=True)  # a flap
        elif change.transition is AlertTransition.OPENED and existing.id != alert_id(
            channel.id, detector, change.label, change.start
        ):
            await self._resolve(existing, existing.end)  # a leftover from lost tracker state
            await self._open(channel, detector, severity, change)
        else:
            # An update, or an open that was already persisted (a retry): never notify twice.
            notify = change.transition is AlertTransition.UPDATED
            await self._update(existing, change.end, change.confidence, notify=notify)
            if existing.silenced_by == AD_BREAK_SILENCE:
                await self._outlasted_ad_break(existing)

    # -- stream events -------------------------------------------------------------------
    async def handle_stream_event(self, ev: StreamEvent) -> None:
        """Record an ingest finding; outages open a ``stream`` alert, ``recovered`` ends them."""
        with log_context(channel=ev.channel_id, detector="stream"):
            await self._handle_stream_event(ev)

    async def _handle_stream_event(self, ev: StreamEvent) -> None:
        channel = self._channel(ev.channel_id)
        if channel is None:
            return
        async with self._lock:
            health = await self._health(channel.id)
            health.last_event, health.last_event_at = ev.kind.value, ev.at
            await self.store.put_channel(health)
            if ev.kind is StreamEventKind.RECOVERED:
                await self._resolve_stream_alerts(channel.id, before=None, end=ev.at)
            elif ev.kind in (StreamEventKind.AD_BREAK_START, StreamEventKind.AD_BREAK_END):
                _note_ad_break(health, ev)
                await self.store.put_channel(health)
            elif ev.kind in STREAM_CONDITION_KINDS:
                await self._stream_problem(channel, ev)
            elif ev.kind in STREAM_ALERT_KINDS:
                if health.last_segment_at is not None and ev.at < health.last_segment_at:
                    logger.debug(
                        "%s: %s predates the newest segment; ignoring", channel.id, ev.kind
                    )
                    return
                await self._stream_problem(channel, ev)

    async def _stream_problem(self, channel: ChannelConfig, ev: StreamEvent) -> None:
        existing = await self.store.get_active(alert_key(channel.id, STREAM_DETECTOR, ev.kind))
        if existing is not None:
            await self._update(existing, ev.at, 1.0, notify=True)
            return
        change = IntervalChange(
            transition=AlertTransition.OPENED,
            label=ev.kind.value,
            start=ev.at,
            end=ev.at,
            confidence=1.0,
        )
        await self._open(channel, STREAM_DETECTOR, channel.severity, change, detail=ev.detail)

    async def _resolve_stream_alerts(
        self, channel_id: str, before: float | None, end: float
    ) -> None:
        """Resolve the channel's stream alerts (only those opened before ``before`` if given)."""
        for alert in await self.store.active(channel_id, STREAM_DETECTOR):
            if before is not None and alert.label in _CONDITION_LABELS:
                continue  # segments flow while these last: only ``recovered`` ends them
            if before is None or alert.start < before:
                await self._recovered(alert, max(end, alert.end))

    # -- ad breaks -----------------------------------------------------------------------
    async def _in_ad_break(self, channel: ChannelConfig, detector: str, start: float) -> bool:
        """A defect of ``detector`` beginning at ``start`` (media seconds) is the ad break's."""
        if channel.ad_breaks != "suppress" or detector not in AD_BREAK_DETECTORS:
            return False
        return _ad_break_at(await self._health(channel.id), start) is not None

    async def _outlasted_ad_break(self, alert: Alert) -> None:
        """An alert the break held back pages once its defect goes on past the break's end."""
        held = _ad_break_at(await self._health(alert.channel_id), alert.start)
        end = held[1] if held is not None else None
        if held is not None and (end is None or alert.end <= end + AD_BREAK_SLACK):
            return
        logger.info("alert %s outlasted its ad break; paging it", alert.id)
        alert.silenced_by, alert.unpaged = None, False
        await self.store.put_active(alert)
        await self._notify(AlertEvent(transition=AlertTransition.OPENED, alert=alert))

    async def _keep_measurements(self, msg: DetectionMessage) -> None:
        await self.store.put_measurements(
            Measurements(
                channel_id=msg.channel_id,
                detector=msg.detector,
                values=msg.measurements,
                at=msg.fetched_at,
            )
        )

    async def _keep_thumbnail(self, msg: DetectionMessage) -> None:
        """The newest picture per channel; an older segment's (a replay) does not replace it."""
        assert msg.thumbnail_jpeg is not None
        current = await self.store.get_thumbnail(msg.channel_id)
        if current is not None and current.at > msg.fetched_at:
            return
        await self.store.put_thumbnail(
            Thumbnail(
                channel_id=msg.channel_id,
                jpeg_base64=msg.thumbnail_jpeg,
                seq=msg.seq,
                at=msg.fetched_at,
            )
        )

    # -- channel health ------------------------------------------------------------------
    async def handle_segment_seen(
        self, channel_id: str, fetched_at: float, duration: float | None = None
    ) -> None:
        """Ingest delivered a segment fetched at ``fetched_at``: the channel is up."""
        if self._channel(channel_id) is None:
            return
        async with self._lock:
            await self._segment_seen(channel_id, fetched_at, duration)

    async def _segment_seen(
        self,
        channel_id: str,
        fetched_at: float,
        duration: float | None,
        placed: DetectionMessage | None = None,
    ) -> None:
        health = await self._health(channel_id)
        if placed is not None:
            for ad_break in health.ad_breaks:
                ad_break.place(placed.seq, placed.media_start)
        health.last_segment_at = max(fetched_at, health.last_segment_at or fetched_at)
        health.last_detection_at = self._clock()
        if duration is not None and duration > 0:
            old = health.segment_duration
            health.segment_duration = (
                duration
                if old is None
                else ((1 - _DURATION_WEIGHT) * old + _DURATION_WEIGHT * duration)
            )
        self._set_up(health, self._is_up(health, self._clock()))
        await self.store.put_channel(health)
        self.metrics.last_segment_timestamp.labels(channel=channel_id).set(health.last_segment_at)
        await self._resolve_stream_alerts(channel_id, before=fetched_at, end=fetched_at)
        parent = self._parent_of(channel_id)
        if parent is not None:
            await self._rendition_seen(parent, channel_id, fetched_at, health.segment_duration)

    async def _rendition_seen(
        self, parent: str, channel_id: str, fetched_at: float, duration: float | None
    ) -> None:
        """A ``variant: all`` channel is up while any of its renditions delivers (its master
        playlist's problems are its own stream alerts, resolved here); each rendition seen is
        kept so that it is checked for going down like a channel of its own."""
        health = await self._health(parent)
        health.last_segment_at = max(fetched_at, health.last_segment_at or fetched_at)
        health.segment_duration = duration or health.segment_duration
        if channel_id not in health.renditions and len(health.renditions) < _MAX_RENDITIONS:
            health.renditions.append(channel_id)
        self._set_up(health, self._is_up(health, self._clock()))
        await self.store.put_channel(health)
        await self._resolve_stream_alerts(parent, before=fetched_at, end=fetched_at)

    def _parent_of(self, channel_id: str) -> str | None:
        """The ``variant: all`` channel a sub-channel id (``news@720p``) is a rendition of."""
        parent = parent_channel_id(channel_id)
        if parent is None:
            return None
        try:
            return parent if self.config.channel(parent).variant == "all" else None
        except KeyError:
            return None

    async def tick(self, at: float | None = None) -> None:
        """About once a second: channels gone quiet, held resolves due, silences changed."""
        at = self._clock() if at is None else at
        if self._started_at is None:
            self._started_at = at
        async with self._lock:
            await self._check_channels(at)
            await self._finish_held(at)
            await self._review_silences(at)

    async def _check_channels(self, at: float) -> None:
        """Mark channels down that delivered nothing for 3 typical segment durations."""
        for channel_id in await self._watched():
            health = await self._health(channel_id)
            up = self._is_up(health, at)
            changed = up is not None and up != health.up
            self._set_up(health, up)  # sets the gauge even unchanged: a new process
            if changed:
                await self.store.put_channel(health)

    async def _watched(self) -> list[str]:
        """The configured channels and the renditions seen of those with ``variant: all``."""
        watched = []
        for channel in self.config.channels:
            watched.append(channel.id)
            if channel.variant == "all":
                watched += (await self._health(channel.id)).renditions
        return watched

    def _is_up(self, health: ChannelHealth, at: float) -> bool | None:
        """None while a channel never seen is still within its start-up grace."""
        limit = DOWN_AFTER_SEGMENTS * (health.segment_duration or DEFAULT_SEGMENT_SECONDS)
        if health.last_segment_at is None:
            started = self._started_at if self._started_at is not None else at
            return False if at - started > limit else None
        return at - health.last_segment_at <= limit

    def _set_up(self, health: ChannelHealth, up: bool | None) -> None:
        if up is None:
            return
        if up != health.up:
            logger.log(
                logging.INFO if up else logging.WARNING,
                "channel %s is %s",
                health.channel_id,
                "up" if up else "down",
            )
            health.up, health.changed_at = up, self._clock()
        self.metrics.channel_up.labels(channel=health.channel_id).set(1 if up else 0)

    async def _health(self, channel_id: str) -> ChannelHealth:
        return await self.store.get_channel(channel_id) or ChannelHealth(channel_id=channel_id)

    # -- flaps and silences --------------------------------------------------------------
    async def _recovered(self, alert: Alert, end: float) -> None:
        """The defect is over: resolve now, or hold the resolve for the flap window."""
        if self.flap_window <= 0:
            await self._resolve(alert, end)
            return
        alert.end = max(alert.end, end)
        if alert.resolving_since is None:
            alert.resolving_since = self._clock()
            logger.info(
                "alert %s recovered; resolving in %.0f s unless it comes back",
                alert.id,
                self.flap_window,
            )
        await self.store.put_active(alert)

    async def _finish_held(self, at: float) -> None:
        """Resolve the held alerts whose defect stayed away for the whole flap window."""
        for alert in await self.store.active():
            since = alert.resolving_since
            if since is not None and at - since >= self.flap_window:
                await self._resolve(alert, alert.end)

    async def _review_silences(self, at: float) -> None:
        """Follow silences made or ended since: an alert whose silence ended pages now."""
        silences = await self.store.silences()
        for alert in await self.store.active():
            if alert.silenced_by == AD_BREAK_SILENCE:
                continue  # held by an ad break, not by a silence: see _outlasted_ad_break
            silence = _matching(silences, alert, at)
            silenced_by = silence.id if silence is not None else None
            if silenced_by == alert.silenced_by:
                continue
            alert.silenced_by = silenced_by
            page_now = silenced_by is None and alert.unpaged and alert.resolving_since is None
            if page_now:
                alert.unpaged = False
            await self.store.put_active(alert)
            if page_now:
                logger.info("alert %s is no longer silenced; paging it", alert.id)
                await self._notify(AlertEvent(transition=AlertTransition.OPENED, alert=alert))

    # -- transitions ---------------------------------------------------------------------
    async def _open(
        self,
        channel: ChannelConfig,
        detector: str,
        severity: str,
        change: IntervalChange,
        detail: str = "",
    ) -> None:
        at = self._clock()
        what = detector + (f"/{change.label}" if change.label else "")
        alert = Alert(
            id=alert_id(channel.id, detector, change.label, change.start),
            channel_id=channel.id,
            detector=detector,
            label=change.label,
            severity=severity,
            start=change.start,
            end=change.end,
            confidence=change.confidence,
            offset_ms=change.offset_ms,
            opened_at=at,
            updated_at=at,
            summary=f"{what} on {channel.display_name}" + (f": {detail}" if detail else ""),
        )
        silence = _matching(await self.store.silences(), alert, at)
        if silence is not None:
            alert.silenced_by, alert.unpaged = silence.id, True
            logger.info("alert %s is silenced by %s: not paged", alert.id, silence.id)
        elif await self._in_ad_break(channel, detector, change.start):
            alert.silenced_by, alert.unpaged = AD_BREAK_SILENCE, True
            logger.info("alert %s began in an ad break: not paged unless it outlasts it", alert.id)
        alert.picture = await self.store.keep_picture(alert)
        await self.store.put_active(alert)
        self.metrics.alerts_opened.labels(channel=channel.id, detector=detector).inc()
        await self._after(AlertTransition.OPENED, alert)

    async def _update(self, alert: Alert, end: float, confidence: float, notify: bool) -> None:
        if alert.resolving_since is not None:
            logger.info("alert %s came back within the flap window; it carries on", alert.id)
            alert.resolving_since = None
            alert.flaps += 1
        alert.end = max(alert.end, end)
        alert.confidence = max(alert.confidence, confidence)
        alert.updated_at = self._clock()
        await self.store.put_active(alert)
        if notify:
            await self._notify(AlertEvent(transition=AlertTransition.UPDATED, alert=alert))

    async def _resolve(self, alert: Alert, end: float) -> None:
        at = self._clock()
        alert.state, alert.end = AlertState.RESOLVED, end
        alert.updated_at = alert.resolved_at = at
        await self.store.resolve(alert)
        await self._after(AlertTransition.RESOLVED, alert)

    async def _after(self, transition: AlertTransition, alert: Alert) -> None:
        """Gauges follow the store (not +1/-1), so they stay right across restarts.

        Only the series of this alert's severity changes; an alert opened before the channel's
        severity was changed keeps the severity it was paged with, and its own series.
        """
        same = await self.store.active(alert.channel_id, alert.detector)
        count = sum(a.severity == alert.severity for a in same)
        self.metrics.active_alerts.labels(
            channel=alert.channel_id, detector=alert.detector, severity=alert.severity
        ).set(count)
        with log_context(channel=alert.channel_id, detector=alert.detector, alert_id=alert.id):
            logger.info("alert %s %s: %s", alert.id, transition.value, alert.summary)
            await self._notify(AlertEvent(transition=transition, alert=alert.model_copy()))

    async def _notify(self, event: AlertEvent) -> None:
        for listener in self.listeners:
            try:
                await listener(event)
            except Exception:
                # A broken notifier must not stop alerting or the other notifiers.
                self.listener_errors += 1
                self.metrics.alerting_errors.labels(where="listener").inc()
                logger.exception("alert listener %r failed on %s", listener, event.alert.id)

    def _channel(self, channel_id: str) -> ChannelConfig | None:
        try:
            return self.config.channel(channel_id)
        except KeyError:
            logger.warning("message for unknown channel %r; skipping", channel_id)
            return None


def _note_ad_break(health: ChannelHealth, ev: StreamEvent) -> None:
    """Keep the break an ``ad_break_start``/``_end`` event opens or closes (by segment)."""
    if ev.seq is None:
        return
    breaks = health.ad_breaks
    open_break = bool(breaks) and breaks[-1].end_seq is None
    if ev.kind is StreamEventKind.AD_BREAK_START and not open_break:
        breaks.append(AdBreak(start_seq=ev.seq))
    elif ev.kind is StreamEventKind.AD_BREAK_END and open_break:
        breaks[-1].end_seq = ev.seq
    del breaks[:-KEPT_AD_BREAKS]


def _ad_break_at(health: ChannelHealth, start: float) -> tuple[float, float | None] | None:
    """The ad break (PTS start, end or None while on) a defect beginning at ``start`` falls in."""
    for ad_break in reversed(health.ad_breaks):
        began, ended = ad_break.start, ad_break.end
        if began is None:
            continue  # not placed yet: none of its pictures has been analysed
        if began - AD_BREAK_SLACK <= start and (ended is None or start < ended):
            return began, ended
    return None


def _matching(silences: list[Silence], alert: Alert, at: float) -> Silence | None:
    return next((s for s in silences if s.matches(alert, at)), None)
