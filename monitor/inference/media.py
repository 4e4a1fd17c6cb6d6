"""Decoding a segment once, with PyAV, into what every detector reads.

Times are seconds on the stream's own PTS timeline, so a detection means the same instant
whichever worker decoded it and whichever segment boundary it fell on.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

logger = logging.getLogger(__name__)

AUDIO_RATE = 48_000
# Demuxers and codecs FFmpeg uses to render text or single pictures as "video": a monitor
# given a text file must say it is not media, not report a 25 fps ANSI-art stream.
_NOT_BROADCAST_FORMATS = frozenset({"tty", "txt", "bin", "idf", "xbin", "adf", "image2"})
_NOT_BROADCAST_CODECS = frozenset({"ansi", "text", "bintext", "xbin", "idf"})


class DecodeError(ValueError):
    """The bytes are not decodable media; the message says why in one line."""


@dataclass(frozen=True)
class DecodeNeeds:
    """What the detectors of a worker need, so nothing unused is converted."""

    luma: bool = True
    rgb: bool = False
    audio: bool = True


@dataclass
class DecodedSegment:
    """Frames and audio of one segment, with timestamps.

    ``luma`` is (N, H, W) uint8, the Y plane as coded; ``full_range`` says whether black is
    0 (full/JPEG range) or 16 (limited/TV range). ``audio`` is (channels, samples) float32
    in [-1, 1] at ``audio_rate``, first sample at ``audio_start``.
    """

    video_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    luma: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.uint8))
    rgb: np.ndarray | None = None
    full_range: bool = False
    fps: float = 25.0
    audio: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), np.float32))
    audio_rate: int = AUDIO_RATE
    audio_start: float = 0.0

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


def decode_bytes(data: bytes, needs: DecodeNeeds = DecodeNeeds()) -> DecodedSegment:
    """Decode one segment held in memory, whole."""
    if not data:
        raise DecodeError("empty segment")
    chunks = list(iter_decoded(io.BytesIO(data), needs, chunk_seconds=None))
    return chunks[0]


def iter_decoded(
    source: str | io.BytesIO,
    needs: DecodeNeeds = DecodeNeeds(),
    chunk_seconds: float | None = 2.0,
) -> Iterator[DecodedSegment]:
    """Decode a file, URL or buffer in chunks of about ``chunk_seconds`` of video.

    ``None`` gives one chunk with everything (a segment). Raises :class:`DecodeError` when
    the source is not media, so a recording of any length is scanned in bounded memory.
    """
    try:
        container = av.open(source, mode="r", timeout=10.0)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DecodeError(f"not decodable media: {_one_line(exc)}") from exc
    try:
        yield from _decode_container(container, needs, chunk_seconds)
    except av.FFmpegError as exc:
        raise DecodeError(f"decoding failed: {_one_line(exc)}") from exc
    finally:
        container.close()


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class _Chunk:
    """Frames gathered for one chunk; audio timing is carried across chunks by sample count."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.planes: list[np.ndarray] = []
        self.rgbs: list[np.ndarray] = []
        self.audio: list[np.ndarray] = []

    def empty(self) -> bool:
        return not self.times and not self.audio


def _decode_container(
    container: av.container.InputContainer, needs: DecodeNeeds, chunk_seconds: float | None
) -> Iterator[DecodedSegment]:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise DecodeError("no audio or video stream")
    _refuse_non_media(container, video)
    fps = float(video.average_rate) if video is not None and video.average_rate else 25.0
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    audio_origin: float | None = None
    samples_out = 0
    full_range = False
    chunk, boundary, produced = _Chunk(), None, 0
    streams = [s for s in (video, audio) if s is not None]
    for frame in _frames(container, streams):
        t = frame.time
        if t is None:
            continue
        if boundary is None and chunk_seconds is not None:
            boundary = float(t) + chunk_seconds
        is_clock = isinstance(frame, av.VideoFrame) or video is None
        if boundary is not None and is_clock and float(t) >= boundary and not chunk.empty():
            yield _assemble(chunk, full_range, fps, audio_origin, samples_out)
            produced += 1
            samples_out += sum(a.shape[-1] for a in chunk.audio)
            chunk = _Chunk()
            boundary += chunk_seconds  # type: ignore[operator]
            while float(t) >= boundary:
                boundary += chunk_seconds  # type: ignore[operator]
        if isinstance(frame, av.VideoFrame):
            chunk.times.append(float(t))
            full_range = full_range or _is_full_range(frame)
            if needs.luma:
                chunk.planes.append(_luma(frame))
            if needs.rgb:
                chunk.rgbs.append(frame.to_ndarray(format="rgb24"))
        elif needs.audio:
            if audio_origin is None:
                audio_origin = float(t)
            chunk.audio.extend(out.to_ndarray() for out in resampler.resample(frame))
    if needs.audio and audio is not None and audio_origin is not None:
        chunk.audio.extend(out.to_ndarray() for out in resampler.resample(None))
    if not chunk.empty():
        yield _assemble(chunk, full_range, fps, audio_origin, samples_out)
    elif produced == 0:
        raise DecodeError("no decodable frames")


def _refuse_non_media(
    container: av.container.InputContainer, video: av.video.stream.VideoStream | None
) -> None:
    names = set(container.format.name.split(","))
    codec = video.codec_context.name if video is not None else ""
    if names & _NOT_BROADCAST_FORMATS or codec in _NOT_BROADCAST_CODECS:
        raise DecodeError(f"not audio/video media (FFmpeg reads it as {container.format.name})")


def _frames(
    container: av.container.InputContainer, streams: list[Any]
) -> Iterator[av.VideoFrame | av.AudioFrame]:
    for packet in container.demux(*streams):
        try:
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame | av.AudioFrame):
                    yield frame
        except av.InvalidDataError as exc:
            # Damaged packets are what a monitor exists to see: keep the rest of the segment.
            logger.debug("skipping undecodable packet: %s", exc)


def _assemble(
    chunk: _Chunk, full_range: bool, fps: float, audio_origin: float | None, samples_before: int
) -> DecodedSegment:
    order = np.argsort(chunk.times, kind="stable")
    planes, rgbs = chunk.planes, chunk.rgbs
    luma = np.stack([planes[i] for i in order]) if planes else np.zeros((0, 0, 0), np.uint8)
    rgb = np.stack([rgbs[i] for i in order]) if rgbs else None
    audio = (
        np.concatenate(chunk.audio, axis=1).astype(np.float32)
        if chunk.audio
        else np.zeros((2, 0), np.float32)
    )
    audio_start = (audio_origin or 0.0) + samples_before / AUDIO_RATE
    return DecodedSegment(
        video_times=np.asarray(chunk.times, dtype=np.float64)[order],
        luma=luma,
        rgb=rgb,
        full_range=full_range,
        fps=fps,
        audio=audio,
        audio_start=audio_start,
    )


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane without stride padding; converts only when the frame is not planar YUV."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12"):
        plane = frame.planes[0]
        buf = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(
            plane.height, plane.line_size
        )
        return buf[:, : frame.width].copy()
    return frame.to_ndarray(format="gray")


def _is_full_range(frame: av.VideoFrame) -> bool:
    if frame.format.name.startswith("yuvj"):
        return True
    color_range = getattr(frame, "color_range", 0)
    return int(color_range) == 2  # AVCOL_RANGE_JPEG
