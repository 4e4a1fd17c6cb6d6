"""Master playlists as FFmpeg writes them for a multi-bitrate channel: ``variant: all``
follows every variant as a sub-channel of its own, and the sound of a separate audio
rendition is joined to the video segments (or reported missing, the video published
anyway)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from monitor.core.messages import SegmentMessage, StreamEventKind, decode_message, encode_message
from monitor.core.state import MemoryStateStore
from monitor.inference.media import decode_bytes
from monitor.inference.segment import DecodeNeeds
from stream_ingest.positions import Position, Positions
from stream_ingest.ts import AUDIO_TYPES, VIDEO_TYPES
from stream_ingest.tsjoin import split_ts
from tests.unit.stream_ingest.origin import Harness, Response


def serve(harness: Harness, media: Path) -> str:
    """FFmpeg's files on the harness origin; the master playlist's URL."""
    for path in media.rglob("*"):
        if path.is_file():
            route = "/" + path.relative_to(media).as_posix()
            harness.origin.routes[route] = Response(body=path.read_bytes())
    return harness.origin.url("/master.m3u8")


def stream_kinds(segment: SegmentMessage) -> list[str]:
    kinds = {**{t: "video" for t in VIDEO_TYPES}, **{t: "audio" for t in AUDIO_TYPES}}
    return [kinds.get(s.stream_type, "other") for s in split_ts(segment.payload).streams]


async def test_variant_all_publishes_every_variant_as_a_sub_channel_with_its_sound_joined(
    harness: Harness, media: Path
) -> None:
    harness.positions = Positions(MemoryStateStore(), harness.metrics, ttl=60)
    harness.follow(serve(harness, media), {"variant": "all"})
    await harness.until(lambda: len(harness.segments) == 10, timeout=20)

    by_channel: dict[str, list[SegmentMessage]] = {}
    for segment in harness.segments:
        by_channel.setdefault(segment.channel_id, []).append(segment)
    assert sorted(by_channel) == ["news@180p", "news@90p"]
    for channel, segments in by_channel.items():
        assert [s.seq for s in segments] == [0, 1, 2, 3, 4], channel
        assert all(stream_kinds(s) == ["video", "audio"] for s in segments), channel
        position = await harness.positions.load(channel)
        assert position is not None and position.seq == 4, channel
    assert await harness.positions.load("news") is None  # only the renditions publish
    assert by_channel["news@90p"][0].codecs.startswith("avc1.64000c")
    assert harness.of_kind(StreamEventKind.AUDIO_MISSING) == []
    assert harness.gauge("vqm_ingest_up") is None  # only the renditions are up or down
    labels = {"channel": "news@90p"}
    assert harness.metrics.registry.get_sample_value("vqm_ingest_up", labels) == 1


async def test_each_rendition_resumes_after_its_own_last_published_segment(
    harness: Harness, media: Path
) -> None:
    harness.positions = Positions(MemoryStateStore(), harness.metrics, ttl=60)
    await harness.positions.save("news@90p", Position(seq=2, media_end=6.0, published_at=0.0))
    harness.follow(serve(harness, media), {"variant": "all"})
    assert harness.task is not None
    await asyncio.wait_for(harness.task, 20)  # a VOD master: both renditions end
    await harness.collect()

    published = {
        channel: [s.seq for s in harness.segments if s.channel_id == channel]
        for channel in ("news@180p", "news@90p")
    }
    assert published == {"news@180p": [0, 1, 2, 3, 4], "news@90p": [3, 4]}
    resumed = [s for s in harness.segments if s.channel_id == "news@90p"]
    assert resumed[0].media_start == 6.0


async def test_a_missing_audio_segment_is_reported_and_its_video_still_published(
    harness: Harness, media: Path
) -> None:
    url = serve(harness, media)
    harness.origin.routes["/2/seg2.ts"] = Response(404)  # the audio rendition's third
    harness.follow(url)
    await harness.until(lambda: len(harness.segments) == 5, timeout=20)
    await harness.until(lambda: bool(harness.of_kind(StreamEventKind.AUDIO_MISSING)))

    assert harness.seqs == [0, 1, 2, 3, 4]
    missing = harness.of_kind(StreamEventKind.AUDIO_MISSING)
    assert [e.seq for e in missing] == [2]
    assert missing[0].media_time == pytest.approx(harness.segments[2].media_start)
    # The sound of the segments either side is joined: the PES that straddle its edges.
    assert "s of its 2.00 s without audio (audio segment 2: HTTP 404" in missing[0].detail
    assert harness.errors("audio_missing") == 1
    assert all(stream_kinds(s) == ["video", "audio"] for s in harness.segments)


def dated(playlist: str, first_seq: int) -> bytes:
    """FFmpeg's media playlist numbered from ``first_seq``, each segment dated 2 s apart."""
    lines, n = [], 0
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE"):
            line = f"#EXT-X-MEDIA-SEQUENCE:{first_seq}"
        if line.startswith("#EXTINF"):
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:{2 * n:02d}.000Z")
            n += 1
        lines.append(line)
    return ("\n".join(lines) + "\n").encode()


async def test_renditions_numbered_apart_are_lined_up_by_their_program_date_time(
    harness: Harness, media: Path
) -> None:
    url = serve(harness, media)
    video = (media / "0" / "index.m3u8").read_text()
    harness.origin.routes["/0/index.m3u8"] = Response(body=dated(video, first_seq=50))
    sound = (media / "2" / "index.m3u8").read_text()
    harness.origin.routes["/2/index.m3u8"] = Response(body=dated(sound, first_seq=0))
    harness.follow(url)
    await harness.until(lambda: len(harness.segments) == 5, timeout=20)

    assert harness.seqs == [50, 51, 52, 53, 54]
    assert all(stream_kinds(s) == ["video", "audio"] for s in harness.segments)
    assert harness.of_kind(StreamEventKind.AUDIO_MISSING) == []


async def test_the_channels_audio_language_picks_the_rendition_joined(
    harness: Harness, media: Path
) -> None:
    serve(harness, media)
    for path in (media / "2").iterdir():  # the same sound, as a second language
        harness.origin.routes[f"/fr/{path.name}"] = Response(body=path.read_bytes())
    harness.origin.routes["/two-languages.m3u8"] = Response(
        body=b"#EXTM3U\n"
        b'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",LANGUAGE="en",DEFAULT=YES,'
        b'URI="2/index.m3u8"\n'
        b'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="fr",LANGUAGE="fr",URI="fr/index.m3u8"\n'
        b'#EXT-X-STREAM-INF:BANDWIDTH=730400,RESOLUTION=320x180,AUDIO="aud"\n0/index.m3u8\n'
    )
    harness.follow(harness.origin.url("/two-languages.m3u8"), {"audio_language": "FR"})
    await harness.until(lambda: len(harness.segments) == 5, timeout=20)

    assert harness.origin.hits("/fr/index.m3u8") and not harness.origin.hits("/2/index.m3u8")
    assert all(stream_kinds(s) == ["video", "audio"] for s in harness.segments)


async def test_an_fmp4_channel_carries_its_audio_renditions_sound_beside_each_segment(
    harness: Harness, fmp4_media: Path
) -> None:
    harness.follow(serve(harness, fmp4_media), {"variant": "all"})
    await harness.until(lambda: len(harness.segments) == 10, timeout=20)

    assert harness.of_kind(StreamEventKind.AUDIO_MISSING) == []
    for segment in harness.segments:
        assert segment.container == "fmp4" and segment.audio_payload, segment.seq
        decoded = decode_bytes(segment.payload, DecodeNeeds(audio=True), segment.audio_payload)
        start, end = decoded.video_times[0], decoded.video_times[-1] + 0.04
        heard = decoded.audio.shape[1] / decoded.audio_rate
        assert decoded.audio_start == pytest.approx(start, abs=0.03), segment.seq
        assert heard == pytest.approx(end - start, abs=0.05), segment.seq
    wire = decode_message(encode_message(harness.segments[0]), SegmentMessage)
    assert wire.audio_payload == harness.segments[0].audio_payload


async def test_fmp4_that_does_not_read_is_reported_and_the_video_still_published(
    harness: Harness, fmp4_media: Path
) -> None:
    url = serve(harness, fmp4_media)
    harness.origin.routes["/2/seg2.m4s"] = Response(body=b"\x00\x00\x00\x10moof garbage")
    harness.origin.routes["/0/seg4.m4s"] = Response(body=b"not fMP4 at all")
    harness.follow(url)
    await harness.until(lambda: len(harness.segments) == 5, timeout=20)
    await harness.until(lambda: len(harness.of_kind(StreamEventKind.AUDIO_MISSING)) >= 2)

    missing = {e.seq: e.detail for e in harness.of_kind(StreamEventKind.AUDIO_MISSING)}
    assert "fMP4 audio segment 2: box" in missing[2]
    assert "video segment is not readable fMP4" in missing[4]
    assert harness.seqs == [0, 1, 2, 3, 4]
    assert harness.segments[4].audio_payload == b""
    assert all(s.audio_payload for s in harness.segments[:2])


async def test_a_packed_audio_rendition_is_joined_to_the_mpegts_video(
    harness: Harness, packed_media: Path
) -> None:
    harness.follow(serve(harness, packed_media))
    await harness.until(lambda: len(harness.segments) == 5, timeout=20)

    assert harness.origin.hits("/2/seg1.aac")
    assert all(stream_kinds(s) == ["video", "audio"] for s in harness.segments)
    assert harness.of_kind(StreamEventKind.AUDIO_MISSING) == []


async def test_a_hostile_packed_audio_segment_is_reported_and_its_video_still_published(
    harness: Harness, packed_media: Path
) -> None:
    url = serve(harness, packed_media)
    good = (packed_media / "2" / "seg2.aac").read_bytes()
    harness.origin.routes["/2/seg2.aac"] = Response(body=good[: len(good) // 2])  # cut short
    harness.origin.routes["/2/seg3.aac"] = Response(body=b"ID3\x04\x00\x00\x00\x00\x00\x00")
    harness.follow(url)
    await harness.until(lambda: len(harness.segments) == 5, timeout=20)
    await harness.until(lambda: len(harness.of_kind(StreamEventKind.AUDIO_MISSING)) == 2)

    missing = harness.of_kind(StreamEventKind.AUDIO_MISSING)
    assert [e.seq for e in missing] == [2, 3]
    assert "packed audio segment 2: ADTS frame at byte" in missing[0].detail
    assert "cut short" in missing[0].detail
    assert "packed audio segment 3: no ID3 PRIV frame" in missing[1].detail
    kinds = [stream_kinds(s) for s in harness.segments]
    assert kinds[2] == ["video"] and kinds[4] == ["video", "audio"]
