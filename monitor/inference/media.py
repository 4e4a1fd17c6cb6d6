"""Decoding a segment once, with PyAV, into what every detector reads.

Times are seconds on the stream's own PTS timeline, so a detection means the same instant
whichever worker decoded it and whichever segment boundary it fell on.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import av
import cv2
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from monitor.core.errors import VqmError
from monitor.inference.segment import AUDIO_RATE, DecodedSegment, DecodeNeeds

logger = logging.getLogger(__name__)

NETWORK_PROTOCOLS = "http,https,tcp,tls,crypto"
_A53_CC = SideDataType.A53_CC

# Demuxers and codecs FFmpeg uses to render text or single pictures as "video": a monitor
# given a text file must say it is not media, not report a 25 fps ANSI-art stream.
_NOT_BROADCAST_FORMATS = frozenset({"tty", "txt", "bin", "idf", "xbin", "adf", "image2"})
_NOT_BROADCAST_CODECS = frozenset({"ansi", "text", "bintext", "xbin", "idf"})


class DecodeError(VqmError, ValueError):
    """The bytes are not decodable media; the message says why in one line."""


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
    the source is not media, so a recording of any length is scanned in bounded memory. A
    URL is read over the network protocols only: whatever it serves (a playlist, a redirect)
    cannot make FFmpeg open a local file.
    """
    options = (
        {"protocol_whitelist": NETWORK_PROTOCOLS}
        if isinstance(source, str) and "://" in source
        else {}
    )
    try:
        container = av.open(source, mode="r", timeout=10.0, options=options)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DecodeError(f"not decodable media: {_one_line(exc)}") from exc
    try:
        yield from _decode_container(container, needs, chunk_seconds)
    except av.FFmpegError as exc:
        raise DecodeError(f"decoding failed: {_one_line(exc)}") from exc
    finally:
        container.close()


def probe_duration(path: str) -> float | None:
    """The duration a local file's container declares, seconds; None when it declares none
    or cannot be opened (the scan that follows reports why)."""
    try:
        with av.open(path, mode="r") as container:
            return None if container.duration is None else container.duration / av.time_base
    except (av.FFmpegError, OSError, ValueError):
        return None


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class _Chunk:
    """Frames gathered for one chunk; audio timing is carried across chunks by sample count."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.planes: list[np.ndarray] = []
        self.rgbs: list[np.ndarray] = []
        self.audio: list[np.ndarray] = []
        self.captions: list[bool] = []

    def empty(self) -> bool:
        return not self.times and not self.audio


class _Timeline:
    """Where chunks end: every ``every`` seconds from the first frame, counted on the clock
    stream (video; audio when there is none). ``None``: never, one chunk holds everything."""

    def __init__(self, every: float | None) -> None:
        self.every = every
        self.boundary: float | None = None

    def start(self, t: float) -> None:
        if self.boundary is None and self.every is not None:
            self.boundary = t + self.every

    def crossed(self, t: float) -> bool:
        """Whether ``t`` reached the boundary; if so the boundary moves on past ``t``."""
        if self.boundary is None or self.every is None or t < self.boundary:
            return False
        while t >= self.boundary:
            self.boundary += self.every
        return True


class _Gatherer:
    """Turns decoded frames into what the detectors read, one chunk at a time."""

    def __init__(self, needs: DecodeNeeds, fps: float) -> None:
        self.needs = needs
        self.fps = fps
        self.chunk = _Chunk()
        self.full_range = False
        self.audio_origin: float | None = None  # PTS of the first audio frame
        self.samples_out = 0  # resampled audio samples in the chunks already cut
        self.produced = 0
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)

    def add(self, frame: av.VideoFrame | av.AudioFrame, t: float) -> None:
        if isinstance(frame, av.VideoFrame):
            self.chunk.times.append(t)
            self.full_range = self.full_range or _is_full_range(frame)
            if self.needs.luma:
                self.chunk.planes.append(_fit(_luma(frame), self.needs.luma_limit))
            if self.needs.rgb:
                self.chunk.rgbs.append(frame.to_ndarray(format="rgb24"))
            if self.needs.captions:
                self.chunk.captions.append(_has_captions(frame))
        elif self.needs.audio:
            if self.audio_origin is None:
                self.audio_origin = t
            self.chunk.audio.extend(out.to_ndarray() for out in self._resampler.resample(frame))

    def cut(self) -> DecodedSegment:
        """The chunk so far as a segment; the next chunk starts empty."""
        segment = _assemble(
            self.chunk, self.full_range, self.fps, self.audio_origin, self.samples_out
        )
        self.produced += 1
        self.samples_out += sum(a.shape[-1] for a in self.chunk.audio)
        self.chunk = _Chunk()
        return segment

    def finish(self) -> Iterator[DecodedSegment]:
        """The last chunk, with the resampler's tail; an input that gave nothing is an error."""
        if self.needs.audio and self.audio_origin is not None:
            self.chunk.audio.extend(out.to_ndarray() for out in self._resampler.resample(None))
        if not self.chunk.empty():
            yield self.cut()
        elif self.produced == 0:
            raise DecodeError("no decodable frames")


def _decode_container(
    container: av.container.InputContainer, needs: DecodeNeeds, chunk_seconds: float | None
) -> Iterator[DecodedSegment]:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise DecodeError("no audio or video stream")
    _refuse_non_media(container, video)
    fps = float(video.average_rate) if video is not None and video.average_rate else 25.0
    gatherer = _Gatherer(needs, fps)
    timeline = _Timeline(chunk_seconds)
    for frame in _frames(container, [s for s in (video, audio) if s is not None]):
        if frame.time is None:
            continue
        t = float(frame.time)
        timeline.start(t)
        is_clock = isinstance(frame, av.VideoFrame) or video is None
        if is_clock and not gatherer.chunk.empty() and timeline.crossed(t):
            yield gatherer.cut()
        gatherer.add(frame, t)
    yield from gatherer.finish()


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
    packets = container.demux(*streams)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except IndexError:
            # A packet of a stream that appeared after the header (a damaged or changed PMT):
            # PyAV cannot hand it out, and its demuxer cannot go on. Keep what was decoded.
            logger.debug("a stream appeared mid-segment; decoded up to it")
            return
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
        captions=np.asarray(chunk.captions, dtype=bool)[order]
        if chunk.captions
        else np.zeros(0, bool),
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


def _fit(plane: np.ndarray, limit: tuple[int, int]) -> np.ndarray:
    """``plane`` downscaled (area averaging, aspect kept) to fit ``limit``, if bigger. Luma
    codes keep their range: black stays 16 (or 0) whatever the size."""
    height, width = plane.shape
    scale = min(limit[0] / width, limit[1] / height)
    if scale >= 1.0:
        return plane
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(plane, size, interpolation=cv2.INTER_AREA)


def _has_captions(frame: av.VideoFrame) -> bool:
    """Whether the frame carried A/53 caption data (CEA-608/708 in the video's user data)."""
    return any(getattr(data, "type", None) == _A53_CC for data in frame.side_data)


def _is_full_range(frame: av.VideoFrame) -> bool:
    if frame.format.name.startswith("yuvj"):
        return True
    color_range = getattr(frame, "color_range", 0)
    return int(color_range) == 2  # AVCOL_RANGE_JPEG
