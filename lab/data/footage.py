"""Pictures from real footage for the damage simulator: a window of a catalogued clip, scaled
and cropped to the simulator's picture size.

A clip recipe names a catalogued file, a start time and a scale; :func:`frames` decodes
``count`` pictures from there at the source's own rate, scales them (1.0 keeps the source's
pixels, as a 720p or 1080p channel reaches the detector; less shows more of the scene in the
same crop), crops a window and returns I420 pictures ready for the encoder, so real texture,
grain and motion go through the same encode -> damage -> conceal path as synthetic scenes::

    pictures = frames(Path("bbb.mp4"), start=31.0, count=48, scale=0.5, size=(192, 320), seed=4)

Colour conversion is FFmpeg's (swscale, BT.601 limited range) both ways, as in decoding.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def frames(
    path: Path, start: float, count: int, scale: float, size: tuple[int, int], seed: int
) -> list[np.ndarray]:
    """``count`` I420 pictures of ``size`` (height, width) from ``path`` at ``start`` seconds;
    a clip shorter than that plays on from its start again (short test clips)."""
    pictures: list[np.ndarray] = []
    rng = np.random.default_rng([seed, 0xF00])
    window: tuple[int, int] | None = None
    for attempt in range(3):
        for rgb in _decode(path, start if attempt == 0 else 0.0, count - len(pictures), scale):
            if window is None:
                window = _window(rgb.shape[:2], size, rng)
            pictures.append(_i420(_crop(rgb, window, size)))
        if len(pictures) >= count:
            break
    if not pictures:
        raise ValueError(f"{path}: no pictures decoded")
    while len(pictures) < count:
        pictures.append(pictures[-1].copy())
    return pictures[:count]


def _decode(path: Path, start: float, count: int, scale: float):  # type: ignore[no-untyped-def]
    """Up to ``count`` RGB pictures from ``start``, scaled by ``scale``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0 and stream.time_base is not None:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        got = 0
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else 0.0
            if t + 1e-3 < start:
                continue
            w = max(16, int(round(frame.width * scale / 2)) * 2)
            h = max(16, int(round(frame.height * scale / 2)) * 2)
            yield frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
            got += 1
            if got >= count:
                return


def _window(shape: tuple[int, ...], size: tuple[int, int], rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """A random crop origin; a picture smaller than ``size`` is padded by edge replication."""
    top = int(rng.integers(0, max(shape[0] - size[0], 0) + 1))
    left = int(rng.integers(0, max(shape[1] - size[1], 0) + 1))
    return top, left


def _crop(rgb: np.ndarray, window: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    top, left = window
    out = rgb[top : top + size[0], left : left + size[1]]
    if out.shape[:2] != size:
        pad = ((0, size[0] - out.shape[0]), (0, size[1] - out.shape[1]), (0, 0))
        out = np.pad(out, pad, mode="edge")
    return np.ascontiguousarray(out)


def _i420(rgb: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
