"""Silence: audio level under a floor (default -60 dBFS) in every channel."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.registry import register
from monitor.inference.detectors.spans import spans_from_flags
from monitor.inference.segment import DecodedSegment, DecodeNeeds


class SilenceConfig(DetectorConfig):
    type: Literal["silence"] = "silence"
    threshold_db: float = Field(default=-60.0, lt=0, description="Level under this is silence.")
    window: float = Field(default=0.05, gt=0, le=1, description="Analysis window, seconds.")


def window_levels_db(audio: np.ndarray, rate: int, window: float) -> np.ndarray:
    """RMS level of each window in dBFS, loudest channel."""
    n = max(1, int(round(window * rate)))
    count = audio.shape[-1] // n
    if count == 0:
        return np.zeros(0)
    frames = audio[:, : count * n].reshape(audio.shape[0], count, n).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=2)).max(axis=0)
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


@register
class SilenceDetector(Detector):
    key = "silence"
    config_class = SilenceConfig
    needs = DecodeNeeds(luma=False, audio=True)
    config: SilenceConfig

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if not segment.has_audio:
            return []
        levels = window_levels_db(segment.audio, segment.audio_rate, self.config.window)
        step = round(self.config.window * segment.audio_rate) / segment.audio_rate
        times = segment.audio_start + step * np.arange(len(levels))
        silent = levels < self.config.threshold_db
        # Confidence grows with the margin under the floor: 20 dB under is certain.
        confidence = np.clip(0.5 + (self.config.threshold_db - levels) / 40.0, 0.5, 1.0)
        return spans_from_flags(silent, times, step, confidence)
