"""The ingest service: one follower per selected channel, stopped together and promptly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.bus import MemoryBus
from monitor.core.messages import SegmentMessage, decode_message
from monitor.core.metrics import Metrics
from stream_ingest.config import IngestConfig
from stream_ingest.service import IngestService
from tests.unit.stream_ingest.origin import Origin, Response, segment_bytes

LIVE = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nseg0.ts\n#EXTINF:1,\nseg1.ts\n"


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = Origin()
    server.routes["/live.m3u8"] = Response(body=LIVE)
    server.routes["/vod.m3u8"] = Response(body=LIVE + b"#EXT-X-ENDLIST\n")
    for seq in (0, 1):
        server.routes[f"/seg{seq}.ts"] = Response(body=segment_bytes(seq))
    await server.start()
    yield server
    await server.stop()


def config(origin: Origin, path: str = "/live.m3u8") -> VqmConfig:
    return VqmConfig(
        channels=[ChannelConfig(id=cid, url=origin.url(path)) for cid in ("news", "sport", "kids")],
        ingest=IngestConfig(start="first", request_timeout=0.5),
    )


async def published(bus: MemoryBus, topic: str) -> list[SegmentMessage]:
    consumer = bus.consumer([topic], group="test")
    return [decode_message(r.value, SegmentMessage) for r in await consumer.getmany(0, 1000)]


async def test_each_selected_channel_is_followed_and_all_stop_within_a_second(
    origin: Origin,
) -> None:
    cfg, bus, stop = config(origin), MemoryBus(), asyncio.Event()
    service = IngestService(cfg, bus, Metrics(CollectorRegistry()), channel_ids=["news", "kids"])
    task = asyncio.create_task(service.run(stop))
    deadline = time.monotonic() + 3
    while bus.published(cfg.topics.segments) < 4:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(task, timeout=2)
    assert time.monotonic() - started < 1.0
    segments = await published(bus, cfg.topics.segments)
    by_channel = {cid: [s.seq for s in segments if s.channel_id == cid] for cid in ("news", "kids")}
    assert by_channel == {"news": [0, 1], "kids": [0, 1]}
    assert all(s.channel_id != "sport" for s in segments)


async def test_without_a_selection_every_channel_is_followed_and_vod_channels_end_the_run(
    origin: Origin,
) -> None:
    cfg, bus = config(origin, "/vod.m3u8"), MemoryBus()
    service = IngestService(cfg, bus, Metrics(CollectorRegistry()))
    await asyncio.wait_for(service.run(asyncio.Event()), timeout=3)
    segments = await published(bus, cfg.topics.segments)
    assert sorted((s.channel_id, s.seq) for s in segments) == [
        (cid, seq) for cid in ("kids", "news", "sport") for seq in (0, 1)
    ]


async def test_cancelling_the_service_cancels_and_awaits_its_followers(origin: Origin) -> None:
    service = IngestService(config(origin), MemoryBus(), Metrics(CollectorRegistry()))
    task = asyncio.create_task(service.run(asyncio.Event()))
    await asyncio.sleep(0.2)
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0


def test_an_unknown_channel_id_is_refused_by_name(origin: Origin) -> None:
    with pytest.raises(ValueError, match="unknown channel ids: weather"):
        IngestService(config(origin), MemoryBus(), Metrics(), channel_ids=["news", "weather"])


async def test_each_channel_has_a_connection_pool_of_its_own_closed_when_it_stops(
    origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpcore walks every connection of a pool on each request: one pool shared by every
    channel made each request cost in proportion to the channels."""
    import stream_ingest.service as service_module
    from stream_ingest.fetch import make_client

    made: list[httpx.AsyncClient] = []

    def client(settings: IngestConfig) -> httpx.AsyncClient:
        made.append(make_client(settings))
        return made[-1]

    monkeypatch.setattr(service_module, "make_client", client)
    cfg, bus = config(origin, "/vod.m3u8"), MemoryBus()
    await asyncio.wait_for(IngestService(cfg, bus, Metrics(CollectorRegistry())).run(
        asyncio.Event()), timeout=3)  # fmt: skip
    assert len(made) == 3 and len({id(c) for c in made}) == 3
    assert all(c.is_closed for c in made)
    tls = {id(c._transport._pool._ssl_context) for c in made}  # type: ignore[attr-defined]
    assert len(tls) == 1  # the CA bundle is parsed once, not per channel


async def test_a_request_searches_the_module_path_for_nothing(
    origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpcore imports sniffio on each lock and event it sets up; without sniffio installed
    every request searched sys.path for it (a quarter of ingest's CPU at 200 channels)."""
    import importlib.machinery

    from stream_ingest.fetch import make_client

    async with make_client(IngestConfig()) as client:
        await client.get(origin.url("/live.m3u8"))  # warm: what a first request imports
        searched: list[str] = []
        real = importlib.machinery.PathFinder.find_spec

        def find_spec(name, path=None, target=None):  # type: ignore[no-untyped-def]
            searched.append(name)
            return real(name, path, target)

        monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", find_spec)
        for _ in range(5):
            assert (await client.get(origin.url("/live.m3u8"))).status_code == 200
    assert searched == []
