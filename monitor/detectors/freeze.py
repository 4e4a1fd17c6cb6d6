"""Freeze: the picture stops moving.

Each frame is compared with a held reference (the first frame of the current still run),
not just its predecessor, so a slow pan that moves a little each frame still breaks the run.
The comparison is per block on downscaled luma: averaging removes coding noise and grain,
and taking the worst block keeps a talking head (a moving mouth in a still shot) from
counting as frozen. Black frames are left to the black detector.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from monitor.detectors.base import Detector, DetectorConfig
from monitor.detectors.black import BlackConfig, black_scores
from monitor.detectors.registry import register
from monitor.detectors.spans import spans_from_flags
from monitor.media import DecodedSegment, DecodeNeeds
from monitor.messages import DefectSpan


class FreezeConfig(DetectorConfig):
    type: Literal["freeze"] = "freeze"
    downscale: int = Field(default=4, ge=1, le=16, description="Average this many pixels a side.")
    grid: int = Field(default=8, ge=1, le=64, description="Blocks per side for the worst-block test.")
    threshold: float = Field(
        default=1.0, gt=0, description="Largest block mean absolute difference (luma codes)."
    )


def downscale(luma: np.ndarray, factor: int) -> np.ndarray:
    n, h, w = luma.shape
    h2, w2 = h // factor, w // factor
    cropped = luma[:, : h2 * factor, : w2 * factor].astype(np.float32)
    return cropped.reshape(n, h2, factor, w2, factor).mean(axis=(2, 4))


def block_diff(a: np.ndarray, b: np.ndarray, grid: int) -> float:
    """Worst mean absolute difference over a ``grid`` x ``grid`` partition."""
    diff = np.abs(a - b)
    h, w = diff.shape
    gh, gw = max(1, h // grid), max(1, w // grid)
    blocks = diff[: (h // gh) * gh, : (w // gw) * gw].reshape(h // gh, gh, w // gw, gw)
    return float(blocks.mean(axis=(1, 3)).max())


@register
class FreezeDetector(Detector):
    key = "freeze"
    config_class = FreezeConfig
    needs = DecodeNeeds(luma=True, audio=False)
    config: FreezeConfig

    def still_flags(self, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per frame: whether it matches the held reference, and that difference."""
        still = np.zeros(len(small), dtype=bool)
        diffs = np.full(len(small), np.inf)
        ref = 0
        for i in range(1, len(small)):
            diffs[i] = block_diff(small[i], small[ref], self.config.grid)
            if diffs[i] <= self.config.threshold:
                still[i] = still[ref] = True
            else:
                ref = i
        return still, diffs

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if len(segment.video_times) < 2:
            return []
        small = downscale(segment.luma, self.config.downscale)
        still, diffs = self.still_flags(small)
        is_black, _ = black_scores(segment.luma, segment.full_range, BlackConfig())
        frozen = still & ~is_black
        confidence = np.clip(1.0 - np.nan_to_num(diffs, posinf=0.0) / (2 * self.config.threshold), 0.5, 1.0)
        return spans_from_flags(frozen, segment.video_times, segment.frame_duration, confidence, 2)
