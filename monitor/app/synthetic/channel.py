"""A synthetic live channel: seeded content, scheduled defects, MPEG-TS segments on demand.

Segment ``i`` covers channel time ``[i * d, (i + 1) * d)`` and decodes to exactly that time:
the first frame of segment ``i`` has PTS ``i * d`` and its audio starts at most 21.3 ms
earlier (see :mod:`monitor.app.synthetic.encode`). Any segment can be made at any time, in
any order, and is byte-identical each time, which is what a test origin, an evaluation and a
replay need.

    channel = SyntheticChannel(seed=7, schedule=DefectSchedule(defects=[
        Defect(kind="black", start=10.0, duration=4.0)]))
    data = channel.segment_bytes(5)            # MPEG-TS bytes for 10.0-12.0 s
    channel.ground_truth()                     # {"seed": 7, ..., "defects": [...]}
    write_clip("clip.ts", 60.0, seed=7, schedule=DefectSchedule.random(7, 60.0))
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from monitor.app.synthetic.audio import RATE, render_audio
from monitor.app.synthetic.defects import (
    Defect,
    DefectSchedule,
    FrameDefects,
    apply_loud,
    apply_silence,
    as_schedule,
    black_frame,
)
from monitor.app.synthetic.encode import (
    AAC_FRAME,
    WARMUP_PACKETS,
    EncoderSettings,
    TsEncoder,
    audio_grid,
)
from monitor.app.synthetic.scenes import ScenePlan, SceneSpec
from monitor.app.synthetic.video import ChannelVideo

logger = logging.getLogger(__name__)


class SyntheticChannel:
    """Content of one seed with a defect schedule, cut into encoded segments.

    ``scenes`` restricts the content: a list of scene kinds (or :class:`SceneSpec`) cycled
    in order, e.g. ``["dark"]`` for a channel of night shots; None lets the seed choose.
    """

    def __init__(
        self,
        seed: int,
        schedule: DefectSchedule | Sequence[Defect] | None = None,
        segment_duration: float = 2.0,
        width: int = 640,
        height: int = 360,
        fps: int = 25,
        scenes: Sequence[SceneSpec | str] | None = None,
        encoder: EncoderSettings | None = None,
    ) -> None:
        frames = segment_duration * fps
        if segment_duration <= 0 or abs(frames - round(frames)) > 1e-6:
            raise ValueError(
                f"segment_duration {segment_duration} s is not whole frames at {fps} fps"
            )
        self.seed = seed
        self.schedule = as_schedule(schedule)
        self.segment_duration = float(segment_duration)
        self.width, self.height, self.fps = width, height, fps
        self.frames_per_segment = round(frames)
        self.encoder = encoder or EncoderSettings()
        self.plan = ScenePlan(seed, fps, scenes)
        self.video = ChannelVideo(self.plan, width, height)
        self._frame_defects = FrameDefects(self.schedule, fps)

    # ------------------------------------------------------------ content with defects

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as on air (I420 uint8, limited range), defects applied."""
        if self._frame_defects.is_black(index):
            return black_frame(self.width, self.height, index)
        return self.video.frame(self._frame_defects.source_frame(index))

    def audio(self, start: int, count: int) -> np.ndarray:
        """Samples [start, start + count) at 48 kHz as on air, (2, count) float32."""
        samples = render_audio(self.plan, start, count)
        apply_loud(samples, start, self.schedule, RATE)
        apply_silence(samples, start, self.schedule, RATE)
        return samples

    def segment_span(self, index: int) -> tuple[float, float]:
        """Channel time [start, end) of segment ``index``, seconds."""
        return index * self.segment_duration, (index + 1) * self.segment_duration

    # ------------------------------------------------------------ encoding

    def segment_bytes(self, index: int) -> bytes:
        """Segment ``index`` as MPEG-TS (H.264 from an IDR, AAC), timestamps = channel time."""
        if index < 0:
            raise ValueError(f"segment index must be >= 0, got {index}")
        buf = io.BytesIO()
        first = index * self.frames_per_segment
        self._encode(buf, first, first + self.frames_per_segment)
        return buf.getvalue()

    def _encode(self, output: str | IO[bytes], first_frame: int, end_frame: int) -> None:
        """Encode frames [first_frame, end_frame) and their audio, one segment at a time."""
        a_lo, a_hi = (audio_grid(f / self.fps, RATE) for f in (first_frame, end_frame))
        enc = TsEncoder(
            output,
            self.width,
            self.height,
            self.fps,
            self.frames_per_segment,
            (a_lo, a_hi),
            RATE,
            self.encoder,
        )
        fed = a_lo - WARMUP_PACKETS * AAC_FRAME
        try:
            for chunk in range(first_frame, end_frame, self.frames_per_segment):
                chunk_end = min(chunk + self.frames_per_segment, end_frame)
                for i in range(chunk, chunk_end):
                    enc.add_video(i, self.frame(i))
                # The packet before the span's end is only emitted once the next one is fed.
                target = (
                    a_hi + AAC_FRAME
                    if chunk_end == end_frame
                    else audio_grid(chunk_end / self.fps, RATE)
                )
                if target > fed:
                    enc.add_audio(fed, self.audio(fed, target - fed))
                    fed = target
        finally:
            enc.close()

    # ------------------------------------------------------------ ground truth and files

    def ground_truth(self, duration: float | None = None) -> dict[str, Any]:
        """What a perfect monitor reports: defects by detector, and the scenes on air.

        With ``duration``, defects are clipped to ``[0, duration)`` and the scene list ends
        there; without it, scenes are left out (a live channel has no end).
        """
        truth: dict[str, Any] = {
            "seed": self.seed,
            "segment_duration": self.segment_duration,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "defects": self.schedule.ground_truth(),
        }
        if duration is not None:
            truth["duration"] = duration
            truth["defects"] = [
                {**d, "end": min(float(d["end"]), duration)}
                for d in truth["defects"]
                if float(d["start"]) < duration
            ]
            truth["scenes"] = [
                {"kind": s.kind, "audio": s.audio, "start": s.start, "end": min(s.end, duration)}
                for s in self.plan.scenes_until(duration)
            ]
        return truth

    def write_ground_truth(self, path: str | Path, duration: float | None = None) -> dict[str, Any]:
        truth = self.ground_truth(duration)
        Path(path).write_text(json.dumps(truth, indent=2) + "\n")
        return truth

    def write_clip(self, path: str | Path, duration: float) -> dict[str, Any]:
        """One continuous MPEG-TS file of [0, duration) with an IDR every segment; its truth."""
        frames = max(1, math.ceil(duration * self.fps - 1e-6))
        self._encode(str(path), 0, frames)
        logger.info("wrote %.1f s of seed %d to %s", duration, self.seed, path)
        return self.ground_truth(duration)


def write_clip(
    path: str | Path,
    duration: float,
    seed: int,
    schedule: DefectSchedule | Sequence[Defect] | None = None,
    scenes: Sequence[SceneSpec | str] | None = None,
    **channel_options: Any,
) -> dict[str, Any]:
    """Write a synthetic clip (times start at 0) and return its ground truth.

    ``channel_options`` go to :class:`SyntheticChannel` (size, fps, segment_duration).
    """
    channel = SyntheticChannel(seed, schedule, scenes=scenes, **channel_options)
    return channel.write_clip(path, duration)
