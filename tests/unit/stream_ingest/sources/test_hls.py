"""The HLS follower against a tiny local origin: what it publishes, when it reloads, and how it
reports (and survives) every way an origin goes wrong.

Target durations are 1 s so each test takes a few seconds at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from monitor.core.messages import StreamEventKind
from monitor.core.state import MemoryStateStore
from stream_ingest.positions import POSITION_NS, Position, Positions
from tests.unit.stream_ingest.origin import (
    Harness,
    Response,
    segment_bytes,
)


async def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def wait_for_async(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# Publishing


async def test_each_segment_of_a_growing_playlist_is_published_once_in_order(
    harness: Harness,
) -> None:
    harness.playlist.add(2, duration=1.0)
    harness.follow()
    await harness.until(lambda: len(harness.segments) >= 2)
    harness.playlist.add(2, duration=0.5)
    await harness.until(lambda: len(harness.segments) >= 4)
    harness.playlist.add(1, duration=0.75)
    await harness.until(lambda: len(harness.segments) >= 5)
    await asyncio.sleep(0.6)  # one more reload of an unchanged playlist publishes nothing
    await harness.collect()

    assert harness.seqs == [0, 1, 2, 3, 4]
    assert [s.payload for s in harness.segments] == [segment_bytes(i) for i in range(5)]
    assert [s.media_start for s in harness.segments] == [0.0, 1.0, 2.0, 2.5, 3.0]
    assert [s.duration for s in harness.segments] == [1.0, 1.0, 0.5, 0.5, 0.75]
    first = harness.segments[0]
    assert first.channel_id == "news" and first.container == "mpegts"
    assert first.uri == harness.origin.url("/seg0.ts") and not first.discontinuity
    assert all(len(harness.origin.hits(f"/seg{i}.ts")) == 1 for i in range(5))
    assert harness.events == []
    assert (
        harness.metrics.registry.get_sample_value(
            "vqm_segments_ingested_total", {"channel": "news"}
        )
        == 5
    )
    assert harness.gauge("vqm_ingest_up") == 1
    assert abs((harness.gauge("vqm_last_segment_timestamp_seconds") or 0) - time.time()) < 5


async def test_by_default_following_starts_at_the_live_edge(harness: Harness) -> None:
    harness.playlist.add(4)
    harness.follow(start="live_edge")
    await harness.until(lambda: len(harness.segments) >= 1)
    harness.playlist.add(1)
    await harness.until(lambda: len(harness.segments) >= 2)
    assert harness.seqs == [3, 4]
    assert harness.segments[0].media_start == 0.0 and harness.segments[1].media_start == 1.0
    assert harness.origin.hits("/seg0.ts") == []


async def test_a_vod_playlist_is_followed_to_its_end_and_then_run_returns(
    harness: Harness,
) -> None:
    harness.playlist.add(3)
    harness.playlist.endlist = True
    follower = harness.follow(start="live_edge")
    assert harness.task is not None
    await asyncio.wait_for(harness.task, timeout=3)
    await harness.collect()
    assert harness.seqs == [0, 1, 2] and follower.finished


async def test_a_master_playlist_is_followed_through_its_highest_bandwidth_variant(
    harness: Harness,
) -> None:
    harness.playlist.add(2)
    harness.origin.routes["/master.m3u8"] = Response(
        body=b"#EXTM3U\n"
        b'#EXT-X-STREAM-INF:BANDWIDTH=300000,CODECS="avc1.42e00a"\nlow.m3u8\n'
        b'#EXT-X-STREAM-INF:BANDWIDTH=6000000,CODECS="avc1.640028,mp4a.40.2"\nlive.m3u8\n'
    )
    harness.follow(url=harness.origin.url("/master.m3u8"))
    await harness.until(lambda: len(harness.segments) >= 2)
    assert harness.seqs == [0, 1]
    assert {s.codecs for s in harness.segments} == {"avc1.640028,mp4a.40.2"}
    assert harness.origin.hits("/low.m3u8") == []
    assert len(harness.origin.hits("/master.m3u8")) == 1


async def test_fmp4_segments_carry_their_init_section_in_front_of_the_payload(
    harness: Harness,
) -> None:
    routes = harness.origin.routes
    routes["/init.mp4"] = Response(body=b"INIT")
    routes["/a.m4s"] = Response(body=b"AAAA")
    routes["/b.m4s"] = Response(body=b"BBBB")
    routes["/fmp4.m3u8"] = Response(
        body=b'#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI="init.mp4"\n'
        b"#EXTINF:1,\na.m4s\n#EXTINF:1,\nb.m4s\n"
    )
    harness.follow(url=harness.origin.url("/fmp4.m3u8"))
    await harness.until(lambda: len(harness.segments) >= 2)
    assert [s.payload for s in harness.segments] == [b"INITAAAA", b"INITBBBB"]
    assert {s.container for s in harness.segments} == {"fmp4"}
    assert len(harness.origin.hits("/init.mp4")) == 1


async def test_byterange_segments_are_fetched_as_http_ranges(harness: Harness) -> None:
    harness.origin.routes["/all.ts"] = Response(body=b"0123456789")
    harness.origin.routes["/ranges.m3u8"] = Response(
        body=b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n#EXT-X-BYTERANGE:4@2\nall.ts\n"
        b"#EXTINF:1,\n#EXT-X-BYTERANGE:3\nall.ts\n#EXT-X-ENDLIST\n"
    )
    harness.follow(url=harness.origin.url("/ranges.m3u8"))
    await harness.until(lambda: len(harness.segments) >= 2)
    assert [s.payload for s in harness.segments] == [b"2345", b"678"]


# ---------------------------------------------------------------------------------------------
# Reload timing (RFC 8216 section 6.3.4)


async def test_reloads_wait_a_target_duration_after_a_change_and_half_of_one_otherwise(
    harness: Harness,
) -> None:
    growing = {"left": 3}

    def render() -> Response:
        if growing["left"] > 0:  # each load finds a change, three times
            growing["left"] -= 1
            harness.playlist.add(1)
        return harness.playlist.render()

    harness.origin.routes["/live.m3u8"] = render
    harness.follow()
    await wait_for(lambda: len(harness.origin.hits("/live.m3u8")) >= 6, timeout=6)
    loads = harness.origin.hits("/live.m3u8")
    gaps = [b - a for a, b in zip(loads, loads[1:], strict=False)]
    # Loads 1-3 changed (wait 1 s); from load 4 on the playlist is unchanged (wait 0.5 s).
    assert all(0.95 <= g <= 1.4 for g in gaps[:3]), gaps
    assert all(0.45 <= g <= 0.8 for g in gaps[3:5]), gaps


# ---------------------------------------------------------------------------------------------
# Stream checks: each is an event and a metric, and the follower carries on.


async def test_a_segment_answering_404_is_reported_and_the_next_one_still_published(
    harness: Harness,
) -> None:
    harness.playlist.add(2)
    harness.origin.routes["/seg0.ts"] = Response(404)
    harness.follow()
    await harness.until(lambda: harness.seqs == [1])
    (event,) = harness.of_kind(StreamEventKind.HTTP_ERROR)
    assert event.status == 404 and event.seq == 0 and event.channel_id == "news"
    assert event.url == harness.origin.url("/seg0.ts") and "404" in event.detail
    assert harness.errors("http_error") == 1


async def test_a_500_is_retried_with_back_off_then_reported_and_skipped(harness: Harness) -> None:
    harness.playlist.add(2)
    harness.origin.routes["/seg0.ts"] = Response(500)
    harness.follow(max_retries=2)
    await harness.until(lambda: harness.seqs == [1])
    assert len(harness.origin.hits("/seg0.ts")) == 3
    (event,) = harness.of_kind(StreamEventKind.HTTP_ERROR)
    assert event.status == 500 and event.seq == 0
    assert harness.errors("http_error") == 1


async def test_a_transient_500_that_a_retry_fixes_is_neither_reported_nor_lost(
    harness: Harness,
) -> None:
    harness.playlist.add(1)
    harness.origin.routes["/seg0.ts"] = [Response(503), Response(body=b"late")]
    harness.follow()
    await harness.until(lambda: harness.seqs == [0])
    assert harness.segments[0].payload == b"late" and harness.events == []


async def test_a_segment_that_hangs_times_out_and_the_next_one_is_published(
    harness: Harness,
) -> None:
    harness.playlist.add(2)
    harness.origin.routes["/seg0.ts"] = Response(hang=True)
    harness.follow(request_timeout=0.2, max_retries=0)
    await harness.until(lambda: harness.seqs == [1])
    (event,) = harness.of_kind(StreamEventKind.TIMEOUT)
    assert event.seq == 0 and "0.2 s" in event.detail
    assert harness.errors("timeout") == 1


async def test_stop_is_seen_within_a_second_even_during_a_hanging_request(
    harness: Harness,
) -> None:
    harness.origin.routes["/live.m3u8"] = Response(hang=True)
    harness.follow(request_timeout=30)
    await wait_for(lambda: bool(harness.origin.hits("/live.m3u8")), timeout=2)
    # The fixture sets stop and asserts that run returns within a second.


async def test_a_refused_connection_is_reported_and_following_resumes_when_the_origin_is_back(
    harness: Harness,
) -> None:
    await harness.origin.stop()
    harness.playlist.add(1)
    harness.follow()
    await harness.until(lambda: bool(harness.of_kind(StreamEventKind.HTTP_ERROR)))
    event = harness.of_kind(StreamEventKind.HTTP_ERROR)[0]
    assert event.detail == "connection refused" and event.status is None
    assert event.url == harness.origin.url("/live.m3u8")
    assert harness.errors("http_error") >= 1
    await harness.origin.start()
    await harness.until(lambda: harness.seqs == [0])


async def test_a_playlist_error_status_and_a_malformed_playlist_are_reported_and_survived(
    harness: Harness,
) -> None:
    harness.playlist.add(1)
    good = harness.playlist.render
    garbage = Response(body=b"<html>502 Bad Gateway</html>")
    harness.origin.routes["/live.m3u8"] = [good(), Response(500), Response(500), garbage]
    harness.follow()
    await harness.until(lambda: len(harness.of_kind(StreamEventKind.PLAYLIST_PARSE)) >= 1)
    harness.playlist.add(1)
    harness.origin.routes["/live.m3u8"] = good
    await harness.until(lambda: harness.seqs == [0, 1])
    (status_event,) = harness.of_kind(StreamEventKind.HTTP_ERROR)
    assert status_event.status == 500 and status_event.seq is None
    parse_event = harness.of_kind(StreamEventKind.PLAYLIST_PARSE)[0]
    assert "line 1: missing #EXTM3U" in parse_event.detail
    assert harness.errors("http_error") == 1 and harness.errors("playlist_parse") >= 1


async def test_a_stale_playlist_is_reported_once_per_episode_and_its_recovery_too(
    harness: Harness,
) -> None:
    harness.playlist.add(1)
    harness.follow(stale_after_targets=1)
    await harness.until(lambda: bool(harness.of_kind(StreamEventKind.STALE_PLAYLIST)))
    assert harness.gauge("vqm_ingest_up") == 0
    await asyncio.sleep(0.6)  # at least one more unchanged reload: no second event
    harness.playlist.add(1)
    await harness.until(lambda: harness.seqs == [0, 1])
    await harness.until(lambda: bool(harness.of_kind(StreamEventKind.RECOVERED)))
    (stale,) = harness.of_kind(StreamEventKind.STALE_PLAYLIST)
    assert "media sequence 0" in stale.detail and "unchanged" in stale.detail
    assert harness.kinds == ["stale_playlist", "recovered"]
    assert harness.errors("stale_playlist") == 1 and harness.errors("recovered") == 0
    assert harness.gauge("vqm_ingest_up") == 1


async def test_segments_that_left_the_window_unfetched_are_one_gap_event_naming_the_range(
    harness: Harness,
) -> None:
    harness.playlist.add(2)
    harness.follow()
    await harness.until(lambda: harness.seqs == [0, 1])
    harness.playlist.slide_to(5, 2)
    await harness.until(lambda: harness.seqs == [0, 1, 5, 6])
    (gap,) = harness.of_kind(StreamEventKind.GAP)
    assert gap.seq == 2 and "segments 2-4 (3)" in gap.detail
    assert harness.errors("gap") == 1
    after = harness.segments[2]
    assert after.discontinuity and not harness.segments[3].discontinuity
    assert after.media_start == pytest.approx(2.0 + 3 * 1.0)  # unseen ones: a target each


async def recorded(harness: Harness, seq: int, media_end: float) -> Positions:
    """Positions on a memory store, holding ``seq`` as the channel's last published segment."""
    harness.positions = Positions(MemoryStateStore(), harness.metrics, ttl=60)
    position = Position(seq=seq, media_end=media_end, published_at=time.time())
    await harness.positions.save("news", position)
    return harness.positions


async def test_a_follower_resumes_right_after_the_recorded_segment_while_it_is_listed(
    harness: Harness,
) -> None:
    harness.playlist.slide_to(10, 6)  # 10..15 listed; 12 was the last one published
    positions = await recorded(harness, seq=12, media_end=26.0)
    harness.follow(start="live_edge")
    await harness.until(lambda: harness.seqs == [13, 14, 15])
    assert [s.media_start for s in harness.segments] == [26.0, 27.0, 28.0], "one timeline"
    assert not any(s.discontinuity for s in harness.segments)
    assert harness.events == []

    async def recorded_the_newest() -> bool:
        position = await positions.load("news")
        return position is not None and (position.seq, position.media_end) == (15, 29.0)

    await wait_for_async(recorded_the_newest, timeout=2)


async def test_a_recorded_segment_no_longer_listed_is_a_gap_and_the_oldest_listed_comes_next(
    harness: Harness,
) -> None:
    harness.playlist.slide_to(10, 3)
    await recorded(harness, seq=5, media_end=12.0)
    harness.follow(start="live_edge")
    await harness.until(lambda: harness.seqs == [10, 11, 12])
    (gap,) = harness.of_kind(StreamEventKind.GAP)
    assert gap.seq == 6 and "segments 6-9 (4)" in gap.detail
    assert harness.errors("gap") == 1
    assert harness.segments[0].discontinuity
    assert harness.segments[0].media_start == pytest.approx(12.0 + 4 * 1.0)


async def test_an_unreadable_position_is_counted_and_following_starts_as_configured(
    harness: Harness,
) -> None:
    harness.playlist.slide_to(10, 3)
    store = MemoryStateStore()
    await store.set(POSITION_NS, "news", "{not json")
    harness.positions = Positions(store, harness.metrics, ttl=60)
    harness.follow(start="live_edge")
    await harness.until(lambda: harness.seqs == [12])
    assert harness.errors("position") == 1


async def test_a_discontinuity_is_reported_and_flagged_on_its_segment(harness: Harness) -> None:
    harness.playlist.add(3)
    harness.playlist.discontinuity_before = {1}
    harness.follow()
    await harness.until(lambda: harness.seqs == [0, 1, 2])
    assert [s.discontinuity for s in harness.segments] == [False, True, False]
    (event,) = harness.of_kind(StreamEventKind.DISCONTINUITY)
    assert event.seq == 1 and "EXT-X-DISCONTINUITY" in event.detail
    assert harness.errors("discontinuity") == 1


async def test_an_origin_restart_that_resets_the_sequence_is_followed_from_the_new_one(
    harness: Harness,
) -> None:
    harness.playlist.slide_to(100, 2)
    harness.follow()
    await harness.until(lambda: harness.seqs == [100, 101])
    harness.playlist.slide_to(0, 2)
    await harness.until(lambda: harness.seqs == [100, 101, 0, 1])
    (event,) = harness.of_kind(StreamEventKind.DISCONTINUITY)
    assert "went back from 101 to 1" in event.detail
    assert harness.segments[2].discontinuity


@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "streamed"])
async def test_an_oversize_segment_is_reported_not_published_and_the_next_one_is(
    harness: Harness, send_length: bool
) -> None:
    harness.playlist.add(2)
    harness.origin.routes["/seg0.ts"] = Response(body=b"x" * 5000, send_length=send_length)
    harness.follow(max_segment_bytes=1000)
    await harness.until(lambda: harness.seqs == [1])
    (event,) = harness.of_kind(StreamEventKind.OVERSIZE)
    assert event.seq == 0 and "1000-byte limit" in event.detail
    assert harness.errors("oversize") == 1
    assert len(harness.origin.hits("/seg0.ts")) == 1  # refused, never retried


async def test_the_channel_is_down_after_three_target_durations_unreachable_and_up_again(
    harness: Harness,
) -> None:
    harness.playlist.add(1)
    harness.follow()
    await harness.until(lambda: harness.seqs == [0])
    assert harness.gauge("vqm_ingest_up") == 1
    await harness.origin.stop()
    lost = time.monotonic()
    await wait_for(lambda: harness.gauge("vqm_ingest_up") == 0, timeout=6)
    assert time.monotonic() - lost >= 2.5
    harness.playlist.add(1)
    await harness.origin.start()
    await harness.until(lambda: harness.seqs == [0, 1])
    assert harness.gauge("vqm_ingest_up") == 1


async def test_a_bus_failure_is_caught_at_the_loop_boundary_and_following_continues(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.playlist.add(1)
    real_publish = harness.bus.publish
    failures = {"left": 1}

    async def flaky_publish(topic: str, key: str, value: bytes) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("broker went away")
        await real_publish(topic, key, value)

    monkeypatch.setattr(harness.bus, "publish", flaky_publish)
    harness.follow()
    await wait_for(lambda: harness.errors("internal") == 1, timeout=3)
    harness.playlist.add(1)
    await harness.until(lambda: harness.seqs == [1])


async def test_an_empty_vod_playlist_ends_the_run_at_once(harness: Harness) -> None:
    harness.playlist.endlist = True
    harness.follow()
    assert harness.task is not None
    await asyncio.wait_for(harness.task, timeout=2)
    await harness.collect()
    assert harness.segments == [] and harness.events == []


async def test_a_variant_that_disappears_sends_the_follower_back_to_the_master_playlist(
    harness: Harness,
) -> None:
    harness.playlist.add(1)
    master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=%d\n%s\n"
    routes = harness.origin.routes
    routes["/master.m3u8"] = [
        Response(body=master % (1, b"live.m3u8")),
        Response(body=master % (2, b"v2.m3u8")),
    ]
    harness.follow(url=harness.origin.url("/master.m3u8"))
    await harness.until(lambda: harness.seqs == [0])
    routes["/v2.m3u8"] = routes.pop("/live.m3u8")
    harness.playlist.add(1)
    await harness.until(lambda: harness.seqs == [0, 1])
    assert harness.of_kind(StreamEventKind.HTTP_ERROR)[0].status == 404
    assert len(harness.origin.hits("/master.m3u8")) == 2
