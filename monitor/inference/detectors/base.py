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

A learned detector gets its models from the :class:`~monitor.inference.models.ModelCache`
it is built with (the runtime's); it never loads one by itself. Plugin modules import
nothing heavy at module level (the config is validated in processes that never run them).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

from monitor.core.channels import DetectorConfig
from monitor.core.messages import DefectSpan
from monitor.inference.segment import DecodedSegment, DecodeNeeds

if TYPE_CHECKING:
    from monitor.inference.candidate import Candidate
    from monitor.inference.models import ModelCache

__all__ = ["Detector", "DetectorConfig"]


class Detector(abc.ABC):
    """One kind of defect. Subclasses set ``key``, ``config_class`` and ``needs``.

    ``needs`` is read from the instance: a detector whose decode follows its settings (the
    frames it judges) declares it as a property, the others as a class attribute.
    """

    key: ClassVar[str]
    config_class: ClassVar[type[DetectorConfig]]
    needs: DecodeNeeds = DecodeNeeds(luma=True, rgb=False, audio=False)
    model_name: str | None = None  # the learned model it runs, if any (set per instance)

    def __init__(self, config: DetectorConfig, models: ModelCache | None = None) -> None:
        self.config = config
        self._models = models
        # Set by the worker before a segment it samples for annotation; a detector that
        # can (a learned one) then keeps one analysed frame as ``candidate()``.
        self.keep_candidate = False
        self._candidate: Candidate | None = None

    @property
    def models(self) -> ModelCache:
        """The model cache this detector was built with; learned detectors need one."""
        if self._models is None:
            raise RuntimeError(f"{self.key}: a learned detector is built with a ModelCache")
        return self._models

    @property
    def model_version(self) -> str | None:
        """Version of the model it runs (the loaded one, else the card's), for detections."""
        if self.model_name is None or self._models is None:
            return None
        return self._models.version(self.model_name)

    @abc.abstractmethod
    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        """Defect stretches inside ``segment``, in its media time; empty when clean."""

    def analysed_span(self, segment: DecodedSegment) -> tuple[float, float]:
        """The media time this detector looked at: audio detectors read the audio's span.

        Alerting counts everything analysed and not flagged as clean, so an audio detector
        must not claim the video's span (they differ by a few hundred ms at boundaries).
        """
        reads_video = self.needs.luma or self.needs.rgb or self.needs.captions
        if not reads_video and segment.has_audio:
            return segment.audio_span
        if reads_video and segment.has_video and not self.needs.audio:
            return segment.video_span
        return segment.start, segment.end

    def measurements(self) -> dict[str, float]:
        """Readings of the segment just detected, for the wall and the metrics (loudness in
        LUFS, say); finite numbers only, none by default."""
        return {}

    def measured_spans(self) -> list[DefectSpan]:
        """Stretches of the segment just detected that the detector flagged and measured
        but that stay under the channel's paging floor (audio_artifact's sensitivity): not
        defects, so they open no alert; ``vqm scan`` lists them. None by default."""
        return []

    def candidate(self) -> Candidate | None:
        """The annotation candidate the segment just detected left (see keep_candidate)."""
        return self._candidate

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Run once before the worker reports ready (models load and run here)."""
