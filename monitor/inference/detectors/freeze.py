"""Freeze: the picture stops moving.

Each frame is compared with a held reference (the first frame of the current still run),
not just its predecessor, so a slow pan that moves a little each frame still breaks the run.
The comparison is per block on downscaled luma: averaging removes most coding noise, and
taking the worst block of a fine grid keeps a talking head (a moving mouth in a still shot)
from counting as frozen. The threshold is noise-aware: grain or noise refreshed every frame
moves every block a little, and so does a pan; they differ in time: noise does not
accumulate (frames two apart differ as much as neighbours, ``d2 = d1``) while motion does
(``d2 = 2 * d1``). So ``2 * d1 - d2`` of the median block measures the noise floor, and the
threshold rises by it; local motion (a talking mouth) leaves the median block near zero.
Black frames are left to the black detector.

An encoder refines a still picture for a few frames after each keyframe, so a frozen feed
drifts up to about 1.5x the threshold from the keyframe and then settles; at a segment start
that split one freeze into runs with a 0.1-0.2 s "moving" gap between them, enough for
alerting to miss a freeze that spans segments. A run that continues its predecessor within
``drift`` thresholds (of its last frame and of its reference) and moves no further from that
reference while it lasts (``growth``) is the same still picture and joins it; a slow pan
also continues its predecessor, but moves away from the reference steadily, by about one
threshold per run.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.black import SPARSE, BlackConfig, black_scores
from monitor.inference.detectors.registry import register
from monitor.inference.detectors.spans import runs
from monitor.inference.segment import DecodedSegment, DecodeNeeds


class FreezeConfig(DetectorConfig):
    type: Literal["freeze"] = "freeze"
    downscale: int = Field(default=4, ge=1, le=16, description="Average this many pixels a side.")
    grid: int = Field(
        default=16, ge=1, le=64, description="Blocks per side for the worst-block test."
    )
    threshold: float = Field(
        default=0.5, gt=0, description="Largest block mean absolute difference (luma codes)."
    )
    min_run: float = Field(
        default=0.3,
        ge=0,
        description="Still runs shorter than this are ignored unless they touch a segment edge.",
    )
    noise_factor: float = Field(
        default=2.0, ge=0, description="Threshold rises by this times the segment's noise floor."
    )
    drift: float = Field(
        default=2.0,
        ge=1,
        description="A still picture may drift this many thresholds from its first frame as "
        "the encoder refines it after a keyframe.",
    )
    growth: float = Field(
        default=0.5,
        ge=0,
        description="...but while it drifts it may move at most this many thresholds further "
        "from that frame (a slow pan moves about one threshold per run).",
    )


def block_diffs(a: np.ndarray, b: np.ndarray, grid: int) -> np.ndarray:
    """Mean absolute difference of each block of a ``grid`` x ``grid`` partition (blocks of
    whole pixels: rows and columns past the last whole block are left out)."""
    import cv2  # here, not at import: a process that only reads the config needs no OpenCV

    diff = cv2.absdiff(a, b)
    h, w = diff.shape
    gh, gw = max(1, h // grid), max(1, w // grid)
    rows, cols = h // gh, w // gw
    # An area resize by a whole factor is the block mean, three times faster than NumPy's
    # reduction of a 4-D view (freeze makes about three of these a frame).
    return cv2.resize(diff[: rows * gh, : cols * gw], (cols, rows), interpolation=cv2.INTER_AREA)


def block_diff(a: np.ndarray, b: np.ndarray, grid: int) -> float:
    """Worst block's mean absolute difference."""
    return float(block_diffs(a, b, grid).max())


def noise_floor(small: np.ndarray, grid: int) -> float:
    """The part of frame-to-frame change that does not accumulate: grain, not motion."""
    if len(small) < 3:
        return 0.0
    estimates = []
    for i in range(2, len(small)):
        d1 = float(np.median(block_diffs(small[i], small[i - 1], grid)))
        d2 = float(np.median(block_diffs(small[i], small[i - 2], grid)))
        estimates.append(max(0.0, 2 * d1 - d2))
    return float(np.median(estimates))


@register
class FreezeDetector(Detector):
    key = "freeze"
    config_class = FreezeConfig
    config: FreezeConfig

    @property
    def needs(self) -> DecodeNeeds:  # type: ignore[override]  # read-only: follows the config
        """Block means at ``downscale`` and black's subsample, never the whole pictures."""
        return DecodeNeeds(
            luma=True,
            luma_full=False,
            luma_means=(self.config.downscale,),
            luma_sparse=(SPARSE,),
            audio=False,
        )

    def still_runs(self, small: np.ndarray) -> list[tuple[int, int, float]]:
        """``(first, last, worst difference)`` of each run of frames matching its reference.

        Runs are kept apart even when they touch: frames 2-3 matching each other and 4-5
        matching each other is a picture that moves every other frame, not a freeze.
        """
        threshold = self.threshold(small)
        runs: list[tuple[int, int, float]] = []
        ref, last, worst = 0, 0, 0.0
        for i in range(1, len(small)):
            diff = block_diff(small[i], small[ref], self.config.grid)
            if diff <= threshold:
                last, worst = i, max(worst, diff)
                continue
            if last > ref:
                runs.append((ref, last, worst))
            ref, last, worst = i, i, 0.0
        if last > ref:
            runs.append((ref, last, worst))
        return self._join_drift(small, runs, threshold)

    def _join_drift(
        self, small: np.ndarray, runs: list[tuple[int, int, float]], threshold: float
    ) -> list[tuple[int, int, float]]:
        """Join each run to the one before when it is that picture drifting (module doc)."""
        joined: list[tuple[int, int, float]] = []
        for first, last, worst in runs:
            if joined and self._drifts_from(small, joined[-1], first, last, threshold):
                ref, _, before = joined[-1]
                joined[-1] = (ref, last, max(before, worst))
            else:
                joined.append((first, last, worst))
        return joined

    def _drifts_from(
        self, small: np.ndarray, run: tuple[int, int, float], first: int, last: int, limit: float
    ) -> bool:
        ref, end, _ = run
        grid, drift = self.config.grid, self.config.drift * limit
        if first != end + 1 or block_diff(small[first], small[end], grid) > drift:
            return False  # a gap or a jump: the picture changed
        away = [block_diff(small[i], small[ref], grid) for i in range(first, last + 1)]
        return away[0] <= drift and max(away) - away[0] <= self.config.growth * limit

    def _worth_reporting(self, a: int, b: int, edges: tuple[int, int], fps: float) -> bool:
        """A mouth resting for a few frames is not a freeze; a run at a segment edge may be
        the visible part of one that crosses the boundary, so it is always kept."""
        if b - a < 2:
            return False
        return a == edges[0] or b == edges[1] or (b - a) / fps >= self.config.min_run

    def threshold(self, small: np.ndarray) -> float:
        return self.config.threshold + self.config.noise_factor * noise_floor(
            small, self.config.grid
        )

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if len(segment.video_times) < 2:
            return []
        small = segment.luma_means(self.config.downscale)
        times, step = segment.video_times, segment.frame_duration
        spans = []
        edges = (0, len(small))
        for first, last, worst in self.still_runs(small):
            # Black frames belong to `black`; judged for the still frames only, since most
            # segments move and have none.
            sparse = segment.luma_sparse(SPARSE)[first : last + 1]
            is_black, _ = black_scores(sparse, segment.full_range, BlackConfig())
            for a, b in runs(~is_black):
                if not self._worth_reporting(first + a, first + b, edges, segment.fps):
                    continue
                confidence = float(np.clip(1.0 - worst / (2 * self.config.threshold), 0.5, 1.0))
                start, end = times[first + a], times[first + b - 1] + step
                spans.append(DefectSpan(start=float(start), end=float(end), confidence=confidence))
        return spans
