"""The alerting worker consumes the bus, commits after handling and stops within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry

from alerting.config import AlertingConfig
from alerting.engine import AlertEngine
from alerting.models import AlertEvent, AlertTransition
from alerting.worker import GROUP, AlertingWorker
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.bus import MemoryBus, Topics
from monitor.core.messages import (
    DefectSpan,
    DetectionMessage,
    StreamEvent,
    StreamEventKind,
    encode_message,
)
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore, StateError

TOPICS = Topics()
CONFIG = VqmConfig(
    channels=[ChannelConfig(id="news", url="http://origin/news.m3u8")],
    alerting=AlertingConfig(flap_window=0),  # resolve at recovery; flap holds tested apart
)


def detection(seq: int, frozen: bool) -> DetectionMessage:
    start = seq * 2.0
    spans = [DefectSpan(start=start, end=start + 2.0, confidence=0.9)] if frozen else []
    return DetectionMessage(
        channel_id="news",
        seq=seq,
        detector="black",
        media_start=start,
        media_end=start + 2.0,
        spans=spans,
        fetched_at=time.time(),
    )


async def publish(bus: MemoryBus, topic: str, msg: DetectionMessage | StreamEvent) -> None:
    await bus.publish(topic, msg.channel_id, encode_message(msg))


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Harness:
    def __init__(self, state: MemoryStateStore | None = None) -> None:
        self.bus = MemoryBus()
        self.events: list[AlertEvent] = []
        self.metrics = Metrics(CollectorRegistry())
        self.state = state or MemoryStateStore()
        self.engine = AlertEngine(CONFIG, self.state, self.metrics, [self._record])
        self.worker = AlertingWorker(self.bus, TOPICS, self.engine)
        self.stop = asyncio.Event()

    async def _record(self, event: AlertEvent) -> None:
        self.events.append(event)

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.worker.run(self.stop))

    async def finish(self, task: asyncio.Task[None]) -> float:
        began = time.monotonic()
        self.stop.set()
        await asyncio.wait_for(task, 3.0)
        return time.monotonic() - began

    def transitions(self) -> list[AlertTransition]:
        return [e.transition for e in self.events]


async def test_detections_and_stream_events_on_the_bus_become_alerts() -> None:
    h = Harness()
    task = h.start()
    await publish(h.bus, TOPICS.detections, detection(0, frozen=True))
    await publish(h.bus, TOPICS.detections, detection(1, frozen=False))
    await publish(
        h.bus, TOPICS.stream_events, StreamEvent(channel_id="news", kind=StreamEventKind.TIMEOUT)
    )
    await until(lambda: len(h.events) == 3)
    await h.finish(task)
    assert h.transitions() == [
        AlertTransition.OPENED,
        AlertTransition.RESOLVED,
        AlertTransition.OPENED,
    ]
    assert [e.alert.detector for e in h.events] == ["black", "black", "stream"]


async def test_the_worker_stops_within_a_second_when_idle() -> None:
    h = Harness()
    task = h.start()
    await asyncio.sleep(0.05)
    assert await h.finish(task) < 1.5


async def test_an_invalid_message_is_counted_and_skipped() -> None:
    h = Harness()
    task = h.start()
    await h.bus.publish(TOPICS.detections, "news", b"\x00\x00\x00\x02{}")
    await publish(h.bus, TOPICS.detections, detection(0, frozen=True))
    await until(lambda: len(h.events) == 1)
    await h.finish(task)
    invalid = h.metrics.registry.get_sample_value(
        "vqm_invalid_messages_total", {"topic": TOPICS.detections}
    )
    assert invalid == 1


async def test_handled_records_are_committed_so_a_new_member_does_not_repeat_them() -> None:
    state = MemoryStateStore()
    h = Harness(state)
    task = h.start()
    await publish(h.bus, TOPICS.detections, detection(0, frozen=True))
    await until(lambda: len(h.events) == 1)
    await h.finish(task)
    # A fresh process (same bus and store) picks up after the committed offset.
    consumer = h.bus.consumer([TOPICS.detections, TOPICS.stream_events], group=GROUP)
    assert await consumer.getmany(timeout_ms=10) == []


async def test_a_store_outage_is_retried_until_the_record_goes_through() -> None:
    h = Harness()
    original = h.state.set_if_absent
    failures = {"left": 2}

    async def flaky(ns: str, key: str, value: str, ttl: float | None = None) -> bool:
        if failures["left"]:
            failures["left"] -= 1
            raise StateError("redis unreachable")
        return await original(ns, key, value, ttl)

    h.state.set_if_absent = flaky  # type: ignore[method-assign]
    task = h.start()
    await publish(h.bus, TOPICS.detections, detection(0, frozen=True))
    await until(lambda: len(h.events) == 1)
    await h.finish(task)
    assert failures["left"] == 0
    assert h.transitions() == [AlertTransition.OPENED]


async def test_a_failing_message_is_skipped_and_the_worker_goes_on() -> None:
    h = Harness()
    handled: list[int] = []
    original: Callable[[DetectionMessage], Awaitable[None]] = h.engine.handle_detection

    async def picky(msg: DetectionMessage) -> None:
        if msg.seq == 0:
            raise ValueError("a bug on this message")
        handled.append(msg.seq)
        await original(msg)

    h.worker._routes[TOPICS.detections] = (DetectionMessage, picky)
    task = h.start()
    await publish(h.bus, TOPICS.detections, detection(0, frozen=True))
    await publish(h.bus, TOPICS.detections, detection(1, frozen=True))
    await until(lambda: handled == [1])
    await h.finish(task)
    assert h.worker.errors == 1


async def test_the_worker_ticks_so_silent_channels_go_down() -> None:
    h = Harness()
    await h.engine.handle_segment_seen("news", time.time() - 60, 2.0)
    task = h.start()
    await until(
        lambda: h.metrics.registry.get_sample_value("vqm_channel_up", {"channel": "news"}) == 0
    )
    await h.finish(task)
