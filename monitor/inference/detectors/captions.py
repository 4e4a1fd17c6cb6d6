"""Captions: a channel that must carry CEA-608/708 captions stops carrying them.

Broadcast H.264 and MPEG-2 carry captions in the video's user data (ATSC A/53: the ``GA94``
user data FFmpeg's decoders export as ``A53_CC`` frame side data). A captioned service sends
caption data with every frame, padding included, whether or not words are on screen, so a run
of frames without any is captions gone, not a pause in the dialogue. Frames without caption
data become ``missing`` spans, and an alert opens once they have lasted ``min_duration``.

Whether a channel must carry captions is the channel's setting: the detector is off by
default and turned on for those channels (``detectors: [{type: captions, enabled: true}]``).
Captions muxed as a stream of their own (a 608 track in MP4) are not read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.registry import register
from monitor.inference.detectors.spans import spans_from_flags
from monitor.inference.segment import DecodedSegment, DecodeNeeds

if TYPE_CHECKING:
    from monitor.inference.models import ModelCache


class CaptionsConfig(DetectorConfig):
    type: Literal["captions"] = "captions"
    enabled: bool = Field(
        default=False,
        description="Turn on for the channels that must carry captions (a regulator's rule, "
        "not a property of the stream).",
    )
    min_duration: float = Field(
        default=10.0, ge=0.0, description="Seconds without captions before an alert opens."
    )
    recovery: float = Field(
        default=2.0, ge=0.0, description="Seconds of captions again before the alert resolves."
    )


@register
class CaptionsDetector(Detector):
    """Flags the stretches of a channel's video that carry no caption data."""

    key = "captions"
    config_class = CaptionsConfig
    needs = DecodeNeeds(luma=False, audio=False, captions=True)
    config: CaptionsConfig

    def __init__(self, config: DetectorConfig, models: ModelCache | None = None) -> None:
        super().__init__(config, models)
        self._share = 0.0  # of the last segment's frames that carried captions

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if not segment.has_video:
            return []
        captioned = segment.captions
        if len(captioned) != len(segment.video_times):  # decoded without asking: none seen
            captioned = np.zeros(len(segment.video_times), bool)
        self._share = float(captioned.mean())
        missing = ~captioned
        confidence = np.ones(len(missing))
        spans = spans_from_flags(missing, segment.video_times, segment.frame_duration, confidence)
        return [s.model_copy(update={"label": "missing"}) for s in spans]

    def measurements(self) -> dict[str, float]:
        return {"captioned_share": round(self._share, 3)}
