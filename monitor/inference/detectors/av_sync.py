"""AV sync: how far the sound has slipped against the picture, per four-second window.

Each window is measured on mouths first: shots, face tracks and mouth crops
(:mod:`monitor.inference.avsync.faces`) scored against the speech by the SyncNet-style model
(:mod:`monitor.inference.avsync.syncnet`), tracks voting in_sync / out_of_sync. A window
without face tracks, or whose tracks tie, falls back to audio onsets against visual change
(:mod:`monitor.inference.avsync.onsets`): test patterns, claps, cuts with sound. With
``mouth_motion: true`` a window the model is unsure of is first tried on mouth motion against
the speech envelope (:mod:`monitor.inference.avsync.motion`, not learned; off by default until
real speaking faces validate it: the catalogue has none yet). A window is
``out_of_sync`` when audio leads by more than ``lead_threshold_ms`` or lags by more than
``lag_threshold_ms`` (ITU-R BT.1359 by default); only those windows become spans, labelled
``out_of_sync`` with ``offset_ms`` (+ = audio lags). In-sync and inconclusive windows report
nothing, so alerting joins out-of-sync windows into one alert like any other defect.

Off by default, on per channel (``detectors: [{type: av_sync, enabled: true}]``) or per scan
(``vqm scan --enable av_sync``): the held-out talking-head targets are met, but the
synthetic channel's own presenters measure 21-44 ms of lead against the 45 ms limit, and the
live path sees one 2 s segment at a time rather than a 4 s window. Paging on that would not
be trustworthy yet. The face path is most of the detector's cost (Haar on every
``face_stride``-th frame, at most 240 lines, the whole frame on every third search and near
the followed faces between, plus the small learned face detector; about 0.22 of a core per
1080p30 channel at the default 12 on the benchmark's machine); set ``faces: false`` for the
onset path alone (a few ms per window).

The models come from the runtime's model cache on first use; without the sync model (not
shipped, or refused by its card) the face path is skipped with one warning and the onset
path still runs; without the learned face detector the Haar cascade finds faces alone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
from monitor.inference.avsync.result import (
    LAG_THRESHOLD_MS,
    LEAD_THRESHOLD_MS,
    SyncEstimate,
    inconclusive,
    verdict,
)
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.registry import register
from monitor.inference.segment import DecodedSegment, DecodeNeeds

if TYPE_CHECKING:
    from monitor.inference.avsync.faces import FaceFinder
    from monitor.inference.avsync.syncnet import SyncScorer
    from monitor.inference.models import ModelCache

logger = logging.getLogger(__name__)

MODEL_NAME = "av_sync"


class AvSyncConfig(DetectorConfig):
    type: Literal["av_sync"] = "av_sync"
    enabled: bool = Field(default=False, description="Run this detector on the channel.")
    min_duration: float = Field(
        default=4.0, ge=0.0, description="Seconds a defect must last before an alert opens."
    )
    window: float = Field(
        default=4.0, gt=0.5, le=30.0, description="Seconds of media per sync measurement."
    )
    lead_threshold_ms: float = Field(
        default=LEAD_THRESHOLD_MS,
        ge=0.0,
        description="Audio ahead by more than this is out of sync.",
    )
    lag_threshold_ms: float = Field(
        default=LAG_THRESHOLD_MS,
        ge=0.0,
        description="Audio behind by more than this is out of sync.",
    )
    onset_confidence: float = Field(
        default=0.3, ge=0.0, le=1.0, description="Least confidence of an onset-based offset."
    )
    faces: bool = Field(default=True, description="Measure on mouths when faces are in shot.")
    face_stride: int = Field(
        default=12,
        ge=1,
        le=30,
        description="Frames between face searches; the boxes between are interpolated "
        "(the search is most of the detector's CPU time).",
    )
    mouth_motion: bool = Field(
        default=False,
        description="When the sync model is unsure, correlate mouth motion with the speech "
        "envelope (not learned; unvalidated on real speaking faces, so off by default).",
    )


def windows(start: float, end: float, length: float) -> list[tuple[float, float]]:
    """Equal windows as close to ``length`` as tile ``[start, end)``; one if it is shorter."""
    count = max(1, int(round((end - start) / length)))
    edges = np.linspace(start, end, count + 1)
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def cut(segment: DecodedSegment, start: float, end: float) -> DecodedSegment:
    """The frames and audio of ``segment`` inside ``[start, end)``: luma only, which is all
    a window is measured on (the RGB another detector of the channel asked for is left out;
    it may hold only every Nth frame)."""
    keep = (segment.video_times >= start - 1e-6) & (segment.video_times < end - 1e-6)
    rate = segment.audio_rate
    a0 = max(0, int(round((start - segment.audio_start) * rate)))
    a1 = max(a0, int(round((end - segment.audio_start) * rate)))
    return DecodedSegment(
        video_times=segment.video_times[keep],
        luma=_frames(segment.luma, keep) if len(segment.luma) else segment.luma,
        full_range=segment.full_range,
        fps=segment.fps,
        audio=segment.audio[:, a0:a1],
        audio_rate=rate,
        audio_start=segment.audio_start + a0 / rate,
    )


def _frames(luma: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``luma[keep]``, as a view when the kept frames are one run (times in order, as they
    nearly always are): a copy of four seconds of 1080p pictures per window cost more than
    the window's face search."""
    places = np.flatnonzero(keep)
    if len(places) and places[-1] - places[0] + 1 == len(places):
        return luma[places[0] : places[-1] + 1]
    return luma[keep]


@register
class AvSyncDetector(Detector):
    """Flags windows whose sound leads or lags the picture beyond the BT.1359 limits."""

    key = "av_sync"
    config_class = AvSyncConfig
    needs = DecodeNeeds(luma=True, rgb=False, audio=True)
    model_name = MODEL_NAME
    config: AvSyncConfig

    def __init__(self, config: DetectorConfig, models: ModelCache | None = None) -> None:
        super().__init__(config, models)
        self._scorer: SyncScorer | None = None
        self._finder: FaceFinder | None = None

    def scorer(self) -> SyncScorer | None:
        """The face-path scorer, or None when the sync model cannot be used (warned once)."""
        if self._scorer is None and self.config.faces:
            from monitor.inference.avsync.faces import FACE_MODEL, LearnedFaces
            from monitor.inference.avsync.syncnet import SyncNetModel, SyncScorer

            model = self.models.optional(MODEL_NAME, SyncNetModel)
            if model is not None:
                learned = self.models.optional(FACE_MODEL, LearnedFaces)
                self._scorer = SyncScorer(
                    model, learned_faces=learned, face_stride=self.config.face_stride
                )
        return self._scorer

    def warm_up(self) -> None:
        scorer = self.scorer()
        if scorer is not None:
            scorer.warm_up()

    def measure_motion(self, window: DecodedSegment) -> SyncEstimate:
        """The mouth-motion estimate (:mod:`monitor.inference.avsync.motion`) of one window."""
        from monitor.inference.avsync import motion
        from monitor.inference.avsync.faces import FACE_MODEL, FaceFinder, LearnedFaces

        if self._finder is None:
            scorer = self.scorer()
            self._finder = (
                scorer.finder
                if scorer is not None
                else FaceFinder(self.models.optional(FACE_MODEL, LearnedFaces))
            )
        return motion.measure(
            window.luma,
            window.video_times,
            window.audio,
            window.audio_rate,
            window.audio_start,
            self._finder.tracks(window.luma, stride=self.config.face_stride),
        )

    def measure(self, window: DecodedSegment) -> SyncEstimate:
        """One window's estimate: mouths first, onsets when there are no usable face tracks."""
        if len(window.video_times) < 2 or window.audio.shape[-1] < window.audio_rate // 2:
            return inconclusive("none", "window too short")
        scorer = self.scorer()
        if scorer is not None:
            estimate = scorer.measure(
                window, self.config.lead_threshold_ms, self.config.lag_threshold_ms
            )
            if estimate.conclusive:
                return estimate
        if self.config.faces and self.config.mouth_motion:
            estimate = self.measure_motion(window)
            if estimate.conclusive:
                return estimate
        from monitor.inference.avsync import onsets  # SciPy: loaded only where it runs

        settings = onsets.OnsetSettings(min_confidence=self.config.onset_confidence)
        return onsets.measure(
            window.luma,
            window.video_times,
            window.fps,
            window.audio,
            window.audio_rate,
            window.audio_start,
            settings,
        )

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if not segment.has_video or not segment.has_audio:
            return []
        spans = []
        for start, end in windows(segment.start, segment.end, self.config.window):
            estimate = self.measure(cut(segment, start, end))
            cfg = self.config
            if verdict(estimate, cfg.lead_threshold_ms, cfg.lag_threshold_ms) != "out_of_sync":
                continue
            spans.append(
                DefectSpan(
                    start=start,
                    end=end,
                    confidence=float(np.clip(estimate.confidence, 0.0, 1.0)),
                    label="out_of_sync",
                    offset_ms=estimate.offset_ms,
                )
            )
        return spans
