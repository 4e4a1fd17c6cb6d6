"""Audio artifacts: click, hum, hiss and distortion, from a small log-mel CNN.

The segment's audio is mixed to mono, resampled 48 -> 32 kHz (polyphase), and cut into
one-second windows every ``hop`` seconds; all windows of a segment go through the model as one
batch. The log-mel front end runs inside the ONNX graph, so the model takes raw 32 kHz samples
and this module has nothing to keep in step with training. A window whose most probable
defect class reaches ``threshold`` is flagged with that label; neighbouring flagged windows of
the same label merge into one span. Each window speaks for the middle of its second (where it
does not overlap its neighbours' centres), so spans are as tight as the hop allows.

**How bad.** Each flagged span is then measured from the samples
(:mod:`~monitor.inference.detectors.audio_levels`, on the segment's mono mixdown at its own
rate): hum and hiss in dBFS and relative to the programme, clicks per second, the clipped
share. The channel's ``sensitivity`` decides which spans page: those at or over its floor
for their label are returned (and go to alerting, with their ``levels``); the rest are still
reported, as readings of the segment (``measurements``: the ``vqm_detector_measurement``
gauge, the detection message, ``vqm scan --format json``'s ``measured`` list) but open no
alert. A faint hum 30 dB under speech is so a measurement; a hum 10 dB under it pages.

The model comes from the runtime's model cache (one session for every channel), loaded on
first use or in ``warm_up``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitor.core.messages import DefectSpan
from monitor.inference.detectors import audio_levels as levels_of
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.registry import register
from monitor.inference.segment import DecodedSegment, DecodeNeeds

if TYPE_CHECKING:
    from monitor.inference.engine import OnnxModel
    from monitor.inference.models import ModelCache

logger = logging.getLogger(__name__)

MODEL_NAME = "audio_artifact"
MODEL_RATE = 32_000
WINDOW_SECONDS = 1.0
NONE = "none"


class AudioSensitivity(BaseModel):
    """What pages, per label: a flagged span pages when its measurement reaches the floor.

    The ``normal`` defaults follow what a listener hears (README, "How bad"): a hum or hiss
    20 dB or more under the programme is masked by it, or barely heard; 10 dB under, it is
    plainly heard through speech."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hum_min_relative_db: float = Field(
        default=-20.0, ge=-120.0, le=60.0, description="Hum against the programme, dB."
    )
    hiss_min_relative_db: float = Field(
        default=-20.0, ge=-120.0, le=60.0, description="Hiss against the programme, dB."
    )
    click_min_rate: float = Field(default=1.0, ge=0.0, description="Clicks per second.")
    clipped_min_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of samples clipped for distortion to page. 0: every distortion "
        "span pages, since the model also flags saturation and bit crushing that clip nothing.",
    )

    def pages(self, label: str, levels: dict[str, float]) -> bool:
        """Whether a span of ``label`` measuring ``levels`` reaches the paging floor."""
        if label == "hum":
            return levels.get("hum_relative_db", math.inf) >= self.hum_min_relative_db
        if label == "hiss":
            return levels.get("hiss_relative_db", math.inf) >= self.hiss_min_relative_db
        if label == "click":
            return levels.get("clicks_per_s", math.inf) >= self.click_min_rate
        if label == "distortion":
            return levels.get("clipped_share", math.inf) >= self.clipped_min_share
        return True


SENSITIVITY_PRESETS: dict[str, AudioSensitivity] = {
    # Pages only what is loud enough to be heard through the programme at once.
    "low": AudioSensitivity(
        hum_min_relative_db=-12.0,
        hiss_min_relative_db=-12.0,
        click_min_rate=3.0,
        clipped_min_share=0.01,
    ),
    "normal": AudioSensitivity(),
    # Pages what a listener hears in the programme's pauses or on good headphones.
    "high": AudioSensitivity(
        hum_min_relative_db=-30.0,
        hiss_min_relative_db=-30.0,
        click_min_rate=0.25,
        clipped_min_share=0.0,
    ),
}


class AudioArtifactConfig(DetectorConfig):
    type: Literal["audio_artifact"] = "audio_artifact"
    enabled: bool = Field(
        default=False,
        description="Run this detector on the channel. Off by default until the model meets "
        "its targets on real programme (model 1.3.0, the catalogue's test split: balanced "
        "accuracy 0.910 against 0.986; 24 false alerts an hour of clean programme against 0).",
    )
    min_duration: float = Field(
        default=1.0, ge=0.0, description="Seconds a defect must last before an alert opens."
    )
    threshold: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Probability a defect class needs to be flagged; default: the model card's "
        "'defect' threshold, chosen on the validation split.",
    )
    hop: float = Field(
        default=0.5, gt=0.0, le=WINDOW_SECONDS, description="Seconds between one-second windows."
    )
    batch_size: int = Field(default=32, ge=1, le=1024, description="Windows per model call.")
    sensitivity: Literal["low", "normal", "high"] | AudioSensitivity = Field(
        default="normal",
        description="What pages: a preset (low, normal, high) or per-label floors "
        "(hum_min_relative_db, hiss_min_relative_db, click_min_rate, clipped_min_share). "
        "Flagged spans under the floor are reported as measurements and do not page.",
    )
    programme_window: float = Field(
        default=10.0,
        ge=1.0,
        le=120.0,
        description="Seconds of gated programme level that hum and hiss are compared with.",
    )

    def floors(self) -> AudioSensitivity:
        if isinstance(self.sensitivity, AudioSensitivity):
            return self.sensitivity
        return SENSITIVITY_PRESETS[self.sensitivity]


def to_model_rate(audio: np.ndarray, rate: int, target: int = MODEL_RATE) -> np.ndarray:
    """Mono mixdown and polyphase resampling; training uses this same function."""
    from scipy.signal import resample_poly  # here, not at import: the config loads without it

    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    if rate != target:
        g = math.gcd(rate, target)
        mono = resample_poly(mono, target // g, rate // g)
    return np.asarray(mono, dtype=np.float32)


def mono_of(audio: np.ndarray) -> np.ndarray:
    """The mono mixdown the measurements read, at the decoded rate."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    return np.asarray(mono, dtype=np.float64)


def measure(
    label: str, mono: np.ndarray, rate: int, start: float, end: float, programme: float
) -> dict[str, float]:
    """How bad the ``label`` span ``[start, end)`` (seconds into ``mono``) is.

    Hum and hiss read at least a second around the span's middle (narrow bands and minimum
    statistics need it; both are steady), clicks and clipping the span itself.
    ``programme`` is the gated programme power the artifact is compared with; the artifact's
    own power is taken off it (the gated blocks hold it too)."""
    a, b = int(round(start * rate)), int(round(end * rate))
    a, b = max(0, a), min(mono.size, max(b, a + 1))
    out: dict[str, float] = {}
    if label in ("hum", "hiss"):
        need = int(levels_of.HUM_MIN_SECONDS * rate)
        if b - a < need:
            mid = (a + b) // 2
            a = max(0, min(mid - need // 2, mono.size - need))
            b = min(mono.size, a + need)
        x = mono[a:b]
        if label == "hum":
            power, mains = levels_of.hum_power(x, rate)
            out["hum_hz"] = mains
        else:
            power = levels_of.noise_floor_power(x, rate)
        rest = max(programme - power, 0.0)
        out[f"{label}_dbfs"] = round(levels_of.power_db(power), 2)
        out[f"{label}_relative_db"] = round(levels_of.relative_db(power, rest), 2)
        out["programme_dbfs"] = round(levels_of.power_db(rest), 2)
    elif label == "click":
        out["clicks_per_s"] = round(levels_of.click_rate(mono[a:b], rate), 2)
    elif label == "distortion":
        out["clipped_share"] = round(levels_of.clipped_share(mono[a:b]), 5)
    return out


@dataclass(frozen=True)
class Windows:
    """One-second windows of a mono signal: ``batch`` (n, size) and each one's start in s."""

    starts: np.ndarray
    batch: np.ndarray


def cut_windows(mono: np.ndarray, rate: int, hop: float) -> Windows:
    """Windows every ``hop`` s, plus one flush with the end so the tail is always seen.

    Audio shorter than a window is mirrored out to one window: mirroring has no edge, where
    zero padding would put a click-like step into the model's input.
    """
    size = int(round(WINDOW_SECONDS * rate))
    if mono.size < size:
        mono = np.pad(mono, (0, size - mono.size), mode="symmetric")
    step = max(1, int(round(hop * rate)))
    starts = list(range(0, mono.size - size + 1, step))
    if starts[-1] + size < mono.size:
        starts.append(mono.size - size)
    batch = np.stack([mono[s : s + size] for s in starts])
    return Windows(starts=np.asarray(starts, dtype=np.float64) / rate, batch=batch)


def window_bounds(starts: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """The stretch each window answers for: from the midpoint between its centre and the
    previous window's, to the midpoint with the next; the outer windows reach their edges."""
    centres = starts + WINDOW_SECONDS / 2
    mids = (centres[1:] + centres[:-1]) / 2
    lo = np.concatenate([[starts[0]], mids])
    hi = np.concatenate([mids, [min(starts[-1] + WINDOW_SECONDS, length)]])
    return lo, hi


def decide(probs: np.ndarray, classes: list[str], threshold: float) -> list[tuple[str, float]]:
    """Per window: the most probable defect class and its probability, or ``none``."""
    defect = [i for i, c in enumerate(classes) if c != NONE]
    best = np.asarray(defect)[np.argmax(probs[:, defect], axis=1)]
    out = []
    for row, i in zip(probs, best, strict=True):
        p = float(row[i])
        out.append((classes[i], p) if p >= threshold else (NONE, p))
    return out


def merge_windows(
    labels: list[tuple[str, float]], lo: np.ndarray, hi: np.ndarray, offset: float
) -> list[DefectSpan]:
    """Runs of neighbouring windows with the same defect label become one span each."""
    spans: list[DefectSpan] = []
    i = 0
    while i < len(labels):
        label = labels[i][0]
        j = i
        while j + 1 < len(labels) and labels[j + 1][0] == label:
            j += 1
        if label != NONE:
            confidence = float(np.mean([p for _, p in labels[i : j + 1]]))
            spans.append(
                DefectSpan(
                    start=offset + float(lo[i]),
                    end=offset + float(hi[j]),
                    confidence=min(max(confidence, 0.0), 1.0),
                    label=label,
                )
            )
        i = j + 1
    return spans


@register
class AudioArtifactDetector(Detector):
    """Flags windows whose audio the model classes as click, hum, hiss or distortion."""

    key = "audio_artifact"
    config_class = AudioArtifactConfig
    needs = DecodeNeeds(luma=False, audio=True)
    model_name = MODEL_NAME
    config: AudioArtifactConfig

    def __init__(self, config: DetectorConfig, models: ModelCache | None = None) -> None:
        super().__init__(config, models)
        self._programme = levels_of.ProgrammeLevel(self.config.programme_window)
        self._measured: list[DefectSpan] = []  # the last segment's spans under the floor
        self._readings: dict[str, float] = {}

    def model(self) -> OnnxModel:
        return self.models.model(MODEL_NAME)

    def threshold(self, model: OnnxModel) -> float:
        if self.config.threshold is not None:
            return self.config.threshold
        return model.card.thresholds.get("defect", 0.5)

    def warm_up(self) -> None:
        self.model().warm_up()

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        self._measured, self._readings = [], {}
        if segment.audio.shape[-1] < segment.audio_rate // 4:
            return []  # under a quarter second there is too little to judge
        model = self.model()
        native = mono_of(segment.audio)
        self._programme.add(native, segment.audio_rate, segment.audio_start)
        mono = to_model_rate(segment.audio, segment.audio_rate)
        windows = cut_windows(mono, MODEL_RATE, self.config.hop)
        probs = self._probabilities(model, windows.batch)
        labels = decide(probs, model.classes, self.threshold(model))
        lo, hi = window_bounds(windows.starts, mono.size / MODEL_RATE)
        spans = merge_windows(labels, lo, hi, segment.audio_start)
        if not spans:
            return []
        floors, paging = self.config.floors(), list[DefectSpan]()
        programme = self._programme.power()
        for span in spans:
            label = span.label or ""
            values = measure(
                label,
                native,
                segment.audio_rate,
                span.start - segment.audio_start,
                span.end - segment.audio_start,
                programme,
            )
            pages = floors.pages(label, values)
            (paging if pages else self._measured).append(span.model_copy(update={"levels": values}))
            self._note(label, values, not pages, span.end - span.start)
        return paging

    def measured_spans(self) -> list[DefectSpan]:
        return list(self._measured)

    def measurements(self) -> dict[str, float]:
        return dict(self._readings)

    def _note(self, label: str, values: dict[str, float], quiet: bool, seconds: float) -> None:
        """Readings of the segment: the worst of each level over its spans, and the seconds
        flagged under the paging floor, per label."""
        for key, value in values.items():
            self._readings[key] = max(value, self._readings.get(key, -math.inf))
        if quiet:
            key = f"{label}_unpaged_seconds"
            self._readings[key] = round(self._readings.get(key, 0.0) + seconds, 3)

    def _probabilities(self, model: OnnxModel, batch: np.ndarray) -> np.ndarray:
        size = self.config.batch_size
        batcher = self.models.batcher(model)  # joins the windows of concurrent channels
        parts = [batcher.run(batch[i : i + size]) for i in range(0, len(batch), size)]
        return np.concatenate(parts)


__all__ = [
    "SENSITIVITY_PRESETS",
    "AudioArtifactConfig",
    "AudioSensitivity",
    "measure",
    "AudioArtifactDetector",
    "cut_windows",
    "to_model_rate",
]
