"""The synthetic live HLS origin: a sliding playlist, segment bytes, VOD mode and faults."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from monitor.app.synthetic import SyntheticChannel
from monitor.app.synthetic.hls_server import Faults, LiveHlsServer, PlaylistFault, SegmentFault
from monitor.inference.media import DecodeError, decode_bytes

SEGMENT = 0.4  # ten frames at 25 fps: small segments keep these tests fast


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def small_channel(seed: int = 1) -> SyntheticChannel:
    return SyntheticChannel(seed=seed, segment_duration=SEGMENT, width=160, height=90)


def media_sequence(text: str) -> int:
    found = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)
    assert found, text
    return int(found.group(1))


def segment_names(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def server(clock: FakeClock) -> AsyncIterator[LiveHlsServer]:
    origin = LiveHlsServer(
        {"news": small_channel(1), "sport": small_channel(2)}, window=3, clock=clock
    )
    await origin.start()
    try:
        yield origin
    finally:
        await origin.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


async def test_playlist_grows_and_its_media_sequence_slides(
    server: LiveHlsServer, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    url = server.playlist_url("news")
    first = (await client.get(url)).text
    assert first.startswith("#EXTM3U\n#EXT-X-VERSION:3\n")
    assert "#EXT-X-TARGETDURATION:1" in first
    assert segment_names(first) == [] and "#EXT-X-ENDLIST" not in first

    clock.now += SEGMENT
    assert segment_names((await client.get(url)).text) == ["seg_0.ts"]

    clock.now += 4 * SEGMENT
    later = (await client.get(url)).text
    assert segment_names(later) == ["seg_2.ts", "seg_3.ts", "seg_4.ts"]
    assert media_sequence(later) == 2
    assert later.count("#EXTINF:0.400,") == 3
    assert "#EXT-X-PROGRAM-DATE-TIME:" in later


async def test_listed_segments_are_the_channel_segment_bytes(
    server: LiveHlsServer, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    clock.now += 3 * SEGMENT
    response = await client.get(server.segment_url("sport", 2))
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp2t"
    assert response.content == server.channels["sport"].segment_bytes(2)
    assert decode_bytes(response.content).video_times[0] == pytest.approx(2 * SEGMENT)


async def test_segments_not_yet_recorded_or_long_gone_are_not_found(
    server: LiveHlsServer, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    clock.now += 20 * SEGMENT
    assert (await client.get(server.segment_url("news", 20))).status_code == 404
    assert (await client.get(server.segment_url("news", 5))).status_code == 404
    assert (await client.get(server.segment_url("news", 16))).status_code == 200
    assert (await client.get(f"{server.base_url()}/nowhere/index.m3u8")).status_code == 404


async def test_segment_faults_answer_as_configured(
    server: LiveHlsServer, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    server.faults = Faults(
        segments=[
            SegmentFault(channel="news", seq=0, kind="http_404"),
            SegmentFault(channel="news", seq=1, kind="http_500"),
            SegmentFault(channel="news", seq=2, kind="garbage"),
            SegmentFault(channel="news", seq=3, kind="truncated"),
            SegmentFault(channel="news", seq=4, kind="hang"),
        ]
    )
    clock.now += 5 * SEGMENT
    get = client.get
    assert (await get(server.segment_url("news", 0))).status_code == 404
    assert (await get(server.segment_url("news", 1))).status_code == 500
    assert (await get(server.segment_url("sport", 1))).status_code == 200
    clean = server.channels["news"].segment_bytes(2)
    garbage = (await get(server.segment_url("news", 2))).content
    assert len(garbage) == len(clean) and garbage != clean
    with pytest.raises(DecodeError):
        decode_bytes(garbage)
    truncated = (await get(server.segment_url("news", 3))).content
    full = server.channels["news"].segment_bytes(3)
    assert 0 < len(truncated) < len(full) and full.startswith(truncated)
    with pytest.raises(httpx.ReadTimeout):
        await get(server.segment_url("news", 4), timeout=0.3)


async def test_playlist_faults_last_only_their_time_window(
    server: LiveHlsServer, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    server.faults = Faults(
        playlists=[
            PlaylistFault(channel="news", start=1.0, end=2.0, kind="malformed"),
            PlaylistFault(channel="news", start=2.0, end=3.0, kind="http_500"),
            PlaylistFault(channel="news", start=3.0, end=4.0, kind="stale"),
            PlaylistFault(channel="news", start=4.0, end=5.0, kind="hang"),
        ]
    )
    url = server.playlist_url("news")
    clock.now += 1.2
    page = await client.get(url)
    assert page.status_code == 200 and not page.text.startswith("#EXTM3U")
    assert (await client.get(server.playlist_url("sport"))).text.startswith("#EXTM3U")
    clock.now += 1.0
    assert (await client.get(url)).status_code == 500
    clock.now += 1.0
    stale = (await client.get(url)).text
    clock.now += 0.5
    assert (await client.get(url)).text == stale
    assert segment_names(stale)[-1] == "seg_6.ts"  # frozen as it was at 3.0 s
    clock.now += 0.5
    with pytest.raises(httpx.ReadTimeout):
        await client.get(url, timeout=0.3)
    clock.now += 1.0
    assert segment_names((await client.get(url)).text)[-1] == "seg_12.ts"


async def test_vod_mode_lists_every_segment_and_ends() -> None:
    origin = LiveHlsServer({"film": small_channel(3)}, mode="vod", vod_segments=4)
    async with origin, httpx.AsyncClient(timeout=5.0) as client:
        text = (await client.get(origin.playlist_url("film"))).text
        last = await client.get(origin.segment_url("film", 3))
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert segment_names(text) == ["seg_0.ts", "seg_1.ts", "seg_2.ts", "seg_3.ts"]
    assert media_sequence(text) == 0
    assert last.content == small_channel(3).segment_bytes(3)


async def test_on_the_wall_clock_a_segment_appears_every_segment_duration() -> None:
    origin = LiveHlsServer({"news": small_channel(4)}, backlog=2)
    async with origin, httpx.AsyncClient(timeout=5.0) as client:
        url = origin.playlist_url("news")
        assert segment_names((await client.get(url)).text) == ["seg_0.ts", "seg_1.ts"]
        await asyncio.sleep(SEGMENT + 0.05)
        assert segment_names((await client.get(url)).text)[-1] == "seg_2.ts"


async def test_stop_answers_a_hanging_request_and_returns_promptly() -> None:
    faults = Faults(playlists=[PlaylistFault(channel="news", start=0, end=60, kind="hang")])
    origin = LiveHlsServer({"news": small_channel(5)}, faults=faults)
    await origin.start()
    async with httpx.AsyncClient(timeout=10.0) as client:
        pending = asyncio.create_task(client.get(origin.playlist_url("news")))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await origin.stop()
        assert time.monotonic() - started < 3.0
        response = await pending
    assert response.status_code == 503
