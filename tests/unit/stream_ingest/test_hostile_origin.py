"""What an origin cannot make ingest do: read local files, leave its host, reach a metadata
endpoint, read past the byte cap through a range, or pace reloads absurdly. Each refusal is a
stream event and a metric, and the channel carries on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.core.messages import StreamEventKind
from stream_ingest.urls import UrlPolicy, UrlRefused
from tests.unit.stream_ingest.origin import Harness, LivePlaylist, Response, segment_bytes

REFUSED = StreamEventKind.URL_REFUSED


def playlist(*entries: str, target: int = 1, header: str = "") -> Response:
    lines = ["#EXTM3U", f"#EXT-X-TARGETDURATION:{target}", *filter(None, [header])]
    for uri in entries:
        lines += ["#EXTINF:1.000,", uri]
    return Response(body=("\n".join(lines) + "\n").encode())


async def test_a_playlist_listing_local_files_reads_none_and_publishes_the_good_segment(
    harness: Harness, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.ts"
    secret.write_bytes(b"not for the origin to read")
    harness.origin.routes["/live.m3u8"] = playlist(
        f"file://{secret}", "file:///etc/passwd", "seg2.ts"
    )
    harness.origin.routes["/seg2.ts"] = Response(body=segment_bytes(2))
    harness.follow(start="first")
    await harness.until(lambda: harness.seqs == [2] and len(harness.of_kind(REFUSED)) == 2)
    assert [s.payload for s in harness.segments] == [segment_bytes(2)]
    assert all("local file" in e.detail for e in harness.of_kind(REFUSED))
    assert harness.errors("url_refused") == 2


async def test_a_map_uri_naming_a_local_file_is_refused(harness: Harness, tmp_path: Path) -> None:
    init = tmp_path / "init.mp4"
    init.write_bytes(b"x" * 16)
    header = f'#EXT-X-MAP:URI="file://{init}"'
    harness.origin.routes["/live.m3u8"] = playlist("seg0.m4s", header=header)
    harness.origin.routes["/seg0.m4s"] = Response(body=b"y" * 16)
    harness.follow(start="first")
    await harness.until(lambda: bool(harness.of_kind(REFUSED)))
    assert harness.seqs == []


async def test_a_fifo_named_by_a_playlist_is_never_opened_and_the_loop_goes_on(
    harness: Harness, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.ts"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    harness.origin.routes["/live.m3u8"] = playlist(f"file://{fifo}", "seg1.ts")
    harness.origin.routes["/seg1.ts"] = Response(body=segment_bytes(1))
    harness.follow(start="first")
    await harness.until(lambda: harness.seqs == [1] and bool(harness.of_kind(REFUSED)))


async def test_segments_on_another_host_or_a_metadata_address_are_refused(
    harness: Harness,
) -> None:
    harness.origin.routes["/live.m3u8"] = playlist(
        "http://169.254.169.254/latest/meta-data/iam.ts",
        "http://elsewhere.example/seg.ts",
        "seg2.ts",
    )
    harness.origin.routes["/seg2.ts"] = Response(body=segment_bytes(2))
    harness.follow(start="first")
    await harness.until(lambda: harness.seqs == [2] and len(harness.of_kind(REFUSED)) == 2)
    details = [e.detail for e in harness.of_kind(REFUSED)]
    assert "link-local or a metadata endpoint" in details[0]
    assert "neither the playlist's host" in details[1]


async def test_a_redirect_off_the_playlists_host_is_refused_and_one_on_it_is_followed(
    harness: Harness,
) -> None:
    harness.origin.routes["/live.m3u8"] = playlist("seg0.ts", "seg1.ts")
    harness.origin.routes["/seg0.ts"] = Response(
        302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    harness.origin.routes["/seg1.ts"] = Response(302, headers={"Location": "/moved/seg1.ts"})
    harness.origin.routes["/moved/seg1.ts"] = Response(body=segment_bytes(1))
    harness.follow(start="first")
    await harness.until(lambda: harness.seqs == [1] and bool(harness.of_kind(REFUSED)))
    assert harness.origin.hits("/moved/seg1.ts")


async def test_allow_hosts_lets_a_cdn_host_through(harness: Harness) -> None:
    policy = UrlPolicy.for_channel("http://origin.example/live.m3u8", ["*.cdn.example"])
    policy.check("http://edge-3.cdn.example/seg.ts")
    policy.check("https://origin.example/seg.ts")
    with pytest.raises(UrlRefused, match="scheme 'ftp' is not allowed"):
        policy.check("ftp://origin.example/seg.ts")
    listed = UrlPolicy.for_channel("http://origin.example/live.m3u8", ["169.254.1.1"])
    listed.check("http://169.254.1.1/seg.ts")  # named on purpose: allowed


async def test_a_byterange_far_into_a_resource_on_a_server_ignoring_range_is_capped(
    harness: Harness,
) -> None:
    """EXT-X-BYTERANGE:1000@5000000 on a server that answers 200 with the whole body: the cap
    counts what would be read (offset + length), not just the range's length."""
    body = bytes(range(256)) * 24_000  # 6.1 MB
    header = ""
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", header]
    lines += ["#EXT-X-BYTERANGE:1000@5000000", "#EXTINF:1.000,", "big.ts"]
    lines += ["#EXT-X-BYTERANGE:1000@2000", "#EXTINF:1.000,", "big.ts"]
    harness.origin.routes["/live.m3u8"] = Response(body=("\n".join(lines) + "\n").encode())
    harness.origin.routes["/big.ts"] = Response(body=body, ignore_range=True)
    harness.follow(start="first", max_segment_bytes=1_000_000)
    await harness.until(lambda: harness.seqs == [1])
    [oversize] = harness.of_kind(StreamEventKind.OVERSIZE)
    assert "ignored Range" in oversize.detail and oversize.seq == 0
    assert harness.segments[0].payload == body[2000:3000]


@pytest.mark.parametrize(
    ("announced", "expected"), [(100_000, 30.0), (0.0001, 1.0)], ids=["a day", "a tenth of ms"]
)
async def test_an_absurd_target_duration_is_clamped_and_reported_once(
    harness: Harness, announced: float, expected: float
) -> None:
    live = LivePlaylist(harness.origin)
    live.add(2)
    harness.origin.routes["/live.m3u8"] = lambda: _with_target(live.render(), announced)
    follower = harness.follow(start="first")
    await harness.until(lambda: bool(harness.of_kind(StreamEventKind.TARGET_DURATION)))
    assert follower._target == expected
    [event] = harness.of_kind(StreamEventKind.TARGET_DURATION)
    assert f"following at {expected:g} s" in event.detail
    if announced < 1:  # pacing: about one reload a second, not hundreds
        reloads_before = len(harness.origin.hits("/live.m3u8"))
        await harness.until(lambda: len(harness.origin.hits("/live.m3u8")) >= reloads_before + 2)
        hits = harness.origin.hits("/live.m3u8")
        assert hits[-1] - hits[-2] >= 0.4  # half a (clamped) target after no change
    assert len(harness.of_kind(StreamEventKind.TARGET_DURATION)) == 1
    assert not harness.of_kind(StreamEventKind.STALE_PLAYLIST)


def _with_target(response: Response, target: float) -> Response:
    text = response.body.decode().replace(
        "#EXT-X-TARGETDURATION:1", f"#EXT-X-TARGETDURATION:{target}"
    )
    return Response(body=text.encode())
