"""Packed audio segments (``.aac``: an ID3 timestamp, then ADTS) rewrapped as MPEG-TS, on
the ADTS FFmpeg copies out of its own HLS audio rendition: every frame keeps the time it had
in the MPEG-TS rendition, the join decodes with sound, and whatever bytes an origin serves
give MPEG-TS or a PackedError naming the fault, nothing else."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_ingest.packed import (
    AUDIO_PID,
    PackedError,
    as_transport_stream,
    id3_timestamp,
    packed_to_ts,
)
from stream_ingest.ts import PTS_HZ, pes_pts
from stream_ingest.tsjoin import join_audio, split_ts
from tests.unit.stream_ingest.multivariant import id3_timestamp_tag


def packed(root: Path, n: int) -> bytes:
    return (root / "2" / f"seg{n}.aac").read_bytes()


def audio_pts(ts: bytes) -> list[int]:
    parts = split_ts(ts)
    pid = next(s.pid for s in parts.streams if s.stream_type == 0x0F)
    return [pts for pts, _ in parts.pes_units(pid) if pts is not None]


def test_each_frame_gets_the_time_it_has_in_the_mpegts_rendition(
    media: Path, packed_media: Path
) -> None:
    for n in range(5):
        original = audio_pts((media / "2" / f"seg{n}.ts").read_bytes())
        rewrapped = audio_pts(packed_to_ts(packed(packed_media, n)))
        # FFmpeg's TS muxer puts several frames in one PES: each PES time is a frame's time.
        assert set(original) <= set(rewrapped), n
        assert rewrapped[1] - rewrapped[0] == round(1024 * PTS_HZ / 48000)


def test_a_packed_segment_joined_to_its_video_decodes_with_the_sound_of_its_time(
    packed_media: Path,
) -> None:
    video = (packed_media / "0" / "seg2.ts").read_bytes()
    joined = join_audio(video, [as_transport_stream(packed(packed_media, n)) for n in (1, 2)])
    assert joined.audio_missing < 0.05
    with av.open(io.BytesIO(joined.payload), format="mpegts") as container:
        assert isinstance(container, av.container.InputContainer)
        sound = [f for f in container.decode(audio=0)]
    assert sound[0].sample_rate == 48000
    assert sound[0].time == pytest.approx(joined.video[0], abs=1024 / 48000)
    assert sum(f.samples for f in sound) / 48000 == pytest.approx(2.0, abs=0.05)


def test_mpegts_passes_through_untouched(media: Path) -> None:
    data = (media / "2" / "seg0.ts").read_bytes()
    assert as_transport_stream(data) is data


def first_frame(adts: bytes) -> bytes:
    return adts[: (adts[3] & 0x03) << 11 | adts[4] << 3 | adts[5] >> 5]


def adts_of(root: Path) -> bytes:
    data = packed(root, 1)
    return data[id3_timestamp(data)[1] :]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda adts: b"ID3\x02\x00\x00\x00\x00\x00\x00" + adts, "not ID3v2.3 or v2.4"),
        (lambda adts: b"ID3\x04\x00\x00\x00\x00\x00\x80" + adts, "syncsafe"),
        (lambda adts: b"ID3\x04\x00\x00\x00\x7f\x7f\x7f" + adts, "the segment is shorter"),
        (lambda adts: b"ID3\x04\x00\x00\x00\x00\x00\x00" + adts, "no ID3 PRIV frame"),
        (lambda adts: id3_timestamp_tag(0), "no audio after the ID3 tag"),
        (lambda adts: id3_timestamp_tag(1 << 33 | 5) + adts, "wider than 33 bits"),
        (lambda adts: id3_timestamp_tag(90_000) + adts[:-10], "cut short"),
        (lambda adts: id3_timestamp_tag(90_000) + adts[:500] + b"junk" + adts[500:], "sync"),
        (lambda adts: id3_timestamp_tag(90_000) + b"\x0b\x77" + bytes(100), "AC-3 frame at"),
        (lambda adts: id3_timestamp_tag(90_000) + b"<html>404</html>", "no audio frame sync"),
        (
            lambda adts: id3_timestamp_tag(1) + first_frame(adts) + b"\xff\xfb\x90\x00",
            "changes",
        ),
    ],
)
def test_a_hostile_packed_segment_is_refused_with_the_reason(
    packed_media: Path, mangle, reason: str
) -> None:
    with pytest.raises(PackedError, match=reason):
        packed_to_ts(mangle(adts_of(packed_media)))


def test_the_timestamp_sets_the_first_frame_and_wraps_on_the_33_bit_clock(
    packed_media: Path,
) -> None:
    adts = adts_of(packed_media)
    stamps = audio_pts(packed_to_ts(id3_timestamp_tag((1 << 33) - 1000) + adts))
    assert stamps[0] == (1 << 33) - 1000 and stamps[-1] < 200_000
    first = split_ts(packed_to_ts(id3_timestamp_tag(123_456) + adts))
    assert pes_pts(next(p for p in first.packets if p.pid == AUDIO_PID and p.pusi).payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_bytes_give_mpegts_or_a_packed_error(packed_media: Path, data: st.DataObject) -> None:
    segment = bytearray(packed(packed_media, 1)[:4000])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(segment) - 1))
        segment[at] = data.draw(st.integers(0, 255))
    segment = segment[: data.draw(st.integers(0, len(segment)))]
    try:
        split_ts(as_transport_stream(bytes(segment)))
    except PackedError:
        pass
    except ValueError as exc:  # bytes no longer packed audio: the join refuses them itself
        assert not bytes(segment).startswith(b"ID3"), exc


@pytest.mark.parametrize(
    ("encoder", "muxer", "rate", "stream_type"),
    [
        ("ac3", "ac3", 48000, 0x81),
        ("ac3", "ac3", 44100, 0x81),
        ("eac3", "eac3", 48000, 0x87),
        ("libmp3lame", "mp3", 44100, 0x03),
        ("libmp3lame", "mp3", 22050, 0x04),
        ("mp2", "mp2", 48000, 0x03),
        ("aac", "adts", 32000, 0x0F),
    ],
)
def test_packed_ac3_eac3_and_mpeg_audio_decode_at_their_timestamp(
    tmp_path: Path, encoder: str, muxer: str, rate: int, stream_type: int
) -> None:
    """The raw streams FFmpeg's muxers write, behind an ID3 timestamp of 10 s: every frame is
    rewrapped, at the time its samples give, and FFmpeg decodes as many samples as from the
    raw stream itself."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs FFmpeg's CLI")
    raw = tmp_path / f"sound.{muxer}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=f=440:sample_rate={rate}:d=2",
         "-c:a", encoder, "-f", muxer, "-write_xing", "0", "-id3v2_version", "0", str(raw)]
        if muxer == "mp3" else
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=f=440:sample_rate={rate}:d=2",
         "-c:a", encoder, "-f", muxer, str(raw)],
        check=True, timeout=60,
    )  # fmt: skip
    ts = packed_to_ts(id3_timestamp_tag(10 * PTS_HZ) + raw.read_bytes())
    assert [s.stream_type for s in split_ts(ts).streams] == [stream_type]
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        assert isinstance(container, av.container.InputContainer)
        sound = list(container.decode(audio=0))
    with av.open(str(raw)) as container:
        assert isinstance(container, av.container.InputContainer)
        expected = sum(f.samples for f in container.decode(audio=0))
    assert sound[0].time == pytest.approx(10.0, abs=1e-3)
    assert sum(f.samples for f in sound) == expected
    last = sound[-1]
    assert last.time + last.samples / last.sample_rate == pytest.approx(10 + expected / rate)
