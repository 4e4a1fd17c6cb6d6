"""The block corruption model's view of labelled pictures: per-region features and
probabilities, region targets from an operator's answer, and frame decisions under a head.

Shared by ``vqm retrain`` (its gate) and the active-learning benchmark, so both judge a
refitted head the way the detector decides: a frame is flagged when more than ``area`` of its
whole 32x32 regions reach the region threshold (:func:`frame_score` puts that on one number).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.app.head_fit import RegionLabels, region_probs
from monitor.inference.candidate import frame_score
from monitor.inference.detectors.block_corruption import whole_regions
from monitor.inference.engine import OnnxModel

FEATURES_OUTPUT = 2  # region_prob, frame_prob, features, embedding


@dataclass
class FrameView:
    features: np.ndarray  # (rows, cols, C) float32, whole regions only
    probs: np.ndarray  # (rows, cols) under the model's own head

    @property
    def embedding(self) -> np.ndarray:
        return np.asarray(self.features.reshape(-1, self.features.shape[-1]).mean(axis=0))


def frame_views(model: OnnxModel, rgb: np.ndarray, batch: int = 8) -> list[FrameView]:
    """Views of RGB frames (N, H, W, 3) of one size."""
    out: list[FrameView] = []
    for i in range(0, len(rgb), batch):
        x = rgb[i : i + batch].transpose(0, 3, 1, 2).astype(np.float32)
        outputs = model.run_all(x)
        if len(outputs) <= FEATURES_OUTPUT:
            raise ValueError(f"{model.name} {model.version} has no features output")
        probs = whole_regions(outputs[0], *x.shape[2:])[:, 0]
        feats = whole_regions(outputs[FEATURES_OUTPUT], *x.shape[2:]).transpose(0, 2, 3, 1)
        out.extend(FrameView(f.astype(np.float32), p) for f, p in zip(feats, probs, strict=True))
    return out


def cell_mask(shape: tuple[int, int], grid: int, cells: list[tuple[int, int]]) -> np.ndarray:
    """The model regions (rows, cols) whose centre falls in a marked cell of a ``grid`` x
    ``grid`` patch grid laid over the same picture."""
    rows, cols = shape
    r = ((np.arange(rows) + 0.5) * grid / rows).astype(int)
    c = ((np.arange(cols) + 0.5) * grid / cols).astype(int)
    marked = np.zeros((grid, grid), bool)
    for row, col in cells:
        marked[row, col] = True
    return marked[np.ix_(r, c)]


def region_targets(
    view: FrameView, defect: bool, threshold: float, marked: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(targets, known) over the frame's regions from one answer.

    A false alarm: no region is corrupted. A real defect with marked regions: those are,
    the rest are not. A real defect on the whole frame: the regions the model flagged are
    (the operator confirmed what it saw); the others are not known.
    """
    if not defect:
        return np.zeros(view.probs.shape), np.ones(view.probs.shape, bool)
    if marked is not None and marked.any():
        return marked.astype(float), np.ones(view.probs.shape, bool)
    hot = view.probs >= threshold
    return hot.astype(float), hot


def labels_of(
    view: FrameView, targets: np.ndarray, known: np.ndarray, weight: float = 1.0
) -> RegionLabels:
    return RegionLabels(
        view.features[known].astype(np.float64),
        targets[known],
        np.full(int(known.sum()), weight),
    )


Stacked = list[tuple[np.ndarray, np.ndarray]]  # (frame indices, their features stacked)


def stacked(views: list[FrameView]) -> Stacked:
    """Frames of one size stacked into one array, once, for repeated :func:`scores_under`."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, view in enumerate(views):
        by_shape.setdefault(view.features.shape, []).append(i)
    return [(np.asarray(i), np.stack([views[j].features for j in i])) for i in by_shape.values()]


def scores_under(views: list[FrameView], w: np.ndarray, b: float, area: float) -> np.ndarray:
    """Each frame's decision value (see :func:`frame_score`) under the head (w, b)."""
    return stacked_scores(stacked(views), w, b, area)


def stacked_scores(groups: Stacked, w: np.ndarray, b: float, area: float) -> np.ndarray:
    """:func:`scores_under` for frames stacked once by :func:`stacked`: each size in one
    product."""
    out = np.empty(sum(len(index) for index, _ in groups))
    for index, features in groups:
        out[index] = frame_score(region_probs(features, w, b), area)
    return out


@dataclass
class FrameFigures:
    recall: float
    false_alarm_rate: float
    threshold: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in vars(self).items()}


def figures_at(scores: np.ndarray, truth: np.ndarray, threshold: float) -> FrameFigures:
    flagged = scores >= threshold
    recall = float(flagged[truth].mean()) if truth.any() else 0.0
    fa = float(flagged[~truth].mean()) if (~truth).any() else 0.0
    return FrameFigures(recall, fa, threshold)


def at_recall(scores: np.ndarray, truth: np.ndarray, recall: float) -> FrameFigures:
    """Figures at the highest threshold that keeps at least ``recall``."""
    positives = np.sort(scores[truth])[::-1]
    if positives.size == 0:
        return figures_at(scores, truth, 1.0)
    k = max(1, int(np.ceil(recall * positives.size - 1e-9)))
    return figures_at(scores, truth, float(positives[k - 1]))


__all__ = [
    "FrameFigures",
    "FrameView",
    "at_recall",
    "cell_mask",
    "figures_at",
    "frame_views",
    "labels_of",
    "region_targets",
    "scores_under",
    "stacked",
    "stacked_scores",
]
