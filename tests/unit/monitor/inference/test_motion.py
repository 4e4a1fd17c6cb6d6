"""The mouth-motion path: offsets on talking heads, nothing on a real face without speech."""

from __future__ import annotations

import pytest

from lab.training.av_sync import REAL_OFFSETS_MS, shifted
from monitor.inference.avsync import motion
from monitor.inference.avsync.result import verdict
from monitor.inference.detectors.av_sync import AvSyncConfig, AvSyncDetector
from monitor.inference.media import decode_bytes
from monitor.inference.models import ModelCache
from monitor.inference.segment import DecodeNeeds
from tests.real_media import real_face_without_speech


@pytest.mark.parametrize("offset_ms", [200.0, -120.0, 40.0])
def test_mouth_motion_measures_a_talking_head_within_one_frame(
    models: ModelCache, offset_ms: float
) -> None:
    from lab.synth import speech
    from lab.synth.talking_head import talking_head

    if not speech.available():
        pytest.skip("espeak-ng is not installed")
    # Training-space seeds and the training split's default voices: not held out.
    seed = {200.0: 3001, -120.0: 3002, 40.0: 3003}[offset_ms]
    segment = talking_head(seed, 4.0, fps=25, offset_ms=offset_ms).segment()
    detector = AvSyncDetector(AvSyncConfig(enabled=True, mouth_motion=True), models)
    estimate = detector.measure_motion(segment)
    assert estimate.offset_ms is not None
    assert abs(estimate.offset_ms - offset_ms) <= 40.0


def test_room_tone_is_not_speech() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    tone = (0.001 * rng.standard_normal((2, 4 * 48_000))).astype(np.float32)
    assert not motion.has_speech(tone, 48_000, motion.MotionSettings())


def test_a_real_face_over_room_tone_is_never_called_out_of_sync(models: ModelCache) -> None:
    clip = real_face_without_speech()
    segment = decode_bytes(clip.read_bytes(), DecodeNeeds(luma=True, audio=True))
    for mouth_motion in (False, True):
        detector = AvSyncDetector(AvSyncConfig(enabled=True, mouth_motion=mouth_motion), models)
        for offset in REAL_OFFSETS_MS:
            window = shifted(segment, segment.start, segment.end, float(offset))
            assert verdict(detector.measure(window)) != "out_of_sync"
