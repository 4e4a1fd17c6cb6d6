"""A candidate for annotation: one analysed frame as a learned detector saw it.

When the inference worker samples a segment for the annotation pool (one in
``VQM_CANDIDATES_EVERY`` per channel), a learned detector that can keep candidates hands over
one of the frames it analysed, with what selection needs: its score, its embedding (the trunk's
pooled features) and its region map. ``vqm label queue`` picks among them what an operator
labels; ``vqm retrain`` fits on the labels.

``score`` is the frame's decision value on the probability scale, flagged at or above
``threshold`` (for block corruption: the region probability a frame's ``area`` share of
regions reaches, so ``score >= threshold`` is exactly the map decision).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candidate:
    detector: str
    model_version: str
    frame_time: float
    score: float
    threshold: float
    embedding: np.ndarray  # (C,) float32
    region_prob: np.ndarray  # (rows, cols) float32, whole regions only
    rgb: np.ndarray  # (H, W, 3) uint8: the picture the model judged


def frame_score(region_prob: np.ndarray, area: float) -> np.ndarray:
    """Per frame, the probability that its ``area`` share of regions reaches: flagged at
    threshold t exactly when more than ``area`` of the regions are at or above t."""
    flat = np.sort(region_prob.reshape(len(region_prob), -1), axis=1)[:, ::-1]
    k = min(flat.shape[1] - 1, int(np.floor(area * flat.shape[1])))
    return np.asarray(flat[:, k], np.float64)


__all__ = ["Candidate", "frame_score"]
