"""Audio artifacts: click, hum, hiss and distortion, from a small log-mel CNN.

The segment's audio is mixed to mono, resampled 48 -> 32 kHz (polyphase), and cut into
one-second windows every ``hop`` seconds; all windows of a segment go through the model as one
batch. The log-mel front end runs inside the ONNX graph, so the model takes raw 32 kHz samples
and this module has nothing to keep in step with training. A window whose most probable
defect class reaches ``threshold`` is flagged with that label; neighbouring flagged windows of
the same label merge into one span. Each window speaks for the middle of its second (where it
does not overlap its neighbours' centres), so spans are as tight as the hop allows.

The model comes from the runtime's model cache (one session for every channel), loaded on
first use or in ``warm_up``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
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


class AudioArtifactConfig(DetectorConfig):
    type: Literal["audio_artifact"] = "audio_artifact"
    enabled: bool = Field(
        default=False,
        description="Run this detector on the channel. Off by default until the model meets "
        "its held-out target (model 1.2.0: balanced accuracy 0.982 against 0.986; it flags "
        "0.7 % of windows of the synthetic channel's clean programme).",
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


def to_model_rate(audio: np.ndarray, rate: int, target: int = MODEL_RATE) -> np.ndarray:
    """Mono mixdown and polyphase resampling; training uses this same function."""
    from scipy.signal import resample_poly  # here, not at import: the config loads without it

    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    if rate != target:
        g = math.gcd(rate, target)
        mono = resample_poly(mono, target // g, rate // g)
    return np.asarray(mono, dtype=np.float32)


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

    def model(self) -> OnnxModel:
        return self.models.model(MODEL_NAME)

    def threshold(self, model: OnnxModel) -> float:
        if self.config.threshold is not None:
            return self.config.threshold
        return model.card.thresholds.get("defect", 0.5)

    def warm_up(self) -> None:
        self.model().warm_up()

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if segment.audio.shape[-1] < segment.audio_rate // 4:
            return []  # under a quarter second there is too little to judge
        model = self.model()
        mono = to_model_rate(segment.audio, segment.audio_rate)
        windows = cut_windows(mono, MODEL_RATE, self.config.hop)
        probs = self._probabilities(model, windows.batch)
        labels = decide(probs, model.classes, self.threshold(model))
        lo, hi = window_bounds(windows.starts, mono.size / MODEL_RATE)
        return merge_windows(labels, lo, hi, segment.audio_start)

    def _probabilities(self, model: OnnxModel, batch: np.ndarray) -> np.ndarray:
        size = self.config.batch_size
        batcher = self.models.batcher(model)  # joins the windows of concurrent channels
        parts = [batcher.run(batch[i : i + size]) for i in range(0, len(batch), size)]
        return np.concatenate(parts)


__all__ = [
    "AudioArtifactConfig",
    "AudioArtifactDetector",
    "cut_windows",
    "to_model_rate",
]
