"""Reading a playlist once for ``vqm scan URL``: every segment in order, or one clear error."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.core.messages import SegmentMessage
from stream_ingest.config import IngestConfig
from stream_ingest.vod import VodError, fetch_vod_segments
from tests.conftest import free_port
from tests.unit.stream_ingest.origin import Origin, Response, segment_bytes

SETTINGS = IngestConfig(request_timeout=0.5, max_retries=1, backoff_base=0.01, backoff_max=0.02)
VOD = (
    b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"
    b"#EXTINF:2.0,\nseg7.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.5,\nseg8.ts\n#EXTINF:2.0,\nseg9.ts\n"
    b"#EXT-X-ENDLIST\n"
)


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = Origin()
    for seq in (7, 8, 9):
        server.routes[f"/seg{seq}.ts"] = Response(body=segment_bytes(seq))
    server.routes["/vod.m3u8"] = Response(body=VOD)
    await server.start()
    yield server
    await server.stop()


async def scan(url: str, settings: IngestConfig = SETTINGS) -> list[SegmentMessage]:
    return [segment async for segment in fetch_vod_segments(url, settings)]


async def test_every_listed_segment_is_yielded_in_order_with_media_time_from_zero(
    origin: Origin,
) -> None:
    segments = await scan(origin.url("/vod.m3u8"))
    assert [s.seq for s in segments] == [7, 8, 9]
    assert [s.media_start for s in segments] == [0.0, 2.0, 3.5]
    assert [s.payload for s in segments] == [segment_bytes(i) for i in (7, 8, 9)]
    assert [s.discontinuity for s in segments] == [False, True, False]
    assert {s.channel_id for s in segments} == {"scan"}


async def test_a_master_playlist_is_scanned_through_its_best_variant(origin: Origin) -> None:
    origin.routes["/master.m3u8"] = Response(
        body=b'#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9,CODECS="avc1.640028"\nvod.m3u8\n'
    )
    segments = await scan(origin.url("/master.m3u8"))
    assert [s.seq for s in segments] == [7, 8, 9] and segments[0].codecs == "avc1.640028"


async def test_a_playlist_on_disk_is_read_like_one_over_http(tmp_path: Path) -> None:
    (tmp_path / "a.ts").write_bytes(b"AAAA")
    playlist = tmp_path / "index.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n")
    segments = await scan(str(playlist))
    assert [s.payload for s in segments] == [b"AAAA"]


async def test_an_unreachable_url_raises_one_clear_error() -> None:
    with pytest.raises(VodError, match=r"cannot read playlist .*: connection refused"):
        await scan(f"http://127.0.0.1:{free_port()}/vod.m3u8")


async def test_a_missing_playlist_names_the_http_status(origin: Origin) -> None:
    with pytest.raises(VodError, match="HTTP 404"):
        await scan(origin.url("/nothing.m3u8"))


async def test_a_page_that_is_not_a_playlist_raises_a_playlist_error(origin: Origin) -> None:
    origin.routes["/page.html"] = Response(body=b"<html></html>")
    with pytest.raises(VodError, match="not a usable HLS playlist: .*missing #EXTM3U"):
        await scan(origin.url("/page.html"))


async def test_a_segment_that_cannot_be_fetched_raises_naming_it(origin: Origin) -> None:
    origin.routes["/seg8.ts"] = Response(500)
    with pytest.raises(VodError, match=r"cannot read segment 8 .*HTTP 500"):
        await scan(origin.url("/vod.m3u8"))


async def test_a_local_playlist_naming_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """`vqm scan PATH` reads local files, but only regular ones: a FIFO would block forever."""
    os.mkfifo(tmp_path / "fifo.ts")
    playlist = tmp_path / "index.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfifo.ts\n#EXT-X-ENDLIST\n")
    with pytest.raises(VodError, match="not a regular file"):
        await asyncio.wait_for(scan(str(playlist)), 5)
