"""Decoding a segment once, with PyAV, into what every detector reads.

Times are seconds on the stream's own PTS timeline, so a detection means the same instant
whichever worker decoded it and whichever segment boundary it fell on.
"""

from __future__ import annotations

import dataclasses
import heapq
import io
import logging
import math
from collections.abc import Iterator
from typing import Any

import av
import cv2
import numpy as np
from av.sidedata.sidedata import SideDataContainer
from av.sidedata.sidedata import Type as SideDataType

from monitor.core.errors import VqmError
from monitor.inference.segment import AUDIO_RATE, DecodedSegment, DecodeNeeds, frame_means

logger = logging.getLogger(__name__)

NETWORK_PROTOCOLS = "http,https,tcp,tls,crypto"
_A53_CC = SideDataType.A53_CC

# Each OpenCV call on the thread that makes it: a worker's parallelism is its channels, and
# on the small per-frame resizes of decode and detection OpenCV's own pool spent about as
# much CPU handing work out and waiting as doing it (a 720p frame's block means take 0.64 ms
# of CPU on two threads, 0.33 ms on one: benchmarks/opencv_threads.py).
cv2.setNumThreads(1)

# Demuxers and codecs FFmpeg uses to render text or single pictures as "video": a monitor
# given a text file must say it is not media, not report a 25 fps ANSI-art stream.
_NOT_BROADCAST_FORMATS = frozenset({"tty", "txt", "bin", "idf", "xbin", "adf", "image2"})
_NOT_BROADCAST_CODECS = frozenset({"ansi", "text", "bintext", "xbin", "idf"})


class DecodeError(VqmError, ValueError):
    """The bytes are not decodable media; the message says why in one line."""


def decode_bytes(
    data: bytes, needs: DecodeNeeds = DecodeNeeds(), audio: bytes = b""
) -> DecodedSegment:
    """Decode one segment held in memory, whole; its sound from ``audio`` (a container of
    its own: a separate fMP4 audio rendition's init section and fragments) when given."""
    if not data:
        raise DecodeError("empty segment")
    if audio and needs.audio:
        chunks = list(_decode_beside(io.BytesIO(data), io.BytesIO(audio), needs))
    else:
        chunks = list(iter_decoded(io.BytesIO(data), needs, chunk_seconds=None))
    return chunks[0] if len(chunks) == 1 else _join(chunks)


def _decode_beside(
    pictures: io.BytesIO, sound: io.BytesIO, needs: DecodeNeeds
) -> Iterator[DecodedSegment]:
    """The pictures of one container with the sound of another, merged in time order (both
    on the one encoder clock). Sound that does not decode is said and left out: the
    pictures are still worth checking."""
    try:
        video_box = av.open(pictures, mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DecodeError(f"not decodable media: {_one_line(exc)}") from exc
    try:
        audio_box = av.open(sound, mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        logger.warning("separate audio not decodable (%s); the pictures alone", _one_line(exc))
        audio_box = None
    try:
        video = video_box.streams.video[0] if video_box.streams.video else None
        if video is None:
            raise DecodeError("no video stream beside the separate audio")
        _refuse_non_media(video_box, video)
        audio = audio_box.streams.audio[0] if audio_box and audio_box.streams.audio else None
        span = _packet_span(video_box, video)
        pictures.seek(0)
        video_box.close()
        video_box = av.open(pictures, mode="r")
        video = video_box.streams.video[0]
        frames: Iterator[av.VideoFrame | av.AudioFrame] = _frames(video_box, [video])
        if audio_box is not None and audio is not None:
            heard = _within(_frames(audio_box, [audio]), span)
            frames = heapq.merge(frames, heard, key=_frame_time)
        yield from _gather(frames, video, needs, None)
    except av.FFmpegError as exc:
        raise DecodeError(f"decoding failed: {_one_line(exc)}") from exc
    finally:
        video_box.close()
        if audio_box is not None:
            audio_box.close()


def _join(chunks: list[DecodedSegment]) -> DecodedSegment:
    """One segment of chunks cut where the picture changed size, every picture scaled to the
    first chunk's size: a live segment is judged whole, whatever its encoder switched to."""
    first = chunks[0]

    def scaled(pictures: list[np.ndarray | None]) -> np.ndarray | None:
        present = [p for p in pictures if p is not None and len(p)]
        if not present:
            return pictures[0]
        height, width = present[0].shape[1:3]
        return np.concatenate(
            [np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in p])
             if p.shape[1:3] != (height, width) else p for p in present]
        )  # fmt: skip

    luma = scaled([c.luma for c in chunks])
    offsets = np.cumsum([0] + [len(c.video_times) for c in chunks[:-1]])

    def views(of: str) -> dict[int, np.ndarray]:
        # Those every chunk with pictures holds (a factor is fitted to tiny pictures, so
        # one chunk's may differ from another's): a view must cover all the frames.
        held = [set(getattr(c, of)) for c in chunks if c.has_video]
        keys = set.intersection(*held) if held else set()
        joined = {key: scaled([getattr(c, of).get(key) for c in chunks]) for key in keys}
        return {key: array for key, array in joined.items() if array is not None}

    return dataclasses.replace(
        first,
        video_times=np.concatenate([c.video_times for c in chunks]),
        luma=first.luma if luma is None else luma,
        means=views("means"),
        sparse=views("sparse"),
        picture_size=next((c.picture_size for c in chunks if min(c.picture_size)), (0, 0)),
        rgb=scaled([c.rgb for c in chunks]),
        rgb_index=np.concatenate([c.rgb_index + o for c, o in zip(chunks, offsets, strict=True)]),
        full_range=any(c.full_range for c in chunks),
        audio=np.concatenate([c.audio for c in chunks], axis=1),
        captions=np.concatenate([c.captions for c in chunks]),
    )


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


class _Pictures:
    """Pictures of one size, copied once into one growing array: stacking a list of frames
    at the end copied every picture a second time (a fifth of a 1080p scan's time)."""

    def __init__(self, expected: int) -> None:
        self._expected = max(1, expected)
        self._array: np.ndarray | None = None
        self.count = 0

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self._array is None else self._array.shape[1:]

    def append(self, picture: np.ndarray) -> None:
        if self._array is None:
            self._array = np.empty((self._expected, *picture.shape), picture.dtype)
        elif self.count == len(self._array):
            grown = np.empty((len(self._array) * 3 // 2 + 1, *self._array.shape[1:]), picture.dtype)
            grown[: self.count] = self._array
            self._array = grown
        self._array[self.count] = picture
        self.count += 1

    def ordered(self, order: np.ndarray) -> np.ndarray | None:
        """The pictures in ``order``; without a copy when they came in order and fill most
        of the array (a view keeps the whole array alive)."""
        if self._array is None:
            return None
        if np.array_equal(order, np.arange(self.count)) and self.count * 4 >= len(self._array) * 3:
            return self._array[: self.count]
        return self._array[order]


class _Chunk:
    """Frames gathered for one chunk; audio timing is carried across chunks by sample count."""

    def __init__(self, expected_frames: int, rgb_stride: int) -> None:
        self.times: list[float] = []
        self.planes = _Pictures(expected_frames)
        self.means: dict[int, _Pictures] = {}  # luma views taken at decode, by factor
        self.sparse: dict[int, _Pictures] = {}
        self.luma_size: tuple[int, int] | None = None  # of every fitted luma picture
        self.rgb_stride = rgb_stride
        self.rgbs = _Pictures(expected_frames // rgb_stride + 1)
        self.rgb_places: list[int] = []  # where each RGB picture's frame came in the chunk
        self.rgb_shape: tuple[int, ...] | None = None  # of every frame, kept or not
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


def _pictures(views: dict[int, _Pictures], key: int, expected: int) -> _Pictures:
    """The view's pictures, created on its first frame only."""
    pictures = views.get(key)
    if pictures is None:
        pictures = views[key] = _Pictures(expected)
    return pictures


class _Gatherer:
    """Turns decoded frames into what the detectors read, one chunk at a time."""

    def __init__(self, needs: DecodeNeeds, fps: float, chunk_seconds: float | None) -> None:
        self.needs = needs
        self.fps = fps
        # Worked out once, not per frame: the views each luma picture is reduced to.
        self._mean_factors = needs.mean_factors()
        self._sparse_steps = needs.sparse_steps()
        # Frames a chunk holds (the array grows past it when a segment is longer).
        self._expected = round(fps * (chunk_seconds or 2.0)) + 2
        self.chunk = self._new_chunk()
        # Frames of the segment so far, which the RGB stride counts: one chunk is one segment,
        # except that without ``chunk_seconds`` the chunks are joined into one (see _join).
        self._restart_count = chunk_seconds is not None
        self.frames = 0
        self.full_range = False
        self.audio_origin: float | None = None  # PTS of the first audio frame
        self.samples_out = 0  # resampled audio samples in the chunks already cut
        self.produced = 0
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)

    def resized(self, frame: av.VideoFrame | av.AudioFrame) -> bool:
        """Whether a video frame's picture differs in size from the chunk's so far."""
        if not isinstance(frame, av.VideoFrame):
            return False
        luma, rgb = self.chunk.luma_size, self.chunk.rgb_shape
        fitted = _fitted_shape(frame.height, frame.width, self.needs.luma_limit)
        fitted_rgb = _fitted_shape(frame.height, frame.width, self.needs.rgb_limit)
        return (luma is not None and luma != fitted) or (
            rgb is not None and rgb != (*fitted_rgb, 3)
        )

    def add(self, frame: av.VideoFrame | av.AudioFrame, t: float) -> None:
        if isinstance(frame, av.VideoFrame):
            self.chunk.times.append(t)
            self.full_range = self.full_range or _is_full_range(frame)
            if self.needs.luma:
                self._add_luma(_fit(_luma(frame), self.needs.luma_limit))
            if self.needs.rgb:
                self._add_rgb(frame)
            if self.needs.captions:
                self.chunk.captions.append(_has_captions(frame))
        elif self.needs.audio:
            if self.audio_origin is None:
                self.audio_origin = t
            self.chunk.audio.extend(out.to_ndarray() for out in self._resampler.resample(frame))

    def _add_luma(self, plane: np.ndarray) -> None:
        """Keeps the picture whole, or only the views the detectors read (taken from the
        frame's own buffer, so the full-size picture is never copied)."""
        chunk = self.chunk
        chunk.luma_size = (plane.shape[0], plane.shape[1])
        if self.needs.luma_full:
            chunk.planes.append(plane)
            return
        for factor in self._mean_factors:
            fitted = max(1, min(factor, *plane.shape))  # the key luma_means looks up
            _pictures(chunk.means, fitted, self._expected).append(frame_means(plane, fitted))
        for step in self._sparse_steps:
            _pictures(chunk.sparse, step, self._expected).append(plane[::step, ::step])

    def _add_rgb(self, frame: av.VideoFrame) -> None:
        """Converts the frame to RGB when the stride picks it (the most costly step of a
        decode that needs colour: only the frames a detector reads pay for it)."""
        self.chunk.rgb_shape = (*_fitted_shape(frame.height, frame.width, self.needs.rgb_limit), 3)
        if self.frames % self.needs.rgb_stride == 0:
            self.chunk.rgb_places.append(len(self.chunk.times) - 1)
            self.chunk.rgbs.append(_rgb(frame, self.needs.rgb_limit))
        self.frames += 1

    def _new_chunk(self) -> _Chunk:
        return _Chunk(self._expected, self.needs.rgb_stride if self.needs.rgb else 1)

    def cut(self) -> DecodedSegment:
        """The chunk so far as a segment; the next chunk starts empty."""
        segment = _assemble(
            self.chunk, self.full_range, self.fps, self.audio_origin, self.samples_out
        )
        self.produced += 1
        self.samples_out += sum(a.shape[-1] for a in self.chunk.audio)
        self.chunk = self._new_chunk()
        if self._restart_count:
            self.frames = 0
        return segment

    def finish(self) -> Iterator[DecodedSegment]:
        """The last chunk, with the resampler's tail; an input that gave nothing is an error."""
        if self.needs.audio and self.audio_origin is not None:
            self.chunk.audio.extend(out.to_ndarray() for out in self._resampler.resample(None))
        if not self.chunk.empty():
            yield self.cut()
        elif self.produced == 0:
            raise DecodeError("no decodable frames")


def _frame_time(frame: av.VideoFrame | av.AudioFrame) -> float:
    return -math.inf if frame.time is None else float(frame.time)


def _packet_span(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> tuple[float, float] | None:
    """First picture to the end of the last, seconds, from the packets (nothing decoded)."""
    times = [
        (float(p.pts * p.time_base), float((p.pts + (p.duration or 0)) * p.time_base))
        for p in container.demux(video)
        if p.pts is not None and p.time_base is not None
    ]
    return (min(t[0] for t in times), max(t[1] for t in times)) if times else None


def _within(
    frames: Iterator[av.VideoFrame | av.AudioFrame], span: tuple[float, float] | None
) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """The sound frames that overlap the pictures' span: a fragment carried beside two
    segments is heard in each only over its own pictures."""
    for frame in frames:
        if span is None or frame.time is None or not isinstance(frame, av.AudioFrame):
            yield frame
            continue
        if frame.time + frame.samples / frame.sample_rate > span[0] and frame.time < span[1]:
            yield frame


def _decode_container(
    container: av.container.InputContainer, needs: DecodeNeeds, chunk_seconds: float | None
) -> Iterator[DecodedSegment]:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise DecodeError("no audio or video stream")
    _refuse_non_media(container, video)
    streams = [s for s in (video, audio) if s is not None]
    yield from _gather(_frames(container, streams), video, needs, chunk_seconds)


def _gather(
    frames: Iterator[av.VideoFrame | av.AudioFrame],
    video: av.video.stream.VideoStream | None,
    needs: DecodeNeeds,
    chunk_seconds: float | None,
) -> Iterator[DecodedSegment]:
    """Frames in time order into chunks of about ``chunk_seconds`` of video."""
    fps = float(video.average_rate) if video is not None and video.average_rate else 25.0
    gatherer = _Gatherer(needs, fps, chunk_seconds)
    timeline = _Timeline(chunk_seconds)
    for frame in frames:
        if frame.time is None:
            continue
        t = float(frame.time)
        timeline.start(t)
        is_clock = isinstance(frame, av.VideoFrame) or video is None
        if not gatherer.chunk.empty() and (
            (is_clock and timeline.crossed(t)) or gatherer.resized(frame)
        ):
            yield gatherer.cut()  # a picture of a new size starts a new chunk
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


AUDIO_LIMIT = 64.0  # 36 dB over full scale: no real sound, and far from overflowing a filter


def _finite(audio: np.ndarray) -> np.ndarray:
    """The sound with broken samples made silent, in place: NaN, infinite, or beyond
    ``AUDIO_LIMIT``. Float PCM can carry them, and one alone poisons every recursive filter
    after it: a NaN (or a 3e38, which overflows float32 inside the filter) left the loudness
    meter's K filter reading nothing for the rest of the channel's life, and a clipped one
    would still read as a blast. The sound's extremes find them without a second array (NaN
    propagates through both)."""
    if audio.size == 0:
        return audio
    peak = max(float(audio.max()), -float(audio.min()))
    if peak <= AUDIO_LIMIT:  # False for NaN
        return audio
    with np.errstate(invalid="ignore"):
        broken = ~(np.abs(audio) <= AUDIO_LIMIT)
    logger.warning(
        "%d broken audio samples (NaN, infinite or beyond +-%g) made silent",
        int(broken.sum()), AUDIO_LIMIT,
    )  # fmt: skip
    audio[broken] = 0.0
    return audio


def _assemble(
    chunk: _Chunk, full_range: bool, fps: float, audio_origin: float | None, samples_before: int
) -> DecodedSegment:
    order = np.argsort(chunk.times, kind="stable")
    luma = chunk.planes.ordered(order)
    luma = np.zeros((0, 0, 0), np.uint8) if luma is None else luma
    rgb, rgb_index = _rgb_in_order(chunk, order)
    audio = (
        _finite(np.concatenate(chunk.audio, axis=1).astype(np.float32, copy=False))
        if chunk.audio
        else np.zeros((2, 0), np.float32)
    )
    audio_start = (audio_origin or 0.0) + samples_before / AUDIO_RATE
    return DecodedSegment(
        video_times=np.asarray(chunk.times, dtype=np.float64)[order],
        luma=luma,
        means=_views_in_order(chunk.means, order),
        sparse=_views_in_order(chunk.sparse, order),
        picture_size=chunk.luma_size or (0, 0),
        rgb=rgb,
        rgb_index=rgb_index,
        rgb_stride=chunk.rgb_stride,
        full_range=full_range,
        fps=fps,
        audio=audio,
        audio_start=audio_start,
        captions=np.asarray(chunk.captions, dtype=bool)[order]
        if chunk.captions
        else np.zeros(0, bool),
    )


def _views_in_order(views: dict[int, _Pictures], order: np.ndarray) -> dict[int, np.ndarray]:
    ordered = {key: pictures.ordered(order) for key, pictures in views.items()}
    return {key: array for key, array in ordered.items() if array is not None}


def _rgb_in_order(chunk: _Chunk, order: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The chunk's RGB pictures in time order, and the places of their frames among the
    chunk's frames once those are put in time order by ``order``."""
    place = np.empty(len(order), np.intp)
    place[order] = np.arange(len(order))  # arrival -> place in time order
    index = place[np.asarray(chunk.rgb_places, np.intp)]
    by_time = np.argsort(index, kind="stable")
    return chunk.rgbs.ordered(by_time), index[by_time]


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane without stride padding, a view of the frame's buffer (copied once, into
    the chunk); converts only when the frame is not planar YUV."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12"):
        plane = frame.planes[0]
        buf = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(
            plane.height, plane.line_size
        )
        return buf[:, : frame.width]
    return frame.to_ndarray(format="gray")


def _fitted_shape(height: int, width: int, limit: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a picture once fitted to ``limit`` (see :func:`_fit`)."""
    scale = min(limit[0] / width, limit[1] / height)
    if scale >= 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def _fit(plane: np.ndarray, limit: tuple[int, int]) -> np.ndarray:
    """``plane`` downscaled (area averaging, aspect kept) to fit ``limit``, if bigger. Luma
    codes keep their range: black stays 16 (or 0) whatever the size."""
    height, width = _fitted_shape(plane.shape[0], plane.shape[1], limit)
    if (height, width) == plane.shape:
        return plane
    return cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA)


def _rgb(frame: av.VideoFrame, limit: tuple[int, int]) -> np.ndarray:
    """The frame as RGB, fitted to ``limit`` by FFmpeg's area scaler in the same conversion
    (one pass, no full-size RGB copy)."""
    height, width = _fitted_shape(frame.height, frame.width, limit)
    if (height, width) == (frame.height, frame.width):
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(
        width=width, height=height, format="rgb24", interpolation="AREA"
    ).to_ndarray()


def _has_captions(frame: av.VideoFrame) -> bool:
    """Whether the frame carried A/53 caption data (CEA-608/708 in the video's user data).

    A container of its own, not ``frame.side_data``: the frame keeps that one, and it keeps
    the frame, so every frame read that way waits for the garbage collector instead of going
    back to the decoder's pool at once, which doubled the cost of a decode."""
    own = SideDataContainer(frame)  # type: ignore[call-arg]  # the stub leaves out __init__
    return any(getattr(data, "type", None) == _A53_CC for data in own)


def _is_full_range(frame: av.VideoFrame) -> bool:
    if frame.format.name.startswith("yuvj"):
        return True
    color_range = getattr(frame, "color_range", 0)
    return int(color_range) == 2  # AVCOL_RANGE_JPEG
