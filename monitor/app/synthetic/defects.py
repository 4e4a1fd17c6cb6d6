"""Scheduled defects: black picture, frozen picture, silence and loud programme, applied to
clean content.

Each defect acts exactly like the failure it imitates: ``black`` replaces frames with the
range's black level (a playout server that lost its source), ``freeze`` repeats the frame
on air at ``start`` (a stalled decoder or a stuck frame buffer), ``silence`` writes digital
zero (a dropped audio feed), ``loud`` raises the sound by 10 dB into a limiter (a
contribution feed lined up wrong, or a commercial mastered hot: too loud, but no true peak
over the limit, as a broadcast limiter keeps it). Frames are on air from
``ceil(start * fps)``, so a defect that starts between two frames begins at the next one, the
way an editor would cut it.

    schedule = DefectSchedule(defects=[Defect(kind="black", start=10.0, duration=4.0)])
    schedule.ground_truth()   # [{"detector": "black", "start": 10.0, "end": 14.0}]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

DefectKind = Literal["black", "freeze", "silence", "loud"]
BLACK_Y, NEUTRAL_C = 16, 128
LOUD_GAIN_DB = 10.0
LOUD_CEILING = 0.5  # the limiter's output never passes -6 dBFS, so true peaks stay under -1 dBTP
# The detector that should see each kind (the others are named after theirs).
_DETECTOR = {"loud": "loudness"}
_EPS = 1e-6


class Defect(BaseModel):
    """One defect on the channel timeline, in seconds of channel (media) time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DefectKind = Field(
        description="black, freeze, silence, or loud (the loudness detector's too_loud)."
    )
    start: float = Field(ge=0, description="Channel time the defect begins, seconds.")
    duration: float = Field(gt=0, description="How long it lasts, seconds.")

    @property
    def end(self) -> float:
        return self.start + self.duration

    def frame_range(self, fps: int) -> tuple[int, int]:
        """Frames [first, end) on air during the defect."""
        return math.ceil(self.start * fps - _EPS), math.ceil(self.end * fps - _EPS)

    def sample_range(self, rate: int) -> tuple[int, int]:
        return round(self.start * rate), round(self.end * rate)


class DefectSchedule(BaseModel):
    """The defects of one channel; may overlap (black wins over freeze on a frame)."""

    model_config = ConfigDict(extra="forbid")

    defects: list[Defect] = Field(default_factory=list)

    def of_kind(self, kind: DefectKind) -> list[Defect]:
        return [d for d in self.defects if d.kind == kind]

    def ground_truth(self) -> list[dict[str, float | str]]:
        """Defects as the evaluation reads them: detector, start, end; in start order."""
        ordered = sorted(self.defects, key=lambda d: (d.start, d.kind))
        return [
            {"detector": _DETECTOR.get(d.kind, d.kind), "start": d.start, "end": round(d.end, 6)}
            for d in ordered
        ]

    @classmethod
    def random(
        cls,
        seed: int,
        duration: float,
        kinds: Sequence[DefectKind] = ("black", "freeze", "silence"),
        every: float = 20.0,
        lengths: tuple[float, float] = (2.5, 8.0),
        lead_in: float = 4.0,
    ) -> DefectSchedule:
        """About one defect per ``every`` seconds, none overlapping, clean gaps between them.

        Used by evaluations that need many labelled defects over long synthetic clips.
        """
        rng = np.random.default_rng([seed, 0xDEFEC7])
        defects: list[Defect] = []
        t = lead_in + rng.uniform(0, every / 2)
        while True:
            length = round(float(rng.uniform(*lengths)), 2)
            if t + length > duration - 1.0:
                break
            kind = kinds[int(rng.integers(len(kinds)))]
            defects.append(Defect(kind=kind, start=round(t, 2), duration=length))
            t += length + rng.uniform(0.5, 1.5) * every
        return cls(defects=defects)


def as_schedule(schedule: DefectSchedule | Sequence[Defect] | None) -> DefectSchedule:
    if schedule is None:
        return DefectSchedule()
    if isinstance(schedule, DefectSchedule):
        return schedule
    return DefectSchedule(defects=list(schedule))


class FrameDefects:
    """Which content frame each channel frame shows, and which frames are black."""

    def __init__(self, schedule: DefectSchedule, fps: int) -> None:
        self.black = [d.frame_range(fps) for d in schedule.of_kind("black")]
        self.freeze = [d.frame_range(fps) for d in schedule.of_kind("freeze")]

    def is_black(self, frame: int) -> bool:
        return any(a <= frame < b for a, b in self.black)

    def source_frame(self, frame: int) -> int:
        """The content frame shown at ``frame``: during a freeze, the freeze's first frame."""
        for a, b in self.freeze:
            if a <= frame < b:
                return a
        return frame


def black_frame(width: int, height: int, frame: int) -> np.ndarray:
    """An I420 black frame: luma at 16 with a faint +1 dither, as a real playout emits."""
    yuv = np.full((height * 3 // 2, width), NEUTRAL_C, np.uint8)
    rng = np.random.default_rng([frame, 0xB1AC])
    yuv[:height] = BLACK_Y + (rng.random((height, width)) < 0.05)
    return yuv


def apply_silence(audio: np.ndarray, start: int, schedule: DefectSchedule, rate: int) -> None:
    """Zero the samples of ``audio`` (first sample at ``start``) that fall in a silence."""
    n = audio.shape[-1]
    for d in schedule.of_kind("silence"):
        a, b = d.sample_range(rate)
        lo, hi = max(a - start, 0), min(b - start, n)
        if lo < hi:
            audio[..., lo:hi] = 0.0


def apply_loud(audio: np.ndarray, start: int, schedule: DefectSchedule, rate: int) -> None:
    """Raise the samples of ``audio`` that fall in a ``loud`` defect by LOUD_GAIN_DB, through
    a soft limiter (tanh) whose output stays under LOUD_CEILING."""
    gain = 10.0 ** (LOUD_GAIN_DB / 20.0)
    n = audio.shape[-1]
    for d in schedule.of_kind("loud"):
        a, b = d.sample_range(rate)
        lo, hi = max(a - start, 0), min(b - start, n)
        if lo < hi:
            part = audio[..., lo:hi]
            audio[..., lo:hi] = LOUD_CEILING * np.tanh(part * (gain / LOUD_CEILING))
