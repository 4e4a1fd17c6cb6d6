"""The inference worker carries each defect's start on the spans that continue it."""

from __future__ import annotations

from monitor.core.messages import DefectSpan
from monitor.inference.runs import DefectRuns


def span(start: float, end: float, label: str | None = None) -> DefectSpan:
    return DefectSpan(start=start, end=end, confidence=0.9, label=label)


def starts(spans: list[DefectSpan]) -> list[float | None]:
    return [s.run_start for s in spans]


def test_a_defect_over_three_segments_carries_its_first_instant_on_the_later_spans() -> None:
    runs = DefectRuns()
    assert starts(runs.carry("news", "black", 0.0, 2.0, [span(1.2, 2.0)])) == [None]
    assert starts(runs.carry("news", "black", 2.0, 4.0, [span(2.0, 4.0)])) == [1.2]
    assert starts(runs.carry("news", "black", 4.0, 6.0, [span(4.0, 5.0)])) == [1.2]


def test_clean_media_between_spans_starts_a_new_run() -> None:
    runs = DefectRuns()
    runs.carry("news", "black", 0.0, 2.0, [span(0.0, 1.5)])
    assert starts(runs.carry("news", "black", 2.0, 4.0, [span(2.0, 4.0)])) == [None]
    assert starts(runs.carry("news", "black", 4.0, 6.0, [span(4.0, 6.0)])) == [2.0]


def test_a_segment_that_gave_no_verdict_does_not_break_a_run() -> None:
    runs = DefectRuns()
    runs.carry("news", "black", 0.0, 2.0, [span(0.0, 2.0)])
    # segment 2.0-4.0 did not decode: never fed
    assert starts(runs.carry("news", "black", 4.0, 6.0, [span(4.0, 6.0)])) == [0.0]


def test_a_jump_in_media_time_forgets_every_run() -> None:
    runs = DefectRuns()
    runs.carry("news", "black", 100.0, 102.0, [span(100.0, 102.0)])
    assert starts(runs.carry("news", "black", 0.0, 2.0, [span(0.0, 2.0)])) == [None]


def test_runs_are_kept_apart_by_channel_detector_and_label() -> None:
    runs = DefectRuns()
    runs.carry("news", "audio_artifact", 0.0, 2.0, [span(1.0, 2.0, "hum"), span(1.9, 2.0, "click")])
    runs.carry("sport", "audio_artifact", 0.0, 2.0, [span(0.5, 2.0, "hum")])
    carried = runs.carry(
        "news", "audio_artifact", 2.0, 4.0, [span(2.0, 3.0, "click"), span(2.0, 4.0, "hum")]
    )
    assert [(s.label, s.run_start) for s in carried] == [("click", 1.9), ("hum", 1.0)]
    assert starts(runs.carry("news", "silence", 2.0, 4.0, [span(2.0, 4.0)])) == [None]


def test_a_segment_analysed_again_changes_nothing() -> None:
    runs = DefectRuns()
    runs.carry("news", "black", 0.0, 2.0, [span(0.0, 2.0)])
    again = [span(0.0, 2.0)]
    assert runs.carry("news", "black", 0.0, 2.0, again) == again
    assert starts(runs.carry("news", "black", 2.0, 4.0, [span(2.0, 4.0)])) == [0.0]
