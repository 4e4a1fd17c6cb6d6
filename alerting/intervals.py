"""Joining per-segment defect spans into defect intervals.

Detectors are stateless per segment: a freeze that lasts ten seconds arrives as five
two-second spans, one per segment. :class:`IntervalTracker` joins them back into one defect,
opens it once it has lasted ``min_duration`` and resolves it once ``recovery`` seconds of clean
media have been analysed after its last defective instant. The same logic serves the live
alert engine (fed one detection at a time, its state persisted between messages) and
``vqm scan`` (:func:`join_offline`), so both report the same intervals.

    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    for analysed_start, analysed_end, spans in results:
        for change in tracker.feed(analysed_start, analysed_end, spans):
            print(change.transition, change.start, change.end)
    for change in tracker.finish():
        ...

All times are media seconds. Media that was not analysed (a segment that did not decode)
counts as neither clean nor defective; a hole of more than ``max_jump`` seconds, a jump back
in time, or an explicit discontinuity ends every defect.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerting.models import AlertTransition
from monitor.core.messages import DefectSpan

# Float slack for comparisons of media times built from frame counts (49 * 0.04 + 0.04).
_EPS = 1e-6
# Durations are measured to the resolution of a video frame (40 ms at 25 fps) or an audio
# window (50 ms), and AAC puts a segment's audio on a 1024-sample grid that ends ~21 ms
# before its video: a defect that fills a 2 s segment can measure 1.98 s. Minimum durations
# are met within this resolution, so such a defect opens with its first segment.
DURATION_RESOLUTION = 0.05
# A zero-length span still carries its confidence when averaging.
_MIN_WEIGHT = 1e-3

ConfidenceMode = Literal["max", "mean"]


class IntervalChange(BaseModel):
    """One transition of one defect interval, as the tracker reports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transition: AlertTransition
    label: str | None = None
    start: float = Field(description="The defect's first defective instant, media seconds.")
    end: float = Field(description="Its last defective instant so far, media seconds.")
    confidence: float
    offset_ms: float | None = None


class DefectRun(BaseModel):
    """A defect being followed: its joined spans and the clean media analysed after them."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    start: float
    end: float
    clean: float = Field(default=0.0, description="Analysed clean seconds after ``end``.")
    opened: bool = False
    reported_end: float | None = Field(
        default=None, description="End last reported as opened/updated; None before opening."
    )
    confidence_max: float = 0.0
    confidence_sum: float = Field(default=0.0, description="Confidence x seconds, for the mean.")
    weight: float = 0.0
    offset_sum: float = Field(default=0.0, description="offset_ms x seconds, for the mean.")
    offset_weight: float = 0.0

    def add(self, span: DefectSpan) -> None:
        self.end = max(self.end, span.end)
        self.clean = 0.0
        weight = max(span.end - span.start, _MIN_WEIGHT)
        self.confidence_max = max(self.confidence_max, span.confidence)
        self.confidence_sum += span.confidence * weight
        self.weight += weight
        if span.offset_ms is not None:
            self.offset_sum += span.offset_ms * weight
            self.offset_weight += weight

    def confidence(self, mode: ConfidenceMode) -> float:
        if mode == "mean" and self.weight > 0:
            return min(1.0, self.confidence_sum / self.weight)
        return self.confidence_max

    def offset_ms(self) -> float | None:
        return self.offset_sum / self.offset_weight if self.offset_weight else None


class TrackerState(BaseModel):
    """Everything a tracker knows; JSON of this survives a restart of the alerting process."""

    model_config = ConfigDict(extra="forbid")

    analysed_end: float | None = Field(default=None, description="End of the media analysed.")
    runs: dict[str, DefectRun] = Field(
        default_factory=dict, description="Defects being followed, by label ('' for none)."
    )


def _key(label: str | None) -> str:
    return label or ""


class IntervalTracker:
    """Joins one detector's per-segment spans on one channel into defect intervals.

    ``feed`` takes the analysed range of each segment, in media order, with the defect spans
    inside it, and returns what changed: ``opened`` once a defect has lasted ``min_duration``
    (reporting its true start), ``updated`` while it grows, ``resolved`` once ``recovery``
    clean seconds follow it (its end is the last defective instant). Spans with different
    labels are separate defects. Spans closer than ``gap_tolerance`` join before a defect
    opens; once open, any clean gap shorter than ``recovery`` is part of it.
    """

    def __init__(
        self,
        min_duration: float,
        recovery: float,
        *,
        gap_tolerance: float = 0.1,
        max_jump: float = 5.0,
        confidence: ConfidenceMode = "max",
        state: TrackerState | None = None,
        label_min_durations: dict[str, float] | None = None,
    ) -> None:
        if min_duration < 0 or recovery < 0 or gap_tolerance < 0 or max_jump <= 0:
            raise ValueError(
                f"IntervalTracker: bad settings min_duration={min_duration} "
                f"recovery={recovery} gap_tolerance={gap_tolerance} max_jump={max_jump}"
            )
        self.min_duration = min_duration
        self.label_min_durations = dict(label_min_durations or {})  # per-label overrides
        self.recovery = recovery
        self.gap_tolerance = gap_tolerance
        self.max_jump = max_jump
        self.confidence_mode: ConfidenceMode = confidence
        self._state = state or TrackerState()

    # -- persistence ---------------------------------------------------------------------
    @property
    def state(self) -> TrackerState:
        return self._state

    def dump(self) -> str:
        """JSON of the state, for the state store."""
        return self._state.model_dump_json()

    @classmethod
    def load(
        cls, data: str | None, min_duration: float, recovery: float, **kw: Any
    ) -> IntervalTracker:
        """A tracker resuming from :meth:`dump` output (or a fresh one for ``None``).

        Settings come from the caller, not the stored state, so a config change applies to
        defects already being followed.
        """
        state = TrackerState.model_validate_json(data) if data else None
        return cls(min_duration, recovery, state=state, **kw)

    @property
    def open_labels(self) -> list[str | None]:
        """Labels of the defects open (past ``min_duration``) now."""
        return [run.label for run in self._state.runs.values() if run.opened]

    # -- feeding -------------------------------------------------------------------------
    def feed(
        self,
        analysed_start: float,
        analysed_end: float,
        spans: Iterable[DefectSpan],
        *,
        discontinuity: bool = False,
    ) -> list[IntervalChange]:
        """Take one segment's analysed range and defect spans; return the transitions."""
        out: list[IntervalChange] = []
        previous = self._state.analysed_end
        if discontinuity or self._jumped(analysed_start, analysed_end):
            out += self.break_all()
            previous = None
        elif previous is not None and analysed_end <= previous + _EPS:
            return out  # already analysed: a replay adds nothing
        by_label: dict[str, list[DefectSpan]] = {}
        for span in sorted(spans, key=lambda s: s.start):
            by_label.setdefault(_key(span.label), []).append(span)
        clean_from = analysed_start if previous is None else max(analysed_start, previous)
        for key in sorted(set(self._state.runs) | set(by_label)):
            spans_of = by_label.get(key, [])
            out += self._advance(key, clean_from, analysed_end, spans_of, fresh=previous is None)
        self._state.analysed_end = analysed_end
        return out

    def break_all(self) -> list[IntervalChange]:
        """End every defect now (a discontinuity): open ones resolve, candidates vanish."""
        out: list[IntervalChange] = []
        for key in sorted(self._state.runs):
            out += self._close(key)
        self._state.analysed_end = None
        return out

    def finish(self) -> list[IntervalChange]:
        """End of input: open defects resolve at their last defective instant."""
        return self.break_all()

    def _jumped(self, analysed_start: float, analysed_end: float) -> bool:
        previous = self._state.analysed_end
        if previous is None:
            return False
        return analysed_start - previous > self.max_jump or analysed_end < previous - self.max_jump

    def _advance(
        self,
        key: str,
        clean_from: float,
        analysed_end: float,
        spans: list[DefectSpan],
        *,
        fresh: bool = False,
    ) -> list[IntervalChange]:
        """Walk one label's spans through one segment: join, split, open, resolve.

        ``fresh``: the tracker knows nothing before this segment (a first start, a lost
        state store, a break), so a span's ``run_start`` is the best word on where its
        defect began.
        """
        out: list[IntervalChange] = []
        run = self._state.runs.get(key)
        cursor = clean_from if run is None else max(clean_from, run.end)
        for span in spans:
            if run is not None:
                run.clean += max(0.0, span.start - cursor)
                if self._ends(run):
                    out += self._close(key)
                    run = None
            if run is None:
                run = self._state.runs[key] = DefectRun(
                    label=span.label, start=_start_of(span, fresh), end=span.end
                )
            run.add(span)
            cursor = max(cursor, span.end)
            needed = self.label_min_durations.get(key, self.min_duration)
            if not run.opened and run.end - run.start >= needed - DURATION_RESOLUTION:
                run.opened = True
        if run is not None:
            run.clean += max(0.0, analysed_end - cursor)
            out += self._announce(run)
            if self._ends(run):
                out += self._close(key)
        return out

    def _ends(self, run: DefectRun) -> bool:
        """Whether the clean media after ``run`` separates it from what comes next."""
        if run.clean <= self.gap_tolerance + _EPS:
            return False
        return run.clean >= self.recovery - _EPS if run.opened else True

    def _announce(self, run: DefectRun) -> list[IntervalChange]:
        if not run.opened:
            return []
        if run.reported_end is None:
            run.reported_end = run.end
            return [self._change(AlertTransition.OPENED, run)]
        if run.end > run.reported_end + _EPS:
            run.reported_end = run.end
            return [self._change(AlertTransition.UPDATED, run)]
        return []

    def _close(self, key: str) -> list[IntervalChange]:
        run = self._state.runs.pop(key)
        if not run.opened:
            return []
        opened = [self._change(AlertTransition.OPENED, run)] if run.reported_end is None else []
        return [*opened, self._change(AlertTransition.RESOLVED, run)]

    def _change(self, transition: AlertTransition, run: DefectRun) -> IntervalChange:
        return IntervalChange(
            transition=transition,
            label=run.label,
            start=run.start,
            end=run.end,
            confidence=run.confidence(self.confidence_mode),
            offset_ms=run.offset_ms(),
        )


def _start_of(span: DefectSpan, fresh: bool) -> float:
    """Where a new run begins: the span's start, or, for a tracker without history, where
    the inference worker saw the unbroken defect begin (``run_start``).

    Alert ids are made of the start (``alert_id``), and receivers deduplicate on them. A
    tracker whose state was lost while a defect lasted would otherwise name it after the
    first segment it sees again: a second alert and page for the same defect, and the first
    one never resolved. A tracker with history ignores ``run_start``: its own joining
    (which bridges short clean gaps once open) is the reference.
    """
    if fresh and span.run_start is not None:
        return min(span.start, span.run_start)
    return span.start


def join_offline(
    detector: str,
    results: list[tuple[float, float, list[DefectSpan]]],
    min_duration: float,
    recovery: float,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Final defect intervals of one detector over a whole input, as ``vqm scan`` prints them.

    ``results`` are ``(analysed_start, analysed_end, spans)`` per segment in media order;
    keyword arguments go to :class:`IntervalTracker`. Keys follow the scan contract:
    ``detector``, ``label`` (when there is one), ``start``, ``end``, ``offset_ms`` (when
    there is one), ``confidence``.
    """
    tracker = IntervalTracker(min_duration, recovery, **kw)
    changes: list[IntervalChange] = []
    for analysed_start, analysed_end, spans in results:
        changes += tracker.feed(analysed_start, analysed_end, spans)
    changes += tracker.finish()
    done = [c for c in changes if c.transition is AlertTransition.RESOLVED]
    done.sort(key=lambda c: (c.start, c.label or ""))
    return [_scan_record(detector, c) for c in done]


def _scan_record(detector: str, change: IntervalChange) -> dict[str, Any]:
    record: dict[str, Any] = {"detector": detector}
    if change.label is not None:
        record["label"] = change.label
    record["start"] = round(change.start, 3)
    record["end"] = round(change.end, 3)
    if change.offset_ms is not None:
        record["offset_ms"] = round(change.offset_ms)
    record["confidence"] = round(change.confidence, 3)
    return record
