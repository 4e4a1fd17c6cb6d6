"""MPEG-TS encoding whose timestamps are channel time, exactly.

Two things would otherwise shift the timeline of a segment:

- The AAC encoder primes: its first packet carries ``pts = first input pts - 1024``. At
  channel time 0 that is negative, and the muxer then shifts *every* stream forward by
  21.3 ms to make it non-negative, so video would no longer start at 0.
- Audio packets are 1024 samples, which do not divide a 2 s segment (93.75 packets).

So audio lives on a global grid of 1024-sample packets (as one continuous encoder started at
time 0 would make them). A segment keeps the packets whose pts lies in its grid span
``[floor(t0 / 1024), floor(t1 / 1024))`` and feeds the encoder two packets early to warm it
up; the dropped warm-up packets keep the priming out of the file. The first audio sample
of segment ``i`` therefore lies at most 21.3 ms before ``i * d``, segments tile the audio
timeline without gaps or overlap, and video PTS is the frame index over the frame rate.
The mpegts muxer adds no delay of its own in libavformat (``max_delay`` is unset; the
``-muxdelay`` of the ffmpeg CLI is a CLI default), which the tests check.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import IO

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

AAC_FRAME = 1024
WARMUP_PACKETS = 2


class EncoderSettings(BaseModel):
    """How segments are encoded; defaults favour speed, as a live contribution encoder does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = Field(default="ultrafast", description="libx264 preset.")
    crf: int = Field(default=23, ge=0, le=51, description="libx264 constant rate factor.")
    threads: int = Field(default=1, ge=0, description="libx264 threads; 1 keeps it on one core.")
    audio_bitrate: int = Field(default=128_000, gt=0, description="AAC bits per second.")


def audio_grid(t: float, rate: int) -> int:
    """The first sample of the audio packet grid at or before channel time ``t``."""
    return (round(t * rate) // AAC_FRAME) * AAC_FRAME


class TsEncoder:
    """One MPEG-TS output: H.264 + AAC, fed in time order, timestamps = channel time.

        enc = TsEncoder(buf, 640, 360, fps=25, keyint=50, audio_span=(0, 95232))
        enc.add_video(i, yuv) ...; enc.add_audio(first_sample, samples) ...
        enc.close()

    ``audio_span`` is the grid span of packets to keep; audio fed before it only warms the
    encoder up. Audio must be fed in whole 1024-sample packets starting on the grid.
    """

    def __init__(
        self,
        output: str | IO[bytes],
        width: int,
        height: int,
        fps: int,
        keyint: int,
        audio_span: tuple[int, int],
        rate: int = 48_000,
        settings: EncoderSettings | None = None,
    ) -> None:
        settings = settings or EncoderSettings()
        self.fps, self.rate = fps, rate
        self.audio_span = audio_span
        self.container = av.open(output, mode="w", format="mpegts")
        self.video = self._video_stream(width, height, keyint, settings)
        self.audio = self.container.add_stream("aac", rate=rate, layout="stereo")
        self.audio.codec_context.bit_rate = settings.audio_bitrate
        self.audio.codec_context.time_base = Fraction(1, rate)

    def _video_stream(
        self, width: int, height: int, keyint: int, settings: EncoderSettings
    ) -> av.video.stream.VideoStream:
        stream = self.container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, self.fps)
        # Say what the pictures are: BT.601 limited range (black at 16), as cv2 makes them.
        stream.codec_context.color_range = 1  # AVCOL_RANGE_MPEG
        stream.codec_context.colorspace = 6  # AVCOL_SPC_SMPTE170M
        stream.codec_context.color_primaries = 6
        stream.codec_context.color_trc = 6
        stream.options = {
            "preset": settings.preset,
            "crf": str(settings.crf),
            # Fixed GOPs on segment boundaries, no B-frames: every segment opens on an IDR and
            # DTS never runs ahead of channel time.
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0",
            "threads": str(settings.threads),
        }
        return stream

    def add_video(self, index: int, yuv: np.ndarray) -> None:
        """Frame ``index`` (I420 uint8), shown at ``index / fps`` seconds."""
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, self.fps)
        frame.color_range = 1
        for packet in self.video.encode(frame):
            self.container.mux(packet)

    def add_audio(self, first_sample: int, samples: np.ndarray) -> None:
        """Stereo float samples (2, n) starting at grid sample ``first_sample``; n % 1024 == 0."""
        if first_sample % AAC_FRAME or samples.shape[-1] % AAC_FRAME:
            raise ValueError("audio must be fed in whole packets on the 1024-sample grid")
        data = np.ascontiguousarray(samples, dtype=np.float32)
        for offset in range(0, data.shape[-1], AAC_FRAME):
            frame = av.AudioFrame.from_ndarray(
                data[:, offset : offset + AAC_FRAME], format="fltp", layout="stereo"
            )
            frame.sample_rate = self.rate
            frame.pts = first_sample + offset
            frame.time_base = Fraction(1, self.rate)
            self._mux_audio(self.audio.encode(frame))

    def _mux_audio(self, packets: list[av.Packet]) -> None:
        lo, hi = self.audio_span
        for packet in packets:
            if packet.pts is not None and lo <= packet.pts < hi:
                self.container.mux(packet)

    def close(self) -> None:
        """Flush both encoders and finish the file."""
        try:
            for packet in self.video.encode(None):
                self.container.mux(packet)
            self._mux_audio(self.audio.encode(None))
        finally:
            self.container.close()
