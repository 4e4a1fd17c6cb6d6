"""Record a stream source for a while and yield its segments: ``vqm scan udp://...``.

    async for segment in record_segments("udp://@239.1.1.1:5000", IngestConfig(), seconds=30):
        ...   # SegmentMessage, as the live source publishes them

The channel's own source runs (the registry's, by scheme) with a bus of its own that hands
segments here. Recording ends after ``seconds`` of media, when the input stops (an
``input_loss`` after the first segment: a sender that finished) or, when nothing arrives at
all, after ``wait_first`` seconds with :class:`RecordError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from prometheus_client import CollectorRegistry

from monitor.core.bus import Bus, Consumer, Topics
from monitor.core.channels import ChannelConfig
from monitor.core.errors import VqmError
from monitor.core.messages import SegmentMessage, StreamEvent, StreamEventKind, decode_message
from monitor.core.metrics import Metrics
from stream_ingest.config import IngestConfig
from stream_ingest.sources.base import SourceContext
from stream_ingest.sources.registry import source_class

logger = logging.getLogger(__name__)

_STOP_SECONDS = 5.0


class RecordError(VqmError, RuntimeError):
    """Nothing could be recorded from the stream; the message says why."""


class _HandOver(Bus):
    """A bus that hands what the source publishes to the recorder, in order."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self.queue: asyncio.Queue[SegmentMessage | StreamEvent] = asyncio.Queue()

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        if topic == self.topics.segments:
            self.queue.put_nowait(decode_message(value, SegmentMessage))
        elif topic == self.topics.stream_events:
            self.queue.put_nowait(decode_message(value, StreamEvent))

    def consumer(self, topics: list[str], group: str) -> Consumer:
        raise NotImplementedError("the recorder's bus is publish-only")


async def record_segments(
    url: str,
    settings: IngestConfig,
    seconds: float,
    *,
    channel_id: str = "scan",
    wait_first: float = 10.0,
) -> AsyncGenerator[SegmentMessage, None]:
    """Yield the stream's segments until ``seconds`` of media, or the input stops."""
    channel = ChannelConfig(id=channel_id, url=url)
    topics = Topics()
    bus = _HandOver(topics)
    context = SourceContext(settings, bus, topics, Metrics(CollectorRegistry()))
    source = source_class(url)(channel, context)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop), name=f"record-{channel_id}")
    loop = asyncio.get_running_loop()
    started, recorded, segments = loop.time(), 0.0, 0
    try:
        while recorded < seconds:
            if task.done():
                task.result()  # a source that failed says why
                return
            try:
                item = await asyncio.wait_for(bus.queue.get(), 0.5)
            except TimeoutError:
                if not segments and loop.time() - started > wait_first:
                    raise RecordError(f"no MPEG-TS arrived within {wait_first:g} s") from None
                continue
            if isinstance(item, SegmentMessage):
                segments += 1
                recorded += item.duration
                yield item
            elif item.kind is StreamEventKind.INPUT_LOSS and segments:
                logger.info("%s: input stopped after %.1f s of media", channel_id, recorded)
                return
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, _STOP_SECONDS)
