"""The time fMP4 segments cover, read from FFmpeg's own ``-hls_segment_type fmp4`` output:
consecutive fragments meet, each span is the one PyAV decodes, and whatever bytes an origin
serves give a span, None or an Mp4Error, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.inference.media import decode_bytes
from monitor.inference.segment import DecodeNeeds
from stream_ingest.mp4 import Mp4Error, fragment_span, tracks


def segment(root: Path, rendition: str, n: int) -> bytes:
    init = (root / rendition / f"init_{rendition}.mp4").read_bytes()
    return init + (root / rendition / f"seg{n}.m4s").read_bytes()


def test_the_fragments_of_each_rendition_follow_on_from_each_other(fmp4_media: Path) -> None:
    assert {t.handler for t in tracks(segment(fmp4_media, "2", 0)).values()} == {b"soun"}
    for rendition, handler in (("0", b"vide"), ("2", b"soun")):
        spans = [fragment_span(segment(fmp4_media, rendition, n), handler) for n in range(5)]
        assert all(s is not None for s in spans)
        for before, after in zip(spans, spans[1:], strict=False):
            assert before is not None and after is not None
            assert after[0] == pytest.approx(before[1])
        assert spans[0] is not None and spans[0][0] == 0.0
    assert fragment_span(segment(fmp4_media, "2", 0), b"vide") is None  # no such track


def test_a_video_fragments_span_is_the_time_its_pictures_decode_at(fmp4_media: Path) -> None:
    data = segment(fmp4_media, "0", 2)
    span = fragment_span(data, b"vide")
    decoded = decode_bytes(data, DecodeNeeds())
    assert span is not None
    # Edit lists are not applied: the encoder's delay (two frames here) may lie between.
    assert decoded.video_times[0] == pytest.approx(span[0], abs=0.1)
    assert decoded.video_times[-1] + 0.04 == pytest.approx(span[1], abs=0.1)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x04moov",  # smaller than its own header
        b"\x00\x00\xff\xffmoov" + bytes(20),  # larger than the segment
        b"\x00\x00\x00\x01moov\x00\x00",  # a 64-bit size cut off
        b"\x00\x00\x00\x10moov\x00\x00\x00\x08trak",  # a track without its boxes
    ],
)
def test_boxes_that_do_not_read_are_an_mp4_error(data: bytes) -> None:
    with pytest.raises(Mp4Error):
        fragment_span(data, b"soun")


def test_a_fragment_without_its_init_section_has_no_span(fmp4_media: Path) -> None:
    assert fragment_span((fmp4_media / "2" / "seg1.m4s").read_bytes(), b"soun") is None


def test_sound_that_does_not_decode_leaves_the_pictures(fmp4_media: Path) -> None:
    decoded = decode_bytes(segment(fmp4_media, "0", 1), DecodeNeeds(audio=True), b"garbage")
    assert len(decoded.video_times) == 50 and decoded.audio.shape[1] == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_bytes_give_a_span_none_or_an_mp4_error(fmp4_media: Path, data: st.DataObject) -> None:
    raw = bytearray(segment(fmp4_media, "2", 1))
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        span = fragment_span(bytes(raw), b"soun")
    except Mp4Error:
        return
    assert span is None or span[0] <= span[1]
