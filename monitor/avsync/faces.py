"""Faces for the sync model: shot boundaries, Haar face detection, IoU tracks, mouth crops.

A window's frames are split into shots at hard cuts (luma histogram change), faces are found
with OpenCV's frontal Haar cascade on every ``stride``-th frame, detections are chained into
tracks by box overlap within a shot, boxes are interpolated and smoothed between detections,
and each track yields one mouth crop per frame::

    for track in face_tracks(luma):
        crops = mouth_crops(luma, track)      # (n, 32, 48) float32, track-normalised

Crops are normalised per track (the track's mean crop removed, then scaled by its spread), so
what reaches the model is how the mouth moves, not whose mouth it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_H, CROP_W = 32, 48
_DETECT_HEIGHT = 240
_CASCADE: cv2.CascadeClassifier | None = None


@dataclass
class Track:
    """One face followed through consecutive frames ``first .. first + len(boxes) - 1``;
    ``boxes`` is (n, 4) float x, y, w, h in full-frame pixels."""

    first: int
    boxes: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.boxes)


def cascade() -> cv2.CascadeClassifier:
    global _CASCADE
    if _CASCADE is None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        _CASCADE = cv2.CascadeClassifier(path)
        if _CASCADE.empty():
            raise RuntimeError(f"cannot load the Haar face cascade {path}")
    return _CASCADE


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


def detect_faces(frame: np.ndarray, min_face: int = 48) -> np.ndarray:
    """Frontal faces in one luma frame, (k, 4) x, y, w, h in its pixels."""
    scale = min(1.0, _DETECT_HEIGHT / frame.shape[0])
    small = cv2.resize(frame, None, fx=scale, fy=scale) if scale < 1.0 else frame
    # Equalising first finds faces that differ little from their background in luma.
    found = cascade().detectMultiScale(
        cv2.equalizeHist(small),
        scaleFactor=1.1,
        minNeighbors=4,
        minSize=(int(min_face * scale),) * 2,
    )
    if len(found) == 0:
        return np.zeros((0, 4))
    return np.asarray(found, dtype=np.float64) / scale


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def face_tracks(
    luma: np.ndarray, stride: int = 3, min_frames: int = 30, min_iou: float = 0.3
) -> list[Track]:
    """Tracks of faces seen on consecutive detection frames of one shot, ``min_frames`` long."""
    n = len(luma)
    bounds = shot_starts(luma) + [n]
    tracks: list[Track] = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        tracks.extend(_tracks_in_shot(luma, lo, hi, stride, min_iou))
    return [t for t in tracks if t.frames >= min_frames]


def _tracks_in_shot(luma: np.ndarray, lo: int, hi: int, stride: int, min_iou: float) -> list[Track]:
    open_: list[dict[int, np.ndarray]] = []
    done: list[dict[int, np.ndarray]] = []
    sample = list(range(lo, hi, stride))
    if sample and sample[-1] != hi - 1:
        sample.append(hi - 1)
    last = None
    for i in sample:
        found = detect_faces(luma[i])
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
    return normalise_crops(crops)


def normalise_crops(crops: np.ndarray) -> np.ndarray:
    """Remove the track's mean crop and scale by its spread: what is left is motion."""
    centred = crops - crops.mean(axis=0, keepdims=True)
    return (centred / (float(centred.std()) + 4.0)).astype(np.float32)
