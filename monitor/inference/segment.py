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

    Luma comes in views. ``luma_full`` keeps every picture whole (a face search needs it);
    ``luma_means`` are the block-mean factors (see :func:`block_means`) and ``luma_sparse``
    the steps of a row-and-column subsample (``picture[::s, ::s]``) a detector reads instead.
    The views are taken frame by frame at decode, so a worker whose detectors read only
    views never holds a segment's full-size luma: at 1080p that copy was a fifth of a scan's
    time and 120 MB a segment.
    """

    luma: bool = True
    luma_full: bool = True
    luma_means: tuple[int, ...] = ()
    luma_sparse: tuple[int, ...] = ()
    rgb: bool = False
    audio: bool = True
    luma_limit: tuple[int, int] = LUMA_LIMIT
    rgb_limit: tuple[int, int] = LUMA_LIMIT
    rgb_stride: int = 1
    captions: bool = False  # whether each frame carries caption data (A/53 CC side data)

    def __post_init__(self) -> None:
        if self.rgb_stride < 1:
            raise ValueError(f"rgb_stride must be at least 1, not {self.rgb_stride}")
        if any(f < 1 for f in (*self.luma_means, *self.luma_sparse)):
            raise ValueError("luma view factors must be at least 1")

    def mean_factors(self) -> tuple[int, ...]:
        """The block-mean factors to take from the pixels: a factor that is a multiple of
        another wanted one is derived from it later (see :meth:`DecodedSegment.luma_means`)."""
        return _finest_only(self.luma_means)

    def sparse_steps(self) -> tuple[int, ...]:
        """The subsample steps to take from the pixels, the same way."""
        return _finest_only(self.luma_sparse)


def _finest_only(factors: tuple[int, ...]) -> tuple[int, ...]:
    """The factors none of the others divides (the rest derive from those)."""
    wanted = sorted(set(factors))
    return tuple(f for f in wanted if not any(f % g == 0 for g in wanted if g < f))


def block_means(pictures: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block of (N, H, W) pictures, float32; frame by
    frame, so no float copy of the whole segment at full size is ever made. Rows and columns
    past the last whole block are left out; a picture smaller than the factor is averaged by
    what it has (at least one pixel a side)."""
    n, h, w = pictures.shape
    factor = max(1, min(factor, h, w))
    out = np.empty((n, h // factor, w // factor), np.float32)
    for i, frame in enumerate(pictures):
        out[i] = frame_means(frame, factor)
    return out


def frame_means(frame: np.ndarray, factor: int) -> np.ndarray:
    """:func:`block_means` of one (H, W) picture, ``factor`` already fitted to its size."""
    import cv2  # here, not at import: a process that only reads the config needs no OpenCV

    h2, w2 = frame.shape[0] // factor, frame.shape[1] // factor
    whole = frame[: h2 * factor, : w2 * factor]
    halvings = factor.bit_length() - 1
    if frame.dtype == np.uint8 and factor == 1 << halvings and halvings <= 4:
        return _halved(whole, halvings)
    # OpenCV's area resize by a whole factor is exactly the block mean, and about seven
    # times faster than NumPy's reshape and mean on a 1080p frame.
    return cv2.resize(whole.astype(np.float32), (w2, h2), interpolation=cv2.INTER_AREA)


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

    ``luma`` is empty (0, 0, 0) when the decode kept views only (``DecodeNeeds.luma_full``
    false): read luma through :meth:`luma_means` and :meth:`luma_sparse`, which serve the
    views taken at decode and derive the others from the pixels when those were kept.

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
    # Views taken at decode or since, by factor: freeze and stutter both read averaged luma,
    # and the second derives its pictures from the first's instead of reading every pixel.
    means: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    sparse: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    picture_size: tuple[int, int] = (0, 0)  # (height, width) of the luma the views came from

    def __post_init__(self) -> None:
        if self.luma.size and self.picture_size == (0, 0):
            self.picture_size = (self.luma.shape[1], self.luma.shape[2])

    def luma_means(self, factor: int) -> np.ndarray:
        """Luma averaged over ``factor`` x ``factor`` blocks (see :func:`block_means`),
        taken once per segment: from a finer set already taken when one divides ``factor``
        (the mean of equal blocks' means is the mean of their union), else from the pixels.
        Callers must not write into the array they get."""
        asked = factor
        factor = max(1, min(factor, *self.picture_size)) if min(self.picture_size) else 1
        if factor not in self.means:
            finer = [f for f in self.means if factor % f == 0]
            if finer:
                base = max(finer)
                self.means[factor] = block_means(self.means[base], factor // base)
            elif self.luma.size or not self.has_video:
                self.means[factor] = block_means(self.luma, factor)
            elif self.means and factor < asked:
                # A picture smaller than the blocks (a few pixels a side, no broadcast):
                # the nearest coarser view, for a verdict rather than a failure.
                base = min(self.means)
                self.means[factor] = block_means(self.means[base], max(1, factor // base))
            else:
                raise ValueError(f"luma means by {factor} were neither decoded nor derivable")
        return self.means[factor]

    def luma_sparse(self, step: int) -> np.ndarray:
        """Every ``step``-th row and column of the luma (``luma[:, ::step, ::step]``):
        decoded as such, from a finer subsample whose step divides it, or from the pixels."""
        if step not in self.sparse:
            finer = [s for s in self.sparse if step % s == 0]
            if finer:
                base = max(finer)
                k = step // base
                self.sparse[step] = self.sparse[base][:, ::k, ::k]
            elif self.luma.size or not self.has_video:
                self.sparse[step] = self.luma[:, ::step, ::step]
            else:
                raise ValueError(f"luma every {step} pixels was neither decoded nor derivable")
        return self.sparse[step]

    def preview(self) -> np.ndarray:
        """The luma pictures at the finest size this segment holds: the pixels, or the finest
        view (a thumbnail of a worker that keeps views only; block means are float32, and
        the caller converts only the frame it shows)."""
        if self.luma.size or not (self.means or self.sparse):
            return self.luma
        views = list(self.means.items()) + list(self.sparse.items())
        return min(views, key=lambda v: v[0])[1]

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
