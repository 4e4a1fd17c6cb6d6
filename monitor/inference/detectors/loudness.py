"""Loudness: programme too loud or too quiet against a target, and true peaks over the limit.

ITU-R BS.1770-4 as EBU R128 and ATSC A/85 use it, measured by
:class:`~monitor.inference.detectors.loudness_meter.LoudnessMeter` (why not libebur128 is
written there): momentary (400 ms), short-term (3 s), an integrated loudness over a
**sliding** window (default 60 s; gated as BS.1770 gates a programme) and the loudness range
over the same window, and the true peak (4x oversampled). A live channel never ends, so a
programme's integrated value (FFmpeg's ``ebur128`` filter never resets) cannot say whether it
is too loud *now*; the sliding window can.

Every 100 ms of audio the integrated loudness is judged against ``target`` +- ``tolerance``
(``too_loud`` / ``too_quiet``, once ``min_history`` seconds have been heard) and the true peak
against ``true_peak_limit`` (``true_peak``, which alerts at once: one over is a violation).
Silence is not "too quiet": gating leaves a silent window without a value, and the silence
detector reports it.

**State across segments.** The gating needs up to a minute of history, so the meter keeps it
per channel in this detector (the inference worker builds one detector per channel and feeds
it that channel's segments in order; ``vqm scan`` feeds its chunks in order). Keeping the 600
block energies in the state store instead would cost a round trip per segment for every
channel; the price of keeping them here is that after an inference restart or a partition
move the window refills, and judgements wait ``min_history`` again. A jump in the media time
(a discontinuity, an origin restart) starts a fresh window for the same reason.

The decoder mixes every programme to stereo, so surround programmes are measured on that mix
(within about 1 LU of a 5.1 measurement for typical mixes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.loudness_meter import LoudnessMeter, block_frames
from monitor.inference.detectors.registry import register
from monitor.inference.detectors.spans import spans_from_flags
from monitor.inference.segment import DecodedSegment, DecodeNeeds

if TYPE_CHECKING:
    from monitor.inference.models import ModelCache

BLOCK_SECONDS = 0.1  # judgements and true peaks are per 100 ms of audio
MAX_JUMP = 1.0  # a gap or overlap in media time beyond this starts a fresh window


class LoudnessConfig(DetectorConfig):
    type: Literal["loudness"] = "loudness"
    target: float = Field(
        default=-23.0, ge=-60, le=0, description="LUFS: -23 for EBU R128, -24 for ATSC A/85."
    )
    tolerance: float = Field(
        default=3.0,
        gt=0,
        le=20,
        description="LU either side of the target that the sliding integrated loudness may "
        "drift before the channel is too loud or too quiet.",
    )
    window: float = Field(
        default=60.0, ge=3, le=3600, description="Seconds of the sliding integrated loudness."
    )
    min_history: float = Field(
        default=10.0, ge=0.4, le=3600, description="Seconds heard before loudness is judged."
    )
    true_peak_limit: float = Field(
        default=-1.0, le=6, description="dBTP; a true peak over it is a 'true_peak' defect."
    )
    true_peak_min_duration: float = Field(
        default=0.0, ge=0, description="Seconds a true-peak over must last to alert (0: at once)."
    )
    min_duration: float = Field(
        default=10.0, ge=0.0, description="Seconds too loud or too quiet before an alert opens."
    )
    recovery: float = Field(
        default=5.0, ge=0.0, description="Seconds back in range before the alert resolves."
    )

    def label_min_durations(self) -> dict[str, float]:
        return {"true_peak": self.true_peak_min_duration}


@register
class LoudnessDetector(Detector):
    """Flags programme outside its loudness target, and true peaks over the limit."""

    key = "loudness"
    config_class = LoudnessConfig
    needs = DecodeNeeds(luma=False, audio=True)
    config: LoudnessConfig

    def __init__(self, config: DetectorConfig, models: ModelCache | None = None) -> None:
        super().__init__(config, models)
        self._meter: LoudnessMeter | None = None
        self._next: float | None = None  # media time the next sample should have
        self._carry = np.zeros((2, 0), np.float32)  # under a block, waiting for the next segment
        self._peak = -math.inf

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if not segment.has_audio:
            return []
        audio, start = self._continuous(segment)
        meter = self._meter_for(segment.audio_rate, audio.shape[0])
        size = block_frames(segment.audio_rate)
        count = audio.shape[-1] // size
        self._carry = audio[:, count * size :]
        self._next = start + audio.shape[-1] / segment.audio_rate
        times = start + BLOCK_SECONDS * np.arange(count)
        with np.errstate(divide="ignore"):  # digital silence: -inf dBTP
            peaks = 20.0 * np.log10(meter.true_peak.block_peaks(audio, size))
        heard = meter.heard + BLOCK_SECONDS * np.arange(1, count + 1)
        levels = meter.add(audio[:, : count * size])
        levels[heard < self.config.min_history - 1e-9] = np.nan
        self._peak = float(peaks.max()) if count else -math.inf
        return self._spans(times, peaks, levels)

    def measurements(self) -> dict[str, float]:
        if self._meter is None:
            return {}
        values = self._meter.readings()
        if math.isfinite(self._peak):
            values["true_peak_dbtp"] = round(self._peak, 2)
        return values

    def _continuous(self, segment: DecodedSegment) -> tuple[np.ndarray, float]:
        """The segment's audio with the carried remainder in front, and where it starts; a
        jump in media time starts a fresh window."""
        if self._next is None or abs(segment.audio_start - self._next) > MAX_JUMP:
            self._meter, self._carry = None, np.zeros((segment.audio.shape[0], 0), np.float32)
            return segment.audio, segment.audio_start
        start = segment.audio_start - self._carry.shape[-1] / segment.audio_rate
        if self._carry.shape[0] != segment.audio.shape[0]:
            return segment.audio, segment.audio_start
        return np.concatenate([self._carry, segment.audio], axis=1), start

    def _meter_for(self, rate: int, channels: int) -> LoudnessMeter:
        if self._meter is None or (self._meter.rate, self._meter.channels) != (rate, channels):
            self._meter = LoudnessMeter(self.config.window, channels, rate)
        return self._meter

    def _spans(self, times: np.ndarray, peaks: np.ndarray, levels: np.ndarray) -> list[DefectSpan]:
        cfg = self.config
        judged = np.isfinite(levels)
        loud = judged & (levels > cfg.target + cfg.tolerance)
        quiet = judged & (levels < cfg.target - cfg.tolerance)
        over = peaks > cfg.true_peak_limit
        excess = np.abs(np.nan_to_num(levels, nan=cfg.target) - cfg.target) - cfg.tolerance
        confidence = np.clip(0.5 + excess / 6.0, 0.5, 1.0)
        peak_confidence = np.clip(0.5 + (peaks - cfg.true_peak_limit) / 2.0, 0.5, 1.0)
        spans = []
        for label, flags, conf in (
            ("too_loud", loud, confidence),
            ("too_quiet", quiet, confidence),
            ("true_peak", over, peak_confidence),
        ):
            found = spans_from_flags(flags, times, BLOCK_SECONDS, conf)
            spans += [s.model_copy(update={"label": label}) for s in found]
        return sorted(spans, key=lambda s: s.start)
