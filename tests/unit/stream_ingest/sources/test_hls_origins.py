"""The HLS follower against playlists as origins serve them: AES-128 and SAMPLE-AES, LL-HLS
delta updates and parts, EXT-X-GAP, SCTE-35 ad break cues, and the channel's variant choice.

Target durations are 1 s; every wait polls with a deadline.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from monitor.core.messages import StreamEventKind
from tests.unit.stream_ingest.origin import Harness, Response, segment_bytes

KEY = bytes(range(16))


def encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def serve(harness: Harness, *lines: str, path: str = "/live.m3u8") -> None:
    body = "\n".join(["#EXTM3U", "#EXT-X-TARGETDURATION:1", *lines]) + "\n"
    harness.origin.routes[path] = Response(body=body.encode())


def segments(harness: Harness, seqs: range, prefix: str = "seg") -> None:
    for seq in seqs:
        harness.origin.routes[f"/{prefix}{seq}.ts"] = Response(body=segment_bytes(seq))


async def test_aes128_segments_are_decrypted_with_the_tags_iv_or_the_sequence_number(
    harness: Harness,
) -> None:
    iv = os.urandom(16)
    harness.origin.routes["/key"] = Response(body=KEY)
    harness.origin.routes["/seg5.ts"] = Response(body=encrypt(segment_bytes(5), KEY, iv))
    implicit = (6).to_bytes(16, "big")
    harness.origin.routes["/seg6.ts"] = Response(body=encrypt(segment_bytes(6), KEY, implicit))
    serve(
        harness,
        "#EXT-X-MEDIA-SEQUENCE:5",
        f'#EXT-X-KEY:METHOD=AES-128,URI="/key",IV=0x{iv.hex()}',
        "#EXTINF:1,",
        "seg5.ts",
        '#EXT-X-KEY:METHOD=AES-128,URI="/key"',
        "#EXTINF:1,",
        "seg6.ts",
        "#EXT-X-ENDLIST",
    )
    harness.follow()
    await harness.until(lambda: len(harness.segments) == 2)

    assert [s.payload for s in harness.segments] == [segment_bytes(5), segment_bytes(6)]
    assert len(harness.origin.hits("/key")) == 1  # fetched once per URI
    assert harness.events == []


async def test_a_key_uri_goes_through_the_url_policy_and_a_key_response_is_capped(
    harness: Harness,
) -> None:
    harness.origin.routes["/big-key"] = Response(body=b"k" * 10_000)
    for seq in range(3):
        harness.origin.routes[f"/seg{seq}.ts"] = Response(
            body=encrypt(segment_bytes(seq), KEY, KEY)
        )
    serve(
        harness,
        '#EXT-X-KEY:METHOD=AES-128,URI="file:///etc/passwd",IV=0x000102030405060708090a0b0c0d0e0f',
        "#EXTINF:1,",
        "seg0.ts",
        '#EXT-X-KEY:METHOD=AES-128,URI="http://169.254.169.254/key",IV=0x01',
        "#EXTINF:1,",
        "seg1.ts",
        '#EXT-X-KEY:METHOD=AES-128,URI="/big-key",IV=0x01',
        "#EXTINF:1,",
        "seg2.ts",
        "#EXT-X-ENDLIST",
    )
    harness.follow()
    await harness.until(lambda: len(harness.events) >= 3)

    assert harness.segments == []
    assert harness.kinds == ["url_refused", "url_refused", "oversize"]
    assert all(e.detail.startswith("key: ") for e in harness.events)
    assert [e.seq for e in harness.events] == [0, 1, 2]


async def test_sample_aes_is_one_clear_event_and_its_segments_are_skipped_not_the_playlist(
    harness: Harness,
) -> None:
    segments(harness, range(4))
    serve(
        harness,
        "#EXTINF:1,",
        "seg0.ts",
        '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://key",KEYFORMAT="com.apple.streamingkeydelivery"',
        "#EXTINF:1,",
        "seg1.ts",
        "#EXTINF:1,",
        "seg2.ts",
        "#EXT-X-KEY:METHOD=NONE",
        "#EXTINF:1,",
        "seg3.ts",
        "#EXT-X-ENDLIST",
    )
    harness.follow()
    await harness.until(lambda: len(harness.segments) == 2)

    assert harness.seqs == [0, 3]
    (event,) = harness.of_kind(StreamEventKind.ENCRYPTION)
    assert event.seq == 1 and "SAMPLE-AES" in event.detail
    assert harness.errors("encryption") == 1


async def test_a_wrong_key_is_an_encryption_event_not_noise_published(harness: Harness) -> None:
    harness.origin.routes["/key"] = Response(body=bytes(16))
    harness.origin.routes["/seg0.ts"] = Response(body=encrypt(segment_bytes(0), KEY, KEY))
    serve(harness, '#EXT-X-KEY:METHOD=AES-128,URI="/key",IV=0x01', "#EXTINF:1,", "seg0.ts")
    harness.follow()
    await harness.until(lambda: bool(harness.events))

    assert harness.segments == []
    assert harness.kinds == ["encryption"] and "does not decrypt" in harness.events[0].detail


async def test_a_delta_update_is_numbered_after_its_skipped_segments_and_parts_are_ignored(
    harness: Harness,
) -> None:
    segments(harness, range(260, 272))
    full = [f"#EXTINF:1,\nseg{seq}.ts" for seq in range(260, 270)]
    serve(harness, "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=6,PART-HOLD-BACK=1.5",
          "#EXT-X-PART-INF:PART-TARGET=0.5", "#EXT-X-MEDIA-SEQUENCE:260", *full)  # fmt: skip
    harness.follow(start="live_edge")
    await harness.until(lambda: harness.seqs == [269])
    serve(
        harness,
        "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=6,PART-HOLD-BACK=1.5",
        "#EXT-X-PART-INF:PART-TARGET=0.5",
        "#EXT-X-MEDIA-SEQUENCE:261",
        "#EXT-X-SKIP:SKIPPED-SEGMENTS=8",
        "#EXTINF:1,",
        "seg269.ts",
        '#EXT-X-PART:DURATION=0.5,URI="seg270.part0.mp4",INDEPENDENT=YES',
        '#EXT-X-PART:DURATION=0.5,URI="seg270.part1.mp4"',
        "#EXTINF:1,",
        "seg270.ts",
        '#EXT-X-PART:DURATION=0.5,URI="seg271.part0.mp4"',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg271.part1.mp4"',
        '#EXT-X-RENDITION-REPORT:URI="../alt/live.m3u8",LAST-MSN=270,LAST-PART=0',
    )
    await harness.until(lambda: len(harness.segments) == 2)

    assert harness.seqs == [269, 270]
    assert [s.payload for s in harness.segments] == [segment_bytes(269), segment_bytes(270)]
    assert harness.events == []
    assert not any("part" in path for _, path in harness.origin.requests)


async def test_declared_gaps_are_not_fetched_and_are_one_event_not_an_error(
    harness: Harness,
) -> None:
    segments(harness, range(5))
    serve(harness, "#EXTINF:1,", "seg0.ts", "#EXT-X-GAP", "#EXTINF:1,", "seg1.ts",
          "#EXT-X-GAP", "#EXTINF:1,", "seg2.ts", "#EXTINF:1,", "seg3.ts", "#EXT-X-GAP",
          "#EXTINF:1,", "seg4.ts", "#EXT-X-ENDLIST")  # fmt: skip
    harness.follow()
    await harness.until(lambda: len(harness.events) == 2 and len(harness.segments) == 2)

    assert harness.seqs == [0, 3]
    assert [s.media_start for s in harness.segments] == [0.0, 3.0]
    assert harness.segments[1].discontinuity  # the timeline jumped over the gap
    assert harness.kinds == ["origin_gap", "origin_gap"]
    assert [e.seq for e in harness.events] == [1, 4]
    assert not harness.origin.hits("/seg1.ts") and not harness.origin.hits("/seg4.ts")
    assert harness.errors("origin_gap") == 0


async def test_scte35_cues_are_ad_break_events_on_the_media_timeline(harness: Harness) -> None:
    segments(harness, range(8))
    serve(
        harness,
        "#EXTINF:1,", "seg0.ts",
        '#EXT-X-DATERANGE:ID="splice-1",START-DATE="2024-05-01T12:00:01Z",PLANNED-DURATION=2,'
        "SCTE35-OUT=0xFC302000000000000000FFF00506FE0000000000000000",
        "#EXTINF:1,", "seg1.ts",
        "#EXT-X-CUE-OUT-CONT:ElapsedTime=1,Duration=2", "#EXTINF:1,", "seg2.ts",
        '#EXT-X-DATERANGE:ID="splice-1",START-DATE="2024-05-01T12:00:03Z",SCTE35-IN=0xFC30',
        "#EXTINF:1,", "seg3.ts",
        "#EXT-X-CUE-OUT:DURATION=1", "#EXTINF:1,", "seg4.ts",
        "#EXTINF:1,", "seg5.ts",  # no CUE-IN: the planned second and a target pass
        "#EXTINF:1,", "seg6.ts",
        "#EXTINF:1,", "seg7.ts",
        "#EXT-X-ENDLIST",
    )  # fmt: skip
    harness.follow()
    await harness.until(lambda: len(harness.segments) == 8)

    breaks = [(e.kind.value, e.seq, e.media_time) for e in harness.events]
    assert breaks == [
        ("ad_break_start", 1, 1.0),
        ("ad_break_end", 3, 3.0),
        ("ad_break_start", 4, 4.0),
        ("ad_break_end", 6, 6.0),
    ]
    assert "splice-1" in harness.events[0].detail and "0xFC30" in harness.events[0].detail
    assert harness.errors("ad_break_start") == 0


async def test_a_follower_joining_mid_break_starts_the_break_at_the_first_continuation(
    harness: Harness,
) -> None:
    segments(harness, range(3))
    serve(harness, "#EXT-X-CUE-OUT-CONT:10/30", "#EXTINF:1,", "seg0.ts",
          "#EXT-X-CUE-OUT-CONT:11/30", "#EXTINF:1,", "seg1.ts", "#EXT-X-CUE-IN",
          "#EXTINF:1,", "seg2.ts", "#EXT-X-ENDLIST")  # fmt: skip
    harness.follow()
    await harness.until(lambda: len(harness.events) == 2)

    assert harness.kinds == ["ad_break_start", "ad_break_end"]
    assert "joined under way" in harness.events[0].detail


@pytest.mark.parametrize(
    ("choice", "followed"), [("highest", "high"), ("lowest", "low"), (1_900_000, "mid")]
)
async def test_the_channels_variant_choice_picks_the_variant_followed(
    harness: Harness, choice: str | int, followed: str
) -> None:
    harness.origin.routes["/master.m3u8"] = Response(
        body=(
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=5000000\nhigh.m3u8\n"
            b"#EXT-X-STREAM-INF:BANDWIDTH=800000.0\nlow.m3u8\n"
            b"#EXT-X-STREAM-INF:BANDWIDTH=2000000\nmid.m3u8\n"
        )
    )
    for name in ("high", "low", "mid"):
        serve(harness, "#EXTINF:1,", f"{name}-seg0.ts", path=f"/{name}.m3u8")
        harness.origin.routes[f"/{name}-seg0.ts"] = Response(body=name.encode())
    harness.follow(harness.origin.url("/master.m3u8"), {"variant": choice})
    await harness.until(lambda: len(harness.segments) == 1)

    assert harness.segments[0].payload == followed.encode()
