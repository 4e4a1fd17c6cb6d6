"""Ingest hand-overs on a real Redis and a real HLS origin: the worker that takes a channel
carries on after the last segment the previous one published, so no sequence number is lost.

Two ingest workers (:class:`OwnedIngest`, each with a Redis client of its own, as two
processes have) share one memory bus; a synthetic live origin serves the channels over
loopback. A second worker joining is a planned hand-over (the first sheds half its
channels); a worker that dies is a take-over once its leases expire, a lease period or two
in which nobody fetches its channels' new segments.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry

from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.hls_server import LiveHlsServer
from monitor.core.bus import MemoryBus
from monitor.core.messages import SegmentMessage, StreamEvent, decode_message
from monitor.core.metrics import Metrics
from monitor.core.state_redis import RedisStateStore
from stream_ingest.leases import ChannelLeases
from stream_ingest.owned import OwnedIngest
from tests.conftest import free_port
from tests.integration.conftest import cancel_and_wait, wait_for

pytestmark = pytest.mark.integration

TTL = 1.5
IDS = ["h0", "h1", "h2", "h3"]


class Published:
    """Everything the workers published, read from the memory bus as it comes."""

    def __init__(self, bus: MemoryBus, config: VqmConfig) -> None:
        self._segments = bus.consumer([config.topics.segments], group="test-segments")
        self._events = bus.consumer([config.topics.stream_events], group="test-events")
        self.seqs: dict[str, list[int]] = defaultdict(list)
        self.events: list[StreamEvent] = []

    async def collect(self) -> None:
        for record in await self._segments.getmany(timeout_ms=0, max_records=10_000):
            segment = decode_message(record.value, SegmentMessage)
            self.seqs[segment.channel_id].append(segment.seq)
        for record in await self._events.getmany(timeout_ms=0, max_records=10_000):
            self.events.append(decode_message(record.value, StreamEvent))

    def newest(self) -> dict[str, int]:
        return {cid: max(seqs) for cid, seqs in self.seqs.items() if seqs}


class Worker:
    """One ingest worker: its own Redis client, leases and followers, on the shared bus."""

    def __init__(self, config: VqmConfig, bus: MemoryBus, redis_url: str, ns: str, name: str):
        self.store = RedisStateStore(redis_url, deployment=ns)
        leases = ChannelLeases(self.store, name, ttl=TTL)
        self.ingest = OwnedIngest(config, bus, Metrics(CollectorRegistry()), leases)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.ingest.run(self.stop), name=f"worker-{name}")

    async def crash(self) -> None:
        """Stop at once without handing anything back: its leases are left to expire."""
        await cancel_and_wait(self.task)

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
        await self.store.stop()


@pytest.fixture
async def origin() -> AsyncIterator[LiveHlsServer]:
    channels = {
        cid: SyntheticChannel(seed=i, segment_duration=1.0, width=160, height=96)
        for i, cid in enumerate(IDS)
    }
    server = LiveHlsServer(channels, port=free_port(), window=6)
    await server.start()
    yield server
    await server.stop()


async def _until(condition: Callable[[], object], timeout: float, what: str) -> None:
    if not await wait_for(condition, timeout, interval=0.1):
        pytest.fail(f"{what}: not within {timeout} s")


def _missing(seqs: list[int]) -> list[int]:
    """Sequence numbers between the first and the last published that never were."""
    return sorted(set(range(min(seqs), max(seqs) + 1)) - set(seqs))


async def test_a_hand_over_and_a_take_over_after_a_crash_publish_every_sequence_number(
    origin: LiveHlsServer, redis_url: str, namespace: str
) -> None:
    config = VqmConfig(
        channels=[ChannelConfig(id=cid, url=origin.playlist_url(cid)) for cid in IDS]
    )
    bus = MemoryBus()
    published = Published(bus, config)

    async def each_channel_moved_on(since: dict[str, int], by: int) -> bool:
        await published.collect()
        newest = published.newest()
        return all(newest.get(cid, -1) >= since.get(cid, -1) + by for cid in IDS)

    first = Worker(config, bus, redis_url, namespace, "first")
    second: Worker | None = None
    try:
        await _until(lambda: each_channel_moved_on({}, 2), 60, "the first worker publishing")

        second = Worker(config, bus, redis_url, namespace, "second")
        await _until(
            lambda: len(second.ingest.following) == 2 and len(first.ingest.following) == 2,
            10 * TTL,
            "a planned hand-over of two channels",
        )
        handed = set(second.ingest.following)
        at_hand_over = published.newest()
        await _until(lambda: each_channel_moved_on(at_hand_over, 2), 30, "both publishing")

        await second.crash()
        at_crash = published.newest()
        await _until(
            lambda: first.ingest.following == set(IDS), 4 * TTL, "the take-over after the crash"
        )
        await _until(lambda: each_channel_moved_on(at_crash, 3), 30, "publishing after it")
        await second.store.stop()
    finally:
        await first.shutdown()
        if second is not None and not second.task.done():
            await second.crash()
            await second.store.stop()
    await published.collect()

    assert len(handed) == 2
    assert {cid: _missing(published.seqs[cid]) for cid in IDS} == {cid: [] for cid in IDS}
    assert [e for e in published.events if e.kind.value == "gap"] == []
