"""The plain-Python MPEG-TS reader: packets, sync, PSI, PES timestamps and the segmenter."""

from __future__ import annotations

import pytest

from stream_ingest.ts import (
    PTS_HZ,
    PTS_WRAP,
    PsiError,
    SectionReader,
    Segmenter,
    TsFramer,
    Unwrapper,
    parse_packet,
    parse_pat,
    parse_pmt,
    pes_pts,
)
from tests.unit.stream_ingest.tsbuild import (
    AUDIO_PID,
    PMT_PID,
    VIDEO_PID,
    Builder,
    packet,
    pat,
    pes,
    pmt,
)


def test_a_packet_header_gives_pid_counter_flags_and_pcr() -> None:
    raw = packet(VIDEO_PID, b"\x00" * 20, 7, pusi=True, random_access=True, pcr=123_456_789)
    p = parse_packet(raw)
    assert (p.pid, p.cc, p.pusi, p.random_access, p.pcr) == (VIDEO_PID, 7, True, True, 123_456_789)
    assert p.payload == b"\x00" * 20


def test_aligned_datagrams_are_split_into_packets_without_errors() -> None:
    framer = TsFramer()
    packets = Builder().frames(0, 3)
    data = b"".join(packets[:7])
    assert framer.feed(data) == packets[:7]
    assert framer.sync_errors == 0 and framer.in_sync


def test_bad_sync_bytes_are_counted_and_sync_is_lost_then_regained_after_five_packets() -> None:
    framer = TsFramer(stream=True)
    good = Builder().frames(0, 10)
    bad = [b"\x00" + p[1:] for p in good[:3]]
    out = framer.feed(b"".join(good[:2] + bad))
    assert out == good[:2]
    assert framer.sync_errors >= 2 and not framer.in_sync and framer.sync_lost == 1
    assert framer.feed(b"".join(good[2:6])) == []  # four good packets: not yet in sync
    assert framer.feed(good[6]) == good[2:7] and framer.in_sync


def test_a_stream_carries_a_partial_packet_to_the_next_read() -> None:
    framer = TsFramer(stream=True)
    data = b"".join(Builder().frames(0, 2))
    assert len(framer.feed(data[:300])) == 1
    assert len(framer.feed(data[300:])) == len(data) // 188 - 1
    assert framer.sync_errors == 0


def test_pat_and_pmt_sections_parse_and_a_bad_crc_is_refused() -> None:
    assert parse_pat(pat(3)).programs == {1: PMT_PID}
    assert parse_pat(pat(3)).version == 3
    table = parse_pmt(pmt())
    assert table.pcr_pid == VIDEO_PID
    assert [(s.pid, s.codec, s.kind) for s in table.streams] == [
        (VIDEO_PID, "h264", "video"),
        (AUDIO_PID, "aac", "audio"),
    ]
    broken = bytearray(pmt())
    broken[-1] ^= 0xFF
    with pytest.raises(PsiError, match="CRC"):
        parse_pmt(bytes(broken))
    with pytest.raises(PsiError, match="table_id 0x02"):
        parse_pat(pmt())


def test_a_section_spanning_two_packets_is_reassembled() -> None:
    section = pmt(streams=tuple((0x0F, 0x200 + i) for i in range(40)))  # over 184 bytes
    assert len(section) > 184
    data = b"\x00" + section
    reader = SectionReader()
    first = reader.feed(parse_packet(packet(PMT_PID, data[:184], 0, pusi=True)))
    rest = data[184:]
    second = reader.feed(parse_packet(packet(PMT_PID, rest + b"\xff" * (184 - len(rest)), 1)))
    assert first == [] and second == [section]
    assert len(parse_pmt(second[0]).streams) == 40


def test_pes_timestamps_are_33_bit_and_unwrap_across_the_wrap() -> None:
    assert pes_pts(pes(PTS_WRAP - 1, b"")) == PTS_WRAP - 1
    unwrap = Unwrapper()
    assert [unwrap(v) for v in (PTS_WRAP - 3000, PTS_WRAP - 1, 2999, 1000)] == [
        PTS_WRAP - 3000,
        PTS_WRAP - 1,
        PTS_WRAP + 2999,
        PTS_WRAP + 1000,  # a step back (B-frame order) stays a step back
    ]


def _segments(builder: Builder, frames: int, target: float = 2.0, **kwargs: float) -> list:
    segmenter = Segmenter(target, kwargs.get("max_duration", 10.0))
    out = []
    for raw in builder.frames(0, frames):
        out += segmenter.feed(parse_packet(raw))
    tail = segmenter.flush()
    return out + ([tail] if tail else [])


def test_segments_are_cut_at_the_first_keyframe_after_the_target_with_pts_kept() -> None:
    builder = Builder(gop=25, start_pts=900_000)  # a keyframe a second
    segments = _segments(builder, 25 * 7)  # 7 s
    assert [s.duration for s in segments] == [2.0, 2.0, 2.0, pytest.approx(1.0)]
    assert [s.media_start for s in segments] == [10.0, 12.0, 14.0, 16.0]
    assert all(s.keyframe for s in segments)
    for segment in segments:
        first = [parse_packet(segment.payload[i : i + 188]) for i in range(0, 188 * 3, 188)]
        assert [p.pid for p in first] == [0, PMT_PID, VIDEO_PID]  # decodes alone
        assert (
            first[2].random_access
            and pes_pts(first[2].payload) % PTS_WRAP
            == round(segment.media_start * PTS_HZ) % PTS_WRAP
        )


def test_nothing_is_emitted_before_the_first_keyframe() -> None:
    builder = Builder(gop=25)
    segmenter = Segmenter(2.0, 10.0)
    out = []
    for raw in builder.frames(1, 25 * 3 + 1):  # joins one frame after a keyframe
        out += segmenter.feed(parse_packet(raw))
    assert [s.media_start for s in out] == [10 + 1.0]  # from the keyframe at 1 s


def test_a_keyframe_found_by_its_idr_nal_counts_without_the_random_access_flag() -> None:
    segments = _segments(Builder(gop=25, rai=False), 25 * 5)
    assert [s.media_start for s in segments][:2] == [10.0, 12.0]


def test_without_keyframes_a_segment_is_cut_at_the_longest_duration() -> None:
    builder = Builder(gop=10_000)  # one keyframe, at the start
    segments = _segments(builder, 25 * 7, target=2.0, max_duration=3.0)
    assert [s.duration for s in segments[:2]] == [3.0, 3.0]
    assert segments[0].keyframe and not segments[1].keyframe


def test_media_times_run_on_across_the_33_bit_wrap() -> None:
    builder = Builder(gop=25, start_pts=PTS_WRAP - 90_000)  # wraps after one second
    segments = _segments(builder, 25 * 5)
    starts = [s.media_start for s in segments]
    assert starts == sorted(starts)
    assert starts[1] - starts[0] == pytest.approx(2.0)
    assert not any(s.discontinuity for s in segments)


def test_a_jump_in_the_timeline_marks_the_next_segment_a_discontinuity() -> None:
    builder = Builder(gop=25)
    segmenter = Segmenter(2.0, 10.0)
    out = []
    for raw in builder.frames(0, 60):
        out += segmenter.feed(parse_packet(raw))
    builder.start_pts += 3600 * PTS_HZ  # an encoder restart an hour on
    for raw in builder.frames(60, 150):
        out += segmenter.feed(parse_packet(raw))
    assert any(s.discontinuity for s in out)
    assert max(s.duration for s in out) <= 3.0
