"""The detector plugin interface.

A plugin is one module in this package with a config model whose ``type`` is a ``Literal`` of
its key, and one :class:`Detector` subclass registered under that key::

    class BlackConfig(DetectorConfig):
        type: Literal["black"] = "black"
        pixel_threshold: int = 32

    @register
    class BlackDetector(Detector):
        key = "black"
        config_class = BlackConfig
        def detect(self, segment: DecodedSegment) -> list[DefectSpan]: ...

Detectors are stateless per segment: they report the defect stretches inside the segment
(possibly short ones); alerting joins stretches across segments and applies
``min_duration`` and ``recovery``, so a defect that spans five segments is one alert.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from monitor.inference.media import DecodedSegment, DecodeNeeds
from monitor.core.messages import DefectSpan


class DetectorConfig(BaseModel):
    """Settings every detector has; plugins add their own thresholds."""

    model_config = ConfigDict(extra="forbid")

    type: str
    enabled: bool = Field(default=True, description="Run this detector on the channel.")
    min_duration: float = Field(
        default=2.0, ge=0.0, description="Seconds a defect must last before an alert opens."
    )
    recovery: float = Field(
        default=1.0, ge=0.0, description="Seconds of clean media before an open alert resolves."
    )
    severity: str | None = Field(
        default=None, description="Overrides the channel's severity for this detector."
    )


class Detector(abc.ABC):
    """One kind of defect. Subclasses set ``key``, ``config_class`` and ``needs``."""

    key: ClassVar[str]
    config_class: ClassVar[type[DetectorConfig]]
    needs: ClassVar[DecodeNeeds] = DecodeNeeds(luma=True, rgb=False, audio=False)
    model_name: ClassVar[str | None] = None
    model_version: ClassVar[str | None] = None

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config

    @abc.abstractmethod
    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        """Defect stretches inside ``segment``, in its media time; empty when clean."""

    def analysed_span(self, segment: DecodedSegment) -> tuple[float, float]:
        """The media time this detector looked at: audio detectors read the audio's span.

        Alerting counts everything analysed and not flagged as clean, so an audio detector
        must not claim the video's span (they differ by a few hundred ms at boundaries).
        """
        reads_video = self.needs.luma or self.needs.rgb
        if not reads_video and segment.has_audio:
            return segment.audio_span
        if reads_video and segment.has_video and not self.needs.audio:
            return segment.video_span
        return segment.start, segment.end

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Run once before the worker reports ready (models load and run here)."""
