"""Loudness against EBU R128: the sliding integrated loudness, too loud / too quiet after the
minimum history, true peaks at once, state kept across a channel's segments."""

from __future__ import annotations

import numpy as np
import pytest

from alerting.intervals import join_offline
from lab.evaluation.loudness import tech3341, tone
from monitor.inference.detectors.loudness import LoudnessConfig, LoudnessDetector
from monitor.inference.media import iter_decoded
from monitor.inference.segment import DecodedSegment, DecodeNeeds
from tests.real_media import real_speech

RATE = 48_000


def segments(audio: np.ndarray, seconds: float = 2.0, start: float = 0.0) -> list[DecodedSegment]:
    size = int(seconds * RATE)
    return [
        DecodedSegment(audio=audio[:, i : i + size], audio_start=start + i / RATE)
        for i in range(0, audio.shape[-1], size)
    ]


def run(
    audio: np.ndarray, config: LoudnessConfig | None = None, start: float = 0.0
) -> tuple[LoudnessDetector, list]:
    detector = LoudnessDetector(config or LoudnessConfig())
    results = []
    for segment in segments(audio, start=start):
        results.append((*segment.audio_span, detector.detect(segment)))
    return detector, results


def joined(results: list, config: LoudnessConfig | None = None) -> list[dict]:
    config = config or LoudnessConfig()
    return join_offline(
        "loudness",
        results,
        config.min_duration,
        config.recovery,
        label_min_durations=config.label_min_durations(),
    )


@pytest.mark.parametrize(
    ("case", "flagged"),
    [(0, []), (2, []), (3, ["too_quiet"]), (4, [])],
    ids=["case 1", "case 3", "case 4", "case 5"],
)
def test_tech_3341_programmes_measure_minus_23_over_the_whole_signal(
    case: int, flagged: list[str]
) -> None:
    """Integrated over the whole signal, each is -23 LUFS; judged live, case 4's 20 s at
    -72 and -36 dBFS before the -23 programme are too quiet, as a viewer would find them."""
    name, audio, expected, _ = tech3341()[case]
    window = LoudnessConfig(window=float(audio.shape[-1] / RATE + 2))
    detector, results = run(audio, window)
    assert detector.measurements()["integrated_lufs"] == pytest.approx(expected, abs=0.1), name
    assert [d["label"] for d in joined(results, window)] == flagged


def test_a_programme_6_lu_too_loud_alerts_after_the_history_and_min_duration() -> None:
    detector, results = run(tone(-17.0, 40))  # 1 kHz at -17 dBFS: -17 LUFS
    [alert] = joined(results)
    assert alert["label"] == "too_loud"
    assert alert["start"] == pytest.approx(10.0, abs=0.2)  # judged once 10 s were heard
    assert detector.measurements()["short_term_lufs"] == pytest.approx(-17.0, abs=0.1)


def test_a_programme_10_lu_too_quiet_alerts_and_silence_does_not() -> None:
    _, quiet = run(tone(-33.0, 30))
    assert [d["label"] for d in joined(quiet)] == ["too_quiet"]
    _, silent = run(np.zeros((2, 30 * RATE), np.float32))
    assert joined(silent) == []  # gating leaves no value: the silence detector's business


def test_a_true_peak_over_the_limit_alerts_at_once_where_it_is() -> None:
    audio = tone(-23.0, 20)
    audio[:, 7 * RATE : 7 * RATE + 480] *= 10 ** (22.5 / 20)  # 10 ms at -0.5 dBFS
    detector, results = run(audio)
    [alert] = joined(results)
    assert alert["label"] == "true_peak"
    assert alert["start"] >= 6.9 and alert["end"] <= 7.2
    assert detector.measurements()["true_peak_dbtp"] < -20  # the last segment's peak


def test_the_window_slides_a_loud_minute_is_forgotten_a_minute_later() -> None:
    config = LoudnessConfig(window=20.0)
    audio = np.concatenate([tone(-15.0, 30), tone(-23.0, 60)], axis=1)
    _, results = run(audio, config)
    [alert] = joined(results, config)
    assert alert["label"] == "too_loud" and alert["end"] < 60.0  # over once the window moved on


def test_a_jump_in_media_time_starts_a_fresh_window() -> None:
    detector = LoudnessDetector(LoudnessConfig())
    for segment in segments(tone(-15.0, 20)):
        detector.detect(segment)
    assert detector.detect(segments(tone(-23.0, 2), start=500.0)[0]) == []
    assert detector.measurements()["integrated_lufs"] == pytest.approx(-23.0, abs=0.2)


def test_a_target_for_atsc_a85_and_a_wider_tolerance_are_settings() -> None:
    a85 = LoudnessConfig(target=-24.0, tolerance=2.0)
    _, results = run(tone(-24.0, 30), a85)
    assert joined(results, a85) == []
    with pytest.raises(ValueError):
        LoudnessConfig(tolerance=0)


def test_real_studio_speech_is_measured_and_gives_finite_readings() -> None:
    detector = LoudnessDetector(LoudnessConfig(min_history=1.0))
    for path in real_speech(3):
        for chunk in iter_decoded(str(path), DecodeNeeds(luma=False, audio=True)):
            detector.detect(chunk)
        readings = detector.measurements()
        assert -40.0 < readings["momentary_lufs"] < -5.0, path
        assert -40.0 < readings["integrated_lufs"] < -5.0, path
        assert readings["true_peak_dbtp"] <= 0.5, path
