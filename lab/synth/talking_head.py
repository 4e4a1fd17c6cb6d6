"""Synthetic talking heads: a face whose mouth opens and closes with real speech, at a known
audio offset.

The face is either drawn (skin, face shape, eyes, brows, hair and lips all drawn from the seed)
or the astronaut photograph that scikit-image ships, warped. Its mouth opening follows the
loudness of espeak-ng speech (:mod:`lab.synth.speech`); the head sways, zooms and is lit
unevenly over time; the sound is the same speech shifted by ``offset_ms`` (+ = audio lags)::

    clip = talking_head(seed=3, duration=4.0, fps=25, offset_ms=120.0)
    clip.segment()                       # DecodedSegment for the detector
    write_talking_head("th.ts", 8.0, offset_ms=200.0, seed=1)

``heldout=True`` draws faces from a separate seed space, never the photograph, and speech from
the held-out voices, so evaluation sees faces and voices that training did not.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lab.synth.beep_flash import AvClip, write_av_clip
from lab.synth.speech import RATE, SpeechPool

CANVAS = 256  # the face is drawn on a square canvas, centre (128, 128), radius about 80
_MARGIN = 0.8  # seconds of speech rendered beyond the clip each side, for offsets


Rgb = tuple[int, int, int]


@dataclass(frozen=True)
class FaceLook:
    """Everything about a face that stays put while it talks."""

    canvas: np.ndarray  # (CANVAS, CANVAS, 3) uint8, RGB, mouth closed region still plain skin
    mask: np.ndarray  # (CANVAS, CANVAS) float32 0-1, where the face (and hair) is
    mouth: tuple[float, float]  # centre on the canvas
    mouth_width: float
    lip: Rgb


def _color(rng: np.random.Generator, lo: Rgb, hi: Rgb) -> Rgb:
    r, g, b = (int(rng.integers(a, z)) for a, z in zip(lo, hi, strict=True))
    return r, g, b


def drawn_face(rng: np.random.Generator) -> FaceLook:
    """A frontal face drawn with OpenCV: Haar finds it the way it finds a photographed one."""
    img = np.zeros((CANVAS, CANVAS, 3), np.uint8)
    mask = np.zeros((CANVAS, CANVAS), np.uint8)
    c, r = CANVAS // 2, 80
    skin = _color(rng, (120, 80, 60), (245, 205, 180))
    hair = _color(rng, (10, 10, 10), (120, 90, 70))
    aspect = rng.uniform(0.72, 0.88)
    if rng.random() < 0.85:
        cv2.ellipse(img, (c, c - 8), (int(aspect * r) + 10, r + 4), 0, 180, 360, hair, -1)
        cv2.ellipse(mask, (c, c - 8), (int(aspect * r) + 10, r + 4), 0, 180, 360, 255, -1)
    cv2.ellipse(img, (c, c), (int(aspect * r), r), 0, 0, 360, skin, -1, cv2.LINE_AA)
    cv2.ellipse(mask, (c, c), (int(aspect * r), r), 0, 0, 360, 255, -1)
    cv2.rectangle(img, (c - 22, c + r - 10), (c + 22, CANVAS), skin, -1)
    cv2.rectangle(mask, (c - 22, c + r - 10), (c + 22, CANVAS), 255, -1)
    spread, eye_y = rng.uniform(0.28, 0.38) * r, c - rng.uniform(0.15, 0.3) * r
    eye_w, eye_h = rng.uniform(0.12, 0.18) * r, rng.uniform(0.05, 0.09) * r
    iris = _color(rng, (20, 20, 20), (110, 110, 120))
    brow = max(2, int(rng.uniform(0.04, 0.08) * r))
    for side in (-1, 1):
        ex = int(c + side * spread)
        cv2.ellipse(img, (ex, int(eye_y)), (int(eye_w), int(eye_h)), 0, 0, 360, (245, 245, 245), -1)
        cv2.circle(img, (ex, int(eye_y)), max(2, int(eye_h * 0.9)), iris, -1)
        by = int(eye_y - rng.uniform(0.14, 0.22) * r)
        cv2.line(img, (ex - int(eye_w * 1.1), by + 2), (ex + int(eye_w * 1.1), by), hair, brow)
    shade = tuple(int(v * 0.75) for v in skin)
    cv2.line(img, (c, int(eye_y + 0.1 * r)), (c - 4, int(c + 0.2 * r)), shade, 3)
    cv2.line(img, (c - 8, int(c + 0.22 * r)), (c + 6, int(c + 0.22 * r)), shade, 2)
    lip = _color(rng, (120, 30, 40), (200, 100, 110))
    img = np.asarray(cv2.GaussianBlur(img, (3, 3), 0), np.uint8)
    mouth = (float(c), float(c + rng.uniform(0.45, 0.55) * r))
    return FaceLook(img, mask.astype(np.float32) / 255.0, mouth, rng.uniform(0.22, 0.3) * r, lip)


@functools.lru_cache(maxsize=1)
def _astronaut() -> np.ndarray:
    from skimage.data import astronaut

    return np.asarray(astronaut())


def photo_face(rng: np.random.Generator) -> FaceLook:
    """The astronaut photograph, face centred on the canvas, colours jittered."""
    img = _astronaut()
    # Her Haar box is about (176, 65, 98, 98): face centre (225, 114), mouth near (225, 146).
    scale = 80.0 / 49.0 * rng.uniform(0.9, 1.1)
    m = np.array([[scale, 0, 128 - 225 * scale], [0, scale, 128 - 114 * scale]], np.float32)
    canvas = cv2.warpAffine(img, m, (CANVAS, CANVAS), flags=cv2.INTER_AREA)
    gains = rng.uniform(0.8, 1.15, 3)
    canvas = np.clip(canvas * gains, 0, 255).astype(np.uint8)
    mask = np.zeros((CANVAS, CANVAS), np.float32)
    cv2.ellipse(mask, (128, 120), (int(1.25 * 80), int(1.5 * 80)), 0, 0, 360, 1.0, -1)
    mask = np.asarray(cv2.GaussianBlur(mask, (31, 31), 0), np.float32)
    mouth = (128.0, 128 + (146 - 114) * scale)
    lip = tuple(int(v) for v in canvas[int(mouth[1]), 128])
    return FaceLook(canvas, mask, mouth, 9.0 * scale, lip)  # type: ignore[arg-type]


def draw_mouth(canvas: np.ndarray, look: FaceLook, opening: float) -> np.ndarray:
    """The face with its mouth ``opening`` open (0 closed, 1 wide)."""
    img = canvas.copy()
    (mx, my), w = look.mouth, look.mouth_width
    outer = (int(w), int(max(2.0, 0.18 * w + 0.75 * w * opening)))
    cv2.ellipse(img, (int(mx), int(my)), outer, 0, 0, 360, look.lip, -1, cv2.LINE_AA)
    if opening > 0.05:
        inner = (int(0.8 * w), int(max(1.0, 0.65 * w * opening)))
        cv2.ellipse(img, (int(mx), int(my)), inner, 0, 0, 360, (35, 10, 15), -1, cv2.LINE_AA)
        if opening > 0.3:
            teeth = (
                (int(mx - 0.55 * w), int(my - inner[1])),
                (int(mx + 0.55 * w), int(my - inner[1] * 0.55)),
            )
            cv2.rectangle(img, teeth[0], teeth[1], (225, 225, 215), -1)
    return img


def mouth_opening(speech: np.ndarray, times: np.ndarray, t0: float) -> np.ndarray:
    """How open the mouth is at each time: the speech's loudness over 40 ms, 0-1."""
    half = int(0.02 * RATE)
    out = np.zeros(len(times))
    for k, t in enumerate(times):
        n = int(round((t - t0) * RATE))
        piece = speech[max(0, n - half) : max(0, n + half)]
        rms = float(np.sqrt(np.mean(piece**2))) if piece.size else 0.0
        db = 20 * math.log10(max(rms, 1e-6))
        out[k] = np.clip((db + 42.0) / 28.0, 0.0, 1.0)
    return out


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    top, bottom = (
        _color(rng, (20, 20, 20), (200, 200, 200)),
        _color(rng, (20, 20, 20), (200, 200, 200)),
    )
    ramp = np.linspace(0, 1, h)[:, None, None]
    bg = (1 - ramp) * np.array(top) + ramp * np.array(bottom)
    noise = cv2.resize(rng.uniform(-25, 25, (h // 16 + 1, w // 16 + 1)), (w, h))
    return np.clip(np.broadcast_to(bg, (h, w, 3)) + noise[..., None], 0, 255).astype(np.float32)


def talking_head(
    seed: int,
    duration: float = 4.0,
    fps: int = 25,
    offset_ms: float = 0.0,
    heldout: bool = False,
    pool: SpeechPool | None = None,
    width: int = 320,
    height: int = 240,
) -> AvClip:
    """One talking-head clip; ``pool`` gives the speech (default: a small pool per split)."""
    rng = np.random.default_rng([11, int(heldout), seed])
    pool = pool or _default_pool(heldout)
    look = drawn_face(rng) if heldout or rng.random() < 0.7 else photo_face(rng)
    speech = pool.excerpt(rng, duration + 2 * _MARGIN)
    frames = int(math.ceil(duration * fps - 1e-9))
    times = np.arange(frames) / fps
    opening = mouth_opening(speech, times, -_MARGIN) * rng.uniform(0.7, 1.0)
    bg = _background(rng, height, width)
    radius = rng.uniform(0.19, 0.28) * height
    cx, cy = width * rng.uniform(0.35, 0.65), height * rng.uniform(0.42, 0.55)
    sway = rng.uniform(0.0, 0.04, 2) * height
    freq = rng.uniform(0.1, 0.5, 4)
    phase = rng.uniform(0, 2 * np.pi, 4)
    zoom, light = rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.25)
    luma = np.empty((frames, height, width), np.uint8)
    for i, t in enumerate(times):
        s = radius / 80.0 * (1 + zoom * math.sin(2 * math.pi * freq[2] * t + phase[2]))
        x = cx + sway[0] * math.sin(2 * math.pi * freq[0] * t + phase[0])
        y = cy + sway[1] * math.sin(2 * math.pi * freq[1] * t + phase[1])
        m = np.array([[s, 0, x - 128 * s], [0, s, y - 128 * s]], np.float32)
        face = cv2.warpAffine(draw_mouth(look.canvas, look, float(opening[i])), m, (width, height))
        alpha = cv2.warpAffine(look.mask, m, (width, height))[..., None]
        rgb = alpha * face + (1 - alpha) * bg
        gain = 1 + light * math.sin(2 * math.pi * freq[3] * t + phase[3])
        gray = cv2.cvtColor(np.clip(rgb * gain, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        luma[i] = np.clip(gray.astype(np.int16) + rng.integers(-2, 3, gray.shape), 0, 255)
    audio = _shifted(speech, duration, offset_ms / 1000.0)
    audio += rng.standard_normal(audio.size).astype(np.float32) * 10 ** (rng.uniform(-4, -2.5))
    return AvClip(luma=luma, audio=np.stack([audio, audio]), fps=fps, offset_ms=offset_ms)


def _shifted(speech: np.ndarray, duration: float, offset: float) -> np.ndarray:
    """Sound for ``[0, duration)`` that plays the speech ``offset`` seconds late."""
    n = int(round(duration * RATE))
    start = int(round((_MARGIN - offset) * RATE))
    out = np.zeros(n, np.float32)
    lo = max(0, -start)
    piece = speech[max(0, start) : max(0, start) + n - lo]
    out[lo : lo + piece.size] = piece
    return out


@functools.lru_cache(maxsize=2)
def _default_pool(heldout: bool) -> SpeechPool:
    return SpeechPool(seed=101 if heldout else 100, size=24, heldout=heldout)


def write_talking_head(
    path: str | Path,
    duration: float,
    offset_ms: float,
    seed: int = 0,
    fps: int = 25,
    **options: Any,
) -> dict[str, Any]:
    """Write a talking-head clip as MPEG-TS and return its ground truth."""
    clip = talking_head(seed, duration, fps=fps, offset_ms=offset_ms, **options)
    write_av_clip(path, clip.luma, clip.audio, fps)
    return {"kind": "talking_head", "duration": duration, "fps": fps, "offset_ms": offset_ms}
