"""The interval tracker joins per-segment spans into defects, as alerts and `vqm scan` see them."""

from __future__ import annotations

import pytest

from alerting.intervals import IntervalChange, IntervalTracker, join_offline
from alerting.models import AlertTransition
from monitor.core.messages import DefectSpan

OPENED, UPDATED, RESOLVED = (
    AlertTransition.OPENED,
    AlertTransition.UPDATED,
    AlertTransition.RESOLVED,
)


def span(start: float, end: float, confidence: float = 0.9, **kw: object) -> DefectSpan:
    return DefectSpan(start=start, end=end, confidence=confidence, **kw)  # type: ignore[arg-type]


def feed_segments(
    tracker: IntervalTracker, segments: list[tuple[float, float, list[DefectSpan]]]
) -> list[IntervalChange]:
    out: list[IntervalChange] = []
    for start, end, spans in segments:
        out += tracker.feed(start, end, spans)
    return out


def kinds(changes: list[IntervalChange]) -> list[AlertTransition]:
    return [c.transition for c in changes]


def test_a_defect_spanning_five_segments_is_one_interval() -> None:
    segments = [(t, t + 2.0, [span(t, t + 2.0)]) for t in (0.0, 2.0, 4.0, 6.0, 8.0)]
    segments.append((10.0, 12.0, []))
    result = join_offline("freeze", segments, min_duration=2.0, recovery=1.0)
    assert result == [{"detector": "freeze", "start": 0.0, "end": 10.0, "confidence": 0.9}]


def test_spans_a_frame_apart_across_a_segment_boundary_join() -> None:
    tracker = IntervalTracker(min_duration=1.5, recovery=1.0)
    changes = feed_segments(tracker, [(0.0, 2.0, [span(1.0, 1.96)]), (2.0, 4.0, [span(2.0, 2.6)])])
    assert kinds(changes) == [OPENED, RESOLVED]
    assert (changes[1].start, changes[1].end) == (1.0, 2.6)


def test_a_defect_shorter_than_min_duration_never_opens() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    changes = feed_segments(tracker, [(0.0, 2.0, [span(0.5, 1.9)]), (2.0, 4.0, [])])
    assert changes == []
    assert tracker.finish() == []


def test_short_defects_with_gaps_beyond_tolerance_do_not_add_up_before_opening() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    spans = [span(0.0, 1.0), span(1.3, 2.2), span(2.5, 3.4)]
    assert tracker.feed(0.0, 4.0, spans) == []


def test_the_open_reports_the_true_start_once_min_duration_is_reached() -> None:
    tracker = IntervalTracker(min_duration=3.0, recovery=1.0)
    assert tracker.feed(0.0, 2.0, [span(0.5, 2.0)]) == []
    changes = tracker.feed(2.0, 4.0, [span(2.0, 4.0)])
    assert kinds(changes) == [OPENED]
    assert (changes[0].start, changes[0].end) == (0.5, 4.0)


def test_an_open_defect_reports_updates_while_it_continues() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    changes = feed_segments(tracker, [(0.0, 2.0, [span(0.0, 2.0)]), (2.0, 4.0, [span(2.0, 4.0)])])
    assert kinds(changes) == [OPENED, UPDATED]
    assert changes[1].end == 4.0


def test_resolve_waits_for_recovery_seconds_of_clean_media() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=3.0)
    assert kinds(tracker.feed(0.0, 4.0, [span(0.0, 4.0)])) == [OPENED]
    assert tracker.feed(4.0, 6.0, []) == []
    changes = tracker.feed(6.0, 8.0, [])
    assert kinds(changes) == [RESOLVED]
    assert (changes[0].start, changes[0].end) == (0.0, 4.0)


def test_a_clean_gap_shorter_than_recovery_does_not_split_an_open_defect() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    changes = feed_segments(
        tracker,
        [
            (0.0, 2.0, [span(0.0, 2.0)]),
            (2.0, 4.0, [span(2.0, 2.5), span(3.2, 4.0)]),
            (4.0, 6.0, [span(4.0, 5.0)]),
            (6.0, 8.0, []),
        ],
    )
    assert kinds(changes) == [OPENED, UPDATED, UPDATED, RESOLVED]
    assert (changes[-1].start, changes[-1].end) == (0.0, 5.0)


def test_a_clean_gap_of_recovery_inside_one_segment_splits_into_two_defects() -> None:
    tracker = IntervalTracker(min_duration=1.0, recovery=1.0)
    changes = tracker.feed(0.0, 5.5, [span(0.0, 2.0), span(3.5, 5.0)])
    assert kinds(changes) == [OPENED, RESOLVED, OPENED]
    assert [(c.start, c.end) for c in changes] == [(0.0, 2.0), (0.0, 2.0), (3.5, 5.0)]


def test_labels_are_tracked_as_separate_defects() -> None:
    tracker = IntervalTracker(min_duration=1.0, recovery=1.0)
    changes = feed_segments(
        tracker,
        [
            (0.0, 2.0, [span(0.0, 2.0, label="hum")]),
            (2.0, 4.0, [span(2.0, 4.0, label="click")]),
            (4.0, 6.0, []),
        ],
    )
    by_label = [(c.transition, c.label) for c in changes]
    assert by_label == [
        (OPENED, "hum"),
        (OPENED, "click"),
        (RESOLVED, "hum"),
        (RESOLVED, "click"),
    ]
    assert [(c.start, c.end) for c in changes if c.transition is RESOLVED] == [
        (0.0, 2.0),
        (2.0, 4.0),
    ]


def test_finish_resolves_open_defects_and_drops_candidates() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    feed_segments(
        tracker,
        [(0.0, 2.0, [span(0.0, 2.0)]), (2.0, 4.0, [span(2.0, 3.5), span(3.0, 4.0, label="x")])],
    )
    changes = tracker.finish()
    assert kinds(changes) == [RESOLVED]
    assert (changes[0].start, changes[0].end, changes[0].label) == (0.0, 3.5, None)


def test_a_defect_running_to_the_end_of_input_ends_there() -> None:
    results = [(0.0, 2.0, [span(1.0, 2.0)]), (2.0, 4.04, [span(2.0, 4.04, 0.99)])]
    assert join_offline("black", results, min_duration=2.0, recovery=1.0) == [
        {"detector": "black", "start": 1.0, "end": 4.04, "confidence": 0.99}
    ]


def test_a_time_jump_breaks_a_defect() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    first = tracker.feed(0.0, 2.0, [span(0.0, 2.0)])
    changes = tracker.feed(10.0, 12.0, [span(10.0, 12.0)])
    assert kinds(first + changes) == [OPENED, RESOLVED, OPENED]
    assert (changes[0].start, changes[0].end) == (0.0, 2.0)
    assert changes[1].start == 10.0


def test_a_discontinuity_breaks_a_defect() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    tracker.feed(0.0, 2.0, [span(0.0, 2.0)])
    changes = tracker.feed(2.0, 4.0, [span(2.0, 4.0)], discontinuity=True)
    assert kinds(changes) == [RESOLVED, OPENED]


def test_media_that_was_not_analysed_is_neither_clean_nor_defective() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    tracker.feed(0.0, 2.0, [span(0.0, 2.0)])
    # 2..4 did not decode; 4..4.5 is clean, less than recovery, so the defect goes on.
    changes = tracker.feed(4.0, 6.0, [span(4.5, 6.0)])
    assert kinds(changes) == [UPDATED]
    assert (changes[0].start, changes[0].end) == (0.0, 6.0)


def test_a_replayed_segment_changes_nothing() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    tracker.feed(0.0, 2.0, [span(0.0, 2.0)])
    tracker.feed(2.0, 4.0, [])
    assert tracker.feed(0.0, 2.0, [span(0.0, 2.0)]) == []
    assert tracker.finish() == []


def test_confidence_is_the_max_or_the_duration_weighted_mean() -> None:
    results = [(0.0, 2.0, [span(0.0, 1.0, 0.6), span(1.0, 4.0, 1.0)]), (2.0, 6.0, [])]
    assert join_offline("x", results, 2.0, 1.0)[0]["confidence"] == 1.0
    assert join_offline("x", results, 2.0, 1.0, confidence="mean")[0]["confidence"] == 0.9


def test_scan_records_carry_label_and_offset_when_there_are_some() -> None:
    results = [(0.0, 4.0, [span(0.0, 4.0, 0.8, offset_ms=240.0)]), (4.0, 8.0, [])]
    assert join_offline("av_sync", results, 2.0, 1.0) == [
        {"detector": "av_sync", "start": 0.0, "end": 4.0, "offset_ms": 240, "confidence": 0.8}
    ]
    results = [(0.0, 2.0, [span(0.0, 2.0, 0.97, label="hum")])]
    assert join_offline("audio_artifact", results, 1.0, 1.0) == [
        {"detector": "audio_artifact", "label": "hum", "start": 0.0, "end": 2.0, "confidence": 0.97}
    ]


def test_a_restored_tracker_continues_the_same_defect() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    tracker.feed(0.0, 2.0, [span(0.0, 2.0)])
    restored = IntervalTracker.load(tracker.dump(), min_duration=2.0, recovery=1.0)
    assert restored.open_labels == [None]
    changes = restored.feed(2.0, 4.0, [span(2.0, 4.0)]) + restored.feed(4.0, 6.0, [])
    assert kinds(changes) == [UPDATED, RESOLVED]
    assert (changes[-1].start, changes[-1].end) == (0.0, 4.0)


def test_bad_settings_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="recovery=-1"):
        IntervalTracker(min_duration=1.0, recovery=-1)


def test_a_defect_filling_a_segment_whose_audio_ends_early_opens_with_that_segment() -> None:
    # AAC audio of the segment [32, 34) covers [31.979, 33.979): silence from 32.0 measures 1.98 s.
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    changes = tracker.feed(31.979, 33.979, [DefectSpan(start=32.0, end=33.979, confidence=1.0)])
    assert [c.transition for c in changes] == [AlertTransition.OPENED]
    assert changes[0].start == 32.0


def test_a_defect_clearly_shorter_than_the_minimum_does_not_open() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    assert tracker.feed(30.0, 32.0, [DefectSpan(start=30.1, end=32.0, confidence=1.0)]) == []


def test_a_tracker_without_history_takes_the_defect_start_the_spans_carry() -> None:
    """After its state was lost, the defect keeps its start, so its alert keeps its id."""
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    changes = tracker.feed(20.0, 22.0, [span(20.0, 22.0, run_start=14.0)])
    assert [(c.transition, c.start, c.end) for c in changes] == [(OPENED, 14.0, 22.0)]


def test_a_tracker_with_history_keeps_its_own_start_over_the_carried_one() -> None:
    tracker = IntervalTracker(min_duration=2.0, recovery=1.0)
    tracker.feed(0.0, 2.0, [])
    changes = tracker.feed(2.0, 4.0, [span(2.0, 4.0, run_start=0.5)])
    assert [(c.transition, c.start) for c in changes] == [(OPENED, 2.0)]
