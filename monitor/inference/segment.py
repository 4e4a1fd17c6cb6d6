"""A decoded segment: what every detector reads, and what a worker must decode for them.

Kept apart from the decoder (:mod:`monitor.inference.media`, which needs PyAV) so detector
plugins can name these types without loading PyAV: a process that only validates the config
imports the plugins, never the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AUDIO_RATE = 48_000


# The largest luma picture a detector reads: freeze and black judge a 4K picture no better at
# full size, and 60 UHD frames a second would take 500 MB per second of video to hold.
LUMA_LIMIT = (1920, 1080)


@dataclass(frozen=True)
class DecodeNeeds:
    """What the detectors of a worker need, so nothing unused is converted.

    ``luma_limit`` and ``rgb_limit`` are the largest luma and RGB pictures (width, height)
    they read: bigger frames are downscaled (area averaging, aspect kept) at decode, so a
    1080p channel never keeps a full-size RGB copy of every frame. ``rgb_stride`` N converts
    only every Nth frame of a segment to RGB (frames 0, N, 2N, ...): a detector that judges
    every 5th frame should not pay for, nor hold, the colour of the other four.
    """

    luma: bool = True
    rgb: bool = False
    audio: bool = True
    luma_limit: tuple[int, int] = LUMA_LIMIT
    rgb_limit: tuple[int, int] = LUMA_LIMIT
    rgb_stride: int = 1
    captions: bool = False  # whether each frame carries caption data (A/53 CC side data)

    def __post_init__(self) -> None:
        if self.rgb_stride < 1:
            raise ValueError(f"rgb_stride must be at least 1, not {self.rgb_stride}")


def block_means(pictures: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block of (N, H, W) pictures, float32; frame by
    frame, so no float copy of the whole segment at full size is ever made. Rows and columns
    past the last whole block are left out; a picture smaller than the factor is averaged by
    what it has (at least one pixel a side)."""
    import cv2  # here, not at import: a process that only reads the config needs no OpenCV

    n, h, w = pictures.shape
    factor = max(1, min(factor, h, w))
    h2, w2 = h // factor, w // factor
    out = np.empty((n, h2, w2), np.float32)
    halvings = factor.bit_length() - 1
    exact16 = pictures.dtype == np.uint8 and factor == 1 << halvings and halvings <= 4
    for i, frame in enumerate(pictures):
        whole = frame[: h2 * factor, : w2 * factor]
        if exact16:
            out[i] = _halved(whole, halvings)
        else:
            # OpenCV's area resize by a whole factor is exactly the block mean, and about
            # seven times faster than NumPy's reshape and mean on a 1080p frame.
            small = cv2.resize(whole.astype(np.float32), (w2, h2), interpolation=cv2.INTER_AREA)
            out[i] = small
    return out


def _halved(frame: np.ndarray, times: int) -> np.ndarray:
    """Block means of a uint8 picture over 2**times pixels a side, exactly: OpenCV halves
    16-bit pictures with integer SIMD (three times faster than a float resize at 1080p), and
    with two spare bits per halving, the sum of four is divisible by four every time."""
    import cv2

    picture = np.left_shift(frame, 2 * times, dtype=np.uint16)
    for _ in range(times):
        h, w = picture.shape
        picture = cv2.resize(picture, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return picture.astype(np.float32) * np.float32(1.0 / (1 << 2 * times))


@dataclass
class DecodedSegment:
    """Frames and audio of one segment, with timestamps.

    ``luma`` is (N, H, W) uint8, the Y plane as coded; ``full_range`` says whether black is
    0 (full/JPEG range) or 16 (limited/TV range). ``audio`` is (channels, samples) float32
    in [-1, 1] at ``audio_rate``, first sample at ``audio_start``. ``captions`` says, per
    frame, whether it carried CEA-608/708 caption data (only when a detector asked).

    ``rgb`` (M, H, W, 3) holds the colour pictures of the frames ``rgb_index`` (ascending
    places in ``video_times``): every ``rgb_stride``-th frame, as the decode was asked.
    Read them through :meth:`rgb_every`.
    """

    video_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    luma: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.uint8))
    rgb: np.ndarray | None = None
    rgb_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))
    rgb_stride: int = 1
    full_range: bool = False
    fps: float = 25.0
    audio: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), np.float32))
    audio_rate: int = AUDIO_RATE
    audio_start: float = 0.0
    captions: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    # Block means already taken, by factor: freeze and stutter both read averaged luma, and
    # the second derives its pictures from the first's instead of reading every pixel again.
    _means: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def luma_means(self, factor: int) -> np.ndarray:
        """``luma`` averaged over ``factor`` x ``factor`` blocks (see :func:`block_means`),
        taken once per segment: from a finer set already taken when one divides ``factor``
        (the mean of equal blocks' means is the mean of their union), else from the pixels.
        Callers must not write into the array they get."""
        factor = max(1, min(factor, *self.luma.shape[1:])) if self.luma.size else 1
        if factor not in self._means:
            finer = [f for f in self._means if factor % f == 0]
            if finer:
                base = max(finer)
                self._means[factor] = block_means(self._means[base], factor // base)
            else:
                self._means[factor] = block_means(self.luma, factor)
        return self._means[factor]

    def rgb_every(self, stride: int) -> tuple[np.ndarray, np.ndarray]:
        """(frame places, RGB pictures) of every ``stride``-th frame: frames 0, stride,
        2 * stride, ... of the segment. ``stride`` must be a multiple of the decode's
        ``rgb_stride``; a segment decoded without RGB has none (empty places, no pictures)."""
        if self.rgb is None:
            return np.zeros(0, np.intp), np.zeros((0, 0, 0, 3), np.uint8)
        if stride % self.rgb_stride:
            raise ValueError(f"RGB decoded every {self.rgb_stride} frames, not every {stride}")
        # Counted among the pictures kept rather than by place: on a stream whose timestamps
        # step back mid-segment the kept frames sit off the grid, and still cover it evenly.
        rows = np.arange(0, len(self.rgb), stride // self.rgb_stride)
        return self.rgb_index[rows], self.rgb[rows]

    @property
    def start(self) -> float:
        starts = [t for t in (self._video_start(), self._audio_span()[0]) if t is not None]
        return min(starts) if starts else 0.0

    @property
    def end(self) -> float:
        ends = [t for t in (self._video_end(), self._audio_span()[1]) if t is not None]
        return max(ends) if ends else 0.0

    @property
    def frame_duration(self) -> float:
        return 1.0 / self.fps if self.fps > 0 else 0.04

    def _video_start(self) -> float | None:
        return float(self.video_times[0]) if len(self.video_times) else None

    def _video_end(self) -> float | None:
        if not len(self.video_times):
            return None
        return float(self.video_times[-1]) + self.frame_duration

    def _audio_span(self) -> tuple[float | None, float | None]:
        n = self.audio.shape[-1]
        if n == 0:
            return None, None
        return self.audio_start, self.audio_start + n / self.audio_rate

    @property
    def video_span(self) -> tuple[float, float]:
        start, end = self._video_start(), self._video_end()
        return (start, end) if start is not None and end is not None else (0.0, 0.0)

    @property
    def audio_span(self) -> tuple[float, float]:
        start, end = self._audio_span()
        return (start, end) if start is not None and end is not None else (0.0, 0.0)

    @property
    def has_video(self) -> bool:
        return len(self.video_times) > 0

    @property
    def has_audio(self) -> bool:
        return self.audio.shape[-1] > 0
