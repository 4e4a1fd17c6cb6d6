"""`vqm run` for many segments: the memory bus holds only what is in flight, not the history.

Before the bus dropped committed records, a one-process run grew by the channel's bitrate
for as long as it ran (about 1.9 GB an hour for one 720p channel).
"""

from __future__ import annotations

import asyncio
import time

from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.runtime import Runtime
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.hls_server import LiveHlsServer
from monitor.core.bus import MemoryBus, Topics
from monitor.core.settings import Settings
from stream_ingest.config import IngestConfig
from tests.conftest import free_port

SEGMENTS = 60
BOUND = 20  # in flight at most: a few playlist reloads' worth, far below SEGMENTS


class WatchedBus(MemoryBus):
    """Remembers the most records it ever held per topic."""

    def __init__(self) -> None:
        super().__init__()
        self.most: dict[str, int] = {}

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        await super().publish(topic, key, value)
        self.most[topic] = max(self.most.get(topic, 0), self.held(topic))


async def test_a_long_one_process_run_holds_a_bounded_number_of_records() -> None:
    topics, bus = Topics(), WatchedBus()
    # Five segments a second, so a live run reaches SEGMENTS in seconds.
    channel = SyntheticChannel(seed=77, segment_duration=0.2, width=160, height=96)
    async with LiveHlsServer({"long": channel}, port=0) as origin:
        config = VqmConfig(
            channels=[ChannelConfig(id="long", url=origin.playlist_url("long"))],
            ingest=IngestConfig(start="first"),
        )
        runtime = Runtime(config, Settings(api_port=free_port()), bus=bus)
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        deadline = time.monotonic() + 120
        while bus.published(topics.segments) < SEGMENTS or bus.held(topics.segments):
            assert time.monotonic() < deadline, (bus.published(topics.segments), bus.most)
            assert not task.done(), task
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 30)
    assert bus.published(topics.detections) >= SEGMENTS
    for topic in (topics.segments, topics.detections):
        assert 0 < bus.most[topic] <= BOUND, bus.most
    assert bus.held(topics.detections) <= BOUND
