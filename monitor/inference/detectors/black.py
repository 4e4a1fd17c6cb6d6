"""Black picture: nearly every pixel at black level, and flat.

A dark scene has most pixels low too, but keeps structure: its brightest pixels and its
spread are well above a black frame's. So a frame is black only when the share of pixels
under the threshold is above ``picture_share`` *and* its bright tail stays near black.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.registry import register
from monitor.inference.detectors.spans import spans_from_flags
from monitor.inference.segment import DecodedSegment, DecodeNeeds


class BlackConfig(DetectorConfig):
    type: Literal["black"] = "black"
    pixel_threshold: float = Field(
        default=0.10, gt=0, lt=1, description="Black level plus this share of the luma range."
    )
    picture_share: float = Field(
        default=0.98, gt=0, le=1, description="Share of pixels that must be under it."
    )
    max_bright_excess: float = Field(
        default=0.08,
        gt=0,
        lt=1,
        description="99.9th-percentile luma may exceed black level by at most this share.",
    )


BRIGHT_SHARE = 0.001  # pixels that may be brighter than max_bright_excess (a logo, a caption)


def black_levels(full_range: bool) -> tuple[float, float]:
    """(black, white) luma codes of the range."""
    return (0.0, 255.0) if full_range else (16.0, 235.0)


SPARSE = 4  # every 4th row and column: a sixteenth of the pixels is plenty for shares


def black_scores(
    sparse: np.ndarray, full_range: bool, config: BlackConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of ``sparse`` pictures (``DecodedSegment.luma_sparse(SPARSE)``):
    (is_black, share of pixels under the threshold)."""
    black, white = black_levels(full_range)
    span = white - black
    flat = sparse.reshape(len(sparse), -1)
    low = _code_limit(black + config.pixel_threshold * span, flat.dtype)
    share = np.count_nonzero(flat <= low, axis=1) / flat.shape[1]
    # The 99.9th percentile is under the limit when at most 0.1 % of the pixels are over it:
    # a count, not a sort (a percentile per frame cost as much as the rest of the detector).
    over = np.count_nonzero(
        flat > _code_limit(black + config.max_bright_excess * span, flat.dtype), axis=1
    )
    is_black = (share >= config.picture_share) & (over <= BRIGHT_SHARE * (flat.shape[1] - 1))
    return is_black, share


def _code_limit(limit: float, dtype: np.dtype) -> np.generic | float:
    """``limit`` in the pictures' own type: for whole luma codes ``code <= limit`` is
    ``code <= floor(limit)`` and ``code > limit`` is ``code > floor(limit)``, and comparing
    with a float would first convert every pixel to float64 (half the detector's time)."""
    if not np.issubdtype(dtype, np.integer):
        return limit
    return dtype.type(min(math.floor(limit), np.iinfo(dtype).max))


@register
class BlackDetector(Detector):
    key = "black"
    config_class = BlackConfig
    needs = DecodeNeeds(luma=True, luma_full=False, luma_sparse=(SPARSE,), audio=False)
    config: BlackConfig

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if not segment.has_video:
            return []
        sparse = segment.luma_sparse(SPARSE)
        is_black, share = black_scores(sparse, segment.full_range, self.config)
        return spans_from_flags(is_black, segment.video_times, segment.frame_duration, share)
