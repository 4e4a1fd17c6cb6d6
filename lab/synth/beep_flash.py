"""A beep-and-flash sync test pattern with a known audio offset.

A white box flashes for one frame every ``period`` seconds and a 1 kHz beep one frame long
marks each flash; the beep sits ``offset_ms`` after its flash (+ means audio lags the picture,
the sign the ``av_sync`` detector reports). The period (1.2 s) is longer than the detector's
search range plus the largest offset, so no beep can be matched to the wrong flash::

    clip = beep_flash(duration=8.0, offset_ms=200.0, fps=25)
    clip.segment()                                 # a DecodedSegment, no encoding
    write_beep_flash("sync.ts", 8.0, offset_ms=200)   # MPEG-TS for ``vqm scan``

:func:`write_av_clip` encodes any frames and sound with channel-exact timestamps; the
talking-head generator writes its clips with it too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from monitor.app.synthetic.encode import (
    AAC_FRAME,
    WARMUP_PACKETS,
    EncoderSettings,
    TsEncoder,
    audio_grid,
)
from monitor.inference.segment import DecodedSegment

RATE = 48_000
BEEP_HZ = 1000.0
BLACK_Y, WHITE_Y, NEUTRAL_C = 16, 235, 128


@dataclass
class AvClip:
    """Frames (N, H, W) luma, limited range, and stereo audio (2, S) at 48 kHz from time 0."""

    luma: np.ndarray
    audio: np.ndarray
    fps: int
    offset_ms: float

    @property
    def video_times(self) -> np.ndarray:
        return np.arange(len(self.luma)) / self.fps

    def segment(self, start: float = 0.0, end: float | None = None) -> DecodedSegment:
        """The clip (or ``[start, end)`` of it) as the decoder would hand it to a detector."""
        times = self.video_times
        keep = (times >= start - 1e-9) & (times < (end if end is not None else math.inf) - 1e-9)
        a0 = int(round(start * RATE))
        a1 = self.audio.shape[-1] if end is None else int(round(end * RATE))
        return DecodedSegment(
            video_times=times[keep],
            luma=self.luma[keep],
            fps=float(self.fps),
            audio=self.audio[:, a0:a1],
            audio_start=a0 / RATE,
        )


def beep_flash(
    duration: float,
    offset_ms: float,
    fps: int = 25,
    width: int = 320,
    height: int = 180,
    period: float = 1.2,
    first: float = 0.6,
    seed: int = 0,
) -> AvClip:
    """The pattern: a flash on the frame nearest each ``first + k * period``, its beep offset."""
    rng = np.random.default_rng(seed)
    frames = int(math.ceil(duration * fps - 1e-9))
    luma = np.full((frames, height, width), BLACK_Y + 8, np.uint8)
    luma += rng.integers(0, 3, size=luma.shape, dtype=np.uint8)  # a little sensor noise
    audio = (rng.standard_normal(int(round(duration * RATE))) * 1e-3).astype(np.float32)
    box = (slice(height // 4, 3 * height // 4), slice(width // 4, 3 * width // 4))
    beep_len = int(round(RATE / fps))
    tone = 0.5 * np.sin(2 * np.pi * BEEP_HZ * np.arange(beep_len) / RATE).astype(np.float32)
    for k in range(int(duration / period) + 1):
        flash = int(round((first + k * period) * fps))
        if flash >= frames:
            break
        luma[flash][box] = WHITE_Y
        at = int(round((flash / fps + offset_ms / 1000.0) * RATE))
        lo, hi = max(at, 0), min(at + beep_len, audio.size)
        if hi > lo:
            audio[lo:hi] += tone[lo - at : hi - at]
    return AvClip(luma=luma, audio=np.stack([audio, audio]), fps=fps, offset_ms=offset_ms)


def write_av_clip(
    path: str | Path,
    frames: Sequence[np.ndarray] | np.ndarray,
    audio: np.ndarray,
    fps: int,
    settings: EncoderSettings | None = None,
) -> None:
    """Encode frames (luma (H, W) or RGB (H, W, 3), uint8) and stereo audio from time 0.

    Timestamps are exact: frame ``i`` at ``i / fps``, audio sample ``n`` at ``n / 48000``, so
    the offset in the file is the offset that was drawn.
    """
    height, width = frames[0].shape[:2]
    end = audio_grid(len(frames) / fps, RATE)
    enc = TsEncoder(str(path), width, height, fps, 2 * fps, (0, end), RATE, settings)
    try:
        for i, frame in enumerate(frames):
            enc.add_video(i, to_i420(frame))
        fed = -WARMUP_PACKETS * AAC_FRAME
        padded = np.zeros((2, end + AAC_FRAME - fed), np.float32)
        body = audio[:, : min(audio.shape[-1], end + AAC_FRAME)]
        padded[:, -fed : -fed + body.shape[-1]] = body
        enc.add_audio(fed, padded)
    finally:
        enc.close()


def to_i420(frame: np.ndarray) -> np.ndarray:
    """Luma gets neutral chroma; RGB is converted as the synthetic channel converts it."""
    if frame.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420)
    h, w = frame.shape
    return np.concatenate([frame, np.full((h // 2, w), NEUTRAL_C, np.uint8)])


def write_beep_flash(
    path: str | Path, duration: float, offset_ms: float, fps: int = 25, **options: Any
) -> dict[str, Any]:
    """Write the pattern as MPEG-TS and return its ground truth."""
    clip = beep_flash(duration, offset_ms, fps=fps, **options)
    write_av_clip(path, clip.luma, clip.audio, fps)
    return {"kind": "beep_flash", "duration": duration, "fps": fps, "offset_ms": offset_ms}
