"""Block corruption: transmission errors the decoder concealed, seen by a learned map.

Every ``stride``-th frame of the segment goes through the model (see
:mod:`lab.training.resnet`), which returns a corruption probability for each 32x32 region
and a frame probability from a jointly learned head. With ``decision: map`` a frame is corrupted
when the regions at or above ``region_threshold`` cover more than ``area_threshold`` of its
area; with ``decision: head`` when the head's probability reaches ``head_threshold``. Each
analysed frame speaks for the ``stride`` frames from it to the next analysed one, so runs of
corrupted frames become spans; bursts are short, so ``min_duration`` defaults to half a second.

Thresholds left unset come from the model card, where they were chosen on validation data.
Off by default until its model is shipped and it stays silent on clean channel content.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
from monitor.inference.candidate import Candidate, frame_score
from monitor.inference.cpu_features import int8_exact_here
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.registry import register
from monitor.inference.detectors.spans import spans_from_flags
from monitor.inference.segment import DecodedSegment, DecodeNeeds

if TYPE_CHECKING:
    from monitor.inference.engine import OnnxModel
    from monitor.inference.models import ModelCache

logger = logging.getLogger(__name__)

MODEL_NAMES = {"light": "block_corruption_light", "light_fp32": "block_corruption_light_fp32"}
REGION = 32
RGB_LIMIT = (960, 540)
EMBEDDING_OUTPUT = 3  # region_prob, frame_prob, features, embedding (see graph_edit)


class BlockCorruptionConfig(DetectorConfig):
    type: Literal["block_corruption"] = "block_corruption"
    enabled: bool = Field(default=False, description="Run this detector on the channel.")
    min_duration: float = Field(
        default=0.5, ge=0.0, description="Seconds a defect must last before an alert opens."
    )
    model: Literal["auto", "light", "light_fp32"] = Field(
        default="auto",
        description=(
            "light: the light ResNet, its trunk quantized to int8 (2-3x faster on CPUs with "
            "8-bit dot products); light_fp32: the float32 model it was quantized from (GPUs); "
            "auto: light where the CPU has those dot products (or is not x86), else light_fp32."
        ),
    )
    decision: Literal["map", "head"] = Field(
        default="map", description="map: corrupted area share; head: the learned frame decision."
    )
    area_threshold: float = Field(
        default=0.07, gt=0.0, lt=1.0, description="Corrupted share of the area that flags a frame."
    )
    region_threshold: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Region probability that counts as corrupted; None takes the model card's.",
    )
    head_threshold: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Frame probability the head decision needs; None takes the model card's.",
    )
    stride: int = Field(
        default=5, ge=1, le=250, description="Analyse every Nth frame (CPU cost falls with it)."
    )
    batch_size: int = Field(default=4, ge=1, le=64, description="Frames per model call.")


def model_name_for(choice: str) -> str:
    """The model file a ``model`` setting runs. ``auto`` keeps the int8 model off x86 CPUs
    without 8-bit dot products, where it saturates (see :mod:`monitor.inference.cpu_features`)."""
    if choice != "auto":
        return MODEL_NAMES[choice]
    if int8_exact_here():
        return MODEL_NAMES["light"]
    _warn_float_once()
    return MODEL_NAMES["light_fp32"]


@functools.cache
def _warn_float_once() -> None:
    logger.warning(
        "this CPU has no 8-bit dot products (AVX-512 VNNI, AVX-VNNI): block corruption runs its "
        "float32 model, as the int8 one saturates here"
    )


def whole_regions(region_prob: np.ndarray, height: int, width: int) -> np.ndarray:
    """The map over whole 32x32 regions only. A 360-line picture has a last row of 8 lines
    (1080 lines: 24) that the network sees mostly as padding; the model was trained and
    scored on whole regions, and on clean channel pictures that sliver lit up."""
    rows, cols = max(1, height // REGION), max(1, width // REGION)
    return region_prob[:, :, :rows, :cols]


def corrupted_share(region_prob: np.ndarray, threshold: float) -> np.ndarray:
    """Per frame, the share of regions at or above ``threshold`` ((N, 1, h, w) -> (N,))."""
    return (region_prob >= threshold).reshape(len(region_prob), -1).mean(axis=1)


@register
class BlockCorruptionDetector(Detector):
    """Flags frames whose picture shows concealed transmission errors (macroblocking)."""

    key = "block_corruption"
    config_class = BlockCorruptionConfig
    config: BlockCorruptionConfig

    @property
    def needs(self) -> DecodeNeeds:  # type: ignore[override]  # read-only: follows the config
        """RGB of the frames judged only. At most 960x540: a 1080p picture's 16x16 macroblocks
        become 8x8 there, inside the scales the training crops cover, at a quarter of the
        model's and the RGB copy's cost."""
        return DecodeNeeds(
            luma=False, rgb=True, audio=False, rgb_limit=RGB_LIMIT, rgb_stride=self.config.stride
        )

    def __init__(self, config: DetectorConfig, models: ModelCache | None = None) -> None:
        super().__init__(config, models)
        self.model_name: str = model_name_for(self.config.model)
        self._rng = np.random.default_rng()

    def model(self) -> OnnxModel:
        return self.models.model(self.model_name)

    def warm_up(self) -> None:
        """Load the model and run one small picture (the card's shape has free height/width)."""
        self.model().run_all(np.zeros((1, 3, 2 * REGION, 2 * REGION), np.float32))

    def scores(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(region probabilities (N, 1, h, w) over whole regions, frame probabilities (N,))
        for RGB frames (N, H, W, 3)."""
        region, head, _ = self.scores_and_embeddings(rgb)
        return region, head

    def scores_and_embeddings(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`scores` and the frames' embeddings (N, C)."""
        batcher = self.models.batcher(self.model())  # joins frames of concurrent channels
        maps, heads, embeddings = [], [], []
        size = self.config.batch_size
        for i in range(0, len(rgb), size):
            x = rgb[i : i + size].transpose(0, 3, 1, 2).astype(np.float32)
            outputs = batcher.run_all(x)
            maps.append(outputs[0])
            heads.append(outputs[1][:, 0])
            if len(outputs) > EMBEDDING_OUTPUT:  # models before 2.1 have none
                embeddings.append(outputs[EMBEDDING_OUTPUT])
        embedding = np.concatenate(embeddings) if embeddings else np.zeros((len(rgb), 0))
        region = whole_regions(np.concatenate(maps), *rgb.shape[1:3])
        return region, np.concatenate(heads), embedding

    def region_threshold(self) -> float:
        return self.config.region_threshold or self.model().card.thresholds.get("region", 0.5)

    def decide(self, region: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flags, confidence) per frame under the configured decision."""
        thresholds = self.model().card.thresholds
        if self.config.decision == "head":
            t = self.config.head_threshold or thresholds.get("head", 0.5)
            return head >= t, head
        t = self.region_threshold()
        share = corrupted_share(region, t)
        flat = region.reshape(len(region), -1)
        hot = np.where(flat >= t, flat, 0.0).sum(axis=1) / np.maximum((flat >= t).sum(axis=1), 1)
        return share > self.config.area_threshold, hot

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        self._candidate = None
        if not segment.has_video or segment.rgb is None:
            return []
        picks, rgb = segment.rgb_every(self.config.stride)
        region, head, embedding = self.scores_and_embeddings(rgb)
        if self.keep_candidate:
            self._keep(segment, picks, rgb, region, embedding)
        flags, confidence = self.decide(region, head)
        step = self.config.stride * segment.frame_duration
        spans = spans_from_flags(flags, segment.video_times[picks], step, confidence)
        end = segment.video_span[1]
        return [s.model_copy(update={"end": min(s.end, end)}) for s in spans]

    def _keep(
        self,
        segment: DecodedSegment,
        picks: np.ndarray,
        rgb: np.ndarray,
        region: np.ndarray,
        embedding: np.ndarray,
    ) -> None:
        """One analysed frame, drawn at random, as this segment's annotation candidate."""
        if embedding.shape[1] == 0 or len(rgb) == 0:
            return
        i = int(self._rng.integers(len(picks)))
        score = frame_score(region[i : i + 1, 0], self.config.area_threshold)[0]
        self._candidate = Candidate(
            detector=self.key,
            model_version=self.model().version,
            frame_time=float(segment.video_times[picks[i]]),
            score=float(score),
            threshold=self.region_threshold(),
            embedding=embedding[i].astype(np.float32),
            region_prob=region[i, 0].astype(np.float32),
            rgb=np.ascontiguousarray(rgb[i]),
        )


__all__ = [
    "BlockCorruptionConfig",
    "BlockCorruptionDetector",
    "corrupted_share",
    "whole_regions",
]
