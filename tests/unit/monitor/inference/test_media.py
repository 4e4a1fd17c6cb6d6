"""Decoding within bounds: what a hostile or unusual stream (4K60, 16-channel audio, tiny
pictures) becomes before any detector sees it."""

from __future__ import annotations

import gc
import io

import av
import numpy as np
import pytest

from monitor.inference.media import decode_bytes
from monitor.inference.segment import DecodeNeeds


def encode(width: int, height: int, frames: int, fps: int = 60) -> bytes:
    """MPEG-TS of a grey ramp picture."""
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        ramp = np.tile(np.linspace(16, 235, width, dtype=np.uint8), (height, 1))
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(np.stack([ramp] * 3, axis=-1), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return out.getvalue()


def many_channels(layout: str, channels: int) -> bytes:
    """One second of a tone in every channel of ``layout`` (PCM in Matroska)."""
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as container:
        audio = container.add_stream("pcm_s16le", rate=48000, layout=layout)
        tone = (3000 * np.sin(np.arange(48000) / 10.0)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone, channels).reshape(1, -1), format="s16", layout=layout
        )
        frame.sample_rate = 48000
        for packet in [*audio.encode(frame), *audio.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def test_uhd_pictures_reach_the_detectors_at_most_1080_lines_with_their_luma_codes() -> None:
    data = encode(3840, 2160, 6)
    decoded = decode_bytes(data, DecodeNeeds(audio=False))
    assert decoded.luma.shape == (6, 1080, 1920)  # 4x less to hold than the picture as coded
    coded = decode_bytes(data, DecodeNeeds(audio=False, luma_limit=(3840, 2160))).luma
    assert coded.shape == (6, 2160, 3840)
    # Area averages of the coded luma: the same codes (black stays black), only fewer of them.
    halves = coded[0].reshape(1080, 2, 1920, 2).mean(axis=(1, 3))
    assert np.abs(decoded.luma[0].astype(float) - halves).max() <= 1.0


def test_rgb_pictures_are_converted_at_the_size_their_detector_judges() -> None:
    data = encode(1920, 1080, 4, fps=25)
    needs = DecodeNeeds(luma=False, rgb=True, audio=False, rgb_limit=(960, 540))
    small = decode_bytes(data, needs).rgb
    full = decode_bytes(data, DecodeNeeds(luma=False, rgb=True, audio=False)).rgb
    assert small is not None and full is not None
    assert small.shape == (4, 540, 960, 3) and full.shape == (4, 1080, 1920, 3)
    halves = full[0].astype(float).reshape(540, 2, 960, 2, 3).mean(axis=(1, 3))
    assert np.abs(small[0] - halves).mean() < 2.0  # area averages, not a sampled picture


def test_pictures_that_fit_are_kept_as_coded() -> None:
    assert decode_bytes(encode(1280, 720, 3, fps=25), DecodeNeeds(audio=False)).luma.shape[1:] == (
        720,
        1280,
    )


@pytest.mark.parametrize(("layout", "channels"), [("7.1", 8), ("hexadecagonal", 16), ("22.2", 24)])
def test_audio_of_many_channels_is_mixed_to_the_stereo_the_detectors_read(
    layout: str, channels: int
) -> None:
    decoded = decode_bytes(many_channels(layout, channels))
    assert decoded.audio.shape == (2, 48000)
    assert float(np.abs(decoded.audio).max()) > 0.05  # the tone is there, not silence


def two_sizes() -> bytes:
    """One second at 320x180, then one at 160x90: an encoder that switched size mid-segment."""
    from monitor.app.synthetic.channel import SyntheticChannel

    big = SyntheticChannel(seed=1, width=320, height=180, segment_duration=1.0, scenes=["studio"])
    small = SyntheticChannel(seed=1, width=160, height=90, segment_duration=1.0, scenes=["studio"])
    return big.segment_bytes(0) + small.segment_bytes(1)


def test_a_segment_whose_picture_changes_size_is_judged_whole_at_its_first_size() -> None:
    segment = decode_bytes(two_sizes(), DecodeNeeds(luma=True, audio=True))
    assert segment.luma.shape == (50, 180, 320)
    assert segment.video_times[0] == pytest.approx(0.0, abs=0.05)
    assert segment.video_times[-1] == pytest.approx(1.96, abs=0.05)
    assert segment.audio.shape[1] == pytest.approx(2 * 48000, rel=0.05)


def test_a_recording_is_cut_where_its_picture_changes_size() -> None:
    from monitor.inference.media import iter_decoded

    chunks = list(iter_decoded(io.BytesIO(two_sizes()), DecodeNeeds(luma=True), chunk_seconds=5))
    assert [c.luma.shape for c in chunks] == [(25, 180, 320), (25, 90, 160)]


def moving(seconds: float = 1.0) -> bytes:
    """A second of the synthetic studio at 320x180, 25 fps: every frame a different picture."""
    from monitor.app.synthetic.channel import SyntheticChannel

    channel = SyntheticChannel(seed=1, width=320, height=180, segment_duration=seconds)
    return channel.segment_bytes(0)


def colour(stride: int, luma: bool = False) -> DecodeNeeds:
    return DecodeNeeds(luma=luma, rgb=True, audio=False, rgb_stride=stride)


def test_rgb_is_converted_only_for_the_frames_its_stride_picks() -> None:
    data = moving()
    every = decode_bytes(data, colour(1, luma=True))
    fourth = decode_bytes(data, colour(4, luma=True))
    assert every.rgb is not None and fourth.rgb is not None and len(every.video_times) == 25
    assert fourth.rgb_index.tolist() == list(range(0, 25, 4))
    assert np.array_equal(fourth.rgb, every.rgb[::4])  # the same pictures, a quarter held
    assert not np.array_equal(fourth.rgb[0], fourth.rgb[1])
    assert np.array_equal(fourth.luma, every.luma) and np.array_equal(
        fourth.video_times, every.video_times
    )
    places, pictures = fourth.rgb_every(8)
    assert places.tolist() == [0, 8, 16, 24] and np.array_equal(pictures, every.rgb[::8])
    assert np.array_equal(every.rgb_every(8)[1], pictures)
    with pytest.raises(ValueError, match="every 4 frames"):
        fourth.rgb_every(6)


def test_the_rgb_stride_counts_the_frames_of_a_joined_segment_across_its_sizes() -> None:
    every = decode_bytes(two_sizes(), colour(1))
    third = decode_bytes(two_sizes(), colour(3))
    assert every.rgb is not None and third.rgb is not None
    assert third.rgb_index.tolist() == list(range(0, 50, 3))
    assert np.array_equal(third.rgb, every.rgb[::3])


def test_the_rgb_stride_restarts_with_each_chunk_of_a_recording() -> None:
    from monitor.inference.media import iter_decoded

    chunks = list(iter_decoded(io.BytesIO(two_sizes()), colour(3), chunk_seconds=5))
    assert [len(c.video_times) for c in chunks] == [25, 25]  # cut where the size changed
    assert [c.rgb_index.tolist() for c in chunks] == [list(range(0, 25, 3))] * 2
    assert [c.rgb.shape[1:3] for c in chunks if c.rgb is not None] == [(180, 320), (90, 160)]


def test_an_rgb_stride_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="rgb_stride"):
        DecodeNeeds(rgb=True, rgb_stride=0)


def views(full: bool = False) -> DecodeNeeds:
    return DecodeNeeds(
        luma=True, luma_full=full, luma_means=(4, 8), luma_sparse=(4, 8), audio=False
    )


def test_luma_views_taken_at_decode_are_those_of_the_whole_pictures() -> None:
    data = moving()
    whole = decode_bytes(data, views(full=True))
    held = decode_bytes(data, views())
    assert held.luma.size == 0 and whole.luma.shape == (25, 180, 320)  # no full-size copy
    assert sorted(held.means) == [4] and sorted(held.sparse) == [4]  # 8s derive from the 4s
    for factor in (4, 8, 16):
        assert np.array_equal(held.luma_means(factor), whole.luma_means(factor))
    for step in (4, 8):
        assert np.array_equal(held.luma_sparse(step), whole.luma[:, ::step, ::step])
    assert held.preview().shape == (25, 45, 80)  # the finest view: means and sparse at 4
    with pytest.raises(ValueError, match="neither decoded nor derivable"):
        held.luma_means(6)  # not asked for, and not a multiple of what was


def test_luma_views_of_a_segment_whose_picture_changes_size_cover_all_its_frames() -> None:
    whole = decode_bytes(two_sizes(), views(full=True))
    held = decode_bytes(two_sizes(), views())
    assert held.picture_size == (180, 320)
    assert held.luma_means(4).shape == (50, 45, 80) and held.luma_sparse(4).shape == (50, 45, 80)
    # The first second as decoded; the second scaled up from its own views, as the whole
    # pictures are, so the two agree within rounding.
    assert np.array_equal(held.luma_means(4)[:25], whole.luma_means(4)[:25])
    assert np.abs(held.luma_means(4)[25:] - whole.luma_means(4)[25:]).mean() < 2.0


def test_luma_view_factors_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DecodeNeeds(luma_means=(0,))


def test_reading_caption_data_leaves_every_frame_free_at_once() -> None:
    """A frame goes back to the decoder as soon as it is read: reading side data the usual
    way (``frame.side_data``) ties each frame into a reference cycle, and frames kept until
    the garbage collector runs doubled the cost of a decode."""
    data = encode(64, 48, 30)
    gc.collect()
    gc.disable()
    try:
        decoded = decode_bytes(data, DecodeNeeds(captions=True))
        left = gc.collect()
    finally:
        gc.enable()
    assert len(decoded.captions) == 30
    assert left == 0, f"{left} objects were waiting for the garbage collector"


def float_sound(seconds: float, bad: dict[int, float]) -> bytes:
    """Float PCM in Matroska: a 1 kHz tone at -20 dBFS (-20 LUFS in stereo) with the samples
    of ``bad`` (index: value) set to NaN, infinity or an absurd value, as a hostile or broken
    float stream can carry them."""
    tone = (0.1 * np.sin(2 * np.pi * 1000 * np.arange(int(seconds * 48000)) / 48000)).astype(
        np.float32
    )
    for index, value in bad.items():
        tone[index] = value
    stereo = np.stack([tone, tone])
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as container:
        stream = container.add_stream("pcm_f32le", rate=48000, layout="stereo")
        for start in range(0, stereo.shape[1], 4800):
            piece = np.ascontiguousarray(stereo[:, start : start + 4800])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def test_nan_infinite_and_absurd_samples_become_silence_and_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from monitor.inference.detectors.loudness import LoudnessConfig, LoudnessDetector

    data = float_sound(4.0, {50_000: np.nan, 60_000: np.inf, 70_000: -np.inf, 80_000: 3e38})
    with caplog.at_level("WARNING", logger="monitor.inference.media"):
        segment = decode_bytes(data, DecodeNeeds(luma=False, luma_full=False, audio=True))
    assert np.isfinite(segment.audio).all()
    assert segment.audio.shape == (2, 192_000)
    assert "8 broken audio samples" in caplog.text  # four a channel
    assert float(np.abs(segment.audio).max()) == pytest.approx(0.1, abs=1e-4)
    # one NaN used to poison the loudness meter's filter: no reading ever again
    detector = LoudnessDetector(LoudnessConfig(min_history=1.0))
    detector.detect(segment)
    assert detector.measurements()["integrated_lufs"] == pytest.approx(-20.0, abs=0.2)


def test_clean_float_sound_is_left_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="monitor.inference.media"):
        segment = decode_bytes(float_sound(1.0, {}), DecodeNeeds(luma=False, audio=True))
    assert "broken audio" not in caplog.text
    assert float(np.abs(segment.audio).max()) == pytest.approx(0.1, abs=1e-4)
