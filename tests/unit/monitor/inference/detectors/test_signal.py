"""Freeze, black and silence on generated frames and audio (no decoding involved)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.inference.detectors.black import BlackConfig, BlackDetector
from monitor.inference.detectors.freeze import FreezeConfig, FreezeDetector
from monitor.inference.detectors.silence import SilenceConfig, SilenceDetector
from monitor.inference.segment import DecodedSegment

FPS = 25
H, W = 180, 320


def textured(
    rng: np.random.Generator, n: int, motion: float = 3.0, base: float = 110
) -> np.ndarray:
    """Frames of a smooth texture that pans ``motion`` pixels per frame, with grain."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for i in range(n):
        shift = i * motion
        img = (
            base
            + 40 * np.sin((x + shift) / 9.0) * np.cos(y / 7.0)
            + 20 * np.sin((x + y + shift) / 23.0)
        )
        img += rng.normal(0, 2.0, img.shape)
        frames.append(np.clip(img, 16, 235))
    return np.stack(frames).astype(np.uint8)


def segment(luma: np.ndarray, start: float = 100.0, full_range: bool = False) -> DecodedSegment:
    return DecodedSegment(
        video_times=start + np.arange(len(luma)) / FPS, luma=luma, fps=FPS, full_range=full_range
    )


def audio_segment(audio: np.ndarray, start: float = 50.0) -> DecodedSegment:
    return DecodedSegment(audio=audio.astype(np.float32), audio_rate=48_000, audio_start=start)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_black_frames_are_reported_with_their_times(rng: np.random.Generator) -> None:
    luma = textured(rng, 50)
    luma[20:40] = 16 + rng.integers(0, 2, luma[20:40].shape, dtype=np.uint8)
    spans = BlackDetector(BlackConfig()).detect(segment(luma))
    assert len(spans) == 1
    assert spans[0].start == pytest.approx(100 + 20 / FPS)
    assert spans[0].end == pytest.approx(100 + 40 / FPS)
    assert spans[0].confidence > 0.95


def test_a_dark_scene_with_structure_is_not_black(rng: np.random.Generator) -> None:
    dark = textured(rng, 25, base=30).astype(np.float32)
    dark = np.clip((dark - 16) * 0.25 + 18, 16, 235).astype(np.uint8)
    dark[:, 40:60, 100:140] = 90  # a lit window in a night scene
    assert BlackDetector(BlackConfig()).detect(segment(dark)) == []


def test_full_range_black_is_zero_and_limited_range_sixteen_is_black_only_when_limited() -> None:
    zeros = np.zeros((10, H, W), np.uint8)
    assert BlackDetector(BlackConfig()).detect(segment(zeros, full_range=True))
    mid_grey_full = np.full((10, H, W), 40, np.uint8)
    assert not BlackDetector(BlackConfig()).detect(segment(mid_grey_full, full_range=True))


def test_frozen_frames_are_a_freeze_even_with_coding_noise(rng: np.random.Generator) -> None:
    luma = textured(rng, 75)
    still = luma[25].astype(np.int16)
    for i in range(25, 75):
        luma[i] = np.clip(still + rng.integers(-1, 2, still.shape), 0, 255).astype(np.uint8)
    spans = FreezeDetector(FreezeConfig()).detect(segment(luma))
    assert len(spans) == 1
    assert spans[0].start == pytest.approx(100 + 25 / FPS)
    assert spans[0].end == pytest.approx(100 + 75 / FPS)


def test_a_slow_pan_is_not_frozen(rng: np.random.Generator) -> None:
    luma = textured(rng, 75, motion=0.5)
    spans = FreezeDetector(FreezeConfig()).detect(segment(luma))
    assert max((s.end - s.start for s in spans), default=0.0) < 0.5


def test_a_talking_head_with_only_the_mouth_moving_is_not_frozen(rng: np.random.Generator) -> None:
    base = textured(rng, 1)[0]
    luma = np.repeat(base[None], 75, axis=0)
    for i in range(75):
        opening = int(6 + 5 * np.sin(i / 2.0))
        luma[i, 110 : 110 + opening, 150:175] = 30  # the mouth opens and closes
    spans = FreezeDetector(FreezeConfig()).detect(segment(luma))
    # The mouth may rest for a few frames; no still stretch may come near a freeze alert.
    assert max((s.end - s.start for s in spans), default=0.0) < 0.5


def test_black_is_not_also_reported_as_freeze() -> None:
    luma = np.full((50, H, W), 16, np.uint8)
    assert FreezeDetector(FreezeConfig()).detect(segment(luma)) == []


def speech_like(rng: np.random.Generator, seconds: float, level_db: float) -> np.ndarray:
    t = np.arange(int(seconds * 48_000)) / 48_000
    carrier = (
        np.sin(2 * np.pi * 180 * t)
        + 0.5 * np.sin(2 * np.pi * 720 * t)
        + 0.05 * rng.normal(size=t.size)
    )
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)  # syllables, never fully closed
    signal = carrier * envelope
    signal *= 10 ** (level_db / 20) / np.sqrt(np.mean(signal**2))
    return np.stack([signal, signal])


def test_digital_silence_is_reported_where_it_is(rng: np.random.Generator) -> None:
    audio = speech_like(rng, 2.0, -20)
    audio[:, 48_000:] = 0.0
    spans = SilenceDetector(SilenceConfig()).detect(audio_segment(audio))
    assert len(spans) == 1
    assert spans[0].start == pytest.approx(51.0, abs=0.05)
    assert spans[0].end == pytest.approx(52.0, abs=0.05)


def test_a_quiet_passage_is_not_silence(rng: np.random.Generator) -> None:
    audio = speech_like(rng, 2.0, -45)
    assert SilenceDetector(SilenceConfig()).detect(audio_segment(audio)) == []


def test_silence_in_one_channel_only_is_not_silence(rng: np.random.Generator) -> None:
    audio = speech_like(rng, 2.0, -20)
    audio[1] = 0.0
    assert SilenceDetector(SilenceConfig()).detect(audio_segment(audio)) == []


def test_detectors_return_nothing_for_a_segment_without_their_media() -> None:
    empty = DecodedSegment()
    for detector in (
        BlackDetector(BlackConfig()),
        FreezeDetector(FreezeConfig()),
        SilenceDetector(SilenceConfig()),
    ):
        assert detector.detect(empty) == []


def test_a_frozen_picture_under_fresh_film_grain_is_still_a_freeze(
    rng: np.random.Generator,
) -> None:
    still = textured(rng, 1)[0].astype(np.float32)
    luma = np.stack([np.clip(still + rng.normal(0, 3.0, still.shape), 0, 255) for _ in range(50)])
    spans = FreezeDetector(FreezeConfig()).detect(segment(luma.astype(np.uint8)))
    assert len(spans) == 1 and spans[0].end - spans[0].start == pytest.approx(2.0)


def test_moving_content_under_the_same_grain_is_not_frozen(rng: np.random.Generator) -> None:
    moving = textured(rng, 50, motion=1.0).astype(np.float32)
    luma = np.clip(moving + rng.normal(0, 3.0, moving.shape), 0, 255).astype(np.uint8)
    spans = FreezeDetector(FreezeConfig()).detect(segment(luma))
    assert max((s.end - s.start for s in spans), default=0.0) < 0.5
