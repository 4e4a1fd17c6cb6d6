"""Faces for the sync model: shot boundaries, face detection, IoU tracks, mouth crops.

A window's frames are split into shots at hard cuts (luma histogram change), faces are found
on every ``stride``-th frame by OpenCV's frontal Haar cascade and, when given, the small
learned face detector (``face_detector.onnx``, trained on synthetic talking heads: it finds
the plain drawn faces the cascade misses), detections are chained into tracks by box overlap
within a shot, boxes are interpolated and smoothed between detections, and each track yields
one mouth crop per frame::

    finder = FaceFinder(learned=models.optional(FACE_MODEL, LearnedFaces))  # None: Haar only
    for track in finder.tracks(luma):
        crops = mouth_crops(luma, track)      # (n, 32, 48) float32, track-normalised

Both detectors give boxes in the Haar frontal-default convention, which ``mouth_box`` and the
sync model assume. Crops are normalised per track (the track's mean crop removed, then scaled
by its spread), so what reaches the model is how the mouth moves, not whose mouth it is.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from monitor.inference.engine import OnnxModel

logger = logging.getLogger(__name__)

CROP_H, CROP_W = 32, 48
_DETECT_HEIGHT = 240
FULL_SEARCH_EVERY = 3  # face searches of a shot that look at the whole frame (see tracks)


@dataclass
class Track:
    """One face followed through consecutive frames ``first .. first + len(boxes) - 1``;
    ``boxes`` is (n, 4) float x, y, w, h in full-frame pixels."""

    first: int
    boxes: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class CascadePass:
    """One Haar pass: which shipped cascade, on what preprocessing, how many neighbours, and
    how its boxes map onto the frontal-default convention (``mouth_box`` assumes that one):
    scaled by ``scale`` about their centre, moved down by ``shift`` of their width."""

    cascade: str
    prepare: str  # "equalise" (global histogram) or "clahe" (local, 4x4 tiles)
    min_neighbors: int
    scale: float = 1.0
    shift: float = 0.0


# The frontal-default cascade on equalised luma, as the sync model was trained on. More passes
# can be listed (boxes are merged); alt2 on CLAHE luma was tried: with the learned detector it
# found nothing more on the validation talking heads and cost 0.5 s more CPU per 4 s window.
# Its mapping onto the default convention, measured on validation faces, would be
# CascadePass("haarcascade_frontalface_alt2.xml", "clahe", 3, scale=1.06, shift=0.007).
PASSES: tuple[CascadePass, ...] = (
    CascadePass("haarcascade_frontalface_default.xml", "equalise", 4),
)


def load_cascade(name: str) -> cv2.CascadeClassifier:
    """One of the Haar cascades OpenCV's wheel ships (``cv2.data.haarcascades``)."""
    path = cv2.data.haarcascades + name  # type: ignore[attr-defined]
    loaded = cv2.CascadeClassifier(path)
    if loaded.empty():
        raise RuntimeError(f"cannot load the Haar face cascade {path}")
    return loaded


FACE_MODEL = "face_detector"
LEARNED_HEIGHT = 128  # the learned detector sees luma resized to 128 lines
LEARNED_STRIDE = 16  # one output cell per 16 input pixels
LEARNED_BOX_UNIT = 64.0  # box side = 64 * exp(output) input pixels


def learned_input(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """Luma frame -> the learned detector's (1, 1, 128, w) input and the frame-to-input scale;
    ``w`` is the frame's width at that scale rounded to a multiple of 16."""
    scale = LEARNED_HEIGHT / frame.shape[0]
    width = max(
        LEARNED_STRIDE, int(round(frame.shape[1] * scale / LEARNED_STRIDE)) * LEARNED_STRIDE
    )
    small = cv2.resize(frame, (width, LEARNED_HEIGHT), interpolation=cv2.INTER_AREA)
    return ((small.astype(np.float32) - 128.0) / 64.0)[None, None], scale


class LearnedFaces(OnnxModel):
    """The small face detector trained on synthetic talking heads (``face_detector.onnx``):
    per 16-pixel cell a face logit, the centre inside the cell and the box side, boxes in the
    Haar frontal-default convention. Cells above ``threshold`` (default: the card's) that are
    a local maximum become boxes. It is small: one intra-op thread is enough."""

    def __init__(
        self,
        name: str = FACE_MODEL,
        model_dir: str | Path | None = None,
        providers: list[str] | None = None,
        threads: int = 1,
        threshold: float | None = None,
    ) -> None:
        super().__init__(name, model_dir, providers, threads)
        card = self.card.thresholds
        self.threshold = threshold if threshold is not None else card.get("face", 0.9)

    def __call__(self, frame: np.ndarray, min_face: int = 48) -> list[tuple[float, np.ndarray]]:
        """(probability, box x, y, w, h in frame pixels) of each face found, best first."""
        x, scale = learned_input(frame)
        grid = self.run(x)[0]
        logit = grid[0]
        prob = 1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))
        peak = cv2.dilate(prob, np.ones((3, 3), np.uint8))
        found = []
        for i, j in zip(*np.nonzero((prob >= self.threshold) & (prob >= peak)), strict=True):
            cx = (j + 1.0 / (1.0 + math.exp(-float(grid[1, i, j])))) * LEARNED_STRIDE / scale
            cy = (i + 1.0 / (1.0 + math.exp(-float(grid[2, i, j])))) * LEARNED_STRIDE / scale
            side = LEARNED_BOX_UNIT * math.exp(min(float(grid[3, i, j]), 5.0)) / scale
            if side >= min_face:
                box = np.array([cx - side / 2, cy - side / 2, side, side])
                found.append((float(prob[i, j]), box))
        return sorted(found, key=lambda f: -f[0])


def shot_starts(luma: np.ndarray, threshold: float = 0.5) -> list[int]:
    """First frame of each shot: a cut is half the luma histogram changing in one frame."""
    starts = [0]
    previous = None
    for i, frame in enumerate(luma):
        hist = np.bincount(frame[::4, ::4].ravel() >> 3, minlength=32).astype(np.float64)
        hist /= max(hist.sum(), 1.0)
        if previous is not None and 0.5 * np.abs(hist - previous).sum() > threshold:
            starts.append(i)
        previous = hist
    return starts


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


class FaceFinder:
    """Frontal faces in luma frames, and tracks of them through a window.

    Every pass in ``passes`` runs, then ``learned`` when given; a box that overlaps an earlier
    one (IoU 0.3) is the same face and is dropped, so the Haar passes keep their boxes and the
    learned detector adds the faces they all miss. A finder owns its cascades (loaded once
    each); OpenCV's classifiers are not shared between threads, so each scorer has its own.
    """

    def __init__(
        self, learned: LearnedFaces | None = None, passes: tuple[CascadePass, ...] = PASSES
    ) -> None:
        self.learned = learned
        self.passes = passes
        self._cascades: dict[str, cv2.CascadeClassifier] = {}
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))

    def cascade(self, name: str) -> cv2.CascadeClassifier:
        if name not in self._cascades:
            self._cascades[name] = load_cascade(name)
        return self._cascades[name]

    def detect(
        self, frame: np.ndarray, min_face: int = 48, near: np.ndarray | None = None
    ) -> np.ndarray:
        """Faces in one luma frame, (k, 4) x, y, w, h in its pixels.

        ``near``, (k, 4) boxes of faces already followed: the Haar passes then look only
        around each of them, at sizes close to its own (the learned detector, cheap, still
        looks everywhere). The whole-frame search is most of the detector's cost.
        """
        scale = min(1.0, _DETECT_HEIGHT / frame.shape[0])
        small = cv2.resize(frame, None, fx=scale, fy=scale) if scale < 1.0 else frame
        prepared: dict[str, np.ndarray] = {}
        boxes: list[np.ndarray] = []
        for p in self.passes:
            if p.prepare not in prepared:
                # Equalising finds faces that differ little from their background in luma;
                # the whole picture is equalised, so a search near a face sees what a search
                # of the whole frame would.
                prepared[p.prepare] = (
                    self._clahe.apply(small) if p.prepare == "clahe" else cv2.equalizeHist(small)
                )
            found = self._haar(prepared[p.prepare], p, int(min_face * scale), near, scale)
            for x, y, w, h in found / scale:
                side = w * p.scale
                box = np.array([x + (w - side) / 2, y + (h - side) / 2 + p.shift * w, side, side])
                _add_new(boxes, box)
        if self.learned is not None:
            for _, box in self.learned(frame, min_face):
                _add_new(boxes, box)
        return np.stack(boxes) if boxes else np.zeros((0, 4))

    def _haar(
        self,
        picture: np.ndarray,
        p: CascadePass,
        min_side: int,
        near: np.ndarray | None,
        scale: float,
    ) -> np.ndarray:
        """One pass's boxes (k, 4) in ``picture``'s pixels: over the whole picture, or only
        around each box of ``near`` (frame pixels) at 0.75-1.33 times its side."""
        height, width = picture.shape
        # (x0, y0, x1, y1, smallest side, largest side: 0 for no limit) of each search
        regions = [(0, 0, width, height, min_side, 0)] if near is None else []
        followed = np.zeros((0, 4)) if near is None else np.asarray(near, np.float64).reshape(-1, 4)
        for x, y, w, _ in followed * scale:
            side = w / p.scale  # the cascade's own box, before its mapping to the convention
            x0, y0 = max(0, int(x - side)), max(0, int(y - side))
            x1, y1 = min(width, int(x + w + side) + 1), min(height, int(y + w + side) + 1)
            regions.append((x0, y0, x1, y1, max(min_side, int(0.75 * side)), int(1.33 * side) + 1))
        boxes = [np.zeros((0, 4))]
        for x0, y0, x1, y1, smallest, largest in regions:
            found = self.cascade(p.cascade).detectMultiScale(
                picture[y0:y1, x0:x1],
                scaleFactor=1.1,
                minNeighbors=p.min_neighbors,
                minSize=(smallest,) * 2,
                maxSize=(largest,) * 2,
            )
            boxes.append(np.asarray(found, dtype=np.float64).reshape(-1, 4) + (x0, y0, 0, 0))
        return np.concatenate(boxes)

    def tracks(
        self, luma: np.ndarray, stride: int = 3, min_frames: int = 30, min_iou: float = 0.3
    ) -> list[Track]:
        """Tracks of faces seen on consecutive detection frames of one shot, at least
        ``min_frames`` long, faces looked for on every ``stride``-th frame."""
        n = len(luma)
        bounds = shot_starts(luma) + [n]
        tracks: list[Track] = []
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            tracks.extend(self._tracks_in_shot(luma, lo, hi, stride, min_iou))
        return [t for t in tracks if t.frames >= min_frames]

    def _tracks_in_shot(
        self, luma: np.ndarray, lo: int, hi: int, stride: int, min_iou: float
    ) -> list[Track]:
        open_: list[dict[int, np.ndarray]] = []
        done: list[dict[int, np.ndarray]] = []
        sample = list(range(lo, hi, stride))
        if sample and sample[-1] != hi - 1:
            sample.append(hi - 1)
        last = None
        for n, i in enumerate(sample):
            # Between whole-frame searches (every FULL_SEARCH_EVERY-th, and whenever no face
            # is followed) the cascade looks only where the followed faces are: a face that
            # comes into the shot is found at the next whole search, at most that many
            # searches late, and the learned detector looks everywhere every time.
            near = None
            if open_ and n % FULL_SEARCH_EVERY:
                near = np.stack([track[max(track)] for track in open_])
            found = self.detect(luma[i], near=near)
            still: list[dict[int, np.ndarray]] = []
            used: set[int] = set()
            for track in open_:
                box = track[max(track)]
                scores = [iou(box, f) if j not in used else 0.0 for j, f in enumerate(found)]
                if scores and max(scores) >= min_iou:
                    j = int(np.argmax(scores))
                    used.add(j)
                    track[i] = found[j]
                    still.append(track)
                elif last is not None and max(track) == last:
                    track_gap = i - max(track)
                    (still if track_gap <= 2 * stride else done).append(track)
                else:
                    done.append(track)
            still.extend({i: f} for j, f in enumerate(found) if j not in used)
            open_ = still
            last = i
        return [_interpolate(t) for t in done + open_ if len(t) >= 2]


def _add_new(boxes: list[np.ndarray], box: np.ndarray) -> None:
    """Append ``box`` unless it overlaps one already found (the same face)."""
    if all(iou(box, b) < 0.3 for b in boxes):
        boxes.append(box)


def _interpolate(detections: dict[int, np.ndarray]) -> Track:
    """Boxes for every frame between the first and last detection, smoothed over time."""
    keys = sorted(detections)
    frames = np.arange(keys[0], keys[-1] + 1)
    raw = np.stack([detections[k] for k in keys])
    boxes = np.stack([np.interp(frames, keys, raw[:, c]) for c in range(4)], axis=1)
    # Haar boxes jitter by a few pixels; a moving mean keeps that out of the mouth crops.
    k = min(9, len(boxes) // 2 * 2 + 1)
    kernel = np.ones(k) / k
    padded = np.pad(boxes, ((k // 2, k // 2), (0, 0)), mode="edge")
    smooth = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(4)], axis=1)
    return Track(first=int(keys[0]), boxes=smooth)


def mouth_box(box: np.ndarray) -> tuple[float, float, float, float]:
    """The mouth region of a Haar face box: lower middle, 0.6 wide by 0.4 high."""
    x, y, w, h = box
    return x + 0.2 * w, y + 0.6 * h, 0.6 * w, 0.4 * h


def mouth_crops(luma: np.ndarray, track: Track) -> np.ndarray:
    """(n, 32, 48) float32 crops of the track's mouth, normalised over the track."""
    return normalise_crops(raw_mouth_crops(luma, track))


def raw_mouth_crops(luma: np.ndarray, track: Track) -> np.ndarray:
    """(n, 32, 48) float32 crops of the track's mouth in luma levels, not normalised."""
    crops = np.empty((track.frames, CROP_H, CROP_W), np.float32)
    for k, box in enumerate(track.boxes):
        frame = luma[track.first + k]
        x, y, w, h = mouth_box(box)
        # Sub-pixel affine crop: smoothed boxes move smoothly, so the crop does too.
        m = np.array([[w / CROP_W, 0, x], [0, h / CROP_H, y]], np.float64)
        crops[k] = cv2.warpAffine(
            frame,
            m,
            (CROP_W, CROP_H),
            flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return crops


def normalise_crops(crops: np.ndarray) -> np.ndarray:
    """Remove the track's mean crop and scale by its spread: what is left is motion."""
    centred = crops - crops.mean(axis=0, keepdims=True)
    return (centred / (float(centred.std()) + 4.0)).astype(np.float32)
