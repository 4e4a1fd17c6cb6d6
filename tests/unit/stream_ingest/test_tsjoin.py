"""Joining an alternate audio rendition's MPEG-TS to a video segment, on segments FFmpeg's
HLS muxer wrote: the result decodes with both streams, the sound is the one of the pictures'
time, and whatever bytes an origin serves give a join or a JoinError, nothing else."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_ingest.ts import PACKET_SIZE
from stream_ingest.tsjoin import AUDIO_PID_BASE, Joined, JoinError, join_audio, split_ts


def video(media: Path, n: int) -> bytes:
    return (media / "0" / f"seg{n}.ts").read_bytes()


def audio(media: Path, *numbers: int) -> list[bytes]:
    return [(media / "2" / f"seg{n}.ts").read_bytes() for n in numbers]


def decoded_span(payload: bytes, kind: str) -> tuple[float, float]:
    """First and last decoded frame time of the payload's stream of ``kind``, by PyAV."""
    with av.open(io.BytesIO(payload), format="mpegts") as container:
        assert isinstance(container, av.container.InputContainer)
        stream = next(s for s in container.streams if s.type == kind)
        frames = container.decode(stream)
        times = [float(t) for f in frames if (t := getattr(f, "time", None)) is not None]
    return min(times), max(times)


def test_a_joined_segment_decodes_with_the_pictures_and_the_sound_of_their_time(
    media: Path,
) -> None:
    joined = join_audio(video(media, 2), audio(media, 1, 2, 3))

    assert joined.audio_missing < 0.1
    start, end = joined.video
    first_sound, last_sound = decoded_span(joined.payload, "audio")
    first_picture, _ = decoded_span(joined.payload, "video")
    assert first_picture == pytest.approx(start)
    assert first_sound <= start + 0.05 and last_sound >= end - 0.1
    assert last_sound <= end + 0.5  # the audio of later pictures stays out


def test_the_video_packets_are_kept_as_they_were_and_the_audio_gets_a_pid_of_its_own(
    media: Path,
) -> None:
    original = split_ts(video(media, 1))
    joined = split_ts(join_audio(video(media, 1), audio(media, 0, 1, 2)).payload)

    video_pid = original.streams[0].pid
    assert [p.raw for p in joined.packets if p.pid == video_pid] == [
        p.raw for p in original.packets if p.pid == video_pid
    ]
    audio_pid = split_ts(audio(media, 1)[0]).streams[0].pid
    assert audio_pid == video_pid  # FFmpeg numbers each rendition's stream alike
    assert [s.pid for s in joined.streams] == [video_pid, AUDIO_PID_BASE]
    counters = [p.cc for p in joined.packets if p.pid == AUDIO_PID_BASE]
    assert counters == [n % 16 for n in range(len(counters))]


def test_consecutive_segments_together_carry_all_the_sound_between_them(media: Path) -> None:
    pieces = audio(media, 0, 1, 2, 3, 4, 5)
    joins = [join_audio(video(media, n), pieces) for n in range(5)]
    for before, after in zip(joins, joins[1:], strict=False):
        assert before.audio is not None and after.audio is not None
        assert before.audio[1] >= after.video[0] >= after.audio[0]


def test_sound_of_another_time_is_not_joined(media: Path) -> None:
    joined = join_audio(video(media, 0), audio(media, 4))

    assert joined.audio is None
    assert joined.audio_missing == pytest.approx(joined.video[1] - joined.video[0])
    assert [s.pid for s in split_ts(joined.payload).streams][-1] == AUDIO_PID_BASE


def test_bytes_that_are_not_mpeg_ts_are_a_join_error(media: Path) -> None:
    with pytest.raises(JoinError, match="not MPEG-TS"):
        join_audio(b"<html>404</html>", audio(media, 0))
    with pytest.raises(JoinError, match="PAT|PMT"):
        join_audio(video(media, 0), [b"\x47" + bytes(PACKET_SIZE - 1)])


@pytest.mark.fuzz
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_segments_give_a_join_or_a_join_error(media: Path, data: st.DataObject) -> None:
    segments = [bytearray(video(media, 1)[: 40 * PACKET_SIZE]), bytearray(audio(media, 1)[0])]
    for segment in segments:
        for _ in range(data.draw(st.integers(0, 40))):
            segment[data.draw(st.integers(0, len(segment) - 1))] = data.draw(st.integers(0, 255))
        del segment[data.draw(st.integers(0, len(segment))) :]
    try:
        joined = join_audio(bytes(segments[0]), [bytes(segments[1])])
    except JoinError:
        return
    assert isinstance(joined, Joined) and len(joined.payload) % PACKET_SIZE == 0
