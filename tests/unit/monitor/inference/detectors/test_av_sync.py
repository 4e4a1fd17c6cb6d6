"""The av_sync detector: onset fallback, window verdicts, scan output, the face model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.synth.beep_flash import beep_flash, write_beep_flash
from monitor.app.config import VqmConfig
from monitor.app.scan import scan
from monitor.inference.avsync import onsets
from monitor.inference.avsync.result import SyncEstimate, verdict
from monitor.inference.detectors.av_sync import AvSyncConfig, AvSyncDetector, cut, windows
from monitor.inference.engine import default_model_dir
from monitor.inference.models import ModelCache
from monitor.inference.segment import DecodedSegment

ONSETS_ONLY = AvSyncConfig(enabled=True, faces=False)


def _measure(segment: DecodedSegment) -> SyncEstimate:
    return onsets.measure(
        segment.luma,
        segment.video_times,
        segment.fps,
        segment.audio,
        segment.audio_rate,
        segment.audio_start,
    )


@pytest.mark.parametrize("fps", [25, 30])
@pytest.mark.parametrize("offset_ms", [-400.0, -130.0, 0.0, 70.0, 200.0, 400.0])
def test_beep_and_flash_offset_is_measured_within_one_frame(fps: int, offset_ms: float) -> None:
    estimate = _measure(beep_flash(4.0, offset_ms, fps=fps).segment())
    assert estimate.offset_ms is not None
    assert abs(estimate.offset_ms - offset_ms) <= 1000.0 / fps


def _still_texture_with_steady_noise(seconds: float = 4.0, fps: int = 25) -> DecodedSegment:
    rng = np.random.default_rng(3)
    base = rng.integers(40, 200, (180, 400)).astype(np.float32)
    frames = int(seconds * fps)
    luma = np.stack(
        [
            np.clip(base[:, i * 3 // 4 : i * 3 // 4 + 320] + rng.normal(0, 1, (180, 320)), 0, 255)
            for i in range(frames)
        ]
    ).astype(np.uint8)
    n = int(seconds * 48_000)
    sound = 0.05 * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * 50 * np.arange(n) / 48_000)
    audio = np.stack([sound, sound]).astype(np.float32)
    return DecodedSegment(
        video_times=np.arange(frames) / fps, luma=luma, fps=float(fps), audio=audio
    )


def test_content_without_faces_or_onsets_is_inconclusive(models: ModelCache) -> None:
    segment = _still_texture_with_steady_noise()
    assert _measure(segment).offset_ms is None
    detector = AvSyncDetector(AvSyncConfig(enabled=True), models)
    assert verdict(detector.measure(segment)) == "inconclusive"
    assert detector.detect(segment) == []


def test_in_sync_pattern_reports_nothing_and_a_lag_beyond_the_limit_is_one_span(
    models: ModelCache,
) -> None:
    detector = AvSyncDetector(ONSETS_ONLY, models)
    assert detector.detect(beep_flash(4.0, 20.0).segment()) == []
    [span] = detector.detect(beep_flash(4.0, 160.0).segment())
    assert span.label == "out_of_sync"
    assert span.offset_ms == pytest.approx(160.0, abs=40.0)


def test_thresholds_are_configurable_and_default_to_bt1359(models: ModelCache) -> None:
    config = AvSyncConfig(enabled=True)
    assert (config.lead_threshold_ms, config.lag_threshold_ms) == (45.0, 125.0)
    assert verdict(SyncEstimate(-60.0, 1.0, "onsets")) == "out_of_sync"
    assert verdict(SyncEstimate(100.0, 1.0, "onsets")) == "in_sync"
    strict = AvSyncDetector(AvSyncConfig(enabled=True, faces=False, lag_threshold_ms=60.0), models)
    assert len(strict.detect(beep_flash(4.0, 100.0).segment())) == 1


def test_a_segment_is_cut_into_whole_windows_or_used_whole_when_shorter() -> None:
    assert windows(0.0, 2.0, 4.0) == [(0.0, 2.0)]
    assert windows(10.0, 18.0, 4.0) == [(10.0, 14.0), (14.0, 18.0)]


def test_a_window_holds_its_frames_as_a_view_of_the_segment_unless_times_step_back() -> None:
    luma = np.arange(8 * 2 * 2, dtype=np.uint8).reshape(8, 2, 2)
    audio = np.zeros((2, 8 * 4800), np.float32)
    times = np.arange(8) * 0.1
    segment = DecodedSegment(video_times=times, luma=luma, fps=10.0, audio=audio)
    window = cut(segment, 0.2, 0.6)
    assert np.array_equal(window.luma, luma[2:6]) and np.shares_memory(window.luma, luma)
    stepped_times = np.array([0.0, 0.1, 0.5, 0.3, 0.9, 0.2, 0.6, 0.7])
    stepped = DecodedSegment(video_times=stepped_times, luma=luma, fps=10.0)
    window = cut(stepped, 0.2, 0.6)  # frames 2, 3 and 5: not one run
    assert np.array_equal(window.luma, luma[[2, 3, 5]]) and not np.shares_memory(window.luma, luma)


def test_scan_reports_the_offset_of_a_clip_with_audio_delayed_200_ms(tmp_path: Path) -> None:
    clip = tmp_path / "late_audio.ts"
    write_beep_flash(clip, 10.0, offset_ms=200.0)
    config = VqmConfig.model_validate({"detectors": [{"type": "av_sync", "enabled": True}]})
    found = [d for d in scan(str(clip), config) if d.detector == "av_sync"]
    assert found, "no av_sync defect reported"
    assert found[0].offset_ms == pytest.approx(200.0, abs=40.0)
    assert found[0].label == "out_of_sync"
    assert found[-1].end - found[0].start >= 8.0


def test_clean_synthetic_channel_content_scans_without_av_sync_defects(tmp_path: Path) -> None:
    from monitor.app.synthetic.channel import write_clip

    clip = tmp_path / "clean.ts"
    write_clip(clip, 12.0, seed=12, scenes=["talking", "studio"])
    config = VqmConfig().with_enabled(["av_sync"])
    assert [d for d in scan(str(clip), config) if d.detector == "av_sync"] == []


def test_av_sync_is_off_until_a_channel_or_a_scan_turns_it_on() -> None:
    assert not AvSyncConfig().enabled
    assert "av_sync" not in VqmConfig().detectors_for_defaults()
    assert "av_sync" in VqmConfig().with_enabled(["av_sync"]).detectors_for_defaults()


SHIPPED = (default_model_dir() / "av_sync.onnx").exists()


@pytest.mark.skipif(not SHIPPED, reason="the av_sync model is not shipped in this tree")
def test_the_face_model_measures_a_held_out_talking_head_within_one_frame(
    models: ModelCache,
) -> None:
    from lab.synth import speech
    from lab.synth.talking_head import talking_head

    if not speech.available():
        pytest.skip("espeak-ng is not installed")
    pool = speech.SpeechPool(seed=200, size=4, heldout=True)
    detector = AvSyncDetector(AvSyncConfig(enabled=True), models)
    misses = 0
    for seed, offset in ((10_001, 200.0), (10_003, -120.0), (10_005, 0.0)):
        clip = talking_head(seed, 4.0, fps=25, offset_ms=offset, heldout=True, pool=pool)
        estimate = detector.measure(clip.segment())
        misses += estimate.offset_ms is None or abs(estimate.offset_ms - offset) > 40.0
    assert misses <= 1


@pytest.mark.skipif(not SHIPPED, reason="the av_sync model is not shipped in this tree")
def test_scan_measures_a_talking_head_with_audio_delayed_200_ms_on_its_mouth(
    tmp_path: Path,
) -> None:
    from lab.synth import speech
    from lab.synth.talking_head import write_talking_head

    if not speech.available():
        pytest.skip("espeak-ng is not installed")
    clip = tmp_path / "late_talker.ts"
    pool = speech.SpeechPool(seed=200, size=4, heldout=True)
    write_talking_head(clip, 8.0, offset_ms=200.0, seed=1, heldout=True, pool=pool)
    config = VqmConfig().with_enabled(["av_sync"])
    [found] = [d for d in scan(str(clip), config) if d.detector == "av_sync"]
    assert found.offset_ms == pytest.approx(200.0, abs=40.0)
    assert (found.start, found.end) == (0.0, pytest.approx(8.0, abs=0.2))
