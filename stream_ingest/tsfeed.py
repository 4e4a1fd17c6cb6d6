"""From received MPEG-TS bytes to the bus: what every stream source (udp, rtp, srt) shares.

A receiver (a datagram socket, the SRT relay's pipe) hands bytes to one :class:`TsFeed`,
which frames them into packets, runs the transport checks (:mod:`stream_ingest.tr101290`),
cuts segments (:class:`~stream_ingest.ts.Segmenter`) and publishes them, exactly as the HLS
follower does: one :class:`SegmentMessage` per segment (``seq`` counts segments, going on
from the channel's recorded position when there is one), one :class:`StreamEvent`, one log
line and one ``vqm_ingest_errors{kind}`` count per finding::

    feed = TsFeed(channel, context, stream=False)
    await feed.data(datagram, loop.time())   # as bytes arrive
    await feed.tick(loop.time())             # at least once a second: input loss, timers
    await feed.end()                         # the rest of the segment in progress

No packets for ``ingest.ts.input_loss_after`` seconds is ``input_loss``: the segment in
progress is published, the next one waits for a keyframe and is marked a discontinuity, and
``recovered`` follows when packets come back.
"""

from __future__ import annotations

import logging

from monitor.core.channels import ChannelConfig
from monitor.core.messages import SegmentMessage, StreamEvent, StreamEventKind, encode_message, now
from monitor.core.redact import redact, redact_url
from stream_ingest.positions import Position
from stream_ingest.sources.base import SourceContext
from stream_ingest.tr101290 import CONDITIONS, Finding, TransportChecks
from stream_ingest.ts import Segmenter, TsFramer, TsSegment, parse_packet

logger = logging.getLogger(__name__)

K = StreamEventKind
# Findings that are news rather than trouble: logged at info.
_INFO = {K.RECOVERED, K.PROGRAM_CHANGED, K.DISCONTINUITY}


class TsFeed:
    """One channel's received transport stream; see the module docstring."""

    def __init__(
        self, channel: ChannelConfig, context: SourceContext, stream: bool = False
    ) -> None:
        self.channel = channel
        self.context = context
        self.settings = context.settings.ts
        self.framer = TsFramer(stream=stream)
        self.checks = TransportChecks(self.settings)
        self.segmenter = Segmenter(
            self.settings.segment_duration, self.settings.max_segment_duration
        )
        self.url = redact_url(channel.url)
        self.published = 0
        self.packets = 0
        self._seq: int | None = None
        self._last_data: float | None = None
        self._started: float | None = None
        self._lost = False

    async def data(self, chunk: bytes, arrival: float) -> None:
        """Bytes received at ``arrival`` (loop time)."""
        if self._lost:
            await self._input_back(arrival)
        self._last_data = arrival
        checks, segmenter = self.checks, self.segmenter
        segments: list[TsSegment] = []
        for raw in self.framer.feed(chunk):
            packet = parse_packet(raw)
            checks.packet(packet, arrival)
            segments += segmenter.feed(packet)
        self.packets += len(chunk) // 188
        checks.sync(self.framer, arrival)
        for segment in segments:
            await self._publish(segment)

    async def tick(self, arrival: float) -> None:
        """Timers: input loss, tables and PIDs that stopped, counts due for a report."""
        if self._started is None:
            self._started = arrival
        quiet_since = self._last_data if self._last_data is not None else self._started
        if not self._lost and arrival - quiet_since > self.settings.input_loss_after:
            await self._input_lost(arrival - quiet_since)
        if self._lost:
            return
        for finding in self.checks.poll(arrival):
            await self._finding(finding)

    async def end(self) -> None:
        """Publish the segment in progress (the input ended, or the source stops)."""
        segment = self.segmenter.flush()
        if segment is not None:
            await self._publish(segment)

    async def report(self, kind: StreamEventKind, detail: str, count: int = 1) -> None:
        """One stream finding: a log line, a metric (not for good news) and a bus event."""
        channel = self.channel.id
        level = logging.INFO if kind in _INFO else logging.WARNING
        logger.log(level, "channel %s: %s: %s (%s)", channel, kind.value, detail, self.url)
        if kind not in (K.RECOVERED, K.PROGRAM_CHANGED):
            self.context.metrics.ingest_errors.labels(channel=channel, kind=kind.value).inc(count)
        event = StreamEvent(
            channel_id=channel, kind=kind, detail=redact(detail), seq=self._seq, url=self.url
        )
        await self.context.bus.publish(
            self.context.topics.stream_events, key=channel, value=encode_message(event)
        )

    async def _finding(self, finding: Finding) -> None:
        await self.report(finding.kind, finding.detail, finding.count)

    async def _input_lost(self, quiet: float) -> None:
        self._lost = True
        self.context.metrics.ingest_up.labels(channel=self.channel.id).set(0)
        await self.end()  # what came before the loss, first
        for finding in self.checks.counts_now():
            await self._finding(finding)
        await self.report(K.INPUT_LOSS, f"no packets for {quiet:.1f} s")

    async def _input_back(self, arrival: float) -> None:
        self._lost = False
        self.checks.restart(arrival)
        self.framer = TsFramer(stream=self.framer.stream)
        still = ", ".join(k.value for k in self.checks.active if k in CONDITIONS)
        await self.report(
            K.RECOVERED, "packets arriving again" + (f"; still {still}" if still else "")
        )

    async def _next_seq(self) -> int:
        if self._seq is None:
            positions = self.context.positions
            position = None if positions is None else await positions.load(self.channel.id)
            self._seq = 0 if position is None else position.seq + 1
        else:
            self._seq += 1
        return self._seq

    async def _publish(self, segment: TsSegment) -> None:
        seq = await self._next_seq()
        cap = self.context.settings.max_segment_bytes
        if len(segment.payload) > cap:
            await self.report(
                K.OVERSIZE,
                f"segment {seq} of {len(segment.payload)} bytes is over {cap}; not published",
            )
            return
        message = SegmentMessage(
            channel_id=self.channel.id,
            seq=seq,
            uri=self.url,
            media_start=segment.media_start,
            duration=segment.duration,
            fetched_at=now(),
            discontinuity=segment.discontinuity,
            container="mpegts",
            codecs=segment.codecs,
            payload=segment.payload,
        )
        context = self.context
        await context.bus.publish(
            context.topics.segments, key=self.channel.id, value=encode_message(message)
        )
        self.published += 1
        metrics, channel = context.metrics, self.channel.id
        metrics.segments_ingested.labels(channel=channel).inc()
        metrics.ingest_up.labels(channel=channel).set(1)
        metrics.last_segment_timestamp.labels(channel=channel).set(message.fetched_at)
        logger.debug("channel %s: published segment %d (%.3f s)", channel, seq, segment.duration)
        if context.positions is not None:
            position = Position(
                seq=seq,
                media_end=segment.media_start + segment.duration,
                published_at=message.fetched_at,
            )
            await context.positions.save(channel, position)
