"""Stutter: dropped, repeated and skipped frames, and uneven cadence.

Two clocks tell a stutter, and this detector reads both:

* **Timestamps.** A step between presentation times longer than ``drop_factor`` frame
  durations is frames that never came (``dropped``); a step off the nominal frame duration by
  more than ``cadence_tolerance`` of it, short of a drop, is ``uneven`` cadence.
* **Pictures.** A frame whose picture hardly differs from the one before (under
  ``repeat_ratio`` of the segment's typical change) repeats it. Repeats are normal in two
  cases, and neither is a stutter: a static picture (the typical change is under
  ``static_motion``: nothing moves, so nothing can be seen to stutter; long stills are the
  freeze detector's) and a low-frame-rate or telecined source (a 10 fps feed shown at 25 fps
  repeats in a steady 2-3 pattern). So repeats are judged against the segment's own cadence:
  the runs of repeats that make up 90 % of it are its pattern, and only a run longer than the
  pattern allows is ``repeated``. A repeat that comes back at a steady period (a 24 fps film
  played at 25 repeats one frame a second) is a conversion's cadence too, and not counted.

One stutter is a blip; a channel that keeps stuttering is what a viewer notices. An event is
reported as a span only when ``max_events`` of them (default 3) fall within ``window``
seconds, so the alert opens on the third stutter in ten seconds and resolves once
``recovery`` seconds pass without one. That rolling count, the last frame and its time (to see
a stutter across a segment boundary) are kept per channel in this detector, which the worker
builds once per channel and feeds in order.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from monitor.core.messages import DefectSpan
from monitor.inference.detectors.base import Detector, DetectorConfig
from monitor.inference.detectors.registry import register
from monitor.inference.segment import DecodedSegment, DecodeNeeds

if TYPE_CHECKING:
    from monitor.inference.models import ModelCache

REGULAR_SHARE = 0.9  # the repeat runs that make up this share of a segment are its cadence
LONGEST_REPEAT = 12  # frames; a longer still is a freeze, left to the freeze detector
SMALL = 8  # pixels a side averaged into one: fine enough to see a frame change
BOUNDARY = 1.0  # seconds; the previous segment's last frame joins this one's if this close


class StutterConfig(DetectorConfig):
    type: Literal["stutter"] = "stutter"
    enabled: bool = Field(
        default=False,
        description="Run this detector on the channel. Off by default: on real footage it "
        "finds every timestamp drop but 0.38 of the repeated frames (vqm eval stutter).",
    )
    drop_factor: float = Field(
        default=1.5, gt=1, le=10, description="A timestamp step over this many frames: a drop."
    )
    cadence_tolerance: float = Field(
        default=0.25,
        gt=0,
        lt=0.5,
        description="Share of a frame a step may be off before the cadence is uneven.",
    )
    repeat_ratio: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="A frame changing less than this share of the "
        "segment's typical change repeats the one before.",
    )
    repeat_floor: float = Field(
        default=0.02, ge=0, description="Luma codes of change under which a frame always repeats."
    )
    static_motion: float = Field(
        default=0.2,
        ge=0,
        description="Typical change (luma codes) under which the picture is "
        "static and repeats are not judged.",
    )
    catch_up: float = Field(
        default=1.25,
        ge=0,
        description="A repeat counts when the picture after it differs by this many usual "
        "steps (the moving scene caught up); 0 counts every repeat.",
    )
    window: float = Field(default=10.0, gt=0, le=600, description="Seconds of the rolling count.")
    max_events: int = Field(
        default=3, ge=1, le=1000, description="Stutters within the window that make a defect."
    )
    min_duration: float = Field(
        default=0.0, ge=0.0, description="Seconds a defect must last before an alert opens."
    )
    recovery: float = Field(
        default=10.0, ge=0.0, description="Seconds without a stutter before the alert resolves."
    )


Event = tuple[str, float, float]  # label, start, end (media seconds)


@register
class StutterDetector(Detector):
    """Flags channels whose frames drop, repeat irregularly or come unevenly."""

    key = "stutter"
    config_class = StutterConfig
    needs = DecodeNeeds(luma=True, luma_full=False, luma_means=(SMALL,), audio=False)
    config: StutterConfig

    def __init__(self, config: DetectorConfig, models: ModelCache | None = None) -> None:
        super().__init__(config, models)
        self._recent: deque[float] = deque()  # times of the stutters within the window
        self._repeats: deque[float] = deque(maxlen=3)  # times of the last repeats, for period
        self._last: tuple[float, np.ndarray] | None = None  # previous segment's last frame
        self._trailing = 0  # repeated frames it ended with (a run the next segment continues)
        self._counts = {"dropped": 0, "repeated": 0, "uneven": 0}

    def detect(self, segment: DecodedSegment) -> list[DefectSpan]:
        if len(segment.video_times) < 2:
            return []
        times, small, carried = self._joined(segment)
        frame = 1.0 / segment.fps if segment.fps > 0 else float(np.median(np.diff(times)))
        repeats = self._repeat_events(times, small, frame, carried)
        events = self._timestamp_events(times, frame) + repeats
        self._counts = {k: sum(1 for e in events if e[0] == k) for k in self._counts}
        return self._spans(sorted(events, key=lambda e: e[1]))

    def measurements(self) -> dict[str, float]:
        return {f"{k}_events": float(v) for k, v in self._counts.items()}

    def _joined(self, segment: DecodedSegment) -> tuple[np.ndarray, np.ndarray, int]:
        """Times and small pictures, led by the previous segment's last frame when it is the
        one just before (so a stutter across the boundary is seen too), and how many repeats
        that frame ended."""
        times = segment.video_times.astype(np.float64)
        small = segment.luma_means(SMALL)
        last, self._last = self._last, (float(times[-1]), small[-1].copy())
        follows = last is not None and 0 < times[0] - last[0] < BOUNDARY
        if last is not None and follows and last[1].shape == small[0].shape:
            joined = np.concatenate([[last[0]], times]), np.concatenate([last[1][None], small])
            return (*joined, self._trailing)
        return times, small, 0

    def _timestamp_events(self, times: np.ndarray, frame: float) -> list[Event]:
        events: list[Event] = []
        for t0, step in zip(times[:-1], np.diff(times), strict=True):
            if step > self.config.drop_factor * frame:
                events.append(("dropped", float(t0 + frame), float(t0 + step)))
            elif abs(step - frame) > self.config.cadence_tolerance * frame:
                events.append(("uneven", float(t0), float(t0 + step)))
        return events

    def _repeat_events(
        self, times: np.ndarray, small: np.ndarray, frame: float, carried: int
    ) -> list[Event]:
        """Repeat runs longer than the cadence allows; ``carried`` repeats ended the segment
        before and continue into this one's first run."""
        diffs = np.abs(np.diff(small, axis=0)).reshape(len(small) - 1, -1)
        change = diffs.mean(axis=1)
        typical = float(np.median(change)) if len(change) else 0.0
        if typical < self.config.static_motion:
            self._trailing = 0
            return []  # a still picture: nothing moves, nothing stutters
        cut = max(self.config.repeat_floor, self.config.repeat_ratio * typical)
        # Frames with a new picture; the first frame is the reference either way.
        fresh = np.concatenate([[0], np.flatnonzero(change >= cut) + 1])
        self._trailing = (carried if len(fresh) == 1 else 0) + len(small) - 1 - int(fresh[-1])
        if len(fresh) < 4:
            return []
        gaps = np.diff(fresh)  # 1: no repeat; 2: one repeated frame; a 2-3 mix: 10 fps at 25
        gaps[0] += carried
        allowed = _cadence(gaps)
        long_runs = [
            (int(a), int(b), int(g))
            for a, b, g in zip(fresh[:-1], fresh[1:], gaps, strict=True)
            if allowed < g <= LONGEST_REPEAT
        ]
        motion = _motion(diffs, [b for _, b, _ in long_runs])
        events: list[Event] = []
        for a, b, gap in long_runs:
            start = float(times[a]) + frame * (1 - (carried if a == 0 else 0))
            if not self._catches_up(motion, b):
                continue
            if not self._periodic(start, frame):
                events.append(("repeated", start, start + (gap - 1) * frame))
        return events

    def _catches_up(self, motion: np.ndarray, fresh: int) -> bool:
        """Whether the picture after a repeat jumps ahead: the moment it held was lost from a
        moving scene, so the next frame differs by more than the usual step. An animation
        drawn on holds, or grain over a still, moves on by a usual step and is left alone."""
        usual = np.concatenate(
            [motion[max(0, fresh - 6) : max(0, fresh - 2)], motion[fresh : fresh + 4]]
        )
        if usual.size == 0:
            return True
        return bool(motion[fresh - 1] >= self.config.catch_up * float(np.median(usual)))

    def _periodic(self, at: float, frame: float) -> bool:
        """Whether this repeat continues a steady period (the last two intervals between
        repeats agree within a frame): a frame-rate conversion's pattern, not a stutter."""
        self._repeats.append(at)
        if len(self._repeats) < 3:
            return False
        intervals = np.diff(np.asarray(self._repeats))
        return float(intervals.max() - intervals.min()) <= frame + 1e-6

    def _spans(self, events: list[Event]) -> list[DefectSpan]:
        """Events that make the rolling count reach ``max_events``, as spans."""
        spans = []
        for label, start, end in events:
            self._recent.append(start)
            while self._recent and self._recent[0] <= start - self.config.window:
                self._recent.popleft()
            if len(self._recent) >= self.config.max_events:
                confidence = min(1.0, 0.5 + 0.1 * (len(self._recent) - self.config.max_events))
                spans.append(DefectSpan(start=start, end=end, confidence=confidence, label=label))
        return spans


def _motion(diffs: np.ndarray, fresh: list[int]) -> np.ndarray:
    """Per frame step, where the picture moves most (the 95th percentile of its blocks):
    grain changes every block a little and never accumulates, motion changes a few a lot and
    does. Taken only around the ``fresh`` frames that end a long repeat (the steps
    :meth:`StutterDetector._catches_up` reads), NaN elsewhere: a partition of every step
    costs more than the rest of the detector."""
    motion = np.full(len(diffs), np.nan, np.float32)
    wanted = sorted({i for b in fresh for i in range(b - 6, b + 4) if 0 <= i < len(diffs)})
    if wanted:
        k = int(0.95 * (diffs.shape[1] - 1))
        motion[wanted] = np.partition(diffs[wanted], k, axis=1)[:, k]
    return motion


def _cadence(gaps: np.ndarray) -> int:
    """The longest repeat run that belongs to the segment's steady pattern: the smallest gap
    value covering ``REGULAR_SHARE`` of them, and never less than the mean run."""
    values, counts = np.unique(gaps, return_counts=True)
    covered = np.cumsum(counts) / counts.sum()
    steady = int(values[np.searchsorted(covered, REGULAR_SHARE)])
    return max(steady, math.ceil(float(np.mean(gaps)) - 0.25))
